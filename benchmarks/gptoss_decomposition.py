"""The time the model misses on the Megatron MoE training rows, under several normalisations.

    python benchmarks/gptoss_decomposition.py [--out benchmarks/gptoss_decomposition.md]

For every Megatron MoE row of benchmarks/recipe_runs.yaml with a throughput figure (gpt-oss-120b,
Qwen3-30B-A3B, Qwen3-235B-A22B, DeepSeek-V3): the published step implied by its tokens/s per GPU
(the planner's step x predicted / published tokens/s, as benchmarks/accuracy.py compares them) minus the
planner's step (`time.step_s` of the scenario calibration_runs.build makes), divided by what a candidate
cause would scale with:

* per layer and micro-batch (ga x layers per GPU): a per-launch or host cost;
* per token and layer (ga x mbs x seq / cp x layers per GPU): memory-bound or other per-token work;
  / top-k gives it per routed token copy;
* per modelled attention second (attention forward + backward of the step): the attention kernel rate;
* per modelled compute second (compute + recompute of the step): a rate common to all GPU work.

The normalisation under which the missing time is most nearly constant across rows (smallest
coefficient of variation) points at the kind of work left out. Nothing is fitted here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import calibration_runs  # noqa: E402

from planner.estimate import table  # noqa: E402
from planner.estimate.evaluate import Context, estimate, layer_units  # noqa: E402

FAMILIES = {"gpt-oss": "gpt-oss-120b", "qwen3-30b": "Qwen3-30B-A3B", "qwen3-235b": "Qwen3-235B-A22B",
            "dsv3": "DeepSeek-V3"}
NORMS = ("ms_per_layer_mb", "ns_per_token_layer", "per_attention_s", "per_compute_s")


def family(run_id: str) -> str | None:
    return next((name for key, name in FAMILIES.items() if key in run_id), None)


def decompose(run: dict) -> dict | None:
    """Published and modelled step of one run and its missing seconds under each normalisation."""
    sc, plan, node, _ = calibration_runs.build(run)
    plan = plan.resolved(sc)
    me = run.get("measured") or {}
    if not any(me.get(k) for k in ("tokens_per_sec_per_gpu", "tflops_per_gpu", "iteration_time_s")):
        return None
    published, _ = calibration_runs.published_tokens(run, sc.model)
    r = estimate(sc, plan)
    predicted, step, b = r["throughput"]["tokens_per_s_per_gpu"], r["time"]["step_s"], r["time"]["breakdown_s"]
    missing = step * predicted / published - step
    ctx = Context(sc)
    unit, _ = layer_units(ctx, table.from_plans([plan]))
    layers = sc.model.layers / plan.pp
    layer_mbs = plan.ga * layers
    tokens = plan.ga * plan.mbs * ctx.seq_len / plan.cp
    attention_s = layer_mbs * float(np.ravel(unit["attn_fwd"] + unit["attn_bwd"])[0])
    return {"id": run["id"], "family": family(run["id"]), "node": node, "error": predicted / published - 1,
            "step": step, "published_step": step + missing, "missing": missing, "ep": plan.ep, "mbs": plan.mbs,
            "seq": ctx.seq_len, "ga": plan.ga, "layers": layers, "recompute": plan.recompute,
            "precision": plan.precision, "top_k": sc.model.moe.top_k,
            "ms_per_layer_mb": 1e3 * missing / layer_mbs,
            "ns_per_token_layer": 1e9 * missing / (tokens * layers),
            "per_attention_s": missing / attention_s,
            "per_compute_s": missing / (b["compute"] + b["recompute"]),
            "mfu": r["throughput"]["mfu"], "published_mfu": r["throughput"]["mfu"] * published / predicted}


def rows(path: Path = HERE / "recipe_runs.yaml") -> list[dict]:
    out = []
    for run in yaml.safe_load(path.read_text()) or []:
        if not (run.get("model") or {}).get("moe") or family(run["id"]) is None:
            continue
        if not str((run.get("parallel") or {}).get("framework", "")).lower().count("megatron"):
            continue
        try:
            d = decompose(run)
        except (TypeError, KeyError):  # a row without a usable throughput figure
            d = None
        if d is not None:
            out.append(d)
    return out


def spread(values: list[float]) -> float:
    """Coefficient of variation: standard deviation / |mean| (population)."""
    m = statistics.fmean(values)
    return statistics.pstdev(values) / abs(m) if m else float("inf")


def report(data: list[dict]) -> str:
    lines = ["| run | node | error | model step s | published step s | missing s | ep | mbs | seq | ga | layers/GPU "
             "| recompute | ms per layer-mb | ns per token-layer | per attention s | per compute s "
             "| MFU model / published |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for d in data:
        lines.append(f"| {d['id']} | {d['node']} | {100 * d['error']:+.1f}% | {d['step']:.2f} | "
                     f"{d['published_step']:.2f} | {d['missing']:+.2f} | {d['ep']} | {d['mbs']} | {d['seq']} | "
                     f"{d['ga']} | {d['layers']:g} | {d['recompute']} | {d['ms_per_layer_mb']:+.2f} | "
                     f"{d['ns_per_token_layer']:+.0f} | {d['per_attention_s']:+.2f} | {d['per_compute_s']:+.2f} | "
                     f"{100 * d['mfu']:.1f} / {100 * d['published_mfu']:.1f}% |")
    lines += ["", "Spread of each normalisation over the gpt-oss rows (coefficient of variation; smaller = more "
              "nearly constant):", "", "| rows | " + " | ".join(NORMS) + " |", "|---|" + "---:|" * len(NORMS)]
    gpt = [d for d in data if d["family"] == "gpt-oss-120b"]
    for name, sel in (("all gpt-oss", gpt), ("gpt-oss, Blackwell", [d for d in gpt if "h100" not in d["node"]])):
        cells = " | ".join(f"{spread([d[k] for d in sel]):.2f}" for k in NORMS)
        lines.append(f"| {name} ({len(sel)}) | {cells} |")
    lines += ["", "Mean per family and node (ns per token and layer; mean signed error):", "",
              "| family | node | rows | ns per token-layer | per compute s | MFU model / published | mean error |",
              "|---|---|---:|---:|---:|---:|---:|"]
    groups: dict[tuple, list[dict]] = {}
    for d in data:
        groups.setdefault((d["family"], d["node"]), []).append(d)
    for (fam, node), sel in sorted(groups.items()):
        lines.append(f"| {fam} | {node} | {len(sel)} | {statistics.fmean(d['ns_per_token_layer'] for d in sel):+.0f} | "
                     f"{statistics.fmean(d['per_compute_s'] for d in sel):+.2f} | "
                     f"{100 * statistics.fmean(d['mfu'] for d in sel):.1f} / "
                     f"{100 * statistics.fmean(d['published_mfu'] for d in sel):.1f}% | "
                     f"{100 * statistics.fmean(d['error'] for d in sel):+.1f}% |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, help="write the tables to this Markdown file (replaced)")
    args = ap.parse_args(argv)
    text = report(rows())
    if args.out:
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.out)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
