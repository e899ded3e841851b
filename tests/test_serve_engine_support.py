"""Serving plans left by the second acceptance audit (docs/acceptance_check.md, last section): no mxfp4 plan on a
model without experts (it was the bf16 plan under another label), no vLLM / SGLang plan on Intel Gaudi (only
Intel's plugin / port runs there, not the pinned engines the launch files name)."""

import json

import pytest
from click.testing import CliRunner

from planner.cli import main

from conftest import write

runner = CliRunner()


def _scenario(tmp_path, model, node, search="{}"):
    return write(tmp_path, "s.yaml", f"model: {model}\ncluster: {{node: {node}, nodes: 1}}\n"
                 "serving: {input_tokens: 1024, output_tokens: 256, requests_per_s: 2}\n"
                 f"search: {search}\ntop: 10000\n")


def test_mxfp4_is_not_ranked_on_a_dense_model(tmp_path):
    p = _scenario(tmp_path, "llama-3.1-8b", "dgx-h100", "{engines: [vllm, sglang], weights: [bf16, mxfp4]}")
    r = runner.invoke(main, ["serve", str(p), "--json"])
    plans = json.loads(r.stdout)["plans"]
    assert plans and {x["plan"]["weights"] for x in plans} == {"bf16"}
    keys = [json.dumps({k: v for k, v in x["plan"].items()}, sort_keys=True) for x in plans]
    assert len(keys) == len(set(keys))  # no two ranked plans alike
    text = runner.invoke(main, ["serve", str(p)]).output
    assert "weights=mxfp4 left out" in text and "MoE experts only" in text
    r = runner.invoke(main, ["serve", str(p), "--plan", "engine=vllm,weights=mxfp4,tp=1"])
    assert r.exit_code == 2 and "--plan weights" in r.output and "no experts" in r.output


def test_mxfp4_alone_on_a_dense_model_explains_why_nothing_qualifies(tmp_path):
    p = _scenario(tmp_path, "llama-3.1-8b", "dgx-h100", "{weights: [mxfp4]}")
    r = runner.invoke(main, ["serve", str(p)])
    assert r.exit_code == 1 and "MoE experts only" in r.output


def test_mxfp4_stays_on_an_moe_model(tmp_path):
    p = _scenario(tmp_path, "qwen3-30b-a3b", "dgx-b200", "{engines: [vllm], weights: [bf16, mxfp4]}")
    plans = json.loads(runner.invoke(main, ["serve", str(p), "--json"]).stdout)["plans"]
    assert {x["plan"]["weights"] for x in plans} == {"bf16", "mxfp4"}


@pytest.mark.parametrize("node", ["gaudi3-8", "gaudi2-8"])
def test_no_engine_is_offered_on_intel_gaudi(tmp_path, node):
    p = _scenario(tmp_path, "llama-3.1-8b", node)
    r = runner.invoke(main, ["serve", str(p)])
    assert r.exit_code == 1 and "vllm-gaudi" in r.output and "NVIDIA or AMD node" in r.output, r.output
    for engine in ("vllm", "sglang", "trtllm"):
        r = runner.invoke(main, ["serve", str(p), "--plan", f"engine={engine},weights=bf16,tp=1"])
        assert r.exit_code == 2 and "--plan engine" in r.output and "does not run on" in r.output, r.output


def test_vllm_and_sglang_still_run_on_amd(tmp_path):
    p = _scenario(tmp_path, "llama-3.1-8b", "mi300x-8", "{engines: [vllm, sglang]}")
    plans = json.loads(runner.invoke(main, ["serve", str(p), "--json"]).stdout)["plans"]
    assert {x["plan"]["engine"] for x in plans} == {"vllm", "sglang"}


def test_a_gaudi_purchase_option_serves_nothing_and_says_why(tmp_path):
    p = write(tmp_path, "p.yaml", "name: g\nclusters:\n  - {name: g3, node: gaudi3-8, nodes: [1], cloud: "
              "{usd_per_gpu_hour: 3.0}}\n  - {name: h100, node: hgx-h100, nodes: [1], cloud: {usd_per_gpu_hour: 2.99}}\n"
              "serving_workloads:\n  - name: chat\n    model: llama-3.1-8b\n"
              "    serving: {input_tokens: 1024, output_tokens: 256, requests_per_s: 2}\n    hours_per_year: 4000\n")
    r = runner.invoke(main, ["compare", str(p), "--json"])
    rows = {x["option"].split()[0]: x for x in json.loads(r.stdout)["serving"]}
    assert rows["g3"]["plan"] is None and rows["h100"]["plan"] is not None
