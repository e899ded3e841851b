"""What-if: the GEMM time model with each constant taken at the clock it was measured at (not adopted).

    python benchmarks/clock_whatif.py [--with-recipes] [--out benchmarks/clock_whatif.md]

benchmarks/clock_device_results.md found that compute_gemm.gemm_s's constants (MAMF + additive operand/output
traffic) reproduce GEMM timings taken under the power cap, while evaluate.with_tensor_clock derates them once more
(sustained_clock). This script re-evaluates every training run of benchmarks/accuracy.py under variants, each in its
own process (the catalogs are cached per process), and prints the error of every run under each:

  now        the committed model
  burst      the committed model without the derating (sustained_tensor_fraction removed from every GPU)
  physical   gemm_s at burst = max(2mkn / F_burst, bytes / (HBM x 0.8)) + launch, with F_burst the burst MAMF fitted
             on the cold H200 timings (clock_device_compare.fit_burst: one F per precision, no per-shape constant),
             written into the GH100 700 W parts that carry the H200's sustained fraction (H100 SXM, H200 SXM); then the
             measured sustained fraction applied as committed (busy share). Other GPUs: the same roofline form with
             their catalog MAMF.
  form-only  the roofline form alone, every GPU at its catalog MAMF, derating as committed.
(The former 'optimizer' variant, the optimizer's HBM bytes per framework, is the committed model now:
planner/estimate/optimizer_bytes.py, benchmarks/optimizer_bytes_results.md.)

The variants patch the model in memory only; nothing in planner/ changes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

VARIANTS = ("now", "burst", "physical", "form-only")
GH100_700W = ("h100-sxm-80gb", "h200-sxm-141gb")  # the entries whose MAMF is the same GH100 die at 700 W


def roofline_gemm_s(m_rows, k, n, flops_per_s, hbm_bytes_s, elem_bytes=2.0):
    """gemm_s's signature on clock_device_compare.form_s('roofline'): max(2mkn / F, (elem (mk + kn) + 2 mn) / B)
    + launch, operand and output traffic hidden behind the arithmetic."""
    import numpy as np

    import clock_device_compare as cdc
    flops = 2.0 * m_rows * k * n
    moved = elem_bytes * (m_rows * k + k * n) + 2.0 * m_rows * n
    return cdc.form_s("roofline", flops, moved, np.maximum(flops_per_s, 1.0), hbm_bytes_s)


def patch(variant: str) -> None:
    """Applies `variant` to the in-memory model (catalog text and gemm_s)."""
    import yaml

    from planner import catalog
    from planner.estimate import compute, compute_attention, compute_gemm, compute_moe, compute_mtp
    if variant == "now":
        return
    text, where = catalog._catalog_text("gpus")
    gpus = yaml.safe_load(text)
    if variant == "burst":
        for g in gpus:
            g.pop("sustained_tensor_fraction", None)
    if variant == "physical":
        import clock_device_compare as cdc
        fit = cdc.fit_burst(cdc.load_shapes())
        for g in gpus:
            if g["name"] in GH100_700W:
                g["matmul_efficiency"] = {p: round(fit[p]["roofline"]["tflops"] / g["tflops"][p], 4) for p in ("bf16", "fp8")}
    new_text = yaml.safe_dump(gpus, sort_keys=False)
    catalog._catalog_text = lambda kind, _orig=catalog._catalog_text: (new_text, where) if kind == "gpus" else _orig(kind)
    for cached in (catalog.raw, catalog._items, catalog.gpu, catalog.node, catalog.model):
        cached.cache_clear()
    if variant in ("physical", "form-only"):
        for mod in (compute_gemm, compute, compute_moe, compute_mtp, compute_attention):
            mod.gemm_s = roofline_gemm_s


def predictions(variant: str, with_recipes: bool) -> dict:
    """{run id: (predicted, published, file)} under `variant`."""
    patch(variant)
    import accuracy
    files = accuracy.default_files(accuracy.DEFAULT_DIR) + (list(accuracy.RECIPE_FILES) if with_recipes else [])
    out = {}
    for r, f in accuracy.training_runs(files):
        row = accuracy.evaluate(r, f)
        out[row["id"]] = (row["predicted"], row["published"], f, gpu_of(row["node"]))
    return out


def step_predictions(variant: str) -> dict:
    """{recompute mbs x seq: (predicted step s with the committed busy-share derating, measured step s)} for the
    one-H200 training steps of benchmarks/step_device/h200.json (step_device_compare.train_predicted) under
    `variant`."""
    patch(variant)
    import step_device_compare as sdc
    data = json.loads(sdc.RESULTS.read_text())
    sec = data["train"]
    return {f"{r['recompute']} {r['mbs']} x {r['seq']}": (sdc.train_predicted(sec["model"], sec["ffn"], r)["step"], r["step_s"])
            for r in sec["runs"] if "step_s" in r}


def gpu_of(node: str) -> str:
    """The GPU of an accuracy row's node text ('<node>' or '<node> with <gpu> (...)')."""
    from planner import catalog
    if " with " in node:
        return node.split(" with ")[1].split(" ")[0]
    return catalog.node(node).gpu.name


def mixed(res: dict) -> dict:
    """'physical' on the rows whose GPU carries the H200-measured constants (GH100_700W), 'now' elsewhere: a
    what-if of the Hopper rows alone (one model would need every GPU's burst rate and sustained fraction)."""
    return {rid: (res["physical"][rid] if v[3] in GH100_700W else v) for rid, v in res["now"].items()}


def summary(rows: dict, file: str | None = None) -> tuple[float, float, float, int]:
    e = [p / pub - 1 for p, pub, f, _ in rows.values() if p and (file is None or f == file)]
    a = [abs(x) for x in e]
    return (100 * statistics.mean(a), 100 * max(a), 100 * statistics.mean(e), len(e)) if e else (0, 0, 0, 0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--with-recipes", action="store_true")
    ap.add_argument("--variant", choices=VARIANTS, help="internal: print one variant's predictions as JSON")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.variant:
        print(json.dumps({"runs": predictions(args.variant, args.with_recipes), "steps": step_predictions(args.variant)}))
        return 0
    res, steps = {}, {}
    for v in VARIANTS:
        cmd = [sys.executable, __file__, "--variant", v] + (["--with-recipes"] if args.with_recipes else [])
        res[v], steps[v] = (lambda d: (d["runs"], d["steps"]))(
            json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    res["physical GH100 only"] = mixed(res)
    names = [*VARIANTS, "physical GH100 only"]
    files = sorted({f for _, _, f, _ in res["now"].values()})
    lines = [f"# What-if: GEMM constants at their clocks ({'calibration + recipe runs' if args.with_recipes else 'calibration runs'})",
             "", "`python benchmarks/clock_whatif.py" + (" --with-recipes`" if args.with_recipes else "`")
             + " (variants: see the script's docstring). Tokens/s per GPU, error = predicted / published - 1.", "",
             "| set | " + " | ".join(f"{v}: mean abs / worst / signed" for v in names) + " |",
             "|---|" + "---:|" * len(names)]
    for f in [None, *files]:
        cells = []
        for v in names:
            m, w, s, n = summary(res[v], f)
            cells.append(f"{m:.1f}% / {w:.1f}% / {s:+.1f}% (n={n})")
        lines.append(f"| {f or 'all'} | " + " | ".join(cells) + " |")
    lines += ["", "| run | file | GPU | " + " | ".join(VARIANTS) + " |", "|---|---|---|" + "---:|" * len(VARIANTS)]
    for rid, (p, pub, f, gpu) in res["now"].items():
        cells = [f"{100 * (res[v][rid][0] / pub - 1):+.1f}%" if res[v][rid][0] else "-" for v in VARIANTS]
        lines.append(f"| {rid} | {f} | {gpu} | " + " | ".join(cells) + " |")
    lines += ["", "One-H200 training step (benchmarks/step_device/h200.json; measured throttled: SW power cap from the first "
              "steps, benchmarks/clock_device_results.md): predicted ms (error)", "",
              "| recompute, mbs x seq | measured | " + " | ".join(VARIANTS) + " |", "|---|---:|" + "---:|" * len(VARIANTS)]
    for key, (_, meas) in steps["now"].items():
        lines.append(f"| {key} | {1e3 * meas:.1f} | " + " | ".join(
            f"{1e3 * steps[v][key][0]:.1f} ({100 * (steps[v][key][0] / meas - 1):+.0f}%)" for v in VARIANTS) + " |")
    text = "\n".join(lines) + "\n"
    if args.out:
        from planner.atomic import write_atomic

        write_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
