"""DeepSeek-R1 block-FP8 dense GEMMs at TP8 on MI300X: what SGLang 0.5.9 ran (aiter's Triton kernel, default
128 x 128 tile, no split-K: planner.serve.aiter_triton_gemm), AMD's tuned CK kernel times at the same shapes, and the
planner's roofline; then the InferenceX MI300X rows' missing decode time in units of the default tile's K-steps.

Data: benchmarks/aiter_blockscale_mi300x_dsv3.csv, the gfx942 / cu_num 304 rows of ROCm/aiter
aiter/configs/model_configs/a8w8_blockscale_tuned_gemm_ds_v3.csv at 1a4121e559 ("dsv3 blockscale gemm config in
mi300", PR 2881, 2026-04-30): the CK gemm_a8w8_blockscale tuner's kernel time (us) per (M, N, K), M <= 16,384.
(The file's later gfx942 rows, PR 3951 @84493f0e, were tuned on MI325X and replace these at the head.) These are
CK kernels, which SGLang 0.5.9 does not call on gfx942 (it calls the Triton one): a neighbouring kernel family at
the same shapes, shown for scale, not used by the model.

    python benchmarks/aiter_blockscale_check.py
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from planner import catalog  # noqa: E402
from planner.serve import aiter_triton_gemm as ATG  # noqa: E402
from planner.serve import timing  # noqa: E402
from planner.serve.memory import model_facts  # noqa: E402

TABLE = ROOT / "benchmarks" / "aiter_blockscale_mi300x_dsv3.csv"
TP = 8
ROWS = (1, 4, 16, 64, 128)
NAMES = {(2112, 7168): "q_a + kv_a (fused)", (3072, 1536): "q_b", (7168, 2048): "o_proj",
         (4608, 7168): "dense MLP gate + up", (7168, 2304): "dense MLP down"}


def ck_table() -> dict:
    out: dict = {}
    with TABLE.open() as fh:
        for r in csv.DictReader(fh):
            out.setdefault((int(r["n"]), int(r["k"])), []).append((int(r["m"]), float(r["us"])))
    return {nk: tuple(np.array(sorted(v), dtype=float).T) for nk, v in out.items()}


def tp8_shapes(f) -> list:
    """(moe_layer, n, k) of the block-FP8 dense GEMMs SGLang runs at TP8 (planner.serve.aiter_triton_gemm)."""
    out = []
    for moe, k, n, split in f.block_gemms:
        out.append((moe, n // TP if split.endswith("col") else n, k // TP if split.endswith("row") else k))
    return out


def main() -> None:
    f = model_facts(catalog.model("deepseek-v3"))
    gpu = catalog.gpu("mi300x")
    _, _, bw = timing.rates(gpu, ("fp8-block",))
    lin = timing.rates(gpu, ("fp8-block",), dense_gemm=True)[0][0]
    ck = ck_table()
    print("| GEMM (N x K) | layers | K-steps | " + " | ".join(f"M={m}: Triton default / CK tuned / roofline us" for m in ROWS) + " |")
    print("|---|---:|---:|" + "---|" * len(ROWS))
    per_step = {m: [0.0, 0.0, 0.0] for m in ROWS}
    for moe, n, k in tp8_shapes(f):
        layers = f.moe_layers if moe else f.layers - f.moe_layers
        cells = []
        for m in ROWS:
            tri = np.ceil(np.ceil(m / ATG.TILE) * np.ceil(n / ATG.TILE) / ATG.GFX942_CUS["mi300x"]) \
                * np.ceil(k / ATG.TILE) * ATG.K_STEP_S * 1e6
            roof = max(2.0 * timing.padded_rows(m) * n * k / lin, n * k / bw) * 1e6
            c = float(np.interp(m, *ck[(n, k)])) if (n, k) in ck else float("nan")
            cells.append(f"{tri:.1f} / {c:.1f} / {roof:.1f}")
            for i, v in enumerate((tri, c, roof)):
                per_step[m][i] += layers * (v if v == v else roof) * 1e-3
        print(f"| {NAMES.get((n, k), '')} {n} x {k} | {layers} | {int(np.ceil(k / ATG.TILE))} | " + " | ".join(cells) + " |")
    print("| per decode step, ms (CK: roofline where not tuned) | | | "
          + " | ".join(f"{a:.2f} / {b:.2f} / {c:.2f}" for a, b, c in per_step.values()) + " |")
    print()
    # the published rows' missing time before this term, in default-tile K-steps
    import serving_accuracy as S
    from planner.serve.plan import parse_serve_plan
    from planner.serve.search import estimate_serving

    steps = sum((f.moe_layers if moe else f.layers - f.moe_layers) * np.ceil(k / ATG.TILE) for moe, n, k in tp8_shapes(f))
    print(f"K-steps per decode step (61 layers): {steps:.0f}; K_STEP_S = {ATG.K_STEP_S * 1e6:.2f} us (aiter PR 1930)")
    print()
    print("| point | measured TPOT ms | model TPOT without the term | with | missing / K-steps (us) |")
    print("|---|---:|---:|---:|---:|")
    rows = yaml.safe_load((ROOT / "benchmarks" / "serving_runs.yaml").read_text())
    for r in rows:
        if not r["id"].startswith("inferencex-sglang-mi300x"):
            continue
        r["precision"]["native_weight_format"] = r["model"].get("native_weight_format")
        sc, plan, _ = S.point_scenario(r)
        with_t = estimate_serving(sc, parse_serve_plan(plan, sc))["latency"]["tpot_ms"]["p50"]
        off = plan.replace("engine_version=0.5.9", "engine_version=0.5.10")  # same model, no default-tile term
        without = estimate_serving(sc, parse_serve_plan(off, sc))["latency"]["tpot_ms"]["p50"]
        meas = S.measured_latency(r["measured"], "tpot_ms")
        print(f"| {r['id']} | {meas:.1f} | {without:.1f} | {with_t:.1f} | {(meas - without) * 1e3 / steps:.2f} |")


if __name__ == "__main__":
    main()
