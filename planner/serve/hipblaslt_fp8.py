"""Per-tensor FP8 dense GEMMs that vLLM runs through hipBLASLt on MI300-series GPUs (gfx942): their time near the
ridge between the weight read and the math.

What the engine runs. vLLM's per-tensor W8A8 FP8 linear on ROCm (`rocm_per_tensor_w8a8_scaled_mm`,
vllm/model_executor/layers/quantization/utils/w8a8_utils.py, read at ROCm/vllm 040de12d, the vLLM 0.10 image of
AMD's MI300X tables) calls the skinny kernel `ops.wvSplitKQ` only when the step has exactly one token, and
`torch._scaled_mm` otherwise, which on ROCm is hipBLASLt. vLLM does not pad the rows on ROCm (Fp8LinearOp:
`pad_output` is False under `is_rocm()`). AMD's MLPerf Llama-2-70B harness (vLLM 0.6.5 / 0.9 forks) runs the same
hipBLASLt call with an offline-tuned solution table (HIPBLASLT_TUNING_OVERRIDE_FILE).

The measurement. AMD's MLPerf Inference v5.1 submission ships that table with the hipBLASLt timing of each tuned
solution: mlcommons/inference_results_v5.1 @965182b0, closed/AMD/code/llama2-70b-99/scripts/gemm_llama2-70b/
aa0bda7b/tuning_spx_1700_formatted.txt (hipBLASLt aa0bda7b, the same hipBLASLt commit as the vLLM 0.10 image's
docker/Dockerfile.rocm_base; gfx942, 304 CUs: the MI325X of interactive_mi325x.yaml): FP8 (e4m3 fnuz) x FP8 -> fp16,
the four Llama-2-70B TP1 linears (output width x reduction 10240 x 8192, 8192 x 8192, 57344 x 8192, 8192 x 28672)
at 1-2,592 token rows, 8,336 timings (an extract of 132: benchmarks/hipblaslt_fp8_mlperf_mi325x.csv).

What it shows (benchmarks/hipblaslt_fp8_check.py). With the planner's own rates (weight bytes at HBM x
HBM_EFFICIENCY, FLOPs at the FP8 MAF x SUSTAINED_FRACTION) plus the GEMM launch time, the roofline max(read, math)
on rows padded to 128 is right where one side dominates (0.97x at <= 16 rows, 0.98x above 1,024) but fast where
they meet: median measured / model 1.46 at 65-128 rows, 1.19 at 129-256, 1.14 at 257-512 (the extract). Two
effects: the time is flat for 1-16 rows and then grows smoothly (hipBLASLt's smallest FP8 macro tile is 16 rows,
not the 128 the model pads to), and near the ridge the weight stream and the MFMA work overlap only in part, the
more so the smaller the matrix (the 8192 x 8192 and 10240 x 8192 shapes stay 1.15-1.26x above the blend at
48-512 rows, the 57344 x 8192 one 0.85-0.94x below it). Model: time = (read^p + math^p)^(1/p), the math on the rows
padded to 16 (ROW_TILE); p = BLEND_P = 1.6, FITTED to the 8,336 timings (mean abs error 5.5% against 6.7% for the
128-row max; on the 132-row extract 9.0% against 11.6%, median 1.13 at 65-128 rows); left out one shape at a time
the other three give p = 1.40-1.70 on the full table (1.30-1.90 on the extract) and 5.1-7.3% on the one left out,
better than the max on three shapes; the large 57344 x 8192 is modelled worse than by the max (full table 6.4%
against 5.2%; extract 16.6% against 8.0%). The fit reads the activations' bytes with the weights; the planner
blends the weight bytes alone and adds the activations in its elementwise term: in that form p = 1.6 gives 6.6%
against 8.4% for the 128-row max on the full table (best p 1.8, 6.5%). Fitted to AMD's per-operation
timings, not to any point of benchmarks/serving_accuracy.py. The tuned table bounds the untuned heuristic of the
vLLM 0.10 image from below, and the TP8 matrices (8-220 MB per GPU) are smaller than any in the table (67-470 MB),
where the miss grows: on those rows the term is a lower bound. The table is MI325X; MI300X (same 304 CUs and
clocks, 5.3 against 6.0 TB/s) takes the same p with its own bandwidth (TRANSFERRED).

Where: vLLM (any release: the per-tensor path has gone through torch._scaled_mm on ROCm since the skinny kernel
came, and aiter's GEMMs are opt-in, VLLM_ROCM_USE_AITER default off) on gfx942 GPUs with per-tensor FP8 weights
("fp8"), for steps of two or more token rows per GPU. Not: one-token steps (wvSplitKQ), block-FP8 weights (other
kernels), routed experts (fused MoE kernels), NVIDIA GPUs (cuBLASLt / CUTLASS, own checks).
"""

from __future__ import annotations

import numpy as np

from planner.serve import engines as E
from planner.serve.aiter_triton_gemm import gfx942  # the gfx942 GPUs of the catalog

ROW_TILE = 16  # hipBLASLt's smallest FP8 macro-tile height on gfx942: the measured time is flat for 1-16 rows
BLEND_P = 1.6  # FITTED to AMD's 8,336 hipBLASLt FP8 timings (module doc; benchmarks/hipblaslt_fp8_check.py)


def applies(t: dict, gpu_name: str, rows) -> np.ndarray:
    """Plan rows whose dense GEMMs run hipBLASLt per-tensor FP8: vLLM on a gfx942 GPU with "fp8" weights and more
    than one token row per GPU in the step (rows)."""
    shape = np.broadcast(np.asarray(t["engine"]), np.asarray(rows)).shape
    if not gfx942(gpu_name):
        return np.zeros(shape, dtype=bool)
    fp8 = np.array([n == "fp8" for n in E.WEIGHT_NAMES])[t["wq"]]
    return np.broadcast_to((np.asarray(t["engine"]) == E.VLLM) & fp8 & (np.asarray(rows) > 1.0), shape)


def blend(read_s, math_s, p=BLEND_P):
    """(read^p + math^p)^(1/p): the GEMM time when the weight stream and the math overlap only in part."""
    read_s, math_s = np.asarray(read_s, dtype=float), np.asarray(math_s, dtype=float)
    return (read_s ** p + math_s ** p) ** (1.0 / p)
