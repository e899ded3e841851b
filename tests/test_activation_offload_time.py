"""Time of Megatron's activation offloading (runtime.activation_offload_layers): the copies to the host
in forward and back in backward are exposed only where this GPU's host link cannot move a micro-batch's
offloaded activations within that micro-batch's forward (backward) compute
(offload.activation_offload_s; benchmarks/activation_offload_results.md)."""

import pytest

from planner.estimate.evaluate import estimate
from planner.spec import parse_plan

from test_memory import scenario

GIB = 2**30
# Megatron-Bridge GB200 FP8-CS Llama-3 70B recipe: Megatron-FSDP over 64 GPUs, mbs 2, 40 of 80 layers offloaded
ARGS = dict(model="llama-3.1-70b", node="gb200-nvl72", nodes=16, seq=8192, gb=256)
PLAN = "framework=megatron,precision=fp8,dp=64,zero=3,mbs=2,ga=2,recompute=none"


def with_host_link(sc, gb_s):
    node = sc.cluster.node.model_copy(update={"host_link_gb_s": gb_s})
    return sc.model_copy(update={"cluster": sc.cluster.model_copy(update={"node": node})})


def run(sc):
    r = estimate(sc, parse_plan(PLAN).resolved(sc))
    return r["time"]["breakdown_s"], r["memory"]["host_parts_gib"]["pinned_buffers"] * GIB


@pytest.fixture(scope="module")
def cases():
    off = scenario(**ARGS, runtime={"activation_offload_layers": 40})
    base = scenario(**ARGS)
    _, pinned_base = run(base)
    gpn = off.cluster.node.gpus_per_node
    return off, base, gpn, pinned_base


def offloaded_bytes_per_gpu(pinned, pinned_base, gpn):
    """What one GPU's micro-batch leaves in pinned host memory (the node holds gpn GPUs' copies)."""
    return (pinned - pinned_base) / gpn


@pytest.mark.parametrize("gb_s", [1.0, 5.0])
def test_slow_host_link_exposes_both_copies(cases, gb_s):
    """Copy slower than the forward and the backward: ga x (2 bytes/link - forward - backward) shows."""
    off, _, gpn, pinned_base = cases
    breakdown, pinned = run(with_host_link(off, gb_s))
    moved = offloaded_bytes_per_gpu(pinned, pinned_base, gpn)
    assert moved > 100 * GIB
    ga = 2
    expected = 2 * ga * moved / (gb_s * 1e9) - breakdown["compute"]
    assert expected > 0
    assert breakdown["offload"] == pytest.approx(expected, rel=1e-3)


def test_exposure_shrinks_with_a_faster_link_and_vanishes_once_hidden(cases):
    off, base, gpn, pinned_base = cases
    slow = run(with_host_link(off, 20.0))[0]["offload"]
    faster = run(with_host_link(off, 40.0))[0]["offload"]
    assert slow > faster > 0
    breakdown, pinned = run(off)  # the catalog's host link (gb200-nvl72: measured, 182 GB/s per GPU)
    moved = offloaded_bytes_per_gpu(pinned, pinned_base, gpn)
    forward = breakdown["compute"] / 2 / 3  # ga 2; backward = 2 x forward for the GEMM-bound layers
    assert moved / (off.cluster.node.host_link_gb_s * 1e9) < forward
    assert breakdown["offload"] == 0.0
    assert run(base)[0]["offload"] == 0.0


def test_te_schedules_of_the_check_script():
    """benchmarks/activation_offload_check.py: TE >= 2.10 with N = L - 1 keeps one set of activations on
    the GPU, so no copy overlaps compute (TE cpu_offloading docs): every copy shows, in forward and in
    backward; with N <= L - 2 and copies shorter than a layer nothing shows. TE <= 2.9's windows spread N
    copies over L layers (layer_window_map): 80/40 -> every 2nd layer; 126/95 -> 31 spans of 2, 64 of 1."""
    import activation_offload_check as chk

    assert chk.te_default_stall(10, 9, 0.5, 1.0, 2.0) == pytest.approx(2 * 9 * 0.5)
    assert chk.te_default_stall(10, 8, 0.9, 1.0, 2.0) == pytest.approx(0.0, abs=1e-12)
    assert chk.te_default_stall(10, 8, 3.0, 1.0, 2.0) > 0.0
    assert chk.window_map(80, 40) == [2 * i + 1 for i in range(40)]
    w = chk.window_map(126, 95)
    spans = [b - a for a, b in zip(w, w[1:])]
    assert w[-1] == 125 and spans.count(2) == 30 and spans.count(1) == 64
