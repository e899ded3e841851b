"""MoE layer costs found missing in Megatron-Core's runs (benchmarks/moe_missing_results.md): the
quantisation padding copies of the grouped experts under FP8, and NCCL's all-to-all at its measured
rate on one 8-GPU NVSwitch board."""

from functools import partial

import numpy as np
import pytest

from planner.estimate import comm, compute, compute_moe
from planner.estimate.evaluate import Context
from planner.estimate.topology import group
from planner.serve import nccl_measured

from test_memory import raw_table, scenario


def _moe(**runtime):
    return scenario(model="qwen3-30b-a3b", node="dgx-b200", nodes=2, runtime=runtime)


def test_quant_padding_copies_only_for_unaligned_fp8_expert_rows():
    """Dropless FP8 Megatron: copies (counts are data-dependent). BF16: none. Padded to capacity with
    4,096 tokens, top-8 of 128 experts at capacity factor 1: capacity 256, ep 8 -> 2,048 rows per
    expert, a multiple of 16: no copy. 4,000 tokens, ep 1: 250 rows, not a multiple of 16: copy."""
    sc = _moe()
    t = raw_table(precision="fp8", ep=8, dp=16)
    assert bool(compute_moe.quant_padding_copies(Context(sc), t)[0])
    assert not bool(compute_moe.quant_padding_copies(Context(sc), raw_table(precision="bf16", ep=8, dp=16))[0])
    from planner.spec.scenario import Scenario

    data = sc.model_dump()
    data["model"]["moe"]["capacity_factor"] = 1.0
    data["runtime"]["moe_pad_to_capacity"] = True
    aligned = Scenario.model_validate(data)
    assert not bool(compute_moe.quant_padding_copies(Context(aligned), t)[0])
    data["training"]["seq_len"] = 4000
    unaligned = Scenario.model_validate(data)
    assert bool(compute_moe.quant_padding_copies(Context(unaligned), raw_table(precision="fp8", ep=1, dp=16))[0])


def test_hybridep_dispatch_pads_so_no_quant_padding_copy():
    """Dropless FP8 Megatron under HybridEP: the dispatcher's permute already pads every local expert's
    rows to the quantisation block, so the expert module's padding copy does not run (zero bytes);
    DeepEP and the all-to-all dispatcher hand the experts unaligned counts: the copy runs."""
    t = raw_table(precision="fp8", ep=8, dp=16)
    for disp, copies in (("hybridep", False), ("deepep", True), ("alltoall", True)):
        ctx = Context(_moe(moe_dispatcher=disp))
        assert bool(compute_moe.quant_padding_copies(ctx, t)[0]) is copies, disp
        assert (float(compute_moe.quant_padding_bytes_per_token(ctx, t)[0]) > 0) is copies, disp
    hybrid, a2a = Context(_moe(moe_dispatcher="hybridep")), Context(_moe(moe_dispatcher="deepep"))
    # the copy's bytes are the only elementwise difference between HybridEP and DeepEP on this row
    assert float(compute.elementwise_bytes_per_token(a2a, t, True)[0]) \
        - float(compute.elementwise_bytes_per_token(hybrid, t, True)[0]) == pytest.approx(16 / 3 * 8 * 2048)


def test_quant_padding_bytes_hand_worked():
    """(8 + 8) / 3 bytes per routed row and hidden element, k = 8, h = 2048, etp / tp = 1:
    16 / 3 x 8 x 2048 = 43,690.67 bytes per token, added to the MoE layer's elementwise traffic."""
    sc = _moe()
    ctx = Context(sc)
    fp8 = raw_table(precision="fp8", ep=8, dp=16)
    assert float(compute_moe.quant_padding_bytes_per_token(ctx, fp8)[0]) == pytest.approx(16 / 3 * 8 * 2048)
    with_pad = compute.elementwise_bytes_per_token(ctx, fp8, True)
    bf16 = raw_table(precision="bf16", ep=8, dp=16)
    assert float(compute_moe.quant_padding_bytes_per_token(ctx, bf16)[0]) == 0.0
    assert float(with_pad[0]) - float(compute.elementwise_bytes_per_token(ctx, bf16, True)[0]) \
        == pytest.approx(16 / 3 * 8 * 2048)


def test_ep_all_to_all_takes_the_measured_nccl_table_on_one_board(monkeypatch):
    """EP 8 on a DGX B200 with the all-to-all dispatcher: NVIDIA's measured NCCL time at the size
    (128 MiB per rank: the table's own 0.24991 ms), slower than the link model there; EP 16 spans two
    boards and DeepEP is not NCCL: the link model."""
    sc = _moe()
    ctx = Context(sc)
    t = raw_table(precision="bf16", ep=8, dp=16)
    nbytes = 2.0 ** 27
    got = float(np.ravel(comm.ep_all_to_all_s(ctx, t, nbytes))[0])
    assert got == pytest.approx(0.24991e-3, rel=1e-6)
    assert got > float(comm.all_to_all_s(sc.cluster.node, nbytes, group(sc.cluster.node, t["ep"], t["etp"]))[0])
    wide = raw_table(precision="bf16", ep=16, dp=16)
    assert float(np.ravel(comm.ep_all_to_all_s(ctx, wide, nbytes))[0]) == pytest.approx(
        float(comm.all_to_all_s(sc.cluster.node, nbytes, group(sc.cluster.node, wide["ep"], wide["etp"]))[0]))
    deepep = Context(_moe(moe_dispatcher="deepep"))
    assert float(np.ravel(comm.ep_all_to_all_s(deepep, t, nbytes))[0]) == pytest.approx(
        float(comm.all_to_all_s(sc.cluster.node, nbytes, group(sc.cluster.node, t["ep"], t["etp"]))[0]))
    monkeypatch.setattr(nccl_measured, "measured_table", partial(nccl_measured.measured_table, measured=False))
    assert float(np.ravel(comm.ep_all_to_all_s(ctx, t, nbytes))[0]) == pytest.approx(
        float(comm.all_to_all_s(sc.cluster.node, nbytes, group(sc.cluster.node, t["ep"], t["etp"]))[0]))


def test_ep_all_to_all_takes_the_table_only_where_every_group_sits_in_one_nvlink_domain():
    """GB200 NVL72: NCCL's all-to-all was measured on 2 and 4 GPUs of the rack (every GPU reaches every other
    through the NVLink switches), so an EP 4 group takes that time wherever its ranks sit in one 72-GPU domain:
    adjacent (etp 1) or 3 apart (etp 3: 12-rank blocks, six per domain). etp 4 (16-rank blocks: 72 / 16 is not
    whole, one group straddles two domains) and EP 8 (not measured): the link model. On an 8-GPU board an EP 2
    group 3 ranks apart (6-rank blocks) straddles two boards in the second block: the link model."""
    nbytes = 2.0 ** 25
    sc = scenario(model="qwen3-30b-a3b", node="gb200-nvl72", nodes=18)
    ctx, node = Context(sc), sc.cluster.node
    meas = float(nccl_measured.interp_s(nccl_measured.measured_table(node, "alltoall", [4]), nbytes)[0])

    def a2a(ep, etp, c=ctx):
        t = raw_table(precision="bf16", ep=ep, dp=72 // etp, tp=etp, etp=etp)
        return float(np.ravel(comm.ep_all_to_all_s(c, t, nbytes))[0]), \
            float(comm.all_to_all_s(c.scenario.cluster.node, nbytes, group(c.scenario.cluster.node, t["ep"], t["etp"]))[0])

    assert a2a(4, 1)[0] == pytest.approx(meas, rel=1e-9)
    assert a2a(4, 3)[0] == pytest.approx(meas, rel=1e-9)  # 12 ranks: whole groups in the 72-GPU domain
    got, model = a2a(4, 4)  # 16 ranks: 72 / 16 is not whole
    assert got == pytest.approx(model, rel=1e-12)
    got, model = a2a(8, 1)
    assert got == pytest.approx(model, rel=1e-12)
    board = Context(scenario(model="qwen3-30b-a3b", node="dgx-b200", nodes=2))
    got, model = a2a(2, 3, board)  # 6 ranks: the second group (ranks 6-11) spans two boards
    assert got == pytest.approx(model, rel=1e-12)
    got, model = a2a(2, 4, board)  # 8 ranks: one board
    assert got != pytest.approx(model, rel=1e-3)
