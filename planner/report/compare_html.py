"""The self-contained HTML report of `planner compare` (planner.purchase.compare): per workload, days
against dollars of every cluster option with the Pareto front; the weighted totals; the best mix
within the budget and the sensitivity of the ranking, when the result has them; the serving
workloads' cheapest plan per option."""

from __future__ import annotations

from html import escape
from pathlib import Path

from planner.atomic import write_file
from planner.report import charts
from planner.report.console import _money
from planner.report.html import days, figure, kv_table, page, section, table


def _describe(row: dict) -> str:
    from planner.purchase import describe

    return describe(row["plan"], bool(row.get("batch"))) if row["plan"] else f"no plan: {row['reason']}"


# More cluster options than this: chart colours are node types, not options (a legend of 100 names
# leaves no room for the chart).
COLOURED_OPTIONS = 10


def _group_key(rows: list[dict]) -> str:
    return "option" if len({r["option"] for r in rows}) <= COLOURED_OPTIONS else "node"


def _points(rows: list[dict], label_key: str, group_key: str) -> list[dict]:
    """Chart points: the option's count as the label, its cluster option as the colour group."""
    return [{"days": r["days"], "cost_usd": r["cost_usd"], "pareto": r["pareto"],
             "label": r[label_key], "group": r[group_key]} for r in rows if r["days"] is not None]


def summary_section(result: dict) -> str:
    rows = result["options"]
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    clusters = list(dict.fromkeys(r["cluster"] for r in rows))
    pairs = [("cluster options", f"{len(clusters)}: " + ", ".join(clusters)),
             ("workloads", ", ".join(f"{w} (weight {next(r['weight'] for r in rows if r['workload'] == w):g})"
                                     for w in workloads)),
             ("runs", f"{sum(1 for r in rows if r['plan'])} of {len(rows)} option x workload pairs have a plan "
                      "that fits"),
             ("searches", f"{result['searches']} plan searches in {result['seconds']:.1f} s "
                          f"({result['workers']} worker process{'es' if result['workers'] != 1 else ''})")]
    return section("summary", "Comparison", [kv_table(pairs)])


def workload_section(name: str, rows: list[dict], index: int) -> str:
    """Days against dollars of every option for one workload, and the table behind the chart."""
    from planner.report.purchase import _shown_rows

    mine = [r for r in rows if r["workload"] == name]
    key = _group_key(mine)
    points = _points(mine, "cluster", key)
    for p, r in zip(points, (r for r in mine if r["days"] is not None)):
        p["label"] = f"x{r['nodes']}" if key == "option" else r["cluster"]
    labels = "node count" if key == "option" else "option and node count"
    labelled = "" if len(points) <= charts.LABELLED_POINTS else " (labelled)"
    parts = [figure(charts.days_cost_chart(points, f"{name}: days against cost of every cluster option"),
                    "purchase", f"Colour: {'cluster option' if key == 'option' else 'node type'}; label: {labels}. "
                                f"Ringed points{labelled} are on the Pareto front: no other option is both faster "
                                "and cheaper.")]
    shown = _shown_rows(mine, {name: 0})  # the Pareto front and the fastest others, then a count of the rest
    body = [[r["cluster"], f"{r['gpus']:,}", r["pricing"], days(r["days"]), _money(r["cost_usd"]),
             "" if r["tokens_per_usd"] is None else f"{r['tokens_per_usd']:,.0f}",
             "" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%",
             {True: "yes", False: "no", None: ""}[r["meets_deadline"]], "yes" if r["pareto"] else "",
             _describe(r)] for r in shown if not isinstance(r, str)]
    parts.append('<div class="wide">' + table(["option", "GPUs", "pricing", "days", "cost", "tokens/$", "MFU",
                                               "deadline", "Pareto", "plan"], body, numeric={1, 3, 4, 5, 6},
                                              cls="plans") + "</div>")
    parts += [f'<p class="sub">{escape(r)}</p>' for r in shown if isinstance(r, str)]
    parts += batch_note(mine)
    return section(f"workload-{index}", f"Workload {name}", parts)


def batch_note(rows: list[dict]) -> list[str]:
    """For a workload whose global batch is searched: the batch of its fastest option and why (the
    search's own statement, planner.search batch.why); each option's batch is in its plan column."""
    searched = [r for r in rows if r.get("batch") and r["days"] is not None]
    if not searched:
        return []
    best = min(searched, key=lambda r: r["days"])
    return [f'<p class="sub">Global batch searched; each option\'s batch is in its plan. Fastest option, '
            f'{escape(best["cluster"])}: {escape(best["batch"]["why"])}.</p>']


def overall_section(result: dict) -> str:
    """Weighted days against weighted dollars of the options that run every workload."""
    overall = [t for t in result["overall"] if t["runs_all"]]
    by_label = {r["cluster"]: r for r in result["options"]}
    key = _group_key(result["options"])
    points = [{"days": t["weighted_days"], "cost_usd": t["weighted_cost_usd"], "pareto": t["pareto"],
               "label": f"x{by_label[t['cluster']]['nodes']}" if key == "option" else t["cluster"],
               "group": by_label[t["cluster"]][key]}
              for t in overall]
    parts = [figure(charts.days_cost_chart(points, "All workloads: weighted days against weighted cost"),
                    "purchase", "Sum over the workloads of weight x days and weight x dollars, for the options "
                                "that run every workload.")]
    missing = [t["cluster"] for t in result["overall"] if not t["runs_all"]]
    if missing:
        parts.append(f"<p>Not every workload fits on: {escape(', '.join(missing))}.</p>")
    return section("overall", "All workloads, weighted", parts)


def best_mix_section(mix: dict) -> str:
    """What to buy within the budget, in words and as a table."""
    parts = ["<ul>" + "".join(f"<li>{escape(line)}</li>" for line in mix.get("explanation", [])) + "</ul>"]
    if mix.get("bought"):
        parts.append(table(["buy or rent", "GPUs", "pricing", "capex", "running", "workloads", "busy days"],
                           [[b["cluster"], f"{b['gpus']:,}", b["pricing"], _money(b["capex_usd"]),
                             _money(b["running_usd"]), ", ".join(b["workloads"]), days(b["busy_days"])]
                            for b in mix["bought"]], numeric={1, 3, 4, 6}))
    return section("best-mix", f"Best mix within {_money(mix['budget_usd'])} ({mix['status']})", parts)


def sensitivity_section(entries: list[dict]) -> str:
    """Which price, power or utilisation changes move the ranking or the front."""
    body = [[e["vary"], f"{100 * e['change']:+.0f}%", e["cluster"],
             "; ".join(f"{c['workload']}: " + (f"cheapest {c['cheapest'][0]} -> {c['cheapest'][1]}"
                                               if c["cheapest"][0] != c["cheapest"][1] else
                                               f"{len(c['moves'])} rank moves")
                       + (f", front +{', '.join(c['pareto_added'])}" if c["pareto_added"] else "")
                       + (f", front -{', '.join(c['pareto_removed'])}" if c["pareto_removed"] else "")
                       for c in e["changes"]) or "no change"] for e in entries]
    return section("sensitivity", "Sensitivity", [table(["vary", "by", "option", "what changes"], body)])


def serving_section(rows: list[dict]) -> str:
    """The serving workloads: each option's cheapest plan for a year of traffic (as compare's console table)."""
    from planner.serve.purchase import describe_serving

    body = [[r["workload"], r["cluster"], describe_serving(r["plan"]) if r["plan"] else f"no plan: {r['reason']}",
             "" if r["plan"] is None else f"{r['gpus_needed']:,}",
             "" if r["plan"] is None else _money(r["cost_per_year_usd"]),
             "" if r.get("usd_per_million_output_tokens") is None else f"${r['usd_per_million_output_tokens']:,.4f}",
             "yes" if r["pareto"] else ""] for r in rows]
    return section("serving", "Serving workloads: cheapest plan of each option for a year of traffic",
                   ['<div class="wide">' + table(["workload", "option", "plan", "GPUs", "$ / year", "$ / M output tokens",
                                                  "Pareto"], body, numeric={3, 4, 5}, cls="plans") + "</div>"])


def compare_report(result: dict) -> str:
    """The report of a purchase comparison as one HTML document."""
    workloads = list(dict.fromkeys(r["workload"] for r in result["options"]))
    body = [summary_section(result)] if result["options"] else []  # a file of serving workloads only: none
    body += [workload_section(w, result["options"], i) for i, w in enumerate(workloads, 1)]
    if len(workloads) > 1 and any(t["runs_all"] for t in result["overall"]):
        body.append(overall_section(result))
    if result.get("serving"):
        body.append(serving_section(result["serving"]))
    if result.get("best_mix"):
        body.append(best_mix_section(result["best_mix"]))
    if result.get("sensitivity"):
        body.append(sensitivity_section(result["sensitivity"]))
    serving = result.get("serving", [])
    options = {r["cluster"] for r in result["options"] + serving}
    counts = f"{len(workloads)} training" + (f" and {len({r['workload'] for r in serving})} serving" if serving else "")
    return page(f"Cluster purchase comparison: {result['name']}", f"{counts} workloads on {len(options)} cluster options",
                body)


def write_compare_report(result: dict, path, force: bool = False) -> Path:
    """Write the report of `result` (planner.purchase.compare) to `path`."""
    write_file(path, compare_report(result), force=force)
    return Path(path)
