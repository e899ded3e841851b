"""ROCm vLLM 0.10 on 8x MI300X at TP8: how much of the latency rows' unexplained decode time the all-reduce and
the FP8 GEMMs could carry, from published measurements only (a bound, not a model term).

Data:
* Measured extra per decode step (published step - planner step) at each batch of the README's Latency table:
  benchmarks/rocm_tp8_batch_check.py (128-token prompts).
* RCCL all-reduce on all 8 MI300X of one board, rccl-tests all_reduce_perf with graphs (-G 1), float sum,
  out-of-place, RCCL 2.22.3 / ROCm 6.3.0: AMD ROCm blog "Understanding RCCL Bandwidth and xGMI Performance on
  AMD Instinct MI300X" (2025-03-02; ROCm/rocm-blogs blogs/software-tools-optimization/mi300x-rccl-xgmi/README.md
  @0e81c2ca), the sizes of a decode step's message (RCCL_GRAPH_US below). The 1-128 MiB rows of the same post's
  default run are the planner's table (catalogs/rccl_measured.csv), used where vLLM runs RCCL (above 8 MiB).
* FP8 GEMMs: AMD's tuned aiter CK a8w8 kernel times at the TP8 shapes (benchmarks/aiter_gemm_check.py) less the
  planner's roofline.

What vLLM 0.10 ran for these messages (16 KiB-4 MiB, planner.serve.nccl_measured): its custom all-reduce (max
8 MiB; the xGMI mesh counts as fully connected), inside HIP graphs; QuickReduce off by default; RCCL only above
8 MiB. No published time of that kernel on 8 MI300X was found, so the planner keeps its link model there; this
check asks what the gap would be if the custom kernel were no faster than RCCL on the same board (the RCCL graph
run is the upper end: vLLM picks its own kernel below 8 MiB because it is meant to beat RCCL there).

Per step: 2 all-reduces per layer (attention out, MLP down) of batch x hidden x 2 bytes (bf16).

Second table: the training estimator's all-reduce (planner.estimate.comm.all_reduce_s on mi300x-8, 8 GPUs: the link
model, which training keeps everywhere) against the planner's RCCL table (catalogs/rccl_measured.csv) at 1-128 MiB.

    python benchmarks/rocm_tp8_allreduce_check.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import aiter_gemm_check as A  # noqa: E402
import rocm_tp8_batch_check as R  # noqa: E402
from planner import catalog  # noqa: E402
from planner.estimate import comm  # noqa: E402
from planner.estimate.topology import group  # noqa: E402
from planner.serve import engines as E  # noqa: E402
from planner.serve import nccl_measured as NM  # noqa: E402
from planner.serve import timing  # noqa: E402

KIB = 1024
# RCCL all_reduce_perf -G 1 on 8 x MI300X, out-of-place time in us at each size (bytes): the blog post above.
RCCL_GRAPH_US = {16 * KIB: 8.71, 32 * KIB: 9.05, 64 * KIB: 9.14, 128 * KIB: 9.51, 256 * KIB: 10.26,
                 512 * KIB: 14.26, 1024 * KIB: 19.40, 2048 * KIB: 35.03, 4096 * KIB: 51.83, 8192 * KIB: 83.74}
MODELS = {"70b": "llama-3.1-70b", "405b": "llama-3.1-405b"}


def rccl_graph_s(nbytes: float) -> float:
    """RCCL's graph-run time at nbytes, linear in bytes between the post's sizes."""
    sizes = np.array(sorted(RCCL_GRAPH_US), dtype=float)
    return float(np.interp(nbytes, sizes, [RCCL_GRAPH_US[int(s)] for s in sizes])) * 1e-6


def planner_all_reduce_s(hidden: int, nbytes: float) -> float:
    """The planner's time of one vLLM TP8 all-reduce of nbytes on the mi300x-8 board (timing._cost)."""
    node = catalog.node("mi300x-8")
    t = {"tp": np.array([8]), "engine": np.array([E.VLLM])}
    return float(timing._cost(timing.comm_links(node, t, hidden)["all_reduce"], nbytes)[0])


def rows() -> list[tuple]:
    """(model, batch, message bytes, planner us, RCCL us, all-reduce bound ms, GEMM ms, measured extra ms)."""
    extra = {(m, b): e for m, prompt, b, _, _, e, _ in R.rows() if prompt == 128}
    table = A.load()
    out = []
    for label, name in MODELS.items():
        m = catalog.model(name)
        for b in R.BATCHES:
            nbytes = b * m.hidden * 2.0
            mod, rccl = planner_all_reduce_s(m.hidden, nbytes), rccl_graph_s(nbytes)
            ar_ms = 2 * m.layers * (rccl - mod) * 1e3
            aiter, roof = A.step_ms(label, b, table)
            out.append((label, b, nbytes, mod * 1e6, rccl * 1e6, ar_ms, aiter - roof, extra[(label, b)]))
    return out


def training_rows() -> list[tuple]:
    """(MiB, RCCL us, training link model us, model / RCCL, RCCL bus GB/s) at each size of the RCCL table."""
    node = catalog.node("mi300x-8")
    meas = NM.tables()[("mi300x", "all_reduce", 8)]
    out = []
    for b, t in zip(NM.GRID, meas):
        mod = float(comm.all_reduce_s(node, b, group(node, 8, 1)))
        out.append((b / NM.MIB, t * 1e6, mod * 1e6, mod / t, 2 * 7 / 8 * b / t / 1e9))
    return out


def main() -> None:
    print("| model | batch | message | planner AR us | RCCL (graph) AR us | AR bound ms/step | aiter GEMM - roofline ms "
          "| sum ms | measured extra ms | sum / extra |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, b, nbytes, mod, rccl, ar, gemm, extra in rows():
        print(f"| {label} | {b} | {nbytes / KIB:,.0f} KiB | {mod:.1f} | {rccl:.1f} | {ar:+.2f} | {gemm:+.2f} "
              f"| {ar + gemm:+.2f} | {extra:+.2f} | {(ar + gemm) / extra:.2f} |")
    print()
    print("| MiB | RCCL us (8 x MI300X) | training model us | model / RCCL | RCCL bus bandwidth GB/s |")
    print("|---:|---:|---:|---:|---:|")
    for mib, t, mod, r, bus in training_rows():
        print(f"| {mib:.0f} | {t:.1f} | {mod:.1f} | {r:.2f} | {bus:.0f} |")


if __name__ == "__main__":
    main()
