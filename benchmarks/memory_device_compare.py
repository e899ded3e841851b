"""The planner's memory terms against real PyTorch steps measured on one GPU.

    python benchmarks/memory_device_compare.py [--out benchmarks/memory_device_results.md]

Reads the measurements of benchmarks/memory_device_check.py (benchmarks/memory_device/*.json, one
file per allocator setting) and evaluates the same model, micro-batch, sequence and recompute mode
with `planner.estimate` on a one-GPU node. The measured step keeps Megatron's model-state layout
(bf16 weights, fp32 gradient buffer, fp32 master weights and Adam moments: the planner's megatron
plan, zero 0) and computes like torchtitan (eager SwiGLU, F.cross_entropy on fp32 logits, torchtitan's
op-level selective checkpointing: the planner's torchtitan activations), so each measured quantity
is compared with the part that models it:
  states       memory_allocated after a step      vs weights + gradients + optimizer (megatron plan)
  transient    max_memory_allocated - states      vs activations (torchtitan plan, same recompute)
  reserved     max_memory_reserved - max_allocated vs other.fragmentation (allocator setting as measured)
  total        max_memory_reserved                vs states + transient + fragmentation
The FSDP2 measurements (benchmarks/memory_device_fsdp.py, layout 'fsdp2') are compared with a
torchtitan ZeRO-3 plan throughout: its states (fp32 sharded parameters, gradients, Adam) and its
transient = activations + other.fsdp_prefetch (the gathered units, and the reduce-scatter input
that FSDP2's own stream keeps reserved: not allocated at the peak, so compare the totals). The framework rules are not
applied: the measurement is a one-rank FSDP2 group, which the rules would not call ZeRO-3.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from planner.catalog import node as catalog_node  # noqa: E402
from planner.estimate import memory, table  # noqa: E402
from planner.estimate.evaluate import Context  # noqa: E402
from planner.spec.model import ModelSpec  # noqa: E402
from planner.spec.scenario import Scenario  # noqa: E402

GIB = 2**30
RECOMPUTE = {"none": "none", "full": "full", "tt_sac": "selective"}


def predicted(model: dict, ffn: dict, run: dict, expandable: bool, fsdp: bool = False) -> dict:
    """The planner's states, transient and fragmentation (GiB) for one measured configuration."""
    spec = ModelSpec(name="device-check", layers=model["layers"], hidden=model["hidden"], heads=model["heads"],
                     kv_heads=model["heads"], head_dim=model["head_dim"], ffn_hidden=ffn[run["act"]],
                     ffn_act=run["act"], vocab=model["vocab"], norm="layernorm")
    node = catalog_node("hgx-h200").model_copy(update={"gpus_per_node": 1})
    sc = Scenario(name="device-check", model=spec, cluster={"node": node, "nodes": 1},
                  training={"seq_len": run["seq"], "global_batch": run["mbs"], "tokens": 1e9},
                  # memory_device_check.py runs its steps eagerly (no torch.compile)
                  runtime={"expandable_segments": expandable, "compile": False})
    ctx = Context(sc)

    def mem(framework, zero):
        t = table.from_plans([dict(framework=framework, precision="bf16", dp=1, tp=1, pp=1, cp=1, ep=1, vpp=1,
                                   sp=False, zero=zero, offload="none", offload_params="none",
                                   recompute=RECOMPUTE[run["recompute"]], mbs=run["mbs"], ga=1)])
        return {k: float(v[0]) / GIB for k, v in memory.memory(ctx, t).items() if np.ndim(v)}

    states_of = lambda m: m["weights"] + m["gradients"] + m["optimizer"]  # noqa: E731
    tt = mem("torchtitan", 3 if fsdp else 0)
    states = states_of(tt) if fsdp else states_of(mem("megatron", 0))
    transient = tt["activations"] + (tt["other.fsdp_prefetch"] if fsdp else 0.0)
    return {"states": states, "transient": transient, "fragmentation": tt["other.fragmentation"],
            "total": states + transient + tt["other.fragmentation"]}


def rows(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    out = []
    for run in data["runs"]:
        if "error" in run:
            continue
        fsdp = data.get("layout") == "fsdp2"
        p = predicted(data["model"], data["ffn"], run, "expandable_segments:True" in data["alloc_conf"], fsdp)
        m = {"states": run["states"] / GIB, "transient": (run["peak_allocated"] - run["states"]) / GIB,
             "fragmentation": (run["peak_reserved"] - run["peak_allocated"]) / GIB, "total": run["peak_reserved"] / GIB}
        out.append({"file": path.name, "name": run["name"], "alloc": data["alloc_conf"] or "default", "fsdp": fsdp,
                    "measured": m, "predicted": p, "torch": data["torch"], "gpu": data["gpu"]})
    return out


def report(all_rows: list[dict]) -> str:
    r0 = all_rows[0]
    lines = ["# Memory terms against real PyTorch steps", "",
             f"Measured with `benchmarks/memory_device_check.py` on one {r0['gpu']} (torch {r0['torch']}); "
             "predicted with `benchmarks/memory_device_compare.py` (see its docstring for what is compared "
             "with what). GiB; error = predicted / measured - 1.", "",
             "| allocator | configuration | states meas | pred | err | transient meas | pred | err | "
             "reserved-allocated meas | fragmentation pred | reserved meas | pred | err |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in all_rows:
        m, p = r["measured"], r["predicted"]
        e = lambda k: f"{p[k] / m[k] - 1:+.1%}"  # noqa: E731
        lines.append(f"| {r['alloc']} | {r['name']} | {m['states']:.2f} | {p['states']:.2f} | {e('states')} | "
                     f"{m['transient']:.2f} | {p['transient']:.2f} | {e('transient')} | {m['fragmentation']:.2f} | "
                     f"{p['fragmentation']:.2f} | {m['total']:.2f} | {p['total']:.2f} | {e('total')} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    all_rows = [r for f in sorted((HERE / "memory_device").glob("*.json")) for r in rows(f)]
    text = report(all_rows)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
