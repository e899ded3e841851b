"""Ranking: the objective's order and the Pareto front of (days, cost)."""

from __future__ import annotations

import numpy as np

OBJECTIVES = ("throughput", "time", "cost")
# A 'tight' plan must be this much better than a 'fits' one to rank above it (a policy, not a
# measurement: 3% is about half the model's mean error, benchmarks/accuracy_results.md).
TIGHT_PENALTY = 0.97
# Plans within 1% of each other are ties (the model is not more accurate than that: see
# benchmarks/accuracy_results.md): the simpler one (fewer pipeline chunks, context and expert
# ranks, no offload), then the one with more memory headroom, comes first.
TIE = 1.01


def order(keys: dict, objective: str, head: int = 200, places: int | None = None) -> np.ndarray:
    """Indices of the rows of `keys` (arrays: tokens_per_s, days, cost_usd, verdict, pp, cp, vpp, ep,
    offload, offload_params, memory_total) sorted best first.

    Exact order by the objective (a 'tight' plan counts TIGHT_PENALTY worse), then, for the first
    `head` places, a tie band: among the plans within TIE of the best one not yet placed, the
    simplest (fewest pipeline chunks x context x expert ranks, no offload), then the one with the
    most memory headroom, takes the next place. `places` (<= head) stops the tie band after that many
    places (the first `places` are the same; the rest then follow in exact order)."""
    penalty = np.where(keys["verdict"] == 1, TIGHT_PENALTY, 1.0)
    if objective == "throughput":
        score = keys["tokens_per_s"] * penalty  # higher is better
    elif objective == "time":
        score = penalty / keys["days"]
    else:
        score = penalty / np.nan_to_num(keys["cost_usd"], nan=np.inf)
    simpler = keys["pp"] * keys["vpp"] * keys["cp"] * keys["ep"] * (1 + keys["offload"] + keys["offload_params"])
    idx = np.lexsort((keys["memory_total"], simpler, -score))
    top = list(idx[:head + 1])
    placed = []
    while top and len(placed) < min(head, places or head):
        best = score[top[0]]
        band = [i for i in top if score[i] * TIE >= best]
        pick = min(band, key=lambda i: (simpler[i], keys["memory_total"][i], -score[i]))
        placed.append(pick)
        top.remove(pick)
    if len(idx) <= head:
        return np.array(placed + top, dtype=np.int64)
    taken = np.zeros(len(idx), dtype=bool)
    taken[placed] = True
    return np.concatenate([np.array(placed, dtype=np.int64), idx[~taken[idx]]])


def pareto_mask(days: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """True where no other point is at least as good in both and better in one (minimising both).
    Sort by days then cost; a point is on the front when its cost is below every earlier cost."""
    days = np.asarray(days, dtype=float)
    cost = np.nan_to_num(np.asarray(cost, dtype=float), nan=np.inf)
    idx = np.lexsort((cost, days))
    mask = np.zeros(len(days), dtype=bool)
    best = np.inf
    for i in idx:
        if cost[i] < best:
            mask[i] = True
            best = cost[i]
    return mask
