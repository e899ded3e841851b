"""The 26.06 gpt-oss 120B rows of Megatron-Bridge's performance summary archive (section '26.06 NeMo
Container', presets at tag v0.5.0) evaluated as variants of the 26.04 BF16 rows of recipe_runs.yaml,
without adding them to that file: B300 MXFP8 with the 26.04 plan unchanged (GPT_OSS_120B_PRETRAIN_CONFIG_
B300_FP8_MX_V2 = B300_BF16_V2: EP8, HybridEP, TE CUDA graphs of attn / router / preprocess, the unfused
TEGroupedMLP), and GB200 / GB300 MXFP8 with the fused grouped MLP (cutedsl_fused_grouped_mlp), full-iteration
CUDA graphs, HybridEP and all-to-all overlap (GB200 EP64 without recompute, GB300 EP16). The fused MLP itself
is not expressed here (its epilogue is still charged). Run: `python benchmarks/gptoss_2606_check.py`."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import accuracy  # noqa: E402

BASE = "mbridge26.04-{}-bf16-gpt-oss-120b-64gpu"
# (label, 26.04 row's node, published 26.06 tokens/s/GPU, changes to the row's `parallel` block)
VARIANTS = (
    ("B300 MXFP8 EP8, 26.04 plan (unfused MLP)", "b300", 18534, {}),
    ("GB200 MXFP8 EP64, fused MLP, full graphs", "gb200", 28947,
     {"recompute": None, "recompute_modules": None, "cuda_graphs": "full_iteration", "moe_dispatcher": "hybridep",
      "moe_a2a_overlap": True}),
    ("GB300 MXFP8 EP16, fused MLP, full graphs", "gb300", 33166,
     {"ep": 16, "cuda_graphs": "full_iteration", "moe_dispatcher": "hybridep", "moe_a2a_overlap": True}),
)


def variant(base: dict, published: float, changes: dict) -> dict:
    run = copy.deepcopy(base)
    run["id"] = base["id"].replace("26.04", "26.06").replace("bf16", "fp8mx")
    run["parallel"]["precision"] = "MXFP8"
    run["parallel"].update({k: v for k, v in changes.items() if v is not None})
    for key in (k for k, v in changes.items() if v is None):
        run["parallel"].pop(key, None)
    run["measured"] = {"tokens_per_sec_per_gpu": published, "tflops_per_gpu": None}
    run["notes"] = "26.06 variant; MoE rows: forced-balanced routing"
    return run


def main() -> int:
    runs = {r["id"]: r for r in yaml.safe_load((HERE / "recipe_runs.yaml").read_text())}
    print("| row | published | predicted | error | ns per token-layer missing |\n|---|---:|---:|---:|---:|")
    for label, node, published, changes in VARIANTS:
        base = runs[BASE.format(node)]
        layers = base["model"]["layers"]
        for name, run in ((f"{node.upper()} BF16 26.04 (as filed)", base), (label, variant(base, published, changes))):
            row = accuracy.evaluate(run, "recipe_runs.yaml")
            missing = (1 / row["published"] - 1 / row["predicted"]) / layers * 1e9
            print(f"| {name} | {row['published']:,.0f} | {row['predicted']:,.0f} | {row['error']:+.1%} | {missing:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
