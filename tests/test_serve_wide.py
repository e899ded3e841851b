"""Serving accuracy set widened to vLLM / SGLang / AMD points, and the FP4 GEMM rate from NVIDIA's measured
NVFP4 / FP8 GEMM tables (benchmarks/fp4_gemm_check.py)."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from planner import catalog
from planner.serve import engines as E
from planner.serve import timing

ROOT = Path(__file__).resolve().parent.parent


def test_fp4_rate_is_fp8_mamf_throughput_times_measured_ratio():
    b200 = catalog.gpu("b200")
    lin, _, _ = timing.rates(b200, ("fp8", "nvfp4", "mxfp4"), dense_gemm=True)
    assert lin[1] == pytest.approx(lin[0] * b200.fp4_gemm_over_fp8)
    assert lin[2] == lin[1]  # MXFP4 runs on the same FP4 tensor cores
    assert lin[1] < b200.tflops.fp4 * 1e12  # below the FP4 peak


def test_fp4_rate_zero_without_fp4_tensor_cores_and_capped_at_fp4_peak():
    h200 = catalog.gpu("h200-sxm-141gb")
    assert timing.fp4_rate_tflops(h200, 0.7) == 0.0
    assert E.compute_precision("nvfp4", h200) is None
    b200 = catalog.gpu("b200")
    capped = b200.model_copy(update={"tflops": b200.tflops.model_copy(update={"fp4": b200.tflops.fp8})})
    assert timing.fp4_rate_tflops(capped, 0.5) == pytest.approx(capped.tflops.fp8 * 0.5)


def test_catalog_fp4_ratio_is_each_gpus_measured_tables():
    """catalogs/gpus.yaml fp4_gemm_over_fp8 of B200 / GB200: the median of that GPU's measured tables."""
    import fp4_gemm_check as chk

    found = chk.max_ratios(chk.load())
    assert len(found) == 3
    for gpu in ("b200", "gb200"):
        ratios = [r for tab, (_, _, r) in found.items() if chk.table_gpu(tab) == gpu]
        assert ratios and catalog.gpu(gpu).fp4_gemm_over_fp8 == pytest.approx(float(np.median(ratios)), abs=0.005)
    assert all(1.3 < r < 1.6 for _, _, r in found.values())  # well below the 2x of the peaks


def test_engine_of_reads_the_serving_stack_before_the_client():
    from serving_accuracy import engine_of

    assert engine_of({"framework": "TensorRT-LLM 0.17 (PyTorch backend); client: SGLang bench_serving.py"}) == "trtllm"
    assert engine_of({"framework": "vLLM 0.7.3; client: SGLang bench_serving.py"}) == "vllm"
    assert engine_of({"framework": "SGLang 0.4.3.post2"}) == "sglang"
    assert engine_of({"framework": "NVIDIA NIM 1.8.0"}) == "trtllm"


def test_new_points_have_pinned_sources_and_a_known_gpu():
    from serving_accuracy import engine_of, node_name

    pts = yaml.safe_load((ROOT / "benchmarks" / "serving_runs.yaml").read_text())
    new = [p for p in pts if p["id"].startswith(("rocm-vllm", "mlperf50-", "dstack-", "inferencex-"))]
    assert len(new) >= 49
    for p in new:
        src = p["source"]
        assert src.get("commit") and len(src["commit"]) == 40 and src.get("location"), p["id"]
        node_name(p["hardware"]["gpu"])  # raises KeyError for a GPU the script cannot place
    assert {engine_of(p) for p in new} == {"vllm", "sglang", "trtllm"}
    assert any("MI325X" in p["hardware"]["gpu"] for p in new) and any("MI355X" in p["hardware"]["gpu"] for p in new)


def test_length_mean_of_a_sampled_workload_is_what_the_point_runs():
    from serving_accuracy import point_scenario
    from planner.spec.serving import token_stats

    pts = yaml.safe_load((ROOT / "benchmarks" / "serving_runs.yaml").read_text())
    p = next(p for p in pts if p["id"].startswith("inferencex-"))
    p["precision"]["native_weight_format"] = None
    sc, _, _ = point_scenario(p)
    assert token_stats(sc.serving.output_tokens)[0] == p["workload"]["output_len_mean"] < p["workload"]["output_len"]


def test_grouped_expert_gemms_keep_the_fp8_throughput_in_fp4():
    b200 = catalog.gpu("b200")
    grouped, _, _ = timing.rates(b200, ("fp8", "nvfp4"))
    assert grouped[1] == pytest.approx(grouped[0])
