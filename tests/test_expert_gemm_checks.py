"""benchmarks/expert_gemm_aic_check.py and b200_moe_host_gemm.py: the six per-expert GEMMs are the forward,
input-gradient and weight-gradient GEMMs of fc1 and fc2 (3 x the forward FLOPs, each weight gradient the shape
of its weight), and the host what-if changes only the per-expert GEMM host cost and puts it back."""

import pytest
import yaml

from conftest import ROOT


def test_six_expert_gemms_are_forward_dgrad_wgrad_of_both_linears():
    import expert_gemm_aic_check as E

    h, f, m = 7168, 2048, 1024
    shapes = E.expert_gemms(h, f, m)
    forward = 2 * m * h * 2 * f + 2 * m * f * h  # fc1 (h -> 2f) and fc2 (f -> h)
    assert sum(2 * a * n * k for a, n, k in shapes) == 3 * forward
    # the weight gradients reduce over the m rows and come out weight-shaped (2f x h, h x f)
    assert (2 * f, h, m) in shapes and (h, f, m) in shapes
    # every other GEMM has the m rows as its output rows
    assert sum(1 for a, _, _ in shapes if a == m) == 4


def test_host_what_if_restores_the_model_and_matches_it_at_the_bare_launch():
    import b200_moe_host_gemm as W
    import calibration_runs

    from planner.estimate import host

    run = next(r for r in yaml.safe_load((ROOT / "benchmarks" / "recipe_runs.yaml").read_text())
               if r["id"] == "mbridge26.04-b200-fp8mx-dsv3-256gpu")
    _, _, _, r, published = calibration_runs.estimated(run)
    plain = r["throughput"]["tokens_per_s_per_gpu"] / published - 1
    assert W.errors([run], host.HOST_LAUNCH_S)[run["id"]] == pytest.approx(plain)
    assert host.EXPERT_GEMM_HOST_S == host.HOST_LAUNCH_S
    slower = W.errors([run], 200e-6)[run["id"]]
    assert slower < plain and host.EXPERT_GEMM_HOST_S == host.HOST_LAUNCH_S
