"""vLLM launched with --async-scheduling at a release where it is not the default (plan key async_scheduling,
engines.plan_async_scheduling): the engine core schedules step n+1 while the GPU runs step n, so the host step
overlaps the GPU step as at the pinned release (timing.overlaps_host_step)."""

import json

import pytest
from click.testing import CliRunner

from planner.cli import main
from planner.serve import launch as L
from planner.serve import timing
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving

from conftest import ROOT, serve_70b_with

runner = CliRunner()
SERVE_70B = ROOT / "scenarios" / "serve_70b.yaml"



def _tpot(sc, plan: str) -> float:
    return estimate_serving(sc, parse_serve_plan(plan, sc))["latency"]["tpot_ms"]["p50"]


def test_async_flag_overlaps_the_host_step_of_an_older_vllm(tmp_path):
    sc, _ = serve_70b_with(tmp_path, {"concurrency": 4})
    base = "engine=vllm,weights=fp8,kv_cache=fp8,tp=4,replicas=1"
    sync = _tpot(sc, base + ",engine_version=0.11.0")
    flagged = _tpot(sc, base + ",engine_version=0.11.0,async_scheduling=true")
    pinned = _tpot(sc, base)  # the pinned release schedules asynchronously by default
    assert flagged < sync
    assert flagged == pytest.approx(pinned, rel=1e-9)
    # the GPU step at 4 requests is longer than the host step, so the overlap hides all of it
    assert sync - flagged == pytest.approx(timing.STEP_OVERHEAD_S * 1e3, rel=0.02)


def test_async_flag_does_not_apply_with_pipeline_parallelism_before_the_pp_default(tmp_path):
    sc, _ = serve_70b_with(tmp_path, {"concurrency": 4})
    base = "engine=vllm,weights=fp8,kv_cache=fp8,tp=2,pp=2,replicas=1,engine_version=0.11.0"
    assert _tpot(sc, base + ",async_scheduling=true") == pytest.approx(_tpot(sc, base), rel=1e-12)


def test_async_flag_reaches_the_vllm_launch_and_is_refused_elsewhere(tmp_path):
    sc, path = serve_70b_with(tmp_path, {"concurrency": 16})
    r = estimate_serving(sc, parse_serve_plan("engine=vllm,weights=fp8,tp=4,async_scheduling=true", sc))
    assert r["plan"]["async_scheduling"] is True
    args = L.vllm_args(sc, r["plan"], 1)
    assert "--async-scheduling" in args
    L.check_args("vllm", args)  # the flag exists in the pinned vLLM release
    assert "async_scheduling=true" in L.plan_text(r["plan"])
    plain = estimate_serving(sc, parse_serve_plan("engine=vllm,weights=fp8,tp=4", sc))
    assert "--async-scheduling" not in L.vllm_args(sc, plain["plan"], 1) and plain["plan"]["async_scheduling"] is False
    out = runner.invoke(main, ["serve", str(path), "--plan", "engine=sglang,async_scheduling=true"])
    assert out.exit_code == 2 and "async_scheduling" in out.output and "vLLM" in out.output
    js = json.loads(runner.invoke(main, ["serve", str(path), "--plan", "engine=vllm,tp=4", "--json"]).stdout)
    assert js["plan"]["async_scheduling"] is False
