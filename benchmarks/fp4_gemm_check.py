"""NVFP4 vs FP8 GEMM rate on Blackwell, as NVIDIA measured it: the source of the B200 / GB200 `fp4_gemm_over_fp8`
in catalogs/gpus.yaml (planner.estimate.compute_gemm.fp4_gemm_over_fp8).

Data: benchmarks/gemm_fp4_fp8_aic.csv, an extract of NVIDIA AIConfigurator's collected TensorRT-LLM GEMM
tables (github.com/ai-dynamo/aiconfigurator @095f58a5, Apache-2.0;
aic-core/src/aiconfigurator_core/systems/data/<gpu>/gemm/trtllm/<version>/gemm_perf.parquet): for each table
the fastest fp8 (per-tensor) and the fastest nvfp4 entry of its whole m x n x k sweep, and both formats at the
Llama-70B GEMM shapes (n x k = 10240 x 8192, 8192 x 8192, 57344 x 8192, 8192 x 28672, and the TP-split
7168 x 8192, 8192 x 3584) for m = 128 .. 8192. Columns table, gemm_dtype, m, n, k, latency_ms.

The models credit FP4 GEMMs with the FP8 MAMF throughput x the GPU's fp4_gemm_over_fp8: MAMF is the maximum
over a shape sweep, so the ratio is taken between the two formats' maxima of one table (same harness, same GPU,
same version); a GPU with two tables takes their median.

    python benchmarks/fp4_gemm_check.py
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner import catalog  # noqa: E402

DATA = ROOT / "benchmarks" / "gemm_fp4_fp8_aic.csv"


def load() -> dict:
    """{table: {dtype: {(m, n, k): TFLOP/s}}} from the extract."""
    out: dict = {}
    with DATA.open() as fh:
        for row in csv.DictReader(fh):
            m, n, k = int(row["m"]), int(row["n"]), int(row["k"])
            tf = 2.0 * m * n * k / (float(row["latency_ms"]) * 1e-3) / 1e12
            out.setdefault(row["table"], {}).setdefault(row["gemm_dtype"], {})[(m, n, k)] = tf
    return out


def max_ratios(data: dict) -> dict:
    """Per table: (best fp8 TFLOP/s, best nvfp4 TFLOP/s, their ratio)."""
    res = {}
    for tab, d in data.items():
        f8, f4 = max(d["fp8"].values()), max(d["nvfp4"].values())
        res[tab] = (f8, f4, f4 / f8)
    return res


def table_gpu(table: str) -> str:
    """The catalog GPU of a table name (its first path part: b200_sxm / gb200_sxm ...)."""
    head = table.split("/")[0].lower()
    return "gb200" if head.startswith("gb200") else "b200" if head.startswith("b200") else head


def shape_ratios(data: dict, m_min: int = 512) -> dict:
    """Per table: median nvfp4 / fp8 rate ratio over the shapes present in both formats with m >= m_min."""
    res = {}
    for tab, d in data.items():
        both = [s for s in d["fp8"] if s in d["nvfp4"] and s[0] >= m_min]
        res[tab] = float(np.median([d["nvfp4"][s] / d["fp8"][s] for s in both])) if both else float("nan")
    return res


def main() -> None:
    data = load()
    mx, sh = max_ratios(data), shape_ratios(data)
    print("| table | best fp8 TFLOP/s | best nvfp4 TFLOP/s | ratio of maxima | median ratio, Llama-70B shapes, m >= 512 |")
    print("|---|---:|---:|---:|---:|")
    for tab, (f8, f4, r) in mx.items():
        print(f"| {tab} | {f8:,.0f} | {f4:,.0f} | {r:.3f} | {sh[tab]:.2f} |")
    for gpu in ("b200", "gb200"):
        ratios = [r for tab, (_, _, r) in mx.items() if table_gpu(tab) == gpu]
        print(f"\n{gpu}: median ratio of maxima {float(np.median(ratios)):.3f}; catalog fp4_gemm_over_fp8 = "
              f"{catalog.gpu(gpu).fp4_gemm_over_fp8}")


if __name__ == "__main__":
    main()
