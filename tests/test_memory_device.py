"""The memory model against real PyTorch training steps measured on an H200 (benchmarks/memory_device/,
produced by benchmarks/memory_device_check.py; compared part by part as benchmarks/memory_device_compare.py
describes): model states within 1%, the forward/backward transient peak (stored activations plus the
loss at its backward peak, or the checkpoints plus the loss under full recompute, or torchtitan's
op-level selective checkpointing) within 3%."""


import pytest

from conftest import ROOT

import memory_device_compare as cmp  # noqa: E402

ALL = [r for f in sorted((ROOT / "benchmarks" / "memory_device").glob("*.json")) for r in cmp.rows(f)]
ROWS = [r for r in ALL if not r["fsdp"]]
FSDP = [r for r in ALL if r["fsdp"]]


def test_measurements_are_there():
    assert len(ROWS) >= 10 and len(FSDP) >= 8


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['alloc']}-{r['name']}" for r in ROWS])
def test_states_and_transient_peak_match_the_measured_step(row):
    m, p = row["measured"], row["predicted"]
    assert p["states"] == pytest.approx(m["states"], rel=0.01)
    assert p["transient"] == pytest.approx(m["transient"], rel=0.03)


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['alloc']}-{r['name']}" for r in ROWS])
def test_allocator_slack_covers_what_the_allocator_held(row):
    """Reserved beyond allocated never exceeds the predicted fragmentation. Not an independent check:
    the two slack constants are the maxima of these same measurements; it checks that the largest
    tensor is the right scale for every configuration (a flat 15% of transients missed the fully
    recomputed 16k-token case by half)."""
    m, p = row["measured"], row["predicted"]
    assert m["fragmentation"] <= p["fragmentation"] * (1 + 1e-9)
    assert m["states"] + m["transient"] + m["fragmentation"] == pytest.approx(
        p["states"] + p["transient"] + p["fragmentation"], rel=0.05)


@pytest.mark.parametrize("row", FSDP, ids=[f"{r['alloc']}-{r['name']}" for r in FSDP])
def test_fsdp2_states_and_reserved_total(row):
    """torchtitan-style FSDP2 (one rank): fp32 sharded parameters, fp32 gradients and Adam within 1%;
    what the allocator reserved within 3% with expandable segments (torchtitan's default). With the
    default allocator FSDP2's all-gather and reduce-scatter streams keep their own cached blocks,
    beyond the one reduce-scatter buffer the planner counts: there it under-predicts by up to 7.1%
    (asserted at 10%, the known bound, so that a change that widens the gap fails)."""
    m, p = row["measured"], row["predicted"]
    assert p["states"] == pytest.approx(m["states"], rel=0.01)
    expandable = "expandable" in row["alloc"]
    assert p["total"] == pytest.approx(m["total"], rel=0.03 if expandable else 0.10)
