"""OR-Tools' CP-SAT module is imported without pandas (start-up time), and its pandas-indexed helpers
still work afterwards in the same process (the real pandas is imported on first use)."""

import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPT = """
import sys
from planner.search import cpsat
m = cpsat.cp_model()
assert "pandas" not in sys.modules, "pandas imported with CP-SAT"
import pandas as pd
xs = m.CpModel().new_int_var_series(name="x", index=pd.Index(range(3)), lower_bounds=0, upper_bounds=5)
assert isinstance(xs, pd.Series) and len(xs) == 3
"""


def test_cp_sat_without_pandas_then_with_it():
    pytest.importorskip("pandas")  # OR-Tools requires it; a skip, not a silent pass, if it is absent
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


UNUSED = """
import sys
from planner.cli import main  # what `python -m planner` runs (its run() then ends the process at once)
try:
    main(["solve", "scenarios/32b_8gpu.yaml", "--json"])
except SystemExit as e:
    assert not e.code, e.code
import planner.purchase_mix  # the purchase mix's CP-SAT model (planner compare)
bad = [m for m in ("pandas", "numpy.ma") if m in sys.modules]
assert not bad, f"imported by a solve: {bad}"
"""


def test_solve_imports_neither_pandas_nor_numpy_ma():
    """A whole `planner solve` process and the purchase mix import neither pandas (OR-Tools' CP-SAT
    module asks for it) nor numpy.ma (numpy 2's plain np.unique asks for it): 0.2-0.3 s and 10-40 ms of
    start-up (planner.search.cpsat, planner.estimate.table.distinct)."""
    r = subprocess.run([sys.executable, "-c", UNUSED], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
