"""The GEMM model against every shape timed cold (burst clock) and hot (power-limited) on one H200
(benchmarks/clock_device/h200_shapes.json, benchmarks/clock_device_compare.py). These pin the claims of
benchmarks/clock_device_results.md: gemm_s represents the power-limited rate, so a change to gemm_s, the catalog
MAMF or the sustained fraction that moves it away from that fails here."""

import statistics

import pytest

import clock_device_compare as cdc  # noqa: E402

ROWS = cdc.load_shapes()


@pytest.fixture(scope="module")
def fitted():
    from planner.catalog import gpu
    g = gpu("h200-sxm-141gb")
    fit = cdc.fit_burst(ROWS, g)
    return g, fit, [r for r in cdc.shape_rows(ROWS, fit, g) if r["fit"]]


def mae(rows, key, ref):
    return statistics.mean(abs(r[key] / r[ref] - 1) for r in rows)


def test_every_shape_cold_and_hot():
    """28 shapes (14 bf16, 14 FP8), all cold at the 1,980 MHz burst clock; the compute-bound ones run
    0.78-0.86 as fast hot as cold (the catalog's 0.825 is their mean to within 1%)."""
    from planner.catalog import gpu
    assert len(ROWS) == 28 and {r["cold_mhz"] for r in ROWS} == {1980}
    sel = [r for r in ROWS if r["cold"] >= cdc.FIT_MIN_S]
    ratios = [r["cold"] / r["hot"] for r in sel]
    assert len(sel) >= 18 and all(0.78 < x < 0.86 for x in ratios)
    assert statistics.mean(ratios) == pytest.approx(gpu("h200-sxm-141gb").sustained_tensor_fraction, abs=0.01)


def test_gemm_s_represents_the_power_limited_rate(fitted):
    """gemm_s at the catalog MAMF: within 8% of the hot rates on average, more than 10% below the cold ones;
    with the sustained fraction applied on top (a fully busy step) more than 9% below the hot ones."""
    _, _, rows = fitted
    for prec in ("bf16", "fp8"):
        sel = [r for r in rows if r["shape"].startswith(prec)]
        assert mae(sel, "now_burst", "hot") < 0.08
        assert mae(sel, "now_burst", "cold") > 0.10
        assert mae(sel, "now_hot", "hot") > 0.09


def test_roofline_at_burst_fits_cold_and_hot(fitted):
    """One burst rate per precision, traffic hidden: within 3% of the cold rates on average, and the same rate
    x the sustained fraction within 4% of the hot ones; the additive form fits bf16 cold worse."""
    _, fit, rows = fitted
    assert fit["bf16"]["roofline"]["mean_abs"] < 0.5 * fit["bf16"]["additive"]["mean_abs"]
    for prec in ("bf16", "fp8"):
        sel = [r for r in rows if r["shape"].startswith(prec)]
        assert mae(sel, "roof_burst", "cold") < 0.03
        assert mae(sel, "roof_hot", "hot") < 0.04


def test_form_s_forms():
    """additive = compute + traffic + launch, roofline = max(compute, traffic) + launch."""
    launch = cdc.compute_gemm.GEMM_LAUNCH_S
    assert cdc.form_s("additive", 2e12, 1e9, 1e15, 1e12) == pytest.approx(2e-3 + 1e-3 + launch)
    assert cdc.form_s("roofline", 2e12, 1e9, 1e15, 1e12) == pytest.approx(2e-3 + launch)
    assert cdc.form_s("roofline", 2e11, 1e9, 1e15, 1e12) == pytest.approx(1e-3 + launch)
