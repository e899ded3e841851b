"""Every serving point and every other MoE row before and after each MoE change of this round, by commit.

For each commit given, the tree at that commit is exported (git archive) to a temporary directory and
benchmarks/serving_accuracy.py's points (serving_accuracy.run) and benchmarks/serve_moe_rows.py's rows (the
current file, copied in) are estimated there; the table lists the error of predicted output tokens/s
(positive = predicted too fast) per point and commit, then the group means.

    python benchmarks/serve_moe_results.py COMMIT [COMMIT ...]   # writes benchmarks/serve_moe_results.md
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "benchmarks" / "serve_moe_results.md"
PROBE = """
import json, sys
sys.path.insert(0, 'benchmarks')
import serving_accuracy as SA
import serve_moe_rows as R
pts = {r['id']: [r['measured'], r['predicted'], r['error'], SA.family(r)] for r in SA.run()}
rows = {k: v + ['MoE row'] for k, v in R.evaluate().items()}
print(json.dumps({'points': pts, 'rows': rows}))
"""


# What each commit of this round changed (shown under the table when the commit is listed).
LEGEND = {
    "359a3ca": "before this round",
    "3060e7f": "the busiest EP rank under a skewed router (routing_skew.py, AIConfigurator's power law, alpha 1.01 "
               "for every model, ASSUMED): scales the expert GEMMs' compute",
    "74a3e6d": "attention-DP MoE layers: TensorRT-LLM's all-gather + reduce-scatter (FP8 / NVFP4 gathered quantised) "
               "instead of an all-to-all (kept on MNNVL with ep > top_k)",
    "dc561be": "the busiest EP rank also moves its own routed copies (expert GEMM outputs, dispatch / combine) "
               "x its imbalance",
}


def at_commit(commit: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        (tree / "benchmarks" / "serve_moe_rows.py").write_text((ROOT / "benchmarks" / "serve_moe_rows.py").read_text())
        shared = ROOT.parent / "shared"
        if shared.exists():
            (Path(tmp) / "shared").symlink_to(shared.resolve())
        out = subprocess.run([sys.executable, "-c", PROBE], cwd=tree, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def table(commits: list[str], res: list[dict], key: str) -> list[str]:
    ids = list(res[-1][key])
    head = "| point | " + " | ".join(commits) + " |"
    lines = [head, "|---|" + "---:|" * len(commits)]
    for i in ids:
        cells = [f"{100 * r[key][i][2]:+.1f}%" if i in r[key] else "" for r in res]
        lines.append(f"| {i} | " + " | ".join(cells) + " |")
    return lines


def groups(commits: list[str], res: list[dict]) -> list[str]:
    def mae(r, key, keep):
        v = [abs(x[2]) for k, x in r[key].items() if keep(k, x)]
        return f"{100 * np.mean(v):.1f}% ({len(v)})" if v else ""
    sets = [("points: all", "points", lambda k, x: True)]
    sets += [(f"points: {f}", "points", lambda k, x, f=f: x[3] == f) for f in ("dense FP8/BF16", "dense FP4", "MoE")]
    sets += [("points: MoE without gpt-oss", "points", lambda k, x: x[3] == "MoE" and "gptoss" not in k),
             ("other MoE rows: all", "rows", lambda k, x: True),
             ("other MoE rows: without gpt-oss", "rows", lambda k, x: "gptoss" not in k)]
    lines = ["| group (mean abs error, count) | " + " | ".join(commits) + " |", "|---|" + "---:|" * len(commits)]
    lines += [f"| {name} | " + " | ".join(mae(r, key, keep) for r in res) + " |" for name, key, keep in sets]
    return lines


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    res = [at_commit(c) for c in argv]
    lines = ["# MoE serving changes: every point before and after, by commit", "",
             "Rerun: `python benchmarks/serve_moe_results.py " + " ".join(argv) + "` (module docstring). Error of "
             "predicted output tokens/s against the published figure (positive = predicted too fast), estimated by "
             "the code at each commit.", "", "## Group means", ""]
    lines += [f"* {c}: {LEGEND[c]}" for c in argv if c in LEGEND] + [""]
    lines += ["What was checked and not adopted, and the per-operation checks behind each change: the MoE round 3 "
              "paragraph of benchmarks/serving_accuracy.md, benchmarks/moe_kernel_results.md (skewed routing), "
              "benchmarks/collective_results.md (NCCL at serving sizes), benchmarks/mla_decode_results.md.", ""]
    lines += groups(argv, res)
    lines += ["", "## Points of benchmarks/serving_accuracy.md", ""] + table(argv, res, "points")
    lines += ["", "## Other rows of the performance overview's MoE columns (benchmarks/serve_moe_rows.py)", ""]
    lines += table(argv, res, "rows")
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[:20]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
