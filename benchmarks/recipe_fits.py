"""Do the published NVIDIA training recipes fit? Each run of benchmarks/recipe_runs.yaml (Megatron-Bridge
25.11 / 25.09 and NeMo 24.07 performance-summary tables, with the settings of the recipe files) is
estimated with `planner.estimate` on its exact model, catalog node, plan and `runtime:` block, built as
for the calibration runs (benchmarks/calibration_runs.py).

    python benchmarks/recipe_fits.py [--runs FILE ...] [--out benchmarks/recipe_fits.md]

Default runs: benchmarks/recipe_runs.yaml and benchmarks/memory_runs.yaml (published runs with a measured
peak memory: torchtitan's H100 benchmarks and a Megatron-Bridge MoE run), whose peaks are compared too.

Every recipe ran, so a verdict of `oom`, or a predicted peak above the GPU's memory even when the
error band keeps the verdict `tight`, is a defect of the memory model to explain; the report lists
them first. Tokens/s per GPU are compared with the published figure where the source gives one
(error = predicted/published - 1); the rows of NeMo's recommended-config tables are memory checks only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import yaml

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
import accuracy  # noqa: E402
import calibration_runs  # noqa: E402

from planner.errors import InputError
from planner.estimate.evaluate import estimate
from planner.spec.scenario import Runtime

HERE = Path(__file__).resolve().parent
DEFAULT_RUNS = [HERE / "recipe_runs.yaml", HERE / "memory_runs.yaml"]

# Rows of the same tables the planner cannot express, left out of recipe_runs.yaml (see its header).
NOT_EXPRESSIBLE = [
    "Kimi-K2 (Muon optimizer); the MoE rows of 26.06 and later (v0.5.0 presets: FP8 attention, fused CuTe-DSL "
    "grouped MLP); the 26.02.01 MoE rows (layouts its v0.3.1 presets do not have); the 26.04 / 26.04.01 NVFP4 rows "
    "(FP4 parameter gather ambiguous); two 26.02.01 GB300 Llama 3 70B rows printed with layouts that cannot have run "
    "(recipe_runs.yaml header)",
    "NVFP4 rows are estimated as fp8 with runtime fp8_recipe nvfp4 (benchmarks/gb300_fp4_results.md)",
    "MXFP8 rows are estimated as fp8 (per-tensor scaling); their 1-byte scale per 32 elements is not counted",
    "DeepSeek-V3 MTP: the rows whose source states it (25.11 B200 'w/ MTP', the 25.09 H100 layout Et|(tt|)*30mL, "
    "the 26.02 recipes) train one MTP module (model.mtp_layers 1, the recipe layout with 'm'); the 25.09 GB200/B200 "
    "rows do not state it (their Model TFLOP per token, 260, is that of the MTP rows) and keep the uniform split "
    "without MTP (benchmarks/mtp_results.md)",
    "CUDA graphs (cuda_graph_impl / scope) are read as runtime keys; only their static buffers are counted "
    "(other.cuda_graph_buffers), not the graph pools' own slack (one private pool per micro-batch in flight)",
    "Nemotron-H / Nemotron 3 (Mamba hybrids): no state-space layers in the model spec",
]


def fit_row(run: dict) -> dict:
    """One run: plan, runtime, verdict, predicted and capacity GiB, tokens/s published and predicted."""
    sc, plan, node, assumed = calibration_runs.build(run)
    me = run.get("measured") or {}
    has_tokens = any(me.get(k) for k in ("iteration_time_s", "tflops_per_gpu", "tokens_per_sec_per_gpu",
                                         "tokens_per_sec_total"))
    published = calibration_runs.published_tokens(run, sc.model)[0] if has_tokens else None
    default = Runtime()
    runtime = ", ".join(f"{k}={v}" for k, v in sc.runtime.model_dump().items() if getattr(default, k) != v) or "-"
    row = {"id": run["id"], "release": run["source"].get("release", "-"), "node": node, "runtime": runtime,
           "assumed": ", ".join(assumed) or "-", "published": published, "confidence": run.get("confidence"),
           "peak": me.get("peak_memory_gib")}
    try:
        plan = plan.resolved(sc)
        r = estimate(sc, plan)
    except InputError as exc:
        return {**row, "plan": "-", "verdict": f"rejected: {exc}", "gib": None, "capacity": None, "predicted": None,
                "error": None, "stage": None}
    m = r["memory"]
    p = plan.model_dump(exclude_defaults=True)
    text = " ".join(f"{k}{p[k]}" for k in ("tp", "pp", "vpp", "cp", "ep", "etp", "dp") if k in p)
    text += f" zero{plan.zero} mbs{plan.mbs} ga{plan.ga} {plan.precision} rc:{plan.recompute}"
    predicted = r["throughput"]["tokens_per_s_per_gpu"]
    return {**row, "plan": text, "verdict": m["verdict"], "gib": m["per_gpu_gib"], "capacity": m["capacity_gib"],
            "stage": m.get("most_loaded_rank"), "predicted": predicted,
            "error": None if published is None else predicted / published - 1}


def over_capacity(r: dict) -> bool:
    return r["gib"] is not None and r["gib"] > r["capacity"]


def memory_error(r: dict):
    return None if r["gib"] is None or r["peak"] is None else r["gib"] / r["peak"] - 1


def report(rows: list[dict], paths: list[Path]) -> str:
    ok = [r for r in rows if r["gib"] is not None]
    oom = [r for r in ok if r["verdict"] == "oom"]
    over = [r for r in ok if over_capacity(r) and r["verdict"] != "oom"]
    errs = [abs(r["error"]) for r in ok if r["error"] is not None]
    high = [abs(r["error"]) for r in ok if r["error"] is not None and r["confidence"] == "high"]
    lines = ["# Published NVIDIA recipes through `planner estimate`", "",
             f"`python benchmarks/recipe_fits.py` on {', '.join(f'`{p.name}`' for p in paths)}: "
             f"{len(rows)} published configurations "
             f"(each published as one that runs), {len(ok)} estimated; {len(errs)} with a published throughput, the others "
             "(NeMo recommended-config tables) are memory checks only.", "",
             f"**Predicted out of memory: {len(oom)}.** Predicted above the GPU's memory but `tight` within the "
             f"memory error band: {len(over)}. Fits: {sum(r['verdict'] == 'fits' for r in ok)}, "
             f"tight: {sum(r['verdict'] == 'tight' for r in ok)}.", "",
             f"Tokens/s per GPU: mean absolute error {100 * statistics.mean(errs):.1f}% over {len(errs)} runs "
             f"(high confidence: {100 * statistics.mean(high):.1f}% over {len(high)}), worst "
             f"{100 * max(errs):.1f}%. Time terms are owned elsewhere; this file is a memory check first.", ""]
    mem = [(r, memory_error(r)) for r in ok if memory_error(r) is not None]
    if mem:
        within = sum(abs(e) <= 0.10 for _, e in mem)
        lines += [f"Measured peak memory ({len(mem)} runs): within 10% on {within}, mean absolute error "
                  f"{100 * statistics.mean(abs(e) for _, e in mem):.1f}%, worst "
                  f"{100 * max((e for _, e in mem), key=abs):+.1f}%; under-predicted by more than 10%: "
                  f"{', '.join(r['id'] for r, e in mem if e < -0.10) or 'none'}.", ""]
    if oom or over:
        lines += ["## Above capacity", ""] + [f"- {r['id']}: {r['gib']:.1f} GiB of {r['capacity']:.1f} ({r['verdict']})"
                                             for r in oom + over] + [""]
    rejected = [r for r in rows if r["gib"] is None]
    if rejected:
        lines += ["## Rejected", ""] + [f"- {r['id']}: {r['verdict']}" for r in rejected] + [""]
    lines += ["## Not expressible (left out of the run file)", ""] + [f"- {x}" for x in NOT_EXPRESSIBLE] + [""]
    lines += ["## Per run", "",
              "| run | release | node | plan | runtime (non-default) | assumed | verdict | GiB / capacity | measured GiB "
              "| rank | published tok/s/GPU | predicted | error |",
              "|---|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        gib = "-" if r["gib"] is None else f"{r['gib']:.1f} / {r['capacity']:.1f}"
        pred = "-" if r["predicted"] is None else f"{r['predicted']:,.0f}"
        err = "-" if r["error"] is None else f"{100 * r['error']:+.1f}%"
        lines.append(f"| {r['id']} | {r['release']} | {r['node']} | {r['plan']} | {accuracy.md_cell(r['runtime'])} | {r['assumed']} "
                     f"| {r['verdict']} | {gib} | {measured(r)} | {r['stage'] if r['stage'] is not None else '-'} "
                     f"| {'-' if r['published'] is None else format(r['published'], ',.0f')} | {pred} | {err} |")
    return "\n".join(lines) + "\n"


def measured(r: dict) -> str:
    e = memory_error(r)
    return "-" if r["peak"] is None else f"{r['peak']:.1f}" + ("" if e is None else f" ({100 * e:+.1f}%)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=Path, action="append", help="a run file (repeatable); default: " +
                    ", ".join(p.name for p in DEFAULT_RUNS))
    ap.add_argument("--out", type=Path, default=HERE / "recipe_fits.md")
    args = ap.parse_args(argv)
    paths = args.runs or DEFAULT_RUNS
    rows = []
    for path in paths:
        try:
            runs = [r for r in (yaml.safe_load(path.read_text()) or []) if isinstance(r, dict) and "parallel" in r]
            rows += [fit_row(r) for r in runs]
        except (OSError, yaml.YAMLError, KeyError, ValueError, TypeError) as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            return 2
    text = report(rows, paths)
    accuracy.write_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
