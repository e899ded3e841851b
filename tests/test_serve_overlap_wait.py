"""The overlap scheduler's step before a new request's prefill (evaluate.schedule_wait): SGLang's
event_loop_overlap, TensorRT-LLM's _executor_loop_overlap and vLLM's async scheduling launch step i before they
process step i - 1, so a request that arrives while a step runs enters the step after the next one; a serial loop
takes it into the next one. Checked against a step-by-step replay of the two loop orders."""

import math

import numpy as np
import pytest

from planner.serve import evaluate as V
from planner.serve.plan import parse_serve_plan

from conftest import serve_70b_with


def _replay_waits(overlap: bool, n: int = 20000, seed: int = 7) -> np.ndarray:
    """Seconds from arrival to the start of the step that carries the request, steps of 1 s back to back (step i
    runs [i, i + 1)). Serial loop: after step i - 1 ends the host receives, schedules and launches step i, so an
    arrival at x is in step ceil(x). Overlap loop: the host receives and launches step i when step i - 2 ends (it
    then waits on step i - 1 while step i is queued), so an arrival at x is in step ceil(x) + 1."""
    x = np.random.default_rng(seed).uniform(0.0, 1000.0, n)
    first = np.ceil(x) + (1 if overlap else 0)
    return first - x


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_wait_quantiles_match_the_replayed_loops(tmp_path, q):
    sc, _ = serve_70b_with(tmp_path, {"requests_per_s": 2.0})
    step = np.array([0.05])
    sglang = parse_serve_plan("engine=sglang,weights=fp8,kv_cache=fp8,tp=4", sc)
    serial = parse_serve_plan("engine=vllm,weights=fp8,kv_cache=fp8,tp=4,engine_version=0.10.0", sc)
    for plan, overlap in ((sglang, True), (serial, False)):
        sim = np.quantile(_replay_waits(overlap), q) * step[0]
        got = V.schedule_wait(plan, step, q)[0]  # b None: the replica is busy
        assert got == pytest.approx(sim, rel=0.02), (plan["engine"], q)


def test_the_extra_step_needs_other_requests_running(tmp_path):
    sc, _ = serve_70b_with(tmp_path, {"requests_per_s": 2.0})
    plan = parse_serve_plan("engine=sglang,weights=fp8,kv_cache=fp8,tp=4", sc)
    step = np.array([0.05])
    idle = V.schedule_wait(plan, step, 0.5, others=0.0)[0]
    assert idle == pytest.approx(0.5 * 0.05)  # nothing running: the loop takes the request at once
    for b in (0.5, 2.0, 50.0):  # Poisson arrivals find others running with probability 1 - exp(-b)
        got = V.schedule_wait(plan, step, 0.5, b=np.array([b]))[0]
        assert got == pytest.approx((0.5 + 1.0 - math.exp(-b)) * 0.05)


def test_ttft_at_a_rate_carries_the_step(tmp_path):
    """The estimate's TTFT p50 under a rate: own prefill + M/G/1 wait + (0.5 + busy) steps on SGLang, 0.5 step on a
    vLLM release without async scheduling (same model, same layout)."""
    sc, _ = serve_70b_with(tmp_path, {"requests_per_s": 2.0})
    for text, extra in (("engine=sglang,weights=fp8,kv_cache=fp8,tp=4", 1.0),
                        ("engine=vllm,weights=fp8,kv_cache=fp8,tp=4,engine_version=0.10.0", 0.0)):
        plan = parse_serve_plan(text, sc)
        ev = V.evaluate(sc, plan)
        b, step = ev["batch"], ev["iteration_s"]
        ctx = ev["ctx"]
        ctx.links = V.timing.comm_links(ctx.node, plan, ctx.facts.hidden, bool(ctx.facts.experts))
        own, pf_rate = V._ttft_service(ctx, plan, np.maximum(b, 1e-3), ctx.in_mean, rate=True)
        es, es2 = V.prompt_service_moments(ctx, plan, np.maximum(b, 1e-3), pf_rate)
        wait = V.timing.mg1_wait_quantile(np.array([2.0]), es, es2, 0.5)
        expect = own + wait + (0.5 + extra * -np.expm1(-b)) * step
        assert ev["ttft"]["p50"][0] == pytest.approx(expect[0], rel=1e-6), text
