"""Every serving point before / after the measured NCCL collective times (planner.serve.nccl_measured).

Before: the comm model everywhere (timing.comm_links(..., measured=False)). After: the TP all-reduce above each
engine's NCCL floor and the attention-DP all-gather / reduce-scatter (TensorRT-LLM, vLLM) take NVIDIA's measured
NCCL time at their message size on H100 / H200 / B200 8-GPU boards (HGX B300 boards: B200's tables) and 2 / 4
GPUs of GB200 / GB300 NVL72 racks, and the TP all-reduce on 8 x MI300X / MI325X AMD's measured RCCL time
(catalogs/rccl_measured.csv); below the NCCL floor the engines' own all-reduce kernels take their measured tables
(catalogs/custom_allreduce_measured.csv) where one applies. Points: those of benchmarks/serving_accuracy.py.

    python benchmarks/collective_size_check.py    # print and rewrite benchmarks/collective_size_results.md
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import serving_accuracy as SA  # noqa: E402

from planner import catalog  # noqa: E402
from planner.serve import engines as E  # noqa: E402
from planner.serve import nccl_measured as NM  # noqa: E402
from planner.serve import timing  # noqa: E402

REPORT = ROOT / "benchmarks" / "collective_size_results.md"


def floors_table() -> list[str]:
    """The NCCL floor of the TP all-reduce per engine, node and group size (MB; inf: never NCCL here)."""
    lines = ["| node | TP | TensorRT-LLM, hidden 4096 / 8192 / 16384 | vLLM | SGLang |", "|---|---:|---:|---:|---:|"]
    for name in ("dgx-h100", "hgx-h200", "dgx-b200"):
        node = catalog.node(name)
        for g in (2, 4, 8):
            trt = [float(NM.all_reduce_nccl_floor(node, np.array([E.TRTLLM]), np.array([g]), h)[0]) / 1e6
                   for h in (4096, 8192, 16384)]
            f = [float(NM.all_reduce_nccl_floor(node, np.array([e]), np.array([g]))[0]) / 1e6 for e in (E.VLLM, E.SGLANG)]
            lines.append(f"| {name} | {g} | " + " / ".join(f"{x:.1f}" for x in trt) + " MB | "
                         + " | ".join(f"{x:.1f} MB" for x in f) + " |")
    return lines


def busbw_table() -> list[str]:
    """Measured all-reduce / all-gather bus bandwidth at a few sizes (from the table) vs the comm model."""
    from planner.estimate import comm, topology
    lines = ["| node | op | GPUs | 2 MiB | 16 MiB | 64 MiB | comm model (64 MiB) |", "|---|---|---:|---:|---:|---:|---:|"]
    for name in ("dgx-h100", "hgx-h200", "dgx-b200"):
        node = catalog.node(name)
        for op in ("all_reduce", "all_gather"):
            for g in (2, 8):
                fac = 2 * (g - 1) / g if op == "all_reduce" else (g - 1) / g
                row = NM.measured_table(node, op, [g])
                cells = [fac * b / NM.interp_s(row, b)[0] / 1e9 for b in (2 * NM.MIB, 16 * NM.MIB, 64 * NM.MIB)]
                fn = comm.all_reduce_s if op == "all_reduce" else comm.gather_s
                model = fac * 64 * NM.MIB / float(fn(node, 64 * NM.MIB, topology.group(node, g, 1))) / 1e9
                lines.append(f"| {name} | {op} | {g} | " + " | ".join(f"{c:.0f}" for c in cells) + f" | {model:.0f} |")
    return lines


def mae(rows, sel=lambda r: True) -> str:
    e = [abs(r["error"]) for r in rows if sel(r)]
    return f"{100 * np.mean(e):.1f}% ({len(e)})" if e else "-"


def report() -> str:
    # the evaluator builds its links with timing.comm_links: this run only, without the measured rows
    with mock.patch.object(timing, "comm_links", partial(timing.comm_links, measured=False)):
        before = SA.run()
    after = SA.run()
    lines = ["# Serving points before / after NVIDIA's measured NCCL times at the message size", "",
             "Rerun: `python benchmarks/collective_size_check.py` (docstrings: benchmarks/collective_size_check.py, "
             "planner/serve/nccl_measured.py). Before: the comm model (latency + bytes / (NVLink spec x catalog "
             "efficiency)) for every collective. After: where the engine runs NCCL on an H100 / H200 / B200 8-GPU "
             "board (HGX B300: B200's tables) or 2 / 4 GPUs of a GB200 / GB300 NVL72 rack, the measured NCCL time at "
             "the message size (catalogs/nccl_measured.csv, AIConfigurator's collected tables; 8 x MI300X / MI325X "
             "all-reduce: AMD's RCCL table, catalogs/rccl_measured.csv), interpolated linearly between the measured "
             "sizes. Error = predicted / measured - 1.", "",
             "TP all-reduce: NCCL above these message sizes (below them the engines' own kernels, at their measured "
             "tables where one applies: catalogs/custom_allreduce_measured.csv); TensorRT-LLM's depends on the hidden size (its AUTO lookup table for the fused all-reduce + "
             "RMSNorm, planner/serve/nccl_measured.py):", ""] + floors_table() + [
             "", "Attention-DP MoE all-gather / reduce-scatter: NCCL at every size in TensorRT-LLM and vLLM; SGLang's "
             "DP-attention gather not checked (comm model). GPUs without a table (A100, H20, H800, "
             "MI355X, ...), other collectives and group sizes on AMD boards, 8 GPUs of an NVL72 rack, groups of 3, 5-7 or more than 8 GPUs, all-to-all and pipeline send / recv: comm model.", "",
             "Measured bus bandwidth (GB/s) read from the table vs the comm model:", ""] + busbw_table() + ["",
             "| group | before | after |", "|---|---:|---:|"]
    groups = [("all points", lambda r: True), ("dense", lambda r: r["kind"] != "moe"), ("MoE", lambda r: r["kind"] == "moe"),
              ("engine trtllm", lambda r: r["engine"] == "trtllm"), ("engine vllm", lambda r: r["engine"] == "vllm"),
              ("engine sglang", lambda r: r["engine"] == "sglang"), ("calibration", lambda r: r["source"] == "calibration")]
    for name, sel in groups:
        lines.append(f"| {name} | {mae(before, sel)} | {mae(after, sel)} |")
    moved = [(b, a) for b, a in zip(before, after) if abs(a["predicted"] - b["predicted"]) > 1e-6 * max(b["predicted"], 1)]
    closer = sum(abs(a["error"]) < abs(b["error"]) for b, a in moved)
    lines += ["", f"{len(moved)} of {len(before)} points move, {closer} closer to the measurement, "
              f"{len(moved) - closer} further.", "",
              "| point | plan | measured | before | after | error before | error after |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for b, a in zip(before, after):
        lines.append(f"| {b['id']} | `{b['plan']}` | {b['measured']:,.0f} | {b['predicted']:,.0f} | {a['predicted']:,.0f} | "
                     f"{100 * b['error']:+.1f}% | {100 * a['error']:+.1f}% |")
    return "\n".join(lines) + "\n"


def main() -> int:
    text = report()
    print(text)
    REPORT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
