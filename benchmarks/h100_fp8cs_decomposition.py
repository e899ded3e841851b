"""Where the planner puts the time of the H100 Llama 3 FP8 recipe rows, term by term (current scaling against
delayed scaling).

    python benchmarks/h100_fp8cs_decomposition.py [RUN_ID ...]

For each run (default: the rows of benchmarks/h100_fp8cs_results.md) of benchmarks/recipe_runs.yaml or
../shared/calibration/modern_runs.yaml: the scenario calibration_runs.build makes, `estimate` on it, the step's terms,
and one dense layer and micro-batch (forward + backward, at the row's sustained tensor clock) split into weight GEMMs,
core attention, elementwise traffic and FP8 casts (compute_quant.fp8_cast_bytes_per_token, 3x for forward + backward
as compute.stage_compute counts it), the current-scaling amax pass within the casts (their bytes over delayed scaling's) and the
output layer's share of the last pipeline rank. Nothing is fitted here; it only reads the model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import calibration_runs  # noqa: E402

from planner.estimate import compute_quant, memory, table  # noqa: E402
from planner.estimate.compute import elementwise_bytes_per_token  # noqa: E402
from planner.estimate.compute_gemm import peaks  # noqa: E402
from planner.estimate.evaluate import Context, layer_units, with_tensor_clock  # noqa: E402

RUNS = ("nemo24.07-h100-fp8-llama3-70b-64gpu", "mbridge26.04-h100-fp8cs-llama3-70b-64gpu",
        "mbridge25.09-h100-fp8-llama31-405b-1024gpu", "nemo24.07-h100-fp8-llama3-8b-8gpu",
        "mbridge25.09-h100-fp8-llama3-8b-8gpu", "mbridge25.11-h100-llama3-8b")


def _f(x) -> float:
    return float(np.ravel(x)[0])


def all_runs() -> dict:
    """Every training run of the recipe file and the calibration file, by id."""
    files = (HERE / "recipe_runs.yaml", HERE.parent.parent / "shared" / "calibration" / "modern_runs.yaml")
    return {r["id"]: r for p in files if p.exists() for r in yaml.safe_load(p.read_text()) or []}


def decompose(run: dict) -> str:
    """Text block of one run's step terms and per-layer split (module docstring)."""
    sc, plan, _, r, published = calibration_runs.estimated(run)
    pred, step = r["throughput"]["tokens_per_s_per_gpu"], r["time"]["step_s"]
    ctx, t = Context(sc), table.from_plans([plan])
    t = with_tensor_clock(ctx, t, memory.memory(ctx, t))
    u, c = layer_units(ctx, t)
    hbm = peaks(ctx.gpu, t, sc.runtime.fp8_recipe)[2]
    tok = plan.mbs * sc.training.seq_len / plan.cp
    cast_b = _f(compute_quant.fp8_cast_bytes_per_token(ctx, t, False))
    cast = 3e3 * cast_b * tok / hbm
    ew = 3e3 * _f(elementwise_bytes_per_token(ctx, t, False)) * tok / hbm
    delayed = Context(sc.model_copy(update={"runtime": sc.runtime.model_copy(update={"fp8_recipe": "delayed"})}))
    amax = 0.0
    if sc.runtime.fp8_recipe == "current":  # the amax pass: what current scaling casts more than delayed
        amax = cast - 3e3 * _f(compute_quant.fp8_cast_bytes_per_token(delayed, t, False)) * tok / hbm
    gem, att = 3e3 * _f(u["dense_matmul"]), 1e3 * (_f(u["attn_fwd"]) + _f(u["attn_bwd"]))
    tot = 3e3 * _f(u["dense_fwd"]) + att
    layers = _f(memory.stage_layers(ctx, t, "last")[1])
    head = 3e3 * _f(u["head"])
    terms = ", ".join(f"{k} {v:.3f}" for k, v in r["time"]["breakdown_s"].items() if v)
    pct = lambda x: f"{x:.3f} ({100 * x / tot:.1f}%)"  # noqa: E731
    return "\n".join([
        f"{run['id']}: tp{plan.tp} pp{plan.pp} vpp{plan.vpp} cp{plan.cp} dp{plan.dp} ga{plan.ga} "
        f"fp8_recipe={sc.runtime.fp8_recipe} tensor_clock={_f(t['tensor_clock']) if 'tensor_clock' in t else 1.0:.3f}",
        f"  predicted {pred:,.0f} published {published:,.0f} tok/s/GPU ({100 * (pred / published - 1):+.1f}%); step "
        f"{step:.2f} s, published step {step * pred / published:.2f} s",
        f"  step terms (s): {terms}",
        f"  one layer, one micro-batch of {tok:.0f} tokens, fwd+bwd ms: GEMMs {pct(gem)}, attention {pct(att)}, "
        f"elementwise {pct(ew)}, FP8 casts {pct(cast)} of which amax pass {pct(amax)}; total {tot:.3f}",
        f"  last rank per micro-batch: {layers:.0f} layers {layers * tot:.1f} ms + output layer {head:.1f} ms "
        f"({100 * head / (layers * tot + head):.1f}%); TP per layer {1e3 * _f(c['tp_layer']):.3f} ms, "
        f"PP per boundary {1e3 * _f(c['pp_comm']):.3f} ms"])


def main(argv=None) -> int:
    ids = list(argv if argv is not None else sys.argv[1:]) or list(RUNS)
    runs = all_runs()
    missing = [i for i in ids if i not in runs]
    if missing:
        print(f"error: no run {', '.join(missing)} in benchmarks/recipe_runs.yaml or modern_runs.yaml", file=sys.stderr)
        return 2
    print("\n".join(decompose(runs[i]) for i in ids))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
