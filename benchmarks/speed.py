"""Search speed: full `solve` of every shipped scenario, median of N runs (after one warm-up).

    python benchmarks/speed.py [--runs 5]

Writes benchmarks/speed_results.md. Targets (PRODUCT.md): 405B on 16,384 GPUs under 2 s on a
2-core machine; the 16-GPU scenario well under a second.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

from planner import load_scenario, solve

HERE = Path(__file__).resolve().parent
SCENARIOS = sorted((HERE.parent / "scenarios").glob("*.yaml"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for path in SCENARIOS:
        sc = load_scenario(path)
        solve(sc)  # warm-up: imports, catalog loading
        times, r = [], None
        for _ in range(args.runs):
            t0 = time.perf_counter()
            r = solve(sc)
            times.append(time.perf_counter() - t0)
        rows.append((path.name, sc.cluster.gpus, r["considered"], r["valid"], r["feasible"],
                     statistics.median(times), max(times)))
        print(f"{path.name:28s} {rows[-1][1]:>6} GPUs  median {rows[-1][5]:.3f} s  max {rows[-1][6]:.3f} s")
    lines = [
        "# Search speed", "",
        f"`python benchmarks/speed.py --runs {args.runs}` on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}. Wall time of `planner.solve` "
        "(CP-SAT layouts + vectorised evaluation + ranking), median and max of the runs after a warm-up.", "",
        "| scenario | GPUs | plans considered | runnable | feasible | median s | max s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, gpus, cons, valid, feas, med, mx in rows:
        lines.append(f"| {name} | {gpus:,} | {cons:,} | {valid:,} | {feas:,} | {med:.3f} | {mx:.3f} |")
    (HERE / "speed_results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
