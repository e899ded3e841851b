"""Ranking: the objective's order and the Pareto front of (days, cost)."""

from __future__ import annotations

import numpy as np

OBJECTIVES = ("throughput", "time", "cost")
# A 'tight' plan must be this much better than a 'fits' one to rank above it.
TIGHT_PENALTY = 0.97
# Plans within 0.1% of each other are ties: the simpler one (fewer parallel dimensions, no
# offload), then the one with more memory headroom, comes first.
TIE = 1.001


def order(keys: dict, objective: str) -> np.ndarray:
    """Indices of the rows of `keys` (arrays: tokens_per_s, days, cost_usd, verdict, cp, vpp, ep,
    offload, offload_params, memory_total) sorted best first."""
    tps = keys["tokens_per_s"] * np.where(keys["verdict"] == 1, TIGHT_PENALTY, 1.0)
    simpler = keys["cp"] * keys["vpp"] * keys["ep"] * (1 + keys["offload"] + keys["offload_params"])
    if objective == "throughput":
        key = -np.round(np.log(tps) / np.log(TIE))
    elif objective == "time":
        key = np.round(np.log(keys["days"] / np.where(keys["verdict"] == 1, TIGHT_PENALTY, 1.0)) / np.log(TIE))
    else:
        cost = np.nan_to_num(keys["cost_usd"], nan=np.inf) / np.where(keys["verdict"] == 1, TIGHT_PENALTY, 1.0)
        key = np.round(np.log(cost) / np.log(TIE))
    return np.lexsort((keys["memory_total"], simpler, -tps, key))


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
