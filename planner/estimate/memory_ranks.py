"""Which pipeline ranks can hold a plan's memory peak, without evaluating every rank.

A rank's memory depends on the rank only through (memory_terms_*):
  * what it holds: its stage parameters (memory_terms_stage.stage_params: layers, dense and MoE
    layers, the embedding on the first rank, the output layer on the last) and whether it is the
    first or the last rank (ends: logits, receive buffers, Adafactor's factored ends);
  * its micro-batches in flight (memory_terms_stage.in_flight_microbatches), non-increasing in the
    rank: min(pp - r, ga) for 1F1B, min(2(pp - r - 1) + (vpp - 1) pp + 1, ga vpp) / vpp interleaved.
Ranks that hold the same (a "class") differ only by the micro-batches in flight, which scale
the stored activations (a product of non-negative factors: non-increasing in the rank, rounding
included). Their total is states + fixed + max(forward/backward transients, step temporary) +
fragmentation of the phase's largest tensor (memory.stage_memory): going up the class's ranks it
falls while the transients lead, then stays level where the step temporary leads. So the class's
largest total is that of its lowest rank a or its highest rank b; when b's is strictly larger the
lowest rank reaching it lies between them, and those plans are scanned rank by rank (rare: only
when DeepSpeed's step temporary exceeds the transients of the class's last rank only).
"""

from __future__ import annotations

import numpy as np

from planner.estimate.memory_terms_stage import stage_params


def rank_classes(ctx, pp: int, vpp: int) -> list[tuple[int, int]]:
    """(lowest, highest) rank of each class of ranks of a (pp, vpp) pipeline, by lowest rank: ranks
    whose stage parameters are equal and that are equally first or last."""
    ranks = np.arange(pp)
    t = {"pp": np.full(pp, pp), "vpp": np.full(pp, vpp)}
    sp = stage_params(ctx, t, ranks)
    keys = np.column_stack([np.broadcast_to(np.asarray(v, dtype=float), (pp,)) for v in sp.values()]
                           + [ranks == 0, ranks == pp - 1])
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    last = np.zeros(len(first), dtype=np.int64)
    np.maximum.at(last, inverse, ranks)
    return sorted(zip(first.tolist(), last.tolist()))


def _pair_candidates(ctx, pp: int, vpp: int) -> tuple[list[int], list[tuple[int, int]]]:
    """(candidate ranks ascending, (slot of lowest, slot of highest) of each class of several ranks)
    of a (pp, vpp) pipeline, cached on the context (they depend on its model only)."""
    cache = ctx.__dict__.setdefault("_rank_candidates", {})
    if (pp, vpp) not in cache:
        classes = rank_classes(ctx, pp, vpp)
        cands = sorted({r for c in classes for r in c})
        slot = {r: j for j, r in enumerate(cands)}
        cache[(pp, vpp)] = (cands, [(slot[a], slot[b]) for a, b in classes if b > a])
    return cache[(pp, vpp)]


def candidate_ranks(ctx, t: dict) -> tuple[np.ndarray, np.ndarray]:
    """(ranks, ends) per plan: `ranks` (plans x slots) the lowest and highest rank of every class,
    ascending, -1 past the plan's candidates (slot 0 is rank 0); `ends` (plans x classes x 2) the
    slots of each class's lowest and highest rank (-1 where the class has one rank or none)."""
    pair, pp, vpp, ranks, ends = candidate_table(ctx, t)
    return ranks[pair], ends[pair]


def candidate_table(ctx, t: dict) -> tuple[np.ndarray, ...]:
    """candidate_ranks once per distinct (pp, vpp) pair of the plans: (the pair of every plan, each
    pair's pp and vpp, its ranks (pairs x slots), its ends (pairs x classes x 2))."""
    pp, vpp = t["pp"].astype(np.int64), t["vpp"].astype(np.int64)
    width_v = int(vpp.max()) + 1
    key = pp * width_v + vpp
    present = np.flatnonzero(np.bincount(key))
    per_pair = [_pair_candidates(ctx, int(k // width_v), int(k % width_v)) for k in present]
    width = max(len(c) for c, _ in per_pair)
    n_ends = max([len(e) for _, e in per_pair] + [1])
    ranks = np.full((len(present), width), -1, dtype=np.int64)
    ends = np.full((len(present), n_ends, 2), -1, dtype=np.int64)
    for j, (c, e) in enumerate(per_pair):
        ranks[j, :len(c)] = c
        if e:
            ends[j, :len(e)] = e
    at = np.zeros(int(key.max()) + 1, dtype=np.int64)
    at[present] = np.arange(len(present))
    return np.take(at, key), present // width_v, present % width_v, ranks, ends


def every_rank(t: dict) -> np.ndarray:
    """Every rank of every plan (plans x max pp), -1 past the plan's pp."""
    width = int(t["pp"].max()) if len(t["pp"]) else 1
    r = np.broadcast_to(np.arange(width), (len(t["pp"]), width))
    return np.where(r < t["pp"][:, None], r, -1)


def level_beyond(totals: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Plans where some class's highest rank has a strictly larger total than its lowest (the
    class's peak may then lie at a rank between them); NaN totals (not evaluated) never count."""
    rows = np.arange(len(totals))[:, None]
    lo, hi = ends[..., 0], ends[..., 1]
    ok = lo >= 0
    a = totals[rows, np.where(ok, lo, 0)]
    b = totals[rows, np.where(ok, hi, 0)]
    return np.any(ok & (b > a), axis=1)
