"""The per-expert GEMM model (planner.estimate.compute_gemm.gemm_s, one GEMM per local expert as Transformer
Engine's GroupedLinear issues them) against NVIDIA's measured single GEMMs at the expert shapes of the
Megatron-Bridge MoE recipes, by rows per expert, on Hopper and Blackwell.

Data: NVIDIA AIConfigurator (github.com/ai-dynamo/aiconfigurator @095f58a5, Apache-2.0),
aic-core/src/aiconfigurator_core/systems/data/<gpu>/gemm/trtllm/<version>/gemm_perf.parquet, gemm_dtype bfloat16
(TensorRT-LLM's torch flow: cuBLAS; the fp8 rows there include the input's dynamic quantisation, so they are not
used). Per model (hidden h, expert FFN f, gated: fc1 out 2f) the six GEMMs of one expert and micro-batch with m
routed rows: fc1 forward (m, n = 2f, k = h), fc1 dgrad (m, h, 2f), fc1 wgrad (2f, h, k = m), fc2 forward
(m, h, f), fc2 dgrad (m, f, h), fc2 wgrad (h, f, k = m). Printed: measured / model of the six summed, per rows
per expert; below 1 the model is slower than the kernel. A shape whose m is off the table's grid (7,168) is
read as its transpose (n, m, k: the same FLOPs and operand bytes). The model runs each GEMM at the burst bf16 MAMF rate
(no power-limited clock), as the tables are single-kernel microbenchmarks. Reads a local checkout of the
repository at that commit (needs pandas and pyarrow, like benchmarks/aic_data.py):

    python benchmarks/expert_gemm_aic_check.py AIC_CHECKOUT
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import aic_data  # noqa: E402
from planner.estimate import compute_gemm as G  # noqa: E402

# (name, hidden, expert FFN hidden): the routed experts of the recipes' MoE models (gated, fc1 out 2f)
MODELS = (("DeepSeek-V3", 7168, 2048), ("Qwen3-235B-A22B", 4096, 1536), ("Qwen3-30B-A3B", 2048, 768))
ROWS = (1024, 2048, 4096, 8192)


def expert_gemms(h: int, f: int, m: int) -> list[tuple[int, int, int]]:
    """(m, n, k) of the six GEMMs of one expert with m rows (module docstring)."""
    return [(m, 2 * f, h), (m, h, 2 * f), (2 * f, h, m), (m, h, f), (m, f, h), (h, f, m)]


def ratios(d, flops: float, hbm: float) -> dict[tuple[str, int], float]:
    """Measured / model of the six GEMMs summed per (model, rows per expert), of one GPU's bf16 GEMM rows d
    (aic_data.gemm_ratios)."""
    d = d.groupby(["m", "n", "k"]).latency.median()
    row = {}
    for model, h, f in MODELS:
        for m in ROWS:
            shapes = expert_gemms(h, f, m)
            found = [s if s in d.index else (s[1], s[0], s[2]) for s in shapes]
            if all(s in d.index for s in found):
                measured = sum(float(d[s]) * 1e-3 for s in found)
                row[(model, m)] = measured / sum(G.gemm_s(a, k, n, flops, hbm) for a, n, k in shapes)
    return row


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    res = aic_data.gemm_ratios(Path(argv[0]), ratios)
    cols = [(model, m) for model, _, _ in MODELS for m in ROWS]
    print(aic_data.ratio_table(res, cols, lambda c: f"{c[0]} {c[1]}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
