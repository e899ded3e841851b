"""The same MoE models and layouts across software releases: published tokens/s per GPU vs the
planner's estimate, to tell a model error from a release-to-release change of the stack.

    python benchmarks/moe_release_check.py [--out benchmarks/moe_release_check.md]

Each row takes a calibration run of `modern_runs.yaml` or a row of `benchmarks/recipe_runs.yaml` (model
shape, node, runtime as benchmarks/calibration_runs.py builds it) and changes only what the other
release changed (layout, batch, precision, GPU, EP overlap, dispatcher, CUDA graph scope), as printed
in the Megatron-Bridge performance summary archive (NVIDIA-NeMo/Megatron-Bridge
docs/performance-summary-archive.md, section named per row) and, for the EP-overlap and recompute
settings, its recipe file of that release (scripts/performance/configs/*, scripts/performance/run_script.py).
The DGX-B200 rows named by a pull request take the step time or model TFLOP/s its description states
(Megatron-Bridge PR #1760: Qwen3-235B-A22B step times before / after; PR #2499: Qwen3-30B-A3B model
TFLOP/s, turned into tokens/s with the FLOP per token of the 25.11 table's own row, 214 / 9,299). The
planner knows no dispatcher, token-dropping or CUDA graph setting beyond the runtime keys the run files
carry (moe_dispatcher, moe_pad_to_capacity, cuda_graphs): rows that differ only in other settings get the
same estimate. Not used to fit anything.
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
RECIPES = HERE / "recipe_runs.yaml"
H100 = "NVIDIA H100-SXM5-80GB (DGX H100)"
Q30 = "mbridge25.11-h100-qwen3-30b-a3b"
Q235 = "mbridge25.11-gb200-qwen3-235b-a22b"
DSV3 = "dgxc-h100-bf16-deepseek-v3-512gpu"
# 25.09 token drop: Megatron-Bridge apply_moe_token_drop (capacity factor 1.0, padded to capacity), as the
# 25.09 rows of recipe_runs.yaml carry it (runtime moe_pad_to_capacity, model moe.capacity_factor)
TOKEN_DROP = dict(moe_pad_to_capacity=True, capacity_factor=1.0)
B_Q30 = "mbridge25.11-b200-fp8mx-qwen3-30b-8gpu"      # recipe_runs.yaml
B_Q30_PAD = "mbridge25.09-b200-fp8-qwen3-30b-8gpu"
B_Q235 = "mbridge25.11-b200-fp8mx-qwen3-235b-64gpu"
B_OSS = "mbridge25.11-b200-bf16-gpt-oss-120b-64gpu"
GRAPHS_ATTN = "transformer_engine [attn, moe_router, moe_preprocess]"
STEP_TOKENS_64 = 1024 * 4096 / 64  # Qwen3-235B-A22B B200 rows: global batch 1,024 x 4,096 tokens on 64 GPUs

# (base run, release section, what the release ran, published tok/s/GPU, overlap, overrides)
ROWS = [
    (Q30, "25.11 DGX-H100", "pp2 vp24 ep8 mbs2 gbs512, dropless, all-to-all, EP overlap (as printed)", 5275, True, {}),
    (Q30, "25.11 DGX-H100 as its recipe sets it", "pp2 vp12 ep8 mbs1 gbs512: QWEN3_30B_A3B_H100_FP8_CS_BASE_CONFIG at "
     "v0.2.0 sets no micro_batch_size (WorkloadBaseConfig default 1)", 5275, True,
     dict(virtual_pipeline_stages=12, micro_batch_size=1, grad_accum_steps=64)),
    (Q30, "25.09 DGX-H100", "pp2 vp12 ep8 mbs2 gbs512, token drop, all-to-all, no EP overlap (v0.1.0rc4 perf_matrix; "
     "the table prints vp 24)", 10494, False, dict(TOKEN_DROP, virtual_pipeline_stages=12)),
    (Q30, "26.02 DGX-H100", "pp2 vp12 ep8 mbs1 gbs1024, EP overlap", 5113, True,
     dict(virtual_pipeline_stages=12, micro_batch_size=1, global_batch_size=1024)),
    (Q30, "26.02.01 DGX-H100 as printed", "pp2 vp12 ep8 mbs1 gbs1024, DeepEP, EP overlap (v0.3.0 recipe)", 9058, True,
     dict(virtual_pipeline_stages=12, micro_batch_size=1, global_batch_size=1024, moe_dispatcher="deepep")),
    (Q30, "26.02.01 DGX-H100 as the r0.3.0 branch sets it", "pp1 ep16 mbs1 gbs1024, HybridEP, no EP overlap "
     "(PR #2477, f29a269f8, on r0.3.0 after v0.3.0)", 9058, False,
     dict(pp=1, virtual_pipeline_stages=None, micro_batch_size=1, global_batch_size=1024, dp=16, ep=16,
          moe_dispatcher="hybridep")),
    (Q30, "26.04.01 DGX-H100", "pp1 ep16 mbs1 gbs1024, HybridEP, no EP overlap (v0.4.0 recipe)", 8960, False,
     dict(pp=1, virtual_pipeline_stages=None, micro_batch_size=1, global_batch_size=1024, dp=16, ep=16,
          moe_dispatcher="hybridep")),
    (Q235, "25.11 DGX-H100", "FP8-CS tp2 pp8 vp4 ep32 gbs2048, EP overlap", 1575, True,
     dict(gpu=H100, precision="FP8-CS", tp=2, virtual_pipeline_stages=4, dp=16, global_batch_size=2048,
          sequence_parallel=True)),
    (Q235, "25.09 DGX-H100", "same layout, token drop, no EP overlap (v0.1.0rc4; precision not printed, FP8-CS assumed)",
     1204, False,
     dict(gpu=H100, precision="FP8-CS", tp=2, virtual_pipeline_stages=4, dp=16, global_batch_size=2048,
          sequence_parallel=True, **TOKEN_DROP)),
    (Q235, "25.11 DGX-GB200", "BF16 pp8 vp3 ep32 (the calibration run)", 4916, False, {}),
    (DSV3, "25.09 DGX-H100", "FP8-CS 1024 GPUs tp2 pp8 vp4 ep64 gbs8192, DeepEP, EP overlap, recompute "
     "mla_up_proj + mlp (recipe DEEPSEEK_V3 H100 at 5776a6d90)", 1297, True,
     dict(precision="FP8-CS", tp=2, pp=8, virtual_pipeline_stages=4, ep=64, dp=64, global_batch_size=8192,
          recompute="selective", recompute_modules=["mla_up_proj", "mlp"], moe_dispatcher="deepep",
          routing_groups=(8, 4))),
    (DSV3, "DGX Cloud 25.04 (the calibration run)", "BF16 512 GPUs tp2 pp8 ep64 gbs4096", 669.4, False, {}),
    (DSV3, "DGX Cloud 25.04 as its recipe ran", "the same with the recipe's token drop (capacity 1.0, padded), "
     "MTP 1, recompute mla_up_proj and 7 / 6 layers on the first / last stage (benchmarks/run_errata.yaml)", 669.4,
     False, dict(recompute="selective", recompute_modules=["mla_up_proj"], pipeline_layout="Et*7|(t*8|)*6t*6mL",
                 mtp_layers=1, routing_groups=(8, 4), moe_pad_to_capacity=True, capacity_factor=1.0)),
    (B_Q30, "25.11 DGX-B200", "MXFP8 ep8 mbs1 gbs512, dropless, all-to-all, CUDA graphs router + preprocess "
     "(the recipe row)", 9299, False, {}),
    (B_Q30, "26.02 DGX-B200", "same recipe (v0.3.0 QWEN3_30B_A3B_PRETRAIN_CONFIG_B200_FP8_MX_V1)", 9691, False, {}),
    (B_Q30_PAD, "25.09 DGX-B200", "ep8 mbs1, token drop padded to capacity (the recipe row)", 18066, False, {}),
    (B_Q30, "PR #2499 (2026-02-23) DGX-B200", "MXFP8 ep8 mbs4, HybridEP, CUDA graphs attn + router + preprocess: "
     "~555 TFLOP/s", round(555 / 214 * 9299), False,
     dict(micro_batch_size=4, moe_dispatcher="hybridep", cuda_graphs=GRAPHS_ATTN)),
    (B_Q30, "PR #2499 DGX-B200", "same, BF16: ~546 TFLOP/s", round(546 / 214 * 9299), False,
     dict(micro_batch_size=4, moe_dispatcher="hybridep", cuda_graphs=GRAPHS_ATTN, precision="BF16")),
    (B_Q235, "25.11 DGX-B200", "MXFP8 pp8 vp2 ep8 gbs1024, EP overlap (the recipe row: 20.05 s per step)", 3269, True, {}),
    (B_Q235, "PR #1760 (2025-12-17) DGX-B200", "MXFP8 pp8 ep8, no VP, no EP overlap: 16.9 s per step",
     round(STEP_TOKENS_64 / 16.9), False, dict(virtual_pipeline_stages=None)),
    (B_Q235, "PR #1760 DGX-B200", "BF16 pp8 vp4 ep8, EP overlap (before): 17.2 s per step",
     round(STEP_TOKENS_64 / 17.2), True, dict(precision="BF16", virtual_pipeline_stages=4)),
    (B_Q235, "PR #1760 DGX-B200", "BF16 pp8 vp4 ep8, no EP overlap (after): 16.0 s per step",
     round(STEP_TOKENS_64 / 16.0), False, dict(precision="BF16", virtual_pipeline_stages=4)),
    (B_Q235, "26.02 DGX-B200", "MXFP8 256 GPUs pp8 ep8 gbs8192, no VP, no EP overlap (v0.3.0 V1 recipe)", 3805, False,
     dict(virtual_pipeline_stages=None, dp=32, global_batch_size=8192)),
    (B_OSS, "25.11 DGX-B200", "BF16 ep64 mbs4 gbs512 (the recipe row)", 8213, False, {}),
    (B_OSS, "25.11 DGX-B200 as printed", "the same with the table's EP 8", 8213, False, dict(ep=8)),
    (B_OSS, "26.02 DGX-B200", "BF16 ep64 mbs4 gbs1280 (v0.3.0 V1 recipe)", 8047, False, dict(global_batch_size=1280)),
]


READING = """## Reading

Same layout, different release: the Megatron-Bridge 25.11 rows that ran Megatron-Core's dropless all-to-all
dispatcher on the x86 DGX systems are the slow end of every pair, and the maintainers record them as
regressions of that release, not as what the hardware does:

* **Qwen3-30B-A3B, DGX-B200 and DGX-H100.** Megatron-Bridge issue #1998 (2026-01-20, open, labels performance /
  performance-release): "2X slower performance in QWEN3 30B on H100 and B200 with the dropless schedule compared
  to the token-drop schedule ... the perf in 25.11 is 2X slower than 25.09". The 26.02 table prints the same
  recipes at the same speed (B200 9,691, H100 5,113). The configurations that replaced them are predicted
  within 7-15%: PR #2499 (B200: HybridEP, mbs 4, attention added to the CUDA-graph scope, ~555 / 546 model
  TFLOP/s MXFP8 / BF16) +7.1% / +8.2%; 26.02.01 on H100 +2.7% as the r0.3.0 branch ran it (HybridEP, EP16,
  no VP; +14.5% with the layout the table prints); and the 25.09 token-drop rows +3.4% (B200) and -4.4% (H100,
  vp 12 as its perf_matrix sets it). Per (layer, micro-batch) the three H100 FP8-CS rows with 16 local experts
  take 16.3 (25.09, mbs 2), 16.2 (25.11 at its recipe's mbs 1) and 16.7 ms (26.02, mbs 1): the same time per
  micro-batch at half the tokens (benchmarks/moe_h100_results.md).
* **Qwen3-235B-A22B, DGX-B200.** Issue #1705 ("QWEN3 235B B200 MXFP8 performance regression"), fixed by PR #1760
  (2025-12-17): "Disable moe_a2a_overlap due to CPU overhead for BF16 and MXFP8. Disable VP for mxfp8",
  MXFP8 step 20.1 s -> 16.9 s, BF16 17.2 s -> 16.0 s. The 25.11 row (3,269 tokens/s/GPU) is the 20.05 s step,
  i.e. it ran with the recipe's EP overlap (now in the run file: +66.7%). Without the overlap the planner is
  +18.4% (MXFP8, no VP), +2.8% (BF16, VP 4), +23.2% (26.02, 256 GPUs). The planner takes EP overlap as a gain
  (+17% here); on this x86 host turning it off gained 7.5% (BF16) and, with VP off too, 19% (MXFP8).
* **GPT-OSS 120B, DGX-B200.** The row is the pinned recipe (ep64, mbs 4, gbs 512, GA 2) except for the
  table's EP 8; the 26.02 table prints the same recipe with EP 64 at 8,047 tokens/s/GPU. With EP 64 (the run
  file now) +21.5%, +24.2% for the 26.02 row; as printed (EP 8) +101%. Its bottleneck is then the inter-node
  EP all-to-all.

Run files changed with this check (benchmarks/recipe_runs.yaml, the two DGX-B200 rows above, each note citing
its sources): `accuracy.py --with-recipes` moves only those two runs, GPT-OSS 120B +101.4% -> +21.5% and
Qwen3-235B-A22B +42.1% -> +66.7%; megatron MoE bf16 24.0% -> 17.3%, MoE fp8 22.1% -> 23.1%, all 135 runs
11.5% -> 11.1%; `published_runs.yaml` (5.2%, worst 17.5%), the calibration report, the error bands and every
peak-memory figure unchanged; recipe_fits: no row out of memory (GPT-OSS at EP 64: 110 GiB, fits).

What the model would need to reproduce the regressed rows, and why it is not added: the planner already
makes every MoE layer's forward wait on the token-count copy (host.synced_host_floor, moe_sync_exposed_s)
and floors each micro-batch at its host launch time (HOST_* costs measured on an x86 host, cross-checked
with Transformer Engine issue #2053). For the B200 Qwen3-30B row to be host-bound the host would need about
155 us per local expert and expert module if all of it were exposed (benchmarks/moe_host_expert_table.md;
the model counts 19.5 us, three bare launches). The same per-expert cost, applied alike, would make the
Grace-hosted Qwen3-30B rows of that release too slow (DGX-GB200, HybridEP, which also waits on the host, mbs
4: 45 us would close its gap; DGX-GB300: already 5% too slow), although Grace issues a torch linear 2.7x
slower than the x86 host (TE #2053); and the H100 25.09 row (eager, no CUDA graphs, no wait) bounds the x86
host time of a Qwen3-30B layer and micro-batch below its measured 16.3 ms. No published measurement
(profile, host time per layer) says where the 25.11 time went; PR #1760 says only "CPU overhead". So no
term is fitted to these rows.

Checked between 25.09 (fa0315ae2) and 25.11 (5776a6d90) and found the same or too small to matter:
moe_permute_fusion, moe_grouped_gemm, moe_router_fusion (Qwen3MoEModelProvider and the perf scripts, both);
manual GC every 100 steps (both recipes); numactl NUMA binding per 4 GPUs (utils/executors.py, both);
CUDA_DEVICE_MAX_CONNECTIONS (25.09 src/megatron/bridge/recipes/run_plugins.py: unset at tp = cp = 1, CUDA's
default 8; 25.11 perf_plugins.py: 32 on Blackwell, 8 on Hopper with tp = cp = 1);
moe_router_force_load_balancing (25.11 only: random logits through RandomSTE, router.py at 92c8482e; the
expected load on the busiest of 8 GPUs is within about 1% of the mean at these token counts); the
release notes' known issues for 25.11 (docs/releases/known-issues.md: a DeepEP timeout with DeepSeek-V3 on
H100, and a TFLOP/s print for hybrid models). Software moved from Megatron-Core 0.14 / TE 2.7 / CUDA 12.9 /
PyTorch 2.8 to Megatron-Core dev 0.15 / TE 2.9 / CUDA 13.0.1 / PyTorch 2.9 (docs/releases/software-versions.md).
One 25.09 setting is not in the 25.09 run files: the 25.09 perf matrix sets cuda_graphs true for the B200 /
GB200 Qwen3 rows (scripts/performance/configs/qwen3/*.yaml at fa0315ae2 -> enable_cuda_graph, Megatron-Core
0.14's whole-layer graphs); the model's host floor does not bind on those rows, so their estimates would not
move.

Older rows (H100): the EP-overlapped Qwen3 rows ran slower than the paired-phase model
(comm.ep_overlap_pair_exposed_s) predicts. With the DeepEP / HybridEP kernels modelled as they send (each
token once per destination node and GPU, at the READMEs' measured rates: planner/estimate/ep_dedup.py,
benchmarks/ep_dedup_results.md) the EP16 HybridEP row is +3.9% (was -22.6% with every routed copy on the
NICs) and the DeepSeek-V3 DeepEP row, given its dispatcher and node-limited routing here, +22.4% (was -1.4% as
an all-to-all row; the same run as recipe_runs.yaml describes it, with the recipe's MTP module, pipeline
layout, sequence parallelism and Megatron-Bridge settings: +6.6%);
the DGX Cloud DeepSeek-V3 run stays too fast (not explained here)."""

def predict(base: dict, overlap: bool, over: dict) -> float:
    run = copy.deepcopy(base)
    over = dict(over)
    if "gpu" in over:
        run["hardware"]["gpu"] = over.pop("gpu")
    modules = over.pop("recompute_modules", None)
    if "routing_groups" in over:  # DeepSeek-V3's node-limited routing (recipe_runs.yaml router_groups)
        groups, group_topk = over.pop("routing_groups")
        run["model"]["moe"] = dict(run["model"]["moe"], router_groups=groups, router_group_topk=group_topk)
    if "mtp_layers" in over:  # the MTP modules the run trained (calibration_runs.model_of)
        run["model"]["mtp_layers"] = over.pop("mtp_layers")
    if "capacity_factor" in over:
        run["model"]["moe"] = dict(run["model"]["moe"], capacity_factor=over.pop("capacity_factor"))
    run["parallel"].update(over)
    p = run["parallel"]
    run["hardware"]["num_gpus"] = p["dp"] * (p.get("tp") or 1) * (p.get("pp") or 1) * (p.get("cp") or 1)
    run["notes"] = ""
    p["moe_a2a_overlap"] = overlap
    sc, plan, _, _ = calibration_runs.build(run)
    if modules:
        sc = sc.model_copy(update={"runtime": sc.runtime.model_copy(update={"recompute_modules": modules})})
    return estimate(sc, plan.resolved(sc))["throughput"]["tokens_per_s_per_gpu"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=HERE / "moe_release_check.md")
    args = ap.parse_args(argv)
    runs = {r["id"]: r for f in (RUNS, RECIPES) for r in yaml.safe_load(f.read_text())}
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
    lines += ["", READING]
    text = "\n".join(lines) + "\n"
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
