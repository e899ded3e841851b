"""Time per layer and micro-batch of the published Megatron MoE runs, measured and predicted.

    python benchmarks/moe_layer_times.py [--out benchmarks/moe_layer_times.md]

For every Megatron MoE run of the calibration set and of benchmarks/recipe_runs.yaml and
memory_runs.yaml with a throughput figure: the step time implied by the published tokens/s per GPU
(global batch x sequence / GPUs / tokens/s per GPU) and the planner's predicted step, each divided by
the micro-batches per step (ga) and the layers per GPU (layers / pp). Both include everything in the
step (bubble, communication, optimizer), so they compare like with like; dividing out the micro-batch
size gives the time per 4,096-token sequence, which shows whether a gap scales with tokens or stays a
per-layer constant (benchmarks/moe_train_results.md). `+ all host`: the predicted time plus the whole
host time of a layer (planner/estimate/host.py, forward + backward, averaged over the model's dense and
MoE layers) as if none of it overlapped the GPU: an upper bound on any schedule of the measured per-op host
costs (benchmarks/moe_dispatch_results.md). Nothing is fitted here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import accuracy  # noqa: E402
import calibration_runs  # noqa: E402

from planner.estimate import compute, table  # noqa: E402
from planner.estimate.evaluate import Context  # noqa: E402


def layer_times(run: dict) -> dict:
    """Measured and predicted milliseconds per layer and micro-batch of one run."""
    sc, plan, node, r, published = calibration_runs.estimated(run)
    gpus = run["hardware"]["num_gpus"]
    tokens_step = plan.dp * plan.mbs * plan.ga * sc.training.seq_len
    per = plan.ga * sc.model.layers / plan.pp  # (micro-batch, layer) pairs per GPU and step
    measured = tokens_step / (published * gpus) / per * 1e3
    predicted = r["time"]["step_s"] / per * 1e3
    unit = compute.layer_costs(Context(sc), table.from_plans([plan]))
    moe_layers = sc.model.moe_layers
    host = unit["moe_host"] * moe_layers + unit["dense_host"] * (sc.model.layers - moe_layers)
    host_ms = float(np.ravel(host)[0]) / sc.model.layers * 1e3
    return {"id": run["id"], "node": node, "mbs": plan.mbs, "seq": sc.training.seq_len,
            "measured_ms": measured, "predicted_ms": predicted, "bound_ms": predicted + host_ms,
            "error": r["throughput"]["tokens_per_s_per_gpu"] / published - 1,
            "graphs": str(run["parallel"].get("cuda_graphs") or "-"),
            "capacity": (run["model"].get("moe") or {}).get("capacity_factor")}


def report(rows: list[dict]) -> str:
    out = ["# Megatron MoE runs: time per layer and micro-batch", "",
           "`python benchmarks/moe_layer_times.py` (see its docstring). ms = milliseconds per (layer, micro-batch) "
           "on one GPU, the whole step divided by ga x layers / pp; per sequence = divided by the micro-batch size "
           "as well. `capacity`: the run's token capacity factor (token drop), `-` = dropless.", "",
           "| run | node | mbs | capacity | CUDA graphs (as recorded) | measured ms | predicted ms | + all host ms | "
           "measured per sequence | predicted per sequence | tokens/s error |",
           "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['id']} | {r['node']} | {r['mbs']} | {r['capacity'] or '-'} | {r['graphs']} | "
                   f"{r['measured_ms']:.2f} | {r['predicted_ms']:.2f} | {r['bound_ms']:.2f} | {r['measured_ms'] / r['mbs']:.2f} | "
                   f"{r['predicted_ms'] / r['mbs']:.2f} | {r['error']:+.1%} |")
    return "\n".join(out) + "\n"


def megatron_moe_runs() -> list[dict]:
    """The Megatron MoE runs of the calibration files and the recipe / memory run files."""
    files = accuracy.default_files(accuracy.DEFAULT_DIR) + list(accuracy.RECIPE_FILES)
    return [run for run, _ in accuracy.training_runs(files)
            if run["model"].get("moe") and calibration_runs.framework_of(run) == "megatron"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "moe_layer_times.md"))
    args = ap.parse_args(argv)
    rows = [layer_times(run) for run in megatron_moe_runs()]
    accuracy.write_atomic(Path(args.out), report(rows))
    print(f"wrote {args.out} ({len(rows)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
