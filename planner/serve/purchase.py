"""Serving workloads of a purchase file (`serving_workloads:`): every cluster option x serving
workload searched by `planner serve` for its cheapest plan, then priced with the option's own
pricing for the hours a year the traffic runs.

Cost of a year of serving on option (cluster, node count) with a plan of `gpus` GPUs, the nodes it
needs n = ceil(gpus / GPUs per node), h = hours_per_year (planner.purchase.cost_terms, days = h / 24):

    cloud:  gpus * h * usd_per_gpu_hour                 (rented by the GPU)
    owned:  n * ( h / 8760 * (capex / amortisation + overhead) + power_kw * pue * h * usd_per_kwh )

$ per million output tokens = cost / (output tokens/s * 3600 * h) * 1e6. `pareto`: no other
option of the same workload serves it with fewer GPUs for fewer dollars.
"""

from __future__ import annotations

import math

from planner.errors import InputError
from planner.spec.hardware import Cluster
from planner.spec.purchase import PurchaseFile, ServingWorkload


def scenario(option, workload: ServingWorkload):
    """The serving scenario that places `workload` on `option` (all its GPUs available); fewest GPUs
    that carry the traffic first (the cost of any pricing grows with the GPUs or nodes a plan holds);
    offline work (no traffic to carry) by cost per million output tokens."""
    from planner.spec.serving import ServingScenario

    return ServingScenario(name=f"{workload.name} on {option.label}", model=workload.model,
                           cluster=Cluster(node=option.cluster.node, nodes=option.nodes), serving=workload.serving,
                           search=workload.search, objective="cost" if workload.serving.offline else "gpus",
                           top=1)


def year_cost(option, gpus: int, hours: float) -> dict[str, float]:
    """Dollars of serving a year by term (module doc), with the option's pricing."""
    from planner.purchase import HOURS_PER_DAY, Option, cost_terms

    per_node = option.cluster.node.gpus_per_node
    nodes = math.ceil(gpus / per_node)
    terms = cost_terms(Option(option.cluster, nodes), hours / HOURS_PER_DAY)
    if option.cluster.cloud is not None:  # rented by the GPU, not by the node
        terms = {k: v * gpus / (nodes * per_node) for k, v in terms.items()}
    return terms


def serving_row(option, workload: ServingWorkload) -> dict:
    """The entry of one option x serving workload: the cheapest plan, GPUs, dollars a year."""
    from planner.serve.search import solve_serving

    base = {"cluster": option.label, "option": option.cluster.name, "node": option.cluster.node.name,
            "nodes": option.nodes, "gpus": option.gpus, "pricing": option.cluster.pricing,
            "workload": workload.name, "kind": "serving", "weight": workload.weight,
            "hours_per_year": workload.hours_per_year}
    try:
        found = solve_serving(scenario(option, workload))
    except InputError as exc:
        found = {"plans": [], "reason": exc.message}
    if not found["plans"]:
        reasons = found.get("infeasible", {}).get("reasons") or []
        reason = found.get("reason") or "; ".join(map(str, reasons)) or \
            "no serving plan fits and meets the targets on this option"
        return {**base, "plan": None, "reason": reason, "gpus_needed": None, "cost_per_year_usd": None,
                "cost_breakdown_usd": None, "usd_per_million_output_tokens": None, "output_tokens_per_s": None,
                "pareto": False}
    plan = found["plans"][0]
    terms = year_cost(option, plan["gpus"], workload.hours_per_year)
    cost = sum(terms.values())
    tokens = plan["throughput"]["output_tokens_per_s"] * 3600.0 * workload.hours_per_year
    per_m = round(cost / tokens * 1e6, 4) if tokens > 0 else None
    # the plan as `serve` prints it was priced at the catalog's rental price; restate it at the option's
    plan = {**plan, "cost": {"usd_per_hour": round(cost / workload.hours_per_year, 2),
                             "usd_per_million_output_tokens": per_m}}
    return {**base, "plan": plan, "reason": None, "gpus_needed": plan["gpus"],
            "nodes_needed": math.ceil(plan["gpus"] / option.cluster.node.gpus_per_node),
            "cost_per_year_usd": round(cost, 2), "cost_breakdown_usd": {k: round(v, 2) for k, v in terms.items()},
            "usd_per_million_output_tokens": per_m,
            "output_tokens_per_s": plan["throughput"]["output_tokens_per_s"], "pareto": False}


def serving_options(pf: PurchaseFile) -> list[dict]:
    """Every option x serving workload (module doc), with the Pareto flags (GPUs, dollars a year)."""
    from planner.purchase import options, pareto_flags

    rows = [serving_row(o, w) for o in options(pf) for w in pf.serving_workloads]
    for w in pf.serving_workloads:
        mine = [r for r in rows if r["workload"] == w.name]
        points = [(r["gpus_needed"], r["cost_per_year_usd"]) if r["plan"] else None for r in mine]
        for r, flag in zip(mine, pareto_flags(points)):
            r["pareto"] = flag
    return rows


def describe_serving(plan: dict) -> str:
    """One line for a serving plan (compare's table and CSV): engine weights/kv tp pp x replicas, and
    '+ N prefill' instances of the same layout where the plan is disaggregated."""
    p = plan["plan"]
    pre = p.get("prefill_replicas") or 0
    return (f"{p['engine']} {p['weights']}/{p['kv_cache']} tp{p['tp']} pp{p['pp']} x{p['replicas']}"
            + (f" + {pre} prefill" if pre else ""))


def serving_table(rows: list[dict]):
    """Console table of the serving rows (planner compare)."""
    from rich.table import Table

    t = Table(title="Serving workloads: cheapest plan of each option for a year of traffic")
    for h in ("workload", "option", "plan", "GPUs", "$ / year", "$ / M output tokens", "pareto"):
        t.add_column(h, justify="right" if h in ("GPUs", "$ / year", "$ / M output tokens") else "left")
    for r in rows:
        if r["plan"] is None:
            t.add_row(r["workload"], r["cluster"], f"none: {r['reason']}", "", "", "", "")
            continue
        text = describe_serving(r["plan"])
        usd_m = r["usd_per_million_output_tokens"]
        t.add_row(r["workload"], r["cluster"], text, str(r["gpus_needed"]), f"${r['cost_per_year_usd']:,.0f}",
                  "" if usd_m is None else f"${usd_m:,.4f}", "yes" if r["pareto"] else "")
    return t
