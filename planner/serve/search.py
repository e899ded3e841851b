"""Serving plan search: CP-SAT enumerates every integer layout (tp, pp, ep, replicas) that obeys the
structural constraints and the GPU budget; numpy evaluates every layout x engine x weight format x
KV format x max_batch at once (planner.serve.evaluate), drops plans that do not fit, are unstable
under the rate, miss the SLO or break the budget, and ranks the rest by the objective.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
from planner.serve import concurrency
from planner.serve import engines as E
from planner.search.cpsat import all_solutions, cp_model as cpsat_module
from planner.serve.evaluate import evaluate, result_row

POW2 = (1, 2, 4, 8, 16, 32, 64)


def _domains(sc) -> dict[str, list[int]]:
    m, node, so = sc.model, sc.cluster.node, sc.search
    gpus = max_gpus(sc)
    # search lists restrict the domains; the structural rules (tp divides the attention heads, as
    # `--plan` requires; pp at most the layers; ep divides the experts, 1 on a dense model) apply to them too
    tp = [x for x in so.tp or [x for x in POW2 if x <= min(node.domain, gpus)]
          if m.heads % x == 0 and E.kv_heads_split(m, x)]
    pp = [x for x in so.pp or [x for x in POW2 if x <= min(16, gpus)] if x <= m.layers]
    ep = ([x for x in so.ep or [x for x in POW2 if x <= max(tp, default=1)] if m.moe.experts % x == 0]
          if m.moe else [1])
    return {"tp": sorted(set(tp)), "pp": sorted(set(pp)), "ep": sorted(set(ep))}


def max_gpus(sc) -> int:
    g = sc.cluster.gpus
    if sc.budget.max_gpus:
        g = min(g, sc.budget.max_gpus)
    return g


def affordable_replicas(sc, gpus_per_instance: np.ndarray, most: np.ndarray) -> np.ndarray:
    """Most instances whose price stays within budget.max_usd_per_hour: floor(budget / (usd per GPU-hour x
    GPUs per instance)), at least 1 (a plan over the budget is kept so the explanation can name its
    price); `most` where the budget or the price is not given. Offline throughput per instance does not
    depend on the count, so the cost per token is the same at any count and the largest affordable one
    is the offline plan."""
    price = sc.cluster.node.usd_per_gpu_hour
    if sc.budget.max_usd_per_hour is None or not price:
        return most
    return np.maximum(np.floor(sc.budget.max_usd_per_hour / (price * gpus_per_instance) + 1e-9).astype(np.int64), 1)


def layouts(sc, largest_only: bool = False) -> np.ndarray:
    """Every (tp, pp, ep, replicas) with tp, pp, ep from their domains, ep | tp, and
    tp x pp x replicas <= the GPUs available: CP-SAT enumerates the instance layouts (tp, pp, ep), each
    takes every replica count up to g // (tp x pp); `largest_only`: the largest count only."""
    d = _domains(sc)
    g = max_gpus(sc)
    if not all(d.values()):  # a search list with no legal value (planner.serve.explain says which)
        return np.zeros((0, 4), dtype=np.int64)
    cp_model = cpsat_module()  # OR-Tools without pandas at start-up (planner.search.cpsat)
    model = cp_model.CpModel()
    tp = model.NewIntVarFromDomain(cp_model.Domain.FromValues(d["tp"]), "tp")
    pp = model.NewIntVarFromDomain(cp_model.Domain.FromValues(d["pp"]), "pp")
    ep = model.NewIntVarFromDomain(cp_model.Domain.FromValues(d["ep"]), "ep")
    tpp = model.NewIntVar(1, g, "tp_pp")  # one instance fits: tp x pp <= g
    model.AddMultiplicationEquality(tpp, [tp, pp])
    # ep divides tp: tp = ep x moe_tp
    moe_tp = model.NewIntVar(1, max(d["tp"]), "moe_tp")
    model.AddMultiplicationEquality(tp, [ep, moe_tp])
    inst = np.unique(all_solutions(model, [tp, pp, ep]), axis=0)
    most = g // (inst[:, 0] * inst[:, 1])  # replicas: 1 .. g // (tp x pp)
    if sc.serving.mode == "offline":  # offline: only the largest replica count matters for cost ...
        most = np.minimum(most, affordable_replicas(sc, inst[:, 0] * inst[:, 1], most))  # ... within the budget
    if sc.serving.mode == "offline" or largest_only:
        return np.column_stack([inst, most]).reshape(-1, 4)
    rep = np.concatenate([np.arange(1, m + 1) for m in most]) if len(inst) else np.zeros(0, dtype=np.int64)
    rows = np.column_stack([np.repeat(inst, most, axis=0), rep]).reshape(-1, 4)
    if sc.serving.mode == "concurrency":  # replicas beyond the concurrent requests would stand idle
        rows = rows[rows[:, 3] <= sc.serving.concurrency]
    return rows


def candidate_table(sc, largest_only: bool = False) -> dict[str, np.ndarray]:
    so = sc.search
    t = _expanded(sc, layouts(sc, largest_only))
    both = _with_disaggregated(t) if True in so.disaggregated else t
    if False not in so.disaggregated:
        both = {k: v[both["prefill_replicas"] > 0] for k, v in both.items()}
    return both


def group_table(sc) -> dict[str, np.ndarray]:
    """The colocated candidate rows at each instance layout's largest replica count (one row per group:
    layout x engine x weights x KV x max_batch x attention DP), in the full listing's order, with `inst`
    (the layout's index) and `pos` (the row's index: the order of the groups of one layout)."""
    lay = layouts(sc, largest_only=True)
    t = _expanded(sc, np.column_stack([lay, np.arange(len(lay))]))
    t["pos"] = np.arange(len(t["tp"]))
    return t


def _expanded(sc, lay: np.ndarray) -> dict[str, np.ndarray]:
    """Every layout row (tp, pp, ep, replicas[, inst]) x engine x weights x KV x max_batch x attention DP,
    layout-major, without the disaggregated variants."""
    gpu, so = sc.cluster.node.gpu, sc.search
    cats = []
    for eng, w, kv in itertools.product(so.engines, so.weights, so.kv_cache):
        e = E.ENGINE_NAMES.index(eng)
        if E.format_problem(e, w, kv, gpu) or E.model_problem(w, sc.model):
            continue
        dflt = int(E.default_max_batch(np.array([e]), gpu.memory_gib)[0])
        batches = so.max_batch or sorted({b for b in (16, 32, 64, 128, 256, 512, 1024, 2048) if b <= dflt} | {dflt})
        for b in batches:
            cats.append((e, E.WEIGHT_NAMES.index(w), E.KV_NAMES.index(kv), b))
    cats = np.array(cats, dtype=np.int64).reshape(-1, 4)
    moe = sc.model.moe is not None
    dp_opts = (0, 1) if moe else (0,)
    n_l, n_c, n_d = len(lay), len(cats), len(dp_opts)
    li = np.repeat(np.arange(n_l), n_c * n_d)
    ci = np.tile(np.repeat(np.arange(n_c), n_d), n_l)
    di = np.tile(np.array(dp_opts), n_l * n_c)
    t = {"tp": lay[li, 0], "pp": lay[li, 1], "ep": lay[li, 2], "replicas": lay[li, 3],
         "engine": cats[ci, 0], "wq": cats[ci, 1], "kv": cats[ci, 2], "max_batch": cats[ci, 3],
         "attn_dp": di.astype(bool)}
    # attention data parallel only with tp > 1 and ep = tp (each rank its own experts)
    keep = ~t["attn_dp"] | ((t["tp"] > 1) & (t["ep"] == t["tp"]))
    keep &= E.vllm_ep_ok(t["engine"], t["tp"], t["ep"])
    t = {k: v[keep] for k, v in t.items()}
    t["max_batched_tokens"] = E.default_max_batched_tokens(t["engine"], gpu.memory_gib, sc.serving.offline,
                                                          t["tp"], t["attn_dp"])
    t["prefill_replicas"] = np.zeros_like(t["tp"])
    if lay.shape[1] > 4:
        t["inst"] = lay[li, 4][keep]
    # what `--plan` refuses: a vLLM plan whose max_batch (per rank) exceeds its max_batched_tokens
    ok = E.vllm_tokens_ok(t["engine"], t["max_batch"], t["tp"], t["attn_dp"], t["max_batched_tokens"])
    return t if ok.all() else {k: v[ok] for k, v in t.items()}


def _with_disaggregated(t: dict) -> dict:
    """Add, for every plan of r >= 2 instances, its disaggregated variants: p prefill instances
    (p a power of two below r) and r - p decode instances of the same layout and GPU count."""
    r = t["replicas"]
    splits = [p for p in POW2 if p < r.max()] if len(r) else []
    parts = [t]
    for p in splits:
        keep = r > p
        if not keep.any():
            continue
        d = {k: v[keep].copy() for k, v in t.items()}
        d["prefill_replicas"] = np.full(int(keep.sum()), p, dtype=np.int64)
        d["replicas"] = d["replicas"] - p
        parts.append(d)
    return {k: np.concatenate([x[k] for x in parts]) for k in t}


def _order(ev, out_mean: float, objective: str, tiebreak: tuple = (), first: int | None = None) -> np.ndarray:
    """Plan indices best first: cost ($ per million output tokens), latency (p90 TTFT + output x
    p90 TPOT), gpus (fewest) or throughput (output tokens/s); ties broken by cost, then by `tiebreak`
    (np.lexsort keys, least significant first; none: the table's order). `first`: only the first that
    many (the same ones: every plan among them has a primary key at most the first-th smallest)."""
    cost = np.nan_to_num(ev["usd_per_m"], nan=np.inf)
    if objective == "latency":
        primary = ev["ttft"]["p90"] + out_mean * ev["tpot"]["p90"]
    elif objective == "gpus":
        primary = ev["gpus"].astype(float)
    elif objective == "throughput":
        primary = -ev["out_tok_s"]
    else:
        primary, cost = cost, -ev["out_tok_s"] / ev["gpus"]
    if first is not None and len(primary) > first:
        bound = np.partition(primary, first - 1)[first - 1]
        if not np.isnan(bound):
            sel = np.flatnonzero(primary <= bound)
            o = np.lexsort((*(k[sel] for k in tiebreak), cost[sel], primary[sel]))
            return sel[o][:first]
    return np.lexsort((*tiebreak, cost, primary))[slice(first)]


def feasible_mask(sc, ev) -> np.ndarray:
    ok = (ev["mem"]["verdict"] < 2) & ev["stable"] & ev["meets_slo"] & (ev["batch_cap"] >= 1 - 1e-9)
    if sc.budget.max_usd_per_hour is not None:
        ok &= ~(ev["usd_per_hour"] > sc.budget.max_usd_per_hour)
    return ok


def _bisected_table(sc, g: dict, top: int) -> tuple[dict, int, int]:
    """(table, rows of the full table, feasible plans of the full table) under a request rate, without
    listing every replica count. A group is a candidate row with its replica count free (1..R decode
    instances, the prefill instances fixed). In a group the memory verdict and the batch limits do not
    depend on the count, while each instance's arrival rate falls with it, so stability, latency and the
    SLO are met from some count r_lo up, and the hourly budget holds up to some count r_hi; the output
    rate is the offered rate for every stable plan, so cost and GPUs rise with the count and latency
    falls. Hence any objective's first `top` plans of a group are among its `top` smallest and `top`
    largest feasible counts; those are the rows returned, and the ranking is the full table's (test:
    tests/test_serve_bisect.py). r_lo by bisection on the count (about log2 R evaluations of the
    groups), r_hi by bisection on the budget alone. `g`: candidate_table(sc, largest_only=True), whose
    row of decode replica count R (prefill instances fixed) stands for R rows of the full table."""
    big = g["replicas"].copy()
    full_rows = int(big.sum())

    def at(r, budget: bool, rows=None):
        """The test at count r of every group, or (rows: a mask) of those groups only (False elsewhere)."""
        sel = np.ones(len(r), dtype=bool) if rows is None else rows
        out = np.zeros(len(r), dtype=bool)
        if not sel.any():
            return out
        ev = evaluate(sc, {**{k: v[sel] for k, v in g.items()}, "replicas": r[sel]})
        ok = (ev["mem"]["verdict"] < 2) & (ev["batch_cap"] >= 1 - 1e-9)
        if budget:
            ok &= ~(ev["usd_per_hour"] > sc.budget.max_usd_per_hour)
        else:
            ok &= ev["stable"] & ev["meets_slo"]
        out[sel] = ok
        return out

    # r_lo: smallest count meeting stability and the SLO (none where even R does not)
    reach = at(big, budget=False)
    lo, hi = np.zeros_like(big), big.copy()  # invariant: lo fails (0: none), hi passes
    while np.any(reach & (hi - lo > 1)):
        moving = reach & (hi - lo > 1)
        mid = np.where(moving, (lo + hi) // 2, hi)
        good = at(np.maximum(mid, 1), budget=False, rows=moving)
        hi = np.where(moving & good, mid, hi)
        lo = np.where(moving & ~good, mid, lo)
    r_lo = hi
    # r_hi: largest count within the hourly budget
    r_hi = big.copy()
    if sc.budget.max_usd_per_hour is not None:
        top_ok = at(big, budget=True)
        bot_ok = at(np.ones_like(big), budget=True)
        lo2, hi2 = np.ones_like(big), big.copy()  # invariant where searched: lo2 passes, hi2 fails
        search = bot_ok & ~top_ok
        while np.any(search & (hi2 - lo2 > 1)):
            moving = search & (hi2 - lo2 > 1)
            mid = np.where(moving, (lo2 + hi2) // 2, lo2)
            good = at(mid, budget=True, rows=moving)
            lo2 = np.where(moving & good, mid, lo2)
            hi2 = np.where(moving & ~good, mid, hi2)
        r_hi = np.where(top_ok, big, np.where(bot_ok, lo2, 0))
    feasible = reach & (r_lo <= r_hi)
    count = int(np.where(feasible, r_hi - r_lo + 1, 0).sum())
    rows, reps = [], []
    for i in np.flatnonzero(feasible):
        a, b = int(r_lo[i]), int(r_hi[i])
        ends = sorted(set(range(a, min(a + top, b + 1))) | set(range(max(b - top + 1, a), b + 1)))
        rows += [i] * len(ends)
        reps += ends
    if not rows:  # nothing feasible: the groups explain why, at their least count that meets the SLO (the
        # hourly budget rules them all out: the cheapest is named) or else at their largest (the lowest latency)
        return {**g, "replicas": r_lo}, full_rows, 0
    t = {k: v[np.array(rows)] for k, v in g.items()}
    t["replicas"] = np.array(reps, dtype=g["replicas"].dtype)
    return t, full_rows, count


def solve_serving(sc, objective: str | None = None, top: int | None = None, bisect: bool = True) -> dict:
    """Ranked serving plans of the scenario (the JSON contract), or an explanation when none fits.

    Under a request rate the replica count is found by bisection (_bisected_table) instead of listing
    every count: the same plans, in time and memory that do not grow with the cluster, and faster at every
    size measured (CPU s of the search, listing vs bisection, Llama-3.1-70B at 40 requests/s on 1 / 2 / 8
    DGX H100: 7,728 rows 0.030 vs 0.025, 21,804 rows 0.12 vs 0.08, 144,762 rows 1.0 vs 0.3). `bisect=False`
    lists every count: the reference tests/test_serve_bisect.py compares it with. At a fixed concurrency
    the table is factored instead (planner.serve.concurrency: exact, no assumption on the model); `bisect=False`
    lists it, the reference of tests/test_serve_concurrency.py."""
    objective = objective or sc.objective
    top = top or sc.top
    groups = candidate_table(sc, largest_only=True) if sc.serving.mode == "rate" else None
    t = None
    if groups is not None and bisect and int(groups["replicas"].sum()) > 0:
        t, evaluated, n_feasible = _bisected_table(sc, groups, top)
    elif sc.serving.mode == "concurrency" and bisect:
        g = group_table(sc)
        if len(g["tp"]):
            t, evaluated, n_feasible = concurrency.search(sc, g, objective, top, _order, feasible_mask)
    if t is None:  # the full listing (offline; no layout; bisect=False)
        t, evaluated, n_feasible = candidate_table(sc), None, None
    ev = evaluate(sc, t)
    ok = feasible_mask(sc, ev)
    idx = np.flatnonzero(ok)
    from planner.spec.serving import token_stats

    idx = idx[_order(_sub(ev, idx), token_stats(sc.serving.output_tokens)[0], objective)]
    plans = _distinct_plans(ev, t, idx, top)
    out = {"scenario": sc.name, "mode": sc.serving.mode, "objective": objective, "gpu": sc.cluster.node.gpu.name,
           "gpus_available": max_gpus(sc), "evaluated": evaluated if evaluated is not None else int(len(t["tp"])),
           "feasible": n_feasible if n_feasible is not None else int(ok.sum()),
           "plans": plans}
    if not plans:
        from planner.serve.explain import explain_serving

        out["infeasible"] = explain_serving(sc, t, ev)
    return out


FORMAT_KEYS = ("weights", "kv_cache")  # the plan's number formats (table columns wq, kv)


def _distinct_plans(ev, t: dict, idx: np.ndarray, top: int) -> list[dict]:
    """The JSON rows of the ranked plans idx (best first), at most `top`, each deployment once: of one with
    several max_batch the first (the largest ranks first); of one in several number formats with the same
    numbers (_numbers) the first, which names the others under `same_numbers`, those ranked below the
    top too (the rows that differ from a shown one in wq / kv alone)."""
    plans, seen, shown, rows = [], set(), {}, []

    def take(i: int, new: bool) -> None:
        row = result_row(ev, t, i)
        key = tuple(v for k, v in row["plan"].items() if k != "max_batch")
        if key in seen:  # the same deployment with a smaller max_batch ranks lower: show it once
            return
        seen.add(key)
        twin = shown.setdefault(_numbers(row), row) if new else shown.get(_numbers(row))
        if twin is not None and twin is not row:  # another number format of a shown plan, the same numbers
            twin.setdefault("same_numbers", []).append({k: row["plan"][k] for k in FORMAT_KEYS})
        elif new:
            plans.append(row)
            rows.append(i)

    pos = 0
    while pos < len(idx) and len(plans) < top:
        take(int(idx[pos]), True)
        pos += 1
    rest = idx[pos:]
    other = [k for k in t if k not in ("wq", "kv")]
    formats_only = np.zeros(len(rest), dtype=bool)
    for j in rows:
        formats_only |= np.logical_and.reduce([t[k][rest] == t[k][j] for k in other])
    for i in rest[formats_only]:
        take(int(i), False)
    return plans


def _numbers(row: dict) -> str:
    """What tells a result row apart from the same deployment in other number formats (FORMAT_KEYS): its
    plan without them and every figure (memory, latency, throughput, cost) at the JSON's precision. Two
    formats of the same storage and kernels (bf16 / fp16; int4-awq / int4-gptq: the same bytes per
    weight and the same GEMM paths) give the same key: solve_serving shows the first and lists the others
    under its `same_numbers`."""
    plan = {k: v for k, v in row["plan"].items() if k not in FORMAT_KEYS}
    return json.dumps({**row, "plan": plan}, sort_keys=True)


def _sub(ev, idx):
    return {"usd_per_m": ev["usd_per_m"][idx], "ttft": {k: v[idx] for k, v in ev["ttft"].items()},
            "tpot": {k: v[idx] for k, v in ev["tpot"].items()}, "gpus": ev["gpus"][idx],
            "out_tok_s": ev["out_tok_s"][idx]}


def estimate_serving(sc, t: dict) -> dict:
    """The contract object of one given plan (a table of one row), whether it fits or not."""
    ev = evaluate(sc, t)
    row = result_row(ev, t, 0)
    row["feasible"] = bool(feasible_mask(sc, ev)[0])
    return row
