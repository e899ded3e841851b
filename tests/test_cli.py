"""Every scenario end to end through the command line, and the contract's exit codes."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from planner.cli import main

from conftest import HF, ROOT, SCENARIOS, write

runner = CliRunner()


def run(*args):
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_scenario_solves(path):
    r = run("solve", path, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["plans"] and out["considered"] >= out["feasible"] > 0 and out["seconds"] > 0
    for p in out["plans"]:
        q = p["plan"]
        assert q["dp"] * q["tp"] * q["pp"] * q["cp"] == out["gpus"]
        assert p["memory"]["verdict"] in ("fits", "tight")
        assert p["throughput"]["tokens_per_s"] > 0 and 0 < p["throughput"]["mfu"] < 1


def test_solve_table_and_estimate():
    r = run("solve", ROOT / "scenarios" / "32b_16gpu.yaml", "--top", "3")
    assert r.exit_code == 0 and "best plan" in r.stdout and "tok/s/GPU" in r.stdout
    r = run("estimate", ROOT / "scenarios" / "32b_16gpu.yaml", "--plan",
            "tp=8,pp=2,dp=1,zero=1,mbs=1,recompute=selective,precision=bf16", "--json")
    assert r.exit_code == 0, r.output
    est = json.loads(r.stdout)
    assert est["plan"]["ga"] == 512 and est["plan"]["global_batch"] == 512
    assert set(est) >= {"plan", "memory", "time", "throughput", "run"}
    assert set(est["memory"]["breakdown_gib"]) == {"weights", "gradients", "optimizer", "activations", "other"}


def test_model_command_counts():
    r = run("model", "deepseek-v3", "--json")
    assert json.loads(r.stdout)["params_total"] == 671_026_404_352
    r = run("model", HF / "qwen2.5-32b.json", "--json")
    assert json.loads(r.stdout)["params_total"] == 32_763_876_352
    r = run("model", ROOT / "scenarios" / "mixtral_64gpu.yaml", "--json")
    assert json.loads(r.stdout)["params_total"] == 46_702_792_704
    assert run("model", "mixtral-8x7").exit_code == 2


@pytest.mark.parametrize("kind,minimum", [("gpus", 20), ("nodes", 10), ("models", 15)])
def test_catalog_json(kind, minimum):
    r = run("catalog", kind, "--json")
    entries = json.loads(r.stdout)
    assert len(entries) >= minimum
    assert all(e["name"] and e["source"] for e in entries)
    one = json.loads(run("catalog", kind, entries[0]["name"], "--json").stdout)
    assert one == [entries[0]]


def test_validate(tmp_path):
    r = run("validate", ROOT / "scenarios" / "32b_16gpu.yaml")
    assert r.exit_code == 0 and "valid" in r.stdout
    bad = write(tmp_path, "bad.yaml", (ROOT / "scenarios" / "32b_16gpu.yaml").read_text().replace("global_batch", "global_bach"))
    r = run("validate", bad)
    assert r.exit_code == 2 and "training.global_bach" in r.stderr and "global_batch" in r.stderr


def test_nothing_fits_exits_1(tmp_path):
    p = write(tmp_path, "big.yaml", "model: llama-3.1-405b\ncluster: {node: hgx-a100-40gb, nodes: 1}\n"
                                    "training: {seq_len: 8192, global_batch: 8, tokens: 1e9}\n")
    r = run("solve", p)
    assert r.exit_code == 1 and "No plan fits" in r.stdout
    assert "over by" in r.stdout or "the host does not" in r.stdout


@pytest.mark.parametrize("text,key", [
    ("model: llama-3.1-8b\ncluster: {node: dgx-h100, nodes: 1}\ntraining: {seq_len: 4096, global_batch: 8, tokens: 1e9, optimiser: adam}\n", "training.optimiser"),
    ("model: llama-3.1-8b\ncluster: {node: dgx-h100, nodes: 1}\n", "training"),
    ("model: [1, 2\n", "malformed YAML"),
    ("model: llama-3.1-8b\ncluster: {node: dgx-h100, nodes: 1e30}\ntraining: {seq_len: 4096, global_batch: 8, tokens: 1e9}\n", "cluster.nodes"),
])
def test_bad_input_exits_2_without_traceback(tmp_path, text, key):
    p = write(tmp_path, "s.yaml", text)
    proc = subprocess.run([sys.executable, "-m", "planner.cli", "solve", str(p)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert key in proc.stderr and str(p) in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_bad_plan_exits_2():
    r = run("estimate", ROOT / "scenarios" / "32b_16gpu.yaml", "--plan", "tp=3")
    assert r.exit_code == 2 and "heads (40) not divisible by tp (3)" in r.stderr
