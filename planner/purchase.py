"""Cluster purchases: every cluster option x node count x workload searched for its fastest plan, then
priced, compared on a Pareto front and stress-tested (the budgeted best mix is planner/purchase_mix.py).

Dollars of one run that takes `days` on `n` nodes of `g` GPUs (a year is 365 days):

    cloud:  n * g * 24 * days * usd_per_gpu_hour
    owned:  n * ( days / 365 * (capex_usd_per_node / amortisation_years + overhead_usd_per_node_year)
                  + power_kw * pue * 24 * days * usd_per_kwh )

The owned cost is the run's share of the total cost of ownership: straight-line depreciation and the
yearly overhead for the days the nodes are busy, plus the facility energy (IT draw x PUE) over those
days. Tokens per dollar = tokens / cost; utilisation is the plan's MFU.

A cluster option is one (cluster, node count); its label is "NAME xCOUNT". The plan searches are
shared between options whose nodes have the same hardware (only price and power differ) and run in
this process by default: each search now times only the plans that can rank first, so a pool's
start-up (a process, imports, OR-Tools) costs more than it saves (`--workers N` still runs N worker
processes; threads do not help: the search is CPU-bound Python + numpy; measured in
benchmarks/purchase_speed.py).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable

import numpy as np

from planner.errors import InputError
from planner.search.rank import pareto_mask
from planner.search.solver import solve
from planner.spec.hardware import Cluster
from planner.spec.purchase import ClusterOption, PurchaseFile, Workload
from planner.spec.scenario import Scenario

HOURS_PER_DAY = 24.0
DAYS_PER_YEAR = 365.0
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Option:
    """One cluster option at one node count."""

    cluster: ClusterOption
    nodes: int

    @property
    def label(self) -> str:
        return f"{self.cluster.name} x{self.nodes}"

    @property
    def gpus(self) -> int:
        return self.nodes * self.cluster.node.gpus_per_node


def options(pf: PurchaseFile) -> list[Option]:
    """Every (cluster option, node count) of the file, in file order (made once per file object: a
    sweep has tens of thousands and compare asks for them several times)."""
    key = id(pf)
    if key not in _OPTIONS or _OPTIONS[key][0] is not pf:
        _OPTIONS.clear()  # one file at a time
        _OPTIONS[key] = (pf, tuple(Option(c, n) for c in pf.clusters for n in c.node_counts))
    return list(_OPTIONS[key][1])


_OPTIONS: dict[int, tuple] = {}


def hardware_key(option: Option) -> str:
    """What the plan search sees of an option: node hardware and count, not names, price or power."""
    return f"{option.nodes}:{_node_hardware(option.cluster.node)}"


def _node_hardware(node) -> str:
    """The node's hardware as JSON (names, prices, power and sources left out), once per node object."""
    key = id(node)
    if key not in _HARDWARE or _HARDWARE[key][0] is not node:
        drop = {"name": True, "price": True, "power_kw": True, "source": True, "notes": True,
                "gpu": {"price": True, "source": True, "notes": True}}
        _HARDWARE[key] = (node, node.model_dump_json(exclude=drop))
    return _HARDWARE[key][1]


_HARDWARE: dict[int, tuple] = {}


def scenario(option: Option, workload: Workload) -> Scenario:
    """The scenario that places `workload` on `option`, searched by time."""
    return Scenario(name=f"{workload.name} on {option.label}", model=workload.model,
                    cluster=Cluster(node=option.cluster.node, nodes=option.nodes),
                    training=workload.training(), search=workload.search, objective="time", top=1)


def best_plan(sc: Scenario, prepared: dict | None = None) -> dict:
    """The fastest plan of the full search, or plan None with the reason nothing fits. `prepared`:
    the search's bounded evaluation, done with other node counts (planner.purchase_search)."""
    r = solve(sc, objective="time", top=1, counts=False, prepared=prepared)  # the best plan only: no counts of the rest
    if r["plans"]:
        several = len(sc.training.batches) > 1  # the chosen batch and why, when the workload allows several
        return {"plan": r["plans"][0], "reason": None, "batch": r.get("batch") if several else None}
    lines = r.get("explanation") or [
        f"none of the {r['considered']:,} plans considered is valid for {sc.model.name} on {r['gpus']} GPUs "
        "(divisibility of heads, layers, experts and batch; framework rules)"]
    return {"plan": None, "reason": "; ".join(lines), "batch": None}


def _pool_context():
    """forkserver where available (a fork of a process that runs threads, such as rich's refresher, is
    unsafe), with planner imported once in the server; else spawn. As with any multiprocessing code, a
    script that calls evaluate() with workers > 1 must guard its entry point (if __name__ == "__main__")."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["planner.purchase"])
    return ctx


def search_all(tasks: dict, workers: int | None = None, progress: Progress | None = None) -> tuple[dict, int]:
    """best_plan of every scenario in `tasks` (key -> Scenario), in parallel processes when it pays.

    Returns (key -> result, number of worker processes used; 1 = in this process)."""
    keys = sorted(tasks, key=lambda k: -tasks[k].cluster.gpus)  # largest first: better load balance
    workers = min(workers or 1, os.cpu_count() or 1, len(keys))  # in-process by default; never more processes than CPUs
    out: dict = {}
    if workers <= 1 or len(keys) < 4:  # a pool's start-up (~0.5 s) outweighs a few searches
        for k, found in _shared_searches(tasks):
            out[k] = found
            if progress:
                progress(len(out), len(keys))
        return out, 1
    with ProcessPoolExecutor(workers, mp_context=_pool_context()) as ex:
        futures = {ex.submit(best_plan, tasks[k]): k for k in keys}
        for i, f in enumerate(as_completed(futures), 1):
            out[futures[f]] = f.result()
            if progress:
                progress(i, len(keys))
    return out, workers


def _shared_searches(tasks: dict):
    """(key, best_plan) of every task, the node counts of one node and workload searched together
    (planner.purchase_search); tasks whose scenarios differ in more than the node count are not
    grouped."""
    from planner.purchase_search import search_group

    groups: dict[str, list] = {}
    for k, sc in tasks.items():
        same = sc.model_dump_json(exclude={"name": True, "cluster": {"nodes"}})
        groups.setdefault(same, []).append(k)
    for keys in groups.values():
        keys.sort(key=lambda k: tasks[k].cluster.nodes)
        for j, found in search_group([tasks[k] for k in keys], best_plan):
            yield keys[j], found


def cost_terms(option: Option, days: float, price: float = 1.0, power: float = 1.0) -> dict[str, float]:
    """Dollars of one run by term (module docstring); `price` scales the rental price or the capex,
    `power` the energy bill (both 1 except in the sensitivity analysis)."""
    c, n, hours = option.cluster, option.nodes, HOURS_PER_DAY * days
    if c.cloud is not None:
        return {"rental": n * c.node.gpus_per_node * hours * c.usd_per_gpu_hour * price}
    o = c.owned
    return {"capex": n * days / DAYS_PER_YEAR * c.capex_usd_per_node * price / o.amortisation_years,
            "overhead": n * days / DAYS_PER_YEAR * o.overhead_usd_per_node_year,
            "energy": n * c.power_kw * o.pue * hours * o.usd_per_kwh * power}


def describe(plan: dict, batch: bool = False) -> str:
    """One-line plan: framework, precision, layout, ZeRO, offload, recompute, batch split (and, with
    `batch`, the global batch: for workloads that allow several)."""
    p = plan["plan"]
    layout = " ".join(f"{k}{p[k]}" for k in ("dp", "tp", "pp", "vpp", "cp", "ep") if k in ("dp", "tp", "pp") or p[k] > 1)
    off = "" if p["offload"] == "none" else f" offload={p['offload']}"
    off += "" if p["offload_params"] == "none" else f" params={p['offload_params']}"
    return (f"{p['framework']} {p['precision']} {layout} zero{p['zero']}{off} "
            f"recompute={p['recompute']} mbs{p['mbs']} ga{p['ga']}" + (f" batch{p['global_batch']}" if batch else ""))


def row(option: Option, workload: Workload, found: dict) -> dict:
    """The contract's entry for one option x workload (pareto flags filled in later)."""
    base = {"cluster": option.label, "option": option.cluster.name, "node": option.cluster.node.name,
            "nodes": option.nodes, "gpus": option.gpus, "pricing": option.cluster.pricing,
            "workload": workload.name, "weight": workload.weight}
    plan = found["plan"]
    if plan is None:
        return {**base, "plan": None, "reason": found["reason"], "batch": None, "days": None, "cost_usd": None,
                "cost_breakdown_usd": None, "tokens_per_usd": None, "mfu": None, "tokens_per_s": None,
                "meets_deadline": None, "pareto": False, "pareto_overall": False}
    days = plan["run"]["days"]
    terms = cost_terms(option, days)
    cost = round(sum(terms.values()), 2)
    return {**base, "plan": {**plan, "run": {**plan["run"], "cost_usd": cost}}, "reason": None,
            "batch": found.get("batch"), "days": days,
            "cost_usd": cost, "cost_breakdown_usd": {k: round(v, 2) for k, v in terms.items()},
            "tokens_per_usd": round(workload.tokens / cost, 3) if cost > 0 else None,
            "mfu": plan["throughput"]["mfu"], "tokens_per_s": plan["throughput"]["tokens_per_s"],
            "meets_deadline": None if workload.deadline_days is None else days <= workload.deadline_days,
            "pareto": False, "pareto_overall": False}


def pareto_flags(points: list[tuple[float, float] | None]) -> list[bool]:
    """True where no other point is as fast and as cheap and strictly better in one (not dominated);
    None (no plan) is never on the front. Equal points share their flag."""
    idx = [i for i, q in enumerate(points) if q is not None]
    flags = [False] * len(points)
    if not idx:
        return flags
    days, cost = np.array([points[i][0] for i in idx]), np.array([points[i][1] for i in idx])
    front = {(d, c) for d, c, on in zip(days, cost, pareto_mask(days, cost)) if on}
    for j, i in enumerate(idx):
        flags[i] = (days[j], cost[j]) in front
    return flags


def flag_pareto(rows: list[dict], workloads: list[Workload]) -> list[dict]:
    """Set each row's `pareto` (within its workload); return the weighted totals of every option
    that runs all workloads (sum of weight x days, sum of weight x dollars), with their own flags."""
    for w in workloads:
        mine = [r for r in rows if r["workload"] == w.name]
        for r, flag in zip(mine, pareto_flags([(r["days"], r["cost_usd"]) if r["plan"] else None for r in mine])):
            r["pareto"] = flag
    totals = {}
    for r in rows:
        t = totals.setdefault(r["cluster"], {"cluster": r["cluster"], "weighted_days": 0.0, "weighted_cost_usd": 0.0,
                                             "runs_all": True})
        if r["plan"] is None:
            t["runs_all"] = False
        else:
            t["weighted_days"] += r["weight"] * r["days"]
            t["weighted_cost_usd"] += r["weight"] * r["cost_usd"]
    overall = [{**t, "weighted_days": round(t["weighted_days"], 4), "weighted_cost_usd": round(t["weighted_cost_usd"], 2)}
               if t["runs_all"] else {**t, "weighted_days": None, "weighted_cost_usd": None} for t in totals.values()]
    flags = pareto_flags([(t["weighted_days"], t["weighted_cost_usd"]) if t["runs_all"] else None for t in overall])
    for t, flag in zip(overall, flags):
        t["pareto"] = flag
    by_cluster = {t["cluster"]: t["pareto"] for t in overall}
    for r in rows:
        r["pareto_overall"] = by_cluster[r["cluster"]]
    return overall


def plan_tasks(pf: PurchaseFile) -> dict:
    """The distinct searches: one per (node hardware and count, workload), whatever the pricing."""
    tasks = {}
    for o in options(pf):
        hw = hardware_key(o)
        for w in pf.workloads:
            if (hw, w.name) not in tasks:
                tasks[(hw, w.name)] = scenario(o, w)
    return tasks


def search_count(pf: PurchaseFile) -> int:
    """len(plan_tasks(pf)) without building the scenarios (for a progress bar)."""
    return len({hardware_key(o) for o in options(pf)}) * len(pf.workloads)


def evaluate(pf: PurchaseFile, workers: int | None = None, progress: Progress | None = None) -> dict:
    """Every option x workload: best plan, days, dollars, tokens per dollar, MFU, Pareto flags."""
    t0 = time.perf_counter()
    tasks = plan_tasks(pf)
    found, used = search_all(tasks, workers, progress)
    rows = [row(o, w, found[(hardware_key(o), w.name)]) for o in options(pf) for w in pf.workloads]
    overall = flag_pareto(rows, pf.workloads)
    return {"name": pf.name, "options": rows, "overall": overall, "searches": len(tasks), "workers": used,
            "seconds": round(time.perf_counter() - t0, 3)}


VARIABLES = {"price": "price", "power": "power", "utilisation": "utilisation", "utilization": "utilisation",
             "mfu": "utilisation"}
_VARY = re.compile(r"^\s*([a-z]+)\s*=\s*(±|\+/-|\+-|\+|-)?\s*(\d+(?:\.\d*)?)\s*%\s*$")


def parse_vary(texts) -> list[tuple[str, tuple[float, ...]]]:
    """'price=±20%' -> ('price', (-0.2, 0.2)); '+20%' or '-20%' vary one way; no sign means both."""
    out = []
    for text in texts:
        m = _VARY.match(text.lower())
        if not m or m.group(1) not in VARIABLES:
            raise InputError(f"expected NAME=±PCT% with NAME one of price, power, utilisation (got {text!r})",
                             key="--vary")
        name, pct = VARIABLES[m.group(1)], float(m.group(3)) / 100
        deltas = {"+": (pct,), "-": (-pct,)}.get(m.group(2) or "±", (-pct, pct))
        if pct == 0 or min(deltas) < -1 or (name == "utilisation" and min(deltas) <= -1) or max(deltas) > 10:
            raise InputError(f"{text!r}: the change must be above 0% and below 1000%, and a decrease at most "
                             "-100% (utilisation above -100%): a price or power below zero means nothing",
                             key="--vary")
        out.append((name, deltas))
    return out


def _vary_rows(rows: list[dict], by_label: dict, cluster: str, name: str, delta: float) -> list[dict]:
    """Rows with days and dollars recomputed for one cluster option's price, power or utilisation x (1 + delta)
    (utilisation scales throughput, so days / (1 + delta); the formula is cost_terms's)."""
    out = []
    for r in rows:
        if r["option"] != cluster or r["plan"] is None:
            out.append(r)
            continue
        days = r["days"] / (1 + delta) if name == "utilisation" else r["days"]
        factors = {"price": 1 + delta if name == "price" else 1.0, "power": 1 + delta if name == "power" else 1.0}
        out.append({**r, "days": days, "cost_usd": sum(cost_terms(by_label[r["cluster"]], days, **factors).values())})
    return out


def _rankings(rows: list[dict], workloads: list[Workload]) -> dict[str, tuple[list[str], set[str]]]:
    """For each workload and for the weighted set: options cheapest first, and the Pareto front."""
    out = {}
    groups = {w.name: [r for r in rows if r["workload"] == w.name and r["plan"]] for w in workloads}
    totals: dict[str, list[float]] = {}
    for r in rows:
        t = totals.setdefault(r["cluster"], [0.0, 0.0, 0])
        if r["plan"]:
            t[0] += r["weight"] * r["days"]
            t[1] += r["weight"] * r["cost_usd"]
            t[2] += 1
    weighted = [{"cluster": k, "days": v[0], "cost_usd": v[1]} for k, v in totals.items() if v[2] == len(workloads)]
    for key, group in [*groups.items(), ("(all, weighted)", weighted)]:
        order = [g["cluster"] for g in sorted(group, key=lambda g: (g["cost_usd"], g["days"], g["cluster"]))]
        flags = pareto_flags([(g["days"], g["cost_usd"]) for g in group])
        out[key] = (order, {g["cluster"] for g, f in zip(group, flags) if f})
    return out


def _differences(before: dict, after: dict, varied: set[str]) -> list[dict]:
    """What moved between two rankings: the cheapest option, the varied options' ranks, the Pareto front."""
    out = []
    for key, (order, front) in before.items():
        order2, front2 = after[key]
        if order == order2 and front == front2:
            continue
        moves = [{"cluster": c, "from": i + 1, "to": order2.index(c) + 1} for i, c in enumerate(order)
                 if c in varied and order2.index(c) != i]
        out.append({"workload": key, "cheapest": [order[0] if order else None, order2[0] if order2 else None],
                    "moves": moves, "pareto_added": sorted(front2 - front), "pareto_removed": sorted(front - front2)})
    return out


def sensitivity(pf: PurchaseFile, rows: list[dict], varies: list[tuple[str, tuple[float, ...]]]) -> list[dict]:
    """One at a time, each cluster option's price, power or utilisation moved by each delta: does the cost
    ranking of the options (per workload and weighted) or the Pareto front change? Power applies to owned
    options only (a cloud price includes power)."""
    by_label = {o.label: o for o in options(pf)}
    base = _rankings(rows, pf.workloads)
    out = []
    for name, deltas in varies:
        for delta in deltas:
            for c in pf.clusters:
                if name == "power" and c.cloud is not None:
                    continue
                varied = _rankings(_vary_rows(rows, by_label, c.name, name, delta), pf.workloads)
                mine = {label for label, o in by_label.items() if o.cluster is c}
                out.append({"vary": name, "change": delta, "cluster": c.name,
                            "changes": _differences(base, varied, mine)})
    return out


def compare(pf: PurchaseFile, budget_usd: float | None = None, vary: list[str] | tuple = (),
            workers: int | None = None, progress: Progress | None = None) -> dict:
    """`planner compare`: evaluate, then the best mix (with a budget) and the sensitivity (with `vary`)."""
    from planner.purchase_mix import best_mix

    varies = parse_vary(vary)  # a bad --vary fails before the searches
    result = evaluate(pf, workers, progress)
    budget = budget_usd if budget_usd is not None else pf.budget_usd
    if budget is not None and pf.workloads:
        result["best_mix"] = best_mix(pf, result["options"], budget)
        if pf.serving_workloads:  # said where the mix is read, not only in the README
            result["best_mix"]["explanation"].append(
                f"serving workloads ({', '.join(w.name for w in pf.serving_workloads)}) are not in the mix or its budget: "
                "the mix places training workloads; each option's yearly cost of serving is in the serving table")
    elif budget is not None:  # the mix places training workloads; serving ones are priced per option below
        why = ("no training workloads: the best mix places training workloads on bought options; each option's "
               "cost of the serving workloads is in the serving table")
        result["best_mix"] = {"status": "no training workloads", "reason": why, "budget_usd": budget, "cost_usd": 0.0,
                              "budget_left_usd": budget, "nodes": {c.name: 0 for c in pf.clusters}, "bought": [],
                              "assignments": [], "explanation": [why]}
    if varies:
        result["sensitivity"] = sensitivity(pf, result["options"], varies)
    if pf.serving_workloads:  # serving traffic on the same options: planner/serve/purchase.py
        from planner.serve.purchase import serving_options

        result["serving"] = serving_options(pf)
    return result
