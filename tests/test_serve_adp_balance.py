"""TensorRT-LLM's attention-DP balancing (plan keys adp_balance, adp_wait_iters, adp_timeout_iters;
engines.plan_adp_balance): new prompts are held until every attention-DP rank has one (at most timeout_iters steps)
and then batching_wait_iters steps more, and released together; the hold adds to TTFT (evaluate.schedule_wait,
adp_release_cycle). MLPerf v5.1 NVIDIA DeepSeek-R1 Server runs it with 3 / 9."""

import numpy as np
import pytest
import yaml

from planner.errors import InputError
from planner.serve import evaluate as V
from planner.serve import launch as L
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving
from planner.spec.serving import load_serving_scenario

from conftest import write

MOE = """
name: moe
model: qwen3-30b-a3b
cluster: {node: dgx-h100, nodes: 1}
serving: {input_tokens: 1024, output_tokens: 256, requests_per_s: 10}
"""
DP = "engine=trtllm,weights=bf16,tp=8,ep=8,attn_dp=true,max_batch=512"


def _simulated_cycle(a, n, wait, timeout, steps=200_000, seed=1):
    """Mean steps between releases of PyExecutor._balance_adp_requests' logic, stepped with Poisson(a) new prompts
    per rank and step (every rank busy with generation requests and free slots)."""
    rng = np.random.default_rng(seed)
    held = np.zeros(n, dtype=int)
    waiting = batching = 0
    releases = 0
    for _ in range(steps):
        held += rng.poisson(a, n)
        if (held > 0).all():
            waiting = 0
            if batching < wait:
                batching += 1
                continue
            batching = 0
        else:
            waiting += 1
            if waiting < timeout:
                continue
            waiting = 0
        held[:] = 0
        releases += 1
    return steps / releases


@pytest.mark.parametrize("a", [0.02, 0.3, 1.0, 5.0])
def test_release_cycle_matches_the_balancing_loop(a):
    model = V.adp_release_cycle(np.array([a]), np.array([8]), np.array([3]), np.array([9]))[0]
    assert model == pytest.approx(_simulated_cycle(a, 8, 3, 9), rel=0.08)


def test_release_cycle_limits():
    # idle ranks wait the whole timeout; busy ones release every batching_wait_iters + 1 steps
    assert V.adp_release_cycle(np.array([0.0]), np.array([8]), np.array([10]), np.array([50]))[0] == pytest.approx(50)
    assert V.adp_release_cycle(np.array([1e3]), np.array([8]), np.array([10]), np.array([50]))[0] == pytest.approx(11)
    # schedule_wait without a batch takes arrivals as unbounded: the same busy-rank limit (it gave 10: P(N > 0) lost)
    assert V.adp_release_cycle(np.array([np.inf]), np.array([8]), np.array([10]), np.array([50]))[0] == pytest.approx(11)


def test_plan_keys_checked(tmp_path):
    sc = load_serving_scenario(write(tmp_path, "moe.yaml", MOE))
    with pytest.raises(InputError, match="needs attn_dp=true"):
        parse_serve_plan("engine=trtllm,weights=bf16,tp=8,ep=8,adp_balance=true", sc)
    with pytest.raises(InputError, match="TensorRT-LLM setting"):
        parse_serve_plan("engine=vllm,weights=bf16,tp=8,ep=8,attn_dp=true,adp_balance=true", sc)
    with pytest.raises(InputError, match="give adp_balance=true"):
        parse_serve_plan(DP + ",adp_wait_iters=3", sc)
    t = parse_serve_plan(DP + ",adp_balance=true", sc)
    assert int(t["adp_wait_iters"][0]) == 10 and int(t["adp_timeout_iters"][0]) == 50  # AttentionDpConfig defaults
    # a ranked plan's JSON carries the default counts with adp_balance false: pasted back, it is the same plan
    pasted = parse_serve_plan(DP + ",adp_balance=false,adp_wait_iters=10,adp_timeout_iters=50", sc)
    assert all(np.array_equal(pasted[k], v) for k, v in parse_serve_plan(DP, sc).items())


def test_balancing_holds_prompts_and_is_emitted(tmp_path):
    sc = load_serving_scenario(write(tmp_path, "moe.yaml", MOE))
    off = estimate_serving(sc, parse_serve_plan(DP, sc))
    on = estimate_serving(sc, parse_serve_plan(DP + ",adp_balance=true,adp_wait_iters=3,adp_timeout_iters=9", sc))
    assert on["plan"]["adp_balance"] is True and on["plan"]["adp_timeout_iters"] == 9
    assert off["plan"]["adp_balance"] is False
    # the hold moves TTFT only: the same prompt work is done, so throughput and TPOT do not change
    assert on["latency"]["tpot_ms"] == off["latency"]["tpot_ms"]
    assert on["throughput"]["output_tokens_per_s"] == off["throughput"]["output_tokens_per_s"]
    for q in ("p50", "p90", "p99"):
        assert on["latency"]["ttft_ms"][q] > off["latency"]["ttft_ms"][q]
    # at 10 requests/s over 8 ranks few steps bring a prompt to every rank: the hold is near the 9-step timeout
    step = on["latency"]["tpot_ms"]["p50"]
    held = on["latency"]["ttft_ms"]["p50"] - off["latency"]["ttft_ms"]["p50"]
    assert 0.5 * 7 * step < held < 0.5 * 9 * step  # 0.5 x (cycle - 1) steps more than the one-step wait
    cfg = yaml.safe_load(L.serving_files(sc, on)[L.TRT_YAML])
    assert cfg["attention_dp_config"] == {"enable_balance": True, "batching_wait_iters": 3, "timeout_iters": 9}
    assert "attention_dp_config" not in yaml.safe_load(L.serving_files(sc, off)[L.TRT_YAML])
    text = L.plan_text(on["plan"])
    again = estimate_serving(sc, parse_serve_plan(text, sc))
    assert again["latency"] == on["latency"]
