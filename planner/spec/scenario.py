"""Scenario: model + cluster + training workload + budget + search options (PRODUCT.md contract)."""

from typing import Literal

from pydantic import Field, StrictBool, ValidationError, field_validator, model_validator

from planner.spec.base import Int, Name, PosFloat, PosInt, Strict
from planner.spec.hardware import Cluster
from planner.spec.model import ModelSpec

Framework = Literal["deepspeed", "megatron", "torchtitan"]
PrecisionName = Literal["fp32", "fp16", "bf16", "fp8"]
OffloadTarget = Literal["none", "cpu", "nvme"]
Recompute = Literal["none", "selective", "full"]
Optimizer = Literal["adamw", "adam", "adam8bit", "sgd", "adafactor", "muon"]
Objective = Literal["throughput", "time", "cost"]

PLAN_FIELDS = ("framework", "precision", "dp", "tp", "pp", "cp", "ep", "etp", "vpp", "sp", "zero",
               "offload", "offload_params", "recompute", "mbs", "ga")
# search.fixed pins any field of the JSON plan object, its global_batch too (one of training's batches)
FIXED_FIELDS = PLAN_FIELDS + ("global_batch",)


MAX_BATCHES = 4096  # batch sizes one search may try (each multiplies the plan table)


class BatchRange(Strict):
    """`min`, `min + step`, ... up to `max` (step defaults to min: {min: 512, max: 4096} tries 512, 1024, ...,
    4096)."""

    min: PosInt = Field(le=2**30)
    max: PosInt = Field(le=2**30)
    step: PosInt | None = Field(None, le=2**30)

    @model_validator(mode="after")
    def _check(self):
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self

    def values(self) -> tuple[int, ...]:
        return tuple(range(self.min, self.max + 1, self.step or self.min))


class Training(Strict):
    seq_len: PosInt = Field(le=2**24)
    global_batch: PosInt | list[PosInt] | BatchRange | None = Field(
        description="sequences per optimizer step: one number, a list, or {min, max[, step]} to search it")
    tokens_per_step: BatchRange | None = Field(
        None, description="instead of global_batch: tokens per optimizer step {min, max[, step]}, in tokens; "
                          "the batches searched are the multiples of step / seq_len in the range")
    tokens: PosFloat = Field(description="tokens to train, for days and cost", le=1e16)
    optimizer: Optimizer = "adamw"

    @field_validator("global_batch", "tokens_per_step", mode="before")
    @classmethod
    def _one_error_for_ranges(cls, value):
        """A mapping is a range: check it as one, so that a bad range gets its own message only."""
        if isinstance(value, dict):
            try:
                return BatchRange.model_validate(value)
            except ValidationError as exc:
                raise ValueError("expected {min, max[, step]} with positive integers, min <= max: " + "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'range'}: {e['msg']}" for e in exc.errors())) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _batch_from_tokens(cls, data):
        """With tokens_per_step, global_batch may be left out (it is required otherwise)."""
        if isinstance(data, dict) and "tokens_per_step" in data and "global_batch" not in data:
            return {**data, "global_batch": None}
        return data

    @model_validator(mode="after")
    def _check_batch(self):
        if (self.global_batch is None) == (self.tokens_per_step is None):
            raise ValueError("give exactly one of global_batch (sequences per step) and tokens_per_step")
        if isinstance(self.global_batch, list) and (not self.global_batch or max(self.global_batch) > 2**30):
            raise ValueError("global_batch: expected a non-empty list of batch sizes up to 2^30")
        if self.batches and self.batches[-1] > 2**30:
            raise ValueError("global_batch: at most 2^30 sequences per step")
        if not self.batches:
            raise ValueError(f"tokens_per_step: no whole number of {self.seq_len}-token sequences in the range")
        if len(self.batches) > MAX_BATCHES:
            raise ValueError(f"global_batch: {len(self.batches):,} batch sizes to search, at most {MAX_BATCHES:,} "
                             "(give a larger step)")
        return self

    @property
    def batches(self) -> tuple[int, ...]:
        """Every global batch (sequences per step) the search may choose, ascending."""
        gb, tps = self.global_batch, self.tokens_per_step
        if tps is not None:
            step = max(1, (tps.step or tps.min) // self.seq_len)
            lo = -(-tps.min // self.seq_len)  # the first multiple of step at or above min tokens
            lo, hi = -(-lo // step) * step, tps.max // self.seq_len
            return tuple(range(lo, hi + 1, step)) if lo <= hi else ()
        if isinstance(gb, int):
            return (gb,)
        return tuple(sorted(set(gb))) if isinstance(gb, list) else gb.values()

    @property
    def batch_text(self) -> str:
        """The allowed batches in words: '512', '512, 1,024' or '512 to 4,096 step 512'."""
        b = self.batches
        if len(b) <= 3:
            return ", ".join(f"{x:,}" for x in b)
        step = b[1] - b[0]
        regular = all(y - x == step for x, y in zip(b, b[1:]))
        return f"{b[0]:,} to {b[-1]:,}" + (f" step {step:,}" if regular else f" ({len(b)} sizes)")


class Budget(Strict):
    max_usd: PosFloat | None = None
    max_days: PosFloat | None = None
    max_gpus: PosInt | None = None


class SearchOptions(Strict):
    frameworks: list[Framework] = Field(default_factory=lambda: ["deepspeed", "megatron", "torchtitan"], min_length=1)
    precision: list[PrecisionName] = Field(default_factory=lambda: ["bf16", "fp8"], min_length=1)
    zero: list[Literal[0, 1, 2, 3]] = Field(default_factory=lambda: [0, 1, 2, 3], min_length=1)
    offload: list[OffloadTarget] = Field(default_factory=lambda: ["none", "cpu", "nvme"], min_length=1)
    offload_params: list[OffloadTarget] = Field(default_factory=lambda: ["none", "cpu", "nvme"], min_length=1)
    recompute: list[Recompute] = Field(default_factory=lambda: ["none", "selective", "full"], min_length=1)
    micro_batch: list[PosInt] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1)
    tp: list[PosInt] | None = None
    pp: list[PosInt] | None = None
    cp: list[PosInt] | None = None
    ep: list[PosInt] | None = None
    vpp: list[PosInt] | None = None
    uneven_pipeline: bool = Field(True, description="allow layers not divisible by pp*vpp (the first stages "
                                  "take one more layer), as real runs do (Llama-3.1-405B: 126 layers on pp 16)")
    fixed: dict[str, object] = Field(default_factory=dict, description="pin any plan field")

    @model_validator(mode="after")
    def _check_fixed(self):
        from planner.spec.plan import Plan  # the plan's own validation names bad values

        for key in self.fixed:
            if key not in FIXED_FIELDS:
                import difflib
                near = difflib.get_close_matches(key, FIXED_FIELDS, n=1)
                hint = f"; did you mean '{near[0]}'?" if near else ""
                raise ValueError(f"unknown plan field '{key}' in fixed (expected one of {', '.join(FIXED_FIELDS)}){hint}")
        gb = self.fixed.get("global_batch")
        if "global_batch" in self.fixed and (isinstance(gb, bool) or not isinstance(gb, int) or not 1 <= gb <= 2**30):
            raise ValueError(f"fixed.global_batch: expected a positive whole number of sequences, got {gb!r}")
        pinned = {k: v for k, v in self.fixed.items() if k != "global_batch"}
        try:  # type-check the pinned values (nothing pinned: nothing to check, and Plan's model need not be built)
            if pinned:
                Plan.model_validate(pinned)
        except ValidationError as exc:  # name the pinned key: search.fixed.tp, not search.tp
            e = exc.errors()[0]
            raise ValueError(f"fixed.{'.'.join(map(str, e['loc']))}: {e['msg']}") from None
        return self


class Runtime(Strict):
    """What the software stack does, where it changes time or memory. Defaults describe a current,
    tuned stack or each framework's own default ('auto'); set them to reproduce a given run."""

    flash_attention: StrictBool = Field(True, description="fused attention (FlashAttention / cuDNN): no s x s tensors")
    tp_comm_overlap: StrictBool = Field(True, description="TP collectives overlapped with GEMMs (Megatron "
                                  "--tp-comm-overlap, torchtitan async TP); DeepSpeed AutoTP never overlaps here")
    ep_comm_overlap: StrictBool = Field(False, description="expert-parallel all-to-all of one micro-batch overlapped "
                                  "with another's compute (DeepSeek DualPipe, Megatron-Core "
                                  "--overlap-moe-expert-parallel-comm); off by default: not every stack does it")
    fp8_recipe: Literal["delayed", "current", "mxfp8", "nvfp4"] = Field(
        "delayed", description="the Transformer Engine quantisation recipe of fp8 plans: 'delayed' (DelayedScaling, "
        "Megatron --fp8-recipe delayed, its default), 'current' per-tensor scaling (Float8CurrentScaling; "
        "NeMo/Megatron-Bridge 'FP8-CS' recipes, torchao tensorwise), which reads each tensor once more for its "
        "amax, 'mxfp8' (MXFP8BlockScaling, Megatron --fp8-recipe mxfp8, Megatron-Bridge 'FP8-MX'; Blackwell "
        "only): a scale per 32 elements, row-wise and column-wise copies, slower GEMM kernels; or 'nvfp4' "
        "(NVFP4BlockScaling, which TE runs through the same fp8_autocast; Megatron --fp4-format e2m1 --fp4-recipe "
        "nvfp4, Megatron-Bridge 'NVFP4'; GPUs with FP4 tensor cores, compute capability >= 10.0): the linear "
        "layers' GEMMs in FP4 E2M1 with an E4M3 scale per 16 elements and a per-tensor FP32 scale, random "
        "Hadamard transforms on the weight-gradient inputs, stochastic rounding of gradients; attention, the "
        "output layer and the router stay in bf16")
    fp8_attention: StrictBool = Field(
        False, description="Megatron fp8 plans only: dot-product attention in FP8 (Transformer Engine recipe "
        "fp8_dpa, set from Megatron-Core TransformerConfig.fp8_dot_product_attention; Megatron-Bridge / NeMo "
        "fp8_dot_product_attention, MLPerf FP8_DPA=1). Off by default, as in TE and Megatron-Core. cuDNN's FP8 "
        "fused attention, Hopper and Blackwell only (compute capability 9.0, 10.0, 10.3): the kernel at the "
        "FP8 / BF16 time NVIDIA's cuDNN benchmark measured on that architecture, plus the casts of Q, K, V, O, "
        "dO and dQ, dK, dV (planner/estimate/fp8_attention.py). Combines with every fp8_recipe (NVFP4 linear "
        "layers with FP8 attention: TE >= 2.8; under mxfp8, cuDNN's MXFP8 attention as TE >= 2.16 runs it)")
    moe_dispatcher: Literal["alltoall", "allgather", "deepep", "hybridep"] = Field(
        "alltoall", description="Megatron's MoE token dispatcher (--moe-token-dispatcher-type alltoall / allgather, "
        "or flex with --moe-flex-dispatcher-backend deepep / hybridep). alltoall: what the NeMo / Megatron-Bridge "
        "model providers set and the planner's export writes (Megatron-LM's own flag default is allgather); "
        "deepep / hybridep: fused permute + all-to-all kernels (DeepEP; HybridEP on GB200/GB300 NVL72) that send each "
        "token once per destination node (RDMA) and GPU (NVLink), timed at the kernels' measured rates "
        "(planner/estimate/ep_dedup.py). Every one "
        "copies the token counts to the host in each MoE layer's forward unless padded to capacity "
        "(moe_pad_to_capacity); they differ in the kernels issued after that wait (planner/estimate/host.py)")
    moe_pad_to_capacity: StrictBool = Field(
        False, description="Megatron only, with model moe.capacity_factor set: pad every expert's input to its "
        "capacity (--moe-pad-expert-input-to-capacity, off by default; Megatron-Bridge 25.09 token-drop recipes "
        "set it): static split sizes, so the dispatcher never waits for the token counts on the host")
    moe_fused_grouped_mlp: StrictBool = Field(
        False, description="Megatron MXFP8 plans on compute capability 10.x only: the expert MLP as one fused "
        "operation (Megatron-Core use_transformer_engine_op_fuser with moe_mlp_glu_interleave_size 32 and "
        "NVTE_CUTEDSL_FUSED_GROUPED_MLP=1; Megatron-Bridge cutedsl_fused_grouped_mlp, scripts/performance/utils/"
        "overrides.py at v0.5.0): Transformer Engine's ForwardGroupedMLP_CuTeGEMMSwiGLU_MXFP8 / "
        "BackwardGroupedMLP_CuTeGEMMDSwiGLU_MXFP8 run cuDNN-frontend grouped GEMMs whose epilogue applies the "
        "(clamped) gated activation, the routing probabilities and fc1 / fc2 biases, so the experts' separate "
        "activation pass, clamp, bias loop and clamped copy are gone (planner/estimate/compute_moe.py "
        "fused_grouped_mlp). Off by default, as in Megatron-Core; needs expert tensor parallelism 1")
    moe_expert_rank_capacity_factor: PosFloat | None = Field(
        None, description="Megatron with moe_dispatcher hybridep and moe_fused_grouped_mlp only: a static bound on "
        "the tokens each expert-parallel rank receives, tokens x top_k x this factor (Megatron-Core "
        "moe_expert_rank_capacity_factor, default None; _HybridEPManager.setup_metadata in "
        "megatron/core/transformer/moe/token_dispatcher.py at d0b3b7754, the Megatron-LM of Megatron-Bridge v0.5.0; "
        "TransformerConfig requires use_transformer_engine_op_fuser and HybridEP). HybridEP then sizes its "
        "buffers without copying the counts to the host, and the fused grouped GEMMs read the per-expert offsets "
        "on the device: no host wait in the MoE forward (host.moe_forward_syncs), so a full_iteration CUDA graph "
        "can capture a dropless step (Megatron-Bridge v0.5.0+ full-iteration MoE presets set 1.5). Tokens over "
        "the bound are dropped; with balanced routing none are. Expert GEMMs run on the real rows")
    moe_hybridep_num_sms: Int = Field(
        16, ge=1, le=256, description="SMs the HybridEP dispatch and combine kernels run on (Megatron-Core "
        "--moe-hybridep-num-sms, TransformerConfig default 16; the Megatron-Bridge performance recipes set 32, "
        "scripts/performance/utils/overrides.py). Picks the row of HybridEP's measured rates "
        "(planner/estimate/ep_dedup.py); read only with moe_dispatcher hybridep")
    moe_load_imbalance: float = Field(1.0, ge=1.0, le=64.0, description="routed tokens on the busiest expert-parallel "
                                      "rank / the balanced share; 1.0 = balanced (benchmarks with Megatron "
                                      "--moe-router-force-load-balancing). Scales expert GEMMs and the all-to-all")
    attention_kernel: Literal["auto", "fa2", "fa3"] = Field(
        "auto", description="fused attention kernel: 'fa3' Hopper-native (FlashAttention-3, cuDNN / Transformer "
        "Engine fused attention), 'fa2' FlashAttention-2 (PyTorch SDPA's flash backend), slower on Hopper and "
        "Blackwell; 'auto' = the framework's default (Megatron fa3, torchtitan and DeepSpeed fa2)")
    cp_comm: Literal["auto", "p2p", "allgather"] = Field(
        "auto", description="context-parallel K/V exchange: 'p2p' passes one K/V chunk per ring step behind that "
        "step's attention (Transformer Engine cp_comm_type='p2p', torch CP 'alltoall'), 'allgather' gathers all "
        "K/V once and waits for it after the first step (torch CP 'allgather'); 'auto' = the framework's "
        "default (torchtitan --experimental.context_parallel_rotate_method 'allgather', Megatron-Core 'p2p')")
    compile: StrictBool = Field(False, description="torch.compile on (torchtitan [compile] enable): norms, rotary "
                          "and activations run as fused kernels, and async TP can overlap. Off (torchtitan v0.2.2's "
                          "default, config/job_config.py Compile.enable = False; its llama3 8B and 70B configs keep "
                          "it off, 405B turns it on), torchtitan runs them eagerly, one kernel per op. Megatron "
                          "always uses fused Transformer Engine kernels")
    dp_comm_overlap: StrictBool = Field(True, description="gradient reduction overlapped with the last micro-batch's "
                                  "backward and the parameter all-gather with the first forward (Megatron "
                                  "--overlap-grad-reduce --overlap-param-gather, DeepSpeed overlap_comm, FSDP)")
    nccl_min_ctas: Int | None = Field(
        None, ge=1, le=64, description="the fewest CTAs (channels) an NCCL ring collective runs on: NCCL_MIN_CTAS, "
        "or NCCL_MIN_NCHANNELS where only that is set (NCCL src/graph/connect.cc copies the ring channels up to "
        "max(NCCL_MIN_NCHANNELS, config minCTAs); the environment overrides a communicator's own config, "
        "src/init.cc envConfigOverride). Each CTA holds an SM for the whole collective, so overlapped data-parallel "
        "traffic slows the compute beside it by this share of the GPU's SMs (planner.estimate.comm.nccl_sm_share). "
        "None = NCCL picks the count from the topology: not modelled. The MLPerf NeMo configs set 16")
    grad_reduce_dtype: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="dtype of the gradient buffer that accumulates micro-batches and is reduced. auto: "
        "each framework's default: Megatron-LM fp32 for bf16/fp8 (megatron/training/arguments.py turns on "
        "--accumulate-allreduce-grads-in-fp32 unless --grad-reduce-in-bf16), torchtitan fp32 (FSDP2 "
        "MixedPrecisionPolicy.reduce_dtype = mixed_precision_reduce 'float32'), DeepSpeed the model dtype "
        "(data_types.grad_accum_dtype). NeMo / Megatron-Bridge performance recipes set "
        "grad_reduce_in_fp32 = False: bf16")
    expandable_segments: Literal["auto"] | bool = Field(
        "auto", description="PyTorch caching allocator with PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "
        "(less memory held beyond what is allocated). auto: on for torchtitan (its run_train.sh sets it), "
        "off for DeepSpeed and Megatron-LM (PyTorch's default)")
    fp8_param_gather: StrictBool = Field(
        False, description="Megatron fp8 only: keep the GEMM weights in FP8 (--fp8-param-gather, Megatron-Bridge "
        "fp8_param_gather; off by default, set by NeMo / Megatron-Bridge FP8 performance recipes): no 16-bit "
        "copy of them, and FP8 parameter all-gathers")
    cross_entropy_impl: Literal["auto", "native", "te"] = Field(
        "auto", description="Megatron's loss kernel (--cross-entropy-fusion-impl with --cross-entropy-loss-fusion). "
        "native: Megatron-Core's vocab-parallel cross entropy, an fp32 copy of the logits beside the bf16 ones; "
        "te: Transformer Engine's parallel_cross_entropy (Triton), which writes the gradient into the bf16 "
        "logits in forward and keeps only them (Megatron-Bridge performance recipes set it). auto: native")
    recompute_modules: list[Literal["core_attn", "moe_act", "layernorm", "mla_up_proj", "mlp", "moe",
                                    "shared_experts"]] | None = Field(
        None, description="Megatron with recompute = selective only: the modules recomputed "
        "(--recompute-modules, Megatron-Core >= 0.12). null: Megatron-Core's default [core_attn]. core_attn: "
        "attention scores/softmax; moe_act: the experts' activation (its output, the second expert GEMM's "
        "input); layernorm: norm outputs where the norm is a separate module (MoE layers' pre-MLP norm, MLA's "
        "input norm); mla_up_proj: MLA's query/key/value up-projections; mlp: the dense MLP; moe: the whole "
        "MoE block; shared_experts: the shared experts")
    recompute_num_layers: Int | None = Field(
        None, ge=1, le=100000, description="Megatron with recompute = full only: recompute just the first N layers "
        "of each pipeline chunk (--recompute-method block --recompute-num-layers N, Megatron-Core recompute.py; "
        "Megatron-Bridge recipes' recompute_num_layers); the other layers keep all their activations and are not "
        "recomputed. null: every layer (--recompute-method uniform --recompute-num-layers 1)")
    activation_offload_layers: Int = Field(
        0, ge=0, le=100000, description="Megatron only: transformer layers whose activations are offloaded to host "
        "memory (Megatron-Core cpu_offloading_num_layers with cpu_offloading_activations; Megatron-Bridge "
        "performance recipes set it for Megatron-FSDP on GB200). Megatron-Core allows it only without pipeline "
        "parallelism and without recompute (transformer_config.py), so other plans ignore it. Default 0: off")
    keep_fp8_transpose_cache: StrictBool = Field(
        False, description="Megatron-FSDP (megatron, zero 3) with fp8 only: keep each GEMM weight's FP8 transpose "
        "between forward and backward (DistributedDataParallelConfig.keep_fp8_transpose_cache, default False: "
        "discarded after each unit's use, 1 byte per parameter when kept, Megatron-FSDP README)")
    moe_router_probs: Literal["auto", "activation", "combine"] = Field(
        "auto", description="where the router probabilities weight the expert outputs, which decides what a MoE "
        "layer keeps for backward. activation: inside the experts' activation (Megatron-Core >= 0.13, "
        "weighted_bias_swiglu; the combine step then keeps nothing); combine: at the un-permutation after the "
        "combine all-to-all, which keeps the combined tokens for the probabilities' gradient (Megatron-Core "
        "<= 0.12 moe_utils.unpermute(probs=...), NeMo <= 25.04). auto: activation for Megatron, combine otherwise")
    account_for_embedding_in_pipeline_split: StrictBool = Field(
        False, description="Megatron --account-for-embedding-in-pipeline-split: the embedding counts as one layer "
        "in the pipeline split, so the first virtual stage holds one decoder layer fewer (layers + 1 [+ 1 with the "
        "loss] must divide by pp, and that per rank by vpp; transformer_block.get_num_layers_to_build). Off: the "
        "planner's own split (the first chunks take the remainder)")
    account_for_loss_in_pipeline_split: StrictBool = Field(
        False, description="Megatron --account-for-loss-in-pipeline-split: the loss (final norm, output layer) "
        "counts as one layer, the last virtual stage holds one decoder layer fewer")
    pipeline_layout: str | None = Field(
        None, description="Megatron --pipeline-model-parallel-layout: the virtual stages in chunk order separated "
        "by '|', E embedding, t decoder layer, L loss, (...)*n and x*n repeats, e.g. 'Et*3|(tt|)*29t*2L' "
        "(pipeline_parallel_layer_layout.py); the plan's pp x vpp must be its stage count. Excludes the "
        "account_for_* keys")
    cuda_graph_impl: Literal["none", "local", "transformer_engine"] = Field(
        "none", description="Megatron only: CUDA graph capture (--cuda-graph-impl; Megatron-Bridge recipes' "
        "cuda_graph_impl). local: Megatron-Core's CudaGraphManager (cuda_graphs.py), per transformer layer or the "
        "whole iteration (cuda_graph_scope full_iteration); transformer_engine: Transformer Engine's "
        "make_graphed_callables per layer and micro-batch, whole layers or the parts cuda_graph_scope names. "
        "Counted in memory as other.cuda_graph_buffers. Default none: no graphs")
    cuda_graph_scope: list[Literal["full_iteration", "attn", "mlp", "moe", "moe_router", "moe_preprocess"]] = Field(
        [], description="Megatron --cuda-graph-scope: empty = whole transformer layers; full_iteration (local only) "
        "the forward and backward of every micro-batch; attn, mlp (dense layers), moe, moe_router, moe_preprocess "
        "(MoE layers; transformer_engine only)")

    @model_validator(mode="after")
    def _check_cuda_graphs(self):
        """Megatron-LM arguments.py --cuda-graph-scope: full_iteration only with the local implementation,
        the partial scopes only with transformer_engine; a scope needs an implementation."""
        scope = set(self.cuda_graph_scope)
        if scope and self.cuda_graph_impl == "none":
            raise ValueError("runtime.cuda_graph_scope: needs runtime.cuda_graph_impl local or transformer_engine")
        if "full_iteration" in scope and self.cuda_graph_impl != "local":
            raise ValueError("runtime.cuda_graph_scope: full_iteration needs runtime.cuda_graph_impl local")
        if scope - {"full_iteration"} and self.cuda_graph_impl != "transformer_engine":
            raise ValueError("runtime.cuda_graph_scope: attn, mlp, moe, moe_router and moe_preprocess need "
                             "runtime.cuda_graph_impl transformer_engine")
        return self


def pinned_batch_problem(training: Training, search: SearchOptions) -> str | None:
    """search.fixed.global_batch must be one of the batches training allows (a scenario, a purchase workload)."""
    gb = search.fixed.get("global_batch")
    if gb is not None and gb not in training.batches:
        return (f"search.fixed.global_batch: {gb:,} is not one of the batches training allows "
                f"({training.batch_text})")
    return None


class Scenario(Strict):
    name: Name = "scenario"
    model: ModelSpec
    cluster: Cluster
    training: Training
    budget: Budget = Budget()
    search: SearchOptions = SearchOptions()
    runtime: Runtime = Runtime()
    objective: Objective = "throughput"
    top: PosInt = Field(10, le=10000)

    @model_validator(mode="after")
    def _pin_global_batch(self):
        """search.fixed.global_batch: one of the batches training allows, which becomes the only one."""
        gb = self.search.fixed.get("global_batch")
        if gb is None:
            return self
        problem = pinned_batch_problem(self.training, self.search)
        if problem:
            raise ValueError(problem)
        pinned = self.training.model_copy(update={"global_batch": gb, "tokens_per_step": None})
        object.__setattr__(self, "training", pinned)  # frozen model: set once, while validating
        return self

    @model_validator(mode="after")
    def _check_moe_padding(self):
        """Megatron-Core asserts a capacity factor when padding to capacity (token_dispatcher.py,
        MoEAlltoAllTokenDispatcher: drop_and_pad needs moe_expert_capacity_factor) and refuses padding
        with the DeepEP flex backend (transformer_config.py __post_init__, main @ d98e8a6)."""
        if self.runtime.moe_pad_to_capacity and (not self.model.moe or self.model.moe.capacity_factor is None):
            raise ValueError("runtime.moe_pad_to_capacity: needs model.moe.capacity_factor (padding is to the "
                             "capacity of each expert; Megatron --moe-pad-expert-input-to-capacity requires "
                             "--moe-expert-capacity-factor)")
        if self.runtime.moe_pad_to_capacity and self.runtime.moe_dispatcher == "deepep":
            raise ValueError("runtime.moe_pad_to_capacity: not with moe_dispatcher deepep (Megatron-Core "
                             "TransformerConfig: 'Flex token dispatcher with deepep backend does not support "
                             "moe_pad_expert_input_to_capacity'); use alltoall or hybridep")
        return self

    @model_validator(mode="after")
    def _check_full_iteration_moe(self):
        """A full-iteration CUDA graph (Megatron-Core full_cuda_graph.py, torch.cuda.graph capture of the whole
        step) cannot hold a MoE dispatcher that waits on the host for its token counts: dropless or unpadded,
        MoEAlltoAllTokenDispatcher copies them device-to-host and synchronises every forward
        (token_dispatcher.py _maybe_dtoh_and_synchronize at 92c8482e; the allgather, DeepEP and unpadded
        HybridEP dispatchers likewise: host.moe_forward_syncs), which stream capture does not allow, and a
        replay would reuse the captured split sizes. Megatron's argument checks do not catch it; the capture
        fails. Only padding to capacity with the alltoall or hybridep dispatcher removes the wait."""
        from planner.estimate.host import PADDED_NO_SYNC_DISPATCHERS

        rt, moe = self.runtime, self.model.moe
        if "full_iteration" not in rt.cuda_graph_scope or not moe:
            return self
        if rt.moe_pad_to_capacity and moe.capacity_factor is not None and rt.moe_dispatcher in PADDED_NO_SYNC_DISPATCHERS:
            return self
        if rt.moe_expert_rank_capacity_factor is not None:  # _check_expert_rank_capacity: hybridep + fused MLP
            return self
        raise ValueError("runtime.cuda_graph_scope: full_iteration cannot capture this MoE model's step: its token "
                         "dispatcher waits on the host for the token counts in every MoE layer (dropless or "
                         "unpadded); set model.moe.capacity_factor with runtime.moe_pad_to_capacity and "
                         "runtime.moe_dispatcher alltoall or hybridep, or runtime.moe_expert_rank_capacity_factor "
                         "(hybridep with moe_fused_grouped_mlp), or use a per-layer scope")

    @model_validator(mode="after")
    def _check_expert_rank_capacity(self):
        """runtime.moe_expert_rank_capacity_factor: Megatron-Core's TransformerConfig.__post_init__ refuses it
        without use_transformer_engine_op_fuser or with a flex backend other than hybridep
        (megatron/core/transformer/transformer_config.py at d0b3b7754)."""
        rt = self.runtime
        if rt.moe_expert_rank_capacity_factor is None:
            return self
        if not rt.moe_fused_grouped_mlp or rt.moe_dispatcher != "hybridep":
            raise ValueError("runtime.moe_expert_rank_capacity_factor: needs runtime.moe_fused_grouped_mlp true and "
                             "runtime.moe_dispatcher hybridep (Megatron-Core requires use_transformer_engine_op_fuser "
                             "and the HybridEP backend)")
        return self

    @model_validator(mode="after")
    def _check_pipeline_split(self):
        """Megatron's checks of a layout that do not depend on pp (megatron_layout.layout_problems:
        symbols, E first, L last, every decoder layer once, as many 'm' as model.mtp_layers) and its clash with the account_for_* flags
        (TransformerConfig.__post_init__: "pipeline_model_parallel_layout cannot be set with other
        pipeline layout arguments")."""
        rt = self.runtime
        if rt.pipeline_layout is None:
            return self
        if rt.account_for_embedding_in_pipeline_split or rt.account_for_loss_in_pipeline_split:
            raise ValueError("runtime.pipeline_layout: cannot be combined with runtime.account_for_embedding_in_"
                             "pipeline_split / account_for_loss_in_pipeline_split (Megatron refuses both)")
        from planner.frameworks.megatron_layout import layout_problems

        problems = layout_problems({"pipeline_model_parallel_layout": rt.pipeline_layout,
                                    "mtp_num_layers": self.model.mtp_layers}, self.model.layers, None)
        problems = [p.replace("--mtp-num-layers is", "model.mtp_layers is") for p in problems]
        if problems:
            raise ValueError(f"runtime.pipeline_layout: {rt.pipeline_layout!r}: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _check_fp8_attention(self):
        """runtime.fp8_attention: TE's FP8 attention runs only in its FusedAttention (cuDNN) backend (recipe
        docstring: "FP8 DPA currently is only supported in the FusedAttention backend"), whose FP8 kernels are
        for Hopper and Blackwell; the planner times it from cuDNN measurements on compute capability 9.0, 10.0
        and 10.3 (fp8_attention.CUDNN_SDPA_MS). It needs fp8 plans of Megatron (Transformer Engine) among the
        searched ones; each other plan is refused by the rules (frameworks/rules.py)."""
        from planner.estimate.fp8_attention import measured_capability

        rt = self.runtime
        if not rt.fp8_attention:
            return self
        gpu = self.cluster.node.gpu
        if measured_capability(gpu) is None:
            raise ValueError(f"runtime.fp8_attention: needs an NVIDIA Hopper or Blackwell data-centre GPU "
                             f"(compute capability 9.0, 10.0 or 10.3: cuDNN's FP8 fused attention); '{gpu.name}' "
                             f"has {gpu.compute_capability}")
        if not rt.flash_attention or rt.attention_kernel == "fa2":
            raise ValueError("runtime.fp8_attention: needs Transformer Engine's fused attention: "
                             "runtime.flash_attention true and runtime.attention_kernel auto or fa3")
        if "fp8" not in self.search.precision or "megatron" not in self.search.frameworks:
            raise ValueError("runtime.fp8_attention: applies to Megatron fp8 plans only: search.precision must "
                             "include fp8 and search.frameworks megatron")
        return self

    @model_validator(mode="after")
    def _check_fused_grouped_mlp(self):
        """runtime.moe_fused_grouped_mlp: Transformer Engine registers the fused grouped MLP only on compute
        capability 10.x (transformer_engine/pytorch/ops/fused/forward_grouped_mlp.py at 4220403e8, is_supported:
        get_device_compute_capability()[0] != 10 -> False) and only for MXFP8 (the fused op class is
        ..._MXFP8); Megatron-Core builds it only for MoE experts (megatron/core/transformer/moe/experts.py)."""
        rt = self.runtime
        if not rt.moe_fused_grouped_mlp:
            return self
        gpu = self.cluster.node.gpu
        cc = gpu.compute_capability if gpu.vendor == "nvidia" else None
        if cc is None or int(cc) != 10:
            raise ValueError(f"runtime.moe_fused_grouped_mlp: needs an NVIDIA GPU of compute capability 10.x "
                             f"(B200, B300, GB200, GB300); '{gpu.name}' has {gpu.compute_capability}")
        if not self.model.moe:
            raise ValueError("runtime.moe_fused_grouped_mlp: needs an MoE model (model.moe)")
        if rt.fp8_recipe != "mxfp8":
            raise ValueError(f"runtime.moe_fused_grouped_mlp: needs runtime.fp8_recipe mxfp8 (the fused kernels "
                             f"are MXFP8 only), not {rt.fp8_recipe!r}")
        if "fp8" not in self.search.precision or "megatron" not in self.search.frameworks:
            raise ValueError("runtime.moe_fused_grouped_mlp: applies to Megatron fp8 plans only: search.precision "
                             "must include fp8 and search.frameworks megatron")
        return self

    @model_validator(mode="after")
    def _check_mxfp8(self):
        """MXFP8 runs only on GPUs with block-scaled FP8 tensor cores: NVIDIA compute capability >= 10.0
        (Transformer Engine MXFP8BlockScaling; Megatron-LM --fp8-recipe mxfp8). NVFP4 needs FP4 tensor cores
        as well (a dense fp4 peak in the catalog): TE's NVFP4BlockScaling is for Blackwell and newer."""
        gpu = self.cluster.node.gpu
        cc = gpu.compute_capability
        recipe = self.runtime.fp8_recipe
        blackwell = gpu.vendor == "nvidia" and cc is not None and cc >= 10.0
        if recipe == "mxfp8" and not blackwell:
            raise ValueError(f"runtime.fp8_recipe: mxfp8 needs an NVIDIA GPU of compute capability 10.0 or "
                             f"newer (Blackwell); '{gpu.name}' has {cc}: use delayed or current")
        if recipe == "nvfp4" and not (blackwell and gpu.peak_tflops("fp4")):
            raise ValueError(f"runtime.fp8_recipe: nvfp4 needs an NVIDIA GPU with FP4 tensor cores (compute "
                             f"capability 10.0 or newer and a dense fp4 peak); '{gpu.name}' has compute capability "
                             f"{cc} and fp4 peak {gpu.peak_tflops('fp4')}: use delayed or current")
        return self
