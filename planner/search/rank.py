"""Ranking: the objective's order and the Pareto front of (days, cost).

The default order is the objective's, with two stated departures (README "Ranking"):
* a 'tight' plan (memory use 80-100% of the GPU) counts TIGHT_PENALTY worse, so it must be more
  than 3% better than a plan that fits comfortably to rank above it;
* plans within TIE (1%) of each other are ties, placed simplest first, then most headroom first.
`preferred()` says, for every shown plan, when one of these put it above a plan that is better by the
objective alone. `strict=True` ranks by the objective alone (ties of equal score: simpler first).
"""

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


def objective_score(keys: dict, objective: str) -> np.ndarray:
    """The objective alone, higher is better: tokens/s, 1/days or 1/cost (no price: -inf... 0)."""
    if objective == "throughput":
        return np.asarray(keys["tokens_per_s"], dtype=float)
    if objective == "time":
        return 1.0 / np.asarray(keys["days"], dtype=float)
    return 1.0 / np.nan_to_num(np.asarray(keys["cost_usd"], dtype=float), nan=np.inf)


def _simpler(keys: dict) -> np.ndarray:
    return keys["pp"] * keys["vpp"] * keys["cp"] * keys["ep"] * (1 + keys["offload"] + keys["offload_params"])


def order(keys: dict, objective: str, head: int = 200, places: int | None = None, strict: bool = False) -> np.ndarray:
    """Indices of the rows of `keys` (arrays: tokens_per_s, days, cost_usd, verdict, pp, cp, vpp, ep,
    offload, offload_params, memory_total) sorted best first.

    Exact order by the objective (a 'tight' plan counts TIGHT_PENALTY worse), then, for the first
    `head` places, a tie band: among the plans within TIE of the best one not yet placed, the
    simplest (fewest pipeline chunks x context x expert ranks, no offload), then the one with the
    most memory headroom, takes the next place. `places` (<= head) stops the tie band after that many
    places (the first `places` are the same; the rest then follow in exact order). strict: the
    objective alone, no penalty, no band (equal scores: simpler first, then most headroom)."""
    simpler = _simpler(keys)
    if strict:
        return np.lexsort((keys["memory_total"], simpler, -objective_score(keys, objective))).astype(np.int64)
    score = objective_score(keys, objective) * np.where(keys["verdict"] == 1, TIGHT_PENALTY, 1.0)
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


REASONS = {"tie": f"within {100 * (TIE - 1):.0f}% of a plan ranked below it by the objective, and simpler "
                  "(fewer pipeline chunks x context x expert ranks, no offload) or with more memory headroom",
           "tight": f"a plan ranked below it is better by the objective but tight (memory use 80-100%), "
                    f"which counts {100 * (1 - TIGHT_PENALTY):.0f}% worse"}


def ranking_rule(strict: bool) -> dict:
    """The JSON `ranking` object: the rule in force and what each `preferred` reason means."""
    if strict:
        return {"strict": True, "rule": "by the objective alone"}
    return {"strict": False, "rule": f"by the objective; a tight plan counts {100 * (1 - TIGHT_PENALTY):.0f}% worse; "
                                     f"plans within {100 * (TIE - 1):.0f}% are ties, simplest first",
            "tie_band": round(TIE - 1, 6), "tight_penalty": round(1 - TIGHT_PENALTY, 6), "reasons": REASONS}


def preferred(keys: dict, objective: str, ranked: np.ndarray, top: int) -> list[str | None]:
    """For each of the first `top` ranked plans: None when no plan ranked below it is better by the
    objective alone, else why it is above that plan: 'tie' (within 1% of it and simpler or with more
    headroom) and/or 'tight' (that plan is tight, counted 3% worse). Compares with the best plan
    anywhere below (suffix maximum of the objective)."""
    ranked = np.asarray(ranked, dtype=np.int64)
    n = len(ranked)
    if not n:
        return []
    raw = objective_score(keys, objective)[ranked]
    tight = keys["verdict"][ranked] == 1
    pen = raw * np.where(tight, TIGHT_PENALTY, 1.0)
    rev = raw[::-1]  # suffix maximum and its position, from the prefix maximum of the reversed array
    cummax = np.maximum.accumulate(rev)
    last = np.maximum.accumulate(np.where(rev == cummax, np.arange(n), 0))
    out: list[str | None] = []
    for p in range(min(top, n - 1)):
        k = n - 2 - p  # the suffix after position p, in the reversed array
        if not cummax[k] > raw[p] * (1 + 1e-12):
            out.append(None)
            continue
        j = n - 1 - int(last[k])
        why = ["tight"] if tight[j] and not tight[p] else []
        if pen[j] > pen[p] * (1 + 1e-12):
            why.append("tie")
        out.append("+".join(why))
    return out + [None] * (min(top, n) - len(out))


def pareto_mask(days: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """True where no other point is at least as good in both and better in one (minimising both).
    Sort by days then cost; a point is on the front when its cost is below every earlier cost."""
    days = np.asarray(days, dtype=float)
    cost = np.nan_to_num(np.asarray(cost, dtype=float), nan=np.inf)
    idx = np.lexsort((cost, days))
    c = cost[idx]
    earlier = np.minimum.accumulate(np.concatenate(([np.inf], c[:-1])))
    mask = np.zeros(len(days), dtype=bool)
    mask[idx] = c < earlier
    return mask
