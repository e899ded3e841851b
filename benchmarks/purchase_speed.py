"""Speed of `planner compare`: the plan searches of a purchase file, serial and in parallel.

    python benchmarks/purchase_speed.py [--file scenarios/purchases.yaml] [--runs 1]

Writes benchmarks/purchase_speed_results.md. Modes:
  serial         - every distinct search in this process (`evaluate(pf, workers=1)`);
  processes      - a pool of 2 worker processes: the default (forkserver with planner preloaded in the
                   server), and plain fork or spawn for comparison;
  threads        - 2 threads (the search holds the GIL: CP-SAT calls back into Python per layout);
  layouts cache  - EXPERIMENT, serial, with CP-SAT layouts memoised by (domains, GPUs, layers, batch):
                   what a cache inside planner/search/solver.py would save (the layouts depend only on
                   those, so node types with the same GPU count and scale-up domain share them).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from planner import purchase
from planner.search import solver
from planner.search.space import domains
from planner.spec.purchase import load_purchases

HERE = Path(__file__).resolve().parent


def _serial(pf):
    return purchase.evaluate(pf, workers=1)


def _default(pf):
    return purchase.evaluate(pf, workers=2)


def _processes(method):
    def run(pf):
        original = purchase._pool_context
        purchase._pool_context = lambda: multiprocessing.get_context(method)
        try:
            return purchase.evaluate(pf, workers=2)
        finally:
            purchase._pool_context = original
    return run


def _threads(pf):
    tasks = purchase.plan_tasks(pf)
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(purchase.best_plan, tasks.values()))


def _layouts_cached(pf):
    original, memo = solver.layouts, {}

    def cached(sc):
        key = (tuple((k, tuple(v)) for k, v in sorted(domains(sc).items())), sc.cluster.gpus, sc.model.layers,
               sc.training.global_batch)
        if key not in memo:
            memo[key] = original(sc)
        return memo[key]

    solver.layouts = cached
    try:
        return purchase.evaluate(pf, workers=1)
    finally:
        solver.layouts = original


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", default=str(HERE.parent / "scenarios" / "purchases.yaml"))
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    pf = load_purchases(args.file)
    pairs = len(purchase.options(pf)) * len(pf.workloads)
    searches = len(purchase.plan_tasks(pf))
    modes = [("serial (default)", _serial), ("2 processes (forkserver, planner preloaded)", _default)]
    modes += [(f"2 processes/{m}", _processes(m)) for m in ("fork", "spawn") if m in multiprocessing.get_all_start_methods()]
    modes += [("threads", _threads), ("layouts cache (experiment)", _layouts_cached)]
    rows = []
    for name, fn in modes:
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            fn(pf)
            times.append(time.perf_counter() - t0)
        rows.append((name, statistics.median(times)))
        print(f"{name:52s} {rows[-1][1]:.2f} s")
    base = rows[0][1]
    lines = [
        "# Purchase comparison speed", "",
        f"`python benchmarks/purchase_speed.py --runs {args.runs}` on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; file `{Path(args.file).name}`: "
        f"{len(purchase.options(pf))} options x {len(pf.workloads)} workloads = {pairs} rows, {searches} distinct "
        "plan searches (options with the same node hardware share them). Median wall time of the searches "
        "(the best mix and the sensitivity take milliseconds). The machine is shared, so the numbers move: "
        f"load average {os.getloadavg()[0]:.1f} at the start.", "",
        "| mode | seconds | speed-up vs serial |", "|---|---:|---:|",
    ]
    lines += [f"| {name} | {t:.2f} | {base / t:.2f}x |" for name, t in rows]
    (HERE / "purchase_speed_results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
