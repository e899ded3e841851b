"""Scheduling wait before a new request's prefill (evaluate.schedule_wait): the engines schedule between
steps, and SGLang's --scheduler-recv-interval (plan key recv_interval) makes the
scheduler look at its queue only every k decode steps, so TTFT p50 / p90 add 0.5 / 0.9 x k x the step."""

import json

import pytest
from click.testing import CliRunner

from planner.cli import main
from planner.errors import InputError
from planner.serve import launch as L
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving

from conftest import ROOT, serve_70b_with

runner = CliRunner()
SERVE_70B = ROOT / "scenarios" / "serve_70b.yaml"



@pytest.mark.parametrize("traffic", [{"concurrency": 16}, {"requests_per_s": 2.0}])
def test_ttft_adds_the_wait_for_the_next_poll(tmp_path, traffic):
    sc, _ = serve_70b_with(tmp_path, traffic)
    base = "engine=sglang,weights=fp8,kv_cache=fp8,tp=4,replicas=1"
    one, ten = (estimate_serving(sc, parse_serve_plan(base + extra, sc)) for extra in ("", ",recv_interval=10"))
    step = one["latency"]["tpot_ms"]["p50"]
    assert ten["latency"]["tpot_ms"] == one["latency"]["tpot_ms"]  # decode steps are not changed
    assert ten["plan"]["recv_interval"] == 10 and one["plan"]["recv_interval"] == 1
    # 9 more steps in the poll cycle: p50 waits half of them, p90 nine tenths (uniform arrival phase)
    assert ten["latency"]["ttft_ms"]["p50"] - one["latency"]["ttft_ms"]["p50"] == pytest.approx(0.5 * 9 * step, rel=0.02)
    assert ten["latency"]["ttft_ms"]["p90"] - one["latency"]["ttft_ms"]["p90"] == pytest.approx(0.9 * 9 * step, rel=0.02)


def test_recv_interval_reaches_the_sglang_launch_and_is_refused_elsewhere(tmp_path):
    sc, path = serve_70b_with(tmp_path, {"concurrency": 16})
    r = estimate_serving(sc, parse_serve_plan("engine=sglang,weights=fp8,tp=4,recv_interval=30", sc))
    args = L.sglang_args(sc, r["plan"], 1)
    assert args[args.index("--scheduler-recv-interval") + 1] == "30"
    L.check_args("sglang", args)  # the flag exists in the pinned SGLang release
    assert "recv_interval=30" in L.plan_text(r["plan"])
    plain = estimate_serving(sc, parse_serve_plan("engine=sglang,weights=fp8,tp=4", sc))
    assert "--scheduler-recv-interval" not in L.sglang_args(sc, plain["plan"], 1)
    out = runner.invoke(main, ["serve", str(path), "--plan", "engine=trtllm,recv_interval=4"])
    assert out.exit_code == 2 and "SGLang setting" in out.output
    out = runner.invoke(main, ["serve", str(path), "--plan", "engine=sglang,recv_interval=0"])
    assert out.exit_code == 2 and "recv_interval must be at least 1" in out.output
    js = json.loads(runner.invoke(main, ["serve", str(path), "--plan", "engine=sglang,tp=4", "--json"]).stdout)
    assert js["plan"]["recv_interval"] == 1


def test_vllm_v0_multi_step_waits_like_a_poll_interval(tmp_path):
    """vLLM's V0 engine with --num-scheduler-steps k schedules only when the k-step run is done (LLMEngine.step):
    recv_interval k on a vLLM plan of a release before 0.11.0; refused on later releases and in the launch."""
    sc, path = serve_70b_with(tmp_path, {"requests_per_s": 2.0})
    base = "engine=vllm,weights=fp8,kv_cache=fp8,tp=4,replicas=1,engine_version=0.9.0,separate_prefill=true"
    one, eight = (estimate_serving(sc, parse_serve_plan(base + extra, sc)) for extra in ("", ",recv_interval=8"))
    step = one["latency"]["tpot_ms"]["p50"]
    assert eight["latency"]["tpot_ms"] == one["latency"]["tpot_ms"]
    assert eight["latency"]["ttft_ms"]["p50"] - one["latency"]["ttft_ms"]["p50"] == pytest.approx(0.5 * 7 * step, rel=0.02)
    out = runner.invoke(main, ["serve", str(path), "--plan", "engine=vllm,tp=4,recv_interval=8"])
    assert out.exit_code == 2 and "engine_version" in out.output and "Traceback" not in out.output
    # multi-step went in 0.10.1 (vLLM PR 22138), before V0 itself (0.11.0): a 0.10.1 V0 plan takes no recv_interval
    with pytest.raises(InputError, match="0.10.1"):
        parse_serve_plan(base.replace("0.9.0", "0.10.1") + ",recv_interval=8", sc)
    parse_serve_plan(base.replace("0.9.0", "0.10.0") + ",recv_interval=8", sc)
    with pytest.raises(Exception, match="num-scheduler-steps"):
        L.vllm_args(sc, eight["plan"] | {"separate_prefill": False}, 1)
