"""The same MoE models and layouts across software releases: published tokens/s per GPU vs the
planner's estimate, to tell a model error from a release-to-release change of the stack.

    python benchmarks/moe_release_check.py [--out benchmarks/moe_release_check.md]

Each row takes a calibration run of `modern_runs.yaml` (model shape, node, runtime as
benchmarks/calibration_runs.py builds it) and changes only what the other release changed (layout,
batch, precision, GPU, EP overlap), as printed in the Megatron-Bridge performance summary archive
(NVIDIA-NeMo/Megatron-Bridge docs/performance-summary-archive.md, section named per row) and, for
the EP-overlap and recompute settings, its recipe file of that release (scripts/performance/configs/*,
scripts/performance/run_script.py). The
planner has no dispatcher backend (NCCL all-to-all vs DeepEP / HybridEP), token dropping or CUDA
graph setting: rows that differ only in those get the same estimate. Not used to fit anything.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import yaml

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
import calibration_runs  # noqa: E402

from planner.estimate.evaluate import estimate  # noqa: E402

HERE = Path(__file__).resolve().parent
RUNS = HERE.parent.parent / "shared" / "calibration" / "modern_runs.yaml"
H100 = "NVIDIA H100-SXM5-80GB (DGX H100)"
Q30 = "mbridge25.11-h100-qwen3-30b-a3b"
Q235 = "mbridge25.11-gb200-qwen3-235b-a22b"
DSV3 = "dgxc-h100-bf16-deepseek-v3-512gpu"

# (base run, release section, what the release ran, published tok/s/GPU, overlap, overrides)
ROWS = [
    (Q30, "25.11 DGX-H100", "pp2 vp24 ep8 mbs2 gbs512, dropless, all-to-all, EP overlap", 5275, True, {}),
    (Q30, "25.09 DGX-H100", "same layout, token drop, all-to-all, no EP overlap (v0.1.0rc4 recipe)", 10494, False, {}),
    (Q30, "26.02 DGX-H100", "pp2 vp12 ep8 mbs1 gbs1024, EP overlap", 5113, True,
     dict(virtual_pipeline_stages=12, micro_batch_size=1, global_batch_size=1024)),
    (Q30, "26.02.01 DGX-H100", "pp2 vp12 ep8 mbs1 gbs1024, DeepEP, EP overlap (v0.3.0 recipe)", 9058, True,
     dict(virtual_pipeline_stages=12, micro_batch_size=1, global_batch_size=1024)),
    (Q30, "26.04.01 DGX-H100", "pp1 ep16 mbs1 gbs1024, HybridEP, no EP overlap (v0.4.0 recipe)", 8960, False,
     dict(pp=1, virtual_pipeline_stages=None, micro_batch_size=1, global_batch_size=1024, dp=16, ep=16)),
    (Q235, "25.11 DGX-H100", "FP8-CS tp2 pp8 vp4 ep32 gbs2048, EP overlap", 1575, True,
     dict(gpu=H100, precision="FP8-CS", tp=2, virtual_pipeline_stages=4, dp=16, global_batch_size=2048,
          sequence_parallel=True)),
    (Q235, "25.09 DGX-H100", "same layout, token drop, no EP overlap (v0.1.0rc4; precision not printed, FP8-CS assumed)",
     1204, False,
     dict(gpu=H100, precision="FP8-CS", tp=2, virtual_pipeline_stages=4, dp=16, global_batch_size=2048,
          sequence_parallel=True)),
    (Q235, "25.11 DGX-GB200", "BF16 pp8 vp3 ep32 (the calibration run)", 4916, False, {}),
    (DSV3, "25.09 DGX-H100", "FP8-CS 1024 GPUs tp2 pp8 vp4 ep64 gbs8192, DeepEP, EP overlap, recompute "
     "mla_up_proj + mlp (recipe DEEPSEEK_V3 H100 at 5776a6d90)", 1297, True,
     dict(precision="FP8-CS", tp=2, pp=8, virtual_pipeline_stages=4, ep=64, dp=64, global_batch_size=8192,
          recompute="selective", recompute_modules=["mla_up_proj", "mlp"])),
    (DSV3, "DGX Cloud 25.04 (the calibration run)", "BF16 512 GPUs tp2 pp8 ep64 gbs4096", 669.4, False, {}),
]


def predict(base: dict, overlap: bool, over: dict) -> float:
    run = copy.deepcopy(base)
    over = dict(over)
    if "gpu" in over:
        run["hardware"]["gpu"] = over.pop("gpu")
    modules = over.pop("recompute_modules", None)
    run["parallel"].update(over)
    p = run["parallel"]
    run["hardware"]["num_gpus"] = p["dp"] * (p.get("tp") or 1) * (p.get("pp") or 1) * (p.get("cp") or 1)
    run["notes"] = "moe_a2a_overlap=True" if overlap else ""
    sc, plan, _, _ = calibration_runs.build(run)
    if modules:
        sc = sc.model_copy(update={"runtime": sc.runtime.model_copy(update={"recompute_modules": modules})})
    return estimate(sc, plan.resolved(sc))["throughput"]["tokens_per_s_per_gpu"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=HERE / "moe_release_check.md")
    args = ap.parse_args(argv)
    runs = {r["id"]: r for r in yaml.safe_load(RUNS.read_text())}
    lines = ["# Same MoE model and layout across Megatron-Bridge releases", "",
             "`python benchmarks/moe_release_check.py` (see its docstring). Published: the archive's "
             "tokens/s/GPU; predicted: `planner.estimate` on the row's plan.", "",
             "| model | release | what ran | EP overlap | published | predicted | error |",
             "|---|---|---|---|---:|---:|---:|"]
    for base, release, what, published, overlap, over in ROWS:
        pred = predict(runs[base], overlap, over)
        name = runs[base]["model"]["name"]
        lines.append(f"| {name} | {release} | {what} | {'on' if overlap else 'off'} | {published:,} | "
                     f"{pred:,.0f} | {pred / published - 1:+.1%} |")
    lines += ["", "Reading: identical layouts ran up to 2x apart between releases (Qwen3-30B-A3B on 16 H100: "
              "25.09 without EP overlap vs 25.11 / 26.02 with it, and 26.02 vs 26.02.01 with DeepEP), so "
              "no single time model can match every row; the calibration run of 25.11 is the slow end. "
              "Without EP overlap the Megatron-Bridge rows are within 10% except the EP16 HybridEP one (a "
              "node-deduplicating dispatcher the planner does not model); the DGX Cloud DeepSeek-V3 run "
              "stays too fast (not explained here). With EP overlap the "
              "paired-phase model (comm.ep_overlap_pair_exposed_s) reproduces the DeepSeek-V3 row, whose "
              "inter-node all-to-alls outlast the compute they pair with; the Qwen3 rows ran slower than "
              "it predicts, i.e. those stacks hid less all-to-all than the schedule allows. Not changed "
              "here: no published measurement says where that time goes."]
    text = "\n".join(lines) + "\n"
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
