"""benchmarks/run_errata.yaml and calibration_runs.with_errata: corrections to shared calibration runs
(the setting the run's own recipe states) name real runs, change what those runs say, reach the
estimate, and a malformed file is a clear error."""


import pytest
import yaml

from conftest import ROOT

CALIBRATION = ROOT.parent / "shared" / "calibration"

import calibration_runs  # noqa: E402

from planner.estimate.evaluate import estimate  # noqa: E402


def _get(run: dict, dotted: str):
    node = run
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _shared_runs() -> dict:
    out = {}
    for path in sorted(CALIBRATION.glob("*.yaml")):
        for r in yaml.safe_load(path.read_text()) or []:
            if isinstance(r, dict) and "id" in r:
                out[r["id"]] = r
    return out


@pytest.mark.skipif(not CALIBRATION.exists(), reason="shared/calibration is not next to the repository")
def test_every_entry_corrects_a_shared_run_and_moves_its_estimate():
    errata = calibration_runs.load_errata()
    assert errata, "benchmarks/run_errata.yaml is empty"
    runs = _shared_runs()
    for rid, entry in errata.items():
        assert rid in runs, f"errata entry {rid}: no such run in the shared calibration files"
        run = runs[rid]
        # each key says something the run file does not already say
        for key, value in entry["set"].items():
            assert _get(run, key) != value, f"{rid}: {key} already {value!r} in the run file"
        fixed = calibration_runs.with_errata(run, errata)
        before = estimate(*_built(run))["throughput"]["tokens_per_s_per_gpu"]
        after = estimate(*_built(fixed))["throughput"]["tokens_per_s_per_gpu"]
        assert after != before, f"{rid}: the correction does not reach the estimate"


def _built(run):
    sc, plan, _, _ = calibration_runs.build(run)
    return sc, plan.resolved(sc)


def test_with_errata_sets_dotted_keys_on_a_copy():
    run = {"id": "r", "model": {"moe": {"top_k": 2}}, "parallel": {"micro_batch_size": 2}, "notes": "n"}
    errata = {"r": {"id": "r", "source": "recipe.py line 1",
                    "set": {"parallel.micro_batch_size": 1, "model.moe.capacity_factor": 1.0, "model.mtp_layers": 1}}}
    fixed = calibration_runs.with_errata(run, errata)
    assert fixed["parallel"]["micro_batch_size"] == 1
    assert fixed["model"]["moe"] == {"top_k": 2, "capacity_factor": 1.0}
    assert fixed["model"]["mtp_layers"] == 1
    assert "recipe.py line 1" in fixed["notes"]
    assert run["parallel"]["micro_batch_size"] == 2 and "capacity_factor" not in run["model"]["moe"]
    assert calibration_runs.with_errata({"id": "other"}, errata) == {"id": "other"}


@pytest.mark.parametrize("text, words", [
    ("id: x\n", ["expected a list"]),
    ("- id: x\n  set: {parallel.tp: 2}\n", ["entry 0", "source"]),
    ("- id: x\n  source: s\n  set: {hardware.gpu: B200}\n", ["entry x", "hardware.gpu", "model. or parallel."]),
])
def test_bad_errata_file_is_a_clear_error(tmp_path, text, words):
    bad = tmp_path / "run_errata.yaml"
    bad.write_text(text)
    with pytest.raises(calibration_runs.ErrataError) as exc:
        calibration_runs.load_errata(bad)
    msg = str(exc.value)
    assert str(bad) in msg and all(w in msg for w in words)


@pytest.mark.skipif(not CALIBRATION.exists(), reason="shared/calibration is not next to the repository")
def test_accuracy_exits_2_on_a_bad_errata_file(tmp_path, monkeypatch, capsys):
    import accuracy

    bad = tmp_path / "run_errata.yaml"
    bad.write_text("- id: x\n")
    monkeypatch.setattr(calibration_runs, "ERRATA", bad)
    out = tmp_path / "o.md"
    assert accuracy.main(["--runs", str(CALIBRATION / "modern_runs.yaml"), "--out", str(out)]) == 2
    assert "run_errata.yaml" in capsys.readouterr().err
    assert not out.exists()


def test_dp_comm_overlap_is_read_from_a_run_file():
    """A run file's parallel.dp_comm_overlap reaches runtime.dp_comm_overlap (the 25.09 DeepSeek-V3 H100
    run script turns the gradient reduction's overlap off), and an exposed reduction is slower."""
    run = next(r for r in yaml.safe_load((ROOT / "benchmarks" / "recipe_runs.yaml").read_text())
               if r["id"] == "mbridge25.09-h100-fp8-dsv3-1024gpu")
    sc, plan = _built(run)
    assert sc.runtime.dp_comm_overlap is False
    on = dict(run, parallel=dict(run["parallel"], dp_comm_overlap=True))
    sc_on, plan_on = _built(on)
    assert sc_on.runtime.dp_comm_overlap is True
    assert estimate(sc, plan)["time"]["breakdown_s"]["dp_comm"] > estimate(sc_on, plan_on)["time"]["breakdown_s"]["dp_comm"]


@pytest.mark.skipif(not CALIBRATION.exists(), reason="shared/calibration is not next to the repository")
@pytest.mark.parametrize("entry, words", [
    ("- id: no-such-run\n  source: s\n  set: {parallel.micro_batch_size: 1}\n", ["no-such-run", "no run"]),
    ("- id: mbridge25.11-h100-qwen3-30b-a3b\n  source: s\n  set: {parallel.micro_batch_sise: 1}\n",
     ["mbridge25.11-h100-qwen3-30b-a3b", "parallel.micro_batch_sise", "no run file"]),
    ("- id: dgxc-h100-bf16-llama31-70b-64gpu\n  source: s\n  set: {model.moe.capacity_factor: 1.0}\n",
     ["dgxc-h100-bf16-llama31-70b-64gpu", "model.moe.capacity_factor", "model.moe"]),
])
def test_accuracy_exits_2_on_an_errata_entry_naming_no_run_or_no_run_key(tmp_path, monkeypatch, capsys, entry, words):
    """An errata id that names no run, or a key no run file has (a typo), is an error, not a silent no-op."""
    import accuracy

    bad = tmp_path / "run_errata.yaml"
    bad.write_text(entry)
    monkeypatch.setattr(calibration_runs, "ERRATA", bad)
    out = tmp_path / "o.md"
    assert accuracy.main(["--runs", str(CALIBRATION / "modern_runs.yaml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and all(w in err for w in words)
    assert not out.exists()
