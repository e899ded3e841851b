"""What one pipeline stage holds: its layers, its parameters, and its micro-batches in flight.

A stage is a pipeline rank: 'first' (rank 0: the embedding, the most micro-batches in flight),
'last' (rank pp-1: the final norm, the output layer, the loss) or an integer array of ranks, one
per plan. The memory model evaluates every rank (memory.memory): an intermediate rank can be the
peak, e.g. one made only of MoE layers when the first holds DeepSeek's leading dense layers.
"""

from __future__ import annotations

import numpy as np

from planner.estimate.pipeline_split import own_mtp_key, rank_layers, rank_mtp, split_key


def _chunk_layers(ctx, t):
    """(base, extra): the model's layers split into pp*vpp chunks, chunk i holding base + (i < extra)
    layers (the first chunks take the remainder when layers are not divisible by pp*vpp)."""
    chunks = t["pp"] * t["vpp"]
    return ctx.model.layers // chunks, ctx.model.layers % chunks


def _dense_before(ctx, n):
    """Dense-FFN layers among the model's first n decoder layers (spec.model.dense_before; all of them dense
    without an MoE)."""
    from planner.spec.model import dense_before

    m = ctx.model
    return dense_before(n, m.moe.dense_layers, m.moe.layer_step) if m.moe else np.asarray(n)


def _dense_on_rank(ctx, t, rank, base, extra):
    """Dense-FFN layers (spec.model.moe_pattern: the leading `dense_layers`, and the layers between
    MoE layers under moe.layer_step) among rank `rank`'s chunks rank + v*pp: chunk c starts at
    c*base + min(c, extra) and holds base + (c < extra) layers."""
    pp, vpp, top = t["pp"], t["vpp"], ctx.model.layers
    dense = np.zeros(len(pp))
    for v in range(int(vpp.max()) if len(vpp) else 0):
        c = rank + v * pp
        start = np.minimum(c * base + np.minimum(c, extra), top).astype(np.int64)
        end = np.minimum(start + base + (c < extra), top).astype(np.int64)
        dense = dense + np.where(v < vpp, _dense_before(ctx, end) - _dense_before(ctx, start), 0)
    return dense


def pipeline_rank(t, stage):
    """Rank per plan of a stage given as 'first' (0), 'last' (pp - 1) or an array of ranks."""
    if isinstance(stage, str):
        return np.zeros_like(t["pp"]) if stage == "first" else t["pp"] - 1
    return np.minimum(np.asarray(stage), t["pp"] - 1)


def stage_layers(ctx, t, stage):
    """(layers, dense layers, MoE layers) of a pipeline rank ('first', 'last' or ranks), the transformer
    layers of the MTP modules it holds included (stage_mtp; each of the decoder's last layer kind).

    Rank r holds virtual chunks r, r+pp, ..., r+(vpp-1)pp (Narayanan et al. 2021, Sec. 2.2.2); with an
    uneven split the first `extra` chunks take one more layer, so rank r holds vpp*base plus the
    number of its chunks below `extra`, clip(ceil((extra - r)/pp), 0, vpp): ceil(extra/pp) on the
    first rank, floor(extra/pp) on the last. With pp = 1 the one stage holds everything. Dense
    layers lead (DeepSeek `first_k_dense_replace`)."""
    rank = pipeline_rank(t, stage)
    pp, vpp = t["pp"], t["vpp"]
    if split_key_of(ctx) is not None:
        lps, dense, moe = _custom_split_layers(ctx, t, rank)
    elif np.ndim(pp) == 1 and len(pp) >= LOOKUP_ROWS:
        top_pp, top_vpp = int(pp.max()), int(vpp.max())
        lps, dense = _layer_table(ctx, top_pp, top_vpp)
        at = ((pp - 1) * top_vpp + (vpp - 1)) * top_pp + rank
        lps, dense = lps[at], dense[at]
        lps, dense, moe = lps, dense, lps - dense
    else:
        lps, dense, moe = _stage_layers_rows(ctx, t, rank)
    if not ctx.model.mtp_layers:
        return lps, dense, moe
    mtp = stage_mtp(ctx, t, rank)
    return lps + mtp, dense + (0.0 if ctx.model.mtp_moe else mtp), moe + (mtp if ctx.model.mtp_moe else 0.0)


def stage_mtp(ctx, t, stage):
    """MTP modules (model.mtp_layers) on a pipeline rank per plan: where runtime.pipeline_layout puts
    its 'm' symbols, else all on the last rank (pipeline_split.rank_mtp; Megatron-Core
    mtp_on_this_rank)."""
    rank = pipeline_rank(t, stage)
    n = ctx.model.mtp_layers
    if not n:
        return np.zeros(np.shape(t["pp"]))
    key = split_key_of(ctx)
    if key is None or key[0] != "layout":
        return np.where(rank == t["pp"] - 1, float(n), 0.0)
    # one per-rank table per distinct (pp, vpp) pair, read by each plan's row and rank
    pp, vpp = np.asarray(t["pp"], dtype=np.int64), np.asarray(t["vpp"], dtype=np.int64)
    width = int(pp.max()) if pp.size else 1
    code = pp * (int(vpp.max()) + 1 if vpp.size else 1) + vpp
    _, first, inverse = np.unique(code.ravel(), return_index=True, return_inverse=True)
    tables = np.zeros((len(first), width))
    for j, i in enumerate(first):
        a = int(pp.ravel()[i])
        tables[j, :a] = rank_mtp(key, n, a, int(vpp.ravel()[i]))
    at = np.broadcast_to(np.asarray(rank, dtype=np.int64), np.shape(pp)).ravel()
    return tables[inverse.ravel(), np.clip(at, 0, width - 1)].reshape(np.shape(pp))


def split_key_of(ctx):
    """The scenario's Megatron split (pipeline_split.split_key), or the planner's own with the MTP
    modules set against the last chunk (pipeline_split.own_mtp_key), or None (the plain split)."""
    return split_key(ctx.scenario.runtime) or own_mtp_key(ctx.scenario)


def _custom_tables(ctx, pp, vpp):
    """(layers, dense, at, heavy): per-rank lookup tables of the (pp, vpp) pairs present, flattened
    as (pair, rank) with rank < the largest pp, the row of each plan's rank 0 in them, and each plan's
    heaviest middle rank (heaviest_rank), all found once per distinct pair (pipeline_split.rank_layers;
    NaN for pairs Megatron rejects, which the structural checks refuse)."""
    key, st = split_key_of(ctx), ctx.stats
    pp, vpp = np.asarray(pp, dtype=np.int64), np.asarray(vpp, dtype=np.int64)
    width = int(pp.max()) if pp.size else 1
    code = pp * (int(vpp.max()) + 1 if vpp.size else 1) + vpp
    pairs, first, inverse = np.unique(code.ravel(), return_index=True, return_inverse=True)
    layers, dense = np.full((len(pairs), width), np.nan), np.full((len(pairs), width), np.nan)
    heavy = np.zeros(len(pairs), dtype=np.int64)
    for j, i in enumerate(first):
        a, b = int(pp.ravel()[i]), int(vpp.ravel()[i])
        lps, dn = rank_layers(key, ctx.model.layers, ctx.model.moe.dense_layers if st.moe_layers else 0, a, b,
                              ctx.model.moe.layer_step if st.moe_layers else 1)
        layers[j, :a], dense[j, :a] = lps, dn
        if a >= 3:  # most layers (a layout's MTP layers too), then most MoE layers, then the lowest rank
            held = lps + (rank_mtp(key, ctx.model.mtp_layers, a, b) if np.all(np.isfinite(lps)) else 0.0)
            score = np.nan_to_num(held * (ctx.model.layers + 1.0) + (lps - dn), nan=-1.0)[1:a - 1]
            heavy[j] = 1 + int(np.argmax(score))
    inverse = inverse.reshape(np.shape(pp))
    return layers.ravel(), dense.ravel(), inverse * width, heavy[inverse]


def _custom_split_layers(ctx, t, rank):
    """stage_layers under a Megatron split (runtime.pipeline_layout or account_for_*): read from the
    per-(pp, vpp, rank) tables of _custom_tables. Dense-only models: every layer dense."""
    layers, dense, at, _ = _custom_tables(ctx, t["pp"], t["vpp"])
    at = at + np.asarray(rank, dtype=np.int64)
    lps = layers[at]
    dn = lps if not ctx.stats.moe_layers else dense[at]
    return lps, dn, lps - dn


def heaviest_rank(ctx, t):
    """Per plan under a Megatron split: the middle rank (1..pp-2; 0 where pp < 3) holding the most
    decoder layers, ties to the most MoE layers then the lowest rank (its stage time bounds the
    pipeline's pace with the first and the last)."""
    return _custom_tables(ctx, t["pp"], t["vpp"])[3]


LOOKUP_ROWS = 4096  # longer tables read stage_layers from a table over (pp, vpp, rank) (same numbers)
_LAYER_TABLES: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _layer_table(ctx, top_pp: int, top_vpp: int) -> tuple[np.ndarray, np.ndarray]:
    """(layers, dense layers) of every (pp, vpp, rank) with pp <= top_pp, vpp <= top_vpp, rank < top_pp,
    flattened in that order (_stage_layers_rows on that grid: what it reads of ctx is in the key)."""
    st = ctx.stats
    step = ctx.model.moe.layer_step if ctx.model.moe else 1
    key = (ctx.model.layers, st.dense_layers, st.moe_layers, step, top_pp, top_vpp)
    found = _LAYER_TABLES.get(key)  # read once: another thread may clear the cache
    if found is None:
        if len(_LAYER_TABLES) > 64:
            _LAYER_TABLES.clear()
        pp, vpp, rank = (a.ravel() for a in np.meshgrid(np.arange(1, top_pp + 1), np.arange(1, top_vpp + 1),
                                                        np.arange(top_pp), indexing="ij"))
        lps, dense, _ = _stage_layers_rows(ctx, {"pp": pp, "vpp": vpp}, np.minimum(rank, pp - 1))
        found = _LAYER_TABLES[key] = (lps, np.array(dense, dtype=float))
    return found


def _stage_layers_rows(ctx, t, rank):
    """stage_layers of the ranks `rank` (one per plan), row by row."""
    st, pp, vpp = ctx.stats, t["pp"], t["vpp"]
    base, extra = _chunk_layers(ctx, t)
    lps = (vpp * base + np.clip(-((rank - extra) // pp), 0, vpp)).astype(float)
    if not st.moe_layers:
        dense = lps
    elif not st.dense_layers:
        dense = np.zeros_like(lps)
    else:
        dense = _dense_on_rank(ctx, t, rank, base, extra)
    return lps, dense, lps - dense


def stage_window_layers(ctx, t, stage):
    """Sliding-window layers on a pipeline rank ('first', 'last' or ranks), from the model's per-layer
    pattern (spec.model.window_pattern) over the rank's chunks as stage_layers splits them (chunk c
    holds layers c*base + min(c, extra) onward, base + (c < extra) of them). Under a Megatron split
    (runtime.pipeline_layout / account_for_*) or a count without a pattern: the rank's layers times
    the model's windowed share. The MTP modules' layers attend in full (as attention_flops_per_token
    counts them): only the rank's decoder layers take the windowed share."""
    from planner.arch import window_layers
    from planner.spec.model import window_pattern

    m = ctx.model
    n_sw = window_layers(m)
    pattern = window_pattern(m) if n_sw else None
    if not n_sw or n_sw == m.layers or pattern is None or split_key_of(ctx) is not None:
        lps, _, _ = stage_layers(ctx, t, stage)
        decoder = lps - stage_mtp(ctx, t, stage) if m.mtp_layers else lps
        return decoder * (n_sw / m.layers)
    rank = pipeline_rank(t, stage)
    pp, vpp = t["pp"], t["vpp"]
    base, extra = _chunk_layers(ctx, t)
    cum = np.concatenate([[0], np.cumsum(pattern)])
    out = np.zeros(np.shape(pp))
    for v in range(int(np.max(vpp)) if np.size(vpp) else 0):
        c = rank + v * pp
        start = np.minimum(c * base + np.minimum(c, extra), m.layers)
        end = np.minimum(start + base + (c < extra), m.layers)
        out = out + np.where(v < vpp, cum[end] - cum[start], 0)
    return out


def stage_params(ctx, t, stage) -> dict:
    """Parameters of the stage's model replica before tensor/expert sharding.

    non_expert: attention, norms, dense MLPs, routers and shared experts of its layers, plus the
      embedding (first stage: word and learned position tables) or the final norm and output layer
      (last stage). With tied embeddings and pp > 1 the last stage keeps its own copy of the word
      embedding as the output weight, with its own gradient and optimizer state, all-reduced with
      the first stage's (Megatron-LM `shared_embedding_or_output_weight`; DeepSpeed `TiedLayerSpec`).
    expert: the routed experts of its MoE layers.
    gemm: the weights of its layers' matrix multiplications, which Transformer Engine runs in FP8
      (attention and MLP projections, shared and routed experts; not norms, routers or the embedding).
    norms: its norm weights (vectors).
    MTP modules on the stage (stage_mtp): their transformer layers are among its layers; each adds
      eh_proj (a GEMM weight, run in the FP8 context: MultiTokenPredictionLayer._proj_and_transformer_layer)
      and three norms, and a rank other than the first builds its own copy of the embedding for them
      (GPTModel: `if self.pre_process or self.mtp_process`), its gradient all-reduced with the first
      rank's like a tied output weight (finalize_model_grads._allreduce_word_embedding_grads); on the last
      rank of a tied model the one copy serves as both (GPTModel.shared_embedding_or_output_weight)."""
    st, pp, m = ctx.stats, t["pp"], ctx.model
    lps, dense, moe = stage_layers(ctx, t, stage)
    layer = lps * (st.attention_per_layer + st.norms_per_layer) + dense * st.dense_mlp_per_layer \
        + moe * (st.router_per_moe_layer + st.shared_experts_per_moe_layer)
    tied_copy = m.vocab * m.hidden if m.tie_embeddings else 0
    rank = pipeline_rank(t, stage)
    first, last = rank == 0, rank == pp - 1
    mtp = stage_mtp(ctx, t, rank)
    ends = np.where(first, st.embedding, 0.0) + np.where(last, st.lm_head + st.final_norm, 0.0) \
        + np.where(last & (pp > 1), tied_copy, 0.0) \
        + np.where((mtp > 0) & ~first & ~(last & (tied_copy > 0)), st.embedding, 0.0)  # a tied copy serves both
    eh_proj = 2 * m.hidden * m.hidden
    gemm = lps * st.attention_per_layer + dense * st.dense_mlp_per_layer + moe * st.shared_experts_per_moe_layer \
        + mtp * eh_proj
    norms = lps * st.norms_per_layer + mtp * (st.mtp_extra_per_layer - eh_proj)
    return {"non_expert": layer + ends + mtp * st.mtp_extra_per_layer, "expert": moe * st.routed_experts_per_moe_layer,
            "gemm": gemm, "norms": norms, "layers": lps, "dense": dense, "moe": moe, "mtp": mtp}


def in_flight_microbatches(t, stage):
    """Micro-batches whose activations the stage stores at its peak, in units of its full layer set.

    1F1B (Narayanan et al. 2021; Korthikanti et al. 2022, Sec. 4.2.3): rank r runs pp - r - 1
    forwards and one more before its first backward: min(pp - r, ga). Interleaved with vpp chunks
    (Megatron-Core `get_pp_rank_microbatches` in pipeline_parallel/schedules.py): rank r warms up
    2(pp-r-1) + (vpp-1) x microbatch_group_size_per_vp_stage (default pp) chunk-forwards and runs
    one more before its first backward, each chunk being 1/vpp of its layers; capped by the ga*vpp
    chunk-forwards of the step. For the first rank this is pp(1 + (pp-1)/(pp*vpp)) micro-batches,
    Korthikanti's interleaving factor."""
    pp, vpp, ga = t["pp"], t["vpp"], t["ga"]
    rank = pipeline_rank(t, stage)
    chunks = np.where(vpp > 1, 2 * (pp - rank - 1) + (vpp - 1) * pp + 1, pp - rank)
    return np.minimum(chunks, ga * vpp) / vpp
