"""TTFT at a fixed concurrency (evaluate.closed_loop_wait_quantile): C requests in a closed loop can only
queue behind the C - 1 others' prefills (the finite-source M/M/1//K queue, Kleinrock vol. 1 Sec. 3.9), so at
C = 1 TTFT is the prefill plus the scheduling wait alone, and the queue term tends to the open-loop M/M/1
wait as the number of sources grows at a fixed total rate."""

from math import factorial

import numpy as np
import pytest
import yaml

from planner.serve import evaluate as V
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving

from conftest import ROOT, mm1_wait_quantile

SERVE_70B = ROOT / "scenarios" / "serve_70b.yaml"
PLAN = "engine=vllm,weights=fp8,kv_cache=fp8,tp=8,pp=1,replicas=1"


def _scenario(tmp_path, concurrency: int, input_tokens=8188):  # prefill ~ 1 / 4 of the decode: a busy queue
    data = yaml.safe_load(SERVE_70B.read_text())
    data["serving"] = {"input_tokens": input_tokens, "output_tokens": 128, "concurrency": concurrency}
    path = tmp_path / f"sc{concurrency}.yaml"
    path.write_text(yaml.safe_dump(data))
    from planner.spec.serving import load_serving_scenario

    return load_serving_scenario(path)


def _repairman(k: int, lam: float, mu: float):
    """(P(wait > 0), E[wait]) of an arrival in the M/M/1//k queue, by its product-form states: the arrival
    sees the (k - 1)-source queue, p_n ~ (k - 1)! / (k - 1 - n)! (1 / (mu Z))^n, Z = k / lam."""
    m, r = k - 1, lam / (k * mu)
    w = np.array([factorial(m) / factorial(m - n) * r ** n for n in range(m + 1)])
    p = w / w.sum()
    return 1 - p[0], float((np.arange(m + 1) * p).sum() / mu)


def test_one_request_in_flight_has_no_queue(tmp_path):
    sc = _scenario(tmp_path, 1)
    plan = parse_serve_plan(PLAN, sc)
    r = estimate_serving(sc, plan)
    ev = V.evaluate(sc, plan)
    ctx = V.Context(sc)
    ctx.links = V.timing.comm_links(ctx.node, plan, ctx.facts.hidden, bool(ctx.facts.experts))
    b = np.asarray(ev["batch"], dtype=float)
    assert b[0] == 1.0
    prefill90 = V._ttft_service(ctx, plan, b, ctx.in_p90)[0]
    # the one request finds nothing else running: no step of another request to wait out (schedule_wait others=0)
    expect = (prefill90 + V.schedule_wait(plan, ev["iteration_s"], 0.9, others=0.0))[0] * 1e3
    assert r["latency"]["ttft_ms"]["p90"] == pytest.approx(expect, abs=0.06)
    assert r["latency"]["ttft_ms"]["p50"] <= r["latency"]["ttft_ms"]["p90"]


def test_ttft_does_not_fall_as_concurrency_grows(tmp_path):
    last = {"p50": 0.0, "p90": 0.0}
    for c in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024):
        sc = _scenario(tmp_path, c)
        ttft = estimate_serving(sc, parse_serve_plan(PLAN, sc))["latency"]["ttft_ms"]
        assert ttft["p50"] <= ttft["p90"], c
        assert ttft["p50"] >= last["p50"] - 1e-6 and ttft["p90"] >= last["p90"] - 1e-6, (c, ttft, last)
        last = ttft


@pytest.mark.parametrize("k", [2, 3, 8, 40])
@pytest.mark.parametrize("load", [0.3, 0.8, 1.5])
def test_wait_matches_the_repairman_states(k, load):
    mu = 4.0
    lam = load * mu
    busy, mean = _repairman(k, lam, mu)
    assert 1 - V.erlang_b(k - 1, mu * k / lam) == pytest.approx(busy, rel=1e-9)
    # the exponential tail keeps the exact P(wait > 0) and mean: integrate P(W > t) numerically
    qs = np.linspace(0.0, 0.9999, 4001)
    tq = np.array([float(V.closed_loop_wait_quantile(lam, mu, k, q)) for q in qs])
    assert float(np.trapezoid(tq, qs)) == pytest.approx(mean, rel=0.02)


def test_one_source_never_waits_and_many_sources_give_the_open_loop_wait():
    lam, mu = 7.0, 10.0
    assert float(V.closed_loop_wait_quantile(lam, mu, 1, 0.9)) == 0.0
    assert float(V.closed_loop_wait_quantile(3 * mu, mu, 1, 0.99)) == 0.0  # even where one server is overrun
    for q in (0.5, 0.9):
        waits = [float(V.closed_loop_wait_quantile(lam, mu, k, q)) for k in (2, 8, 64, 512, 100_000)]
        assert waits == sorted(waits)
        assert waits[-1] == pytest.approx(float(mm1_wait_quantile(lam, mu, q)), rel=1e-3)
