"""Training attention core: the planner's per-layer times against NVIDIA's measured cuDNN SDPA kernels.

Data: benchmarks/cudnn_sdpa_measured.csv, the bf16 causal rows (non-deterministic backward) of the
cudnn-frontend SDPA training benchmark (benchmark/sdpa_benchmark_training/results at commit 3929da2e):
gpt-oss's attention shape with a sliding window (head dim 64; 128 keys on GB200 / GB300, cuDNN 9.22;
1,024 keys on H200, cuDNN 9.19) and Llama 3.1's full causal attention (64 / 8 heads of 128). Model: one
layer of the same shape through planner.estimate.compute.layer_costs (tp 1, micro-batch = the
benchmark's batch): a windowed layer's 'attn_window_*', a full one's 'attn_full_*'.

Run: python benchmarks/window_attn_check.py [--out benchmarks/window_attn_results.md]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from planner.atomic import write_atomic  # noqa: E402
from planner.estimate import compute, table  # noqa: E402
from planner.estimate.evaluate import Context  # noqa: E402
from planner.spec.scenario import Scenario  # noqa: E402
from planner.catalog import node as catalog_node  # noqa: E402

DATA = HERE / "cudnn_sdpa_measured.csv"
NODES = {"gb200": "gb200-nvl72", "gb300": "gb300-nvl72", "h200": "hgx-h200"}


def measured_rows(path: Path = DATA) -> list[dict]:
    """The CSV's rows (comment lines skipped), numbers converted."""
    with open(path) as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    for r in rows:
        for k in ("batch", "seq", "q_heads", "kv_heads", "head_dim"):
            r[k] = int(r[k])
        r["window"] = int(r["window"]) if r["window"] else None
        r["time_ms"] = float(r["time_ms"])
    return rows


def layer_times_ms(r: dict) -> dict:
    """The planner's forward and backward milliseconds of one attention layer of the row's shape."""
    h, d = r["q_heads"], r["head_dim"]
    model = {"name": "sdpa-shape", "layers": 2, "hidden": h * d, "heads": h, "kv_heads": r["kv_heads"],
             "head_dim": d, "ffn_hidden": 4 * h * d, "vocab": 32000}
    if r["window"]:
        model.update(sliding_window=r["window"], sliding_window_layers=1)
    sc = Scenario.model_validate({
        "name": "sdpa", "model": model,
        "cluster": {"node": catalog_node(NODES[r["gpu"]]), "nodes": 1},
        "training": {"seq_len": r["seq"], "global_batch": r["batch"], "tokens": 1e9}})
    t = table.from_plans([dict(framework="megatron", precision="bf16", dp=1, tp=1, pp=1, cp=1, ep=1, vpp=1, sp=False,
                               zero=1, offload="none", offload_params="none", recompute="none", mbs=r["batch"],
                               ga=1)])
    u = compute.layer_costs(Context(sc), t)
    kind = "window" if r["window"] else "full"
    return {p: float(u[f"attn_{kind}_{p}"][0]) * 1e3 for p in ("fwd", "bwd")}


def compared() -> list[dict]:
    """Every measured row with the model's time and the error (model / measured - 1)."""
    out = []
    for r in measured_rows():
        model = layer_times_ms(r)[r["pass"]]
        out.append({**r, "model_ms": model, "error": model / r["time_ms"] - 1})
    return out


def report(rows: list[dict]) -> str:
    lines = ["# Attention core in training: model vs NVIDIA's measured cuDNN SDPA", "",
             "Rerun: `python benchmarks/window_attn_check.py` (data and model: its docstring). Error = model / "
             "measured - 1 (negative: the model is faster than the kernel). Per-token cost = measured time / "
             "(batch x seq x query heads).", "",
             "| GPU | cuDNN | shape (heads q/kv x d) | window | seq | pass | measured ms | model ms | error | "
             "measured ns per token and head |",
             "|---|---|---|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        per = r["time_ms"] * 1e6 / (r["batch"] * r["seq"] * r["q_heads"])
        lines.append(f"| {r['gpu']} | {r['cudnn']} | {r['q_heads']}/{r['kv_heads']} x {r['head_dim']} | "
                     f"{r['window'] or 'full'} | {r['seq']:,} | {r['pass']} | {r['time_ms']:.3f} | "
                     f"{r['model_ms']:.3f} | {100 * r['error']:+.1f}% | {per:.3f} |")
    lines += ["", "Mean error by group (signed):", "", "| GPU | layer | pass | rows | mean error |", "|---|---|---|---:|---:|"]
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["gpu"], f"window {r['window']}" if r["window"] else "full causal", r["pass"]),
                          []).append(r["error"])
    for (gpu, kind, p), errs in groups.items():
        lines.append(f"| {gpu} | {kind} | {p} | {len(errs)} | {100 * sum(errs) / len(errs):+.1f}% |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here (default: print it)")
    args = ap.parse_args(argv)
    text = report(compared())
    if args.out is None:
        print(text)
    else:
        write_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
