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
