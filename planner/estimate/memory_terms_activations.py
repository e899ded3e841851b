"""Activation memory per GPU, derived tensor by tensor from the architecture (Korthikanti et al. 2022,
"Reducing Activation Recomputation in Large Transformer Models", arXiv:2205.05198, Sec. 4, Table 2),
for the most loaded pipeline stage. Vectorised over a plan table.
"""

from __future__ import annotations

import numpy as np

from planner.arch import attention_dims
from planner.estimate.compute_moe import fused_grouped_mlp
from planner.estimate.memory_terms_stage import in_flight_microbatches, pipeline_rank
from planner.estimate.table import FP8, MEG, TT

# Output layer and loss at their peak, bytes per token and vocabulary entry (vocab-parallel over
# tp), for the one micro-batch the last stage holds. Megatron: bf16 logits plus the fp32 copy that
# its vocab-parallel cross entropy turns into the softmax in place, keeps for backward and turns into
# the gradient in place (Megatron-Core `tensor_parallel/cross_entropy.py`; Korthikanti Sec. 4.3
# counts the 4-byte part). DeepSpeed with Hugging Face models and torchtitan: F.cross_entropy on the
# fp32 upcast of the logits (transformers `ForCausalLMLoss`, torchtitan `cross_entropy_loss`): its
# log-softmax backward holds the saved fp32 output, the incoming fp32 gradient and its fp32 result
# at once, 12 bytes, above the forward's 2 + 4 + 4; measured on an H200 (torch 2.11, vocab 128,256,
# 4,096 and 16,384 tokens: benchmarks/memory_device_results.md), the transient peak of a step was
# the stored activations plus these 12 bytes to within 0.1%. Indexed by framework (deepspeed,
# megatron, torchtitan). torchtitan with tp > 1 runs loss parallel (DTensor `loss_parallel`, on unless
# disable_loss_parallel), whose log-softmax backward is decomposed into separate fp32 ops
# (torch/distributed/tensor/parallel/loss.py: grad_output - exp(output) * sum): the saved output,
# the incoming gradient, exp(output) and the product exist at once: LOSS_PARALLEL_BYTES.
# Megatron with Transformer Engine's cross entropy (runtime.cross_entropy_impl 'te',
# transformer_engine/pytorch/cross_entropy.py over triton/cross_entropy.py): the forward kernel
# computes the loss and writes the gradient into the bf16 logits in place, so only they are kept:
# TE_LOGIT_BYTES.
LOGIT_BYTES = np.array([12.0, 6.0, 12.0])
LOSS_PARALLEL_BYTES = 16.0
TE_LOGIT_BYTES = 2.0


def te_cross_entropy(ctx, t):
    """Whether Megatron runs Transformer Engine's cross entropy (scenario `runtime.cross_entropy_impl`
    'te'; Megatron-Core's default cross_entropy_fusion_impl is 'native')."""
    name = ctx.scenario.runtime.cross_entropy_impl
    return (t["framework"] == MEG) & (name == "te")


def logit_bytes(ctx, t):
    """Bytes per token and local vocabulary entry of the output layer and loss at their peak."""
    return np.where(te_cross_entropy(ctx, t), TE_LOGIT_BYTES,
                    np.where((t["framework"] == TT) & (t["tp"] > 1), LOSS_PARALLEL_BYTES, LOGIT_BYTES[t["framework"]]))


def flash_attention(ctx) -> bool:
    """Whether the stack runs fused attention (scenario `runtime.flash_attention`, default true)."""
    return ctx.scenario.runtime.flash_attention


def _mlp_bytes(m, ffn, tp, fused=True):
    """Stored MLP intermediates per token. GeLU/ReLU keep the activation's input and output (2f + 2f).
    SwiGLU fused (Megatron-Core `bias_swiglu_impl`, default `--bias-swiglu-fusion`) keeps its gate
    and up outputs and the down input (2 x 2f + 2f); in eager PyTorch (torchtitan without compile,
    Hugging Face models) `silu(gate) * up` also keeps silu's output for the product: 2f more
    (measured on an H200: benchmarks/memory_device_results.md)."""
    if m.ffn_act != "swiglu":
        return 4 * ffn / tp
    return np.where(fused, 6.0, 8.0) * ffn / tp


def clamped_glu_bytes(m, t, tp, fused_mlp=False):
    """Per routed copy, the clamped copy of the fc1 output that Megatron's fused clamped gated
    activation keeps for backward besides fc1's own output (the clamp runs before the fused kernel
    and torch.cat's the clamped halves: megatron/core/fusions/fused_bias_geglu.py
    weighted_bias_quick_geglu_impl at 92c8482e): 2 x 2f bytes / tp; zero without `swiglu_limit`
    and outside Megatron (compute_moe.expert_epilogue_bytes_per_token)."""
    if m.swiglu_limit is None or not m.moe:
        return 0.0
    # `fused_mlp` (compute_moe.fused_grouped_mlp): the fused grouped MLP clamps inside its GEMM epilogue and
    # keeps only fc1's output and the probabilities for backward (forward_grouped_mlp.py at 4220403e8)
    return np.where((t["framework"] == MEG) & ~np.asarray(fused_mlp, dtype=bool), 4.0 * m.moe.expert_ffn_hidden / tp, 0.0)


def fused_swiglu(t):
    """Megatron fuses the SwiGLU activation; DeepSpeed (Hugging Face modules) and torchtitan run it in
    eager PyTorch."""
    return t["framework"] == MEG


def torchtitan_sac_bytes(m, t, h, d_qk, d_v, heads_local, kv_local, tp, sp_div, compiled=False):
    """Stored bytes per token of one dense layer under torchtitan's op-level selective activation
    checkpointing (`SelectiveAC`, torchtitan/distributed/activation_checkpoint.py): each block is
    checkpointed (its input kept, 2h, sequence-sharded under SP) and of the ops inside only the
    outputs of the save list are kept: attention (output 2 x heads x d_v and the fp32 log-sum-exp 4 x
    heads) and every other matmul/linear, counted in call order from 1 (the 2nd, 4th, ... are
    recomputed). Llama's order is wq, wk, wv, wo, then w1, w3, w2 (SwiGLU) or w1, w2: kept are wq,
    wv, w1 and w2 (SwiGLU) or wq, wv, w1 (GeLU). Row-parallel outputs (wo, w2) are kept whole, before
    their reduction. Measured on an H200 (tp = 1, SwiGLU, 32 heads of 128, f = 14,336): 69.7 kB per
    token and layer against 69.8 counted (benchmarks/memory_device_results.md).
    With torch.compile (`compiled`: runtime.compile, torchtitan compiles each checkpointed block) the
    save list only tags ops: the min-cut partitioner (torch/_functorch/partitioners.py,
    min_cut_rematerialization_partition) saves forward values the backward graph reads, so a kept
    output that only feeds the residual add, whose backward reads no input, is not stored: the
    row-parallel outputs wo and w2 (of those, w2 is on the save list under SwiGLU).
    Returns (attention part, dense MLP part); MoE layers keep the attention part and are counted as
    without recompute for their experts (their grouped GEMMs are not in the 2024 save list)."""
    outs = [heads_local * d_qk, kv_local * d_qk, kv_local * d_v, h]
    outs += [m.ffn_hidden / tp, m.ffn_hidden / tp, h] if m.ffn_act == "swiglu" else [m.ffn_hidden / tp, h]
    residual_only = {3, len(outs) - 1}  # wo, w2: read by no backward op
    kept = [2.0 * x if i % 2 == 0 and not (compiled and i in residual_only) else 0.0 for i, x in enumerate(outs)]
    attention = 2 * h / sp_div + sum(kept[:4]) + 2 * heads_local * d_v + 4 * heads_local
    return attention, sum(kept[4:])


def moe_probs_in_activation(ctx, t):
    """Whether the router probabilities are applied inside the experts' activation (scenario
    `runtime.moe_router_probs`; 'auto': Megatron, whose Megatron-Core >= 0.13 passes the permuted
    probabilities to the experts, experts.py `bias_act_func`, and un-permutes without them,
    token_dispatcher.py `combine_postprocess`), rather than at the combine step."""
    name = ctx.scenario.runtime.moe_router_probs
    if name == "auto":
        return t["framework"] == MEG
    return np.full(len(t["tp"]), name == "activation")


def moe_dispatch_bytes_per_token(ctx, t):
    """Per token of one MoE layer, what its top_k x capacity_factor routed copies keep for backward
    besides the expert MLP intermediates: the expert input received by the dispatch all-to-all (2h,
    saved by the first grouped GEMM for its weight gradient; permute, all-to-all and sort save only
    index maps), plus either the probability of each copy (fp32, 4 bytes) when it is applied inside
    the experts' activation, or the combined expert output (2h) when the un-permutation multiplies
    by the probabilities (its gradient needs the tokens; Megatron-Core <= 0.12 moe_utils.unpermute,
    TE moe_unpermute with merging_probs). With a capacity factor the expert buffers are padded to
    capacity (drop-and-pad); dropless routing (no capacity factor) is counted at the balanced average
    of top_k copies (runtime.moe_load_imbalance raises the busiest rank's time)."""
    mo = ctx.model.moe
    if mo is None:
        return 0.0
    h = ctx.model.hidden
    per_copy = 2.0 * h + np.where(moe_probs_in_activation(ctx, t), 4.0, 2.0 * h)
    return per_copy * mo.top_k * (mo.capacity_factor or 1.0)


def saved_quantised_bytes(ctx) -> float:
    """Bytes per element of a linear input that Transformer Engine saves quantised for the weight
    gradient: 1 (FP8), 0.5 + 1/16 under runtime.fp8_recipe nvfp4 (its column-wise NVFP4 copy, E4M3 scale
    per 16 elements: compute_quant.NVFP4_OPERAND_BYTES)."""
    if ctx.scenario.runtime.fp8_recipe == "nvfp4":
        from planner.estimate.compute_quant import NVFP4_OPERAND_BYTES

        return NVFP4_OPERAND_BYTES
    return 1.0


def te_fp8_saved_delta(h, heads_local, d_v, ffn_local, sp_div, q: float = 1.0):
    """Bytes per token that Transformer Engine's FP8 linears change in what a layer stores (Megatron,
    precision fp8): each FP8 GEMM saves its input for the weight gradient as the FP8 cast it computed
    with (1 byte, TE `Linear`/`LayerNormLinear` forward), so the QKV and first-MLP inputs (the norm
    outputs, 2h each) and the second-MLP input (2f) are halved, while the out-projection keeps an FP8
    copy of the attention output beside the bf16 one that flash attention keeps for its backward
    (+1 x heads x d_v). MoE layers: each routed copy's expert input (the tokens received, h) and
    second-GEMM input (f_expert/tp) likewise. `q` is the saved bytes per element (saved_quantised_bytes:
    1 for FP8). Returns (attention part, dense MLP part)."""
    return q * heads_local * d_v - (2 - q) * h / sp_div, -(2 - q) * (h / sp_div + ffn_local)


def fp8_attention_saved_delta(ctx, t, qkv):
    """(bytes per token without recompute, the same under selective recompute of core_attn) that FP8 attention
    (runtime.fp8_attention, fp8_attention.fp8_attention_rows) changes in what a layer stores: Transformer
    Engine's FusedAttnFunc saves the FP8 casts of Q, K and V for its FP8 backward (backends.py @d0067d0:
    fp8_tensors = (q_fp8, k_fp8, v_fp8, ...) under every FP8 sub-recipe) instead of the bf16 tensors:
    `qkv` (their bf16 bytes, 2 per element) becomes fp8_attention.saved_qkv_bytes per element (1 per-tensor, so
    -qkv / 2; MXFP8 keeps both copies and their scales, slightly more than bf16). The output O stays counted in
    bf16 (saved in FP8 only under delayed scaling; not modelled). When core_attn is recomputed the checkpoint
    keeps the bf16 Q, K, V and nothing changes: the second value cancels the first there."""
    from planner.estimate.fp8_attention import fp8_attention_rows, saved_qkv_bytes
    from planner.estimate.recompute import recompute_modules

    per = saved_qkv_bytes(ctx.scenario.runtime.fp8_recipe)
    delta = np.where(fp8_attention_rows(ctx, t), qkv * (per - 2.0) / 2.0, 0.0)
    return delta, (delta if "core_attn" in recompute_modules(ctx) else 0.0)


def megatron_recompute_savings(ctx, t, x: dict):
    """Bytes per token that Megatron's selective recompute does not keep, per dense and MoE layer, for
    the modules of runtime.recompute_modules (planner.estimate.recompute; default core_attn):
      core_attn: the core-attention tensors except its output (x["core"]; Korthikanti Sec. 4.1);
      mla_up_proj (MLA): the up-projected query, key and value (x["qkv"]);
      layernorm: the output of each norm that is a module of its own, not fused into the next
        linear (Megatron-Core gpt_layer_specs: MLA's input norm, the MoE layers' pre-MLP norm, which
        feeds the router): 2h each (1h for MLA's FP8-saved input);
      mlp: the dense MLP's intermediates (x["dense_mlp"]); moe: the MoE block's (x["moe_mlp"], its
        dispatch buffers included); moe_act: the experts' activation output, the second expert GEMM's
        input (2 f_expert/tp per routed copy, 1 byte with FP8: experts.py set_save_original_input);
      shared_experts: the shared experts' intermediates.
    Each checkpointed module keeps its input, which the layer keeps anyway (the norm output)."""
    from planner.estimate.recompute import recompute_modules

    mods, m = recompute_modules(ctx), ctx.model
    te_fp8, tp = x["te_fp8"], x["tp"]
    attn = (x["core"] if "core_attn" in mods else 0.0) + (x["qkv"] if (m.mla and "mla_up_proj" in mods) else 0.0)
    if m.mla and "layernorm" in mods:
        attn = attn + x["norm_out"] * np.where(te_fp8, x["q"] / 2, 1.0)
    dense = attn + (x["dense_mlp"] if "mlp" in mods else 0.0)
    moe = attn
    if m.moe:
        mo = m.moe
        copies = mo.top_k * (mo.capacity_factor or 1.0)
        if "moe" in mods:
            moe = moe + x["moe_mlp"]
        else:
            if "moe_act" in mods:  # the checkpointed activation's clamped copy goes too
                moe = moe + copies * (mo.expert_ffn_hidden / tp * np.where(te_fp8, x["q"], 2.0)
                                      + clamped_glu_bytes(m, x["t"], tp, fused_grouped_mlp(ctx, x["t"])))
            if "shared_experts" in mods:
                moe = moe + _mlp_bytes(m, mo.shared_ffn, tp, x["fused"]) - np.where(te_fp8, (2 - x["q"]) * mo.shared_ffn / tp, 0.0)
        if "layernorm" in mods:
            moe = moe + x["norm_out"]
    return dense, moe


def layer_activation_bytes(ctx, t, flash: bool = True) -> dict:
    """Stored activation bytes per layer and micro-batch on one GPU, for dense and MoE layers, keyed by
    recompute mode. Tensors per token (bf16 = 2 bytes), after Korthikanti et al. 2022:
      replicated unless SP: norm inputs 2h x 2, QKV input 2h, MLP input 2h, dropout masks h x 2; MLA
      adds its compressed query and key-value latents before and after their norms (4 q_lora_rank +
      4 kv_lora_rank);
      split by tp: Q, K, V, attention output (2 bytes x heads x head dim), flash-attention's fp32
      log-sum-exp (4 bytes x heads); MLP intermediates (_mlp_bytes); MoE: per routed copy the
      dispatch/combine buffers (moe_dispatch_bytes_per_token) and expert intermediates, fp32 router
      logits and probabilities (8 x experts), the shared experts' intermediates.
    Without flash attention, the softmax output (2 x heads x s) and, with dropout, its mask and
    output (3 x heads x s) are stored per token. Selective recompute drops the core-attention
    tensors except their output (s x s scores, softmax statistics); full recompute stores only each
    layer's input (Korthikanti Sec. 4.1 and 5). torchtitan's 'selective' is its op-level policy
    (torchtitan_sac_bytes); Megatron fp8 saves FP8 linear inputs (te_fp8_saved_delta); eager SwiGLU
    keeps one more tensor than Megatron's fused one (_mlp_bytes)."""
    m = ctx.model
    h, H, s = m.hidden, m.heads, ctx.seq_len
    tp = t["tp"].astype(float)
    sp_div = np.where(t["sp"], tp, 1.0)
    tokens = t["mbs"] * s / t["cp"]
    drop = 1.0 if m.dropout else 0.0
    d_qk, d_v = attention_dims(m)
    kv = H if m.mla else m.n_kv_heads
    kv_local = np.maximum(kv / tp, 1.0)  # KV heads replicate when tp > kv_heads
    heads_local = H / tp
    replicated = (2 * h + 2 * h + drop * h) + (2 * h + 2 * h + drop * h)
    if m.mla:
        replicated = replicated + 4 * (m.mla.q_lora_rank or 0) + 4 * m.mla.kv_lora_rank
    qkv = 2 * (heads_local * d_qk + kv_local * d_qk + kv_local * d_v)
    if flash:
        core = 2 * heads_local * d_v + 4 * heads_local  # attention output + fp32 log-sum-exp
    else:  # attention output + softmax (+ dropout mask and output): s x s per head
        core = 2 * heads_local * d_v + heads_local * s / t["cp"] * (2 + 3 * drop)
    fused = fused_swiglu(t)
    dense_mlp = _mlp_bytes(m, m.ffn_hidden, tp, fused)
    moe_mlp = 0.0
    if m.moe:
        mo = m.moe
        copies = mo.top_k * (mo.capacity_factor or 1.0)
        moe_mlp = moe_dispatch_bytes_per_token(ctx, t) * t["etp"] / tp \
            + copies * (_mlp_bytes(m, mo.expert_ffn_hidden, tp, fused)
                        + clamped_glu_bytes(m, t, tp, fused_grouped_mlp(ctx, t))) \
            + 8 * mo.experts + _mlp_bytes(m, mo.shared_ffn, tp, fused)
    te_fp8 = (t["framework"] == MEG) & (t["precision"] == FP8)
    q = saved_quantised_bytes(ctx)
    fp8_attn, fp8_mlp = te_fp8_saved_delta(h, heads_local, d_v, m.ffn_hidden / tp, sp_div, q)
    fp8_attn, fp8_mlp = np.where(te_fp8, fp8_attn, 0.0), np.where(te_fp8, fp8_mlp, 0.0)
    base = replicated / sp_div + qkv + fp8_attn
    kept = 2 * heads_local * d_v  # core-attention output: the out-projection needs it either way
    compiled = ctx.scenario.runtime.compile
    sac_attn, sac_mlp = torchtitan_sac_bytes(m, t, h, d_qk, d_v, heads_local, kv_local, tp, sp_div, compiled)
    titan = t["framework"] == TT
    fp8_moe = 0.0
    if m.moe:  # the experts' FP8 GEMMs save their inputs in FP8 too: received tokens (h) and fc2 inputs
        fp8_moe = np.where(te_fp8, -(2 - q) * (copies * (h * t["etp"] / tp + m.moe.expert_ffn_hidden / tp)
                                               + m.moe.shared_ffn / tp), 0.0)
    fp8_qkv, rc_qkv = fp8_attention_saved_delta(ctx, t, qkv)
    none_dense, none_moe = base + core + dense_mlp + fp8_mlp + fp8_qkv, base + core + moe_mlp + fp8_moe + fp8_qkv
    save_dense, save_moe = megatron_recompute_savings(
        ctx, t, {"core": core - kept, "qkv": qkv, "norm_out": 2 * h / sp_div, "dense_mlp": dense_mlp + fp8_mlp,
                 "moe_mlp": moe_mlp + fp8_moe, "te_fp8": te_fp8, "tp": tp, "fused": fused, "q": q, "t": t})
    save_dense, save_moe = save_dense + rc_qkv, save_moe + rc_qkv
    per_token_dense = {"none": none_dense,
                       "selective": np.where(titan, sac_attn + sac_mlp, none_dense - save_dense)}
    per_token_moe = {"none": none_moe,
                     "selective": np.where(titan, sac_attn + moe_mlp, none_moe - save_moe)}
    out = {}
    for kind, per_token in (("dense", per_token_dense), ("moe", per_token_moe)):
        out[kind] = {k: v * tokens for k, v in per_token.items()}
        out[kind]["full"] = 2 * h / sp_div * tokens  # the checkpointed layer input
    return out


def resident_layer_share(ctx, t, layers):
    """Share of a stage's stored layer activations that stay on the GPU under Megatron's activation
    offloading (scenario `runtime.activation_offload_layers` = N, Megatron-Core cpu_offloading_num_layers).
    Transformer Engine's AsyncDoubleBufferGroupOffloadHandler (cpu_offload.py, used by Megatron-Core
    transformer_block.py through get_cpu_offload_context) copies the saved tensors of the first N layers
    to host memory and frees them on the GPU, one layer at a time within evenly spread windows
    (`layer_window_map`), and reloads them one window ahead in backward; the TE linears, attention and
    the fused SwiGLU mark all their saved inputs for it (`activation_offloading`). So the GPU holds the
    L - N other layers plus one offloaded layer in flight: (L - min(N, L-1) + 1) / L, at most 1. The
    layer in flight is reloaded when backward reaches it, after the loss's tensors are freed, so on
    the stage holding the loss only the part of logits_loss above one layer counts (activation_parts).
    Megatron-Core allows it only with pp = 1 and no recompute (transformer_config.py); elsewhere 1."""
    lps = np.maximum(layers, 1.0)
    resident = np.minimum(lps, lps - offloaded_layers(ctx, t, layers) + 1)
    return resident / lps


def offloaded_layers(ctx, t, layers):
    """Layers whose saved activations Megatron's activation offloading copies to the host (all of
    them are there at the end of the forward pass): min(N, L - 1) where Megatron-Core allows it
    (pp = 1, no recompute; resident_layer_share), else 0."""
    n = ctx.scenario.runtime.activation_offload_layers
    on = (t["framework"] == MEG) & (t["pp"] == 1) & (t["recompute"] == 0) & (n > 0)
    lps = np.maximum(layers, 1.0)
    return np.where(on, np.minimum(n, lps - 1), 0.0)


# Hidden-size tensors one MTP module keeps per token besides its transformer layer: enorm's input (the
# embedding output), hnorm's input (the decoder output) and eh_proj's input (their concatenation, 2h)
# (Megatron-Core multi_token_prediction.py MultiTokenPredictionLayer._concat_embeddings).
MTP_SAVED_HIDDEN = 4


def activation_parts(ctx, t, stage, per_layer: dict, sp: dict, ring=None) -> dict:
    """Activation bytes of the stage, by part:
      layers: stored per-layer activations x the stage's layers x micro-batches in flight
        (in_flight_microbatches) x the share not offloaded to the host (resident_layer_share), MoE
        dispatch/combine buffers excepted;
      moe_dispatch_combine: those buffers of the stage's MoE layers (not stored under full recompute,
        except in the layers Megatron's block method leaves out: runtime.recompute_num_layers);
      recompute_layer: under full recompute, one layer's full activations while it is recomputed in
        backward (Korthikanti Sec. 5: checkpoints plus one layer); under torchtitan's op-level
        selective checkpointing, the part of one layer its policy did not keep. On the stage that holds the loss only the part above logits_loss counts: the loss's
        tensors are freed before the first layer is recomputed (measured on an H200: the peak of a
        fully recomputed step was the checkpoints plus the loss, benchmarks/memory_device_results.md);
      cp_ring_buffers: torchtitan with cp > 1, torch's ring-attention buffers while one layer's
        attention runs backward (context_parallel.ring_attention_buffer_bytes: gathered K/V, fp32
        gradient accumulators); they coexist with recompute_layer, and on the stage holding the loss
        only their part above logits_loss counts (the attention's backward runs after the loss's);
      embedding: the embedding's dropout mask per micro-batch in flight (Korthikanti Sec. 4.3; its
        output is the first layer's stored input, counted there);
      logits_loss: last stage, one micro-batch: logit_bytes x vocab / tp per token plus the final
        norm's input and the output layer's input (2h + 2h, split by SP), once for the model and once
        per MTP module (Megatron-Core process_mtp_loss runs the shared output layer and the loss on
        each MTP output; all are kept for the backward); under activation offloading only its part
        above one layer (resident_layer_share).
    MTP modules (sp["mtp"]): their transformer layers are among the stage's layers; each also keeps
      the inputs of enorm and hnorm and of eh_proj (h + h + 2h bf16 per token, split by SP:
      MultiTokenPredictionLayer._concat_embeddings) per micro-batch in flight, counted in `layers`.
    `ring`: ring_attention_buffer_bytes of the rows (it does not read the rank), when computed elsewhere."""
    m, rc, pp = ctx.model, t["recompute"], t["pp"]
    tp = t["tp"].astype(float)
    sp_div = np.where(t["sp"], tp, 1.0)
    tokens = t["mbs"] * ctx.seq_len / t["cp"]
    in_flight = in_flight_microbatches(t, stage)

    from planner.estimate.recompute import full_recompute_share

    share = full_recompute_share(ctx, t)  # Megatron block recompute: the other layers keep everything

    def pick(kind):
        d = per_layer[kind]
        full = share * d["full"] + (1.0 - share) * d["none"]
        return np.where(rc == 0, d["none"], np.where(rc == 1, d["selective"], full))

    resident = resident_layer_share(ctx, t, sp["layers"])
    stored = (sp["dense"] * pick("dense") + sp["moe"] * pick("moe")) * in_flight * resident
    mtp_inputs = sp.get("mtp", 0.0) * MTP_SAVED_HIDDEN * 2.0 * m.hidden / sp_div * tokens * in_flight
    # Expert ranks receive tokens * top_k * etp / tp routed copies (the tp ranks' sequence shards,
    # gathered over etp): 1 with the default etp = tp, 1/tp with experts folded over tp (etp = 1).
    fold = t["etp"] / tp
    from planner.estimate.recompute import recompute_modules

    # not kept under full recompute, nor when Megatron's selective recompute checkpoints the MoE block
    moe_block = (rc == 1) & (t["framework"] == MEG) & ("moe" in recompute_modules(ctx))
    dispatch = np.where(moe_block, 0.0, np.where(rc == 2, 1.0 - share, 1.0)
                        * sp["moe"] * moe_dispatch_bytes_per_token(ctx, t) * fold * tokens * in_flight * resident)
    biggest = np.maximum(np.where(sp["dense"] > 0, per_layer["dense"]["none"], 0.0),
                         np.where(sp["moe"] > 0, per_layer["moe"]["none"], 0.0))
    rank = pipeline_rank(t, stage)
    holds_first, holds_last = rank == 0, rank == pp - 1
    # torchtitan's op-level selective checkpointing recomputes what its policy did not keep
    sac_extra = np.maximum(np.where(sp["dense"] > 0, per_layer["dense"]["none"] - per_layer["dense"]["selective"], 0.0),
                           np.where(sp["moe"] > 0, per_layer["moe"]["none"] - per_layer["moe"]["selective"], 0.0))
    recompute = np.where(rc == 2, biggest, np.where((rc == 1) & (t["framework"] == TT), sac_extra, 0.0))
    embedding = (1.0 if m.dropout else 0.0) * m.hidden / sp_div * tokens * in_flight
    logits = (1 + m.mtp_layers) * tokens * (logit_bytes(ctx, t) * m.vocab / tp + 4 * m.hidden / sp_div)
    # with activation offloading the one offloaded layer in flight (counted in `layers`) and the loss
    # do not coexist (resident_layer_share)
    one_layer = np.where(resident < 1.0, stored / resident / np.maximum(sp["layers"], 1.0), 0.0)
    logits = np.maximum(0.0, logits - one_layer)
    # torch's ring attention buffers exist while one layer's attention runs backward, beside that
    # layer's recomputed tensors; on the stage holding the loss, after the loss's tensors are freed
    if ring is None:
        from planner.estimate.context_parallel import ring_attention_buffer_bytes

        ring = ring_attention_buffer_bytes(ctx, t)
    at_attention = recompute + ring
    recompute_part = np.where(holds_last, np.maximum(0.0, recompute - logits), recompute)
    ring = np.where(holds_last, np.maximum(0.0, at_attention - logits), at_attention) - recompute_part
    return {
        "activations.layers": stored - dispatch + mtp_inputs,
        "activations.moe_dispatch_combine": dispatch,
        "activations.recompute_layer": recompute_part,
        "activations.cp_ring_buffers": ring,
        "activations.embedding": np.where(holds_first, embedding, 0.0),
        "activations.logits_loss": np.where(holds_last, logits, 0.0),
    }


def largest_tensor_bytes(ctx, t, stage, rank_free: dict | None = None) -> np.ndarray:
    """The largest single tensor a forward/backward pass of one micro-batch allocates on the stage:
    the logits [tokens, vocab/tp] on the stage that holds the loss (fp32; bf16 with TE's cross
    entropy); per layer the MLP's first output [tokens, up x f/tp] (up = 2 for SwiGLU), the QKV
    output, the sequence-parallel all-gather [tokens, h], the MoE tokens received and their expert
    outputs [tokens x top_k x capacity x etp/tp, h and up x f_expert/etp], and without flash attention
    the scores [heads/tp, s/cp, s] (2 bytes each). `rank_free`: largest_tensor_candidates of the rows,
    when computed elsewhere (only the stage holding the loss reads the rank)."""
    c = largest_tensor_candidates(ctx, t) if rank_free is None else rank_free
    rank = pipeline_rank(t, stage)
    return np.where(rank == t["pp"] - 1, np.maximum(c["layer"], c["logits"]), c["layer"])


def largest_tensor_candidates(ctx, t) -> dict:
    """largest_tensor_bytes' two candidates, which do not read the rank: "layer", the largest tensor
    of a layer (or ring attention's gathered K/V), and "logits", the loss's logits."""
    m = ctx.model
    tp = t["tp"].astype(float)
    tokens = t["mbs"] * ctx.seq_len / t["cp"]
    d_qk, d_v = attention_dims(m)
    kv = m.heads if m.mla else m.n_kv_heads
    up = 2 if m.ffn_act == "swiglu" else 1
    per_token = np.maximum(2.0 * up * m.ffn_hidden / tp, 2.0 * (m.heads * d_qk + kv * (d_qk + d_v)) / tp)
    per_token = np.maximum(per_token, np.where(t["sp"] & (t["tp"] > 1), 2.0 * m.hidden, 0.0))
    if m.moe:
        copies = m.moe.top_k * (m.moe.capacity_factor or 1.0)
        per_token = np.maximum(per_token, copies * 2.0 * np.maximum(m.hidden * t["etp"] / tp,
                                                                     up * m.moe.expert_ffn_hidden / tp))
    largest = per_token * tokens
    if not flash_attention(ctx):
        largest = np.maximum(largest, 2.0 * t["mbs"] * m.heads / tp * ctx.seq_len / t["cp"] * ctx.seq_len)
    from planner.estimate.context_parallel import ring_gathered_kv_bytes

    largest = np.maximum(largest, ring_gathered_kv_bytes(ctx, t))
    logits = np.where(te_cross_entropy(ctx, t), 2.0, 4.0) * tokens * m.vocab / tp  # bf16 / fp32 logits
    return {"layer": largest, "logits": logits}
