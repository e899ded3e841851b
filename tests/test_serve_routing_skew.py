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


def test_attention_dp_moe_layers_all_gather_and_reduce_scatter():
    """TensorRT-LLM without MNNVL and with ep <= top_k gathers every rank's tokens (FP8 / NVFP4 layers
    quantise them first) and reduce-scatters the bf16 outputs; other engines gather bf16."""
    from planner.serve import engines as E
    from planner.serve import timing as T

    f = model_facts(catalog.model("qwen3-235b-a22b"))
    lk = {"gather": (1e-5, 1e-12), "reduce_scatter": (1e-5, 1e-12)}  # 10 us + 1 ps per byte of the buffer
    names = E.WEIGHT_NAMES
    hw = {"gather_bpe": T.moe_gather_bytes(names), "mnnvl": False}
    t = {"engine": np.array([E.TRTLLM, E.TRTLLM, E.TRTLLM, E.VLLM]),
         "wq": np.array([names.index(s) for s in ("fp8", "nvfp4", "fp8-block", "fp8")])}
    n = 4096.0
    got = T.attn_dp_moe_comm_s(f, t, lk, hw, n, 1)
    route = n * T.MOE_GATHER_ROUTE_BYTES * f.top_k
    expect = [2e-5 + 1e-12 * (n * f.hidden * q + route + n * f.hidden * 2.0) for q in (1.0, 0.5625, 2.0, 2.0)]
    assert got == pytest.approx(expect, rel=1e-9)
    assert got[0] < got[2] == pytest.approx(got[3])


def test_mnnvl_nodes_keep_the_all_to_all_when_ep_exceeds_top_k():
    from planner.serve import engines as E
    from planner.serve import timing as T

    f = model_facts(catalog.model("deepseek-v3"))
    lk = {"gather": (1e-5, 1e-12), "reduce_scatter": (1e-5, 1e-12), "all_to_all": (1e-5, 3e-12)}
    names = E.WEIGHT_NAMES
    t = {"engine": np.array([E.TRTLLM] * 3), "wq": np.array([names.index("nvfp4")] * 3), "tp": np.array([8, 16, 16]),
         "ep": np.array([8, 16, 16])}
    n = 8192.0
    flat = T.attn_dp_moe_comm_s(f, t, lk, {"gather_bpe": T.moe_gather_bytes(names), "mnnvl": False}, n, 1)
    nvl = T.attn_dp_moe_comm_s(f, t, lk, {"gather_bpe": T.moe_gather_bytes(names), "mnnvl": True}, n, 1)
    assert nvl[0] == flat[0]  # ep 8 <= top_k 8: all-gather even on MNNVL
    a2a = 2 * (1e-5 + 3e-12 * n * f.hidden * 2.0 * f.top_k / 16) * f.moe_layers / f.layers
    assert nvl[1] == pytest.approx(a2a) and flat[1] != pytest.approx(a2a)


def test_busiest_rank_moves_its_own_routed_copies():
    from planner.serve.memory import ACT_BYTES
    from planner.serve.timing import activation_bytes_per_token

    f = model_facts(catalog.model("qwen3-235b-a22b"))
    tp, ta, ep = np.array([8]), np.array([1]), np.array([8])
    base = float(activation_bytes_per_token(f, tp, ta, ep)[0])
    busy = float(activation_bytes_per_token(f, tp, ta, ep, 1.5)[0])
    # only the per-copy bytes scale: expert GEMM outputs (written + read) and dispatch / combine copies
    per_copy = 2.0 * (3.0 * f.ffn_per_token / 8 + (f.top_k - 1) * f.hidden / 8) + 2.0 * f.top_k * f.hidden / 8
    assert busy - base == pytest.approx(0.5 * ACT_BYTES * per_copy, rel=1e-9)


def test_more_ranks_than_experts_stays_finite():
    f = dataclasses.replace(model_facts(catalog.model("qwen3-235b-a22b")), experts=8, top_k=2)
    vals = skew_imbalance(f, np.array([1000.0, 1000.0, 1.0]), np.array([8, 16, 16]))
    assert np.all(np.isfinite(vals)) and np.all(vals >= 1.0)
    assert vals[1] == pytest.approx(vals[0])  # the 8 extra ranks hold no expert and receive nothing
