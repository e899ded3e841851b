"""Search speed: the full `solve` of every shipped scenario and of Calculon's example problem.

    python benchmarks/speed.py [--runs 5]

In-process: median and max wall time of `planner.solve` after a warm-up. Whole process: median
wall time of `planner solve SCENARIO --json` (Python start-up, imports and catalog loading
included) for the scenarios the targets name. Writes benchmarks/speed_results.md.
Targets (PRODUCT.md, issue 5): 405B on 16,384 GPUs under 2 s on 2 cores; Calculon's 530B /
5,128-GPU problem under 1 s; the 16-GPU scenario under 1 s including start-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from planner import load_scenario, solve
from planner.search.solver import _LAYOUT_CACHE

HERE = Path(__file__).resolve().parent
SCENARIOS = [p for p in sorted((HERE.parent / "scenarios").glob("*.yaml")) + sorted((HERE / "scenarios").glob("*.yaml"))
             if not p.name.startswith("serve")]  # serving scenarios: planner serve
WHOLE = ("32b_16gpu.yaml", "405b_16k.yaml", "calculon_530b_5128.yaml")


def whole_process(path: Path, runs: int) -> float:
    exe = shutil.which("planner")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([exe, "solve", str(path), "--json"], check=False, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for path in SCENARIOS:
        try:
            sc = load_scenario(path)
            solve(sc)  # warm-up: imports, catalog loading
        except Exception as exc:  # noqa: BLE001 - e.g. a purchase file in scenarios/
            print(f"{path.name}: skipped ({exc.__class__.__name__})")
            continue
        times, r = [], None
        for _ in range(args.runs):
            _LAYOUT_CACHE.clear()  # time the whole search, layout enumeration included
            t0 = time.perf_counter()
            r = solve(sc)
            times.append(time.perf_counter() - t0)
        whole = whole_process(path, args.runs) if path.name in WHOLE and shutil.which("planner") else None
        gpus = r["gpus"] if isinstance(r["gpus"], int) else max(r["gpus"])
        rows.append((path.name, gpus, r["considered"], r["valid"], r["feasible"],
                     statistics.median(times), max(times), whole))
        print(f"{path.name:28s} {gpus:>6} GPUs  median {rows[-1][5]:.3f} s  max {rows[-1][6]:.3f} s"
              + (f"  whole process {whole:.3f} s" if whole else ""))
    lines = [
        "# Search speed", "",
        f"`python benchmarks/speed.py --runs {args.runs}` on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}. In-process wall time of "
        "`planner.solve` (CP-SAT layouts + vectorised evaluation + ranking), median and max after a warm-up; "
        "whole process = `planner solve SCENARIO --json` including start-up (median).", "",
        "| scenario | GPUs | plans considered | runnable | feasible | median s | max s | whole process s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, gpus, cons, valid, feas, med, mx, whole in rows:
        w = f"{whole:.3f}" if whole else "-"
        lines.append(f"| {name} | {gpus:,} | {cons:,} | {valid:,} | {feas:,} | {med:.3f} | {mx:.3f} | {w} |")
    (HERE / "speed_results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
