"""`planner compare` output: rich tables (options per workload, weighted totals, best mix, sensitivity)
and the CSV text (planner.cli writes it atomically with planner.atomic.write_file)."""

from __future__ import annotations

import csv
import io

from rich.console import Console
from rich.table import Table

from planner.purchase import describe
from planner.report.console import _money as money


def _money(x) -> str:
    return money(x, missing="-")


def options_table(result: dict) -> Table:
    t = Table(title=f"{result['name']}: {len(result['options'])} options x workloads "
                    f"({result['searches']} searches, {result['seconds']:.1f} s, {result['workers']} processes)",
              title_justify="left", header_style="bold")
    for col, just in (("workload", "left"), ("cluster", "left"), ("GPUs", "right"), ("pays", "left"),
                      ("days", "right"), ("cost", "right"), ("tokens/$", "right"), ("MFU", "right"),
                      ("Pareto", "center"), ("best plan / why none fits", "left")):
        t.add_column(col, justify=just, overflow="fold", no_wrap=col != "best plan / why none fits")
    last = None
    order = {w: i for i, w in enumerate(dict.fromkeys(r["workload"] for r in result["options"]))}
    shown = _shown_rows(result["options"], order)
    for r in shown:
        if isinstance(r, str):
            t.add_row("", f"[dim]{r}[/]", "", "", "", "", "", "", "", "")
            continue
        if last is not None and r["workload"] != last:
            t.add_section()
        last = r["workload"]
        if r["plan"] is None:
            t.add_row(r["workload"], r["cluster"], str(r["gpus"]), r["pricing"], "-", "-", "-", "-", "",
                      f"[red]{r['reason']}[/]")
            continue
        late = r["meets_deadline"] is False
        t.add_row(r["workload"], r["cluster"], str(r["gpus"]), r["pricing"],
                  f"[red]{r['days']:.1f}[/]" if late else f"{r['days']:.1f}", _money(r["cost_usd"]),
                  "-" if r["tokens_per_usd"] is None else f"{r['tokens_per_usd']:,.0f}", f"{100 * r['mfu']:.1f}%",
                  "[green]*[/]" if r["pareto"] else "", describe(r["plan"], bool(r.get("batch"))))
    return t


ROWS_PER_WORKLOAD = 40  # a terminal shows this many options per workload; --json and --csv hold them all


def _shown_rows(rows: list[dict], order: dict) -> list:
    """Rows of the options table, fastest first within each workload: every Pareto-front option and
    the fastest others up to ROWS_PER_WORKLOAD, then a line counting the rest (a table of thousands
    of rows is neither readable nor fast to draw)."""
    out: list = []
    by_workload: dict[str, list] = {}
    for r in sorted(rows, key=lambda r: (order[r["workload"]], r["days"] is None, r["days"] or 0)):
        by_workload.setdefault(r["workload"], []).append(r)
    for group in by_workload.values():
        keep = [r for i, r in enumerate(group) if r["pareto"] or i < ROWS_PER_WORKLOAD]
        keep = keep if len(keep) <= ROWS_PER_WORKLOAD else \
            [r for r in group if r["pareto"]][:ROWS_PER_WORKLOAD] or group[:ROWS_PER_WORKLOAD]
        keep_ids = {id(r) for r in keep}
        out += [r for r in group if id(r) in keep_ids]
        if len(group) > len(keep):
            out.append(f"... {len(group) - len(keep):,} more options for {group[0]['workload']} (--json or --csv for all)")
    return out


def overall_table(result: dict) -> Table:
    t = Table(title="all workloads, weighted (sum of weight x days, weight x dollars)", title_justify="left",
              header_style="bold")
    for col, just in (("cluster", "left"), ("weighted days", "right"), ("weighted cost", "right"), ("Pareto", "center")):
        t.add_column(col, justify=just)
    ranked = sorted(result["overall"], key=lambda o: (o["weighted_cost_usd"] is None, o["weighted_cost_usd"] or 0))
    shown = [o for i, o in enumerate(ranked) if o["pareto"] or i < ROWS_PER_WORKLOAD]
    for o in shown:
        if o["runs_all"]:
            t.add_row(o["cluster"], f"{o['weighted_days']:.1f}", _money(o["weighted_cost_usd"]),
                      "[green]*[/]" if o["pareto"] else "")
        else:
            t.add_row(o["cluster"], "-", "-", "[dim]not every workload fits[/]")
    if len(ranked) > len(shown):
        t.add_row(f"[dim]... {len(ranked) - len(shown):,} more (--json or --csv for all)[/]", "", "", "")
    return t


def _change_text(changes: list[dict]) -> str:
    if not changes:
        return "[green]ranking holds[/]"
    parts = []
    for c in changes:
        what = [f"cheapest {c['cheapest'][0]} -> {c['cheapest'][1]}"] if c["cheapest"][0] != c["cheapest"][1] else []
        what += [f"{m['cluster']} #{m['from']}->#{m['to']}" for m in c["moves"][:3]]
        what += [f"Pareto +{x}" for x in c["pareto_added"]] + [f"Pareto -{x}" for x in c["pareto_removed"]]
        parts.append(f"{c['workload']}: " + ", ".join(what))
    return "[yellow]" + "; ".join(parts) + "[/]"


def sensitivity_table(entries: list[dict]) -> Table:
    t = Table(title="sensitivity: one cluster option varied at a time; cost ranking and Pareto front",
              title_justify="left", header_style="bold")
    for col in ("vary", "cluster", "effect"):
        t.add_column(col, overflow="fold")
    for e in entries:
        t.add_row(f"{e['vary']} {100 * e['change']:+.0f}%", e["cluster"], _change_text(e["changes"]))
    return t


def render_compare(result: dict, console: Console) -> None:
    if result["options"]:
        console.print(options_table(result))
        for line in batch_lines(result["options"]):
            console.print(line, soft_wrap=True, markup=False)
        console.print(overall_table(result))
    mix = result.get("best_mix")
    if mix:
        head = "[bold]best mix[/]" if mix["status"] != "infeasible" else "[red]no mix fits the budget[/]"
        console.print(f"{head} (budget ${mix['budget_usd']:,.0f}, {mix['status']})")
        for line in mix["explanation"]:
            console.print("  " + line)
    if result.get("sensitivity"):
        console.print(sensitivity_table(result["sensitivity"]))
    if result.get("serving"):
        from planner.serve.purchase import serving_table

        console.print(serving_table(result["serving"]))


def batch_lines(rows: list[dict]) -> list[str]:
    """Per workload whose global batch is searched: its fastest option's batch and why (batch.why)."""
    out = []
    for name in dict.fromkeys(r["workload"] for r in rows):
        searched = [r for r in rows if r["workload"] == name and r.get("batch") and r["days"] is not None]
        if searched:
            best = min(searched, key=lambda r: r["days"])
            out.append(f"global batch of {name}, fastest option {best['cluster']}: {best['batch']['why']}")
    return out


CSV_COLUMNS = ("cluster", "option", "node", "nodes", "gpus", "pricing", "workload", "weight", "days", "cost_usd",
               "tokens_per_usd", "mfu", "tokens_per_s", "meets_deadline", "pareto", "pareto_overall", "plan", "reason")
# Appended for a purchase file's serving_workloads (blank on training rows; days etc. blank on serving rows).
CSV_SERVING_COLUMNS = ("kind", "hours_per_year", "gpus_needed", "cost_per_year_usd", "usd_per_million_output_tokens",
                       "output_tokens_per_s")


def inert(value):
    """A text cell a spreadsheet would read as a formula (first character = + - @, tab or CR: OWASP
    'CSV Injection') gets a leading apostrophe; numbers and other text are written as they are."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_text(result: dict) -> str:
    """One CSV line per option x workload, training rows first, then serving rows (kind: serving);
    `plan` is the one-line description."""
    from planner.serve.purchase import describe_serving

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS + CSV_SERVING_COLUMNS)

    def cell(r, c, plan_text):
        v = r.get(c)
        return "" if v is None else (plan_text(r["plan"]) if c == "plan" else inert(v))

    for r in result["options"]:
        w.writerow([cell(r, c, lambda p: describe(p, bool(r.get("batch")))) for c in CSV_COLUMNS]
                   + ["training"] + [""] * (len(CSV_SERVING_COLUMNS) - 1))
    for r in result.get("serving", []):
        w.writerow([cell(r, c, describe_serving) for c in CSV_COLUMNS + CSV_SERVING_COLUMNS])
    return buf.getvalue()
