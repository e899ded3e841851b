"""The MLPerf Training rows of benchmarks/recipe_runs.yaml (ids mlperf3.0-* .. mlperf5.1-*): the planner's step against
the logged one, term by term, and (with --logs) the logged step times read again from the result files.

    python benchmarks/mlperf_train_check.py [--logs OWNER/NAME=GIT_DIR ...]

Each row's step time is the median of the `train_step_time` values of its result file after the first (the MLPerf NeMo
implementation's DeltaTimingCallback logs one step's wall time every LOG_EVERY_N_STEPS steps; custom_callbacks.py). The
GPT-3 logs (v3.0-v4.1) carry NeMo's per-step `train_step_timing` in `tracked_stats` instead; where a log has no step
timing at all (v4.0 NVIDIA, LOG_METRICS=OFF) the step is the median over the blocks after the first of
(block_stop - block_start) / steps in the block, a block's epoch_count being its tokens.
--logs names a local clone (or bare mirror) of mlcommons/training_results_v3.0 .. v5.1; the rows' `source.path` and
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


def mlperf_rows(path: Path = HERE / "recipe_runs.yaml") -> list[dict]:
    """The rows whose id starts with 'mlperf'."""
    return [r for r in yaml.safe_load(path.read_text()) if str(r.get("id", "")).startswith("mlperf")]


def _mllog(text: str):
    """The :::MLLOG records of a result file, in order."""
    for line in text.splitlines():
        i = line.find(":::MLLOG ")
        if i >= 0:
            yield json.loads(line[i + len(":::MLLOG "):])


def logged_value(text: str, key: str):
    """The value of the first MLLOG record with this key (e.g. global_batch_size), None if absent."""
    return next((rec.get("value") for rec in _mllog(text) if rec.get("key") == key), None)


def logged_step_times(text: str) -> list[float]:
    """Per-step times of a result file in log order, each (step, value) once (some files print a line twice): the
    value's `train_step_time` (Llama 3.1 logs) or `train_step_timing` / `train_step_timing in s` (GPT-3 tracked_stats)."""
    seen, out = set(), []
    for rec in _mllog(text):
        value = rec.get("value")
        if not isinstance(value, dict):
            continue
        name = next((k for k in value if k.startswith("train_step_tim")), None)
        key = ((rec.get("metadata") or {}).get("step"), value.get(name))
        if name is None or key in seen:
            continue
        seen.add(key)
        out.append(float(value[name]))
    return out


def logged_block_step_times(text: str, gbs: int, seq: int) -> list[float]:
    """Per-block step times in log order: (block_stop - block_start) / steps, the block's steps being its
    epoch_count (tokens) / (GBS x seq); evaluation runs between blocks and is not counted."""
    starts, out = {}, []
    for rec in _mllog(text):
        meta = rec.get("metadata") or {}
        if rec.get("key") == "block_start":
            starts[meta.get("first_epoch_num")] = (rec["time_ms"], meta["epoch_count"])
        elif rec.get("key") == "block_stop" and meta.get("first_epoch_num") in starts:
            t0, tokens = starts.pop(meta["first_epoch_num"])
            out.append((rec["time_ms"] - t0) / 1000 / (tokens / (gbs * seq)))
    return out


def step_times(text: str, gbs: int, seq: int) -> tuple[list[float], str]:
    """(times, 'steps') from the per-step timings, else (times, 'blocks') from the blocks."""
    steps = logged_step_times(text)
    return (steps, "steps") if steps else (logged_block_step_times(text, gbs, seq), "blocks")


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
    """Rows whose log states another GBS, whose logged median differs from the row's iteration_time_s (relative 1e-4),
    or whose GBS x seq / median / GPUs differs from its tokens_per_sec_per_gpu (0.1 tok/s)."""
    bad = []
    for run in rows:
        src = run["source"]
        if src["repo"] not in repos:
            continue
        text = subprocess.run(["git", f"--git-dir={repos[src['repo']]}", "show", f"{src['commit']}:{src['path']}"],
                              capture_output=True, text=True, check=True).stdout
        gbs, seq = run["parallel"]["global_batch_size"], run["model"]["seq_length"]
        if logged_value(text, "global_batch_size") != gbs:
            bad.append(f"{run['id']}: log global_batch_size {logged_value(text, 'global_batch_size')}, file {gbs}")
        med = steady_median(step_times(text, gbs, seq)[0])
        me = run["measured"]
        tok = gbs * seq / med / run["hardware"]["num_gpus"]
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
