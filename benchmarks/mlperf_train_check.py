"""The MLPerf Training rows of benchmarks/recipe_runs.yaml (ids mlperf5.0-*, mlperf5.1-*): the planner's step against
the logged one, term by term, and (with --logs) the logged step times read again from the result files.

    python benchmarks/mlperf_train_check.py [--logs OWNER/NAME=GIT_DIR ...]

Each row's step time is the median of the `train_step_time` values of its result file after the first (the MLPerf NeMo
implementation's DeltaTimingCallback logs one step's wall time every LOG_EVERY_N_STEPS steps; custom_callbacks.py).
--logs names a local clone (or bare mirror) of mlcommons/training_results_v5.0 / v5.1; the rows' `source.path` and
`source.commit` are read from it with `git show` and the median is recomputed and compared with the row's
`measured.iteration_time_s` (a mismatch is reported and the exit code is 1). Without --logs only the model side runs.
Nothing is fitted here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import calibration_runs  # noqa: E402

SEQ = 8192  # MLPerf llama31_8b / llama31_405b: max_sequence_length 8192 (the logs' MLLOG max_sequence_length)


def mlperf_rows(path: Path = HERE / "recipe_runs.yaml") -> list[dict]:
    """The rows whose id starts with 'mlperf'."""
    return [r for r in yaml.safe_load(path.read_text()) if str(r.get("id", "")).startswith("mlperf")]


def logged_step_times(text: str) -> list[float]:
    """train_step_time values of a result file in log order, each (step, value) once (some files print a line twice)."""
    seen, out = set(), []
    for line in text.splitlines():
        i = line.find(":::MLLOG ")
        if i < 0 or "train_step_time" not in line:
            continue
        rec = json.loads(line[i + len(":::MLLOG "):])
        value = (rec.get("value") or {}).get("train_step_time")
        key = ((rec.get("metadata") or {}).get("step"), value)
        if value is None or key in seen:
            continue
        seen.add(key)
        out.append(float(value))
    return out


def steady_median(values: list[float]) -> float:
    """Median after the first logged value (the first interval holds the CUDA-graph capture and warm-up)."""
    if len(values) < 2:
        raise ValueError(f"expected at least 2 train_step_time entries, got {len(values)}")
    return statistics.median(values[1:])


def model_row(run: dict) -> dict:
    """Published and predicted step and tokens/s per GPU, and the step's terms."""
    sc, plan, node, r, published = calibration_runs.estimated(run)
    n = run["hardware"]["num_gpus"]
    step = r["time"]["step_s"]
    return {"id": run["id"], "gpus": n, "ga": int(plan.ga), "published_s": run["measured"]["iteration_time_s"],
            "predicted_s": step, "published_tok": published, "predicted_tok": r["throughput"]["tokens_per_s_per_gpu"],
            "terms": {k: v for k, v in r["time"]["breakdown_s"].items() if v > 0}}


def check_logs(rows: list[dict], repos: dict[str, str]) -> list[str]:
    """Rows whose logged median differs from the row's iteration_time_s (relative 1e-4), or whose GBS x seq / median /
    GPUs differs from its tokens_per_sec_per_gpu (0.1 tok/s)."""
    bad = []
    for run in rows:
        src = run["source"]
        if src["repo"] not in repos:
            continue
        text = subprocess.run(["git", f"--git-dir={repos[src['repo']]}", "show", f"{src['commit']}:{src['path']}"],
                              capture_output=True, text=True, check=True).stdout
        med = steady_median(logged_step_times(text))
        me = run["measured"]
        tok = run["parallel"]["global_batch_size"] * SEQ / med / run["hardware"]["num_gpus"]
        if abs(med / me["iteration_time_s"] - 1) > 1e-4 or abs(tok - me["tokens_per_sec_per_gpu"]) > 0.1:
            bad.append(f"{run['id']}: log median {med:.5f} s, file {me['iteration_time_s']} s / {me['tokens_per_sec_per_gpu']}")
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logs", nargs="*", default=[], metavar="OWNER/NAME=GIT_DIR")
    args = ap.parse_args(argv)
    repos = {}
    for item in args.logs:
        if "=" not in item:
            print(f"--logs: expected OWNER/NAME=GIT_DIR, got '{item}'", file=sys.stderr)
            return 2
        name, path = item.split("=", 1)
        repos[name] = path
    rows = mlperf_rows()
    print("| run | GPUs | ga | published step s | predicted step s | tok/s/GPU error | predicted terms (s) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for run in rows:
        m = model_row(run)
        terms = ", ".join(f"{k} {v:.4f}" for k, v in m["terms"].items())
        print(f"| {m['id']} | {m['gpus']} | {m['ga']} | {m['published_s']:.4f} | {m['predicted_s']:.4f} | "
              f"{m['predicted_tok'] / m['published_tok'] - 1:+.1%} | {terms} |")
    bad = check_logs(rows, repos) if repos else []
    for line in bad:
        print("MISMATCH", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
