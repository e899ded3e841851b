"""Compare the planner's GEMM, attention and elementwise terms with the timings of
benchmarks/gemm_device_check.py (benchmarks/gemm_device/h200.json: one H200, torch 2.11).

    python benchmarks/gemm_device_compare.py [--out benchmarks/gemm_device_results.md]

GEMM: planner.estimate.compute_gemm.gemm_s on the H200 catalog entry (bf16 MAMF, HBM x 0.8), next to the
plain roofline max(compute, traffic) it replaced. Attention: the fused-kernel and FlashAttention-2
rates of compute_attention.attention_rates. Elementwise: the bytes per element the model charges.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from planner.catalog import gpu as catalog_gpu  # noqa: E402
from planner.estimate import compute_attention, compute_elementwise, compute_gemm, compute_quant  # noqa: E402

RESULTS = HERE / "gemm_device" / "h200.json"


def gemm_rows(measured: dict, gpu, prefix: str = "mm") -> list[tuple]:
    """(shape, measured TFLOP/s, model TFLOP/s, plain-roofline TFLOP/s) per bf16 ("mm") or FP8
    ("f8mm", torch._scaled_mm with bf16 output) GEMM."""
    fp8 = prefix == "f8mm"
    fps = gpu.peak_tflops("fp8" if fp8 else "bf16") * 1e12 * (gpu.matmul_efficiency.fp8 if fp8
                                                               else gpu.matmul_efficiency.bf16)
    hbm = gpu.hbm_tb_s * 1e12 * compute_gemm.HBM_EFFICIENCY
    elem = 1.0 if fp8 else 2.0
    rows = []
    for key, tflops in measured.items():
        if not key.startswith(prefix + "") or (not fp8 and key.startswith("f8")):
            continue
        m, k, n = (int(v) for v in key[len(prefix):].split("x"))
        flops = 2.0 * m * k * n
        model = flops / float(compute_gemm.gemm_s(m, k, n, fps, hbm, elem)) / 1e12
        plain = flops / max(flops / fps, (elem * (m * k + k * n) + 2.0 * m * n) / hbm) / 1e12
        rows.append((f"{m} x {k} x {n}", tflops, model, plain))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=HERE / "gemm_device_results.md")
    args = ap.parse_args(argv)
    measured = json.loads(RESULTS.read_text())
    gpu = catalog_gpu("h200-sxm-141gb")
    lines = ["# GEMM, attention and elementwise terms against an H200", "",
             f"Measured with `benchmarks/gemm_device_check.py` (torch {measured['torch']}); compared by "
             "`benchmarks/gemm_device_compare.py`. TFLOP/s; error = model / measured - 1.", "",
             "The check ran every shape right after the previous one (3 warm-up + 20 timed calls each, no idle), and "
             "the SW power cap engages about 50 ms into a load (benchmarks/clock_device_results.md): its 'measured' "
             "rates were taken at clocks between burst and power-limited. 'cold' and 'hot' are the same shapes from "
             "benchmarks/clock_device/h200_shapes.json (after 1.5 s idle at 1,980 MHz; after 2 s of the same shape), "
             "as benchmarks/clock_device_compare.py reads them: the model column sits near 'hot', not 'cold'.", "",
             "| GEMM m x k x n | cold | hot | measured | model | error | plain roofline | error |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    import clock_device_compare as cdc
    clock = {(r["prec"], r["m"], r["k"], r["n"]): r for r in cdc.load_shapes()}
    for prefix, label in (("mm", "bf16"), ("f8mm", "FP8")):
        for shape, meas, model, plain in gemm_rows(measured, gpu, prefix):
            m, k, n = (int(v) for v in shape.split(" x "))
            c = clock.get(("fp8" if prefix == "f8mm" else "bf16", m, k, n))
            ch = f"{c['flops'] / c['cold'] / 1e12:.0f} | {c['hot_tflops']:.0f}" if c else "- | -"
            lines.append(f"| {label} {shape} | {ch} | {meas:.0f} | {model:.0f} | {100 * (model / meas - 1):+.0f}% "
                         f"| {plain:.0f} | {100 * (plain / meas - 1):+.0f}% |")
    peak = gpu.peak_tflops("bf16")
    mamf = peak * gpu.matmul_efficiency.bf16
    fused = (mamf * compute_attention.ATTN_FWD_OF_MAMF, mamf * compute_attention.ATTN_BWD_OF_MAMF)
    fa2 = (min(fused[0], peak * compute_attention.FA2_HOPPER_FWD_OF_PEAK),
           min(fused[1], peak * compute_attention.FA2_HOPPER_BWD_OF_PEAK))
    lines += ["", "| causal attention, 32 x 128 heads | measured fwd | bwd | model fwd | bwd |", "|---|---:|---:|---:|---:|"]
    for name, label, rate in (("cudnn", "cuDNN (fused, 'fa3')", fused), ("fa", "FlashAttention-2 ('fa2')", fa2)):
        for s in (2048, 8192):
            lines.append(f"| {label}, s = {s} | {measured[f'{name}{s}_fwd']:.0f} | {measured[f'{name}{s}_bwd']:.0f} "
                         f"| {rate[0]:.0f} | {rate[1]:.0f} |")
    lines += ["", "| elementwise op (16384 x 4096 bf16) | measured: time x peak HBM rate / elements | model: bytes "
              "charged / HBM efficiency |", "|---|---:|---:|"]
    ew = compute_elementwise
    for key, model in (("rms_eager", ew.EAGER_RMSNORM_BYTES), ("rms_F", ew.FUSED_NORM_BYTES),
                       ("rms_compiled", ew.FUSED_NORM_BYTES), ("silu_mul", ew.EAGER_SWIGLU_BYTES),
                       ("copy", 4.0), ("q_compiled", compute_quant.FP8_CAST_BYTES["current"] - 1.0)):
        lines.append(f"| {key} | {measured[key + '_B_per_elem_at_hbm_peak']:.1f} | "
                     f"{model / compute_gemm.HBM_EFFICIENCY:.1f} |")
    lines += ["", "SiLU x mul is the eager SwiGLU (`F.silu(a) * b`, here with a = b). The model divides the bytes "
              "it charges by the HBM efficiency (0.8), so both columns are in bytes at the peak rate. q_compiled: "
              "per-tensor current-scaling FP8 quantisation (amax, scale, cast) under torch.compile, without the "
              "transposed copy (the model's 'current' recipe minus 1 byte); eager it takes "
              f"{measured['q_eager_B_per_elem_at_hbm_peak']:.0f}."]
    text = "\n".join(lines) + "\n"
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, args.out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
