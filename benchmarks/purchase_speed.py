"""Speed of `planner compare`: the plan searches of a purchase file, shared across node counts or each
alone, in this process or in a pool.

    python benchmarks/purchase_speed.py [--runs 3] [--profile]

Times the shipped scenarios/purchases.yaml and a sweep of 100 clusters x 256 node counts (sweep_file)
and writes benchmarks/purchase_speed_results.md. Modes:
  shared         - the default (`evaluate(pf, workers=1)`): the node counts of one node type and
                   workload searched together (planner/purchase_search.py);
  each alone     - every distinct search on its own (`best_plan` per task), as before the sharing;
  2 processes    - `evaluate(pf, workers=2)`: a pool of worker processes, each search alone.
Median over the runs of the wall time and, in this process, of the CPU time (the machine is shared
with other work: the CPU time is the less disturbed figure). --profile adds the cProfile summary of
the shared sweep.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import statistics
import tempfile
import time
from pathlib import Path

from planner import purchase
from planner.spec.purchase import load_purchases

HERE = Path(__file__).resolve().parent


def _shared(pf):
    return purchase.evaluate(pf, workers=1)


def _alone(pf):
    return {k: purchase.best_plan(sc) for k, sc in purchase.plan_tasks(pf).items()}


def _processes(pf):
    return purchase.evaluate(pf, workers=2)


MODES = [("shared (default)", _shared), ("each search alone (before)", _alone), ("2 processes, each search alone", _processes)]


def sweep_file(path: Path, clusters: int = 100, counts: int = 256) -> Path:
    """A purchase file of `clusters` cluster options x node counts 1..`counts`: the six options of
    scenarios/purchases.yaml repeated with their price scaled from 80% to 120%, one workload (dense-8b)."""
    import yaml

    base = yaml.safe_load((HERE.parent / "scenarios" / "purchases.yaml").read_text())
    out = []
    for i in range(clusters):
        c = dict(base["clusters"][i % len(base["clusters"])])
        scale = 0.8 + 0.4 * i / max(clusters - 1, 1)
        if "cloud" in c:
            c["cloud"] = {**c["cloud"], "usd_per_gpu_hour": round(c["cloud"]["usd_per_gpu_hour"] * scale, 4)}
        else:
            c["owned"] = {**c["owned"], "capex_usd_per_node": round(c["owned"]["capex_usd_per_node"] * scale)}
        out.append({**c, "name": f"{c['name']}-{i}", "nodes": {"min": 1, "max": counts}})
    data = {"name": f"sweep {clusters} x {counts}", "budget_usd": base["budget_usd"], "clusters": out,
            "workloads": base["workloads"][:1]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _time(fn, pf, runs: int) -> tuple[float, float]:
    """(median wall s, median CPU s of this process) of fn(pf)."""
    from planner.search.solver import _LAYOUT_CACHE

    walls, cpus = [], []
    for _ in range(runs):
        _LAYOUT_CACHE.clear()  # as in a new process: the CP-SAT layouts are part of the work
        t0, c0 = time.perf_counter(), time.process_time()
        fn(pf)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def _profile(pf) -> list[str]:
    """The cProfile summary (cumulative time, planner functions) of the shared searches of `pf`."""
    prof = cProfile.Profile()
    prof.runcall(_shared, pf)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(r"planner/", 16)
    text = out.getvalue()
    keep = [line.rstrip() for line in text.splitlines() if "planner/" in line or "ncalls" in line]
    root = str(HERE.parent) + "/"
    return [line.replace(root, "") for line in keep]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()
    lines = [
        "# Purchase comparison speed", "",
        f"`python benchmarks/purchase_speed.py --runs {args.runs}{' --profile' if args.profile else ''}` on "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}; load average {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} (1, 5, 15 min) "
        "at the start: the machine is shared, so the wall times move; the CPU time (this process) is the less "
        "disturbed figure. Median of the runs; the searches only (the best mix and the output are not timed "
        "here: benchmarks/speed.py times whole processes).", "",
        "| file | options x workloads | searches | mode | wall s | CPU s |", "|---|---:|---:|---|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        files = [HERE.parent / "scenarios" / "purchases.yaml", sweep_file(Path(tmp) / "sweep_100x256.yaml")]
        for path in files:
            pf = load_purchases(path)
            pairs, searches = len(purchase.options(pf)) * len(pf.workloads), len(purchase.plan_tasks(pf))
            _shared(pf)  # warm-up: imports, catalogs, OR-Tools
            for name, fn in MODES:
                wall, cpu = _time(fn, pf, args.runs)
                shown = "-" if fn is _processes else f"{cpu:.2f}"  # the workers' CPU is not this process's
                lines.append(f"| {path.name} | {pairs:,} | {searches:,} | {name} | {wall:.2f} | {shown} |")
                print(lines[-1], flush=True)
        if args.profile:
            lines += ["", f"## Where the time goes: cProfile of the shared searches of {files[1].name}", "",
                      "Cumulative seconds under the profiler (which slows Python calls more than numpy), planner "
                      "functions, largest first:", "", "```", *_profile(load_purchases(files[1])), "```"]
    (HERE / "purchase_speed_results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
