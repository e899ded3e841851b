"""Second acceptance audit (docs/acceptance_check.md): serving inputs a user writes, checked end to end."""

import json

import pytest
from click.testing import CliRunner

from planner.cli import main

from conftest import write

runner = CliRunner()


def _scenario(tmp_path, node, search):
    return write(tmp_path, "s.yaml", f"model: llama-3.1-8b\ncluster: {{node: {node}, nodes: 1}}\n"
                 "serving: {input_tokens: 1024, output_tokens: 256, requests_per_s: 2}\n"
                 f"search: {search}\n")


@pytest.mark.parametrize("plan,key", [("weights=fp8,kv_cache=bf16", "--plan weights"),
                                      ("weights=fp8-block,kv_cache=bf16", "--plan weights"),
                                      ("weights=mxfp4,kv_cache=bf16", "--plan weights"),
                                      ("weights=bf16,kv_cache=fp8", "--plan kv_cache")])
def test_trtllm_fp8_on_ampere_is_refused(tmp_path, plan, key):
    """TensorRT-LLM's support matrix: Ampere runs FP32 / FP16 / BF16 / INT8 / INT4, FP8 from Ada on."""
    p = _scenario(tmp_path, "dgx-a100-80gb", "{engines: [trtllm]}")
    r = runner.invoke(main, ["serve", str(p), "--plan", f"engine=trtllm,{plan},tp=1"])
    assert r.exit_code == 2 and key in r.output and "support matrix" in r.output
    ok = runner.invoke(main, ["serve", str(_scenario(tmp_path, "dgx-h100", "{engines: [trtllm]}")),
                              "--plan", f"engine=trtllm,{plan},tp=1"])
    assert ok.exit_code == 0


def test_trtllm_search_on_ampere_offers_no_fp8(tmp_path):
    p = _scenario(tmp_path, "dgx-a100-80gb",
                  "{engines: [vllm, trtllm], weights: [bf16, fp8, int4-awq], kv_cache: [bf16, fp8]}\ntop: 10000")
    plans = json.loads(runner.invoke(main, ["serve", str(p), "--json"]).output)["plans"]
    trt = [x["plan"] for x in plans if x["plan"]["engine"] == "trtllm"]
    assert trt and all(x["weights"] != "fp8" and x["kv_cache"] == "bf16" for x in trt)
    assert any(x["plan"]["engine"] == "vllm" and x["plan"]["weights"] == "fp8" for x in plans)  # Marlin
    only = _scenario(tmp_path, "dgx-a100-80gb", "{engines: [trtllm], weights: [fp8], kv_cache: [fp8]}")
    r = runner.invoke(main, ["serve", str(only)])
    assert r.exit_code == 1 and "support matrix" in r.output
