"""MoE dispatcher wait: padded token drop has none (Megatron-Core drop_and_pad), and where there is
one every MoE layer's forward meets the host on its own (host.synced_host_floor); the dispatcher
runtime keys reach Megatron's flags."""

import numpy as np
import pytest

from planner.estimate import compute, host, table
from planner.estimate.evaluate import Context
from planner.spec import parse_plan

from test_memory import scenario

PLAN = "framework=megatron,precision=bf16,tp=1,pp=1,dp=16,ep=8,recompute=none,mbs=1"


def _with(sc, model_moe=None, **runtime):
    upd = {"runtime": sc.runtime.model_copy(update=runtime)}
    if model_moe is not None:
        upd["model"] = sc.model.model_copy(update={"moe": sc.model.moe.model_copy(update=model_moe)})
    return sc.model_copy(update=upd)


def _unit(sc):
    t = table.from_plans([parse_plan(PLAN).resolved(sc)])
    return t, compute.layer_costs(Context(sc), t)


def test_padded_token_drop_never_waits_an_unpadded_capacity_does():
    """Megatron-Core: with --moe-pad-expert-input-to-capacity the split sizes are built on the host
    (no sync point); a capacity factor without padding, or dropless, waits every MoE layer."""
    base = scenario(model="qwen3-30b-a3b", nodes=2, gb=64)
    padded = _with(base, {"capacity_factor": 1.0}, moe_pad_to_capacity=True)
    unpadded = _with(base, {"capacity_factor": 1.0})
    for sc, waits in ((base, True), (unpadded, True), (padded, False)):
        t, unit = _unit(sc)
        assert bool(host.moe_forward_syncs(Context(sc), t)[0]) is waits
        assert bool(unit["moe_sync"][0] > 0) is waits


def test_forward_cannot_borrow_the_backwards_gpu_time_after_a_wait():
    """Hand-worked: GPU forward 1.0, backward 2.0, host 2.4 of which forward 1.5. Pooled (no wait):
    3.0 >= 2.4, nothing changes. With a wait in every forward: forward max(1.0, 1.5) = 1.5,
    backward max(2.0, 0.9) = 2.0. A host-bound backward stays pooled-equal: 0.5 / 3.0 / 2.4 / 0.2
    gives forward 0.5 and backward 2.2 (max(1.0, 2.2))."""
    f, b = host.synced_host_floor(np.array([1.0, 1.0]), np.array([2.0, 2.0]), np.array([2.4, 2.4]),
                                  np.array([1.5, 1.5]), np.array([False, True]))
    assert f == pytest.approx([1.0, 1.5]) and b == pytest.approx([2.0, 2.0])
    f, b = host.synced_host_floor(np.array(0.5), np.array(1.0), np.array(2.4), np.array(0.2), np.array(True))
    assert (float(f), float(b)) == pytest.approx((0.5, 2.2))


def test_forward_host_share_counts_forward_kernels():
    """Qwen3-30B-A3B bf16 EP8 MoE layer (test_moe_time's 1989.8 us in all): forward = GEMM host
    costs / 3 (378 + 876 us), elementwise / 2 (23 ops x 28.6 us), metadata launches in full (78 us):
    418 + 328.9 + 78 = 824.9 us."""
    sc = scenario(model="qwen3-30b-a3b", nodes=2, gb=64)
    t = table.from_plans([parse_plan(PLAN).resolved(sc)])
    got = host.layer_host_fwd_s(Context(sc), t, True, np.array([False]))
    assert got[0] == pytest.approx((378 + 876) / 3 * 1e-6 + 23 * 28.6e-6 / 2 + 78e-6, rel=1e-6)


def test_fused_dispatchers_issue_fewer_kernels_after_the_wait():
    """FP8 current scaling makes the post-wait section host-paced (test_moe_time): HybridEP's fused
    dispatch leaves 7 fewer launches after its wait than the all-to-all dispatcher (2 vs 9)."""
    base = scenario(model="qwen3-30b-a3b", nodes=2, gb=64)
    plan = PLAN.replace("bf16", "fp8")
    got = {}
    for disp in ("alltoall", "hybridep"):
        sc = _with(base, fp8_recipe="current", moe_dispatcher=disp)
        t = table.from_plans([parse_plan(plan).resolved(sc)])
        got[disp] = host.moe_sync_exposed_s(Context(sc), t, np.array([0.5e-3]))[0]
    assert got["alltoall"] - got["hybridep"] == pytest.approx(7 * host.HOST_LAUNCH_S)


def test_padding_without_a_capacity_factor_is_rejected():
    with pytest.raises(ValueError, match="moe_pad_to_capacity"):
        scenario(model="qwen3-30b-a3b", nodes=2, gb=64, runtime={"moe_pad_to_capacity": True})


def test_megatron_export_writes_the_dispatcher_and_padding():
    from planner.frameworks import megatron

    base = scenario(model="qwen3-30b-a3b", nodes=2, gb=64)
    sc = _with(base, {"capacity_factor": 1.0}, moe_pad_to_capacity=True, moe_dispatcher="hybridep")
    p = parse_plan(PLAN).resolved(sc)
    args = megatron._parallel_args(sc, p.model_dump())
    assert "--moe-token-dispatcher-type flex" in args and "--moe-flex-dispatcher-backend hybridep" in args
    assert "--moe-expert-capacity-factor 1.0" in args and "--moe-pad-expert-input-to-capacity" in args
    assert "--moe-flex-dispatcher-num-sms 16" in args  # Megatron-Core's default, written out (d98e8a6 name)
    args = megatron._parallel_args(_with(sc, moe_hybridep_num_sms=32), p.model_dump())
    assert "--moe-flex-dispatcher-num-sms 32" in args
    args = megatron._parallel_args(_with(sc, moe_dispatcher="deepep"), p.model_dump())
    assert not any("hybridep-num-sms" in a for a in args)
    args = megatron._parallel_args(base, p.model_dump())
    assert "--moe-token-dispatcher-type alltoall" in args and not any("capacity" in a for a in args)


def test_allgather_waits_even_when_padded():
    """Megatron-Core's allgather dispatcher has no padded mode: dispatch_postprocess calls .cpu() on
    its token counts every forward, so padding to capacity leaves its wait in place."""
    base = scenario(model="qwen3-30b-a3b", nodes=2, gb=64)
    for disp, waits in (("allgather", True), ("alltoall", False), ("hybridep", False)):
        sc = _with(base, {"capacity_factor": 1.0}, moe_pad_to_capacity=True, moe_dispatcher=disp)
        t = table.from_plans([parse_plan(PLAN).resolved(sc)])
        assert bool(host.moe_forward_syncs(Context(sc), t)[0]) is waits


def test_padding_with_deepep_is_rejected():
    """Megatron-Core TransformerConfig refuses moe_pad_expert_input_to_capacity with the deepep backend."""
    from planner.catalog import model as catalog_model

    moe = catalog_model("qwen3-30b-a3b").moe.model_copy(update={"capacity_factor": 1.0})
    m = catalog_model("qwen3-30b-a3b").model_copy(update={"moe": moe}).model_dump(exclude={"source", "notes"})
    with pytest.raises(ValueError, match="deepep"):
        scenario(model=m, nodes=2, gb=64, runtime={"moe_pad_to_capacity": True, "moe_dispatcher": "deepep"})


def test_flex_dispatcher_needs_an_expert_group_larger_than_one():
    """Megatron-Core's MoEFlexTokenDispatcher (deepep / hybridep) asserts "Flex token dispatcher requires
    TPxEP > 1" (expert-TP x EP, token_dispatcher.py): a Megatron plan with ep x etp = 1 cannot run it, so
    `estimate` names the rule and the search leaves such plans out; ep or etp > 1, the alltoall dispatcher
    and dense models are not affected."""
    from planner.errors import InputError
    from planner.frameworks.rules import framework_mask, framework_problems
    from planner.search.solver import candidate_table

    base = scenario(model="qwen3-30b-a3b", nodes=2, gb=64)
    one = parse_plan("framework=megatron,precision=bf16,tp=1,pp=1,dp=16,ep=1,recompute=none,mbs=1")
    for disp in ("hybridep", "deepep"):
        sc = _with(base, moe_dispatcher=disp)
        with pytest.raises(InputError, match="TPxEP > 1"):
            one.resolved(sc)
        for ok in (PLAN, "framework=megatron,precision=bf16,tp=2,pp=1,dp=8,ep=1,recompute=none,mbs=1"):
            assert not framework_problems(parse_plan(ok).resolved(sc), sc), (disp, ok)
        t, _ = candidate_table(sc)
        meg = t["framework"] == table.MEG
        assert meg.any() and not ((t["ep"] * t["etp"] == 1) & meg).any()
        assert framework_mask(t, sc.model, sc.runtime).all()
    assert not framework_problems(one.resolved(base), base)
    dense = _with(scenario(nodes=2, gb=64), moe_dispatcher="hybridep")
    plan = parse_plan("framework=megatron,precision=bf16,tp=1,pp=1,dp=16,recompute=none,mbs=1").resolved(dense)
    assert not framework_problems(plan, dense)
