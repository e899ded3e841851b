"""Spread of the output lengths (planner.spec.serving.length_biased_mean): a decode step samples the
sequences in flight, and a request stays in flight for as many steps as it has output tokens, so a running
sequence's output is length-biased, E[o^2] / E[o], and it holds input + E[o^2] / (2 E[o]) tokens of KV on
average. A fixed output count keeps the old input + output / 2; a spread one costs KV and attention."""

import pytest
import yaml

from planner.serve import evaluate as V
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving
from planner.spec.serving import TokenMoments, length_biased_mean

from conftest import ROOT

SERVE_70B = ROOT / "scenarios" / "serve_70b.yaml"
PLAN = "engine=vllm,weights=fp8,kv_cache=fp8,tp=2,pp=1,replicas=1"


def _scenario(tmp_path, output_tokens, name):
    data = yaml.safe_load(SERVE_70B.read_text())
    data["serving"] = {"input_tokens": 1000, "output_tokens": output_tokens, "offline": True}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    from planner.spec.serving import load_serving_scenario

    return load_serving_scenario(path)


def test_length_biased_mean_of_each_form():
    assert length_biased_mean(512) == 512.0
    # {mean, p90}: read as token_moments reads it, a tenth at p90 and the rest at a = (mean - p90 / 10) / 0.9
    a = (300 - 90) / 0.9
    assert length_biased_mean(TokenMoments(mean=300, p90=900)) == pytest.approx((0.9 * a * a + 0.1 * 900 ** 2) / 300)
    assert length_biased_mean(TokenMoments(mean=300, p90=300)) == pytest.approx(300.0)  # p90 = mean: no spread
    assert length_biased_mean([(512, 0.3)]) == pytest.approx(512.0)
    # two equally likely lengths 100 and 900: (100^2 + 900^2) / (100 + 900) = 820 against a mean of 500
    assert length_biased_mean([(100, 1.0), (900, 1.0)]) == pytest.approx(820.0)
    # shares weigh the counts: 3 x 100 and 1 x 500 -> (3e4 + 25e4) / (300 + 500) = 350
    assert length_biased_mean([(100, 3.0), (500, 1.0)]) == pytest.approx(350.0)


def test_fixed_list_equals_the_integer(tmp_path):
    one = estimate_serving(sc := _scenario(tmp_path, 512, "int"), parse_serve_plan(PLAN, sc))
    lst = estimate_serving(sc := _scenario(tmp_path, [[512, 1.0]], "list"), parse_serve_plan(PLAN, sc))
    assert lst["throughput"] == one["throughput"]
    assert lst["memory"] == one["memory"]


def test_spread_outputs_hold_more_kv_and_decode_slower(tmp_path):
    fixed = _scenario(tmp_path, 500, "fixed")
    spread = _scenario(tmp_path, [[100, 1.0], [900, 1.0]], "spread")  # same mean output, 500
    cf, cs = V.Context(fixed), V.Context(spread)
    assert cf.out_mean == cs.out_mean == 500
    assert cf.ctx_dec == pytest.approx(1000 + 250)
    assert cs.ctx_dec == pytest.approx(1000 + 410)
    ef = estimate_serving(fixed, parse_serve_plan(PLAN, fixed))
    es = estimate_serving(spread, parse_serve_plan(PLAN, spread))
    # whole sequences that fit (memory.max_concurrent_sequences): input + E[o^2] / E[o] tokens each
    ratio = ef["memory"]["max_concurrent_sequences"] / es["memory"]["max_concurrent_sequences"]
    assert ratio == pytest.approx((1000 + 820) / (1000 + 500), rel=0.01)
    assert es["throughput"]["output_tokens_per_s"] < ef["throughput"]["output_tokens_per_s"]
