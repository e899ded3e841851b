"""What one pipeline stage holds: its layers, its parameters, and its micro-batches in flight.

The memory model evaluates the 'first' stage (the embedding, the most micro-batches in flight) and
the 'last' stage (the final norm, the output layer, the loss) and keeps the larger; intermediate
stages hold fewer micro-batches than the first and neither end, so they are never the peak.
"""

from __future__ import annotations

import numpy as np


def _chunk_layers(ctx, t):
    """(base, extra): the model's layers split into pp*vpp chunks, chunk i holding base + (i < extra)
    layers (the first chunks take the remainder when layers are not divisible by pp*vpp)."""
    chunks = t["pp"] * t["vpp"]
    return ctx.model.layers // chunks, ctx.model.layers % chunks


def _dense_on_rank(ctx, t, rank, base, extra):
    """Dense layers (the model's first `dense_layers`) among rank `rank`'s chunks rank + v*pp: chunk c
    starts at c*base + min(c, extra) and holds base + (c < extra) layers."""
    d, pp, vpp = ctx.stats.dense_layers, t["pp"], t["vpp"]
    dense = np.zeros(len(pp))
    for v in range(int(vpp.max()) if len(vpp) else 0):
        c = rank + v * pp
        start = c * base + np.minimum(c, extra)
        dense = dense + np.where(v < vpp, np.clip(d - start, 0, base + (c < extra)), 0)
    return dense


def stage_layers(ctx, t, stage: str):
    """(layers, dense layers, MoE layers) of the 'first' or 'last' pipeline rank.

    Rank r holds virtual chunks r, r+pp, ..., r+(vpp-1)pp (Narayanan et al. 2021, Sec. 2.2.2); with an
    uneven split the first chunks take the extra layers, so the first rank holds vpp*base +
    ceil(extra/pp) layers and the last rank vpp*base + floor(extra/pp). With pp = 1 the one stage
    holds everything. Dense layers lead (DeepSeek `first_k_dense_replace`)."""
    st, pp, vpp = ctx.stats, t["pp"], t["vpp"]
    base, extra = _chunk_layers(ctx, t)
    lps = (vpp * base + (-(-extra // pp) if stage == "first" else extra // pp)).astype(float)
    if not st.moe_layers:
        dense = lps
    elif not st.dense_layers:
        dense = np.zeros_like(lps)
    else:
        dense = _dense_on_rank(ctx, t, 0 if stage == "first" else pp - 1, base, extra)
    return lps, dense, lps - dense


def stage_params(ctx, t, stage: str) -> dict:
    """Parameters of the stage's model replica before tensor/expert sharding.

    non_expert: attention, norms, dense MLPs, routers and shared experts of its layers, plus the
      embedding (first stage: word and learned position tables) or the final norm and output layer
      (last stage). With tied embeddings and pp > 1 the last stage keeps its own copy of the word
      embedding as the output weight, with its own gradient and optimizer state, all-reduced with
      the first stage's (Megatron-LM `shared_embedding_or_output_weight`; DeepSpeed `TiedLayerSpec`).
    expert: the routed experts of its MoE layers.
    gemm: the weights of its layers' matrix multiplications, which Transformer Engine runs in FP8
      (attention and MLP projections, shared and routed experts; not norms, routers or the embedding).
    norms: its norm weights (vectors)."""
    st, pp, m = ctx.stats, t["pp"], ctx.model
    lps, dense, moe = stage_layers(ctx, t, stage)
    layer = lps * (st.attention_per_layer + st.norms_per_layer) + dense * st.dense_mlp_per_layer \
        + moe * (st.router_per_moe_layer + st.shared_experts_per_moe_layer)
    tied_copy = m.vocab * m.hidden if m.tie_embeddings else 0
    last_end = st.lm_head + st.final_norm + np.where(pp > 1, tied_copy, 0)
    if stage == "first":
        ends = np.where(pp == 1, st.embedding + st.lm_head + st.final_norm, st.embedding)
    else:
        ends = np.where(pp == 1, st.embedding + st.lm_head + st.final_norm, last_end)
    gemm = lps * st.attention_per_layer + dense * st.dense_mlp_per_layer + moe * st.shared_experts_per_moe_layer
    norms = lps * st.norms_per_layer
    return {"non_expert": layer + ends, "expert": moe * st.routed_experts_per_moe_layer,
            "gemm": gemm, "norms": norms, "layers": lps, "dense": dense, "moe": moe}


def in_flight_microbatches(t, stage: str):
    """Micro-batches whose activations the stage stores at its peak, in units of its full layer set.

    1F1B (Narayanan et al. 2021; Korthikanti et al. 2022, Sec. 4.2.3): the first rank runs
    min(pp, ga) forwards before its first backward, the last rank one. Interleaved with vpp chunks
    (Megatron-Core `forward_backward_pipelining_with_interleaving`): rank r warms up
    2(pp-r-1) + (vpp-1)pp chunk-forwards and runs one more before its first backward, each chunk
    being 1/vpp of its layers; capped by the ga*vpp chunk-forwards of the step. For the first rank
    this is pp(1 + (pp-1)/(pp*vpp)) micro-batches, Korthikanti's interleaving factor."""
    pp, vpp, ga = t["pp"], t["vpp"], t["ga"]
    if stage == "first":
        chunks = np.where(vpp > 1, 2 * (pp - 1) + (vpp - 1) * pp + 1, pp)
    else:
        chunks = np.where(vpp > 1, (vpp - 1) * pp + 1, 1)
    return np.minimum(chunks, ga * vpp) / vpp
