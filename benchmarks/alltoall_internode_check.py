"""Cross-node NCCL all-to-all: the planner's rate at each MoE run's message size, and what a lower rate would do.

    python benchmarks/alltoall_internode_check.py

For every Megatron MoE run of the calibration set and of benchmarks/recipe_runs.yaml / memory_runs.yaml with the
all-to-all token dispatcher (NCCL's all-to-all) whose expert-parallel group leaves its scale-up domain (the cluster graph of planner.estimate.topology):
  * the per-rank all-to-all buffer of one dispatch (tokens x top_k x hidden / tp, 16-bit, x moe_load_imbalance,
    as planner.estimate.comm.ep_dispatch_s builds it) and the time planner.estimate.comm.all_to_all_s gives it,
    written as nccl-tests' alltoall bus bandwidth ((n - 1) / n x bytes / time, nccl-tests src/alltoall.cu);
  * the NIC-bound bus bandwidth NCCL's maintainers describe for a healthy fabric: only the (n - k) / n of the
    buffer bound for other nodes limits the time, so busbw = (n - 1) / (n - k) x the per-GPU NIC rate (k group
    members per node; N / (N - 1) x the NIC rate for whole 8-GPU nodes, nccl-tests issue #130), the NIC rate being
    the node catalog's scaleout_gb_s x scaleout_efficiency (NDR 400G: 46-49 GB/s, nccl-tests issues #290, #267).
    The model is this limit plus its 30 us latency;
  * a sensitivity (NOT a model change): tokens/s error of the run when only the cross-node share of the
    all-to-all ran at a fraction f of that NIC rate. It shows what rate a run would need, to compare with the
    published measurements in benchmarks/alltoall_internode_results.md.
Nothing here is fitted and nothing changes the planner.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import accuracy  # noqa: E402
import calibration_runs  # noqa: E402

from planner.estimate import comm, topology  # noqa: E402
from planner.estimate.evaluate import estimate  # noqa: E402

# Sensitivity only (alltoall_internode_results.md, 'Reading'): 0.64 of the NIC rate (30 GB/s) is what closes
# DeepSeek-V3 / 512 H100, 0.85 (40 GB/s) an intermediate rate; neither has a source and neither is applied.
FRACTIONS = (1.0, 0.85, 0.64)


def scaled_all_to_all(fraction: float):
    """comm.all_to_all_s with its NIC term at `fraction` of the modelled rate (same formula otherwise)."""
    def all_to_all_s(node, nbytes, g):
        up, out = comm._rates(node)
        size, k = g.size, g.k
        intra = (k - 1) / size * nbytes / (up * comm.mesh_share(node, k))
        inter = (size - k) / size * nbytes / (out * fraction)
        alpha = np.where(size > k, comm.ALPHA_OUT_S, comm.ALPHA_IN_S)
        return np.where(size > 1, alpha + np.maximum(intra, inter), 0.0)
    return all_to_all_s


def cross_node_moe_runs():
    """(run, scenario, resolved plan) of every MoE run whose EP group crosses scale-up domains."""
    files = accuracy.default_files(accuracy.DEFAULT_DIR) + list(accuracy.RECIPE_FILES)
    for run, file in accuracy.training_runs(files):
        if file == accuracy.LEGACY_FILE:
            continue
        sc, plan, _, _ = calibration_runs.build(run)
        if not sc.model.moe or sc.runtime.moe_dispatcher != "alltoall":  # DeepEP / HybridEP: planner.estimate.ep_dedup
            continue
        plan = plan.resolved(sc)
        ep, etp = plan.ep, plan.etp or 1
        _, crosses = topology.profile(sc.cluster.node, np.array([ep]), np.array([etp]))
        if crosses[0]:
            yield run, sc, plan


def main() -> int:
    original = comm.all_to_all_s
    print("| run | node | ep (etp) | nodes spanned | MiB per rank | model busbw | NIC-bound limit | "
          + " | ".join(f"error at f = {f:.2f}" for f in FRACTIONS) + " |")
    print("|---|---|---|---:|---:|---:|---:|" + "---:|" * len(FRACTIONS))
    for run, sc, plan in cross_node_moe_runs():
        node, m = sc.cluster.node, sc.model
        ep, etp = plan.ep, plan.etp or 1
        ep_g = topology.group(node, np.array([ep]), np.array([etp]))
        k = int(ep_g.k[0])
        tokens = plan.mbs * sc.training.seq_len / plan.cp
        nbytes = tokens * m.moe.top_k * 2.0 * m.hidden / plan.tp * sc.runtime.moe_load_imbalance
        t = float(original(node, np.array([nbytes]), ep_g)[0])
        busbw = (ep - 1) / ep * nbytes / t / 1e9
        domains = ep // k
        expected = (ep - 1) / (ep - k) * comm._rates(node)[1] / 1e9
        published = calibration_runs.published_tokens(run, m)[0]
        errors = []
        for f in FRACTIONS:
            comm.all_to_all_s = scaled_all_to_all(f)
            try:
                errors.append(estimate(sc, plan)["throughput"]["tokens_per_s_per_gpu"] / published - 1)
            finally:
                comm.all_to_all_s = original
        print(f"| {run['id']} | {node.name} | {ep} ({etp}) | {domains} | "
              f"{nbytes / 2**20:.0f} | {busbw:.1f} GB/s | {expected:.1f} GB/s | "
              + " | ".join(f"{e:+.1%}" for e in errors) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
