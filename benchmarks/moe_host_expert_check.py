"""Could a per-local-expert host cost explain the slow dropless all-to-all MoE rows?

    python benchmarks/moe_host_expert_check.py [--out benchmarks/moe_host_expert_table.md]

For every Megatron MoE run of benchmarks/moe_layer_times.py: local experts (experts / ep), the
grouped expert modules per MoE layer, whether its forward waits on the host for the token counts
(planner.estimate.host.moe_forward_syncs), measured and predicted milliseconds per (layer,
micro-batch) and per sequence, and the host cost per local expert and expert module (forward +
backward, microseconds) that would be needed to close the gap if ALL of it were host time issued
after the sync and none of it overlapped the GPU:

    needed_us = (measured_ms - predicted_ms) / (local experts x expert modules) x 1e3

which is the most generous reading of the hypothesis (a host cost that scales with local experts and
is exposed after the dispatcher's device-to-host sync; benchmarks/moe_missing_results.md). Such a cost
is per micro-batch: it does not grow with the micro-batch size, so where it is the bottleneck the
time per sequence falls as the micro-batch grows. Nothing is fitted here; no model code uses this.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import accuracy  # noqa: E402
import calibration_runs  # noqa: E402
import moe_layer_times  # noqa: E402

from planner.arch import layer_matmuls  # noqa: E402
from planner.estimate import host, table  # noqa: E402
from planner.estimate.evaluate import Context  # noqa: E402


def row(run: dict) -> dict:
    """One run's local experts, sync flag, dispatcher and the per-expert host cost its gap needs."""
    lt = moe_layer_times.layer_times(run)
    sc, plan, _, _ = calibration_runs.build(run)
    plan = plan.resolved(sc)
    t = table.from_plans([plan])
    modules = sum(1 for mm in layer_matmuls(sc.model, True) if mm.name.startswith("expert"))
    local = sc.model.moe.experts / plan.ep
    gap = lt["measured_ms"] - lt["predicted_ms"]
    return {**lt, "local": local, "modules": modules, "dispatcher": sc.runtime.moe_dispatcher,
            "sync": bool(np.ravel(host.moe_forward_syncs(Context(sc), t))[0]),
            "needed_us": gap / (local * modules) * 1e3}


def report(rows: list[dict]) -> str:
    out = ["# Per-local-expert host cost needed by each Megatron MoE row", "",
           "`python benchmarks/moe_host_expert_check.py` (see its docstring). ms per (layer, micro-batch); "
           "`needed us`: host microseconds per local expert and expert module (forward + backward) that would "
           "close the gap if all of it were exposed host time (negative: the row is already slower than "
           "measured). Sync: the forward waits on the host for the token counts.", "",
           "| run | dispatcher | sync | capacity | local experts | modules | mbs | measured ms | predicted ms | "
           "measured per sequence | needed us | tokens/s error |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['id']} | {r['dispatcher']} | {'yes' if r['sync'] else 'no'} | {r['capacity'] or '-'} | "
                   f"{r['local']:g} | {r['modules']} | {r['mbs']} | {r['measured_ms']:.2f} | {r['predicted_ms']:.2f} | "
                   f"{r['measured_ms'] / r['mbs']:.2f} | {r['needed_us']:.0f} | {r['error']:+.1%} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "moe_host_expert_table.md"))
    args = ap.parse_args(argv)
    rows = [row(run) for run in moe_layer_times.megatron_moe_runs()]
    accuracy.write_atomic(Path(args.out), report(rows))
    print(f"wrote {args.out} ({len(rows)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
