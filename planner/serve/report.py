"""The self-contained HTML report of `planner serve --report FILE`: inline CSS and SVG, no script,
written atomically (planner.report.html page helpers, planner.report.charts SVG helpers).

Sections: the traffic and the plans table; memory per GPU of each plan (weights / KV cache /
workspace / other against the GPU's capacity); latency against throughput of each plan's layout as
its batch limit grows (TPOT p50 against output tokens/s per GPU with the engine saturated, the
standard throughput-latency curve of a serving engine); cost per million output tokens. When no plan
qualifies: the reasons and the nearest fixes (the same lists as the terminal and `--json`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import FuncFormatter

from planner.atomic import write_file
from planner.report import charts
from planner.report.html import figure, kv_table, page, section, table
from planner.serve import engines as E
from planner.serve.launch import plan_text
from planner.serve.render import same_numbers_text

SHOWN = 6  # plans drawn in the charts
MEMORY_PARTS = (("weights_gib", "weights", "#4e79a7"), ("kv_cache_gib", "KV cache", "#f28e2b"),
                ("workspace_gib", "activation workspace", "#59a14f"), ("other_gib", "CUDA graphs + context", "#bab0ac"))


def _label(rank: int, r: dict) -> str:
    p = r["plan"]
    return f"#{rank} {p['engine']} {p['weights']}/{p['kv_cache']} tp{p['tp']} pp{p['pp']} x{p['replicas']}"


def memory_svg(plans: list[dict]) -> str:
    """One stacked bar per plan: the memory of one GPU by part, and the GPU's capacity."""
    fig = charts._fig(11, 1.0 + 0.55 * len(plans))
    ax = fig.add_subplot()
    for y, r in enumerate(plans):
        left = 0.0
        for key, name, colour in MEMORY_PARTS:
            v = r["memory"].get(key) or 0.0
            ax.barh(y, v, left=left, color=colour, edgecolor="white", label=name if y == 0 else None)
            if v > 4:
                ax.text(left + v / 2, y, f"{v:.1f}", ha="center", va="center", fontsize=8)
            left += v
    cap = plans[0]["memory"]["capacity_gib"]
    ax.axvline(cap, color=charts.PALETTE["capacity"], linewidth=1.5, label=f"capacity {cap:.1f} GiB")
    ax.set_yticks(range(len(plans)), [_label(i, r) for i, r in enumerate(plans, 1)], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("GiB per GPU")
    charts._legend_below(fig, ncol=5)
    return charts.to_svg(fig)


def _row_indices(plan: dict) -> dict:
    return {"engine": E.ENGINE_NAMES.index(plan["engine"]), "wq": E.WEIGHT_NAMES.index(plan["weights"]),
            "kv": E.KV_NAMES.index(plan["kv_cache"]), "tp": plan["tp"], "pp": plan["pp"], "ep": plan["ep"],
            "attn_dp": bool(plan.get("attn_dp")), "replicas": plan["replicas"],
            "max_batch": plan["max_batch"], "max_batched_tokens": plan["max_batched_tokens"],
            "prefill_replicas": plan.get("prefill_replicas", 0),
            "engine_version": E.version_of_text(E.ENGINE_NAMES.index(plan["engine"]), plan.get("engine_version")),
            "graph_padding": bool(plan.get("graph_padding")),
            "moe_backend": E.MOE_BACKENDS.index(plan.get("moe_backend", "default")),
            "recv_interval": plan.get("recv_interval", 1),
            "quick_reduce": E.QUICK_REDUCE.index(plan.get("quick_reduce", "none")),
            "async_scheduling": bool(plan.get("async_scheduling")),
            "separate_prefill": bool(plan.get("separate_prefill")),
            "adp_balance": bool(plan.get("adp_balance")),
            "adp_wait_iters": plan.get("adp_wait_iters", E.TRTLLM_ADP_WAIT_ITERS),
            "adp_timeout_iters": plan.get("adp_timeout_iters", E.TRTLLM_ADP_TIMEOUT_ITERS)}


def batch_sweep(scenario, plans: list[dict]) -> list[dict]:
    """For each plan: its layout with max_batch 1, 2, 4, ... up to its own, the engine saturated
    (offline traffic); one evaluation of the whole table. Returns per plan the arrays batch,
    output tokens/s per GPU and TPOT p50 (ms), only where the plan fits."""
    from planner.serve.evaluate import evaluate

    offline = scenario.model_copy(update={"serving": scenario.serving.model_copy(
        update={"offline": True, "requests_per_s": None, "concurrency": None, "slo": type(scenario.serving.slo)()})})
    rows, owner = [], []
    for i, r in enumerate(plans):
        top = r["plan"]["max_batch"]
        batches = sorted({*(2 ** k for k in range(int(np.log2(top)) + 1)), top})
        for b in batches:
            rows.append({**_row_indices(r["plan"]), "max_batch": b})
            owner.append(i)
    t = {k: np.array([row[k] for row in rows]) for k in rows[0]}
    ev = evaluate(offline, t)
    owner = np.array(owner)
    ok = (ev["mem"]["verdict"] < 2) & (ev["batch_cap"] >= 1 - 1e-9)
    per_gpu = ev["out_tok_s"] / ev["gpus"]
    tpot = ev["tpot"]["p50"] * 1e3
    return [{"batch": t["max_batch"][(owner == i) & ok], "tok_s_gpu": per_gpu[(owner == i) & ok],
             "tpot_ms": tpot[(owner == i) & ok]} for i in range(len(plans))]


def latency_svg(plans: list[dict], curves: list[dict]) -> str:
    """TPOT p50 against output tokens/s per GPU as max_batch grows; the plan's own point ringed.
    Plans with the same curve (same layout and formats on other engines or replica counts) share
    one line, labelled with all their ranks."""
    groups: dict = {}
    for i, c in enumerate(curves):
        key = (tuple(np.round(c["tok_s_gpu"], 3)), tuple(np.round(c["tpot_ms"], 4)))
        groups.setdefault(key, []).append(i)
    fig = charts._fig(11, 5)
    ax = fig.add_subplot()
    for g, members in enumerate(groups.values()):
        colour, c = f"C{g % 10}", curves[members[0]]
        name = " = ".join(_label(i + 1, plans[i]) for i in members)
        ax.plot(c["tok_s_gpu"], c["tpot_ms"], "-o", color=colour, markersize=3.5, label=name)
        for b, x, y in zip(c["batch"], c["tok_s_gpu"], c["tpot_ms"]):
            if b in (c["batch"][0], c["batch"][-1]):
                ax.annotate(f"{b}", (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7, color=colour)
        for i in members:
            th, lat = plans[i]["throughput"]["output_tokens_per_s_per_gpu"], plans[i]["latency"]["tpot_ms"]["p50"]
            if th is not None and lat is not None:
                ax.scatter([th], [lat], s=90, facecolors="none", edgecolors=colour, linewidths=1.5)
    ax.set_xlabel("output tokens/s per GPU (engine saturated)")
    ax.set_ylabel("time per output token, p50 (ms)")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left")
    return charts.to_svg(fig)


def cost_svg(plans: list[dict]) -> str:
    """Dollars per million output tokens of each plan at the scenario's traffic."""
    vals = [r["cost"]["usd_per_million_output_tokens"] or 0.0 for r in plans]
    fig = charts._fig(11, 1.0 + 0.45 * len(plans))
    ax = fig.add_subplot()
    ax.barh(range(len(plans)), vals, color=charts.PALETTE["plans"])
    for y, v in enumerate(vals):
        ax.text(v, y, f" ${v:,.3f}", va="center", fontsize=8)
    ax.set_yticks(range(len(plans)), [_label(i, r) for i, r in enumerate(plans, 1)], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("USD per million output tokens")
    ax.set_xlim(0, max(vals + [1e-9]) * 1.2)
    return charts.to_svg(fig)


def _num(x, fmt="{:,.1f}"):
    return "n/a" if x is None else fmt.format(x)


def plans_table(plans: list[dict]) -> str:
    rows = [[i, " ".join(filter(None, (plan_text(r["plan"]), same_numbers_text(r) and f"({same_numbers_text(r)})"))),
             r.get("gpus", ""), _num(r["memory"]["per_gpu_gib"]), r["memory"]["verdict"],
             _num(r["latency"]["ttft_ms"]["p90"]), _num(r["latency"]["ttft_ms"].get("p99")),
             _num(r["latency"]["tpot_ms"]["p90"], "{:,.2f}"), _num(r["latency"]["tpot_ms"].get("p99"), "{:,.2f}"),
             _num(r["throughput"]["output_tokens_per_s"], "{:,.0f}"),
             _num(r["cost"]["usd_per_million_output_tokens"], "${:,.4f}")]
            for i, r in enumerate(plans, 1)]
    return table(["#", "plan", "GPUs", "GiB/GPU", "memory", "TTFT p90 ms", "TTFT p99 ms", "TPOT p90 ms", "TPOT p99 ms",
                  "output tok/s", "$ / M output tokens"], rows, numeric={2, 3, 5, 6, 7, 8, 9, 10}, cls="plans")


def serving_report(result: dict, scenario) -> str:
    s = scenario.serving
    load = ("offline (max throughput)" if s.offline else f"{s.requests_per_s} requests/s"
            if s.requests_per_s is not None else f"{s.concurrency} concurrent requests")
    slo = ", ".join(f"{k} {v}" for k, v in s.slo.model_dump().items() if v is not None) or "none"
    summary = kv_table([("model", scenario.model.name), ("GPU", scenario.cluster.node.gpu.name),
                        ("GPUs available", str(scenario.cluster.gpus)),
                        ("input / output tokens", f"{s.input_tokens} / {s.output_tokens}"),
                        ("load", load), ("SLO", slo), ("prefix cache hit", f"{s.prefix_cache_hit:.0%}")])
    body = [section("scenario", "Traffic", [summary])]
    plans = result.get("plans") or []
    if not plans:
        why = result.get("infeasible") or {}
        parts = ['<p class="bad">No serving plan fits and meets the targets '
                 f'({result.get("evaluated", 0):,} plans evaluated).</p>']
        if why.get("reasons"):
            parts.append(table(["why"], [[r] for r in why["reasons"]]))
        if why.get("fixes"):
            parts.append(table(["nearest fix", "because"], [[f["change"], f["why"]] for f in why["fixes"]]))
        body.append(section("none", "No plan meets the scenario", parts))
        return page(f"Serving plans: {scenario.name}", "no feasible plan", body)
    shown = plans[:SHOWN]
    body.append(section("plans", f"{len(plans)} plan(s)", [plans_table(plans)]))
    body.append(section("memory", "Memory per GPU", [figure(
        memory_svg(shown), "memory", "Memory of one GPU by part: weights, KV cache pool, activation workspace of "
        "the largest step, CUDA graphs and context; the line is the GPU's capacity.")]))
    body.append(section("latency", "Latency against throughput", [figure(
        latency_svg(shown, batch_sweep(scenario, shown)), "latency",
        "Each plan's layout with max_batch 1, 2, 4, ... up to its own (numbers at the ends), the engine saturated: "
        "more sequences per step raise throughput per GPU and the time per output token. Rings: the plan at the "
        "scenario's traffic.")]))
    body.append(section("cost", "Cost per million output tokens", [figure(
        cost_svg(shown), "cost", "Dollars per million output tokens at the scenario's traffic (GPU-hour price "
        "of the catalog x GPUs / output tokens per hour).")]))
    return page(f"Serving plans: {scenario.name}", f"{len(plans)} plans; objective {result.get('objective', '')}",
                body)


def write_serving_report(result: dict, scenario, path, force: bool = False) -> Path:
    """Write the serving report of `result` (planner serve's JSON object) to `path`."""
    write_file(path, serving_report(result, scenario), force=force)
    return Path(path)
