"""The published NVIDIA recipes of benchmarks/recipe_runs.yaml all ran: none may be predicted out of
memory or above the GPU's memory (benchmarks/recipe_fits.py), and accuracy.py can include them."""

import json

import pytest

from conftest import ROOT

RUNS = ROOT / "benchmarks" / "recipe_runs.yaml"
MEMORY_RUNS = ROOT / "benchmarks" / "memory_runs.yaml"


def _module(name):
    return __import__(name)


@pytest.fixture(scope="module")
def rows():
    import yaml

    fits = _module("recipe_fits")
    return [fits.fit_row(r) for path in (RUNS, MEMORY_RUNS) for r in yaml.safe_load(path.read_text())]


def test_the_run_file_is_wide(rows):
    """30+ configurations with a published throughput, more as memory checks: H100, B200 and GB200; dense
    and MoE; bf16 and fp8."""
    assert sum(r["published"] is not None for r in rows) >= 30
    assert {r["node"] for r in rows} >= {"dgx-h100", "dgx-b200", "gb200-nvl72"}
    assert any("rc:" in r["plan"] and " bf16 " in r["plan"] for r in rows)
    assert any("ep" in r["plan"].split()[0] or " ep" in r["plan"] for r in rows)


def test_no_published_recipe_is_predicted_out_of_memory(rows):
    bad = [(r["id"], r["verdict"], r["gib"]) for r in rows if r["gib"] is not None and (r["verdict"] == "oom"
                                                                                     or r["gib"] > r["capacity"])]
    assert not bad
    # rejected only where the pipeline split counts embedding and loss as layers (listed as not expressible)
    assert all("exceeds the" in r["verdict"] for r in rows if r["gib"] is None)


@pytest.mark.skipif(not (ROOT.parent / "shared" / "calibration").exists(), reason="shared/calibration not present")
def test_accuracy_can_include_the_recipes(tmp_path):
    out = tmp_path / "wide.md"
    assert _module("accuracy").main(["--with-recipes", "--out", str(out)]) == 0
    ids = {r["id"] for r in json.loads(out.with_suffix(".json").read_text())["runs"]}
    assert "mbridge25.11-b200-fp8cs-llama3-8b-8gpu" in ids and "mbridge25.11-h100-llama3-8b" in ids
    assert not (tmp_path / "error_bands.yaml").exists()  # bands come from the calibration set only


def test_measured_peaks_stay_close(rows):
    """Runs with a published peak (torchtitan's H100 benchmarks, a Megatron-Bridge MoE run): mean absolute
    error at most 10% and no run under-predicted by more than 15% (an under-prediction is a wrong 'fits')."""
    fits = _module("recipe_fits")
    errors = [fits.memory_error(r) for r in rows if fits.memory_error(r) is not None]
    assert len(errors) >= 10
    assert sum(abs(e) for e in errors) / len(errors) <= 0.10
    assert min(errors) >= -0.15
