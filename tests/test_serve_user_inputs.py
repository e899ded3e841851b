"""Second acceptance audit (docs/acceptance_check.md): serving inputs a user writes, checked end to end."""

import json

import pytest
from click.testing import CliRunner

from planner.cli import main

from conftest import CHAT_8B_WORKLOADS, write

runner = CliRunner()


def _scenario(tmp_path, node, search, model="llama-3.1-8b"):
    return write(tmp_path, "s.yaml", f"model: {model}\ncluster: {{node: {node}, nodes: 1}}\n"
                 "serving: {input_tokens: 1024, output_tokens: 256, requests_per_s: 2}\n"
                 f"search: {search}\n")


@pytest.mark.parametrize("plan,key", [("weights=fp8,kv_cache=bf16", "--plan weights"),
                                      ("weights=fp8-block,kv_cache=bf16", "--plan weights"),
                                      ("weights=mxfp4,kv_cache=bf16", "--plan weights"),
                                      ("weights=bf16,kv_cache=fp8", "--plan kv_cache")])
def test_trtllm_fp8_on_ampere_is_refused(tmp_path, plan, key):
    """TensorRT-LLM's support matrix: Ampere runs FP32 / FP16 / BF16 / INT8 / INT4, FP8 from Ada on."""
    model = "qwen3-30b-a3b" if "mxfp4" in plan else "llama-3.1-8b"  # mxfp4 quantises MoE experts only
    p = _scenario(tmp_path, "dgx-a100-80gb", "{engines: [trtllm]}", model)
    r = runner.invoke(main, ["serve", str(p), "--plan", f"engine=trtllm,{plan},tp=1"])
    assert r.exit_code == 2 and key in r.output and "support matrix" in r.output
    ok = runner.invoke(main, ["serve", str(_scenario(tmp_path, "dgx-h100", "{engines: [trtllm]}", model)),
                              "--plan", f"engine=trtllm,{plan},tp=1"])
    assert ok.exit_code == 0


def test_trtllm_search_on_ampere_offers_no_fp8(tmp_path):
    p = _scenario(tmp_path, "dgx-a100-80gb",
                  "{engines: [vllm, trtllm], weights: [bf16, fp8, int4-awq], kv_cache: [bf16, fp8]}\ntop: 10000")
    plans = json.loads(runner.invoke(main, ["serve", str(p), "--json"]).stdout)["plans"]
    trt = [x["plan"] for x in plans if x["plan"]["engine"] == "trtllm"]
    assert trt and all(x["weights"] != "fp8" and x["kv_cache"] == "bf16" for x in trt)
    assert any(x["plan"]["engine"] == "vllm" and x["plan"]["weights"] == "fp8" for x in plans)  # Marlin
    only = _scenario(tmp_path, "dgx-a100-80gb", "{engines: [trtllm], weights: [fp8], kv_cache: [fp8]}")
    r = runner.invoke(main, ["serve", str(only)])
    assert r.exit_code == 1 and "support matrix" in r.output


def test_a_purchase_rows_plan_is_priced_like_the_row(tmp_path):
    """compare's serving row gave the option's $/M tokens but kept the plan's catalog-price `cost` beside it
    (an owned B200 option: 0.28 at the top, 0.82 in plan.cost)."""
    from planner.purchase import compare
    from planner.spec.purchase import load_purchases

    p = write(tmp_path, "p.yaml", """
clusters:
  - {name: cloud, node: dgx-h100, nodes: [1], cloud: {usd_per_gpu_hour: 1.25}}
  - {name: owned, node: dgx-h100, nodes: [1], owned: {capex_usd_per_node: 300000, power_kw: 10}}
""" + CHAT_8B_WORKLOADS)
    for r in compare(load_purchases(p), workers=1)["serving"]:
        cost = r["plan"]["cost"]
        assert cost["usd_per_million_output_tokens"] == r["usd_per_million_output_tokens"]
        assert abs(cost["usd_per_hour"] * 4000 - r["cost_per_year_usd"]) < 0.01 * r["cost_per_year_usd"]


def test_nvfp4_is_not_offered_on_amd_fp4_units(tmp_path):
    """MI355X has FP4 matrix cores, but for OCP MX block scales (mxfp4), not NVIDIA's NVFP4 (E4M3 per 16)."""
    p = _scenario(tmp_path, "mi355x-8", "{engines: [vllm, sglang], weights: [nvfp4, mxfp4, fp8]}\ntop: 10000")
    plans = json.loads(runner.invoke(main, ["serve", str(p), "--json"]).stdout)["plans"]
    assert plans and not any(x["plan"]["weights"] == "nvfp4" for x in plans)
    r = runner.invoke(main, ["serve", str(p), "--plan", "engine=vllm,weights=nvfp4,tp=1"])
    assert r.exit_code == 2 and "--plan weights" in r.output and "mxfp4" in r.output
    b200 = _scenario(tmp_path, "dgx-b200", "{engines: [vllm]}")
    assert runner.invoke(main, ["serve", str(b200), "--plan", "engine=vllm,weights=nvfp4,tp=1"]).exit_code == 0


def test_weight_only_formats_are_explained(tmp_path):
    """fp8 on A100 (vLLM Marlin) is offered: the output says it runs weight-only at the bf16 GEMM rate."""
    p = _scenario(tmp_path, "dgx-a100-80gb", "{engines: [vllm], weights: [fp8], kv_cache: [bf16]}")
    r = runner.invoke(main, ["serve", str(p)])
    assert r.exit_code == 0 and "weight-only" in r.output and "bf16 GEMM rate" in r.output
    h100 = _scenario(tmp_path, "dgx-h100", "{engines: [vllm], weights: [fp8], kv_cache: [bf16]}")
    assert "weight-only" not in runner.invoke(main, ["serve", str(h100)]).output
