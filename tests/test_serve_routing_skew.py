"""The skewed-router EP imbalance (planner.serve.routing_skew) against an independent draw of
AIConfigurator's construction, and its place in the expert GEMM time."""

import dataclasses

import numpy as np
import pytest

from planner import catalog
from planner.serve.memory import model_facts
from planner.serve.routing_skew import ROUTING_SKEW_ALPHA, skew_imbalance
from planner.serve.timing import ep_load_imbalance, ep_rank_imbalance, expert_linear_s


def _aic_busiest_rank(experts, top_k, ep, tokens, alpha, draws=2000, seed=7):
    """Loads per expert ~ x^-alpha on [1, 0.8 tokens] scaled to tokens x top_k, experts in contiguous blocks
    per rank: mean busiest rank / mean rank (AIConfigurator collector/helper.py; no cap needed here)."""
    rng = np.random.default_rng(seed)
    a = 1.0 - alpha
    u = rng.random((draws, experts))
    x = ((((0.8 * tokens) ** a) - 1.0) * u + 1.0) ** (1.0 / a)
    loads = x / x.sum(axis=1, keepdims=True) * tokens * top_k
    assert loads.max() <= tokens  # the one-copy-per-token cap does not bind at these shapes
    ranks = loads.reshape(draws, ep, experts // ep).sum(axis=2)
    return float(ranks.max(axis=1).mean() / (tokens * top_k / ep))


@pytest.mark.parametrize("ep,tokens", [(4, 1024), (8, 4096), (16, 2048)])
def test_skew_matches_an_independent_draw_of_the_power_law(ep, tokens):
    f = model_facts(catalog.model("qwen3-235b-a22b"))
    expect = _aic_busiest_rank(f.experts, f.top_k, ep, tokens, ROUTING_SKEW_ALPHA)
    got = float(skew_imbalance(f, np.array([tokens]), np.array([ep]))[0])
    assert got == pytest.approx(expect, rel=0.04)
    assert got > 1.1  # far above the uniform router's sampling spread at these sizes
    assert got > float(ep_load_imbalance(f, tokens, ep)) + 0.05


def test_skew_grows_with_ep_and_vanishes_without_it():
    f = model_facts(catalog.model("deepseek-v3"))
    n = np.full(4, 4096.0)
    vals = skew_imbalance(f, n, np.array([1, 2, 4, 8]))
    assert vals[0] == 1.0 and np.all(np.diff(vals) > 0)
    assert np.all(skew_imbalance(f, n, np.array([1, 2, 4, 8]), alpha=0.0) == 1.0)
    dense = dataclasses.replace(f, experts=0, top_k=0)
    assert np.all(skew_imbalance(dense, n, np.array([8, 8, 8, 8])) == 1.0)


def test_compute_bound_experts_wait_for_the_busiest_rank_under_skew():
    f = dataclasses.replace(model_facts(catalog.model("qwen3-235b-a22b")), expert_ffn=0.0)
    lin, bw, big = 1e15, 4e12, 100_000.0
    skewed = expert_linear_s(f, 1, big, 8, lin, bw, 1.0, ep=8)
    uniform = expert_linear_s(f, 1, big, 8, lin, bw, 1.0, ep=8, skew_alpha=0.0)
    assert skewed / uniform == pytest.approx(float(ep_rank_imbalance(f, big, 8)) / float(ep_load_imbalance(f, big, 8)))
    assert skewed / uniform > 1.3
