"""How much of Megatron's activation offloading could show in the published offloading recipes.

    python benchmarks/activation_offload_check.py

For every run of benchmarks/recipe_runs.yaml with `activation_offload_layers` and a measured tokens/s,
takes the planner's own per-micro-batch numbers (bytes offloaded per GPU, forward and backward
seconds of the slowest stage) and times the copies under the two schedules Transformer Engine has
shipped, at the catalog's NVLink-C2C figure and at a measured one (benchmarks/activation_offload_results.md
gives the sources):
  * planner: offload.activation_offload_s (a micro-batch's copies against its whole forward/backward);
  * TE <= 2.9 (cpu_offload.py AsyncDoubleBufferGroupOffloadHandler): layer g's copy is issued at the
    end of layer window[g-1] and the compute stream waits for it at the end of layer window[g]
    (window = layer_window_map; reloads mirror it in backward);
  * TE >= 2.10 (cpu_offload.py DefaultOffloadSynchronizer): copies start as the layer ends, one
    stream, and the forward of layer L - N + i waits for layer i's copy; the reload of layer i starts
    at the backward of layer L - 1 - N + i and layer i's backward waits for it;
and the upper bound of HBM contention: all the copies' HBM bytes (2 x ga x bytes) at the planner's
streaming HBM rate, as if every copied byte displaced a kernel's byte.
Prints a markdown table; nothing is written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
import calibration_runs  # noqa: E402

from planner.estimate import memory, table  # noqa: E402
from planner.estimate.compute_gemm import HBM_EFFICIENCY  # noqa: E402
from planner.estimate.evaluate import Context, estimate, stage_time, with_tensor_clock  # noqa: E402
from planner.estimate.offload import host_link_bytes_s  # noqa: E402

HERE = Path(__file__).resolve().parent
# nvbandwidth on 4 x GB300 (NVIDIA/Megatron-LM issue #6491, comment of 2026-08-15): copy-engine
# GPU->CPU with all four GPUs copying at once (all_to_host), per GPU, lower end of 181.94-183.85 GB/s.
MEASURED_C2C_D2H_GB_S = 181.94


def window_map(layers: int, offloaded: int) -> list[int]:
    """TE <= 2.9 layer_window_map: the layer at whose end offloaded layer g must be on the host."""
    out, constant = [], 0
    for i in range(offloaded):
        w = (layers // offloaded) * (i + 1) - 1
        if i < layers % offloaded:
            w += i + 1
            constant = i + 1
        else:
            w += constant
        out.append(w)
    return out


def te_window_stall(layers, offloaded, copy, fwd_layer, bwd_layer) -> float:
    """Seconds one micro-batch waits under TE <= 2.9: copy g overlaps the layers after window[g-1]
    up to window[g] (group 0: layer 0's end to window[0]); the same windows in backward."""
    w = window_map(layers, offloaded)
    spans = [w[0]] + [w[g] - w[g - 1] for g in range(1, offloaded)]
    return sum(max(0.0, copy - n * fwd_layer) + max(0.0, copy - n * bwd_layer) for n in spans)


def te_default_stall(layers, offloaded, copy, fwd_layer, bwd_layer) -> float:
    """Seconds one micro-batch waits under TE >= 2.10's default schedule (event simulation)."""
    ahead = layers - offloaded
    t, done, end_copy = 0.0, [], 0.0
    for k in range(layers):  # forward
        if k >= ahead:
            t = max(t, done[k - ahead])
        t += fwd_layer
        if k < offloaded:
            end_copy = max(t, end_copy) + copy
            done.append(end_copy)
    plain_forward = layers * fwd_layer
    t0, t, ready, end_copy = t, t, {}, 0.0
    for k in range(layers - 1, -1, -1):  # backward
        i = k - (layers - 1 - offloaded)
        if 0 <= i < offloaded:
            end_copy = max(t, end_copy) + copy
            ready[i] = end_copy
        if k in ready:
            t = max(t, ready[k])
        t += bwd_layer
    return (t0 - plain_forward) + (t - t0 - layers * bwd_layer)


def link_that_explains(gap, ga, layers, offloaded, moved, fwd_layer, bwd_layer) -> float:
    """The host-link rate (B/s) at which TE >= 2.10's stalls would equal `gap` seconds (bisection on
    1e9..1e12 B/s, stalls fall as the link speeds up); 0 when even 1 GB/s would not."""
    def stall(bw):
        return ga * te_default_stall(layers, offloaded, moved / offloaded / bw, fwd_layer, bwd_layer)

    if gap <= 0 or stall(1e9) < gap:
        return 0.0
    lo, hi = 1e9, 1e12
    for _ in range(60):
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if stall(mid) > gap else (lo, mid)
    return lo


def rows():
    """(run, context, ga, offloaded bytes per GPU and micro-batch, forward s, backward s) of every
    offloading recipe run with a measured tokens/s."""
    runs = yaml.safe_load((HERE / "recipe_runs.yaml").read_text())
    runs = runs["runs"] if isinstance(runs, dict) else runs
    for run in runs:
        n = run["parallel"].get("activation_offload_layers")
        measured = (run.get("measured") or {}).get("tokens_per_sec_per_gpu")
        if not n or not measured:
            continue
        sc, plan, _, _ = calibration_runs.build(run)
        ctx = Context(sc)
        t = table.from_plans([plan.resolved(sc)])
        mem = memory.memory(ctx, t)
        t = with_tensor_clock(ctx, t, mem)
        _, c, _ = stage_time(ctx, t)
        yield (run, ctx, int(t["ga"][0]), float(mem["offloaded_activations"][0]),
               float(c["forward"][0]), float(c["backward"][0]))


def main() -> int:
    print("| run | L | N | ga | GiB/layer | fwd ms/layer | bw GB/s | copy ms/layer | planner s | TE<=2.9 s "
          "| TE>=2.10 s | HBM bound s | step s | gap to measured s | link that would explain it GB/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run, ctx, ga, moved, fwd, bwd in rows():
        sc, plan, _, _ = calibration_runs.build(run)
        r = estimate(sc, plan.resolved(sc))
        step = r["time"]["step_s"]
        gap = step * (r["throughput"]["tokens_per_s_per_gpu"] / run["measured"]["tokens_per_sec_per_gpu"] - 1)
        layers, n = run["model"]["layers"], run["parallel"]["activation_offload_layers"]
        per_layer = moved / n
        needed = link_that_explains(gap, ga, layers, n, moved, fwd / layers, bwd / layers)
        hbm = 2 * ga * moved / (ctx.gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY)
        for bw in (host_link_bytes_s(ctx), MEASURED_C2C_D2H_GB_S * 1e9):
            copy = per_layer / bw
            planner = ga * (max(0.0, moved / bw - fwd) + max(0.0, moved / bw - bwd))
            old = ga * te_window_stall(layers, n, copy, fwd / layers, bwd / layers)
            new = max(0.0, ga * te_default_stall(layers, n, copy, fwd / layers, bwd / layers))
            print(f"| {run['id']} | {layers} | {n} | {ga} | {per_layer / 2**30:.2f} | {fwd / layers * 1e3:.1f} "
                  f"| {bw / 1e9:.0f} | {copy * 1e3:.1f} | {planner:.3f} | {old:.3f} | {new:.3f} | {hbm:.3f} "
                  f"| {step:.2f} | {gap:+.2f} | {needed / 1e9:.0f} |")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
