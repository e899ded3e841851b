"""The prefill queue under a request rate as M/G/1 (timing.mg1_wait_quantile, evaluate.prompt_service_moments):
closed forms of queueing theory, not outputs of the planner. Fixed service halves the M/M/1 mean wait
(Pollaczek-Khinchine), exponential service is M/M/1 exactly, a two-length input matches a direct P-K sum over
its lengths, and the exponential tail keeps the exact atom P(W > 0) = rho and the exact mean."""

import numpy as np
import pytest
import yaml
from scipy.integrate import quad

from planner.serve import evaluate as V
from planner.serve import timing
from planner.serve.plan import parse_serve_plan
from planner.spec.serving import TokenMoments, load_serving_scenario, token_moments

from conftest import ROOT, mm1_wait_quantile, mm1_within

SERVE_70B = ROOT / "scenarios" / "serve_70b.yaml"
RHOS = (0.05, 0.3, 0.5, 0.7, 0.9, 0.97)


def _mean_wait(lam, es, es2):
    """E[W] = integral of P(W > t) under mg1_within."""
    tail = lambda t: 1.0 - float(timing.mg1_within(lam, es, es2, t))  # noqa: E731
    return quad(tail, 0, np.inf, limit=200)[0]


@pytest.mark.parametrize("rho", RHOS)
def test_fixed_service_waits_half_of_mm1(rho):
    es = 0.2
    lam = rho / es
    pk = lam * es * es / (2 * (1 - rho))            # Pollaczek-Khinchine with E[S^2] = E[S]^2
    mm1 = rho / ((1 / es) * (1 - rho))              # M/M/1 mean wait, rho / (mu (1 - rho))
    assert pk == pytest.approx(mm1 / 2)
    assert _mean_wait(lam, es, es * es) == pytest.approx(pk, rel=1e-6)
    for q in (0.5, 0.9, 0.99):
        assert float(timing.mg1_wait_quantile(lam, es, es * es, q)) == pytest.approx(
            float(mm1_wait_quantile(lam, 1 / es, q)) / 2, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("rho", RHOS)
def test_exponential_service_is_mm1(rho):
    mu = 7.0
    lam, es, es2 = rho * mu, 1 / mu, 2 / mu ** 2  # exponential: E[S^2] = 2 / mu^2
    for q in (0.5, 0.9, 0.99):
        assert float(timing.mg1_wait_quantile(lam, es, es2, q)) == pytest.approx(
            float(mm1_wait_quantile(lam, mu, q)), rel=1e-12, abs=1e-15)
    for t in (0.0, 0.01, 0.3, 2.0):
        assert float(timing.mg1_within(lam, es, es2, t)) == pytest.approx(float(mm1_within(lam, mu, t)),
                                                                           rel=1e-12)


@pytest.mark.parametrize("rho", RHOS)
def test_tail_keeps_the_atom_and_the_pk_mean(rho):
    # two service times, 0.05 s (80%) and 0.8 s (20%): E[S] = 0.2, E[S^2] = 0.13
    s, p = np.array([0.05, 0.8]), np.array([0.8, 0.2])
    es, es2 = float(p @ s), float(p @ s ** 2)
    lam = rho / es
    assert float(timing.mg1_within(lam, es, es2, 0.0)) == pytest.approx(1 - rho)   # P(W > 0) = rho
    assert _mean_wait(lam, es, es2) == pytest.approx(lam * es2 / (2 * (1 - rho)), rel=1e-6)
    for q in (0.5, 0.9, 0.99):
        tq = float(timing.mg1_wait_quantile(lam, es, es2, q))
        if rho <= 1 - q:
            assert tq == 0.0
        else:
            assert float(timing.mg1_within(lam, es, es2, tq)) == pytest.approx(q, rel=1e-12)


def test_heavy_traffic_rate_and_instability():
    es, es2 = 0.2, 0.13
    for rho in (0.99, 0.999, 0.9999):
        lam = rho / es
        t1 = 1.0 / (lam * es2 / (2 * (1 - rho)) / rho)             # rho / Wq
        kingman = 2 * (1 - rho) * es / es2
        assert t1 == pytest.approx(kingman, rel=2 * (1 - rho))
    assert float(timing.mg1_wait_quantile(1 / es, es, es2, 0.9)) == np.inf
    assert float(timing.mg1_within(1.2 / es, es, es2, 10.0)) == 0.0


def test_token_moments():
    assert token_moments(300) == (300.0, 300.0 ** 2, 300.0 ** 3, 300.0 ** 4)
    m = token_moments([[100, 1], [300, 3]])
    assert m == pytest.approx((250.0, (1e4 + 3 * 9e4) / 4, (1e6 + 3 * 2.7e7) / 4, (1e8 + 3 * 8.1e9) / 4))
    # {mean, p90}: a tenth at p90, the rest at (mean - p90 / 10) / 0.9; a fixed count where p90 = mean
    m1, m2, *_ = token_moments(TokenMoments(mean=2048, p90=6000))
    a = (2048 - 600) / 0.9
    assert m1 == pytest.approx(2048) and m2 == pytest.approx(0.9 * a * a + 0.1 * 6000 ** 2)
    assert token_moments(TokenMoments(mean=300, p90=300)) == pytest.approx(token_moments(300))
    with pytest.raises(ValueError, match="p90 / 10"):
        TokenMoments(mean=100, p90=1000)


def _rate_scenario(tmp_path, input_tokens, rate):
    data = yaml.safe_load(SERVE_70B.read_text())
    data["serving"] = {"input_tokens": input_tokens, "output_tokens": 256, "requests_per_s": rate,
                       "prefix_cache_hit": 0.3}
    path = tmp_path / "sc.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_serving_scenario(path)


def _waits(sc, plan_text):
    """(evaluate's wait p50 and p90 = TTFT minus the prefill alone and the scheduling wait, ctx, plan, ev)."""
    plan = parse_serve_plan(plan_text, sc)
    ev = V.evaluate(sc, plan)
    ctx = V.Context(sc)
    ctx.links = timing.comm_links(ctx.node, plan, ctx.facts.hidden, bool(ctx.facts.experts))
    b = np.maximum(np.asarray(ev["batch"], dtype=float), 1e-3)
    out = []
    if plan["prefill_replicas"][0] > 0:  # an idle prefill instance's prefill + the KV move (p50, p90)
        pools = V._prefill_pools(ctx, plan, np.ones(1, dtype=bool))
        before = {"p50": pools[0] + pools[2], "p90": pools[3] + pools[4]}
    else:  # the prefill beside the decodes + the scheduling wait
        before = {key: V._ttft_service(ctx, plan, b, tokens)[0] + V.schedule_wait(plan, ev["iteration_s"], q)
                  for q, key, tokens in ((0.5, "p50", ctx.in_mean), (0.9, "p90", ctx.in_p90))}
    for key in ("p50", "p90"):
        out.append(float((ev["ttft"][key] - before[key])[0]))
    return out, ctx, plan, b, ev


PLANS = ("engine=vllm,weights=fp8,kv_cache=fp8,tp=4,pp=1,replicas=1",
         "engine=sglang,weights=fp8,kv_cache=fp8,tp=2,pp=2,replicas=1",
         "engine=vllm,weights=fp8,kv_cache=fp8,tp=4,pp=1,replicas=1,prefill_replicas=1")


@pytest.mark.parametrize("plan_text", PLANS)
def test_fixed_input_waits_half_of_mm1_at_the_busy_prefill_rate(tmp_path, plan_text):
    sc = _rate_scenario(tmp_path, 3000, 6.0)
    (w50, w90), ctx, plan, b, ev = _waits(sc, plan_text)
    i_eff = 3000 * 0.7
    if plan["prefill_replicas"][0] > 0:
        rate = V._prefill_pools(ctx, plan, np.ones(1, dtype=bool))[1]
    else:
        rate = V._ttft_service(ctx, plan, b, 3000.0, rate=True)[1]
    lam = 6.0
    mu = rate / i_eff
    assert 0.4 < float(lam / mu[0]) < 0.97, "the test needs a busy queue"
    assert w90 == pytest.approx(float(mm1_wait_quantile(lam, mu, 0.9)[0]) / 2, rel=1e-6)
    assert w50 == pytest.approx(float(mm1_wait_quantile(lam, mu, 0.5)[0]) / 2, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("plan_text", PLANS)
def test_two_lengths_match_a_direct_pk_sum(tmp_path, plan_text):
    """Input 1,000 tokens (80%) or 9,000 (20%): the wait equals the P-K / exponential-tail wait of the two
    service times, each the busy step's seconds per token at that prompt's own attended context."""
    lengths, shares = np.array([1000.0, 9000.0]), np.array([0.8, 0.2])
    sc = _rate_scenario(tmp_path, [[1000, 4], [9000, 1]], 6.0)
    (w50, w90), ctx, plan, b, ev = _waits(sc, plan_text)
    dis = plan["prefill_replicas"][0] > 0
    mbt = float(plan["max_batched_tokens"][0])
    chunk = mbt if dis else max(mbt - b[0], 1.0)
    n_dec = 0.0 if dis else b
    s = np.array([0.7 * n * float(timing.iteration_s(ctx.facts, plan, ctx.links, ctx.hw, n_dec, chunk,
                                                     0.0 if dis else ctx.ctx_dec, 0.3 * n + 0.7 * n / 2)[0]) / chunk
                  for n in lengths])
    es, es2 = float(shares @ s), float(shares @ s ** 2)
    lam = 6.0
    rho = lam * es
    assert 0.4 < rho < 0.97, "the test needs a busy queue"
    wq = lam * es2 / (2 * (1 - rho))
    if dis:
        assert w90 == pytest.approx(wq / rho * np.log(rho / 0.1), rel=1e-6)
    else:  # p90: the quantile of own prefill + wait over the two lengths (ttft_sum_quantile) at these moments
        own = np.array([V._ttft_service(ctx, plan, b, n)[0] for n in lengths])
        x90 = V.ttft_sum_quantile(own, shares, V.schedule_wait(plan, ev["iteration_s"], 0.9), np.array([lam]),
                                  np.array([es]), np.array([es2]), 0.9)
        assert float(ev["ttft"]["p90"][0]) == pytest.approx(float(x90[0]), rel=1e-6)
    assert w50 == pytest.approx(max(wq / rho * np.log(rho / 0.5), 0.0), rel=1e-6, abs=1e-12)
    # quadratic attention: the long prompt costs more than 9x the short one per prompt
    assert s[1] / s[0] > 9.0
