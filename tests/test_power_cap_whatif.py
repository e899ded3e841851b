"""benchmarks/power_cap_whatif.py: its copy of the attention rates must equal the committed one at burst clock
and differ only in the FlashAttention-2 cap under a clock; its GPU variants change only what they say."""

import numpy as np
import pytest

import power_cap_whatif as W  # noqa: E402

from planner.catalog import gpu as catalog_gpu  # noqa: E402
from planner.estimate import compute_attention as A  # noqa: E402
from planner.estimate.evaluate import Context  # noqa: E402

from test_memory import raw_table, scenario  # noqa: E402


@pytest.mark.parametrize("framework", ["torchtitan", "megatron"])
def test_fa2_clocked_rates_equal_the_committed_ones_at_burst(framework):
    ctx = Context(scenario(seq=32768))
    t = raw_table(framework=framework, zero=3 if framework == "torchtitan" else 1)
    half = np.array([800e12])
    for a, b in zip(A.attention_rates(ctx, t, half), W.fa2_clocked_rates(ctx, t, half)):
        assert np.allclose(a, b)
    clocked = {**t, "tensor_clock": np.array([1.0])}
    for a, b in zip(A.attention_rates(ctx, clocked, half), W.fa2_clocked_rates(ctx, clocked, half)):
        assert np.allclose(a, b)


def test_fa2_cap_follows_the_clock_only_in_the_whatif():
    """torchtitan runs SDPA's FlashAttention-2, capped at 0.35 of the dense peak on Hopper: at a clock of 0.8 the
    what-if rate is 0.8 x the committed one (the cap binds for an 800 TFLOP/s matmul rate)."""
    ctx = Context(scenario(seq=32768))
    t = {**raw_table(framework="torchtitan", zero=3), "tensor_clock": np.array([0.8])}
    half = np.array([800e12])
    committed, whatif = A.attention_rates(ctx, t, half), W.fa2_clocked_rates(ctx, t, half)
    for a, b in zip(committed, whatif):
        assert float(b[0]) == pytest.approx(0.8 * float(a[0]))


def test_variant_gpus():
    now = W.calibration_runs.node_of({"hardware": {"gpu": "NVIDIA H100 SXM 96GB HBM2e, 500W"}})[0].gpu
    sxm = catalog_gpu("h100-sxm-80gb")
    assert W.variant_gpu("now") is None and W.variant_gpu("now+fa2clk") is None
    g = W.variant_gpu("sxm700")
    assert (g.hbm_tb_s, g.memory_gib, g.power_w) == (now.hbm_tb_s, now.memory_gib, 500)
    assert g.sustained_tensor_fraction == sxm.sustained_tensor_fraction
    assert g.matmul_efficiency == sxm.matmul_efficiency and g.tflops == sxm.tflops
    assert W.variant_gpu("s=0.70+fa2clk").sustained_tensor_fraction == pytest.approx(0.70)
