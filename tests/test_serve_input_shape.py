"""Spread of the input lengths: a prefill token picked at random belongs to a prompt in proportion to the
prompt's length, so the busy prefill steps attend at E[l^2] / E[l] x (1 + hit) / 2 (Context.ctx_pf), the
prefill attention FLOPs summed over the prompts; the prefill queue's mean service is then the mean uncached
input over that busy rate (prompt_service_moments), and one prompt of l tokens attends to its own prefix."""

import numpy as np
import pytest
import yaml

from planner.serve import evaluate as V
from planner.serve import timing
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving
from planner.spec.serving import TokenMoments, length_biased_mean, load_serving_scenario, token_moments

from conftest import ROOT

SERVE_70B = ROOT / "scenarios" / "serve_70b.yaml"
PLAN = "engine=vllm,weights=fp8,kv_cache=fp8,tp=2,pp=1,replicas=1"


def _scenario(tmp_path, input_tokens, name, hit=0.0, **traffic):
    data = yaml.safe_load(SERVE_70B.read_text())
    data["serving"] = {"input_tokens": input_tokens, "output_tokens": 300, "prefix_cache_hit": hit,
                       **(traffic or {"offline": True})}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_serving_scenario(path)


def test_length_biased_mean_and_token_moments_read_a_pair_alike():
    for value in (TokenMoments(mean=2048, p90=6000), [[100, 1.0], [900, 3.0]], 700):
        m1, m2 = token_moments(value, 2)
        assert length_biased_mean(value) == pytest.approx(m2 / m1)


def test_fixed_input_list_equals_the_integer(tmp_path):
    one = estimate_serving(sc := _scenario(tmp_path, 2000, "int", hit=0.3), parse_serve_plan(PLAN, sc))
    lst = estimate_serving(sc := _scenario(tmp_path, [[2000, 1.0]], "list", hit=0.3), parse_serve_plan(PLAN, sc))
    assert lst["throughput"] == one["throughput"]
    assert lst["memory"] == one["memory"]


def test_busy_prefill_context_is_length_biased(tmp_path):
    fixed = V.Context(_scenario(tmp_path, 5000, "fixed", hit=0.2))
    spread = V.Context(_scenario(tmp_path, [[1000, 1.0], [9000, 1.0]], "spread", hit=0.2))  # mean 5000
    assert fixed.in_mean == spread.in_mean == 5000
    assert fixed.ctx_pf == pytest.approx(5000 * 0.6)
    # tokens of the 9,000-token prompts are 9x as many: (1e6 + 81e6) / 1e4 = 8,200 tokens, x (1 + 0.2) / 2
    assert spread.ctx_pf == pytest.approx(8200 * 0.6)
    # KV per sequence in flight and the decode context read the plain input mean (a decode step samples
    # sequences by their output length, not their input)
    assert fixed.ctx_dec == spread.ctx_dec


def test_spread_input_prefills_slower_at_the_same_mean(tmp_path):
    fixed = _scenario(tmp_path, 5000, "fixed")
    spread = _scenario(tmp_path, [[1000, 1.0], [9000, 1.0]], "spread")
    ef = estimate_serving(fixed, parse_serve_plan(PLAN, fixed))
    es = estimate_serving(spread, parse_serve_plan(PLAN, spread))
    assert es["throughput"]["output_tokens_per_s"] < ef["throughput"]["output_tokens_per_s"]
    assert es["memory"] == ef["memory"]  # same mean input: the same KV per sequence


def test_queue_mean_service_is_the_mean_input_over_the_busy_rate(tmp_path):
    """E[S] = (1 - hit) E[l] / pf_rate: the busy step's rate already counts the length-biased context."""
    sc = _scenario(tmp_path, [[1000, 4.0], [9000, 1.0]], "rate", hit=0.3, requests_per_s=2.0)
    plan = parse_serve_plan(PLAN, sc)
    ctx = V.Context(sc)
    ctx.links = timing.comm_links(ctx.node, plan, ctx.facts.hidden, bool(ctx.facts.experts))
    b = np.array([40.0])
    _, pf_rate = V._ttft_service(ctx, plan, b, ctx.in_mean, rate=True)
    es, es2 = V.prompt_service_moments(ctx, plan, b, pf_rate)
    assert float(es[0]) == pytest.approx(0.7 * 2600 / float(pf_rate[0]), rel=1e-9)
    assert float(es2[0]) > float(es[0]) ** 2


def test_one_prompt_attends_to_its_own_prefix(tmp_path):
    """The p90 prompt's cached prefix is hit x its own length (prefix_cache_hit is a share of the input)."""
    sc = _scenario(tmp_path, {"mean": 2048, "p90": 6000}, "p90", hit=0.3)
    plan = parse_serve_plan(PLAN, sc)
    ctx = V.Context(sc)
    ctx.links = timing.comm_links(ctx.node, plan, ctx.facts.hidden, bool(ctx.facts.experts))
    b = np.array([10.0])
    chunk = np.maximum(plan["max_batched_tokens"] - b, 1.0)
    one = V._ttft_service(ctx, plan, b, 6000.0)[0]
    direct = V.prompt_prefill_s(ctx, plan, b, 6000.0 * 0.7, chunk, ctx.ctx_dec, 6000.0 * 0.65)
    assert float(one[0]) == pytest.approx(float(direct[0]))
