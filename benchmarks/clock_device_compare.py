"""Tables of benchmarks/clock_device/h200.json (sustained loads) and h200_shapes.json (every GEMM shape cold and hot)
against the planner's GEMM model, and the fit of the GEMM form at the burst clock.

    python benchmarks/clock_device_compare.py [--out benchmarks/clock_device_tables.md]

Cold rate of a shape: 2mkn / the median of its calls 2-8 after 1.5 s idle (the first call after idle pays a
wake-up of ~0.2-0.4 ms and is left out; the checker's own `cold_tflops` takes the median of calls 1-5). Hot rate:
the checker's `hot_tflops` (median of 20 calls after 2 s of the same shape).
Model columns (planner.estimate.compute_gemm on the H200 catalog entry):
  now burst   gemm_s at the catalog MAMF (additive traffic + launch) = what evaluate charges at tensor_clock 1
  now hot     the same with the tensor-core rate x sustained_tensor_fraction (what a step that computes all the
              time is charged: sustained_clock(s, 1))
  roof burst  max(2mkn / F_burst, bytes / (HBM x 0.8)) + launch, F_burst fitted below on the cold timings
  roof hot    the same with F_burst x sustained_tensor_fraction
Fit (fit_burst): one F per precision and form, minimising the mean |log(model / measured)| over the shapes whose
cold time is at least FIT_MIN_S (launch below 4%), F on a 1 TFLOP/s grid. Forms: 'additive' (gemm_s's) and
'roofline' (traffic hidden behind the arithmetic).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from planner.atomic import write_atomic  # noqa: E402
from planner.catalog import gpu as catalog_gpu  # noqa: E402
from planner.estimate import compute_gemm  # noqa: E402

LOADS = HERE / "clock_device" / "h200.json"
SHAPES = HERE / "clock_device" / "h200_shapes.json"
FIT_MIN_S = 100e-6  # shapes fitted: compute_gemm.GEMM_LAUNCH_S (4 us) below 4% of the cold time
ELEM = {"bf16": 2.0, "fp8": 1.0}


def load_shapes(path: Path = SHAPES) -> list[dict]:
    """The measured shapes with cold_s (s of the median of calls 2-8), hot_s, flops and bytes moved."""
    rows = []
    for r in json.loads(path.read_text())["shapes"]:
        if "error" in r:
            continue
        m, k, n = r["m"], r["k"], r["n"]
        flops = 2.0 * m * k * n
        rows.append({**r, "flops": flops, "moved": ELEM[r["prec"]] * (m * k + k * n) + 2.0 * m * n,
                     "cold": float(np.median(r["cold_s"][1:])), "hot": flops / (r["hot_tflops"] * 1e12)})
    return rows


def hbm_rate(gpu) -> float:
    return gpu.hbm_tb_s * 1e12 * compute_gemm.HBM_EFFICIENCY


def form_s(form: str, flops, moved, f, hbm):
    """Seconds of one GEMM (or an array of them) under `form` ('additive' or 'roofline') at tensor rate f
    (FLOP/s): additive = flops / f + moved / hbm + launch, roofline = max(flops / f, moved / hbm) + launch."""
    if form == "additive":
        return flops / f + moved / hbm + compute_gemm.GEMM_LAUNCH_S
    return np.maximum(flops / f, moved / hbm) + compute_gemm.GEMM_LAUNCH_S


def fit_burst(rows: list[dict], gpu=None) -> dict:
    """{prec: {form: {tflops, mean_abs, worst, n}}}: the burst tensor rate F that best reproduces the cold timings
    (shapes with cold time >= FIT_MIN_S) under each form."""
    gpu = gpu or catalog_gpu("h200-sxm-141gb")
    hbm, out = hbm_rate(gpu), {}
    for prec in ELEM:
        sel = [r for r in rows if r["prec"] == prec and r["cold"] >= FIT_MIN_S]
        out[prec] = {}
        for form in ("additive", "roofline"):
            best = None
            for tf in np.arange(300.0, 2500.0, 1.0):
                err = [np.log(form_s(form, r["flops"], r["moved"], tf * 1e12, hbm) / r["cold"]) for r in sel]
                score = float(np.mean(np.abs(err)))
                if best is None or score < best["mean_abs"]:
                    best = {"tflops": float(tf), "mean_abs": score, "worst": float(np.max(np.abs(err))), "n": len(sel)}
            out[prec][form] = best
    return out


def shape_rows(rows: list[dict], fit: dict, gpu) -> list[dict]:
    """Per shape: measured cold/hot TFLOP/s and the four model columns (module docstring)."""
    s, hbm = gpu.sustained_tensor_fraction or 1.0, hbm_rate(gpu)
    out = []
    for r in rows:
        p = r["prec"]
        mamf = gpu.peak_tflops(p) * 1e12 * getattr(gpu.matmul_efficiency, p)
        fb = fit[p]["roofline"]["tflops"] * 1e12
        tf = lambda sec: r["flops"] / sec / 1e12  # noqa: E731
        out.append({"shape": f"{p} {r['m']} x {r['k']} x {r['n']}", "cold_mhz": r["cold_mhz"], "hot_mhz": r["hot_mhz"],
                    "cold": tf(r["cold"]), "hot": tf(r["hot"]), "fit": r["cold"] >= FIT_MIN_S,
                    "now_burst": tf(form_s("additive", r["flops"], r["moved"], mamf, hbm)),
                    "now_hot": tf(form_s("additive", r["flops"], r["moved"], mamf * s, hbm)),
                    "roof_burst": tf(form_s("roofline", r["flops"], r["moved"], fb, hbm)),
                    "roof_hot": tf(form_s("roofline", r["flops"], r["moved"], fb * s, hbm))})
    return out


def pct(a, b) -> str:
    return f"{100 * (a / b - 1):+.0f}%"


def tables() -> str:
    gpu = catalog_gpu("h200-sxm-141gb")
    rows = load_shapes()
    fit = fit_burst(rows, gpu)
    loads = json.loads(LOADS.read_text())
    out = ["# Clock device check: tables", "",
           f"`python benchmarks/clock_device_compare.py` on benchmarks/clock_device/ ({loads['gpu']}, torch {loads['torch']}, "
           f"NVML every {loads['sample_s'] * 1e3:.0f} ms). Definitions in the script's docstring.", "",
           "## Sustained loads (h200.json)", "",
           "| load | units | first 3 units (ms) | settled median (ms) | first / settled | settled SM MHz | settled W "
           "| power-cap share of settled samples | first sample with the cap (s into the load) |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for name, v in loads["loads"].items():
        t0 = v["samples"][0][0] if v["samples"] else None
        cap = next((smp[0] - t0 for smp in v["samples"] if smp[3]), None)
        out.append(f"| {name} | {v['units']} | {', '.join(f'{1e3 * x:.1f}' for x in v['first_s'])} | "
                   f"{1e3 * v['settled_median_s']:.1f} | {v['first_over_settled']:.3f} | {v['settled_sm_mhz_median']} | "
                   f"{v['settled_power_w_median']:.0f} | {v['settled_power_cap_share']:.2f} | "
                   f"{'-' if cap is None else f'{cap:.2f}'} |")
    s = gpu.sustained_tensor_fraction
    out += ["", "## Every GEMM shape, cold and hot (h200_shapes.json), against the model", "",
            f"TFLOP/s. Catalog: MAMF bf16 {gpu.peak_tflops('bf16') * gpu.matmul_efficiency.bf16:.0f}, FP8 "
            f"{gpu.peak_tflops('fp8') * gpu.matmul_efficiency.fp8:.0f}; sustained_tensor_fraction {s}. "
            f"Fitted burst rate of the roofline form: bf16 {fit['bf16']['roofline']['tflops']:.0f}, FP8 "
            f"{fit['fp8']['roofline']['tflops']:.0f}. 'fit' = used in the fit (cold time >= {FIT_MIN_S * 1e6:.0f} us).", "",
            "| shape | fit | cold MHz | cold | hot MHz | hot | hot / cold | now burst (vs cold) | now hot (vs hot) "
            "| roof burst (vs cold) | roof hot (vs hot) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    srows = shape_rows(rows, fit, gpu)
    for r in srows:
        out.append(f"| {r['shape']} | {'yes' if r['fit'] else 'no'} | {r['cold_mhz']} | {r['cold']:.0f} | {r['hot_mhz']} | "
                   f"{r['hot']:.0f} | {r['hot'] / r['cold']:.3f} | {r['now_burst']:.0f} ({pct(r['now_burst'], r['cold'])}) | "
                   f"{r['now_hot']:.0f} ({pct(r['now_hot'], r['hot'])}) | {r['roof_burst']:.0f} "
                   f"({pct(r['roof_burst'], r['cold'])}) | {r['roof_hot']:.0f} ({pct(r['roof_hot'], r['hot'])}) |")
    out += ["", "## Summary over the fitted shapes", "",
            "| precision | n | hot / cold mean (min - max) | now burst vs cold: mean abs | now burst vs hot: mean abs "
            "| now hot vs hot: mean abs | roof burst vs cold: mean abs | roof hot vs hot: mean abs |",
            "|---|---:|---|---:|---:|---:|---:|---:|"]
    for p in ELEM:
        sel = [r for r in srows if r["fit"] and r["shape"].startswith(p)]
        ratio = [r["hot"] / r["cold"] for r in sel]
        mae = lambda key, ref: f"{100 * statistics.mean(abs(r[key] / r[ref] - 1) for r in sel):.1f}%"  # noqa: E731
        out.append(f"| {p} | {len(sel)} | {statistics.mean(ratio):.3f} ({min(ratio):.3f} - {max(ratio):.3f}) | "
                   f"{mae('now_burst', 'cold')} | {mae('now_burst', 'hot')} | {mae('now_hot', 'hot')} | "
                   f"{mae('roof_burst', 'cold')} | {mae('roof_hot', 'hot')} |")
    out += ["", "## Fit of the form at the burst clock (cold timings)", "",
            "| precision | form | F_burst (TFLOP/s) | F_burst / dense peak | mean abs log error | worst | shapes |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for p in ELEM:
        for form, f in fit[p].items():
            out.append(f"| {p} | {form} | {f['tflops']:.0f} | {f['tflops'] / gpu.peak_tflops(p):.3f} | "
                       f"{100 * f['mean_abs']:.1f}% | {100 * f['worst']:.1f}% | {f['n']} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=HERE / "clock_device_tables.md")
    args = ap.parse_args(argv)
    text = tables()
    write_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
