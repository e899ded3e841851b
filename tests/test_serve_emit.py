"""planner serve --emit: launch files name only flags of the pinned engine versions, quote every
value, are valid bash / YAML, and are written atomically without overwriting."""

import json
import os
import shlex
import subprocess

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from planner.cli import main
from planner.errors import InputError
from planner.serve import launch as L
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving
from planner.spec.serving import load_serving_scenario

from conftest import ROOT, write

runner = CliRunner()
SERVE_70B = ROOT / "scenarios" / "serve_70b.yaml"
MOE = """
name: 'moe "chat"; rm -rf / #'
model: qwen3-30b-a3b
cluster: {node: dgx-h100, nodes: 2}
serving: {input_tokens: 1024, output_tokens: 256, requests_per_s: 10}
"""


def result(sc, text):
    return estimate_serving(sc, parse_serve_plan(text, sc))


def exec_words(script: str) -> list[str]:
    """The words of the script's exec line as bash would split them (variables left as text)."""
    line = next(x for x in script.splitlines() if x.startswith("exec "))
    return shlex.split(line)[1:]


def flag_values(words: list[str]) -> list[tuple[str, str | None]]:
    out = []
    for i, w in enumerate(words):
        if w.startswith("--"):
            nxt = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else None
            out.append((w, nxt))
    return out


def assert_known(engine: str, words: list[str]):
    """Every flag in the pinned version's extracted list; every value inside its choices."""
    opts = L.engine_flags(engine)["options"]
    for flag, value in flag_values(words):
        assert flag in opts, f"{engine} has no {flag}"
        if opts[flag] and value is not None:
            assert value in opts[flag], f"{engine} {flag} {value}"


PLANS = [
    (SERVE_70B, "engine=vllm,weights=fp8,kv_cache=fp8,tp=2,replicas=4,max_batch=128"),
    (SERVE_70B, "engine=vllm,weights=int4-awq,kv_cache=bf16,tp=8,pp=2,replicas=1"),
    (SERVE_70B, "engine=sglang,weights=fp8,kv_cache=fp8,tp=4,replicas=2"),
    (SERVE_70B, "engine=sglang,weights=bf16,kv_cache=fp16,tp=16,replicas=1"),
    (SERVE_70B, "engine=trtllm,weights=fp8,kv_cache=fp8,tp=4,replicas=2,max_batch=512"),
    (SERVE_70B, "engine=trtllm,weights=bf16,kv_cache=bf16,tp=16,replicas=1"),
    (SERVE_70B, "engine=vllm,weights=fp8,kv_cache=fp8,tp=2,replicas=4,prefill_replicas=2"),
    (SERVE_70B, "engine=sglang,weights=fp8,kv_cache=fp8,tp=2,replicas=4,prefill_replicas=2"),
    (SERVE_70B, "engine=trtllm,weights=fp8,kv_cache=fp8,tp=2,replicas=4,prefill_replicas=2"),
    (SERVE_70B, "engine=vllm,weights=fp8-block,kv_cache=fp8,tp=2,replicas=4"),
    (SERVE_70B, "engine=sglang,weights=fp8-block,kv_cache=fp8,tp=2,replicas=4"),
    (SERVE_70B, "engine=trtllm,weights=fp8-block,kv_cache=fp8,tp=2,replicas=4"),
]


@pytest.mark.parametrize("path,text", PLANS)
def test_emitted_flags_exist_in_pinned_engine(path, text):
    sc = load_serving_scenario(path)
    r = result(sc, text)
    files = L.serving_files(sc, r)
    engine = r["plan"]["engine"]
    scripts = [n for n in files if n.startswith("serve") and n.endswith(".sh")]
    assert scripts == (["serve-prefill.sh", "serve-decode.sh"] if r["plan"]["prefill_replicas"] else ["serve.sh"])
    for name in scripts:
        assert_known(engine, exec_words(files[name]))
    if "k8s.yaml" in files:
        docs = list(yaml.safe_load_all(files["k8s.yaml"]))
        kinds = [d["kind"] for d in docs]
        assert ("Deployment" in kinds) != ("LeaderWorkerSet" in kinds) and "Service" in kinds
        for d in docs:
            if d["kind"] in ("Deployment", "LeaderWorkerSet"):
                pods = [d["spec"]["template"]] if d["kind"] == "Deployment" else \
                    list(d["spec"]["leaderWorkerTemplate"].values())[1:]
                for pod in pods:
                    assert_known(engine, pod["spec"]["containers"][0]["command"])
    if engine == "trtllm":
        cfg = yaml.safe_load(files[L.TRT_YAML])
        keys = L.engine_flags("trtllm")["yaml_keys"]
        assert set(cfg) <= set(keys[""]) and set(cfg["kv_cache_config"]) <= set(keys["kv_cache_config"])
        assert cfg["tensor_parallel_size"] == r["plan"]["tp"] and cfg["max_num_tokens"] == r["plan"]["max_batched_tokens"]
    json.loads(files["plan.json"])
    for name in (*scripts, "slurm.sbatch"):
        subprocess.run(["bash", "-n"], input=files[name], text=True, check=True)


def test_flag_lists_record_their_source_and_pinned_version():
    assert L.engine_flags("vllm")["version"] == "0.33.0"
    assert L.engine_flags("sglang")["version"] == "0.5.23"
    for engine in ("vllm", "sglang", "trtllm"):
        data = L.engine_flags(engine)
        assert data["source"] and len(data["options"]) > 30
    # facts of the pinned parsers the emitters rely on
    assert "fp8" not in L.engine_flags("sglang")["options"]["--kv-cache-dtype"]
    assert "fp8" in L.engine_flags("vllm")["options"]["--kv-cache-dtype"]


def test_disaggregated_pools_get_their_roles():
    sc = load_serving_scenario(SERVE_70B)
    files = L.serving_files(sc, result(sc, "engine=sglang,weights=fp8,kv_cache=fp8,tp=2,replicas=4,prefill_replicas=2"))
    for role in ("prefill", "decode"):
        flags = dict(flag_values(exec_words(files[f"serve-{role}.sh"])))
        assert flags["--disaggregation-mode"] == role
    assert "--array=0-5" in files["slurm.sbatch"]
    replicas = {d["metadata"]["name"].rsplit("-", 1)[1]: d["spec"]["replicas"]
                for d in yaml.safe_load_all(files["k8s.yaml"]) if d["kind"] == "Deployment"}
    assert replicas == {"prefill": 2, "decode": 4}
    files = L.serving_files(sc, result(sc, "engine=trtllm,weights=fp8,kv_cache=fp8,tp=2,replicas=4,prefill_replicas=2"))
    assert yaml.safe_load(files[L.TRT_YAML])["cache_transceiver_config"] == {"backend": "NIXL"}
    assert "router" in files["README.txt"]


def test_plan_values_reach_the_engine_flags():
    sc = load_serving_scenario(SERVE_70B)
    r = result(sc, "engine=vllm,weights=fp8,kv_cache=fp8,tp=2,replicas=4,max_batch=96,max_batched_tokens=4096")
    flags = dict(flag_values(exec_words(L.serving_files(sc, r)["serve.sh"])))
    assert flags["--tensor-parallel-size"] == "2" and flags["--max-num-seqs"] == "96"
    assert flags["--max-num-batched-tokens"] == "4096" and flags["--kv-cache-dtype"] == "fp8"
    assert float(flags["--gpu-memory-utilization"]) == L.E.VLLM_GPU_MEMORY_UTILIZATION
    r = result(sc, "engine=sglang,weights=fp8,kv_cache=fp8,tp=4,replicas=2,max_batch=300")
    flags = dict(flag_values(exec_words(L.serving_files(sc, r)["serve.sh"])))
    assert flags["--tp-size"] == "4" and flags["--max-running-requests"] == "300"
    assert flags["--kv-cache-dtype"] == "fp8_e4m3"
    assert float(flags["--mem-fraction-static"]) == float(L.E.sglang_mem_fraction(4))
    assert flags["--quantization"] == "fp8"
    # a pre-quantised checkpoint's method is read by the engine: no flag that could contradict it
    r = result(sc, "engine=vllm,weights=int4-awq,kv_cache=bf16,tp=4")
    flags = dict(flag_values(exec_words(L.serving_files(sc, r)["serve.sh"])))
    assert "--quantization" not in flags and "AWQ" in L.serving_files(sc, r)["README.txt"]


def test_unknown_flag_or_value_is_refused(monkeypatch):
    data = json.loads(json.dumps(L.engine_flags("vllm")))
    del data["options"]["--max-num-seqs"]
    monkeypatch.setattr(L, "engine_flags", lambda engine: data)
    with pytest.raises(InputError, match="no flag --max-num-seqs"):
        L.check_args("vllm", ["vllm", "serve", L.MODEL, "--max-num-seqs", "8"])
    with pytest.raises(InputError, match="does not accept"):
        L.check_args("vllm", ["vllm", "serve", L.MODEL, "--kv-cache-dtype", "fp7"])


def test_moe_attention_dp_and_expert_parallel(tmp_path):
    sc = load_serving_scenario(write(tmp_path, "moe.yaml", MOE))
    r = result(sc, "engine=vllm,weights=bf16,tp=8,ep=8,attn_dp=true,max_batch=512")
    flags = dict(flag_values(exec_words(L.serving_files(sc, r)["serve.sh"])))
    assert flags["--tensor-parallel-size"] == "1" and flags["--data-parallel-size"] == "8"
    assert "--enable-expert-parallel" in flags and flags["--max-num-seqs"] == "64"
    r = result(sc, "engine=trtllm,weights=bf16,tp=8,ep=8,attn_dp=true,max_batch=512")
    cfg = yaml.safe_load(L.serving_files(sc, r)[L.TRT_YAML])
    assert cfg["enable_attention_dp"] is True and cfg["moe_expert_parallel_size"] == 8
    assert cfg["max_batch_size"] == 64
    r = result(sc, "engine=sglang,weights=bf16,tp=8,ep=4")
    flags = dict(flag_values(exec_words(L.serving_files(sc, r)["serve.sh"])))
    assert flags["--ep-size"] == "4"
    with pytest.raises(InputError, match="ep must be 1 or tp"):  # refused by --plan now, before any emit
        result(sc, "engine=vllm,weights=bf16,tp=8,ep=4")
    r = result(sc, "engine=vllm,weights=bf16,tp=16,ep=16,attn_dp=true")
    with pytest.raises(InputError, match="several nodes"):
        L.serving_files(sc, r)
    r = result(sc, "engine=sglang,weights=bf16,tp=16,ep=16,attn_dp=true")
    pod = [d for d in yaml.safe_load_all(L.serving_files(sc, r)["k8s.yaml"]) if d["kind"] == "LeaderWorkerSet"]
    command = pod[0]["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["command"]
    assert command[command.index("--dist-init-addr") + 1] == f"$(LWS_LEADER_ADDRESS):{L.MASTER_PORT}"
    assert command[command.index("--node-rank") + 1] == "$(LWS_WORKER_INDEX)"


def test_names_are_sanitised_and_values_quoted(tmp_path):
    sc = load_serving_scenario(write(tmp_path, "moe.yaml", MOE))
    files = L.serving_files(sc, result(sc, "engine=sglang,weights=bf16,tp=2,replicas=2"))
    job = next(x for x in files["slurm.sbatch"].splitlines() if "--job-name" in x).split("=", 1)[1]
    assert job == L.safe_name(job) and ";" not in job and '"' not in job
    for d in yaml.safe_load_all(files["k8s.yaml"]):
        assert d["metadata"]["name"] == L.safe_name(d["metadata"]["name"])
    # the server receives a hostile MODEL value as one argument, unexpanded
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(0o755)
    script = tmp_path / "serve.sh"
    script.write_text(files["serve.sh"])
    model = 'x"; touch pwned; $(id) `id` *'
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, cwd=tmp_path, check=True,
                         env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "MODEL": model})
    argv = out.stdout.splitlines()
    assert argv[argv.index("--model-path") + 1] == model
    assert not (tmp_path / "pwned").exists()


def test_cli_emit_is_atomic_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "out"
    plan = "engine=trtllm,weights=fp8,kv_cache=fp8,tp=4,replicas=2"
    r = runner.invoke(main, ["serve", str(SERVE_70B), "--plan", plan, "--emit", str(out)])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["README.txt", "k8s.yaml", "plan.json", "serve.sh", "slurm.sbatch", L.TRT_YAML])
    assert os.access(out / "serve.sh", os.X_OK)
    before = (out / "serve.sh").read_text()
    r = runner.invoke(main, ["serve", str(SERVE_70B), "--plan", plan.replace("tp=4", "tp=8"), "--emit", str(out)])
    assert r.exit_code == 2 and "--force" in r.output
    assert (out / "serve.sh").read_text() == before
    r = runner.invoke(main, ["serve", str(SERVE_70B), "--plan", plan.replace("tp=4", "tp=8"), "--emit", str(out),
                             "--force"])
    assert r.exit_code == 0 and yaml.safe_load((out / L.TRT_YAML).read_text().split("\n", 1)[1])[
        "tensor_parallel_size"] == 8
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    # --force with another engine: the TensorRT-LLM YAML of the previous plan is removed
    r = runner.invoke(main, ["serve", str(SERVE_70B), "--plan", "engine=vllm,weights=fp8,tp=4", "--emit", str(out),
                             "--force"])
    assert r.exit_code == 0 and not (out / L.TRT_YAML).exists() and "vllm serve" in (out / "serve.sh").read_text()


def test_readme_names_every_emitted_key():
    sc = load_serving_scenario(SERVE_70B)
    for text in ("engine=vllm,weights=fp8,kv_cache=fp8,tp=8,pp=2", "engine=trtllm,weights=fp8,kv_cache=fp8,tp=4"):
        files = L.serving_files(sc, result(sc, text))
        words = exec_words(files["serve.sh"])
        keys = [f for f, _ in flag_values(words) if f not in ("--host", "--port")]
        if L.TRT_YAML in files:
            cfg = yaml.safe_load(files[L.TRT_YAML])
            keys += [f"{k}.{s}" if isinstance(v, dict) else k for k, v in cfg.items()
                     for s in (v if isinstance(v, dict) else [None])]
        for k in keys:
            assert k in files["README.txt"], k


def test_unknown_plan_values_are_input_errors():
    sc = load_serving_scenario(SERVE_70B)
    r = result(sc, "engine=vllm,weights=fp8,tp=2")
    for key, bad in (("weights", "fp7"), ("kv_cache", "int2"), ("engine", "tgi")):
        broken = {**r, "plan": {**r["plan"], key: bad}}
        with pytest.raises(InputError, match=bad):
            L.serving_files(sc, broken)


def test_serving_report_is_self_contained_small_and_quick(tmp_path):
    import time

    from planner.serve.report import batch_sweep, serving_report
    from planner.serve.search import solve_serving

    sc = load_serving_scenario(SERVE_70B)
    res = solve_serving(sc)
    t0 = time.process_time()  # CPU seconds: the shared test machine's load does not count
    html = serving_report(res, sc)
    assert time.process_time() - t0 < 5.0
    assert len(html.encode()) < 1.5 * 2**20
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    for kind in ("memory", "latency", "cost"):
        assert f'data-chart="{kind}"' in html
    # the sweep: more sequences per step give more tokens/s per GPU and a longer time per token
    for c in batch_sweep(sc, res["plans"][:3]):
        assert len(c["batch"]) >= 3
        assert np.all(np.diff(c["tok_s_gpu"]) > 0) and np.all(np.diff(c["tpot_ms"]) >= 0)
    out = tmp_path / "r.html"
    assert runner.invoke(main, ["serve", str(SERVE_70B), "--report", str(out)]).exit_code == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    r = runner.invoke(main, ["serve", str(SERVE_70B), "--report", str(out)])
    assert r.exit_code == 2 and "--force" in r.output


def test_serving_report_when_no_plan_qualifies_holds_the_reasons_and_fixes(tmp_path):
    """An infeasible serving scenario exits 1 and still writes its report, with the reasons and the nearest
    fixes the terminal prints (as `solve --report` does)."""
    data = yaml.safe_load(SERVE_70B.read_text())
    data["serving"]["slo"] = {"ttft_ms_p90": 0.001}
    sc_path = write(tmp_path, "none.yaml", yaml.safe_dump(data))
    out = tmp_path / "none.html"
    r = runner.invoke(main, ["serve", str(sc_path), "--report", str(out), "--json"])
    assert r.exit_code == 1
    res = json.loads(r.output[r.output.index("{"):r.output.rindex("}") + 1])
    html = out.read_text()
    assert res["plans"] == [] and res["infeasible"]["reasons"]
    assert "No plan meets the scenario" in html
    from html import escape
    assert all(escape(reason) in html for reason in res["infeasible"]["reasons"])


@pytest.mark.parametrize("text", ["engine=trtllm,weights=fp8,tp=2,graph_padding=true",
                                  "engine=vllm,weights=fp8,tp=2,engine_version=0.10.0",
                                  "engine=sglang,weights=fp8,tp=2,recv_interval=4"])
def test_plan_text_estimates_the_same_deployment_again(text):
    # The launch files' and report's plan line, given back to --plan, must name every key the estimate used.
    sc = load_serving_scenario(SERVE_70B)
    first = result(sc, text)
    again = result(sc, L.plan_text(first["plan"]))
    assert again["plan"] == first["plan"]
    assert again["throughput"] == first["throughput"] and again["latency"] == first["latency"]
