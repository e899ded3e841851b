"""What-if: the host time of one per-expert GEMM of Transformer Engine's GroupedLinear
(planner.estimate.host.EXPERT_GEMM_HOST_S, the bare launch today) on the Megatron-Bridge MoE rows.

    python benchmarks/b200_moe_host_gemm.py [--gpu] [--out FILE]

Transformer Engine 2.9-2.13 runs GroupedLinear on Blackwell as one cuBLASLt GEMM per local expert, issued
from C++ on its compute streams (nvte_multi_tensor_gemm -> multi_stream_cublas_gemm), and every call builds
its layouts, descriptor and preference and queries cuBLASLt's heuristic (cublas_gemm in
transformer_engine/common/gemm/cublaslt_gemm.cu). The host cost of that path was not measured, so this
script only shows how the rows respond to it: the same rows as b200_moe_groups.py, estimated with the
per-expert GEMM host cost at each value of COSTS_US. With --gpu, instead a fixed GPU time added to every
expert GEMM (compute_moe's gemm_s; its backward twice that) at each value of GPU_EXTRA_US. Nothing is
fitted or adopted (benchmarks/b200_moe_results.md, section 5).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import accuracy  # noqa: E402
import b200_moe_groups  # noqa: E402
import calibration_runs  # noqa: E402
import moe_nvl72_decomposition  # noqa: E402

from planner.estimate import compute_moe, host  # noqa: E402

COSTS_US = (6.5, 15.0, 30.0, 45.0, 60.0)
GPU_EXTRA_US = (0.0, 5.0, 10.0, 20.0)


def _errors(runs: list[dict]) -> dict[str, float]:
    out = {}
    for run in runs:
        _, _, _, r, published = calibration_runs.estimated(run)
        out[run["id"]] = r["throughput"]["tokens_per_s_per_gpu"] / published - 1
    return out


def errors(runs: list[dict], cost_s: float) -> dict[str, float]:
    """{run id: predicted / published tokens/s - 1} with the per-expert GEMM host cost set to cost_s."""
    saved = host.EXPERT_GEMM_HOST_S
    host.EXPERT_GEMM_HOST_S = cost_s
    try:
        return _errors(runs)
    finally:
        host.EXPERT_GEMM_HOST_S = saved


def gpu_errors(runs: list[dict], extra_s: float) -> dict[str, float]:
    """The same with extra_s of GPU time added to every expert GEMM (forward; the backward doubles it)."""
    saved = compute_moe.gemm_s
    compute_moe.gemm_s = lambda *a, **k: saved(*a, **k) + extra_s
    try:
        return _errors(runs)
    finally:
        compute_moe.gemm_s = saved


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="sweep a fixed GPU time per expert GEMM instead")
    ap.add_argument("--out", type=Path, help="write the table here (default: stdout)")
    args = ap.parse_args(argv)
    runs = b200_moe_groups.runs()
    regressions = set(accuracy.known_regressions())
    info = {d["id"]: d for d in b200_moe_groups.rows()}
    runs = [r for r in runs if r["id"] in info and r["id"] not in regressions]
    costs = GPU_EXTRA_US if args.gpu else COSTS_US
    table = {c: (gpu_errors if args.gpu else errors)(runs, c * 1e-6) for c in costs}
    head = " | ".join(f"{'+' if args.gpu else ''}{c:g} us" for c in costs)
    what = "a fixed GPU time added to every expert GEMM" if args.gpu else "the host time of one per-expert GEMM"
    lines = [f"Mean signed error per model and node (known regressions left out) with {what} at each value; "
             "local experts x routed rows per expert and micro-batch.", "",
             f"| model | node | rows | local experts x rows | {head} |",
             "|---|---|---:|---|" + "---:|" * len(costs)]
    keys = dict.fromkeys((info[r["id"]]["family"], info[r["id"]]["node"]) for r in runs)
    for fam, node in sorted(keys, key=lambda k: (k[0], b200_moe_groups.NODES.index(k[1]))):
        ids = [r["id"] for r in runs if (info[r["id"]]["family"], info[r["id"]]["node"]) == (fam, node)]
        shapes = sorted({f"{info[i]['local_experts']} x {info[i]['rows_per_expert']:.0f}" for i in ids})
        cells = " | ".join(f"{100 * statistics.fmean(table[c][i] for i in ids):+.1f}%" for c in costs)
        lines.append(f"| {fam} | {node} | {len(ids)} | {', '.join(shapes)} | {cells} |")
    mae = " | ".join(f"{100 * statistics.fmean(abs(e) for e in table[c].values()):.1f}%" for c in costs)
    lines.append(f"| all | | {len(runs)} | | {mae} (mean absolute) |")
    moe_nvl72_decomposition.emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
