"""Activation memory per GPU, derived tensor by tensor from the architecture (Korthikanti et al. 2022,
"Reducing Activation Recomputation in Large Transformer Models", arXiv:2205.05198, Sec. 4, Table 2),
for the most loaded pipeline stage. Vectorised over a plan table.
"""

from __future__ import annotations

import numpy as np

from planner.arch import attention_dims
from planner.estimate.memory_terms_stage import in_flight_microbatches

# Output layer and loss, bytes per token and vocabulary entry (vocab-parallel over tp), for the one
# micro-batch the last stage holds. Megatron: bf16 logits plus the fp32 copy that its vocab-parallel
# cross entropy works on in place and keeps for backward (Megatron-Core
# `tensor_parallel/cross_entropy.py`; Korthikanti Sec. 4.3 counts the 4-byte part). DeepSpeed with
# Hugging Face models and torchtitan: bf16 logits, their fp32 upcast and the fp32 log-softmax that
# F.cross_entropy saves (transformers `ForCausalLMLoss`, torchtitan `cross_entropy_loss`).
# Indexed by framework (deepspeed, megatron, torchtitan).
LOGIT_BYTES = np.array([10.0, 6.0, 10.0])


def flash_attention(ctx) -> bool:
    """Whether the stack runs fused attention (scenario `runtime.flash_attention`, default true)."""
    return bool(getattr(getattr(ctx.scenario, "runtime", None), "flash_attention", True))


def _mlp_bytes(m, ffn, tp):
    """Stored MLP intermediates per token: SwiGLU keeps its gate and up outputs and the down input
    (2 x 2f + 2f); GeLU/ReLU keep the activation's input and output (2f + 2f)."""
    up = 2 if m.ffn_act == "swiglu" else 1
    return (2 * up + 2) * ffn / tp


def moe_dispatch_bytes_per_token(ctx):
    """Per token of one MoE layer: each of its top_k x capacity_factor routed copies keeps the expert
    input received by the dispatch all-to-all (2h) and the expert output that the combine step
    weights by the router probability (2h; its gradient needs both). With a capacity factor the
    expert buffers are padded to capacity (drop-and-pad); dropless routing (no capacity factor) is
    counted at the balanced average of top_k copies (routing imbalance raises the busiest rank)."""
    mo = ctx.model.moe
    if mo is None:
        return 0.0
    return 4.0 * ctx.model.hidden * mo.top_k * (mo.capacity_factor or 1.0)


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
    layer's input (Korthikanti Sec. 4.1 and 5)."""
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
    dense_mlp = _mlp_bytes(m, m.ffn_hidden, tp)
    moe_mlp = 0.0
    if m.moe:
        mo = m.moe
        copies = mo.top_k * (mo.capacity_factor or 1.0)
        moe_mlp = moe_dispatch_bytes_per_token(ctx) * t["etp"] / tp + copies * _mlp_bytes(m, mo.expert_ffn_hidden, tp) \
            + 8 * mo.experts + _mlp_bytes(m, mo.shared_ffn, tp)
    base = replicated / sp_div + qkv
    kept = 2 * heads_local * d_v  # core-attention output: the out-projection needs it either way
    per_token_dense = {"none": base + core + dense_mlp, "selective": base + kept + dense_mlp}
    per_token_moe = {"none": base + core + moe_mlp, "selective": base + kept + moe_mlp}
    out = {}
    for kind, per_token in (("dense", per_token_dense), ("moe", per_token_moe)):
        out[kind] = {k: v * tokens for k, v in per_token.items()}
        out[kind]["full"] = 2 * h / sp_div * tokens  # the checkpointed layer input
    return out


def activation_parts(ctx, t, stage: str, per_layer: dict, sp: dict) -> dict:
    """Activation bytes of the stage, by part:
      layers: stored per-layer activations x the stage's layers x micro-batches in flight
        (in_flight_microbatches), MoE dispatch/combine buffers excepted;
      moe_dispatch_combine: those buffers of the stage's MoE layers (not stored under full recompute);
      recompute_layer: under full recompute, one layer's full activations while it is recomputed in
        backward (Korthikanti Sec. 5: checkpoints plus one layer);
      embedding: the embedding's dropout mask per micro-batch in flight (Korthikanti Sec. 4.3; its
        output is the first layer's stored input, counted there);
      logits_loss: last stage, one micro-batch: LOGIT_BYTES x vocab / tp per token plus the final
        norm's input and the output layer's input (2h + 2h, split by SP)."""
    m, rc, pp = ctx.model, t["recompute"], t["pp"]
    tp = t["tp"].astype(float)
    sp_div = np.where(t["sp"], tp, 1.0)
    tokens = t["mbs"] * ctx.seq_len / t["cp"]
    in_flight = in_flight_microbatches(t, stage)

    def pick(kind):
        d = per_layer[kind]
        return np.where(rc == 0, d["none"], np.where(rc == 1, d["selective"], d["full"]))

    stored = (sp["dense"] * pick("dense") + sp["moe"] * pick("moe")) * in_flight
    # Expert ranks receive tokens * top_k * etp / tp routed copies (the tp ranks' sequence shards,
    # gathered over etp): 1 with the default etp = tp, 1/tp with experts folded over tp (etp = 1).
    fold = t["etp"] / tp
    dispatch = np.where(rc == 2, 0.0, sp["moe"] * moe_dispatch_bytes_per_token(ctx) * fold * tokens * in_flight)
    biggest = np.maximum(np.where(sp["dense"] > 0, per_layer["dense"]["none"], 0.0),
                         np.where(sp["moe"] > 0, per_layer["moe"]["none"], 0.0))
    holds_first = (pp == 1) | (stage == "first")
    holds_last = (pp == 1) | (stage == "last")
    embedding = (1.0 if m.dropout else 0.0) * m.hidden / sp_div * tokens * in_flight
    logits = tokens * (LOGIT_BYTES[t["framework"]] * m.vocab / tp + 4 * m.hidden / sp_div)
    return {
        "activations.layers": stored - dispatch,
        "activations.moe_dispatch_combine": dispatch,
        "activations.recompute_layer": np.where(rc == 2, biggest, 0.0),
        "activations.embedding": np.where(holds_first, embedding, 0.0),
        "activations.logits_loss": np.where(holds_last, logits, 0.0),
    }
