"""The best mix of clusters to buy under a budget, with OR-Tools CP-SAT.

Choose, for every cluster option, how many nodes to buy (0 or one of its listed counts), and assign
every workload to one bought option, to minimise the weighted time sum(weight x days), then the money.
Days and plans come from `planner.purchase.evaluate`. Money is what the purchase spends now, which is
not the per-run TCO share of the compare rows:

    owned option bought at n nodes:  n * capex_usd_per_node   (paid in full, once)
                                     + energy + overhead of each run it hosts (planner.purchase.cost_terms)
    cloud option:                    rental of each run it hosts (GPU-hours x price)

Constraints: total money <= budget; at most one count per cluster option; an option is bought only
if it runs a workload; a workload goes only where its plan fits and, with a deadline, finishes in
time. Workloads sharing a cluster run one after the other (reported as busy days, not optimised).
Money is counted in whole cents rounded up, so the chosen mix never exceeds the budget.
"""

from __future__ import annotations

import math

from planner.purchase import Option, describe, options, cost_terms
from planner.search.cpsat import cp_model as _cp_model
from planner.spec.purchase import PurchaseFile

cp_model = _cp_model()  # OR-Tools' CP-SAT module without importing pandas (planner.search.cpsat)

DAY_SCALE = 10_000  # weighted days are optimised in units of 1e-4 day (8.6 s)
SOLVE_SECONDS = 20.0


# CP-SAT works in 64-bit integers and rejects a model whose sums may overflow; coefficients are kept so
# that the sum of all of them stays below 2**53 (also exact in float64) by counting in coarser units.
INT_LIMIT = 2 ** 53


def _cents(usd: float) -> int:
    return math.ceil(round(usd * 100, 6))


def _unit(total: float) -> int:
    """Integer units per solver unit so that `total` (a sum of coefficients) stays below INT_LIMIT;
    1 for every realistic input (cents, 1e-4 days)."""
    return max(1, math.ceil(total / INT_LIMIT))


def candidates(pf: PurchaseFile, rows: list[dict]) -> tuple[dict, dict]:
    """(option label -> fixed dollars when bought, (workload, label) -> (days, running dollars, row))
    for every option x workload that fits and meets its deadline."""
    by_label = {o.label: o for o in options(pf)}
    fixed = {label: (o.nodes * o.cluster.capex_usd_per_node if o.cluster.owned else 0.0)
             for label, o in by_label.items()}
    runs = {}
    for r in rows:
        if r["plan"] is None or r["meets_deadline"] is False:
            continue
        terms = cost_terms(by_label[r["cluster"]], r["days"])
        runs[(r["workload"], r["cluster"])] = (r["days"], sum(v for k, v in terms.items() if k != "capex"), r)
    return fixed, runs


def _model(pf: PurchaseFile, fixed: dict, runs: dict, budget_usd: float | None):
    """CP-SAT variables and expressions: buy[label], go[(workload, label)], time and money."""
    m = cp_model.CpModel()
    labels = sorted({label for _, label in runs})
    buy = {label: m.NewBoolVar(f"buy[{label}]") for label in labels}
    go = {k: m.NewBoolVar(f"go[{k}]") for k in runs}
    by_cluster: dict[str, list] = {}
    by_label = {o.label: o for o in options(pf)}
    uses: dict[str, list] = {}
    runs_of: dict[str, list] = {w.name: [] for w in pf.workloads}
    for (w, lab), v in go.items():  # one pass: the runs of each option and of each workload
        uses.setdefault(lab, []).append(v)
        runs_of[w].append(v)
    for label in labels:
        by_cluster.setdefault(by_label[label].cluster.name, []).append(buy[label])
        m.Add(buy[label] <= sum(uses[label]))  # bought only if used
    for group in by_cluster.values():
        m.AddAtMostOne(group)
    for w in pf.workloads:
        m.AddExactlyOne(runs_of[w.name])
    for (w, label), v in go.items():
        m.AddImplication(v, buy[label])
    weight = {w.name: w.weight for w in pf.workloads}
    days = {k: round(weight[k[0]] * runs[k][0] * DAY_SCALE) for k in go}
    t_unit = _unit(sum(days.values()))
    time_expr = cp_model.LinearExpr.WeightedSum(list(go.values()), [-(-days[k] // t_unit) for k in go])
    cents = {**{lab: _cents(fixed[lab]) for lab in buy}, **{k: _cents(runs[k][1]) for k in go}}
    unit = _unit(sum(cents.values()))  # costs round up and the budget down: the mix never exceeds it
    money = cp_model.LinearExpr.WeightedSum([*buy.values(), *go.values()],
                                            [-(-cents[lab] // unit) for lab in buy] + [-(-cents[k] // unit) for k in go])
    if budget_usd is not None:
        m.Add(money <= min(math.floor(budget_usd * 100) // unit, INT_LIMIT))
    m.money_unit = unit  # cents per solver unit of `money`
    return m, buy, go, time_expr, money


def _solve(m, objective) -> tuple[cp_model.CpSolver, int]:
    m.Minimize(objective)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = SOLVE_SECONDS
    return solver, solver.Solve(m)


def cheapest_cover(pf: PurchaseFile, fixed: dict, runs: dict) -> float | None:
    """Least money that runs every workload, whatever the budget (None: some workload fits nowhere)."""
    m, _, _, _, money = _model(pf, fixed, runs, None)
    solver, status = _solve(m, money)
    return solver.ObjectiveValue() * m.money_unit / 100 if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None


def best_single(pf: PurchaseFile, fixed: dict, runs: dict, budget_usd: float) -> dict | None:
    """The best purchase of one option that runs every workload within the budget."""
    best = None
    for o in options(pf):
        mine = [runs.get((w.name, o.label)) for w in pf.workloads]
        if any(x is None for x in mine):
            continue
        money = _cents(fixed[o.label]) + sum(_cents(x[1]) for x in mine)
        wdays = sum(w.weight * x[0] for w, x in zip(pf.workloads, mine))
        if money <= math.floor(budget_usd * 100) and (best is None or wdays < best["weighted_days"]):
            best = {"cluster": o.label, "weighted_days": round(wdays, 4), "cost_usd": money / 100}
    return best


def _infeasible(pf: PurchaseFile, fixed: dict, runs: dict, budget_usd: float) -> dict:
    nowhere = [w.name for w in pf.workloads if not any(k[0] == w.name for k in runs)]
    if nowhere:
        reason = (f"no option runs {', '.join(nowhere)} (no plan fits, or none meets the deadline)")
    else:
        need = cheapest_cover(pf, fixed, runs)
        reason = (f"the cheapest purchase that runs every workload costs ${need:,.0f}, "
                  f"${need - budget_usd:,.0f} over the budget of ${budget_usd:,.0f}")
    return {"status": "infeasible", "reason": reason, "budget_usd": budget_usd, "cost_usd": None,
            "budget_left_usd": None, "nodes": {c.name: 0 for c in pf.clusters}, "bought": [], "assignments": [],
            "explanation": [reason]}


def best_mix(pf: PurchaseFile, rows: list[dict], budget_usd: float) -> dict:
    """What to buy within `budget_usd` to run every workload in the least weighted time, and why."""
    fixed, runs = candidates(pf, rows)
    m, buy, go, time_expr, money = _model(pf, fixed, runs, budget_usd)
    solver, status = _solve(m, time_expr)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return _infeasible(pf, fixed, runs, budget_usd)
    optimal = status == cp_model.OPTIMAL
    m.Add(time_expr <= round(solver.ObjectiveValue()))  # then the cheapest of the fastest
    solver, status2 = _solve(m, money)
    optimal = optimal and status2 == cp_model.OPTIMAL
    chosen = [k for k, v in go.items() if solver.Value(v)]
    bought = [label for label, b in buy.items() if solver.Value(b)]
    return _explain(pf, fixed, runs, chosen, bought, budget_usd, "optimal" if optimal else "feasible (time limit)")


def _explain(pf, fixed, runs, chosen, bought, budget_usd, status) -> dict:
    """The answer: what was bought, each workload's plan and days, money spent and left."""
    by_label = {o.label: o for o in options(pf)}
    assignments = [{"workload": w, "cluster": lab, "days": runs[(w, lab)][0], "cost_usd": round(runs[(w, lab)][1], 2),
                    "plan": describe(runs[(w, lab)][2]["plan"], bool(runs[(w, lab)][2].get("batch"))), "mfu": runs[(w, lab)][2]["mfu"]}
                   for w, lab in sorted(chosen, key=lambda k: [x.name for x in pf.workloads].index(k[0]))]
    spent = sum(_cents(fixed[lab]) for lab in bought) + sum(_cents(runs[k][1]) for k in chosen)
    items = []
    for lab in bought:
        o: Option = by_label[lab]
        mine = [a for a in assignments if a["cluster"] == lab]
        items.append({"cluster": lab, "option": o.cluster.name, "node": o.cluster.node.name, "nodes": o.nodes,
                      "gpus": o.gpus, "pricing": o.cluster.pricing, "capex_usd": round(fixed[lab], 2),
                      "running_usd": round(sum(a["cost_usd"] for a in mine), 2),
                      "workloads": [a["workload"] for a in mine], "busy_days": round(sum(a["days"] for a in mine), 4)})
    weight = {w.name: w.weight for w in pf.workloads}
    wdays = sum(weight[a["workload"]] * a["days"] for a in assignments)
    single = best_single(pf, fixed, runs, budget_usd)
    result = {"status": status, "budget_usd": budget_usd, "cost_usd": spent / 100,
              "budget_left_usd": round(budget_usd - spent / 100, 2),
              "nodes": {c.name: next((i["nodes"] for i in items if i["option"] == c.name), 0) for c in pf.clusters},
              "weighted_days": round(wdays, 4), "makespan_days": max(i["busy_days"] for i in items),
              "bought": items, "assignments": assignments, "best_single": single}
    result["explanation"] = _lines(result)
    return result


def _lines(r: dict) -> list[str]:
    """The answer in words."""
    out = []
    for i in r["bought"]:
        how = f"buy for ${i['capex_usd']:,.0f}" if i["pricing"] == "owned" else "rent"
        out.append(f"{how} {i['cluster']} ({i['gpus']} GPUs, {i['node']}): runs {', '.join(i['workloads'])}, "
                   f"busy {i['busy_days']:.1f} days, running cost ${i['running_usd']:,.0f}")
    for a in r["assignments"]:
        out.append(f"{a['workload']} on {a['cluster']}: {a['days']:.1f} days, ${a['cost_usd']:,.0f}, "
                   f"MFU {100 * a['mfu']:.1f}%, {a['plan']}")
    out.append(f"spent ${r['cost_usd']:,.0f} of ${r['budget_usd']:,.0f}: ${r['budget_left_usd']:,.0f} left; "
               f"weighted time {r['weighted_days']:.1f} days; all done after {r['makespan_days']:.1f} days "
               "(workloads sharing a cluster run one after the other)")
    s = r["best_single"]
    if s is None:
        out.append("no single option runs every workload within the budget")
    elif s["weighted_days"] > r["weighted_days"]:
        out.append(f"the best single-type purchase, {s['cluster']} (${s['cost_usd']:,.0f}), takes "
                   f"{s['weighted_days']:.2f} weighted days: the mix is "
                   f"{100 * (1 - r['weighted_days'] / s['weighted_days']):.1f}% faster")
    else:
        out.append(f"no mix beats the best single-type purchase, {s['cluster']}, within the budget")
    return out
