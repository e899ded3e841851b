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
from planner.search.rank import order, pareto_mask, preferred, ranking_rule
from planner.search.space import all_layouts, domains

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


def _layout_key(scenario) -> tuple:
    """Everything the layouts depend on: two scenarios with the same key have the same layouts."""
    m, so = scenario.model, scenario.search
    return (scenario.cluster.gpus, scenario.cluster.node.domain, m.layers, m.heads,
            m.heads if m.mla else m.n_kv_heads, m.moe.experts if m.moe else 0,
            scenario.training.seq_len, scenario.training.global_batch,
            tuple(so.micro_batch), *(tuple(getattr(so, k) or ()) for k in ("tp", "pp", "cp", "ep", "vpp")),
            tuple(sorted((k, str(v)) for k, v in so.fixed.items())), so.uneven_pipeline)


_LAYOUT_CACHE: dict[tuple, dict] = {}


def layouts(scenario) -> dict[str, np.ndarray]:
    """All (tp, pp, cp, ep, vpp, dp, mbs, ga) satisfying the structural constraints (cached by
    everything they depend on, so purchase comparisons reuse them across node types)."""
    key = _layout_key(scenario)
    if key not in _LAYOUT_CACHE:
        if len(_LAYOUT_CACHE) > 256:
            _LAYOUT_CACHE.clear()
        found = _enumerate_layouts(scenario)
        for a in found.values():
            a.setflags(write=False)
        _LAYOUT_CACHE[key] = found
    return _LAYOUT_CACHE[key]


GRID_FIELDS = ("tp", "pp", "cp", "ep", "dp")  # enumerated by CP-SAT; mbs, ga, vpp follow by arithmetic


def _enumerate_layouts(scenario) -> dict[str, np.ndarray]:
    """All (tp, pp, cp, ep, vpp, dp, mbs, ga) satisfying the structural constraints.

    CP-SAT enumerates the device grid (tp, pp, cp, ep, dp): every degree takes a value of its domain
    through one-hot booleans, and the products and divisibility constraints are written on prime
    exponents, which keeps the model linear: x * y = n  <=>  e_p(x) + e_p(y) = e_p(n) for every prime p;
    x | y  <=>  e_p(x) <= e_p(y). Given a grid, the batch split and the interleaving depth follow by
    arithmetic (numpy): mbs from its domain with mbs * dp | global batch, ga = global / (mbs * dp),
    vpp = 1 or (pp > 1, ga % pp == 0 for Megatron's interleaved schedule, and pp * vpp <= layers, or
    layers % (pp * vpp) == 0 without uneven splits)."""
    dom = domains(scenario)
    empty = {k: np.array([], dtype=np.int64) for k in INT_FIELDS}
    if any(not v for v in dom.values()):
        return empty
    n = scenario.cluster.gpus
    layers = scenario.model.layers
    gb = scenario.training.global_batch
    primes = sorted({p for k in GRID_FIELDS for v in dom[k] for p in _prime_exponents(v)}
                    | set(_prime_exponents(n)) | set(_prime_exponents(gb)))
    model = cp_model.CpModel()
    pick = {k: {v: model.NewBoolVar(f"{k}={v}") for v in dom[k]} for k in GRID_FIELDS}
    for k in GRID_FIELDS:
        model.AddExactlyOne(pick[k].values())

    def e(k, p):
        return sum(b * _prime_exponents(v).get(p, 0) for v, b in pick[k].items())

    for p in primes:
        model.Add(e("dp", p) + e("tp", p) + e("pp", p) + e("cp", p) == _prime_exponents(n).get(p, 0))
        model.Add(e("dp", p) <= _prime_exponents(gb).get(p, 0))  # dp divides the global batch
        model.Add(e("ep", p) <= e("dp", p) + e("cp", p))  # EP carved from dp * cp
    solver = cp_model.CpSolver()
    solver.parameters.enumerate_all_solutions = True
    solver.parameters.num_workers = 1
    values = [(k, v, b) for k in GRID_FIELDS for v, b in pick[k].items()]
    cb = _Collector([b for _, _, b in values])
    solver.Solve(model, cb)
    grid = np.array(sorted({tuple(v for (k, v, _), bit in zip(values, bits) if bit) for bits in cb.rows}),
                    dtype=np.int64).reshape(-1, len(GRID_FIELDS))
    if not len(grid):
        return empty
    g = {k: grid[:, i] for i, k in enumerate(GRID_FIELDS)}
    # Expand every grid point by micro-batch and interleaving depth (vectorised).
    mbs = np.array(dom["mbs"], dtype=np.int64)
    vpp = np.array(dom["vpp"], dtype=np.int64)
    gi, mi, vi = (a.ravel() for a in np.meshgrid(np.arange(len(grid)), np.arange(len(mbs)),
                                                 np.arange(len(vpp)), indexing="ij"))
    out = {k: g[k][gi] for k in GRID_FIELDS}
    out["mbs"], out["vpp"] = mbs[mi], vpp[vi]
    ok = gb % (out["dp"] * out["mbs"]) == 0
    out["ga"] = np.where(ok, gb // np.maximum(out["dp"] * out["mbs"], 1), 0)
    ok &= np.isin(out["ga"], dom["ga"])
    pv = out["pp"] * out["vpp"]
    fits_layers = pv <= layers if scenario.search.uneven_pipeline else layers % pv == 0
    ok &= (out["vpp"] == 1) | ((out["pp"] > 1) & (out["ga"] % out["pp"] == 0))
    ok &= fits_layers
    return {k: out[k][ok] for k in INT_FIELDS}


def candidate_table(scenario, exhaustive: bool = False) -> tuple[dict, int]:
    """Layouts x categorical choices, with sp set as each framework runs it; framework rules and
    fixed fields applied. Returns (table, size of the space before the framework rules).
    `exhaustive` enumerates the layouts by brute force instead of CP-SAT (same result, slower)."""
    so = scenario.search
    lay = all_layouts(scenario, INT_FIELDS) if exhaustive else layouts(scenario)
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
    keep = framework_mask(t, scenario.model) & (~t["sp"] | (scenario.training.seq_len % t["tp"] == 0))  # SP splits the sequence
    return T.take(t, keep), considered


def _search_one(scenario, exhaustive: bool) -> dict:
    """Evaluate every valid plan of a single-count scenario; rank the feasible ones."""
    ctx = Context(scenario)
    t, considered = candidate_table(scenario, exhaustive)
    out = {"ctx": ctx, "t": t, "considered": considered, "valid": T.size(t), "ev": None,
           "ranked": np.array([], dtype=np.int64), "fits_memory": 0}
    if not T.size(t):
        return out
    ev = evaluate_table(ctx, t)
    b = scenario.budget
    ok = ev["verdict"] < 2
    within = ok.copy()
    if b.max_days is not None:
        within &= ev["days"] <= b.max_days
    if b.max_usd is not None:
        within &= np.nan_to_num(ev["cost_usd"], nan=np.inf) <= b.max_usd
    if b.max_gpus is not None:
        within &= ev["gpus"] <= b.max_gpus
    feasible = np.flatnonzero(within)
    out.update(ev=ev, ok=ok, feasible=feasible, fits_memory=int(ok.sum()))
    return out


def _keys(run: dict, rows: np.ndarray) -> dict:
    ev, t = run["ev"], run["t"]
    keys = {k: ev[k][rows] for k in ("tokens_per_s", "days", "cost_usd", "verdict")}
    keys.update({k: t[k][rows] for k in ("pp", "cp", "vpp", "ep", "offload", "offload_params")})
    keys["memory_total"] = ev["memory"]["total"][rows]
    return keys


def feasible_points(merged: dict, gpus: np.ndarray) -> dict:
    """Numbers of every evaluated feasible plan for the report's charts (numpy arrays, not JSON):
    tokens/s, days, cost (NaN without a price), GPU-hours = days x 24 x GPUs, memory per GPU (GiB)."""
    from planner.estimate.memory import GIB

    return {"tokens_per_s": merged["tokens_per_s"], "days": merged["days"], "cost_usd": merged["cost_usd"],
            "gpu_hours": merged["days"] * 24.0 * gpus, "memory_gib": merged["memory_total"] / GIB, "gpus": gpus}


def solve(scenario, objective: str | None = None, top: int | None = None, exhaustive: bool = False,
          progress=None, strict: bool = False, points: bool = False) -> dict:
    """Search the scenario's plan space (every node count of the cluster) and return the ranked
    feasible plans, the Pareto front of (days, cost) across node counts, and search statistics.
    When nothing is feasible, `closest` and `explanation` say why (planner.search.explain).
    strict: rank by the objective alone (planner.search.rank); else each plan's `preferred` says
    when the tie band or the tight penalty put it above a plan better by the objective.
    points: also return `points` (feasible_points), for the HTML report; remove it before JSON."""
    from planner.search.explain import bound_by, explain_infeasible

    t0 = time.perf_counter()
    objective = objective or scenario.objective
    top = top or scenario.top
    counts = scenario.cluster.node_counts
    runs = []
    for n in counts:
        sc = scenario.model_copy(update={"cluster": scenario.cluster.with_nodes(n)})
        runs.append((sc, _search_one(sc, exhaustive)))
        if progress:
            progress(len(runs), len(counts))
    # Merge the feasible plans of every count and rank them together.
    # Every feasible plan of every count, as (run index, row) pairs in two arrays.
    live = [i for i, (_, run) in enumerate(runs) if run["ev"] is not None]
    pool_run = np.concatenate([np.full(len(runs[i][1]["feasible"]), i) for i in live]) if live else np.array([], int)
    pool_row = np.concatenate([runs[i][1]["feasible"] for i in live]) if live else np.array([], int)
    per_run = [_keys(run, run["feasible"]) for _, run in runs if run["ev"] is not None]
    merged = {k: np.concatenate([keys[k] for keys in per_run]) for k in per_run[0]} if per_run else {}
    ranked = order(merged, objective, strict=strict) if len(pool_row) else np.array([], dtype=np.int64)
    rows = lambda idx: [result_row(runs[pool_run[j]][1]["ctx"], runs[pool_run[j]][1]["t"],  # noqa: E731
                                   runs[pool_run[j]][1]["ev"], int(pool_row[j])) for j in idx]
    plans = rows(ranked[:top])
    for p, j, why in zip(plans, ranked[:top], preferred(merged, objective, ranked, top) if len(pool_row) else []):
        p["gpus"] = runs[pool_run[j]][0].cluster.gpus
        p["preferred"] = why
        p["bound_by"] = bound_by(p)
    result = {"scenario": scenario.name, "objective": objective, "ranking": ranking_rule(strict),
              "gpus": counts[0] * scenario.cluster.node.gpus_per_node if len(counts) == 1 else
              [n * scenario.cluster.node.gpus_per_node for n in counts],
              "node_counts": counts, "exhaustive": exhaustive,
              "considered": sum(run["considered"] for _, run in runs),
              "valid": sum(run["valid"] for _, run in runs),
              "fits_memory": sum(run["fits_memory"] for _, run in runs),
              "feasible": int(len(pool_row)), "plans": plans, "closest": None, "explanation": []}
    if len(counts) > 1 and len(pool_row):
        front = np.flatnonzero(pareto_mask(merged["days"], merged["cost_usd"]))
        front = front[np.argsort(merged["days"][front])]
        result["pareto"] = [{"gpus": runs[pool_run[j]][0].cluster.gpus, "days": float(merged["days"][j]),
                             "cost_usd": None if np.isnan(merged["cost_usd"][j]) else float(merged["cost_usd"][j]),
                             "plan": r["plan"], "tokens_per_s": r["throughput"]["tokens_per_s"]}
                            for j, r in zip(front, rows(front))]
    if points and len(pool_row):
        result["points"] = feasible_points(merged, np.array([sc.cluster.gpus for sc, _ in runs])[pool_run])
    if not plans:
        result["closest"], result["explanation"] = explain_infeasible(scenario, runs, objective)
    result["seconds"] = time.perf_counter() - t0
    return result
