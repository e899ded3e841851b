"""Side by side: the planner's step terms for a GB200 and a GB300 row of the same recipe and release
(issue #11; benchmarks/gb200_gap_results.md).

    python benchmarks/gb200_gap_check.py [RUN_ID ...]

For each run of benchmarks/recipe_runs.yaml: calibration_runs.estimated(run), the row's sustained tensor
clock (evaluate.with_tensor_clock; 1 = burst), the step's breakdown, and one dense layer and micro-batch
(forward + backward) split into weight GEMMs and core attention. Nothing is fitted; it only reads the model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import calibration_runs  # noqa: E402

from planner.estimate import memory, table  # noqa: E402
from planner.estimate.evaluate import Context, layer_units, with_tensor_clock  # noqa: E402

RUNS = ("mbridge26.04-gb200-fp8cs-llama3-70b-64gpu", "mbridge26.04-gb300-fp8cs-llama3-70b-64gpu",
        "mbridge26.04-gb200-fp8mx-llama3-70b-64gpu", "mbridge26.04-gb300-fp8mx-llama3-70b-64gpu")


def _f(x) -> float:
    return float(np.ravel(x)[0])


def row(run: dict) -> str:
    """One text block: prediction, clock, step terms and per-layer split of one run."""
    sc, plan, _, r, published = calibration_runs.estimated(run)
    pred, step = r["throughput"]["tokens_per_s_per_gpu"], r["time"]["step_s"]
    ctx, t = Context(sc), table.from_plans([plan])
    t = with_tensor_clock(ctx, t, memory.memory(ctx, t))
    u, _ = layer_units(ctx, t)
    clock = _f(t["tensor_clock"]) if "tensor_clock" in t else 1.0
    gem, att = 3e3 * _f(u["dense_matmul"]), 1e3 * (_f(u["attn_fwd"]) + _f(u["attn_bwd"]))
    tot = 3e3 * _f(u["dense_fwd"]) + att
    terms = ", ".join(f"{k} {v:.3f}" for k, v in r["time"]["breakdown_s"].items() if v)
    return "\n".join([
        f"{run['id']}: tp{plan.tp} pp{plan.pp} vpp{plan.vpp} dp{plan.dp} ga{plan.ga} mbs{plan.mbs} "
        f"fp8_recipe={sc.runtime.fp8_recipe} tensor_clock={clock:.3f}",
        f"  predicted {pred:,.0f} published {published:,.0f} tok/s/GPU ({100 * (pred / published - 1):+.1f}%); "
        f"step {step:.3f} s, published step {step * pred / published:.3f} s",
        f"  step terms (s): {terms}",
        f"  one layer, one micro-batch, fwd+bwd ms: GEMMs {gem:.2f}, attention {att:.2f}, total {tot:.2f}"])


def main(argv=None) -> int:
    ids = list(argv if argv is not None else sys.argv[1:]) or list(RUNS)
    runs = {r["id"]: r for r in yaml.safe_load((HERE / "recipe_runs.yaml").read_text()) or []}
    missing = [i for i in ids if i not in runs]
    if missing:
        print(f"error: no run {', '.join(missing)} in benchmarks/recipe_runs.yaml", file=sys.stderr)
        return 2
    print("\n".join(row(runs[i]) for i in ids))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
