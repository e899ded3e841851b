"""NVIDIA AIConfigurator's collected per-operation tables, as the benchmark checks read them.

The tables live in github.com/ai-dynamo/aiconfigurator (Apache-2.0) under
aic-core/src/aiconfigurator_core/systems/data/<gpu>/<op>/<backend>/<version>/*.parquet; every check pins the
same commit, COMMIT. `table` reads one parquet file at that commit from a local checkout (git show, no
work tree needed); `write_csv` writes the rows a check extracts, atomically (planner.atomic), and `read_csv`
reads them back; `bf16_gemms`,
`bf16_gemm_rates`, `gemm_ratios` and `ratio_table` serve the GEMM checks (expert_gemm_aic_check.py,
gemm_width_check.py)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from planner.atomic import write_atomic  # noqa: E402

COMMIT = "095f58a5"
DATA_DIR = "aic-core/src/aiconfigurator_core/systems/data"


# AIConfigurator's TensorRT-LLM GEMM tables: (data folder, engine / version, catalog GPU), one per GPU collected
# at COMMIT (benchmarks/gemm_width_check.py, expert_gemm_aic_check.py)
GEMM_TABLES = (("h100_sxm", "trtllm/1.2.0rc5", "h100-sxm-80gb"), ("h200_sxm", "trtllm/1.3.0rc10", "h200-sxm-141gb"),
               ("b200_sxm", "trtllm/1.2.0rc5", "b200"), ("gb200", "trtllm/1.3.0rc10", "gb200"),
               ("b300_sxm", "trtllm/1.3.0rc10", "b300"), ("gb300", "trtllm/1.3.0rc10", "gb300"))


def table(repo: Path, rel: str):
    """The pandas DataFrame of DATA_DIR/<rel> at COMMIT in the checkout `repo`."""
    import pandas as pd

    blob = subprocess.run(["git", "-C", str(repo), "show", f"{COMMIT}:{DATA_DIR}/{rel}"],
                          capture_output=True, check=True).stdout
    return pd.read_parquet(io.BytesIO(blob))


def write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    """rows (dicts with `fields`) as a CSV file at path, written atomically."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    write_atomic(path, buf.getvalue())


def read_csv(path: Path, text: tuple[str, ...] | None = None) -> list[dict]:
    """The rows of a CSV file (as write_csv writes them): every value a string, or where `text` names the text
    columns, the others as floats."""
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    if text is None:
        return rows
    return [{k: (v if k in text else float(v)) for k, v in r.items()} for r in rows]


def bf16_gemms(repo: Path, folder: str, version: str):
    """The bf16 rows of <folder>/gemm/<version>/gemm_perf.parquet (TensorRT-LLM's torch flow: cuBLAS; the fp8 rows
    include the input's dynamic quantisation, so the GEMM checks leave them out)."""
    df = table(repo, f"{folder}/gemm/{version}/gemm_perf.parquet")
    return df[df.gemm_dtype == "bfloat16"]


def bf16_gemm_rates(gpu_name: str) -> tuple[float, float]:
    """(matmul FLOP/s, HBM bytes/s) of a bf16 GEMM on the catalog GPU as planner.estimate.compute_gemm.peaks gives
    them at the burst clock (the tables are single-kernel microbenchmarks: no power-limited clock)."""
    from planner import catalog
    from planner.estimate import compute_gemm, table as plan_table

    flops, _, hbm, _ = compute_gemm.peaks(catalog.gpu(gpu_name), {"precision": plan_table.PRECISIONS.index("bf16")})
    return flops, hbm


def gemm_ratios(repo: Path, ratios_of) -> dict:
    """{catalog GPU: ratios_of(its bf16 GEMM rows, matmul FLOP/s, HBM bytes/s)} over GEMM_TABLES: a GEMM check's
    measured / model ratios ({column: ratio}) per GPU, as ratio_table prints them."""
    return {name: ratios_of(bf16_gemms(repo, folder, version), *bf16_gemm_rates(name))
            for folder, version, name in GEMM_TABLES}


def ratio_table(res: dict, cols: list, label) -> str:
    """A markdown table of measured / model ratios: one row per GPU of res ({gpu: {col: ratio}}), one column per
    entry of cols headed label(col); '-' where a GPU's table lacks the shape."""
    lines = ["| GPU | " + " | ".join(label(c) for c in cols) + " |", "|---|" + "---:|" * len(cols)]
    lines += [f"| {name} | " + " | ".join(f"{row[c]:.2f}" if c in row else "-" for c in cols) + " |"
              for name, row in res.items()]
    return "\n".join(lines)
