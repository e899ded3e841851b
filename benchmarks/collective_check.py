"""The serving model's NCCL collective times against NVIDIA's measured NCCL tables, at serving message sizes.

Data: catalogs/nccl_measured.csv, an extract (--extract AICONFIGURATOR_CHECKOUT, a git checkout at
095f58a5) of NVIDIA AIConfigurator's collected NCCL timings (github.com/ai-dynamo/aiconfigurator,
Apache-2.0; aic-core/src/aiconfigurator_core/systems/data/<gpu>/comm/nccl/<version>/nccl_perf.parquet):
all_gather, reduce_scatter, all_reduce and alltoall of fp16 buffers on 2 / 4 / 8 GPUs of one DGX / HGX node
(H100: NCCL 2.27.3, H200: 2.26.2, B200: 2.27.5), and 2 / 4 GPUs of a GB200 / GB300 NVL72 rack (2.29.2, the
'collected' version; GB200's legacy 2.23 table is within 4% of it at every op, group and size from 1 MiB,
except 2 MiB all-reduce on 4 GPUs, 14%; NCCL's choice between versions does matter on B200: at 8-16 MiB on
4 GPUs 2.27.5 / 2.28.9 take 48 / 77 us, 2.27.3 / 2.29.2 85 / 96 us). Columns: gpu, op, gpus, bytes (the whole buffer: the gathered
output of all_gather, the input of reduce_scatter and all_reduce, fp16 elements x 2), latency_ms.

Model: planner.estimate.comm (gather_s for all_gather / reduce_scatter, all_reduce_s, all_to_all_s with the
per-rank buffer = bytes) on the node's NVLink at its catalog efficiency, the costs the serving step charges
(planner.serve.timing.comm_links / attn_dp_moe_comm_s). Serving messages: one step's tokens x hidden in bf16
is 2-100 MB (e.g. 3,000 tokens x 4,096 x 2 B = 25 MB); rows from 1 MB to 128 MB are compared. This checks the
comm model (still used by training and wherever no table or no NCCL applies); the serving step now takes these
tables where the engine runs NCCL (planner.serve.nccl_measured; benchmarks/collective_size_results.md).

    python benchmarks/collective_check.py                     # print and rewrite benchmarks/collective_results.md
    python benchmarks/collective_check.py --extract CHECKOUT  # rebuild the csv first
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aic_data  # noqa: E402  (benchmarks/aic_data.py)
from planner import catalog  # noqa: E402
from planner.estimate import comm  # noqa: E402
from planner.estimate.topology import group  # noqa: E402

DATA = ROOT / "catalogs" / "nccl_measured.csv"
REPORT = ROOT / "benchmarks" / "collective_results.md"
SOURCES = {"h100": ("h100_sxm", "2.27.3", "dgx-h100"), "h200": ("h200_sxm", "2.26.2", "hgx-h200"),
           "b200": ("b200_sxm", "2.27.5", "dgx-b200"), "gb200": ("gb200", "2.29.2", "gb200-nvl72"),
           "gb300": ("gb300", "2.29.2", "gb300-nvl72")}
LO, HI = 2 ** 20, 2 ** 27


def extract(repo: Path) -> None:
    out = []
    for gpu, (d, ver, _) in SOURCES.items():
        df = aic_data.table(repo, f"{d}/comm/nccl/{ver}/nccl_perf.parquet")
        df = df[df["nccl_dtype"] == "half"].groupby(["op_name", "num_gpus", "message_size"])["latency"].mean()
        for (op, g, m), lat in df.items():
            if LO <= 2 * m <= HI:
                out.append({"gpu": gpu, "op": op, "gpus": int(g), "bytes": int(2 * m), "latency_ms": f"{lat:.6g}"})
    aic_data.write_csv(DATA, ["gpu", "op", "gpus", "bytes", "latency_ms"], out)


def model_s(node, op: str, g: int, nbytes: float) -> float:
    if op in ("all_gather", "reduce_scatter"):
        return float(comm.gather_s(node, nbytes, group(node, g, 1)))
    if op == "all_reduce":
        return float(comm.all_reduce_s(node, nbytes, group(node, g, 1)))
    return float(comm.all_to_all_s(node, nbytes, group(node, g, 1)))


def report() -> str:
    rows = list(csv.DictReader(DATA.open()))
    lines = ["# NCCL collectives at serving message sizes: model vs NVIDIA's measured tables", "",
             "Rerun: `python benchmarks/collective_check.py` (module docstring: data and model). Ratio = model / "
             "measured time; medians over the message sizes in each band.", "",
             "| GPU (node) | op | GPUs | 1-8 MB | 8-32 MB | 32-128 MB | measured busbw 32-128 MB | model busbw |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for gpu, (_, ver, node_name) in SOURCES.items():
        node = catalog.node(node_name)
        for op in ("all_gather", "reduce_scatter", "all_reduce", "alltoall"):
            for g in (2, 4, 8):
                sel = [r for r in rows if r["gpu"] == gpu and r["op"] == op and int(r["gpus"]) == g]
                if not sel:
                    continue
                b = np.array([float(r["bytes"]) for r in sel])
                meas = np.array([float(r["latency_ms"]) * 1e-3 for r in sel])
                mod = np.array([model_s(node, op, g, x) for x in b])
                band = lambda lo, hi: f"{np.median((mod / meas)[(b >= lo) & (b < hi)]):.2f}"  # noqa: E731
                fac = {"all_reduce": 2 * (g - 1) / g}.get(op, (g - 1) / g)
                big = b >= 2 ** 25
                busbw = np.median(fac * b[big] / meas[big]) / 1e9
                mbus = np.median(fac * b[big] / mod[big]) / 1e9
                lines.append(f"| {gpu} NCCL {ver} ({node_name}) | {op} | {g} | {band(2 ** 20, 2 ** 23)} | "
                             f"{band(2 ** 23, 2 ** 25)} | {band(2 ** 25, 2 ** 27 + 1)} | {busbw:.0f} GB/s | {mbus:.0f} GB/s |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--extract"]:
        if len(argv) != 2:
            print(f"usage: python {Path(__file__).name} [--extract AICONFIGURATOR_CHECKOUT]", file=sys.stderr)
            return 2
        extract(Path(argv[1]))
    text = report()
    print(text)
    aic_data.write_atomic(REPORT, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
