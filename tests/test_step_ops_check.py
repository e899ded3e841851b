"""benchmarks/step_ops_check.py: the per-op breakdown covers the whole model step, and the measured
tables are read back exactly at their own entries."""

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

import step_ops_check as S  # noqa: E402
from planner.serve import evaluate as EV  # noqa: E402
from planner.serve import timing as T  # noqa: E402
from planner.serve.plan import parse_serve_plan  # noqa: E402


@pytest.fixture(scope="module")
def tab():
    return S.load()


def test_tables_read_back_at_their_entries(tab):
    for (m, n, k, _), v in list(tab["gemm_bf16"].items())[:20]:
        assert S.gemm_ms(tab, m, n, k) == pytest.approx(v)
    for (b, s, _, w), v in tab["generation_attention_bf16kv"].items():
        if b == max(bb for (bb, ss, _, ww) in tab["generation_attention_bf16kv"] if ss == s and ww == w):
            assert S.gen_attn_ms(tab, b, s, w) == pytest.approx(v)
    for e in (32, 128):
        for (a, _, _, _), v in tab[f"moe_w4a16_mxfp4_2880x2880_top4of{e}"].items():
            assert S.moe_ms(tab, a, e) == pytest.approx(v)


def test_generation_attention_extrapolation_grows_with_batch_and_length(tab):
    assert S.gen_attn_ms(tab, 2048, 1500, 0) > S.gen_attn_ms(tab, 1024, 1500, 0) > S.gen_attn_ms(tab, 1024, 64, 0)
    # the sliding window caps the KV read: longer contexts cost the full layer more
    assert S.gen_attn_ms(tab, 2048, 1500, 128) < S.gen_attn_ms(tab, 2048, 1500, 0)


@pytest.mark.parametrize("n_pf", [0.0, 2048.0])
def test_breakdown_sums_to_the_model_step(n_pf):
    _, sc, plan, _ = S.point()
    t = parse_serve_plan(plan, sc)
    ctx = EV.Context(sc)
    ctx.links = T.comm_links(ctx.node, t, ctx.facts.hidden, bool(ctx.facts.experts))  # as the evaluator builds them
    parts = S.model_parts(ctx, t, 2048.0, n_pf, 1500.0, 500.0)
    # TensorRT-LLM overlaps the host step (timing.overlaps_host_step) and its sampler bound (~23 ms) is below
    # this GPU step, so the engine's iteration is the GPU step the parts add up to
    step = T.iteration_s(ctx.facts, t, ctx.links, ctx.hw, np.array([2048.0]), np.array([n_pf]), 1500.0, 500.0)
    assert float(T.host_bound_s(t, np.array([2048.0]))[0]) < float(step[0])
    assert sum(parts.values()) == pytest.approx(1e3 * float(step[0]), rel=1e-9)
