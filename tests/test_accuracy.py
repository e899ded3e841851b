"""Regression guard on the accuracy report (benchmarks/accuracy.py): the performance model must not
drift away from the published runs. The target itself (mean <= 10%) is tracked in the report."""

import sys

import pytest

from conftest import ROOT

RUNS = ROOT.parent / "shared" / "calibration" / "published_runs.yaml"


@pytest.mark.skipif(not RUNS.exists(), reason="shared/calibration is not next to the repository")
def test_accuracy_on_the_calibration_runs(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import accuracy

    accuracy.main(["--runs", str(RUNS), "--out", str(tmp_path / "acc.md")])
    text = (tmp_path / "acc.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "%" in line]
    errors = [abs(float(r.split("|")[5].strip().rstrip("%"))) for r in rows]
    assert len(errors) >= 27
    assert sum(errors) / len(errors) < 8.0
    assert max(errors) < 18.0
    assert "oom" not in text  # every published configuration really ran: it must fit
