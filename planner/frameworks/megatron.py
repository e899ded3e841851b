"""Megatron-LM arguments for a plan (`pretrain_gpt.py`), and the project's check of Megatron's
consistency rules on the emitted arguments.

Flag names and rules: shared/reference/ecosystem.md section 4.1 (Megatron-LM main @ d98e8a6, its
argument parser built and run). Flags outside that table are cited where they are used. Uneven
pipeline splits use --pipeline-model-parallel-layout (Megatron-Core >= 0.13.0): megatron_layout.py.
"""

from __future__ import annotations

from planner.errors import InputError
from planner.frameworks import common
from planner.estimate.comm import ep_overlap_runs
from planner.frameworks.megatron_layout import layout_problems, pipeline_layout
from planner.spec.model import moe_pattern, window_pattern

# Megatron's optimizers (`--optimizer`): its Adam applies decoupled weight decay (AdamW).
OPTIMIZERS = {"adamw": "adam", "adam": "adam", "sgd": "sgd", "muon": "muon"}
# Muon as modelled (planner/estimate/muon.py) and as Megatron-Bridge's distributed_muon_with_cosine_annealing sets
# it (recipes/utils/optimizer_utils.py at v0.4.0): Megatron-LM d98e8a6 arguments.py flags; with zero 1 the
# --use-distributed-optimizer flag selects the layer-wise distributed optimizer (validate_args).
MUON_ARGS = ["--muon-momentum 0.95", "--muon-nesterov", "--muon-scale-mode spectral", "--muon-num-ns-steps 5",
             "--muon-tp-mode blockwise", "--muon-fp32-matmul-prec medium", "--muon-scalar-optimizer adam"]


def _model_args(scenario) -> list[str]:
    """Model shape (§4.1 "model shape" and "MoE / MLA" rows). Also Megatron's
    --position-embedding-type, --normalization, --disable-bias-linear, --add-qkv-bias and
    --qk-layernorm (megatron/training/arguments.py) so the built model matches the planned one."""
    m, seq = scenario.model, scenario.training.seq_len
    out = [f"--num-layers {m.layers}", f"--hidden-size {m.hidden}", f"--ffn-hidden-size {m.ffn_hidden}",
           f"--num-attention-heads {m.heads}", f"--seq-length {seq}",
           # the model's context (max_seq_len), or seq_length when training beyond it (context extension):
           # validate_args (megatron/training/arguments.py) requires max_position_embeddings >= seq_length
           f"--max-position-embeddings {max(seq, m.max_seq_len or 0)}", f"--vocab-size {m.vocab}",
           "--position-embedding-type " + _position_type(m),
           "--normalization " + ("RMSNorm" if m.norm == "rmsnorm" else "LayerNorm")]
    if m.mla:
        out += ["--multi-latent-attention", f"--kv-lora-rank {m.mla.kv_lora_rank}",
                f"--qk-head-dim {m.mla.qk_nope_head_dim}", f"--qk-pos-emb-head-dim {m.mla.qk_rope_head_dim}",
                f"--v-head-dim {m.mla.v_head_dim}"]
        out += [f"--q-lora-rank {m.mla.q_lora_rank}"] if m.mla.q_lora_rank else []
    else:
        out.append(f"--kv-channels {m.d_head}")
        if m.n_kv_heads < m.heads:
            out += ["--group-query-attention", f"--num-query-groups {m.n_kv_heads}"]
    out += ["--swiglu"] if m.ffn_act == "swiglu" and m.ffn_gate == "silu" else []  # gpt-oss: architecture_args
    out += [] if m.tie_embeddings else ["--untie-embeddings-and-output-weights"]
    out += [] if m.linear_bias else ["--disable-bias-linear"]
    out += ["--add-qkv-bias"] if m.qkv_bias and not m.linear_bias else []
    out += ["--qk-layernorm"] if m.qk_norm else []
    if m.moe:
        out += [f"--num-experts {m.moe.experts}", f"--moe-router-topk {m.moe.top_k}",
                f"--moe-ffn-hidden-size {m.moe.expert_ffn_hidden}", "--moe-grouped-gemm"]
        if m.moe.shared_ffn:
            out.append(f"--moe-shared-expert-intermediate-size {m.moe.shared_ffn}")
        freq = moe_layer_freq(m)
        if freq:
            out.append(f"--moe-layer-freq {freq}")
    return out + architecture_args(m, seq)


def moe_layer_freq(m) -> str | None:
    """Megatron --moe-layer-freq for the model's MoE layers (spec.model.moe_pattern), None when every layer
    is MoE: leading dense layers as ([0]*k+[1]*(L-k)); any other pattern (Llama 4 Maverick's MoE on odd
    0-based layers) as the list expression arguments.py moe_freq_type evaluates, 1 = MoE, one entry per
    layer without spaces. (An integer N would put MoE on 0-based layers 0, N, 2N, ...: is_moe_layer in
    Megatron-Core's get_moe_layer_freq, not HF's (i + 1) % N == 0.)"""
    pattern = moe_pattern(m)
    if all(pattern):
        return None
    k = m.moe.dense_layers
    if m.moe.layer_step == 1:
        return f"([0]*{k}+[1]*{m.layers - k})"
    return "[" + ",".join("1" if x else "0" for x in pattern) + "]"


def _position_type(m) -> str:
    """learned_absolute, rope, or yarn for YaRN outside MLA (MLA takes YaRN through --rope-type)."""
    if m.position == "learned":
        return "learned_absolute"
    yarn = m.rope_scaling is not None and m.rope_scaling.type == "yarn"
    return "yarn" if yarn and not m.mla else "rope"


# Values Megatron-LM fixes in code (main @ d98e8a6): Llama 3.1 scaling in
# megatron/core/models/common/embeddings/rotary_pos_embedding.py `_apply_scaling`, and the YaRN
# fields of MLATransformerConfig that no argument sets (megatron/core/transformer/transformer_config.py).
LLAMA3_FIXED = {"low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
MLA_YARN_FIXED = {"original_max_position_embeddings": 4096, "beta_fast": 32.0, "beta_slow": 1.0}


def _fixed_problems(rs, fixed: dict, where: str) -> list[str]:
    return [f"rope_scaling.{k} {getattr(rs, k)} (Megatron-LM fixes {v} in {where})"
            for k, v in fixed.items() if getattr(rs, k) is not None and getattr(rs, k) != v]


def _rope_args(m) -> tuple[list[str], list[str]]:
    """(flags, problems) for the rotary base and scaling. --rotary-base is an int in Megatron;
    Llama 3.1 scaling is --use-rope-scaling with --rope-scaling-factor; YaRN is --rotary-scaling-factor,
    --mscale, --mscale-all-dim, with --rope-type yarn in MLA (its other YaRN fields are fixed) or
    --yarn-original-max-position-embeddings / --yarn-beta-fast / --yarn-beta-slow otherwise; linear
    interpolation is --rotary-seq-len-interpolation-factor (an int) (megatron/training/arguments.py)."""
    if m.position != "rope":
        return [], []
    out, problems = [], []
    if m.rope_theta.is_integer():
        out.append(f"--rotary-base {int(m.rope_theta)}")
    else:
        problems.append(f"rope_theta {m.rope_theta} (Megatron's --rotary-base takes an integer)")
    rs = m.rope_scaling
    if rs is None:  # MLATransformerConfig: "apply_rope_fusion for MLA only works with YARN RoPE" (d98e8a6)
        return out + (["--rope-type rope", "--no-rope-fusion"] if m.mla else []), problems
    if m.mla and rs.type != "yarn":  # multi_latent_attention.py: rope_type rope (no scaling) or yarn only
        problems.append(f"rope_scaling.type {rs.type} with MLA (Megatron-Core's MLA takes plain RoPE or YaRN)")
    elif rs.type == "llama3":
        out += ["--use-rope-scaling", f"--rope-scaling-factor {rs.factor!r}"]
        problems += _fixed_problems(rs, LLAMA3_FIXED, "rotary_pos_embedding.py")
    elif rs.type == "linear":
        if rs.factor.is_integer():
            out.append(f"--rotary-seq-len-interpolation-factor {int(rs.factor)}")
        else:
            problems.append(f"rope_scaling.factor {rs.factor} (--rotary-seq-len-interpolation-factor is an int)")
    else:
        out += [f"--rotary-scaling-factor {rs.factor!r}", f"--mscale {rs.mscale or 1.0!r}",
                f"--mscale-all-dim {rs.mscale_all_dim or 0.0!r}"]
        if m.mla:
            out.append("--rope-type yarn")
            problems += _fixed_problems(rs, MLA_YARN_FIXED, "MLATransformerConfig")
        else:
            out.append(f"--yarn-original-max-position-embeddings {rs.original_max_position_embeddings}")
            out += [f"--yarn-beta-{k} {getattr(rs, 'beta_' + k)!r}" for k in ("fast", "slow")
                    if getattr(rs, "beta_" + k) is not None]
    return out, problems


def _router_args(e) -> tuple[list[str], list[str]]:
    """(flags, problems) for the MoE router (megatron/core/transformer/moe/moe_utils.py
    topk_routing_with_score_function): softmax after top-k renormalises the top-k weights (Mixtral,
    Qwen3-MoE), --moe-router-pre-softmax gives the softmax over all experts (norm_topk false);
    sigmoid scores are always renormalised for top-k > 1; --moe-router-topk-scaling-factor,
    --moe-router-num-groups / --moe-router-group-topk, --moe-router-enable-expert-bias (aux-free
    balancing, its update rate left at Megatron's 1e-3 as in DeepSeek-V3; sigmoid scores only:
    TransformerConfig raises "Expert bias for aux-loss-free routing only supports 'sigmoid' ..."),
    --moe-aux-loss-coeff."""
    out, problems = [f"--moe-router-score-function {e.scoring}"], []
    if e.scoring == "softmax" and not e.norm_topk:
        out.append("--moe-router-pre-softmax")
    if e.scoring == "sigmoid" and not e.norm_topk and e.top_k > 1:
        problems.append("moe.norm_topk false with sigmoid scores (Megatron renormalises them)")
    if e.routed_scale != 1:
        out.append(f"--moe-router-topk-scaling-factor {e.routed_scale!r}")
    if e.groups:
        out += [f"--moe-router-num-groups {e.groups}", f"--moe-router-group-topk {e.group_topk}"]
    if e.router_bias:
        out.append("--moe-router-enable-expert-bias")
        if e.scoring != "sigmoid":  # TransformerConfig.__post_init__ (transformer_config.py @ d98e8a6)
            problems.append("moe.router_bias with softmax scores (Megatron-Core supports the aux-loss-free expert "
                            "bias with sigmoid scores only)")
    if e.aux_loss_coef:
        out.append(f"--moe-aux-loss-coeff {e.aux_loss_coef!r}")
    return out, problems


def window_skip_freq(pattern: list[bool]) -> str:
    """Megatron --window-attn-skip-freq for a per-layer window pattern (Megatron-Core
    is_layer_window_attention, transformer/utils.py): an integer N windows 1-based layer n iff
    n % N != 0 (gpt-oss: 2; a 5:1 interleave: 6); any other pattern as the Python list expression
    arguments.py moe_freq_type evaluates (1 = sliding window), one entry per layer, without spaces
    (megatron_args.txt is split on whitespace, globbing off)."""
    n_layers = len(pattern)
    for freq in range(2, n_layers + 1):
        if all(pattern[i] == ((i + 1) % freq != 0) for i in range(n_layers)):
            return str(freq)
    return "[" + ",".join("1" if x else "0" for x in pattern) + "]"


def architecture_args(m, seq_len: int | None = None) -> list[str]:
    """Arguments that change no shape but make Megatron build the same model as the spec: rotary
    base and scaling, --norm-epsilon, --window-size (HF's sliding window of W tokens, the current
    one included, is W-1 tokens to the left: "W-1,0"), the MoE router. Raises InputError naming the
    value Megatron cannot take. Chunked attention (attention_chunk, Llama 4): Megatron-LM (main @ d98e8a6)
    has no chunked-attention mask; a training sequence (`seq_len`) no longer than the chunk is one chunk,
    the same computation as causal attention, so only a longer one (or, with seq_len None, none) is refused."""
    out, problems = _rope_args(m)
    if m.attention_chunk and (seq_len is None or seq_len > m.attention_chunk):
        problems.append(f"chunked attention (attention_chunk {m.attention_chunk}) on "
                        f"{'sequences' if seq_len is None else f'a {seq_len}-token sequence'}: Megatron-LM has no "
                        "chunked-attention mask (a sequence within one chunk trains the same as causal attention)")
    if m.attention_chunk:
        # Llama 4: the chunked layers are its RoPE layers, the others NoPE global layers (transformers
        # Llama4TextConfig layer_types: chunked_attention iff no_rope_layers[i]); Megatron --no-rope-freq N makes
        # 1-based layers N, 2N, ... NoPE (TransformerConfig.no_rope_freq: [0]*(N-1)+[1] repeated)
        nope = m.layers - (m.attention_chunk_layers or m.layers)
        if nope and m.layers % nope == 0:
            out.append(f"--no-rope-freq {m.layers // nope}")
        elif nope:
            problems.append(f"{nope} NoPE layers of {m.layers} (the layers outside attention_chunk_layers) are not "
                            "every N-th layer (--no-rope-freq N)")
    out.append(f"--norm-epsilon {m.norm_eps!r}")
    if m.sliding_window:
        out.append(f"--window-size {m.sliding_window - 1},0")
        pattern = window_pattern(m)
        if pattern is None:
            problems.append(f"sliding_window_layers {m.sliding_window_layers} of {m.layers} without a "
                            "sliding_window_pattern: which layers are windowed is not stated")
        elif not all(pattern):
            out.append(f"--window-attn-skip-freq {window_skip_freq(pattern)}")
    if m.attn_out_bias and not m.linear_bias:
        problems.append("a bias on the attention output projection (attn_out_bias, HF attention_bias) without "
                        "biases on the MLP: Megatron-LM biases every linear layer (--add-bias-linear) or q/k/v "
                        "alone (--add-qkv-bias)")
    if m.attention_sinks:
        out.append("--softmax-type learnable")
    if m.ffn_gate == "gpt_oss":
        # gpt-oss's activation: gate * sigmoid(1.702 gate) * (up + 1), inputs clamped (Megatron-Bridge
        # GPTOSSProvider: quick_gelu, glu_linear_offset 1.0, activation_func_clamp_value 7.0)
        out += ["--quick-geglu", "--glu-linear-offset 1.0"]
        out += [] if m.swiglu_limit is None else [f"--activation-func-clamp-value {m.swiglu_limit!r}"]
    elif m.ffn_gate == "gelu":
        problems.append("a GeGLU MLP (ffn_gate: gelu, Gemma): Megatron-LM's arguments gate with SiLU (--swiglu) or "
                        "quick GELU (--quick-geglu), not GELU")
    elif m.swiglu_limit is not None:
        problems.append(f"swiglu_limit {m.swiglu_limit!r} on a SiLU gate: the export writes the clamp only "
                        "with gpt-oss's gate (ffn_gate: gpt_oss, --quick-geglu)")
    if m.moe:
        flags, more = _router_args(m.moe)
        out, problems = out + flags, problems + more
    if m.mtp_layers:
        # Megatron-Core MTP (multi_token_prediction.py); the loss weight stays at Megatron's and
        # Megatron-Bridge's DeepSeek-V3 recipe value, --mtp-loss-scaling-factor 0.1 (it costs nothing)
        out.append(f"--mtp-num-layers {m.mtp_layers}")
        if m.position != "rope":  # arguments.py validate_args: MTP supports rope and none only
            problems.append("MTP (mtp_layers) needs rotary position embeddings (Megatron validate_args)")
    if problems:
        raise InputError(f"Megatron-LM cannot rebuild {m.name}: " + "; ".join(problems), key="model")
    return out


def _parallel_args(scenario, f: dict) -> list[str]:
    """Parallel sizes, the pipeline split, sequence parallelism, distributed optimizer (ZeRO-1) with
    its CPU offload, and the overlaps the time model assumes (§4.1; --tp-comm-overlap needs
    --sequence-parallel). An even split with interleaving gives --num-layers-per-virtual-pipeline-stage;
    an uneven one (layers % (pp x vpp) != 0) gives the planner's chunks as --pipeline-model-parallel-layout,
    which also sets the interleaving depth (megatron_layout.py). A scenario's runtime.pipeline_layout is
    written as given; its account_for_* keys as Megatron's flags with --num-virtual-stages-per-pipeline-rank."""
    rt = scenario.runtime
    out = [f"--tensor-model-parallel-size {f['tp']}", f"--pipeline-model-parallel-size {f['pp']}",
           f"--context-parallel-size {f['cp']}", f"--expert-model-parallel-size {f['ep']}"]
    if scenario.model.moe:  # Megatron's default is tp; written out so a folded layout (etp = 1) is explicit
        out.append(f"--expert-tensor-parallel-size {f['etp']}")
        # the dispatcher the time model follows (runtime.moe_dispatcher; Megatron's flag default is allgather)
        disp = rt.moe_dispatcher
        if disp in ("deepep", "hybridep"):
            out += ["--moe-token-dispatcher-type flex", f"--moe-flex-dispatcher-backend {disp}"]
            # Megatron-LM builds its flags from TransformerConfig fields (arguments.py ArgumentGroupFactory); at
            # d98e8a6 moe_hybridep_num_sms is deprecated for moe_flex_dispatcher_num_sms (transformer_config.py)
            out += [f"--moe-flex-dispatcher-num-sms {rt.moe_hybridep_num_sms}"] if disp == "hybridep" else []
        else:
            out.append(f"--moe-token-dispatcher-type {disp}")
        cap = scenario.model.moe.capacity_factor
        if cap is not None:
            out.append(f"--moe-expert-capacity-factor {cap!r}")
            out += ["--moe-pad-expert-input-to-capacity"] if rt.moe_pad_to_capacity else []
        mods = rt.recompute_modules or ()
        if rt.ep_comm_overlap and ep_overlap_runs(f["ep"], f["pp"], f["vpp"], f["recompute"] == "full",
                                                  f["recompute"] == "selective" and "moe" in mods):
            out.append("--overlap-moe-expert-parallel-comm")
    # p2p is Megatron's default; Transformer Engine's all-gather exchange is named "all_gather" (its
    # attn_forward_func_with_cp raises on "allgather"), and it is the one TE runs windowed layers with
    if f["cp"] > 1 and (rt.cp_comm == "allgather" or (rt.cp_comm == "auto" and scenario.model.sliding_window)):
        out.append("--cp-comm-type all_gather")
    if rt.pipeline_layout is not None:  # the scenario's own layout, as given
        out.append(f"--pipeline-model-parallel-layout {rt.pipeline_layout}")
    elif rt.account_for_embedding_in_pipeline_split or rt.account_for_loss_in_pipeline_split:
        out += ["--account-for-embedding-in-pipeline-split"] if rt.account_for_embedding_in_pipeline_split else []
        out += ["--account-for-loss-in-pipeline-split"] if rt.account_for_loss_in_pipeline_split else []
        out += [f"--num-virtual-stages-per-pipeline-rank {f['vpp']}"] if f["vpp"] > 1 else []
    elif common.uneven_split(scenario, f):
        layout = pipeline_layout(scenario.model.layers, f["pp"], f["vpp"], scenario.model.mtp_layers,
                                 common.own_split_units(scenario))
        out.append(f"--pipeline-model-parallel-layout {layout}")
    elif f["vpp"] > 1:
        out.append(f"--num-layers-per-virtual-pipeline-stage {common.layers_per_stage(scenario, f)}")
    if f["sp"]:
        out.append("--sequence-parallel")
        out += ["--tp-comm-overlap"] if rt.tp_comm_overlap else []
    if f["zero"] == 1:
        out.append("--use-distributed-optimizer")
    if f["zero"] == 3:
        out += megatron_fsdp_args()
    if rt.dp_comm_overlap:
        out.append("--overlap-grad-reduce")
        # Muon's layer-wise optimizer gathers its parameters inside the step: the Kimi-K2 recipes keep
        # overlap_param_gather off for it ("Muon needs this to be False", recipes/kimi/kimi_k2.py), as modelled
        muon = scenario.training.optimizer == "muon"
        out += ["--overlap-param-gather"] if f["zero"] in (1, 3) and not muon else []
    if f["offload"] == "cpu":  # arguments.py asserts the precision-aware optimizer with CPU offload
        out += ["--optimizer-cpu-offload", "--optimizer-offload-fraction 1.0", "--use-precision-aware-optimizer"]
    return out


def megatron_fsdp_args() -> list[str]:
    """Megatron-FSDP, the planner's zero = 3 on Megatron-LM (megatron/training/arguments.py at
    d98e8a6 and docs/user-guide/features/megatron_fsdp.md): --use-megatron-fsdp with the sharding
    strategy optim_grads_params (optimizer states, gradients and parameters sharded; the flag's
    default, written out); Megatron-FSDP v1 needs the distributed optimizer (validate_args turns it
    on) and the `fsdp_dtensor` checkpoint format (asserted)."""
    return ["--use-megatron-fsdp", "--data-parallel-sharding-strategy optim_grads_params",
            "--use-distributed-optimizer", "--ckpt-format fsdp_dtensor"]


# runtime.fp8_recipe -> Megatron-LM --fp8-recipe (megatron/training/arguments.py choices: tensorwise,
# delayed, mxfp8, blockwise)
FP8_RECIPE_FLAG = {"delayed": "delayed", "current": "tensorwise", "mxfp8": "mxfp8"}
# runtime.fp8_recipe nvfp4 -> FP4 through Transformer Engine's NVFP4BlockScaling on a bf16 model. Megatron-LM
# (main @ d98e8a6) builds these flags from TransformerConfig (megatron/core/transformer/transformer_config.py:
# fp4 -> --fp4-format, choices e2m1; fp4_recipe -> --fp4-recipe, nvfp4 | custom; fp4_param -> --fp4-param-gather,
# arguments.py _add_transformer_engine_args); --fp4-format and --fp8-format are mutually exclusive
# (arguments.py validate_args). Megatron-Bridge's bf16_with_nvfp4_mixed sets the same (fp4 "e2m1",
# fp4_recipe "nvfp4"; training/mixed_precision.py).
NVFP4_ARGS = ["--bf16", "--fp4-format e2m1", "--fp4-recipe nvfp4"]


def _precision_args(scenario, precision: str) -> list[str]:
    """--bf16 / --fp16; fp8 plans: --fp8-format hybrid with runtime.fp8_recipe's --fp8-recipe, or the FP4
    flags (NVFP4_ARGS) under fp8_recipe nvfp4; runtime.fp8_param_gather adds --fp8-param-gather or
    --fp4-param-gather (the quantised weights the memory model counts)."""
    recipe = scenario.runtime.fp8_recipe
    gather = precision == "fp8" and scenario.runtime.fp8_param_gather
    if precision == "fp8" and recipe == "nvfp4":
        return NVFP4_ARGS + (["--fp4-param-gather"] if gather else [])
    return {"bf16": ["--bf16"], "fp16": ["--fp16"], "fp32": [],
            "fp8": ["--bf16", "--fp8-format hybrid", f"--fp8-recipe {FP8_RECIPE_FLAG[recipe]}"]
            + (["--fp8-param-gather"] if gather else [])}[precision]


def _training_args(scenario, f: dict) -> list[str]:
    """Batch (§4.1: global batch = micro x DP x number of micro-batches), precision (--bf16 / --fp16;
    FP8 through Transformer Engine on a bf16 model: _precision_args, with runtime.fp8_recipe's
    --fp8-recipe), recomputation (full: uniform, one layer per checkpoint; selective with the scenario's
    runtime.recompute_modules; activation offloading and the Megatron-FSDP FP8 transpose cache from
    runtime.activation_offload_layers / keep_fp8_transpose_cache), and the optimizer and schedule
    of planner/frameworks/common.py (Megatron's --lr, --min-lr, --lr-decay-style, --train-iters ...)."""
    opt = OPTIMIZERS.get(scenario.training.optimizer)
    if opt is None:
        raise InputError(f"Megatron-LM has no {scenario.training.optimizer} optimizer (it offers adam, sgd and muon)",
                         key="training.optimizer")
    out = [f"--micro-batch-size {f['mbs']}", f"--global-batch-size {f['global_batch']}"]
    out += _precision_args(scenario, f["precision"])
    if f["recompute"] == "selective":
        out.append("--recompute-granularity selective")
        mods = scenario.runtime.recompute_modules
        if mods is not None:  # Megatron-Core >= 0.12 (default: core_attn)
            out.append("--recompute-modules " + " ".join(mods) if mods else "--recompute-modules")
    elif f["recompute"] == "full":
        block = scenario.runtime.recompute_num_layers
        out += ["--recompute-granularity full"] + (["--recompute-method uniform", "--recompute-num-layers 1"]
                                                   if block is None else
                                                   ["--recompute-method block", f"--recompute-num-layers {block}"])
    offload = scenario.runtime.activation_offload_layers
    if offload and f["pp"] == 1 and f["recompute"] == "none":  # Megatron-Core refuses it otherwise
        out.append(f"--cpu-offloading-num-layers {min(offload, scenario.model.layers - 1)}")
    if scenario.runtime.keep_fp8_transpose_cache and f["zero"] >= 3 and f["precision"] == "fp8":
        out.append("--keep-fp8-transpose-cache")
    out += cuda_graph_args(scenario.runtime)
    steps = common.train_steps(scenario, f)
    out += [f"--optimizer {opt}", f"--lr {common.LR}", f"--min-lr {common.LR * common.MIN_LR_RATIO:g}",
            "--lr-decay-style cosine", f"--lr-warmup-iters {common.warmup_steps(steps)}", f"--train-iters {steps}",
            f"--weight-decay {common.WEIGHT_DECAY}", f"--clip-grad {common.GRAD_CLIP}"]
    if opt in ("adam", "muon"):  # muon: for its Adam fallback (embeddings, norms, biases)
        out += [f"--adam-beta1 {common.BETAS[0]}", f"--adam-beta2 {common.BETAS[1]}", f"--adam-eps {common.EPS}"]
    if opt == "muon":
        out += MUON_ARGS
    if not scenario.model.dropout:
        out += ["--attention-dropout 0.0", "--hidden-dropout 0.0"]
    return out


def cuda_graph_args(rt) -> list[str]:
    """runtime.cuda_graph_impl / cuda_graph_scope as Megatron-LM flags (arguments.py at d98e8a6, where
    --cuda-graph-scope is deprecated for --cuda-graph-modules and the whole-iteration graph is its own
    implementation): local with scope full_iteration -> --cuda-graph-impl full_iteration (no modules; it
    asserts --no-check-for-nan-in-loss-and-grad); otherwise --cuda-graph-impl with --cuda-graph-modules
    naming the scope (none: whole layers). --te-rng-tracker, which validate_args turns on for graphs
    anyway (written so the script says it)."""
    impl = rt.cuda_graph_impl
    if impl == "none":
        return []
    scope = list(rt.cuda_graph_scope)
    if "full_iteration" in scope:
        return ["--cuda-graph-impl full_iteration", "--te-rng-tracker", "--no-check-for-nan-in-loss-and-grad"]
    return ([f"--cuda-graph-impl {impl}"] + (["--cuda-graph-modules " + " ".join(scope)] if scope else [])
            + ["--te-rng-tracker"])


def megatron_args(scenario, plan) -> list[str]:
    """Megatron-LM arguments for a megatron plan, one flag (with its value) per entry. Raises
    InputError for a plan of another framework or arguments that break Megatron's rules."""
    f = common.plan_fields(plan)
    if f["framework"] != "megatron":
        raise InputError(f"the plan runs on {f['framework']}, not megatron", key="plan.framework")
    args = _model_args(scenario) + _parallel_args(scenario, f) + _training_args(scenario, f)
    problems = args_problems(parse_args(args), common.gpus(f))
    if problems:
        raise InputError("Megatron-LM cannot run this plan: " + "; ".join(problems), key="plan")
    return args


def parse_args(lines: list[str]) -> dict:
    """`--flag value` entries back to {dest: value}: ints where they parse, True for switches."""
    out: dict = {}
    for line in lines:
        flag, _, value = line.strip().partition(" ")
        dest = flag.lstrip("-").replace("-", "_")
        value = value.strip()
        if not value:
            out[dest] = True
        else:
            try:
                out[dest] = int(value)
            except ValueError:
                out[dest] = value
    return out


def args_problems(a: dict, world: int) -> list[str]:
    """Megatron's consistency rules (§4.1, from validate_args, parallel_state.py and
    num_microbatches_calculator.py) on parsed arguments. Empty when they all hold. With
    --pipeline-model-parallel-layout the layers need not divide by pp; the layout must hold each of
    them exactly once instead (megatron_layout.layout_problems)."""
    tp, pp = a.get("tensor_model_parallel_size", 1), a.get("pipeline_model_parallel_size", 1)
    cp, ep = a.get("context_parallel_size", 1), a.get("expert_model_parallel_size", 1)
    etp, layers, heads = a.get("expert_tensor_parallel_size", tp), a["num_layers"], a["num_attention_heads"]
    groups = a.get("num_query_groups", heads) if a.get("group_query_attention") else heads
    out = []
    if world % (tp * pp * cp):
        return [f"world size {world} is not divisible by tp*pp*cp = {tp}*{pp}*{cp}"]
    dp = world // (tp * pp * cp)
    if world % (etp * ep * pp):
        out.append(f"world size {world} is not divisible by etp*ep*pp = {etp}*{ep}*{pp}")
    if ep > 1 and a.get("num_experts", 0) % ep:
        out.append(f"num_experts ({a.get('num_experts', 0)}) is not divisible by ep ({ep})")
    if a.get("pipeline_model_parallel_layout") is not None:
        out += layout_problems(a, layers, pp)
    elif a.get("account_for_embedding_in_pipeline_split") or a.get("account_for_loss_in_pipeline_split"):
        from planner.estimate.pipeline_split import split_problems

        key = ("account", bool(a.get("account_for_embedding_in_pipeline_split")),
               bool(a.get("account_for_loss_in_pipeline_split")))
        out += split_problems(key, layers, pp, a.get("num_virtual_stages_per_pipeline_rank") or 1)
    else:
        if layers % pp:
            out.append(f"num_layers ({layers}) is not divisible by pp ({pp})")
        lpv = a.get("num_layers_per_virtual_pipeline_stage")
        if lpv is not None and (pp == 1 or (layers // pp) % lpv):
            out.append(f"virtual stages need pp > 1 and layers per stage ({layers // pp}) divisible by {lpv}")
    if a["global_batch_size"] % (a["micro_batch_size"] * dp):
        out.append(f"global batch {a['global_batch_size']} is not divisible by micro batch "
                   f"{a['micro_batch_size']} x DP {dp}")
    if cp > 1 and a["seq_length"] % (2 * cp):
        out.append(f"seq_length ({a['seq_length']}) is not divisible by 2*cp = {2 * cp}")
    if heads % tp:
        out.append(f"num_attention_heads ({heads}) is not a multiple of tp ({tp})")
    if not a.get("multi_latent_attention") and groups % tp and tp % groups:
        out.append(f"num_query_groups ({groups}) and tp ({tp}) do not divide one another")
    out += _switch_problems(a, tp)
    return out


def _switch_problems(a: dict, tp: int) -> list[str]:
    """Rules between switches (§4.1): recompute method and layers go with `full` only; sequence
    parallelism needs tp > 1 (Megatron turns it off with a warning); FP8 on a bf16/fp16 model;
    --overlap-param-gather needs the distributed optimizer and --overlap-grad-reduce; CPU optimizer
    offload needs the precision-aware optimizer; --tp-comm-overlap needs sequence parallelism."""
    out = []
    full = a.get("recompute_granularity") == "full"
    if full and not (a.get("recompute_method") and a.get("recompute_num_layers")):
        out.append("--recompute-granularity full needs --recompute-method and --recompute-num-layers")
    if not full and ("recompute_method" in a or "recompute_num_layers" in a):
        out.append("--recompute-method/--recompute-num-layers go with --recompute-granularity full only")
    if a.get("sequence_parallel") and tp == 1:
        out.append("--sequence-parallel needs tp > 1")
    if a.get("fp8_format") and not (a.get("bf16") or a.get("fp16")):
        out.append("--fp8-format needs --bf16 or --fp16")
    if a.get("fp4_format") and a.get("fp8_format"):
        out.append("--fp4-format and --fp8-format cannot be used together")
    if a.get("fp4_format") and not (a.get("bf16") or a.get("fp16")):
        out.append("--fp4-format needs --bf16 or --fp16")
    if a.get("fp4_param_gather") and not a.get("fp4_format"):
        out.append("--fp4-param-gather needs --fp4-format")
    if a.get("fp8_param_gather") and not (a.get("use_distributed_optimizer") or a.get("use_megatron_fsdp")):
        out.append("--fp8-param-gather needs --use-distributed-optimizer or --use-megatron-fsdp")
    if a.get("fp8_param_gather") and a.get("optimizer_cpu_offload") and a.get("fp8_recipe", "delayed") != "delayed":
        out.append("--fp8-param-gather with --optimizer-cpu-offload needs --fp8-recipe delayed")
    if a.get("overlap_param_gather") and not ((a.get("use_distributed_optimizer") or a.get("use_megatron_fsdp"))
                                              and a.get("overlap_grad_reduce")):
        out.append("--overlap-param-gather needs --use-distributed-optimizer (or --use-megatron-fsdp) "
                   "and --overlap-grad-reduce")
    if a.get("use_megatron_fsdp") and a.get("ckpt_format") != "fsdp_dtensor":
        out.append("--use-megatron-fsdp needs --ckpt-format fsdp_dtensor")
    if a.get("use_megatron_fsdp") and a.get("optimizer_cpu_offload"):
        out.append("--use-megatron-fsdp is not planned with --optimizer-cpu-offload")
    if a.get("optimizer_cpu_offload") and not a.get("use_precision_aware_optimizer"):
        out.append("--optimizer-cpu-offload needs --use-precision-aware-optimizer")
    if a.get("tp_comm_overlap") and not a.get("sequence_parallel"):
        out.append("--tp-comm-overlap needs --sequence-parallel")
    return out + _core_config_problems(a, tp)


def _core_config_problems(a: dict, tp: int) -> list[str]:
    """Rules of Megatron-Core's TransformerConfig.__post_init__ (megatron/core/transformer/transformer_config.py
    @ d98e8a6) that Megatron's own parser met on exported plans (benchmarks/megatron_parser_results.md):
    experts with linear biases need expert tensor parallelism 1 ("Bias in Moe is only supported when
    ETP==1"); FP8 delayed scaling cannot recompute moe_act or layernorm ("Delayed scaling does not
    support moe_act and layernorm recompute for fp8"); the expert bias takes sigmoid scores only."""
    out = []
    if a.get("num_experts") and not a.get("disable_bias_linear") and a.get("expert_tensor_parallel_size", tp) > 1:
        out.append("experts with linear biases need --expert-tensor-parallel-size 1 (Megatron-Core: 'Bias in Moe "
                   "is only supported when ETP==1')")
    mods = str(a.get("recompute_modules", "core_attn")).split()
    if (a.get("fp8_format") and a.get("fp8_recipe", "delayed") == "delayed"
            and a.get("recompute_granularity") == "selective" and {"moe_act", "layernorm"} & set(mods)):
        out.append("--fp8-recipe delayed cannot recompute moe_act or layernorm (Megatron-Core: 'Delayed scaling "
                   "does not support moe_act and layernorm recompute for fp8')")
    if a.get("moe_router_enable_expert_bias") and a.get("moe_router_score_function", "softmax") != "sigmoid":
        out.append("--moe-router-enable-expert-bias needs --moe-router-score-function sigmoid")
    return out
