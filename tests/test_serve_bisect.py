"""Under a request rate, large serving searches find each group's replica counts by bisection
(planner.serve.search._bisected_table); the ranked plans and the counts must equal those of listing
every replica count."""

import copy
import json

import pytest
import yaml

from planner.serve import search
from planner.spec.serving import load_serving_scenario

TINY = {"name": "tiny", "layers": 4, "hidden": 512, "heads": 8, "ffn_hidden": 1536, "vocab": 32000, "kv_heads": 2}
BASE = {"name": "chat", "model": TINY, "cluster": {"node": "dgx-h100", "nodes": 4},
        "serving": {"input_tokens": {"mean": 1024, "p90": 3000}, "output_tokens": 256, "requests_per_s": 400,
                    "slo": {"ttft_ms_p90": 300, "tpot_ms_p90": 10}},
        "search": {"engines": ["vllm", "trtllm"], "weights": ["bf16", "fp8"], "kv_cache": ["fp8"]}}


def shared_variants(base: dict, load_key: str, moe_load: float) -> list[tuple[str, dict]]:
    """(objective, scenario) pairs both serving-search equivalence tests run (this one and
    test_serve_concurrency): the base under every objective, a budget, an MoE model at a heavier load
    (serving.<load_key> = moe_load), number formats of the same numbers (bf16 / fp16: shown once, the
    others named under same_numbers) and no SLO (last)."""
    budget = copy.deepcopy(base)
    budget["budget"] = {"max_usd_per_hour": 300}
    moe = copy.deepcopy(base)
    moe["model"] = {**TINY, "moe": {"experts": 8, "top_k": 2, "expert_ffn_hidden": 512}}
    moe["serving"][load_key] = moe_load
    twins = copy.deepcopy(base)
    twins["search"].update(weights=["bf16", "fp16", "fp8"], kv_cache=["fp8", "bf16", "fp16"])
    no_slo = copy.deepcopy(base)
    del no_slo["serving"]["slo"]
    return [("cost", base), ("latency", base), ("gpus", base), ("throughput", base), ("cost", budget),
            ("latency", budget), ("cost", moe), ("latency", moe), ("cost", twins), ("throughput", twins),
            ("cost", no_slo)]


def _variants():
    too_much = copy.deepcopy(BASE)
    too_much["serving"]["requests_per_s"] = 1e6
    return shared_variants(BASE, "requests_per_s", 2000) + [("cost", too_much)]


@pytest.mark.parametrize("objective,data", _variants())
def test_bisected_replicas_rank_as_the_full_table(tmp_path, objective, data):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    sc = load_serving_scenario(path)
    full = search.solve_serving(sc, objective=objective, bisect=False)
    bisected = search.solve_serving(sc, objective=objective)
    assert json.dumps(bisected, sort_keys=True, default=str) == json.dumps(full, sort_keys=True, default=str)
    assert full["evaluated"] > 100  # every replica count up to 32 GPUs was listed by the full search
