"""Every pipeline rank is evaluated: the reported peak is the maximum over the ranks computed one by
one, and a middle rank made only of MoE layers is found when the first holds the dense layers."""

import numpy as np
import pytest

from planner.estimate import memory, table
from planner.estimate.evaluate import Context
from planner.estimate.memory_terms_stage import in_flight_microbatches, stage_layers

from test_memory import scenario


def one_by_one(ctx, plan: dict):
    """Totals of each rank of one plan, each evaluated on its own one-row table."""
    t = table.from_plans([plan])
    per_layer = memory.layer_activation_bytes(ctx, t)
    return [float(memory.stage_memory(ctx, t, np.array([r]), per_layer)["total"][0]) for r in range(plan["pp"])]


BASE = dict(framework="megatron", precision="bf16", dp=1, tp=1, pp=1, cp=1, ep=1, vpp=1, sp=False, zero=1,
            offload="none", offload_params="none", recompute="none", mbs=1, ga=64)
PLANS = [
    dict(BASE, precision="fp8", dp=32, pp=32, cp=2, ep=8, tp=1),                # DeepSeek-V3, 2,048 GPUs
    dict(BASE, dp=8, pp=16, ep=8, vpp=1, recompute="selective", ga=8),
    dict(BASE, dp=4, pp=8, vpp=2, tp=2, sp=True, ep=4, recompute="full", ga=4),
    dict(BASE, dp=4, pp=5, ep=2, ga=3),                                           # uneven: 61 on 5 ranks
    dict(BASE, dp=1, pp=1, ep=1),
]


def test_reported_peak_is_the_maximum_over_all_ranks():
    ctx = Context(scenario(model="deepseek-v3", nodes=256))
    mem = memory.memory(ctx, table.from_plans(PLANS))  # evaluated together, vectorised
    for i, plan in enumerate(PLANS):
        totals = one_by_one(ctx, plan)
        assert float(mem["total"][i]) == pytest.approx(max(totals), rel=1e-12)
        assert int(mem["stage"][i]) == int(np.argmax(totals))


def test_deepseek_v3_moe_only_rank_exceeds_the_first():
    """fp8, dp32 pp32 cp2 ep8: 61 layers on 32 ranks (2, ..., 2, 1, 1, 1); rank 0 holds two of the three
    dense layers, rank 1 the third and one MoE layer, ranks 2.. only MoE layers: a middle rank, with
    its dispatch/combine buffers and experts, needs more than either end."""
    ctx = Context(scenario(model="deepseek-v3", nodes=256))
    plan = PLANS[0]
    totals = one_by_one(ctx, plan)
    t = table.from_plans([plan])
    _, dense, moe = stage_layers(ctx, t, np.array([2]))
    assert (float(dense[0]), float(moe[0])) == (0.0, 2.0)
    assert max(totals) > totals[0] and max(totals) > totals[-1]
    mem = memory.memory(ctx, t)
    assert 0 < int(mem["stage"][0]) < 31
    assert float(mem["activations.moe_dispatch_combine"][0]) > 0


def test_in_flight_falls_by_rank():
    """1F1B: pp - r micro-batches on rank r; interleaved: (2(pp-r-1) + (vpp-1)pp + 1)/vpp."""
    t = {"pp": np.array([4, 4, 4, 4]), "vpp": np.array([1, 1, 2, 2]), "ga": np.array([64] * 4)}
    assert list(in_flight_microbatches(t, np.array([1, 2, 1, 2]))) == pytest.approx([3, 2, 9 / 2, 7 / 2])


def test_uneven_layers_by_rank():
    """61 layers on pp = 4, vpp = 2: eight chunks of 7 with the first five taking 8; rank r owns chunks
    r and r + 4, so rank 0 holds 8 + 8 = 16 (the three dense layers among them), ranks 1..3 8 + 7."""
    ctx = Context(scenario(model="deepseek-v3", nodes=8))
    t = {"pp": np.array([4] * 4), "vpp": np.array([2] * 4)}
    layers, dense, _ = stage_layers(ctx, t, np.arange(4))
    assert list(layers) == [16, 15, 15, 15] and list(dense) == [3, 0, 0, 0]
