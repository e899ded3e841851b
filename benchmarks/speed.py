"""Search speed: the questions of issue 14 as whole processes, and `planner.solve` in-process for every
shipped scenario.

    python benchmarks/speed.py [--runs 5] [--quick]

Whole process: `python -m planner ...` from start-up to exit (imports, catalog, search, output),
best of `--runs` runs (the machine may be shared: the best run is the one least disturbed), with
the CPU time (user + system) and the peak resident memory of that run. In-process: best wall time
of `planner.solve` after a warm-up, layouts recomputed each run. Writes benchmarks/speed_results.md
(`--quick`: the whole-process table only). Reports (issue 14's last row) are benchmarked with the
report code.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCEN = ROOT / "scenarios"
BENCH = HERE / "scenarios"
SCENARIOS = [p for p in sorted(SCEN.glob("*.yaml")) + sorted(BENCH.glob("*.yaml"))
             if not p.name.startswith("serve")]  # serving scenarios: planner serve

HEAVY = ("131,072", "100 clusters", "100,000")  # questions run --heavy-runs times (minutes each on a busy machine)


def questions(sweep: Path) -> list[tuple[str, list[str], float | None]]:
    """(question, arguments of `python -m planner`, target seconds or None)."""
    return [
        ("Llama-3.1-405B on 16,384 H100 (405b_16k.yaml)", ["solve", str(SCEN / "405b_16k.yaml"), "--json"], 1.0),
        ("DeepSeek-V3 on 2,048 H800 (batch 15,360)", ["solve", str(BENCH / "dsv3_2048_h800.yaml"), "--json"], 1.0),
        ("DeepSeek-V3 on 2,048 H100 (batch 15,360)", ["solve", str(BENCH / "dsv3_2048_h100.yaml"), "--json"], 1.0),
        ("DeepSeek-V3 on 131,072 H100, batch 65,536", ["solve", str(BENCH / "dsv3_131k_h100.yaml"), "--json"], None),
        ("DeepSeek-V3 on 131,072 H100, batch 16,384-65,536", ["solve", str(BENCH / "dsv3_131k_h100_range.yaml"), "--json"], 3.0),
        ("`planner compare scenarios/purchases.yaml` (table)", ["compare", str(SCEN / "purchases.yaml")], 8.0),
        ("`planner compare scenarios/purchases.yaml --json`", ["compare", str(SCEN / "purchases.yaml"), "--json"], 8.0),
        ("purchases: 100 clusters x 256 node counts, table", ["compare", str(sweep)], 10.0),
        ("purchases: 100 clusters x 256 node counts, --json", ["compare", str(sweep), "--json"], 10.0),
        # serving (issue 12: 70B on up to 64 GPUs in under 2 s): a request rate, and fixed concurrencies whose
        # full listing grows as replica counts x prefill splits (planner.serve.concurrency)
        ("serve: Llama-3.1-70B, 40 req/s, 64 H100 (serve_70b.yaml)", ["serve", str(SCEN / "serve_70b.yaml"), "--json"],
         2.0),
        ("serve: Llama-3.1-70B, concurrency 5,000, 512 H100", ["serve", str(BENCH / "serve_70b_conc5000.yaml"),
                                                               "--json"], 2.0),
        ("serve: 1.5B model, concurrency 100,000, 32,768 H100", ["serve", str(BENCH / "serve_tiny_conc100k.yaml"),
                                                               "--json"], None),
    ]


# The child processes may write bytecode like a normal install (pip compiles the package; an environment with
# PYTHONDONTWRITEBYTECODE set recompiles every planner module at every start: 6-11% of DeepSeek-V3 / 2,048's
# wall time here, benchmarks/speed_profile.md). The first run of each question writes planner/__pycache__.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_once(args: list[str]) -> tuple[float, float, float, int]:
    """(wall s, CPU s of the process, peak RSS MiB, exit code) of `python -m planner ARGS`."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "planner", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=CHILD_ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def whole_process(runs: int, heavy_runs: int, sweep: Path, match: str | None = None) -> list[tuple]:
    rows = []
    for name, args, target in questions(sweep):
        if match and match not in name:
            continue
        n = heavy_runs if any(h in name for h in HEAVY) else runs
        results = [run_once(args) for _ in range(n)]
        wall, cpu, rss, rc = min(results)
        least_cpu = min(r[1] for r in results)
        rows.append((name, wall, cpu, least_cpu, max(r[2] for r in results), rc, target, n))
        print(f"{name:55s} best {wall:6.2f} s  cpu {cpu:6.2f} s (least {least_cpu:6.2f} s)  peak {rows[-1][4]:7.0f} MiB  "
              f"exit {rc}", flush=True)
    return rows


def in_process(runs: int) -> list[tuple]:
    from planner import load_scenario, solve
    from planner.search.solver import _LAYOUT_CACHE

    rows = []
    for path in SCENARIOS:
        try:
            sc = load_scenario(path)
            solve(sc)  # warm-up: imports, catalog loading
        except Exception as exc:  # noqa: BLE001 - e.g. a purchase file in scenarios/
            print(f"{path.name}: skipped ({exc.__class__.__name__})")
            continue
        times, r = [], None
        for _ in range(runs):
            _LAYOUT_CACHE.clear()  # time the whole search, layout enumeration included
            t0 = time.perf_counter()
            r = solve(sc)
            times.append(time.perf_counter() - t0)
        gpus = r["gpus"] if isinstance(r["gpus"], int) else max(r["gpus"])
        rows.append((path.name, gpus, r["considered"], r["valid"], r["feasible"], min(times)))
        print(f"{path.name:32s} {gpus:>7,} GPUs  best {min(times):.3f} s", flush=True)
    return rows


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine()) \
        if Path("/proc/cpuinfo").exists() else platform.processor() or platform.machine()
    return (f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}; "
            f"load average {os.getloadavg()[0]:.1f} at the start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--heavy-runs", type=int, default=2, help="runs of the 131,072-GPU and 100 x 256 questions")
    ap.add_argument("--quick", action="store_true", help="the whole-process table only")
    ap.add_argument("--match", help="only the questions whose name contains this text; prints, writes no file")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from purchase_speed import sweep_file

    where = machine()
    with tempfile.TemporaryDirectory() as tmp:
        sweep = sweep_file(Path(tmp) / "sweep_100x256.yaml")
        whole = whole_process(args.runs, args.heavy_runs, sweep, args.match)
    if args.match:
        return
    lines = [
        "# Search speed", "",
        f"`python benchmarks/speed.py --runs {args.runs}` on {where}, {time.strftime('%Y-%m-%d %H:%M')}.", "",
        "## Issue 14's questions, whole process", "",
        f"`python -m planner ...` from start-up to exit, best of {args.runs} runs ({args.heavy_runs} for the "
        "131,072-GPU and 100 x 256 questions; the machine was shared with "
        "other work while this ran, so the best run is the least disturbed one; CPU = user + system time "
        "of that run, which the sharing disturbs less than the wall time; least CPU: the smallest over the runs; "
        "the search uses two threads for its memory verdicts, so on a quiet 2-core machine the wall time can be "
        "below the CPU time; compiled bytecode is written and reused as after `pip install .`). The 100 x 256 purchase file is "
        "generated by benchmarks/purchase_speed.py (`sweep_file`).", "",
        "| question | target s | runs | best wall s | CPU s | least CPU s | peak MiB | exit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, wall, cpu, least_cpu, rss, rc, target, n in whole:
        lines.append(f"| {name} | {'-' if target is None else f'{target:g}'} | {n} | {wall:.2f} | {cpu:.2f} | "
                     f"{least_cpu:.2f} | {rss:,.0f} | {rc} |")
    (HERE / "speed_results.md").write_text("\n".join(lines) + "\n")  # kept if the in-process part is stopped
    if not args.quick:
        rows = in_process(args.runs)
        lines += ["", "## Every scenario, in process", "",
                  f"Best wall time of `planner.solve` over {args.runs} runs after a warm-up (layouts recomputed).", "",
                  "| scenario | GPUs | plans considered | runnable | feasible | best s |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {n} | {g:,} | {c:,} | {v:,} | {f:,} | {t:.3f} |" for n, g, c, v, f, t in rows]
    (HERE / "speed_results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
