"""The planner's dense FP8 GEMM time against AMD's measured hipBLASLt FP8 timings on gfx942
(planner.serve.hipblaslt_fp8).

Data: benchmarks/hipblaslt_fp8_mlperf_mi325x.csv, an extract (33 row counts of each of the four shapes) of AMD's
MLPerf Inference v5.1 hipBLASLt tuning table (mlcommons/inference_results_v5.1 @965182b0,
closed/AMD/code/llama2-70b-99/scripts/gemm_llama2-70b/aa0bda7b/tuning_spx_1700_formatted.txt: hipBLASLt aa0bda7b,
gfx942 with 304 CUs, the MI325X of that submission; FP8 e4m3 fnuz x FP8 -> fp16). Columns: m_tokens (token rows:
hipBLASLt's n in that file), n_out (output width: its m), k, us (the tuned solution's time), gflops, gb_s,
solution_index. The constant BLEND_P was fitted on all 8,336 rows of the file; this script refits it on the extract
and prints both forms' error by row band, and the left-one-shape-out fits.

Rerun: python benchmarks/hipblaslt_fp8_check.py [tuning_spx_1700_formatted.txt]: with the path of AMD's original
file (8,336 rows; hipblaslt-bench columns: transA, transB, grouped, batch, m, n, k, ..., a/b/c/d/compute types, ...,
Gflops, GB/s, us, solution index, arch, CUs) the same tables on all of it.
"""

from __future__ import annotations

import csv
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from planner import catalog  # noqa: E402
from planner.estimate.compute_gemm import GEMM_LAUNCH_S, HBM_EFFICIENCY  # noqa: E402
from planner.serve import hipblaslt_fp8 as HB  # noqa: E402
from planner.serve.timing import GEMM_TILE_ROWS, SUSTAINED_FRACTION  # noqa: E402

DATA = pathlib.Path(__file__).with_name("hipblaslt_fp8_mlperf_mi325x.csv")
BANDS = ((1, 16), (17, 64), (65, 128), (129, 256), (257, 512), (513, 1024), (1025, 4096))


def load(full=None):
    """(token rows, output width, reduction, us) of the extract, or of AMD's original file when a path is given."""
    if full is None:
        rows = list(csv.DictReader(DATA.open()))
        return (np.array([float(r[c]) for r in rows]) for c in ("m_tokens", "n_out", "k", "us"))
    out = []
    for line in pathlib.Path(full).read_text().splitlines()[1:]:  # first line: "Git Version: aa0bda7b"
        p = [x.strip() for x in line.split(",")]
        if len(p) > 36 and p[17] == "f8_fnuz_r" and p[35].startswith("gfx942"):
            out.append((float(p[5]), float(p[4]), float(p[6]), float(p[33])))
    return (np.array(c) for c in zip(*out))


def model_us(m, n, k, lin, bw, tile, p, split=False):
    """One GEMM: the max (p None) or blend of its bytes (FP8 weights and inputs, fp16 output) and its math on rows
    padded to `tile`, plus the launch time every kernel pays (GEMM_LAUNCH_S); BLEND_P was fitted in this form.
    split: as the planner charges it instead: timing.dense_linear_s blends the weight bytes alone with the math,
    and the activations' bytes come in its elementwise term, added."""
    act = (m * k + 2.0 * m * n) / bw
    read = n * k / bw + (0.0 if split else act)
    math = 2.0 * np.ceil(m / tile) * tile * n * k / lin
    top = np.maximum(read, math) if p is None else HB.blend(read, math, p)
    return (top + (act if split else 0.0) + GEMM_LAUNCH_S) * 1e6


def main():
    gpu = catalog.gpu("mi325x")
    lin = gpu.tflops.fp8 * gpu.matmul_efficiency.fp8 * SUSTAINED_FRACTION * 1e12
    bw = gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY
    m, n, k, us = load(sys.argv[1] if len(sys.argv) > 1 else None)
    forms = {f"max, {GEMM_TILE_ROWS}-row tile (before)": (GEMM_TILE_ROWS, None),
             f"max, {HB.ROW_TILE}-row tile": (HB.ROW_TILE, None),
             f"blend p={HB.BLEND_P}, {HB.ROW_TILE}-row tile (after)": (HB.ROW_TILE, HB.BLEND_P)}
    print(f"MI325X: FP8 rate {lin / 1e12:.0f} TFLOP/s, HBM {bw / 1e12:.2f} TB/s (the planner's); {len(us)} timings\n")
    print("| form | mean abs error | " + " | ".join(f"{a}-{b} rows" for a, b in BANDS) + " |")
    print("|---|---:|" + "---:|" * len(BANDS))
    for name, (tile, p) in forms.items():
        t = model_us(m, n, k, lin, bw, tile, p)
        meds = [np.median(us[(m >= a) & (m <= b)] / t[(m >= a) & (m <= b)]) for a, b in BANDS]
        print(f"| {name} | {np.mean(np.abs(t / us - 1)):.1%} | " + " | ".join(f"{x:.2f}" for x in meds) + " |")
    print("\n(band columns: median measured / model)\n")
    grid = np.round(np.arange(1.0, 3.001, 0.05), 2)

    def err(p, sel):
        return np.mean(np.abs(model_us(m[sel], n[sel], k[sel], lin, bw, HB.ROW_TILE, p) / us[sel] - 1))

    everything = np.ones(len(us), dtype=bool)
    best = min(grid, key=lambda p: err(p, everything))
    print(f"best p on these timings: {best:.2f} ({err(best, everything):.1%}); BLEND_P = {HB.BLEND_P} "
          f"({err(HB.BLEND_P, everything):.1%})")
    split = {q: np.mean(np.abs(model_us(m, n, k, lin, bw, HB.ROW_TILE, q, split=True) / us - 1)) for q in grid}
    old = np.mean(np.abs(model_us(m, n, k, lin, bw, GEMM_TILE_ROWS, None, split=True) / us - 1))
    print(f"as the planner splits it (weights blended, activations added): max with {GEMM_TILE_ROWS}-row tile "
          f"{old:.1%}, BLEND_P {split[HB.BLEND_P]:.1%}, best p {min(split, key=split.get):.2f} "
          f"({min(split.values()):.1%})")
    for shape in sorted(set(zip(n, k))):
        test = (n == shape[0]) & (k == shape[1])
        p = min(grid, key=lambda q: err(q, ~test))
        old = np.mean(np.abs(model_us(m[test], n[test], k[test], lin, bw, GEMM_TILE_ROWS, None) / us[test] - 1))
        print(f"left out {int(shape[0])} x {int(shape[1])}: p fitted on the rest {p:.2f}, error on it "
              f"{err(p, test):.1%} (max with {GEMM_TILE_ROWS}-row tile: {old:.1%})")


if __name__ == "__main__":
    main()
