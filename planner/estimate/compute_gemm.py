"""Rates of the compute model and the time of one GEMM.

* Weight matmuls, per GEMM after the tensor-parallel split: 2MKN / (peak x MAMF) + bytes moved /
  (HBM bandwidth x 0.8) + a launch latency (`gemm_s`). MAMF is the GPU's measured maximum achievable
  matmul throughput at its best shape (ml-engineering, catalogs/gpus.yaml `matmul_efficiency`);
  real transformer shapes lose to it by their operand and output traffic, which the kernels do not
  fully hide, so small hidden sizes and small experts run well below the dense rate. Measured on an
  H200 (benchmarks/gemm_device_results.md): within 10% on transformer-sized GEMMs. Those timings were
  mostly taken under the board's power cap: this form reproduces the power-limited rates (5-6.5% off),
  not the burst ones (13-14% below; benchmarks/clock_device_results.md), so `sustained_clock` on top
  counts the power limit twice on one GPU. Kept because the multi-GPU runs need about that slowdown
  (the what-if in that file); its cause there is not modelled yet.
* The tensor-core rates follow the power-limited clock (`sustained_clock`); HBM bandwidth does not.
"""

from __future__ import annotations

import numpy as np

from planner.estimate.compute_quant import FP4_GEMM_OVER_FP8_DEFAULT, MXFP8_GEMM_OF_FP8

DEFAULT_MAMF = 0.70      # when a GPU has no measured MAMF (assumed)
# Kernel launch and tail of one GEMM: 4 us fits the measured H200 timings of mid-size GEMMs best
# (benchmarks/gemm_device_results.md); CUDA kernel launch latencies are a few microseconds.
GEMM_LAUNCH_S = 4e-6
HBM_EFFICIENCY = 0.80    # streaming kernels reach about 80-90% of HBM peak (assumed lower end)


def peaks(gpu, t, fp8_recipe: str = "delayed"):
    """(matmul FLOP/s achievable for linear layers, FLOP/s for attention/bf16 work, HBM bytes/s): the
    burst MAMF rates times the row's `tensor_clock` (sustained_clock, set by
    evaluate.with_tensor_clock; 1 = burst where the table has none). HBM bandwidth does not follow the
    SM clock, so the traffic terms keep their rate. FP8 linear layers under `fp8_recipe` 'mxfp8' run at
    MXFP8_GEMM_OF_FP8 of the FP8 rate; under 'nvfp4' at the GPU's measured NVFP4 / FP8 GEMM ratio
    (fp4_gemm_over_fp8) of it, at most the dense FP4 peak at the same MAMF fraction (nvfp4_linear_flops)."""
    def peak(p):
        v = gpu.peak_tflops(p)
        return (v or 0.0) * 1e12

    eff16 = gpu.matmul_efficiency.bf16 or DEFAULT_MAMF
    eff8 = gpu.matmul_efficiency.fp8 or gpu.matmul_efficiency.bf16 or DEFAULT_MAMF
    if fp8_recipe == "mxfp8":
        eff8 = eff8 * MXFP8_GEMM_OF_FP8
    clock = t["tensor_clock"] if "tensor_clock" in t else 1.0  # power-limited clocks: sustained_clock
    low = (nvfp4_linear_flops(peak("fp8"), peak("fp4"), eff8, fp4_gemm_over_fp8(gpu)) if fp8_recipe == "nvfp4"
           else peak("fp8") * eff8)
    linear = np.array([peak("fp32") * eff16, peak("fp16") * eff16, peak("bf16") * eff16, low])
    half = np.array([peak("fp32"), peak("fp16"), peak("bf16"), peak("bf16")]) * eff16
    prec = t["precision"]
    return linear[prec] * clock, half[prec] * clock, gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY, eff16


def nvfp4_linear_flops(fp8_peak, fp4_peak, eff8, ratio):
    """FLOP/s of NVFP4 linear-layer GEMMs: min(FP8 peak x eff8 x ratio, FP4 peak x eff8), with `ratio` the
    GPU's measured NVFP4 / FP8 GEMM rate (fp4_gemm_over_fp8); it cannot exceed the dense FP4 tensor-core
    peak at the GPU's MAMF fraction."""
    return min(fp8_peak * eff8 * ratio, fp4_peak * eff8)


def fp4_gemm_over_fp8(gpu) -> float:
    """The GPU's measured best NVFP4 / best per-tensor FP8 GEMM rate (catalogs/gpus.yaml `fp4_gemm_over_fp8`,
    sources in its header), or FP4_GEMM_OVER_FP8_DEFAULT where it was not measured. The one place both the
    training and the serving model read the FP4 GEMM gain."""
    return gpu.fp4_gemm_over_fp8 or FP4_GEMM_OVER_FP8_DEFAULT


def sustained_clock(sustained_fraction, busy_share):
    """Tensor-core rate / burst rate of a training step under the board's power limit:
    1 - (1 - sustained_fraction) x busy_share. The limiter holds the board's power at the limit
    (NVML clock event reason 'SwPowerCap': clocks lowered so as not to exceed the power limit). A load
    that computes all the time settles at the measured `sustained_fraction` (an H200 SXM looping a
    bf16 GEMM: 0.825 of burst, benchmarks/host_device_results.md); time spent waiting on exposed
    communication or in the pipeline bubble draws little power, so a step that computes only a share
    `busy_share` of its time needs proportionally less cut (first order: power averaged over the
    step, linear in the busy share). The uniform cut (busy_share = 1) is the other bound."""
    return 1.0 - (1.0 - sustained_fraction) * busy_share


def gemm_s(m_rows, k, n, flops_per_s, hbm_bytes_s, elem_bytes=2.0):
    """Time of an (m x k) @ (k x n) matmul: 2mkn / F + (elem_bytes (mk + kn) + 2 mn) / B + launch,
    F the MAMF rate, B the streaming HBM rate, the output written in 16 bits. The traffic term adds
    to, rather than hides behind, the arithmetic: on an H200 this reproduces the measured GEMM times
    of transformer shapes within 10% where max(compute, traffic) is 5-62% too fast
    (benchmarks/gemm_device_results.md)."""
    flops = 2.0 * m_rows * k * n
    moved = elem_bytes * (m_rows * k + k * n) + 2.0 * m_rows * n
    return flops / np.maximum(flops_per_s, 1.0) + moved / hbm_bytes_s + GEMM_LAUNCH_S

