"""benchmarks/moe_release_check.py: every release row builds and is estimated, and the settings a row
changes reach the estimate (a row that overrides nothing the planner reads would repeat its base)."""

import pytest
import yaml

import moe_release_check as rc

pytestmark = pytest.mark.skipif(not rc.RUNS.exists(), reason="shared/calibration is not next to the repository")


def _runs():
    return {r["id"]: r for f in (rc.RUNS, rc.RECIPES) for r in yaml.safe_load(f.read_text())}


def test_report_has_one_estimated_line_per_row(tmp_path):
    out = tmp_path / "release.md"
    assert rc.main(["--out", str(out)]) == 0
    rows = [ln for ln in out.read_text().splitlines() if ln.startswith("| ") and ln.endswith("% |")]
    assert len(rows) == len(rc.ROWS)
    for ln in rows:
        predicted = float(ln.split("|")[-3].replace(",", ""))
        assert predicted > 0


def test_overrides_move_the_estimate():
    """EP overlap, the dispatcher, the EP degree and token drop are read: each changes the B200 / H100
    estimate it is set on."""
    runs = _runs()
    q235 = runs[rc.B_Q235]
    assert rc.predict(q235, True, {}) != rc.predict(q235, False, {})
    oss = runs[rc.B_OSS]
    assert rc.predict(oss, False, {}) != rc.predict(oss, False, dict(ep=8))
    q30 = runs[rc.B_Q30]
    assert rc.predict(q30, False, {}) != rc.predict(q30, False, dict(micro_batch_size=4, moe_dispatcher="hybridep"))
    h100 = runs[rc.Q30]
    assert rc.predict(h100, False, {}) != rc.predict(h100, False, dict(rc.TOKEN_DROP))
