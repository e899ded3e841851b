"""MI300X FP8 GEMM kernel times at the Llama-3.1 70B / 405B TP8 shapes (AMD's tuned aiter CK a8w8 kernels) against
the planner's roofline and against the extra time the published ROCm vLLM 0.10 TP8 latency rows need.

Data: benchmarks/aiter_a8w8_mi300x_tp8.csv, the rows of ROCm/aiter commit fbb52ddf ("[MI300X] tune Gemm performance
for llama 70b/405b", PR 1092, aiter/configs/a8w8_tuned_gemm.csv, cu_num 304 = MI300X) at the four linear shapes of
each model at TP8 (QKV, O, gate+up, down; FP8 e4m3fnuz weights and activations, bf16 output): the tuner's kernel time
in microseconds for M = 1 ... 16,384 rows. These are CK kernels (aiter); the ROCm vLLM 0.10 rows ran hipBLASLt through
torch._scaled_mm for M >= 2 and the skinny wvSplitKQ kernel at M = 1 (benchmarks/amd_serve_results.md), so the table
is a neighbouring kernel family at the same shapes, not the kernels those rows ran.

Per step: layers x the sum of the four GEMMs (linear interpolation in M), against the planner's roofline of the same
four GEMMs (max(2 x padded rows x N x K / FP8 rate, N x K bytes / HBM rate), timing.rates / padded_rows) and against
the measured extra of the latency table (benchmarks/rocm_tp8_batch_check.py: measured step - model step).

    python benchmarks/aiter_gemm_check.py
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from planner import catalog  # noqa: E402
from planner.serve import timing  # noqa: E402
import rocm_tp8_batch_check as R  # noqa: E402

TABLE = ROOT / "benchmarks" / "aiter_a8w8_mi300x_tp8.csv"
TP = 8
MODELS = {"70b": "llama-3.1-70b", "405b": "llama-3.1-405b"}  # rocm_tp8_batch_check's labels -> catalog models


def tp_gemm_shapes(name: str, tp: int = TP) -> tuple[int, tuple]:
    """(layers, the four (N, K) GEMMs of one rank) of a dense SwiGLU catalog model at tensor parallel tp
    (Megatron's column / row split): QKV N = (heads + 2 kv_heads) x head_dim / tp, K = hidden; attention out
    N = hidden, K = heads x head_dim / tp; gate + up N = 2 ffn / tp, K = hidden; down N = hidden, K = ffn / tp."""
    m = catalog.model(name)
    d = m.head_dim or m.hidden // m.heads
    return m.layers, (((m.heads + 2 * m.kv_heads) * d // tp, m.hidden), (m.hidden, m.heads * d // tp),
                      (2 * m.ffn_hidden // tp, m.hidden), (m.hidden, m.ffn_hidden // tp))


SHAPES = {label: tp_gemm_shapes(name) for label, name in MODELS.items()}


def load() -> dict:
    """{(N, K): (M array, us array)} from the extracted aiter rows."""
    out: dict = {}
    with TABLE.open() as fh:
        for row in csv.DictReader(fh):
            out.setdefault((int(row["n"]), int(row["k"])), []).append((int(row["m"]), float(row["us"])))
    return {nk: tuple(np.array(v, dtype=float).T) for nk, v in ((k, sorted(v)) for k, v in out.items())}


def step_ms(model: str, m: float, table: dict) -> tuple[float, float]:
    """(aiter kernels, planner roofline) ms per step for the model's four TP8 GEMMs at m rows."""
    layers, shapes = SHAPES[model]
    gpu = catalog.gpu("mi300x")
    lin, _, bw = timing.rates(gpu, ("fp8",))
    rows = float(timing.padded_rows(m))
    meas = sum(float(np.interp(m, *table[nk])) for nk in shapes) * 1e-3
    roof = sum(max(2 * rows * n * k / lin[0], n * k / bw) for n, k in shapes) * 1e3
    return layers * meas, layers * roof


def main() -> None:
    table = load()
    extra = {(mod, b): e for mod, prompt, b, _, _, e, _ in R.rows() if prompt == 128}
    print("| model | rows (batch) | aiter CK GEMMs ms | planner roofline ms | aiter - roofline | measured extra (latency row) |")
    print("|---|---:|---:|---:|---:|---:|")
    for model in SHAPES:
        for m in (1, 2, 4, 8, 16, 32, 64, 128, 1500, 3200):
            meas, roof = step_ms(model, m, table)
            e = extra.get((model, m))
            cell = f"{e:+.2f}" if e is not None else "(offline row)"
            print(f"| {model} | {m} | {meas:.2f} | {roof:.2f} | {meas - roof:+.2f} | {cell} |")


if __name__ == "__main__":
    main()
