"""Block-scaled FP8 (fp8-block): memory with its scales, the Hopper promotion term of the expert GEMMs,
the MoE layer check on NVIDIA's measured fp8_block timings, and the launch flags."""

from pathlib import Path

import numpy as np
import pytest

from planner import catalog
from planner.serve import engines as E
from planner.serve.memory import model_facts

ROOT = Path(__file__).resolve().parent.parent


def test_block_fp8_bytes_include_one_fp32_scale_per_128x128_block():
    assert E.weight_bytes_per_element("fp8-block") == pytest.approx(1.0 + 4.0 / (128 * 128))
    assert E.weight_bytes_per_element("fp8-block") > E.weight_bytes_per_element("fp8")
    assert E.compute_precision("fp8-block", catalog.gpu("h200-sxm-141gb")) == "fp8"


def test_promotion_only_without_block_scaled_mma_and_only_on_rows_received():
    from planner.serve.timing import (BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT, GEMM_TILE_ROWS, dequant_s_per_weight,
                                      expert_linear_s)

    hopper = dequant_s_per_weight(catalog.gpu("h200-sxm-141gb"), ("fp8", "fp8-block"))
    blackwell = dequant_s_per_weight(catalog.gpu("b200"), ("fp8", "fp8-block"))
    fp32 = catalog.gpu("h200-sxm-141gb").tflops.fp32 * 1e12
    assert hopper.tolist() == pytest.approx([0.0, BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT / fp32])
    assert blackwell.tolist() == [0.0, 0.0]  # tcgen05 applies the block scales inside the MMA
    f = model_facts(catalog.model("qwen3-30b-a3b"))
    lin, bw = 1e15, 1e15
    for n in (300.0, 200_000.0):  # few rows per expert (padded to one tile) and many
        extra = (expert_linear_s(f, 1, n, 1, lin, bw, 1.0, 1, hopper[1], False)
                 - expert_linear_s(f, 1, n, 1, lin, bw, 1.0, 1, 0.0, False))
        touched = 1.0 - (1.0 - f.top_k / f.experts) ** n
        rows = n * f.top_k / (f.experts * touched)
        assert extra == pytest.approx(touched * f.routed * hopper[1] * rows / GEMM_TILE_ROWS, rel=1e-6)


def test_block_fp8_moe_layer_check_on_hopper():
    """NVIDIA's measured TensorRT-LLM fp8_block MoE layers (AIConfigurator extract): the promotion term
    brings the Hopper timings within 20% on average; without it they are 1.5-2x slower than the model."""
    import moe_kernel_check as M
    from planner.serve import timing

    rows = [r for r in M.rows() if r["dtype"] == "fp8_block" and r["gpu"].startswith("h")]
    assert len(rows) > 400
    err = lambda: np.mean([abs(M.moe_layer_s(r) / (float(r["latency_ms"]) * 1e-3) - 1) for r in rows])  # noqa: E731
    with_term = err()
    saved = timing.BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT
    try:
        timing.BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT = 0.0
        without = err()
    finally:
        timing.BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT = saved
    assert with_term < 0.20 < without


def test_block_fp8_launch_flags():
    from planner.serve import launch as L

    assert L.QUANT["fp8-block"][0] in L.engine_flags("vllm")["options"]["--quantization"]
    assert L.QUANT["fp8-block"][1] is None  # SGLang reads fp8 + weight_block_size from the checkpoint


def test_host_time_per_request_bounds_the_overlapped_step():
    """TensorRT-LLM's overlap scheduler: step = max(GPU step, sampler host time x requests per rank)."""
    from planner.serve.timing import HOST_S_PER_REQUEST, host_bound_s

    t = {"engine": np.array([E.TRTLLM, E.TRTLLM, E.VLLM]), "attn_dp": np.array([False, True, False]),
         "tp": np.array([4, 4, 4])}
    got = host_bound_s(t, 2000.0)
    assert got.tolist() == pytest.approx([2000 * HOST_S_PER_REQUEST, 500 * HOST_S_PER_REQUEST, 0.0])
    assert 2000 * HOST_S_PER_REQUEST == pytest.approx(0.0226)  # PR 11983: 11.3 ms at batch 1,000


def test_iteration_is_never_shorter_than_its_host_work(monkeypatch):
    """Overlapping engines (TensorRT-LLM, SGLang) take max(GPU step, host step); vLLM 0.10 adds the host step."""
    from planner.serve import timing

    monkeypatch.setattr(timing, "stage_s", lambda *a: np.array([3e-3, 3e-3, 3e-3]))
    t = {"engine": np.array([E.TRTLLM, E.SGLANG, E.VLLM]), "attn_dp": np.array([False, False, False]),
         "tp": np.array([1, 1, 1]), "pp": np.array([1, 1, 1]),
         "engine_version": np.array([E.PINNED_VERSION, E.PINNED_VERSION, E.version_code("0.10.0")])}
    got = timing.iteration_s(None, t, None, None, 4000.0, 0.0, 0.0, 0.0)
    assert got.tolist() == pytest.approx([4000 * timing.HOST_S_PER_REQUEST, 3e-3, 3e-3 + timing.STEP_OVERHEAD_S])
    assert timing.iteration_s(None, t, None, None, 10.0, 0.0, 0.0, 0.0).tolist() == pytest.approx(
        [3e-3, 3e-3, 3e-3 + timing.STEP_OVERHEAD_S])
    # a GPU step shorter than the host step: the overlapped engines wait for the host
    monkeypatch.setattr(timing, "stage_s", lambda *a: np.array([2e-4, 2e-4, 2e-4]))
    assert timing.iteration_s(None, t, None, None, 10.0, 0.0, 0.0, 0.0).tolist() == pytest.approx(
        [timing.STEP_OVERHEAD_S, timing.STEP_OVERHEAD_S, 2e-4 + timing.STEP_OVERHEAD_S])


def test_decode_attention_fixed_cost_per_sequence_and_kv_head():
    from planner.serve.timing import DECODE_ATTN_SEQ_KVHEAD_S, decode_attention_fixed_s

    f = model_facts(catalog.model("llama-3.1-70b"))  # 8 KV heads
    assert f.kv_split_max == 8
    one = decode_attention_fixed_s(f, 80, 100.0, np.array([1, 2, 16]))
    # tp 2 splits the heads; tp 16 replicates them (one KV head per GPU, still one work unit per sequence)
    assert one.tolist() == pytest.approx([80 * 100 * h * DECODE_ATTN_SEQ_KVHEAD_S for h in (8, 4, 1)])


def test_decode_attention_fixed_cost_matches_the_measured_fp8_kernels():
    """AIConfigurator's TensorRT-LLM generation attention with an FP8 KV cache: the fitted time per
    (sequence, KV head) lies within 25% of the model's value on Hopper (three versions) and B200 1.2.0rc5."""
    import decode_attn_check as D
    from planner.serve.timing import DECODE_ATTN_SEQ_KVHEAD_S

    fits = {g: per for g, _, per, _ in D.fixed_cost_fits(D.rows())}
    stable = [g for g in fits if g.endswith("window 0 fp8") and ("h100" in g or "h200" in g or "1.2.0rc5" in g)]
    assert len(stable) == 6
    for g in stable:
        assert fits[g] == pytest.approx(DECODE_ATTN_SEQ_KVHEAD_S, rel=0.25), g


def test_published_block_fp8_runs_read_as_fp8_block():
    import serving_accuracy as S

    assert S.weights_scheme({"label": "FP8", "weights": "FP8 block-scaled (DeepSeek-R1)"}, "H200") == ("fp8-block", "fp8")
    assert S.weights_scheme({"label": "FP8", "kv_cache": "BF16"}, "H200") == ("fp8", "bf16")


def test_vllm_overlaps_the_host_step_from_014_and_with_pp_from_015(monkeypatch):
    """vLLM's async scheduling: default-on from 0.14 (pp = 1), with pipeline parallelism from 0.15; the
    pinned release (no engine_version) overlaps; 0.13 and 0.10 add the host step."""
    from planner.serve import timing

    monkeypatch.setattr(timing, "stage_s", lambda *a: np.full(6, 3e-3))
    v = E.version_code
    t = {"engine": np.full(6, E.VLLM), "attn_dp": np.zeros(6, bool), "tp": np.ones(6, int),
         "pp": np.array([1, 1, 1, 2, 2, 1]),
         "engine_version": np.array([v("0.10.0"), v("0.13.0"), v("0.14.0"), v("0.14.1"), v("0.15.0"),
                                     E.PINNED_VERSION])}
    got = timing.iteration_s(None, t, None, None, 10.0, 0.0, 0.0, 0.0)
    host = timing.STEP_OVERHEAD_S * np.array([1, 1, 0, 1, 0, 0])
    assert got.tolist() == pytest.approx((t["pp"] * 3e-3 + host).tolist())
    assert timing.overlaps_host_step(t["engine"], t["engine_version"], t["pp"]).tolist() == [
        False, False, True, False, True, True]
    del t["engine_version"]  # a search table: the pinned release
    assert timing.overlaps_host_step(t["engine"], E.plan_engine_version(t), t["pp"]).all()


def test_engine_version_codes_and_plan_key():
    assert E.version_code("v0.10.0") < E.version_code("0.14") < E.version_code("0.14.1") < E.PINNED_VERSION
    assert E.version_code("0.7.4.dev181") == E.version_code("0.7.4")
    assert E.version_text(E.VLLM, E.version_code("0.10.0")) == "0.10.0"
    assert E.version_of_text(E.VLLM, E.version_text(E.VLLM, E.PINNED_VERSION)) == E.PINNED_VERSION
    with pytest.raises(ValueError):
        E.version_code("latest")
