"""Hostile values never execute: every value that reaches an exported shell script, Slurm header,
TOML, YAML or JSON file is quoted or escaped for that format, and names with control characters are
refused at input (issue 13, "Security"). The scripts are checked with `bash -n` and then run in a stub
environment (torchrun, deepspeed, srun and scontrol replaced by no-ops): a canary file that the
injected commands would create must not appear."""

import json
import os
import shutil
import subprocess
import tomllib

import pytest
import yaml
from click.testing import CliRunner

from planner.cli import main
from planner.export import build_files
from planner.spec import load_scenario, parse_plan
from planner.estimate.evaluate import estimate

from conftest import write

BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")
PLANS = {"megatron": "framework=megatron,tp=8", "torchtitan": "framework=torchtitan,tp=4,zero=3",
         "deepspeed": "framework=deepspeed,zero=3,offload=nvme,offload_params=nvme,recompute=full"}
STUBS = {"torchrun": "exit 0", "deepspeed": "exit 0", "srun": "exit 0", "scontrol": "echo node-a"}


def hostile(canary) -> str:
    """Every way out of a comment or a quoted value: newlines (also CR, NEL, U+2028), command
    substitution, backticks, quotes, semicolons."""
    c = str(canary)
    return (f"x\ntouch {c}\n#\r\ntouch {c}\x85touch {c}\u2028touch {c}\n$(touch {c})`touch {c}`"
            f"'; touch {c}; '\"; touch {c}; \"\\")


def run_script(path, tmp_path):
    """bash -n, then run it with stub launchers and a Slurm-like environment."""
    syntax = subprocess.run([BASH, "-n", str(path)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    for name, body in STUBS.items():
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    env = {"PATH": f"{stubs}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(tmp_path),
           "MEGATRON_LM": str(tmp_path), "MASTER_ADDR": "localhost", "SLURM_JOB_NODELIST": "node-a",
           "SLURM_JOB_ID": "1", "SLURM_SUBMIT_DIR": str(path.parent)}
    return subprocess.run([BASH, str(path)], env=env, cwd=str(path.parent), capture_output=True, text=True,
                          timeout=60)


def test_the_harness_detects_an_injection(tmp_path):
    """Control: the same hostile text written raw into a comment does execute here."""
    canary = tmp_path / "canary"
    script = tmp_path / "raw.sh"
    script.write_text(f"#!/usr/bin/env bash\n# {hostile(canary)}\nexit 0\n")
    run_script(script, tmp_path)
    assert canary.exists()


def hostile_scenario(tmp_path, nodes: int):
    """A valid scenario, then every exported name replaced by a hostile one (as a library caller could)."""
    p = write(tmp_path, "s.yaml", f"cluster: {{node: dgx-h100, nodes: {nodes}}}\nmodel: llama-3.1-8b\n"
              "training: {seq_len: 4096, global_batch: 64, tokens: 1.0e9}\n")
    sc = load_scenario(p)
    bad = hostile(tmp_path / "canary")
    node = sc.cluster.node
    node = node.model_copy(update={"name": bad, "gpu": node.gpu.model_copy(update={"name": bad})})
    return sc.model_copy(update={"name": bad, "model": sc.model.model_copy(update={"name": bad}),
                                 "cluster": sc.cluster.model_copy(update={"node": node})}), bad


@pytest.mark.parametrize("nodes", [1, 2])
@pytest.mark.parametrize("framework", sorted(PLANS))
def test_hostile_names_never_execute(tmp_path, framework, nodes):
    sc, bad = hostile_scenario(tmp_path, nodes)
    result = estimate(sc, parse_plan(PLANS[framework]).resolved(sc))
    files = build_files(sc, result, nvme_path=bad)
    out = tmp_path / "out"
    out.mkdir()
    for name, text in files.items():
        (out / name).write_text(text)
    for name in files:
        if name.endswith((".sh", ".sbatch")):
            r = run_script(out / name, tmp_path)
            assert r.returncode == 0, r.stderr
            assert not (tmp_path / "canary").exists(), f"{name} executed an injected command"
            assert all(not line.startswith("touch") for line in files[name].splitlines())
    if "torchtitan.toml" in files:
        cfg = tomllib.loads(files["torchtitan.toml"])
        assert cfg["job"]["description"] == f"planner: {bad}"  # the value survives, escaped
    if "ds_config.json" in files:
        cfg = json.loads(files["ds_config.json"])
        assert cfg["zero_optimization"]["offload_param"]["nvme_path"] == bad
    if "accelerate.yaml" in files:
        assert isinstance(yaml.safe_load(files["accelerate.yaml"]), dict)
        assert all(line.startswith("#") for line in files["accelerate.yaml"].split("compute_environment")[0]
                   .splitlines())
    if "slurm.sbatch" in files:
        job = next(line for line in files["slurm.sbatch"].splitlines() if "--job-name=" in line)
        assert set(job.partition("=")[2]) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


PRINTABLE = "$(touch {c}) `touch {c}` '; touch {c}; ' \"; touch {c}; \" & touch {c} | x > {c}"


@pytest.mark.parametrize("framework", sorted(PLANS))
def test_cli_hostile_printable_values_never_execute(tmp_path, framework):
    """Printable hostile names, NVMe path and output folder go through the CLI; the scripts stay inert."""
    bad = PRINTABLE.format(c="canary")  # relative: the scripts run in the export folder
    p = write(tmp_path, "s.yaml", f"name: {json.dumps(bad)}\n"
              f"cluster:\n  nodes: 2\n  node: {{name: {json.dumps(bad)}, gpus_per_node: 8, scaleup_gb_s: 450, "
              f"scaleout_gb_s: 50, host_memory_gib: 2048, nvme_tb: 30, gpu: {{name: {json.dumps(bad)}, memory_gib: 80, "
              "hbm_tb_s: 3.35, tflops: {bf16: 989, fp8: 1979}}}\n"
              f"model: {{name: {json.dumps(bad)}, layers: 4, hidden: 1024, heads: 8, ffn_hidden: 4096, vocab: 32000}}\n"
              "training: {seq_len: 2048, global_batch: 64, tokens: 1.0e9}\n")
    out = tmp_path / "o $(touch canary) `x`"
    r = CliRunner().invoke(main, ["export", str(p), "--plan", PLANS[framework], "-o", str(out),
                                  "--nvme-path", bad])
    assert r.exit_code == 0, r.output
    for name in ("launch.sh", "slurm.sbatch"):
        assert run_script(out / name, tmp_path).returncode == 0
    assert not (out / "canary").exists() and not (tmp_path / "canary").exists()


@pytest.mark.parametrize("key,text", [
    ("name", 'name: "x\\ntouch /tmp/owned\\n#"\n'),
    ("model.name", 'model: {name: "a\\rb", layers: 2, hidden: 256, heads: 4, ffn_hidden: 1024, vocab: 100}\n'),
])
def test_control_characters_in_names_are_refused(tmp_path, key, text):
    base = {"name": "name: ok\n", "model": "model: llama-3.1-8b\n"}
    base[key.split(".")[0]] = text
    p = write(tmp_path, "s.yaml", base["name"] + base["model"] + "cluster: {node: dgx-h100, nodes: 1}\n"
              "training: {seq_len: 4096, global_batch: 64, tokens: 1.0e9}\n")
    r = CliRunner().invoke(main, ["validate", str(p)])
    assert r.exit_code == 2 and key in r.output and "control characters" in r.output


@pytest.mark.parametrize("path", ["", " ", "/a\nb"])
def test_nvme_path_must_be_printable(tmp_path, path):
    p = write(tmp_path, "s.yaml", "cluster: {node: dgx-h100, nodes: 1}\nmodel: llama-3.1-8b\n"
              "training: {seq_len: 4096, global_batch: 64, tokens: 1.0e9}\n")
    r = CliRunner().invoke(main, ["export", str(p), "--plan", "tp=8", "-o", str(tmp_path / "o"),
                                  "--nvme-path", path])
    assert r.exit_code == 2 and "--nvme-path" in r.output and not (tmp_path / "o").exists()
