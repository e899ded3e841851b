"""benchmarks/decode_heavy_check.py: the per-op checks of the dense decode-heavy points compute what they say."""

import csv
from pathlib import Path

import numpy as np

from planner import catalog
from planner.estimate.compute_gemm import GEMM_LAUNCH_S, HBM_EFFICIENCY
from planner.serve import engines as E
from planner.serve import timing

ROOT = Path(__file__).resolve().parent.parent

import decode_heavy_check as D  # noqa: E402


def test_kv_blocks_round_each_sequence_up():
    assert D.block_rounded(2176) == 2176  # 128 + 2048: 68 whole blocks of 32
    assert D.block_rounded(2500) == 2528  # 500 + 2000: 79 blocks
    assert D.block_rounded(1) == 32


def test_gemm_ratio_is_the_model_over_the_measured_row():
    """One extracted row by hand: the serving model's single-GEMM roofline (padded rows at the achievable FP8
    rate, or the weight read) plus one launch, over NVIDIA's measured time."""
    rows = list(csv.DictReader(D.GEMM.open()))
    r = next(x for x in rows if x["gpu"] == "h200-sxm-141gb" and x["dtype"] == "fp8" and x["m"] == "1024"
             and x["n"] == "16384" and x["k"] == "2048")
    gpu = catalog.gpu("h200-sxm-141gb")
    rate = gpu.tflops.fp8 * 1e12 * gpu.matmul_efficiency.fp8 * timing.SUSTAINED_FRACTION
    model = max(2.0 * 1024 * 16384 * 2048 / rate, 16384 * 2048 * 1.0 / (gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY)) \
        + GEMM_LAUNCH_S
    assert abs(float(D.gemm_model_s(gpu, "fp8", 1024, 16384, 2048)) - model) < 1e-12
    # 190 rows compute a whole 256-row tile pair: the same time as 256 rows
    assert float(D.gemm_model_s(gpu, "fp8", 190, 16384, 16384)) == float(D.gemm_model_s(gpu, "fp8", 256, 16384, 16384))
    ratios = D.gemm_ratios()[("h200-sxm-141gb", "fp8")][1024]
    assert any(abs(x - model / (float(r["latency_ms"]) * 1e-3)) < 1e-9 for x in ratios)


def test_the_gemm_extract_covers_what_the_check_reports():
    rows = list(csv.DictReader(D.GEMM.open()))
    have = {(r["gpu"], r["dtype"]) for r in rows}
    for gpu in D.GEMM_TABLES:
        assert {(gpu, "bfloat16"), (gpu, "fp8")} <= have, gpu
        assert ((gpu, "nvfp4") in have) == bool(catalog.gpu(gpu).tflops.fp4), gpu
    assert {int(r["m"]) for r in rows} == set(D.GEMM_M)


def test_attention_ratio_charges_the_kv_read_and_the_fixed_time():
    rat = D.attention_ratios()
    rows = [r for r in csv.DictReader(D.ATTN.open()) if r["gpu"] == "h100-sxm-80gb" and r["trtllm"] == "1.2.0rc5"
            and r["kv_dtype"] == "fp8" and r["window"] == "0" and r["head_dim"] == "128" and r["batch"] == "256"
            and r["context"] == "2048"]
    assert rows
    gpu = catalog.gpu("h100-sxm-80gb")
    want = []
    for r in rows:
        units = 256 * float(r["kv_heads"])
        model = GEMM_LAUNCH_S + units * 2048 * 2 * 128 / (gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY) \
            + units * timing.DECODE_ATTN_SEQ_KVHEAD_S
        want.append(model / (float(r["latency_ms"]) * 1e-3))
    assert np.allclose(sorted(rat[("h100-sxm-80gb", "1.2.0rc5", "fp8", 128, 256, 2048)]), sorted(want))


def test_free_fraction_what_if_restores_the_engine_default():
    before = E.TRTLLM_FREE_GPU_MEMORY_FRACTION
    pts = {p["id"]: p for p in __import__("serve_worst_points").points()}
    p = pts["trtllm10po-h100-llama31-405b-tp8-fp8-128-4096"]
    lo = D.predicted_with_free_fraction(p, 0.9)
    hi = D.predicted_with_free_fraction(p, 0.95)
    assert E.TRTLLM_FREE_GPU_MEMORY_FRACTION == before
    assert hi > lo  # a larger KV pool, a larger running batch: more output tokens per second at this point
