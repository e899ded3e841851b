"""Console rendering of serving plans (a rich table that fits 100 columns)."""

from __future__ import annotations

from rich.table import Table

VERDICT_STYLE = {"fits": "green", "tight": "yellow", "oom": "red"}


def _layout(p: dict) -> str:
    parts = [f"tp{p['tp']}"]
    if p["pp"] > 1:
        parts.append(f"pp{p['pp']}")
    if p["ep"] > 1:
        parts.append(f"ep{p['ep']}")
    if p.get("attn_dp"):
        parts.append("adp")
    if p.get("prefill_replicas"):
        return " ".join(parts) + f" x{p['replicas']} decode + x{p['prefill_replicas']} prefill"
    return " ".join(parts) + f" x{p['replicas']}"


def _num(x, fmt: str, missing: str = "n/a") -> str:
    return missing if x is None else format(x, fmt)


def _ms(x, fmt: str) -> str:
    """Milliseconds, or n/a without a unit (no latency: the queue of an unstable plan grows without end)."""
    return "n/a" if x is None else format(x, fmt) + " ms"


def _p99_text(lat: dict) -> str:
    """', TTFT p99 .. ms, TPOT p99 .. ms' where the latency carries p99 (the table shows p90 only)."""
    ttft, tpot = lat["ttft_ms"].get("p99"), lat["tpot_ms"].get("p99")
    if ttft is None and tpot is None:
        return ""
    return f", TTFT p99 {_ms(ttft, ',.0f')}, TPOT p99 {_ms(tpot, '.1f')}"


def same_numbers_text(r: dict) -> str:
    """The other weights / KV-cache formats that give plan r's numbers (planner.serve.search keeps one row)."""
    alts = r.get("same_numbers") or []
    return "same numbers with " + ", ".join(f"{a['weights']}/{a['kv_cache']}" for a in alts) if alts else ""


def plans_table(plans: list[dict], title: str) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold", pad_edge=False)
    for col, just in (("#", "right"), ("engine", "left"), ("w/kv", "left"), ("layout", "left"),
                      ("batch", "right"), ("GiB/GPU", "right"), ("seqs", "right"), ("TTFT p90", "right"),
                      ("TPOT p90", "right"), ("tok/s/GPU", "right"), ("$/M tok", "right")):
        t.add_column(col, justify=just)
    for i, r in enumerate(plans, 1):
        p, m, lat = r["plan"], r["memory"], r["latency"]
        style = VERDICT_STYLE[m["verdict"]]
        t.add_row(str(i), p["engine"], f"{p['weights']}/{p['kv_cache']}", _layout(p), str(p["max_batch"]),
                  f"[{style}]{m['per_gpu_gib']:.0f}[/]", str(m["max_concurrent_sequences"]),
                  _ms(lat["ttft_ms"]["p90"], ",.0f"), _ms(lat["tpot_ms"]["p90"], ".1f"),
                  _num(r["throughput"]["output_tokens_per_s_per_gpu"], ",.0f"),
                  _num(r["cost"]["usd_per_million_output_tokens"], ".3f"))
    return t


def render_serve(result: dict, console) -> None:
    title = (f"{result['scenario']}: {len(result['plans'])} of {result['feasible']} qualifying plans "
             f"({result['evaluated']} evaluated) on up to {result['gpus_available']} x {result['gpu']}, "
             f"ranked by {result['objective']}")
    console.print(plans_table(result["plans"], title))
    for i, r in enumerate(result["plans"], 1):
        if same_numbers_text(r):
            console.print(f"#{i}: {same_numbers_text(r)}", soft_wrap=True)
    best = result["plans"][0]
    console.print(f"best: {best['gpus']} GPUs, {best['throughput']['output_tokens_per_s']:,.0f} output tokens/s, "
                  f"KV cache {best['memory']['kv_cache_gib']:.0f} GiB/GPU{_p99_text(best['latency'])}", soft_wrap=True)


def render_infeasible(result: dict, console) -> None:
    console.print(f"[red]no serving plan qualifies[/] for {result['scenario']} "
                  f"({result['evaluated']} plans evaluated)", soft_wrap=True)
    for r in result["infeasible"]["reasons"]:
        console.print(f"  - {r}", soft_wrap=True)
    if result["infeasible"]["fixes"]:
        console.print("nearest fixes:")
        for f in result["infeasible"]["fixes"]:
            console.print(f"  - {f['change']} ({f['why']})", soft_wrap=True)


def render_one(r: dict, console) -> None:
    console.print(plans_table([r], "serving plan estimate"))
    m, lat = r["memory"], r["latency"]
    console.print(f"memory per GPU: weights {m['weights_gib']:.1f} GiB, KV cache {m['kv_cache_gib']:.1f} GiB, "
                  f"workspace {m['workspace_gib']:.1f} GiB, graphs+context {m['other_gib']:.1f} GiB "
                  f"of {m['capacity_gib']:.1f} GiB ({m['verdict']})", soft_wrap=True)
    console.print(f"TTFT p50 {_ms(lat['ttft_ms']['p50'], ',.0f')}, TPOT p50 {_ms(lat['tpot_ms']['p50'], '.1f')}"
                  f"{_p99_text(lat)}; "
                  f"output {r['throughput']['output_tokens_per_s']:,.0f} tokens/s; "
                  f"{'meets' if r['feasible'] else 'does not meet'} the scenario's targets", soft_wrap=True)
    if not lat.get("stable", True) and r["throughput"].get("capacity_output_tokens_per_s") is not None:
        console.print(f"unstable: requests arrive faster than this plan serves them (at most "
                      f"{r['throughput']['capacity_output_tokens_per_s']:,.0f} output tokens/s), so the queue and "
                      "the time to first token grow without end", soft_wrap=True)
