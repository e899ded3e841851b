"""Regression guard on the accuracy report (benchmarks/accuracy.py): the performance model must not
drift away from the published runs. The targets themselves are tracked in the report."""

import json
import re

import pytest

from conftest import ROOT

CALIBRATION = ROOT.parent / "shared" / "calibration"
LEGACY = CALIBRATION / "published_runs.yaml"
pytestmark = pytest.mark.skipif(not LEGACY.exists(), reason="shared/calibration is not next to the repository")


def _accuracy():
    import accuracy

    return accuracy


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("acc") / "acc.md"
    _accuracy().main(["--out", str(out)])
    return out.read_text(), json.loads(out.with_suffix(".json").read_text())


def test_every_training_file_is_read_and_serving_is_skipped(report):
    _, data = report
    files = {r["file"] for r in data["runs"]}
    assert "published_runs.yaml" in files and "modern_runs.yaml" in files
    assert not any(f.startswith("serving") for f in files)


def test_json_schema(report):
    _, data = report
    assert set(data) == {"runs"} and data["runs"]
    for r in data["runs"]:
        assert set(r) == {"id", "file", "source", "family", "tokens_per_s_per_gpu", "memory", "verdict"}
        assert set(r["family"]) == {"framework", "moe", "precision"} and isinstance(r["family"]["moe"], bool)
        t = r["tokens_per_s_per_gpu"]
        assert t["published"] > 0 and t["predicted"] > 0
        assert t["error"] == pytest.approx(t["predicted"] / t["published"] - 1)
        if r["memory"] is not None:
            m = r["memory"]
            assert m["error"] == pytest.approx(m["predicted_gib"] / m["published_gib"] - 1)
    assert any(r["memory"] for r in data["runs"])  # torchtitan runs publish their peak


def test_older_megatron_runs_keep_their_accuracy(report):
    _, data = report
    legacy = [r for r in data["runs"] if r["file"] == "published_runs.yaml"]
    errors = [abs(r["tokens_per_s_per_gpu"]["error"]) for r in legacy]
    assert len(errors) >= 27
    assert sum(errors) / len(errors) < 0.08
    assert max(errors) < 0.18
    assert all(r["verdict"] != "oom" for r in legacy)  # every published configuration really ran: it must fit


def test_report_has_family_and_source_tables(report):
    text, data = report
    assert "## Per family" in text and "## Per source" in text
    families = {(r["family"]["framework"], r["family"]["moe"], r["family"]["precision"]) for r in data["runs"]}
    assert ("torchtitan", False, "bf16") in families and ("megatron", True, "bf16") in families


def test_bad_run_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "runs.yaml"
    bad.write_text("- id: x\n  model: {name: m, layers: 2}\n  hardware: {gpu: H100, num_gpus: 8}\n"
                   "  parallel: {tp: 1, global_batch_size: 8}\n  measured: {tokens_per_sec_per_gpu: 10}\n")
    assert _accuracy().main(["--runs", str(bad), "--out", str(tmp_path / "o.md")]) == 2
    err = capsys.readouterr().err
    assert "runs.yaml" in err and "'x'" in err and "hidden_size" in err
    assert not (tmp_path / "o.md").exists()


@pytest.mark.parametrize("groups", ["router_groups: 8", "router_groups: 8, router_group_topk: x",
                                    "router_group_topk: 4"])
def test_bad_router_groups_is_a_clear_error(tmp_path, capsys, groups):
    """The run file's group-limited routing keys come together, as whole numbers: file, run and keys named."""
    bad = tmp_path / "runs.yaml"
    bad.write_text("- id: x\n  model: {name: m, layers: 2, hidden_size: 256, attention_heads: 4, ffn_hidden_size: 512,\n"
                   "          moe: {num_experts: 16, top_k: 2, expert_ffn_hidden_size: 64, " + groups + "}}\n"
                   "  hardware: {gpu: H100, num_gpus: 8}\n  parallel: {tp: 1, global_batch_size: 8}\n"
                   "  measured: {tokens_per_sec_per_gpu: 10}\n")
    assert _accuracy().main(["--runs", str(bad), "--out", str(tmp_path / "o.md")]) == 2
    err = capsys.readouterr().err
    assert "runs.yaml" in err and "'x'" in err and "router_groups / router_group_topk" in err


def _modern(run_id):
    import yaml

    runs = yaml.safe_load((CALIBRATION / "modern_runs.yaml").read_text())
    return next(r for r in runs if r["id"] == run_id)


def test_scenarios_are_built_as_published():
    """The builder keeps the published plan and says what the stack did, from the run's own text."""
    _accuracy()
    import calibration_runs as cr

    run = _modern("dgxc-h100-bf16-llama31-70b-64gpu")
    sc, plan, node, assumed = cr.build(run)
    p = run["parallel"]
    assert (plan.tp, plan.pp, plan.cp, plan.dp, plan.vpp, plan.mbs) == (p["tp"], p["pp"], p["cp"], p["dp"],
                                                                       p["virtual_pipeline_stages"], 1)
    assert plan.mbs * plan.ga * plan.dp == p["global_batch_size"] and node == "dgx-h100"
    assert sc.model.layers == run["model"]["layers"] and sc.model.n_kv_heads == run["model"]["kv_heads"]
    assert "recompute=none" in assumed  # the source does not say: Megatron-Core's default
    eager = cr.build(_modern("torchtitan-h100-llama31-8b-8gpu-fsdp"))[0].runtime
    compiled = cr.build(_modern("torchtitan-h100-llama31-70b-256gpu-2d"))[0].runtime
    assert not eager.compile and compiled.compile and not compiled.tp_comm_overlap
    assert cr.build(_modern("torchtitan-h100-llama31-405b-512gpu-3d-interleaved"))[0].runtime.tp_comm_overlap
    qwen = cr.build(_modern("mbridge25.11-h100-qwen3-30b-a3b"))[0]
    assert qwen.runtime.ep_comm_overlap and qwen.runtime.fp8_recipe == "current"
    assert qwen.model.moe.experts == 128 and qwen.model.moe.top_k == 8


def test_ep_overlap_read_from_every_run_file():
    """EP all-to-all overlap is on exactly where a run states it: the structured moe_a2a_overlap key
    of the benchmark run files (recipes whose pinned config sets moe_a2a_overlap=True, the EP16
    skill run 'EP all-to-all overlap on'), the notes of modern_runs.yaml; off where nothing says so."""
    import yaml

    _accuracy()
    import calibration_runs as cr

    runs = {r["id"]: r for f in ("recipe_runs.yaml", "memory_runs.yaml")
            for r in yaml.safe_load((ROOT / "benchmarks" / f).read_text())}
    for rid in ("mbridge25.11-h100-fp8cs-qwen3-235b-256gpu", "mbridge25.09-h100-fp8-dsv3-1024gpu",
                "mbridge-skill-h100-bf16-qwen3-30b-16gpu-ep16"):
        assert cr.build(runs[rid])[0].runtime.ep_comm_overlap, rid
    for rid in ("mbridge25.09-h100-fp8-qwen3-235b-256gpu", "mbridge25.09-b200-fp8-dsv3-256gpu"):
        assert not cr.build(runs[rid])[0].runtime.ep_comm_overlap, rid
    off = {**runs["mbridge25.09-h100-fp8-dsv3-1024gpu"]}
    off["parallel"] = {**off["parallel"], "moe_a2a_overlap": False}
    assert not cr.build(off)[0].runtime.ep_comm_overlap


def test_hybridep_sm_count_of_the_megatron_bridge_recipes():
    """Megatron-Bridge's performance scripts give every HybridEP recipe 32 SMs (utils/overrides.py,
    moe_hybridep_num_sms = 32): the builder says so for the Bridge HybridEP rows, and leaves Megatron-Core's
    default (16) everywhere else."""
    import yaml

    _accuracy()
    import calibration_runs as cr

    runs = yaml.safe_load((ROOT / "benchmarks" / "recipe_runs.yaml").read_text())
    hybrid = [r for r in runs if r["parallel"].get("moe_dispatcher") == "hybridep"]
    assert len(hybrid) >= 10
    for run in hybrid:
        assert cr.build(run)[0].runtime.moe_hybridep_num_sms == 32, run["id"]
    other = next(r for r in runs if r["id"] == "mbridge26.02-b200-fp8mx-qwen3-235b-256gpu")
    assert cr.build(other)[0].runtime.moe_hybridep_num_sms == 16


def test_known_regressions_name_real_runs_with_a_record(report):
    """Every listed regression names a run of the run files and the maintainers' record of it; the report's
    extra family table leaves exactly those runs out."""
    acc = _accuracy()
    listed = acc.known_regressions()
    files = [*acc.default_files(acc.DEFAULT_DIR), *acc.RECIPE_FILES]
    ids = {r["id"] for r, _ in acc.training_runs(files)}
    assert listed and set(listed) <= ids
    assert all(r["record"].startswith("https://github.com/") and r["says"] for r in listed.values())
    text, data = report
    assert "mbridge25.11-h100-qwen3-30b-a3b: https://github.com/NVIDIA-NeMo/Megatron-Bridge/issues/1998" in text
    runs = {}  # family -> (all estimated runs, runs not listed), from the machine-readable rows
    for r in data["runs"]:
        name = acc.family_name(r)
        n, kept = runs.get(name, (0, 0))
        runs[name] = (n + 1, kept + (r["id"] not in listed))
    extra = text.split("Without the runs", 1)[1].split("## Per source", 1)[0]
    counts = dict(re.findall(r"^\| ([^|]+?) \| (\d+) of \d+ \|", extra, re.M))
    assert counts == {k: str(kept) for k, (_, kept) in runs.items() if kept}
    assert any(kept < n for n, kept in runs.values())  # the extra table left out at least one run
