"""Uncertainty bands: derived from the calibration report (benchmarks/error_bands.py), shipped in
catalogs/error_bands.yaml, carried by every estimate and used by the memory verdict."""


import numpy as np
import pytest
import yaml

from planner.estimate import bands, table
from planner.estimate.evaluate import FITS_FRACTION, Context, memory_verdict
from planner.spec import parse_plan

from conftest import ROOT
from test_memory import scenario

import error_bands  # noqa: E402

SMALL = ROOT / "tests" / "fixtures" / "accuracy_results_small.json"


@pytest.fixture(scope="module")
def derived(tmp_path_factory):
    out = tmp_path_factory.mktemp("bands") / "error_bands.yaml"
    error_bands.write_bands(SMALL, out)
    return yaml.safe_load(out.read_text())["families"]


def test_a_family_with_enough_runs_gets_its_own_min_max(derived):
    """megatron/dense/bf16 has three throughput runs (+10%, -4%, +2%): its band is their spread."""
    b = derived["megatron/dense/bf16"]["throughput"]
    assert b == {"band": [-0.04, 0.1], "pool": "megatron/dense/bf16", "runs": 3}


def test_small_families_fall_back_to_wider_pools(derived):
    """One fp8 run: the megatron/dense pool (4 runs); one megatron MoE run: megatron (5 runs); no
    deepspeed run: all 8 runs; memory has 4 runs in all, so every family uses them."""
    assert derived["megatron/dense/fp8"]["throughput"] == {"band": [-0.04, 0.3], "pool": "megatron/dense", "runs": 4}
    assert derived["megatron/moe/bf16"]["throughput"] == {"band": [-0.04, 0.5], "pool": "megatron", "runs": 5}
    assert derived["deepspeed/dense/bf16"]["throughput"] == {"band": [-0.1, 0.5], "pool": "all", "runs": 8}
    assert derived["torchtitan/dense/bf16"]["memory"] == {"band": [-0.2, 0.08], "pool": "all", "runs": 4}
    assert set(derived) == {f"{f}/{k}/{p}" for f in error_bands.FRAMEWORKS for k in ("dense", "moe")
                            for p in error_bands.PRECISIONS}


def test_the_shipped_bands_are_the_derivation_of_the_committed_report():
    """catalogs/error_bands.yaml is exactly what error_bands.py derives from the committed report."""
    report = ROOT / "benchmarks" / "accuracy_results.json"
    if not report.exists():
        pytest.skip("no committed calibration report")
    import json

    shipped = yaml.safe_load((ROOT / "catalogs" / "error_bands.yaml").read_text())
    assert shipped["families"] == error_bands.derive(json.loads(report.read_text()))
    assert bands.families() == shipped["families"]


def test_estimates_carry_the_bands_and_their_implied_ranges():
    from planner.estimate.evaluate import estimate

    sc = scenario(model="llama-3.1-8b", nodes=1, gb=64)
    r = estimate(sc, parse_plan("framework=megatron,dp=8").resolved(sc))
    for obj, metric, key in ((r["throughput"], "throughput", "tokens_per_s_per_gpu"),
                             (r["memory"], "memory", "per_gpu_gib")):
        lo, hi = obj["error_band"]
        assert (lo, hi) == tuple(bands.band(metric, "megatron", False, "bf16")["band"]) and lo <= hi
        assert obj[f"{key}_range"] == pytest.approx([obj[key] / (1 + hi), obj[key] / (1 + lo)], rel=1e-3)
        assert obj["error_band_pool"]["runs"] == bands.band(metric, "megatron", False, "bf16")["runs"]


def test_verdict_uses_the_band_edges(monkeypatch):
    """oom only when the optimistic edge x/(1+hi) exceeds capacity; fits only when the pessimistic edge
    x/(1+lo) is within FITS_FRACTION of it; tight between."""
    sc = scenario(model="llama-3.1-8b", nodes=1, gb=64)
    ctx = Context(sc)
    t = table.from_plans([parse_plan("framework=megatron,dp=8").resolved(sc)] * 5)
    cap = sc.cluster.node.gpu.memory_gib * 2**30
    lo, hi = -0.10, 0.15
    monkeypatch.setattr(bands, "band_arrays", lambda metric, moe, t: (np.full(5, lo), np.full(5, hi)))
    totals = np.array([FITS_FRACTION * cap * (1 + lo) * 0.999, FITS_FRACTION * cap * (1 + lo) * 1.001,
                       cap * 1.10, cap * (1 + hi) * 0.999, cap * (1 + hi) * 1.001])
    mem = {"total": totals, "host_per_node": np.zeros(5), "nvme_per_node": np.zeros(5)}
    verdict, _, _ = memory_verdict(ctx, t, mem)
    assert verdict.tolist() == [0, 1, 1, 1, 2]  # 110% of capacity is tight when the band reaches below it
