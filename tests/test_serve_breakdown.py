"""The per-term time breakdown of a serving step (timing.stage_terms, benchmarks/serve_worst_points.py)
reproduces the model's own generation-only step, so the terms it prints are the ones the estimate adds."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

import serve_worst_points as W  # noqa: E402

import numpy as np  # noqa: E402

from planner.serve import timing  # noqa: E402
from planner.serve.evaluate import Context  # noqa: E402
from planner.serve.memory import attn_tp, stage_layers  # noqa: E402
from planner.serve.plan import parse_serve_plan  # noqa: E402

POINTS = ("rocm-vllm010-mi300x-llama31-70b-tp8-fp8-128-2048-bs128",   # vLLM, host step added
          "trtllm-po-h200-llama33-70b-tp2-fp8-1000-1000",             # TensorRT-LLM, padded graphs, overlap
          "trtllm-po-h200-qwen3-235b-dep4-fp8-1000-1000",             # MoE, attention DP
          "inferencex-sglang-mi300x-dsr1-tp8-ep1-fp8-1024-1024-c64")  # SGLang fp8-block on gfx942 (aiter tile)


@pytest.fixture(scope="module")
def points():
    return {p["id"]: p for p in W.points()}


@pytest.mark.parametrize("pid", POINTS)
def test_terms_sum_to_the_decode_step(points, pid):
    d = W.breakdown(points[pid])
    assert sum(d["ms"].values()) == pytest.approx(d["decode_ms"], rel=1e-9)
    assert d["ms"]["dense_gemm"] > 0 and d["ms"]["decode_attention"] > 0 and d["ms"]["kernel_launch"] > 0


def test_moe_and_tp_terms_appear_where_they_apply(points):
    dense_tp8 = W.breakdown(points[POINTS[0]])["ms"]
    moe = W.breakdown(points[POINTS[2]])["ms"]
    # vLLM 0.10 does not overlap its host step: the whole fixed step shows (not a hard-coded 1 ms)
    assert dense_tp8["expert_gemm"] == 0 and dense_tp8["collectives"] > 0
    assert not W.breakdown(points[POINTS[0]])["overlap"]
    assert dense_tp8["host"] == pytest.approx(timing.STEP_OVERHEAD_S * 1e3)
    assert moe["expert_gemm"] > 0 and moe["moe_routing"] > 0 and moe["collectives"] > 0


@pytest.mark.parametrize("pid", (POINTS[0], POINTS[3]))
def test_gfx942_gemm_terms_are_in_the_dense_term(points, pid):
    """vLLM's hipBLASLt FP8 (16-row tile, blend) and SGLang's default-tile block-FP8 GEMMs on MI300X: the dense
    term printed is stage_terms', above the plain roofline max(math, weight read) of the same rows."""
    d = W.breakdown(points[pid])
    sc, plan, _ = W.S.point_scenario(points[pid])
    t = parse_serve_plan(plan, sc)
    ctx = Context(sc)
    hw, f, wq = ctx.hw, ctx.facts, t["wq"]
    rows = np.array([d["padded"]]) / t["pp"]
    plain = timing.dense_linear_s(f, stage_layers(f, t["pp"]), rows, rows, t["tp"], attn_tp(t), hw["lin_dense"][wq],
                                  hw["bw"], hw["bpe_dense"][wq], hw["lin_mla"][wq], hw["bpe_mla"][wq])
    assert d["ms"]["dense_gemm"] > 1.01 * float(np.ravel(t["pp"] * plain)[0]) * 1e3
