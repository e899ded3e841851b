"""Terminal rendering with rich: plan tables, breakdowns, catalogs, model summaries."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table


def _layout(p: dict) -> str:
    parts = [f"dp{p['dp']}", f"tp{p['tp']}", f"pp{p['pp']}"]
    if p["vpp"] > 1:
        parts[-1] += f"x{p['vpp']}"
    if p["cp"] > 1:
        parts.append(f"cp{p['cp']}")
    if p["ep"] > 1:
        parts.append(f"ep{p['ep']}")
    if p.get("etp") is not None and p["etp"] != p["tp"]:
        parts.append(f"etp{p['etp']}")  # experts split over etp ranks, not tp (MoE parallel folding)
    return " ".join(parts) + (" sp" if p["sp"] else "")


def _offload(p: dict) -> str:
    if p["offload"] == "none" and p["offload_params"] == "none":
        return "-"
    if p["offload_params"] != "none":
        return f"opt:{p['offload']} par:{p['offload_params']}"
    return p["offload"]


def _money(x, missing: str = "n/a") -> str:
    return missing if x is None else f"${x:,.0f}"


VERDICT_STYLE = {"fits": "green", "tight": "yellow", "oom": "red"}


RECOMPUTE_SHORT = {"none": "none", "selective": "sel", "full": "full"}


def _short_layout(p: dict) -> str:
    """_layout without 'sp' where it is what the framework does anyway (Megatron and torchtitan with
    tp > 1; DeepSpeed never); 'no-sp' where a plan turns it off."""
    usual = p["tp"] > 1 and p["framework"] != "deepspeed"
    text = _layout({**p, "sp": False})
    return text if bool(p["sp"]) == usual else text + (" sp" if p["sp"] else " no-sp")


def _short_offload(p: dict) -> str:
    """Offload in a table cell: '-', the optimizer's target, or 'o:<opt> p:<params>'."""
    if p["offload_params"] != "none":
        return f"o:{p['offload']} p:{p['offload_params']}"
    return "-" if p["offload"] == "none" else p["offload"]


def _short_money(x) -> str:
    """Cost in a table cell: dollars below $1M, else $1.2M."""
    if x is None:
        return "n/a"
    return f"${x / 1e6:,.1f}M" if x >= 1e6 else f"${x:,.0f}"
# Ranking notes under the table (planner/search/rank.py REASONS): a marker after the rank.
PREFERRED_MARK = "*"


def plans_table(plans: list[dict], title: str) -> Table:
    """One row per plan, fitting a 100-column terminal (tests/test_console.py): no outer border,
    one space between columns, sequence parallelism shown only where it departs from the
    framework's habit, costs of $1M and more in millions; tokens/s per GPU is in the JSON (MFU and
    days rank the same way for one model). A rank marked * was preferred over a plan that is better by
    the objective alone (plan['preferred'], explained under the table by render_solve)."""
    t = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
              padding=(0, 0), show_edge=False)
    for col, just in (("#", "right"), ("framework", "left"), ("prec", "left"), ("layout", "left"),
                      ("zero", "right"), ("offld", "left"), ("recmp", "left"), ("mbsxga", "right"),
                      ("GiB/GPU", "right"), ("step s", "right"), ("MFU", "right"), ("days", "right"),
                      ("cost", "right")):
        wraps = col in ("layout", "offld")  # the only cells that may fold onto a second line, never cut
        t.add_column(col, justify=just, no_wrap=not wraps, overflow="fold")
    for i, r in enumerate(plans, 1):
        p, m = r["plan"], r["memory"]
        style = VERDICT_STYLE[m["verdict"]]
        mark = PREFERRED_MARK if r.get("preferred") else ""
        t.add_row(f"{i}{mark}", p["framework"], precision_label(r), _short_layout(p), str(p["zero"]), _short_offload(p),
                  RECOMPUTE_SHORT.get(p["recompute"], p["recompute"]), f"{p['mbs']}x{p['ga']}",
                  f"[{style}]{m['per_gpu_gib']:.1f} {m['verdict']}[/]", f"{r['time']['step_s']:.2f}",
                  f"{100 * r['throughput']['mfu']:.1f}%", f"{r['run']['days']:.1f}", _short_money(r["run"]["cost_usd"]))
    return t


def precision_label(r: dict) -> str:
    """The plan's precision as shown: 'fp8' plans under runtime.fp8_recipe nvfp4 run their GEMMs on the FP4
    tensor cores (throughput.mfu_precision_basis 'fp4') and show as 'nvfp4'; the JSON keeps 'fp8'."""
    basis = r.get("throughput", {}).get("mfu_precision_basis")
    return "nvfp4" if basis == "fp4" and r["plan"]["precision"] == "fp8" else r["plan"]["precision"]


MFU_BASIS = "MFU: model TFLOP/s over the GPU's dense BF16 peak, for every precision"


def preferred_lines(result: dict) -> list[str]:
    """Under the table: which plans were ranked above a plan better by the objective, and why
    (result['ranking']['reasons']), or that the ranking is strict."""
    rk = result.get("ranking") or {}
    if rk.get("strict"):
        return [f"ranked by {result['objective']} alone (--strict)"]
    marked: dict[str, list[int]] = {}
    for i, r in enumerate(result["plans"], 1):
        for why in (r.get("preferred") or "").split("+"):
            if why:
                marked.setdefault(why, []).append(i)
    lines = [f"{PREFERRED_MARK} ranked above a plan better by {result['objective']}: "
             + ", ".join(f"#{', #'.join(map(str, ranks))} {why}" for why, ranks in marked.items())] if marked else []
    lines += [f"  {why}: {rk['reasons'][why]}" for why in marked if why in rk.get("reasons", {})]
    if marked:
        lines.append(f"  --strict ranks by {result['objective']} alone")
    return lines


def _named_parts(parts: dict) -> str:
    """'name value, ...' of the parts worth showing (>= 0.05 GiB), largest first."""
    shown = sorted(((v, k) for k, v in parts.items() if v >= 0.05), reverse=True)
    return ", ".join(f"{k} {v:.1f}" for v, k in shown)


def host_shortfall(m: dict) -> str:
    """Why an offload plan is oom where its GPU memory is not: what the node's host RAM or NVMe cannot hold,
    or that the node gives no host memory (planner.estimate.evaluate.memory_verdict: unknown host memory
    shows no offload plan to fit)."""
    host, cap = m.get("host_per_node_gib") or 0.0, m.get("host_capacity_gib")
    if cap is None:
        return (f"the offload needs {host:.1f} GiB of host memory per node and the node's is unknown "
                "(an inline node with host_memory_gib and, for NVMe, nvme_tb)")
    out = [f"host memory {host:.1f} GiB per node of {cap:.1f}"] if host > cap else []
    nvme, ncap = m.get("nvme_per_node_gb") or 0.0, m.get("nvme_capacity_gb")
    if nvme > (ncap or 0.0):
        out.append(f"NVMe {nvme:,.0f} GB per node of "
                   + ("unknown (an inline node with nvme_tb)" if ncap is None else f"{ncap:,.0f}"))
    return "; ".join(out) or "the node cannot hold the offloaded state"


def memory_lines(m: dict) -> list[str]:
    """The memory object as lines: total and verdict, each group with its named parts, host and NVMe."""
    where = ""
    if "most_loaded_stage" in m:
        phase = "optimizer step" if m["peak_phase"] == "optimizer_step" else "forward/backward"
        where = f", {m['most_loaded_stage']} stage, peak in {phase}"
    limit = f"; fits below {m['fits_below_gib']:.1f}" if "fits_below_gib" in m else ""
    lines = [f"memory/GPU: {m['per_gpu_gib']:.1f} of {m['capacity_gib']:.1f} GiB ({m['verdict']}, "
             f"headroom {m['headroom_gib']:.1f}{limit}){where}"]
    if m.get("error_band_pool", {}).get("runs"):
        lo, hi = m["per_gpu_gib_range"]
        lines.append(f"  {band_text(m)}: measured {lo:.1f}-{hi:.1f} GiB expected; oom above {m['oom_above_gib']:.1f}")
    parts = m.get("parts_gib", {})
    for group, total in m["breakdown_gib"].items():
        named = _named_parts(parts.get(group, {}))
        lines.append(f"  {group} {total:.1f}" + (f": {named}" if named else ""))
    if m.get("host_per_node_gib"):
        cap = m.get("host_capacity_gib")
        named = _named_parts(m.get("host_parts_gib", {}))
        lines.append(f"host/node: {m['host_per_node_gib']:.1f} GiB of {cap if cap is not None else 'unknown'}"
                     + (f": {named}" if named else ""))
    if m.get("nvme_per_node_gb"):
        cap = m.get("nvme_capacity_gb")
        lines.append(f"NVMe/node: {m['nvme_per_node_gb']:,.0f} GB of {f'{cap:,.0f}' if cap is not None else 'unknown'}")
    if m["verdict"] == "oom" and m["per_gpu_gib"] <= m.get("oom_above_gib", m["capacity_gib"]):
        lines.append(f"oom on the host side: {host_shortfall(m)}")
    return lines


def band_text(obj: dict) -> str:
    """'error band -4%..+10% (megatron/dense/bf16, 3 calibration runs)' of a throughput or memory object."""
    lo, hi = obj["error_band"]
    src = obj.get("error_band_pool", {})
    pool = "no calibration run" if src.get("runs", 0) == 0 else \
        f"{src['pool']}, {src['runs']} calibration run{'s' if src['runs'] != 1 else ''}"
    return f"error band {100 * lo:+.0f}%..{100 * hi:+.0f}% ({pool})"


def throughput_line(r: dict) -> str:
    th = r["throughput"]
    line = f"tokens/s/GPU {th['tokens_per_s_per_gpu']:,.0f}"
    if th.get("error_band_pool", {}).get("runs"):
        lo, hi = th["tokens_per_s_per_gpu_range"]
        line += f", {band_text(th)}: measured {lo:,.0f}-{hi:,.0f} expected"
    return line


def breakdown_lines(r: dict) -> list[str]:
    m, tm = r["memory"], r["time"]
    lines = memory_lines(m)
    step = tm["step_s"]
    parts = sorted(((v, k) for k, v in tm["breakdown_s"].items() if v > 0), reverse=True)
    lines.append(f"step {step:.3f} s: " + ", ".join(f"{k} {v:.3f} ({100 * v / step:.0f}%)" for v, k in parts))
    lines.append(throughput_line(r))
    return lines


def render_solve(result: dict, console: Console) -> None:
    plans = result["plans"]
    gpus = result["gpus"]
    where = f"{gpus:,} GPUs" if isinstance(gpus, int) else f"{gpus[0]:,}-{gpus[-1]:,} GPUs ({len(gpus)} counts)"
    title = (f"{result['scenario']} on {where}: top {len(plans)} of {result['feasible']:,} feasible plans "
             f"({result['considered']:,} considered, {result['valid']:,} runnable by their framework, "
             f"{result['fits_memory']:,} fit in memory) by {result['objective']}, {result['seconds']:.2f} s"
             + (" [exhaustive]" if result.get("exhaustive") else ""))
    console.print(plans_table(plans, title))
    for line in [MFU_BASIS, *preferred_lines(result)]:
        console.print(line, soft_wrap=False)
    if plans:
        b = plans[0].get("bound_by")
        bound = f": bound by {b['term']} ({100 * b['share']:.0f}% of the step)" if b else ""
        if b and "largest_overhead" in b:
            bound += f", largest overhead {b['largest_overhead']} ({100 * b['overhead_share']:.0f}%)"
        tps = plans[0]["throughput"]["tokens_per_s_per_gpu"]
        console.print(f"[bold]best plan[/]: {tps:,.0f} tok/s/GPU{bound.replace(': bound', ', bound', 1)}")
        for line in breakdown_lines(plans[0]):
            console.print("  " + line)
    if result.get("pareto"):
        t = Table(title="Pareto front of days and cost across node counts", title_justify="left", header_style="bold")
        for col in ("GPUs", "days", "cost", "tok/s", "plan"):
            t.add_column(col, justify="left" if col == "plan" else "right")
        for p in result["pareto"]:
            t.add_row(f"{p['gpus']:,}", f"{p['days']:.1f}", _money(p["cost_usd"]), f"{p['tokens_per_s']:,.0f}",
                      f"{p['plan']['framework']} {_layout(p['plan'])} zero{p['plan']['zero']}")
        console.print(t)


def render_estimate(r: dict, console: Console) -> None:
    console.print(plans_table([r], "plan estimate"))
    for line in breakdown_lines(r):
        console.print("  " + line)
    tp = r["throughput"]
    console.print(f"  model {tp['model_tflops_per_gpu']:.1f} TFLOP/s/GPU, hardware {tp['hardware_tflops_per_gpu']:.1f}, "
                  f"{mfu_text(r)}; {r['run']['days']:.2f} days, {r['run']['gpu_hours']:,.0f} GPU-hours, "
                  f"{_money(r['run']['cost_usd'])}")
    if r.get("runtime_fixes"):
        console.print("  runtime settings this scenario leaves at the framework default that lower this plan's memory:")
        for f in r["runtime_fixes"]:
            why = f" ({f['why']})" if f["why"] else ""
            console.print(f"    - {f['change']}: {f['per_gpu_gib']:.1f} GiB, {f['verdict']}{why}")


def mfu_text(r: dict) -> str:
    """MFU on its stated basis (dense BF16 peak) and, labelled, over the plan's own precision peak."""
    tp = r["throughput"]
    text = f"MFU {100 * tp['mfu']:.1f}% of the dense BF16 peak"
    if tp.get("mfu_precision_peak") is not None and r["plan"]["precision"] != "bf16":
        basis = tp.get("mfu_precision_basis") or r["plan"]["precision"]
        text += f" ({100 * tp['mfu_precision_peak']:.1f}% of the dense {basis.upper()} peak)"
    return text


def render_infeasible(result: dict, console: Console) -> None:
    c = result.get("closest")
    console.print(f"[red]No plan fits[/] ({result['considered']:,} considered, "
                  f"{result.get('fits_memory', 0):,} fit in memory, {result['feasible']} within the budget).")
    if c:
        console.print(plans_table([c], "closest plan (least memory relative to capacity)"))
        for line in breakdown_lines(c):
            console.print("  " + line)
    for line in result.get("explanation", []):
        console.print("  " + line)


def render_model(s: dict, console: Console) -> None:
    console.print(f"[bold]{s['name']}[/]: {s['params_total']:,} parameters total, {s['params_active']:,} active")
    t = Table(header_style="bold")
    t.add_column("component")
    t.add_column("parameters", justify="right")
    for k, v in s["params_by_component"].items():
        if v:
            t.add_row(k, f"{v:,}")
    console.print(t)
    f = s["flops_per_token"]
    console.print(f"FLOPs/token at seq {f['seq_len']}: forward {f['forward']:.4g}, training {f['training']:.4g} "
                  f"({f['convention']})")


CATALOG_COLUMNS = {
    "gpus": [("name", "name"), ("memory GiB", "memory_gib"), ("bf16 TF", "tflops.bf16"), ("fp8 TF", "tflops.fp8"),
             ("HBM TB/s", "hbm_tb_s"), ("W", "power_w"), ("$/GPU-h", "price.cloud_usd_per_gpu_hour")],
    "nodes": [("name", "name"), ("gpu", "gpu"), ("GPUs", "gpus_per_node"), ("domain", "scaleup_domain"),
              ("scale-up GB/s", "scaleup_gb_s"), ("scale-out GB/s", "scaleout_gb_s"), ("host GiB", "host_memory_gib")],
    "models": [("name", "name"), ("layers", "layers"), ("hidden", "hidden"), ("heads", "heads"),
               ("kv", "kv_heads"), ("ffn", "ffn_hidden"), ("vocab", "vocab"), ("experts", "moe.experts")],
}


def _dig(entry: dict, path: str):
    cur = entry
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def render_catalog(kind: str, entries: list[dict], console: Console) -> None:
    t = Table(title=f"{kind} ({len(entries)})", title_justify="left", header_style="bold")
    cols = CATALOG_COLUMNS[kind]
    for head, _ in cols:
        t.add_column(head)
    for e in entries:
        t.add_row(*("-" if _dig(e, p) is None else str(_dig(e, p)) for _, p in cols))
    console.print(t)
