"""Two terms of the DeepSeek-R1 MLPerf v5.1 round (benchmarks/mlperf_inference_results.md, 'Blackwell steps near
saturation'): NVFP4 checkpoints of MLA models keep the query / latent-KV projections in bf16 (engines.MLA_BF16_SCHEMES,
ModelOpt's DeepSeek recipe), and the slowest attention-DP rank's decode attention (timing.adp_attention_imbalance,
the spread of the ranks' summed KV lengths, evaluate.running_context_cv)."""

import numpy as np
import pytest

from planner import catalog
from planner.serve import engines as E
from planner.serve import evaluate as V
from planner.serve import timing as T
from planner.serve.memory import model_facts, weight_bytes


def _facts(name):
    return model_facts(catalog.model(name))


def _one(tp=1, attn_dp=False):
    return {"tp": np.array([tp]), "pp": np.array([1]), "ep": np.array([tp]), "attn_dp": np.array([attn_dp])}


def test_mla_projections_exclude_the_output_projection():
    m = catalog.model("deepseek-v3")
    f = model_facts(m)
    o_proj = m.heads * m.mla.v_head_dim * m.hidden
    assert f.mla_proj == pytest.approx(f.attn - o_proj)
    assert 0 < f.mla_proj < f.attn
    assert _facts("llama-3.1-8b").mla_proj == 0.0  # no MLA: nothing kept apart


def test_nvfp4_keeps_mla_projections_in_bf16_only():
    assert E.mla_proj_scheme("nvfp4") == "bf16"
    assert E.mla_proj_scheme("fp8-block") == "fp8-block"  # DeepSeek's own FP8 checkpoint: block FP8 throughout
    assert E.mla_proj_scheme("mxfp4") == E.dense_scheme("mxfp4")  # MoE-only scheme: every dense linear bf16
    assert E.mla_proj_scheme("fp8") == "fp8"


def test_bf16_mla_projections_add_their_bytes():
    f = _facts("deepseek-v3")
    q = E.weight_bytes_per_element("nvfp4", f.hidden)
    t = _one(8, True)  # attention data parallel: every rank holds the whole attention
    base = float(weight_bytes(f, t, q, q)[0])
    kept = float(weight_bytes(f, t, q, q, 2.0)[0])
    assert kept - base == pytest.approx(f.layers * f.mla_proj * (2.0 - q))
    assert float(weight_bytes(f, t, q, q, q)[0]) == pytest.approx(base)  # same format: no change


def test_dense_linear_splits_rate_and_bytes_for_mla_projections():
    f = _facts("deepseek-v3")
    one = np.array([1])
    n = np.array([4096.0])
    lin, bw, bpe = 4e15, 6e12, 0.5625
    same = T.dense_linear_s(f, f.layers, n, n, one, one, lin, bw, bpe, lin, bpe)
    assert float(same[0]) == pytest.approx(float(T.dense_linear_s(f, f.layers, n, n, one, one, lin, bw, bpe)[0]))
    slower = T.dense_linear_s(f, f.layers, n, n, one, one, lin, bw, bpe, lin / 3, 2.0)
    rows = T.padded_rows(n)
    extra = 2.0 * rows * f.layers * f.mla_proj * (3 / lin - 1 / lin)  # compute-bound at 4,096 rows
    assert float(slower[0]) == pytest.approx(float(same[0]) + float(extra[0]), rel=1e-9)


def _steady_contexts(inputs, outputs, n, rng, per_slot=200):
    """Contexts of n running sequences in a steady state of continuous batching, simulated: slots that each run one
    request after another (outputs drawn from the list), observed at a random late step; the context of the request
    running then is its own input (drawn) + the outputs it has made so far."""
    outs = rng.choice(outputs, size=(n, per_slot)).astype(float)
    ends = np.cumsum(outs, axis=1)
    t = rng.uniform(0.25, 0.5, n) * ends[:, -1]  # observation step, long after the start, before the last request ends
    k = (ends < t[:, None]).sum(axis=1)  # index of the request running at t
    start = np.where(k > 0, ends[np.arange(n), np.maximum(k - 1, 0)], 0.0)
    return rng.choice(inputs, size=n) + (t - start)


def test_running_context_cv_matches_a_steady_state_simulation():
    rng = np.random.default_rng(3)
    inputs = [100, 800, 1500]
    outputs = [200, 1000, 4000, 12000]
    ctx = _steady_contexts(inputs, outputs, 20_000, rng)
    model = V.running_context_cv([(i, 1) for i in inputs], [(o, 1) for o in outputs])
    assert model == pytest.approx(ctx.std() / ctx.mean(), rel=0.03)
    # fixed lengths: the age is uniform over the output, sd O / sqrt(12)
    assert V.running_context_cv(500, 1000) == pytest.approx((1000 / 12 ** 0.5) / 1000)


@pytest.mark.parametrize("per_rank", [64, 256])
def test_adp_imbalance_matches_the_slowest_rank_of_a_draw(per_rank):
    rng = np.random.default_rng(5)
    inputs = [100, 800, 1500]
    outputs = [200, 1000, 4000, 12000]
    pool = _steady_contexts(inputs, outputs, 40_000, rng)
    ranks, trials = 8, 3000
    sums = rng.choice(pool, size=(trials, ranks, per_rank)).sum(axis=2)
    measured = float(np.mean(sums.max(axis=1)) / pool.mean() / per_rank)
    cv = V.running_context_cv([(i, 1) for i in inputs], [(o, 1) for o in outputs])
    t = {"attn_dp": np.array([True]), "tp": np.array([ranks])}
    model = float(np.atleast_1d(T.adp_attention_imbalance(t, np.array([ranks * per_rank]), cv))[0])
    assert model == pytest.approx(measured, rel=0.02)
    plain = {"attn_dp": np.array([False]), "tp": np.array([ranks])}
    assert float(np.atleast_1d(T.adp_attention_imbalance(plain, np.array([ranks * per_rank]), cv))[0]) == 1.0


def test_context_attention_fixed_term_fits_the_measured_kernels():
    """timing.CONTEXT_ATTN_TOKEN_HEAD_S against NVIDIA's measured TensorRT-LLM context-attention tables
    (benchmarks/context_attn_fixed_aic.csv): the flat-rate model alone is ~38% off, with the term ~10%; a fit on
    one GPU holds on the others."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import context_attn_fixed_check as C

    data = C.rows()
    assert C.mae(data, 0.0) > 0.30
    assert C.mae(data, T.CONTEXT_ATTN_TOKEN_HEAD_S) < 0.12
    b200 = [r for r in data if r["gpu"] == "b200"]
    hopper = [r for r in data if r["gpu"] != "b200"]
    assert C.mae(hopper, C.fit(b200)) < C.mae(hopper, 0.0) / 2  # held out across GPU generations


def test_context_attention_fixed_term_scales_with_tokens_and_heads_per_gpu():
    f = _facts("llama-3.1-8b")
    one = T.context_attention_fixed_s(f, f.layers, 1000.0, 1)
    assert one == pytest.approx(f.layers * 1000 * f.heads * T.CONTEXT_ATTN_TOKEN_HEAD_S)
    assert T.context_attention_fixed_s(f, f.layers, 1000.0, 2) == pytest.approx(one / 2)  # heads split by tp
