"""Issue 11 check: does a run still fit when its scenario leaves `runtime:` to the defaults?

Each training run of the shared calibration set and of benchmarks/recipe_runs.yaml / memory_runs.yaml is
estimated twice on its own model, cluster and plan (framework kept): once with the `runtime:` block
benchmarks/calibration_runs.py (or accuracy.legacy_scenario) writes for it, once with no `runtime:` block
(every key at the planner's default). Listed: the runs whose verdict turns to OOM / tight or whose
per-GPU memory moves more than 5%, with the runtime key(s) responsible: each key of the run's block set
alone on top of the defaults, and the keys whose own effect moves memory by more than 1%.

    PYTHONPATH=. python benchmarks/runtime_defaults.py [--out benchmarks/runtime_defaults_results.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy  # noqa: E402
import calibration_runs  # noqa: E402

from planner.errors import InputError  # noqa: E402
from planner.estimate.evaluate import estimate  # noqa: E402
from planner.spec.scenario import Runtime  # noqa: E402

HERE = Path(__file__).resolve().parent
WORSE = {"fits": 0, "tight": 1, "oom": 2}


def _mem(sc, plan, check_build: bool):
    """(GiB per GPU, verdict) of the plan on the scenario, or (None, 'rejected: ...')."""
    try:
        r = estimate(sc, plan.resolved(sc, check_build=check_build))
    except (InputError, ValueError) as exc:
        return None, f"rejected: {str(exc)[:60]}"
    return r["memory"]["per_gpu_gib"], r["memory"]["verdict"]


def with_runtime(sc, runtime: dict):
    return sc.model_copy(update={"runtime": Runtime.model_validate(runtime)})


def compare(run: dict, file: str) -> dict | None:
    if file == accuracy.LEGACY_FILE:
        sc, plan, _, _ = accuracy.legacy_scenario(run)
    else:
        sc, plan, _, _ = calibration_runs.build(run)
    check_build = calibration_runs.framework_of(run) != "llm-foundry"
    default = Runtime()
    block = {k: v for k, v in sc.runtime.model_dump().items() if getattr(default, k) != v}
    gib, verdict = _mem(sc, plan, check_build)
    gib0, verdict0 = _mem(with_runtime(sc, {}), plan, check_build)
    row = {"id": run["id"], "file": file, "block": block, "gib": gib, "verdict": verdict, "gib0": gib0,
           "verdict0": verdict0, "keys": []}
    if gib is None or gib0 is None:
        return row
    for key, value in block.items():
        rt = {key: value}
        if key == "cuda_graph_scope":
            continue  # needs cuda_graph_impl: counted with it
        if key == "cuda_graph_impl":
            rt["cuda_graph_scope"] = block.get("cuda_graph_scope", [])
        try:
            g, _ = _mem(with_runtime(sc, rt), plan, check_build)
        except ValueError:
            continue
        if g is not None and abs(g / gib0 - 1) > 0.01:
            row["keys"].append((key, value, g - gib0))
    return row


def flagged(row: dict) -> bool:
    if row["gib"] is None or row["gib0"] is None:
        return False
    worse = WORSE.get(row["verdict0"], 0) > WORSE.get(row["verdict"], 0)
    return worse or abs(row["gib0"] / row["gib"] - 1) > 0.05


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None, help="write the table (markdown) here; default: print only")
    args = ap.parse_args(argv)
    files = [*accuracy.default_files(accuracy.DEFAULT_DIR), *accuracy.RECIPE_FILES]
    rows = []
    for path in files:
        for run in accuracy.run_list(path):
            if not isinstance(run.get("model"), dict) or "workload" in run or not isinstance(run.get("parallel"), dict):
                continue
            try:
                rows.append(compare(run, path.name))
            except (InputError, ValueError, KeyError, TypeError) as exc:
                rows.append({"id": run.get("id"), "file": path.name, "error": str(exc)[:80]})
    ok = [r for r in rows if "error" not in r]
    lines = [f"runs compared: {len(ok)} (not buildable: {len(rows) - len(ok)}); flagged (verdict worse or memory "
             f"moves > 5% without the runtime block): {sum(flagged(r) for r in ok)}", "",
             "| run | file | with runtime GiB | verdict | defaults GiB | verdict | change | keys moving memory > 1% "
             "(GiB vs defaults) |", "|---|---|---|---|---|---|---|---|"]
    for r in ok:
        if not flagged(r):
            continue
        keys = "; ".join(f"{k}={v} ({d:+.1f})" for k, v, d in sorted(r["keys"], key=lambda t: t[2]))
        lines.append(f"| {r['id']} | {r['file']} | {r['gib']:.1f} | {r['verdict']} | {r['gib0']:.1f} | "
                     f"{r['verdict0']} | {r['gib0'] / r['gib'] - 1:+.1%} | {keys or '-'} |")
    bad = [r for r in rows if "error" in r]
    if bad:
        lines += ["", "Not buildable: " + "; ".join(f"{r['id']} ({r['error']})" for r in bad)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
