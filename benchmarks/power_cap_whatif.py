"""What-if: the torchtitan runs on Meta's 500 W H100s under other GPU mappings (not adopted).

    python benchmarks/power_cap_whatif.py [--out benchmarks/power_cap_whatif.md]

The last section ('fa2clk alone') evaluates every training run of accuracy.py --with-recipes with only the
FlashAttention-2 cap clocked (committed GPU mappings) and lists the runs that move.

The torchtitan benchmark runs (pytorch/torchtitan benchmarks/llama3_h100_202412_torchtitan.md, Hardware: Grand
Teton, "96GB HBM2e with 2.4 TB/sec", "the default 500W power limit") are mapped by calibration_runs.node_of to the
catalog's h100-nvl entry with the stated HBM2e bandwidth. This script re-evaluates every run on that GPU (the
calibration set and the recipe files of accuracy.py --with-recipes) with the GPU replaced by:

  now      the committed mapping: h100-nvl peaks (835.5 bf16 / 1,670.5 fp8 dense), no measured MAMF (the assumed
           compute_gemm.DEFAULT_MAMF), no sustained_tensor_fraction (burst rate), HBM 2.4 TB/s
  sxm700   the h100-sxm-80gb entry (989.4 / 1,978.9 dense, measured MAMF, sustained fraction 0.825 measured at 700 W)
           with HBM 2.4 TB/s and the h100-nvl memory: the 700 W board's sustained rate, an UPPER bound for the same
           die held to 500 W
  s=0.75, s=0.70, s=0.65
           sxm700 with a lower sustained fraction: a sensitivity sweep showing what a 500 W measurement would have to
           find; no source gives that number (benchmarks/power_cap_results.md)
  +fa2clk  the same with FlashAttention-2's Hopper cap (compute_attention.FA2_HOPPER_*_OF_PEAK x the dense peak, the
           SDPA kernel torchtitan runs) taken at the row's sustained clock as the other tensor-core rates are; the
           committed cap uses the burst peak whatever the clock (fa2_clocked_rates)

Only the GPU entry changes; everything else is accuracy.evaluate as committed. Nothing in planner/ changes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import accuracy  # noqa: E402
import calibration_runs  # noqa: E402

from planner.catalog import gpu as catalog_gpu  # noqa: E402

SWEEP = (0.75, 0.70, 0.65)
VARIANTS = ("now", "sxm700", *(f"s={s:.2f}" for s in SWEEP), "sxm700+fa2clk", "s=0.70+fa2clk")


def is_grand_teton(run: dict) -> bool:
    """The runs calibration_runs.node_of maps to the 96 GB HBM2e 500 W H100."""
    return "h100-nvl" in calibration_runs.node_of(run)[1]


def variant_gpu(variant: str):
    """The GPU entry of `variant` (module docstring); None = the committed mapping."""
    now = calibration_runs.node_of({"hardware": {"gpu": "H100 96GB"}})[0].gpu
    update = {"hbm_tb_s": now.hbm_tb_s, "memory_gib": now.memory_gib, "power_w": 500}
    base = variant.split("+")[0]
    if base == "now":
        return None
    if base != "sxm700":
        update["sustained_tensor_fraction"] = float(base.split("=")[1])
    return catalog_gpu("h100-sxm-80gb").model_copy(update=update)


def fa2_clocked_rates(ctx, t, half_fps):
    """compute_attention.attention_rates with the FlashAttention-2 Hopper cap multiplied by the row's tensor_clock
    (what-if only; the same formula otherwise: compute_attention.flash_rates and fa2_capped)."""
    from planner.estimate import compute_attention as A
    clock = t["tensor_clock"] if "tensor_clock" in t else 1.0
    fwd, bwd = A.flash_rates(ctx, t, half_fps)
    return A.fa2_capped(ctx, t, fwd, bwd, (ctx.gpu.peak_tflops("bf16") or 0.0) * 1e12 * clock)


def evaluate_all(runs: list[tuple[dict, str]], variant: str) -> list[dict]:
    """accuracy.evaluate of every run with node_of's GPU replaced by variant_gpu(variant) (and, for '+fa2clk',
    compute_attention.attention_rates by fa2_clocked_rates)."""
    from planner.estimate import compute_attention
    gpu = variant_gpu(variant)
    committed, rates = calibration_runs.node_of, compute_attention.attention_rates

    def node_of(run):
        nd, note = committed(run)
        return (nd, note) if gpu is None else (nd.model_copy(update={"gpu": gpu}), f"{note} -> {variant}")

    calibration_runs.node_of = node_of
    if variant.endswith("+fa2clk"):
        compute_attention.attention_rates = fa2_clocked_rates
    try:
        return [accuracy.evaluate(r, f) for r, f in runs]
    finally:
        calibration_runs.node_of, compute_attention.attention_rates = committed, rates


def summary(rows_by_variant: dict[str, list[dict]], pick) -> list[str]:
    """'mean |error| / mean error / worst' per variant over the rows `pick` keeps."""
    cells = []
    for v in VARIANTS:
        errs = [r["error"] for r in rows_by_variant[v] if r["error"] is not None and pick(r)]
        if not errs:
            cells.append("-")
            continue
        cells.append(f"{statistics.mean(abs(e) for e in errs):.1%} / {statistics.mean(errs):+.1%} / "
                     f"{max(errs, key=abs):+.1%}")
    return cells


def report(runs: list[tuple[dict, str]], rows_by_variant: dict[str, list[dict]]) -> str:
    lines = ["# Grand Teton H100 (96 GB HBM2e, 500 W) runs under other GPU mappings (what-if, not adopted)", "",
             "Written by `python benchmarks/power_cap_whatif.py`; variants in its docstring; conclusions in",
             "`benchmarks/power_cap_results.md`. Error = predicted / published tokens/s per GPU - 1.", "",
             "| run | file | precision | published | " + " | ".join(VARIANTS) + " |",
             "|---|---|---|---:|" + "---:|" * len(VARIANTS)]
    for i, (run, file) in enumerate(runs):
        first = rows_by_variant["now"][i]
        errs = [rows_by_variant[v][i]["error"] for v in VARIANTS]
        lines.append(f"| {run['id']} | {file} | {first['family']['precision']} | {first['published']:,.1f} | "
                     + " | ".join("-" if e is None else f"{e:+.1%}" for e in errs) + " |")
    lines += ["", "Summary: mean |error| / mean error / worst", "",
              "| rows | n | " + " | ".join(VARIANTS) + " |", "|---|---:|" + "---|" * len(VARIANTS)]
    groups = [("all", lambda r: True), ("bf16", lambda r: r["family"]["precision"] == "bf16"),
              ("fp8", lambda r: r["family"]["precision"] == "fp8"),
              ("without CP >= 4", lambda r: int(r["id"].split("-cp")[1][0]) < 4 if "-cp" in r["id"] else True)]
    for name, pick in groups:
        n = sum(1 for r in rows_by_variant["now"] if r["error"] is not None and pick(r))
        lines.append(f"| {name} | {n} | " + " | ".join(summary(rows_by_variant, pick)) + " |")
    return "\n".join(lines) + "\n"


def fa2clk_alone(files: list[Path]) -> str:
    """Every training run (accuracy.py --with-recipes) as committed and with fa2_clocked_rates; the rows that move."""
    runs = accuracy.training_runs(files)
    now = [accuracy.evaluate(r, f) for r, f in runs]
    moved = evaluate_all(runs, "now+fa2clk")
    lines = ["", "## fa2clk alone: every run of accuracy.py --with-recipes, committed GPU mappings", "",
             "| run | node | now | fa2clk |", "|---|---|---:|---:|"]
    pairs = [(a, b) for a, b in zip(now, moved) if a["error"] is not None and abs(b["error"] - a["error"]) > 5e-4]
    lines += [f"| {a['id']} | {a['node']} | {a['error']:+.1%} | {b['error']:+.1%} |" for a, b in pairs] or ["| (none) | | | |"]
    legacy = sum(1 for a, _ in pairs if a["file"] == accuracy.LEGACY_FILE)
    lines.append(f"\n{len(pairs)} of {sum(1 for a in now if a['error'] is not None)} runs move by more than 0.05 "
                 f"points ({legacy} of them in {accuracy.LEGACY_FILE}).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=HERE / "power_cap_whatif.md")
    args = ap.parse_args(argv)
    files = [*accuracy.default_files(accuracy.DEFAULT_DIR), *accuracy.RECIPE_FILES]
    runs = [(r, f) for r, f in accuracy.training_runs(files) if f != accuracy.LEGACY_FILE and is_grand_teton(r)]
    rows_by_variant = {v: evaluate_all(runs, v) for v in VARIANTS}
    text = report(runs, rows_by_variant) + fa2clk_alone(files)
    accuracy.write_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
