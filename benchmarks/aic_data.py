"""NVIDIA AIConfigurator's collected per-operation tables, as the benchmark checks read them.

The tables live in github.com/ai-dynamo/aiconfigurator (Apache-2.0) under
aic-core/src/aiconfigurator_core/systems/data/<gpu>/<op>/<backend>/<version>/*.parquet; every check pins the
same commit, COMMIT. `table` reads one parquet file at that commit from a local checkout (git show, no
work tree needed); `write_csv` writes the rows a check extracts, atomically (planner.atomic)."""

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
