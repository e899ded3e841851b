"""Every serving point before and after each engine-code-path change of this round, by commit.

Runs benchmarks/serve_moe_results.py's probe (serving_accuracy.run and serve_moe_rows.evaluate on the tree of each
commit, git archive) and writes benchmarks/serve_engine_paths.md: group means (mean absolute error of predicted
output tokens/s, count) and every point's signed error per commit.

    python benchmarks/serve_engine_paths.py COMMIT [COMMIT ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from serve_moe_results import at_commit, table  # noqa: E402

sys.path.insert(0, str(ROOT))
from planner.atomic import write_atomic  # noqa: E402

REPORT = ROOT / "benchmarks" / "serve_engine_paths.md"
LEGEND = {
    "9664492": "before this round",
    "285c72a": "host step overlapped by SGLang's and TensorRT-LLM's overlap schedulers (max of GPU and host "
               "step); vLLM adds it (timing.overlaps_host_step)",
    "5ee90c0": "TP all-reduce below the NCCL floor: the engine's own kernel's measured time (AIConfigurator "
               "custom_allreduce tables, H100 / H200 / B200; SGLang on MoE models: TensorRT-LLM's kernel via "
               "FlashInfer's all-reduce fusion)",
    "1f728f9": "InferenceX SGLang DeepSeek-R1 B200 FP8 and MI355X rows: FP8 KV cache, as their launch scripts at "
               "the run dates pass (point definitions)",
    "ce42853": "the engines' all-reduce tables as their lower non-decreasing envelope (the measured curves dip "
               "where a kernel choice switches)",
}
WIDE = ("rocm-", "mlperf50", "dstack", "inferencex")


def groups(commits: list[str], res: list[dict]) -> list[str]:
    """Group means per commit; keys of a point: its id, its family (serving_accuracy.family)."""
    def mae(r, keep):
        v = [abs(x[2]) for k, x in r["points"].items() if keep(k, x)]
        return f"{100 * np.mean(v):.1f}% ({len(v)})" if v else ""
    sets = [("all points", lambda k, x: True),
            ("points of earlier rounds (TensorRT-LLM / MLPerf / NIM)", lambda k, x: not k.startswith(WIDE)),
            ("vLLM / SGLang / AMD points", lambda k, x: k.startswith(WIDE)),
            ("dense FP8/BF16", lambda k, x: x[3] == "dense FP8/BF16"),
            ("dense FP4", lambda k, x: x[3] == "dense FP4"),
            ("MoE", lambda k, x: x[3] == "MoE"),
            ("MoE without the dstack rows", lambda k, x: x[3] == "MoE" and not k.startswith("dstack")),
            ("InferenceX SGLang DeepSeek-R1 (B200 / MI355X)", lambda k, x: k.startswith("inferencex")),
            ("dstack DeepSeek-R1 (SGLang / vLLM / TensorRT-LLM, early 2025)", lambda k, x: k.startswith("dstack")),
            ("ROCm vLLM 0.10 MI300X TP8", lambda k, x: k.startswith("rocm-")),
            ("all but the dstack rows", lambda k, x: not k.startswith("dstack"))]
    lines = ["| group (mean abs error, count) | " + " | ".join(commits) + " |", "|---|" + "---:|" * len(commits)]
    lines += [f"| {name} | " + " | ".join(mae(r, keep) for r in res) + " |" for name, keep in sets]
    return lines


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    res = [at_commit(c) for c in argv]
    lines = ["# Engine code paths: every serving point before and after, by commit", "",
             "Rerun: `python benchmarks/serve_engine_paths.py " + " ".join(argv) + "` (module docstring). Error of "
             "predicted output tokens/s against the published figure (positive = predicted too fast), estimated by "
             "the code at each commit.", ""]
    lines += [f"* {c}: {LEGEND.get(c, '')}" for c in argv] + [""] + groups(argv, res)
    moved = [k for k in res[-1]["points"] if k in res[0]["points"]
             and abs(res[-1]["points"][k][2] - res[0]["points"][k][2]) > 5e-4]
    closer = [k for k in moved if abs(res[-1]["points"][k][2]) < abs(res[0]["points"][k][2])]
    lines += ["", f"{len(moved)} of {len(res[-1]['points'])} points moved between {argv[0]} and {argv[-1]}, "
              f"{len(closer)} of them closer.", "", "## Every point", ""] + table(argv, res, "points")
    write_atomic(REPORT, "\n".join(lines) + "\n")
    print("\n".join(lines[:30]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
