"""The weight-only expert dequant of GPUs whose listed FP32 peak counts packed FP32 (gpu.fp32_packed: AMD CDNA3 /
CDNA4, two FP32 operations per lane and clock) runs at the unpacked rate (timing.dequant_s_per_weight)."""

import pytest

from planner import catalog
from planner.serve import timing
from planner.spec.hardware import GPU


def _gpu(name: str, **change) -> GPU:
    return GPU(**{**catalog.gpu_entry(name), **change})


def test_weight_only_dequant_runs_at_the_unpacked_fp32_rate_where_the_peak_counts_packed_fp32():
    names = ("mxfp4", "fp8-block")
    packed = timing.dequant_s_per_weight(_gpu("mi300x", fp32_packed=True), names)
    plain = timing.dequant_s_per_weight(_gpu("mi300x", fp32_packed=False), names)
    assert packed[0] == pytest.approx(2 * plain[0])  # unpacking / conversions: half the listed rate
    assert packed[0] == pytest.approx(timing.DEQUANT_FP32_OPS_PER_WEIGHT / (163.4e12 / 2))
    assert packed[1] == pytest.approx(plain[1])  # block-FP8 promotion's scale-and-add FMAs take packed FP32
    h100 = timing.dequant_s_per_weight(_gpu("h100-sxm-80gb"), names)
    assert h100[0] == pytest.approx(timing.DEQUANT_FP32_OPS_PER_WEIGHT / 66.9e12)


def test_catalog_marks_the_packed_fp32_peaks():
    assert all(catalog.gpu_entry(g).get("fp32_packed") for g in ("mi300x", "mi325x", "mi355x"))
    assert not any(catalog.gpu_entry(g).get("fp32_packed") for g in ("h100-sxm-80gb", "b200", "mi250x"))
