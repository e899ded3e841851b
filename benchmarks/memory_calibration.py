"""Peak memory and memory verdicts of the modern calibration runs (`modern_runs.yaml`).

    python benchmarks/memory_calibration.py [--runs PATH] [--out benchmarks/memory_calibration_results.md]

Every run is evaluated with `planner.estimate` on its model shape, GPU, parallel layout and runtime.
Two things are reported: the predicted peak per GPU against the measured one where the source
publishes it (torchtitan's memory monitor: max reserved over all ranks), and the verdict of every run,
since a run that ran must not be called oom. Knobs the source leaves null take the value printed in
the `assumed` column; the runtime keys set per run are printed in `runtime`:
  * NeMo / Megatron-Bridge recipes reduce gradients in bf16 (their performance scripts set
    grad_reduce_in_fp32 = False): runtime.grad_reduce_dtype = bf16;
  * Megatron recipes use the distributed optimizer (zero = 1); torchtitan / llm-foundry FSDP is zero 3;
  * an interleaved torchtitan schedule with no stage count given is taken as two stages per rank.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from planner.catalog import node as catalog_node  # noqa: E402
from planner.errors import InputError  # noqa: E402
from planner.estimate.evaluate import estimate  # noqa: E402
from planner.spec import Plan  # noqa: E402
from planner.spec.model import ModelSpec  # noqa: E402
from planner.spec.scenario import Scenario  # noqa: E402

DEFAULT_RUNS = HERE.parent.parent / "shared" / "calibration" / "modern_runs.yaml"
NODES = {"GB200": "gb200-nvl72", "A100": "dgx-a100-80gb", "H100": "dgx-h100"}


def model_of(run: dict) -> ModelSpec:
    m = run["model"]
    h, heads = m["hidden_size"], m["attention_heads"]
    act = str(m.get("ffn_activation") or "").lower()
    moe = None
    if m.get("moe"):
        mo = m["moe"]
        moe = {"experts": mo["num_experts"], "top_k": mo["top_k"], "expert_ffn_hidden": mo["expert_ffn_hidden_size"],
               "shared_experts": mo.get("shared_experts") or 0, "dense_layers": mo.get("dense_layers") or 0}
    mla = None
    if m.get("mla"):
        mla = {k: m["mla"][k] for k in ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
                                          "v_head_dim")}
    return ModelSpec(name=m["name"], layers=m["layers"], hidden=h, heads=heads, kv_heads=m.get("kv_heads") or heads,
                     head_dim=m.get("head_dim") or h // heads, ffn_hidden=m.get("ffn_hidden_size") or 4 * h,
                     ffn_act="swiglu" if ("swiglu" in act or ("gated" in act and "non-gated" not in act)) else "gelu",
                     vocab=m.get("vocab_size") or 51200, moe=moe, mla=mla)


def plan_of(run: dict) -> tuple[dict, dict, list[str]]:
    """(plan fields, runtime keys, assumptions) of one run."""
    p, assumed = run["parallel"], []
    fw_text = str(p.get("framework") or "").lower()
    titan = "torchtitan" in fw_text or "composer" in fw_text
    tp, pp, cp = p.get("tp") or 1, p.get("pp") or 1, p.get("cp") or 1
    gpus = run["hardware"]["num_gpus"]
    dp = gpus // (tp * pp * cp)
    rc_text = str(p.get("recompute") or "").lower()
    recompute = "full" if "full" in rc_text else "selective" if ("selective" in rc_text or "recompute_num" in rc_text) \
        else "none"
    if p.get("recompute") is None:
        assumed.append("recompute=none")
    gb = p["global_batch_size"]
    mbs = p.get("micro_batch_size")
    if mbs is None:
        mbs = 1 if (pp > 1 or not titan) else (p.get("local_batch_size") or gb // dp)
        assumed.append(f"mbs={mbs}")
    vpp = p.get("virtual_pipeline_stages") or 1
    if pp > 1 and "interleaved" in str(p.get("techniques") or "").lower() and vpp == 1:
        vpp = 2
        assumed.append("vpp=2")
    prec = "fp8" if "fp8" in str(p.get("precision") or "").lower() else "bf16"
    megatron_fsdp = "megatron-fsdp" in str(p.get("fsdp") or "").lower()
    plan = dict(framework="torchtitan" if titan else "megatron", precision=prec, dp=dp, tp=tp, pp=pp, cp=cp,
                ep=p.get("ep") or 1, vpp=vpp, zero=3 if (titan or megatron_fsdp) else 1, recompute=recompute, mbs=mbs,
                ga=max(1, gb // (mbs * dp)), sp=tp > 1)
    runtime = {} if titan else {"grad_reduce_dtype": "bf16"}
    return plan, runtime, assumed


def evaluate(run: dict) -> dict:
    hw = run["hardware"]
    node = catalog_node(next(v for k, v in NODES.items() if k in hw["gpu"]))
    if hw.get("gpu_memory_gb") == 96:  # H100 96 GB HBM2e (Grand Teton): 94.5 GiB usable assumed
        node = node.model_copy(update={"gpu": node.gpu.model_copy(update={"memory_gib": 94.5})})
    plan, runtime, assumed = plan_of(run)
    out = {"id": run["id"], "assumed": ", ".join(assumed) or "-", "runtime": ", ".join(f"{k}={v}" for k, v in runtime.items()) or "-",
           "measured": run["measured"].get("peak_memory_gib")}
    try:
        sc = Scenario(name=run["id"], model=model_of(run), runtime=runtime,
                      cluster={"node": node, "nodes": max(1, hw["num_gpus"] // node.gpus_per_node)},
                      training={"seq_len": run["model"]["seq_length"], "global_batch": run["parallel"]["global_batch_size"],
                                "tokens": 1e9})
        r = estimate(sc, Plan(**plan))
    except (InputError, ValueError) as e:
        return {**out, "verdict": "not expressible", "predicted": None, "why": str(e)[:120]}
    m = r["memory"]
    return {**out, "verdict": m["verdict"], "predicted": m["per_gpu_gib"], "capacity": m["capacity_gib"],
            "stage": m["most_loaded_stage"], "why": ""}


def report(rows: list[dict]) -> str:
    lines = ["# Peak memory of the modern calibration runs", "",
             "Generated by `benchmarks/memory_calibration.py` from `modern_runs.yaml`. GiB per GPU.", "",
             "| run | verdict | predicted | capacity | measured peak | error | assumed | runtime |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        err = f"{r['predicted'] / r['measured'] - 1:+.1%}" if r["measured"] and r["predicted"] else ""
        pred = f"{r['predicted']:.1f}" if r["predicted"] is not None else r["why"]
        lines.append(f"| {r['id']} | {r['verdict']} | {pred} | {r.get('capacity', '')} | {r['measured'] or ''} | {err} | "
                     f"{r['assumed']} | {r['runtime']} |")
    measured = [r for r in rows if r["measured"] and r["predicted"]]
    within = sum(abs(r["predicted"] / r["measured"] - 1) <= 0.10 for r in measured)
    oom = sum(r["verdict"] == "oom" for r in rows)
    lines += ["", f"Measured peaks within 10%: {within} of {len(measured)}. Runs that ran but are called oom: {oom} "
              f"of {len(rows)}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default=str(DEFAULT_RUNS))
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    rows = [evaluate(run) for run in yaml.safe_load(Path(args.runs).read_text())]
    text = report(rows)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
