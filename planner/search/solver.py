"""Plan search: CP-SAT enumerates every integer layout that satisfies the structural constraints;
numpy then evaluates memory and time for every layout x categorical choice at once, removes the
plans that do not fit (GPU memory, host memory, NVMe) or break the budget, and ranks the rest.

Nothing is pruned by a heuristic: every plan of the space is either rejected by an exact
constraint or evaluated, so the ranking is exact under the model.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
from ortools.sat.python import cp_model

from planner.estimate import table as T
from planner.estimate.evaluate import Context, evaluate_table, result_row
from planner.frameworks.rules import framework_mask
from planner.search.space import domains

INT_FIELDS = ("tp", "pp", "cp", "ep", "vpp", "dp", "mbs", "ga")


class _Collector(cp_model.CpSolverSolutionCallback):
    def __init__(self, variables):
        super().__init__()
        self._vars = variables
        self.rows: list[tuple[int, ...]] = []

    def on_solution_callback(self):
        self.rows.append(tuple(self.Value(v) for v in self._vars))


def _prime_exponents(n: int) -> dict[int, int]:
    out, p = {}, 2
    while p * p <= n:
        while n % p == 0:
            out[p] = out.get(p, 0) + 1
            n //= p
        p += 1
    if n > 1:
        out[n] = out.get(n, 0) + 1
    return out


def layouts(scenario) -> dict[str, np.ndarray]:
    """All (tp, pp, cp, ep, vpp, dp, mbs, ga) satisfying the structural constraints, via CP-SAT.

    Every variable takes a value from its domain through one-hot booleans, and the products and
    divisibility constraints are written on prime exponents, which keeps the model linear:
    x * y = n  <=>  e_p(x) + e_p(y) = e_p(n) for every prime p;  x | y  <=>  e_p(x) <= e_p(y).
    """
    dom = domains(scenario)
    if any(not v for v in dom.values()):
        return {k: np.array([], dtype=np.int64) for k in INT_FIELDS}
    n = scenario.cluster.gpus
    layers = scenario.model.layers
    gb = scenario.training.global_batch
    primes = sorted({p for k in dom for v in dom[k] for p in _prime_exponents(v)}
                    | set(_prime_exponents(n)) | set(_prime_exponents(gb)) | set(_prime_exponents(layers)))
    model = cp_model.CpModel()
    pick = {k: {v: model.NewBoolVar(f"{k}={v}") for v in dom[k]} for k in INT_FIELDS}
    for k in INT_FIELDS:
        model.AddExactlyOne(pick[k].values())

    def e(k, p):
        return sum(b * _prime_exponents(v).get(p, 0) for v, b in pick[k].items())

    def value_is(k, pred):
        return sum(b for v, b in pick[k].items() if pred(v))

    inter = model.NewBoolVar("interleaved")  # vpp > 1
    model.Add(value_is("vpp", lambda v: v > 1) == 1).OnlyEnforceIf(inter)
    model.Add(value_is("vpp", lambda v: v > 1) == 0).OnlyEnforceIf(inter.Not())
    model.Add(value_is("pp", lambda v: v > 1) == 1).OnlyEnforceIf(inter)  # vpp > 1 needs pp > 1
    for p in primes:
        model.Add(e("dp", p) + e("tp", p) + e("pp", p) + e("cp", p) == _prime_exponents(n).get(p, 0))
        model.Add(e("mbs", p) + e("ga", p) + e("dp", p) == _prime_exponents(gb).get(p, 0))
        model.Add(e("pp", p) + e("vpp", p) <= _prime_exponents(layers).get(p, 0))  # layers % (pp*vpp)
        model.Add(e("ep", p) <= e("dp", p) + e("cp", p))  # EP carved from dp * cp
        # Megatron's interleaved schedule needs the number of micro-batches divisible by pp.
        model.Add(e("pp", p) <= e("ga", p)).OnlyEnforceIf(inter)
    solver = cp_model.CpSolver()
    solver.parameters.enumerate_all_solutions = True
    solver.parameters.num_workers = 1
    values = [(k, v, b) for k in INT_FIELDS for v, b in pick[k].items()]
    cb = _Collector([b for _, _, b in values])
    solver.Solve(model, cb)
    rows = []
    for bits in cb.rows:
        chosen = {k: v for (k, v, _), bit in zip(values, bits) if bit}
        rows.append(tuple(chosen[k] for k in INT_FIELDS))
    rows = np.array(sorted(set(rows)), dtype=np.int64).reshape(-1, len(INT_FIELDS))
    return {k: rows[:, i] for i, k in enumerate(INT_FIELDS)}


def candidate_table(scenario) -> tuple[dict, int]:
    """Layouts x categorical choices, with sp set as each framework runs it; framework rules and
    fixed fields applied. Returns (table, size of the space before the framework rules)."""
    so = scenario.search
    lay = layouts(scenario)
    fixed = so.fixed
    cats = {
        "framework": [T.FRAMEWORKS.index(f) for f in so.frameworks],
        "precision": [T.PRECISIONS.index(p) for p in so.precision
                      if scenario.cluster.node.gpu.peak_tflops(p) is not None],
        "zero": list(so.zero),
        "offload": [T.OFFLOADS.index(o) for o in so.offload],
        "offload_params": [T.OFFLOADS.index(o) for o in so.offload_params],
        "recompute": [T.RECOMPUTES.index(r) for r in so.recompute],
    }
    for key, values in cats.items():
        if key in fixed:
            want = fixed[key]
            code = T.CATEGORICAL[key].index(want) if key in T.CATEGORICAL else int(want)
            cats[key] = [c for c in values if c == code] or ([code] if key != "precision" else [])
    combos = np.array(list(itertools.product(*cats.values())), dtype=np.int64).reshape(-1, len(cats))
    n_lay, n_cat = len(lay["tp"]), len(combos)
    li = np.repeat(np.arange(n_lay), n_cat)
    ci = np.tile(np.arange(n_cat), n_lay)
    t = {k: lay[k][li] for k in INT_FIELDS}
    for j, key in enumerate(cats):
        t[key] = combos[ci, j]
    t["sp"] = (t["tp"] > 1) & (t["framework"] != T.FRAMEWORKS.index("deepspeed"))
    if "sp" in fixed:
        t["sp"] = np.full_like(t["sp"], bool(fixed["sp"]))
    considered = T.size(t)
    keep = framework_mask(t)
    return T.take(t, keep), considered


OBJECTIVE_KEYS = {"throughput": "tokens_per_s", "time": "days", "cost": "cost_usd"}


def order(ev: dict, objective: str) -> np.ndarray:
    """Indices sorted best first: throughput descending; time and cost ascending (ties: throughput)."""
    tps = ev["tokens_per_s"]
    # Ties (within 0.1%) go to the plan with fewer moving parts, then to the one with more headroom.
    simpler = ev["cp"] * ev["vpp"] * ev["ep"] * (1 + ev["offload"] + ev["offload_params"])
    # A 'tight' plan must be 3% faster than a 'fits' one to rank above it.
    tps = tps * np.where(ev["verdict"] == 1, 0.97, 1.0)
    if objective == "throughput":
        key = -np.round(np.log(tps) / np.log(1.001))
    elif objective == "time":
        key = np.round(np.log(ev["days"]) / np.log(1.001))
    else:
        key = np.round(np.log(np.nan_to_num(ev["cost_usd"], nan=np.inf)) / np.log(1.001))
    return np.lexsort((ev["memory_total"], simpler, ev["verdict"], key))


def solve(scenario, objective: str | None = None, top: int | None = None) -> dict:
    """Search the scenario's plan space; return the ranked feasible plans and search statistics."""
    t0 = time.perf_counter()
    objective = objective or scenario.objective
    top = top or scenario.top
    ctx = Context(scenario)
    t, considered = candidate_table(scenario)
    ev = evaluate_table(ctx, t) if T.size(t) else None
    result = {"scenario": scenario.name, "objective": objective, "gpus": scenario.cluster.gpus,
              "considered": considered, "valid": T.size(t)}
    if ev is None:
        result.update(feasible=0, plans=[], seconds=time.perf_counter() - t0, closest=None)
        return result
    b = scenario.budget
    ok = ev["verdict"] < 2
    within = np.ones_like(ok)
    if b.max_days is not None:
        within &= ev["days"] <= b.max_days
    if b.max_usd is not None:
        within &= np.nan_to_num(ev["cost_usd"], nan=np.inf) <= b.max_usd
    if b.max_gpus is not None:
        within &= ev["gpus"] <= b.max_gpus
    feasible = np.flatnonzero(ok & within)
    keys = {k: v[feasible] for k, v in ev.items() if isinstance(v, np.ndarray) and v.shape == ok.shape}
    keys.update({k: t[k][feasible] for k in ("cp", "vpp", "ep", "offload", "offload_params")},
                memory_total=ev["memory"]["total"][feasible])
    ranked = feasible[order(keys, objective)]
    plans = [result_row(ctx, t, ev, int(i)) for i in ranked[:top]]
    closest, explanation = None, []
    if not plans:
        if ok.any():  # plans fit in memory, the budget rules them out
            i = int(np.flatnonzero(ok)[np.argmax(ev["tokens_per_s"][ok])])
            closest = result_row(ctx, t, ev, i)
            explanation = [f"{int(ok.sum()):,} plans fit in memory but none is within the budget; the fastest "
                           f"takes {closest['run']['days']:.1f} days and costs {closest['run']['cost_usd']}"]
        else:  # the plan that needs the least memory relative to capacity explains why nothing fits
            i = int(np.argmin(ev["memory"]["total"] / ev["capacity_bytes"]))
            closest = result_row(ctx, t, ev, i)
            explanation = explain_memory(closest)
    result.update(feasible=int(len(feasible)), fits_memory=int(ok.sum()), plans=plans, closest=closest,
                  explanation=explanation, seconds=time.perf_counter() - t0)
    return result


def explain_memory(row: dict) -> list[str]:
    """Why the closest plan does not fit: the overflow and the largest memory terms."""
    m = row["memory"]
    over = m["per_gpu_gib"] - m["capacity_gib"]
    terms = sorted(m["breakdown_gib"].items(), key=lambda kv: -kv[1])
    lines = []
    if over > 0:
        lines.append(f"the closest plan needs {m['per_gpu_gib']:.1f} GiB per GPU of {m['capacity_gib']:.1f}: "
                     f"over by {over:.1f} GiB; largest terms: "
                     + ", ".join(f"{k} {v:.1f} GiB" for k, v in terms[:3]))
    else:
        lines.append(f"GPU memory fits ({m['per_gpu_gib']:.1f} GiB) but the host does not: "
                     f"{m['host_per_node_gib']:.1f} GiB per node of {m['host_capacity_gib']} "
                     f"(NVMe {m['nvme_per_node_gb']:.0f} GB)")
    lines.append("try: more GPUs or a GPU with more memory, ZeRO-3, CPU offload, full recomputation, "
                 "a smaller micro-batch or sequence")
    return lines
