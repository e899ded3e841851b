"""The training GEMM model (planner.estimate.compute_gemm.gemm_s at the burst bf16 MAMF rate) against NVIDIA's
measured bf16 GEMMs at the widths around gpt-oss's hidden size 2880, on Hopper and Blackwell.

Data: NVIDIA AIConfigurator (github.com/ai-dynamo/aiconfigurator @095f58a5, Apache-2.0),
aic-core/src/aiconfigurator_core/systems/data/<gpu>/gemm/trtllm/<version>/gemm_perf.parquet, gemm_dtype bfloat16
(TensorRT-LLM's torch flow: cuBLAS), m = 4,096 / 8,192 / 16,384 rows. No table has a dimension off the 128 grid, so
2880 itself is not measured; its neighbours 2560 and 3072 are. Printed: median measured / model over m per (n, k);
below 1 the model is slower than the kernel. Reads a local checkout of the repository at that commit (needs pandas
and pyarrow, like benchmarks/aic_data.py):

    python benchmarks/gemm_width_check.py AIC_CHECKOUT
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import aic_data  # noqa: E402
from planner.estimate import compute_gemm as G  # noqa: E402

SHAPES = ((2560, 2560), (3072, 3072), (5120, 3072), (6144, 2560), (6144, 3072), (3072, 6144), (4096, 4096),
          (7168, 7168), (8192, 8192))


def ratios(d, flops: float, hbm: float) -> dict[tuple[int, int], float]:
    """Median measured / model over m per (n, k) of SHAPES, of one GPU's bf16 GEMM rows d (aic_data.gemm_ratios)."""
    d = d[d.m.isin([4096, 8192, 16384])]
    row = {}
    for n, k in SHAPES:
        s = d[(d.n == n) & (d.k == k)].groupby("m").latency.median()
        if len(s):
            row[(n, k)] = float(np.median([lat * 1e-3 / G.gemm_s(m, k, n, flops, hbm) for m, lat in s.items()]))
    return row


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    res = aic_data.gemm_ratios(Path(argv[0]), ratios)
    print(aic_data.ratio_table(res, list(SHAPES), lambda s: f"{s[0]}x{s[1]}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
