"""p99 as a first-class percentile: TTFT / TPOT p99 in the JSON contract, slo keys ttft_ms_p99 / tpot_ms_p99 beside
the p90 ones (validation, the SLO test, explain's nearest fixes), the TPOT spread of the prompt chunks among a
request's own steps (evaluate.chunk_spread_x, tpot_quantile), and serving_accuracy's Server points checked at the
percentile their source states."""

import json
import sys

import numpy as np
import pytest
from scipy.special import ndtri

from planner.errors import InputError
from planner.serve import evaluate as V
from planner.serve import timing
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving, solve_serving
from planner.spec.serving import SLO, token_quantile

from conftest import ROOT, serve_70b_with

PLAN = "engine=vllm,weights=fp8,kv_cache=fp8,tp=2,pp=1,ep=1,replicas=2,max_batch=256,max_batched_tokens=2048"


def test_slo_p99_keys_and_their_check():
    assert SLO(ttft_ms_p99=2000, tpot_ms_p99=200).targets() == [("tpot", "p99", 200), ("ttft", "p99", 2000)]
    with pytest.raises(ValueError, match="tpot_ms_p99 .* below tpot_ms_p90"):
        SLO(tpot_ms_p90=50, tpot_ms_p99=40)


def test_bad_p99_target_names_the_key(tmp_path):
    with pytest.raises(InputError, match="serving.slo.ttft_ms_p99"):
        serve_70b_with(tmp_path, {"requests_per_s": 10, "slo": {"ttft_ms_p99": -5}})
    with pytest.raises(InputError, match="tpot_ms_p99 .* below tpot_ms_p90"):
        serve_70b_with(tmp_path, {"requests_per_s": 10, "slo": {"tpot_ms_p90": 50, "tpot_ms_p99": 40}})


def test_token_quantile():
    pts = [[t, 1.0] for t in range(1, 101)]
    assert token_quantile(pts, 0.99) == 99 and token_quantile(pts, 0.9) == 90
    assert token_quantile(512, 0.99) == 512


def test_chunk_spread_x_fixed_output_is_the_normal_quantile_over_the_gaps():
    # one output length o: TPOT is the mean of o - 1 gaps, so its standardised quantile is z_q / sqrt(o - 1)
    for q in (0.9, 0.99):
        assert V.chunk_spread_x(257, q) == pytest.approx(ndtri(q) / 16.0, rel=1e-6)


def test_chunk_spread_x_matches_a_simulated_binomial_mixture():
    # requests of 61 or 601 outputs (equal shares), each gap carrying a chunk with probability f: the share of
    # simulated requests whose (TPOT - mean) / (sqrt(f (1 - f)) Delta) exceeds x_q is about 1 - q (the binomial's
    # lattice and skew, which the normal reading leaves out, keep it within a quarter of that)
    rng = np.random.default_rng(0)
    f, n = 0.3, 400_000
    g = np.where(rng.random(n) < 0.5, 60, 600)
    dev = (rng.binomial(g, f) / g - f) / np.sqrt(f * (1 - f))
    for q in (0.9, 0.99):
        assert (dev > V.chunk_spread_x([[61, 1.0], [601, 1.0]], q)).mean() == pytest.approx(1 - q, rel=0.25)


def test_latency_has_p99_at_or_above_p90(tmp_path):
    for traffic in ({"requests_per_s": 15}, {"concurrency": 64}):  # 15/s: below the plan's prefill capacity
        sc, _ = serve_70b_with(tmp_path, traffic)
        lat = estimate_serving(sc, parse_serve_plan(PLAN, sc))["latency"]
        for k in ("ttft_ms", "tpot_ms"):
            assert lat[k]["p50"] <= lat[k]["p90"] <= lat[k]["p99"]


def test_tpot_quantile_is_the_mean_when_every_step_carries_a_chunk(tmp_path):
    # offline at a batch whose prompts fill every step (f = 1): no chunk spread, no batch spread
    sc, _ = serve_70b_with(tmp_path, {"offline": True})
    t = parse_serve_plan(PLAN, sc)
    ctx = V.Context(sc)
    ctx.links = timing.comm_links(ctx.node, t, ctx.facts.hidden, bool(ctx.facts.experts))
    b = np.array([200.0])  # 200 x 1024 / 1024 = 200 prompt tokens per step, below one 1,024-token prompt: f < 1
    parts = V._iter_parts(ctx, t, b)
    assert 0 < parts[1][0] < 1 and parts[2][0] > 0
    assert V.tpot_quantile(ctx, t, b, parts, "p99")[0] > parts[0][0]
    b = np.array([1500.0])  # 1,500 prompt tokens per step: every step carries a chunk
    parts = V._iter_parts(ctx, t, b)
    assert parts[1][0] == 1.0
    assert V.tpot_quantile(ctx, t, b, parts, "p99")[0] == parts[0][0]


def test_p99_target_is_checked_at_p99(tmp_path):
    sc, _ = serve_70b_with(tmp_path, {"requests_per_s": 15})  # below the plan's prefill capacity (~19/s)
    lat = estimate_serving(sc, parse_serve_plan(PLAN, sc))["latency"]
    mid = (lat["ttft_ms"]["p90"] + lat["ttft_ms"]["p99"]) / 2
    assert lat["ttft_ms"]["p90"] < mid < lat["ttft_ms"]["p99"]
    for key, meets in (("ttft_ms_p90", True), ("ttft_ms_p99", False)):
        sc, _ = serve_70b_with(tmp_path, {"requests_per_s": 15, "slo": {key: mid}})
        assert estimate_serving(sc, parse_serve_plan(PLAN, sc))["latency"]["meets_slo"] is meets


def test_explain_names_the_p99_target_to_relax(tmp_path):
    for traffic in ({"concurrency": 64, "slo": {"tpot_ms_p99": 0.5}}, {"requests_per_s": 5, "slo": {"ttft_ms_p99": 1}}):
        sc, _ = serve_70b_with(tmp_path, traffic)
        out = solve_serving(sc)
        assert not out["plans"]
        key = next(iter(traffic["slo"]))
        fix = next(f for f in out["infeasible"]["fixes"] if f["change"].startswith(f"relax slo.{key} to "))
        relaxed = float(fix["change"].rsplit(" ", 1)[1])
        sc2, _ = serve_70b_with(tmp_path, {**traffic, "slo": {key: relaxed}})
        assert solve_serving(sc2)["plans"], "the nearest fix gives a plan"


def test_server_points_take_the_percentile_their_source_states():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import serving_accuracy as A

    assert A.latency_percentile({"ttft_ms": 2000, "percentile": 99}) == "p99"
    assert A.latency_percentile({"ttft_ms": 2000, "statistic": "summary prints ... (p99 bounds under MLPerf rules)"}) == "p99"
    assert A.latency_percentile({"ttft_ms": 2000}) == "p90"
    with pytest.raises(ValueError, match="percentile"):
        A.latency_percentile({"percentile": 95})


def test_console_names_the_p99_latencies(tmp_path):
    """The plans table shows p90 columns; the best plan's line (serve) and the estimate's latency line (serve --plan)
    give the p99 figures the JSON carries, so a p99 target can be read off the console too."""
    from click.testing import CliRunner

    from planner.cli import main

    _, path = serve_70b_with(tmp_path, {"requests_per_s": 15, "slo": {"ttft_ms_p99": 5000}})
    runner = CliRunner()
    for args in (["serve", str(path), "--top", "1"], ["serve", str(path), "--plan", PLAN]):
        r = runner.invoke(main, args)
        assert r.exit_code == 0 and "TTFT p99 " in r.output and "TPOT p99 " in r.output, r.output
        got = json.loads(runner.invoke(main, args + ["--json"]).stdout)
        lat = (got["plans"][0] if "plans" in got else got)["latency"]
        assert f"TTFT p99 {lat['ttft_ms']['p99']:,.0f} ms" in r.output, r.output
