"""Memory terms behind the published Megatron-Bridge recipes (benchmarks/recipe_runs.yaml): activation
offloading (Megatron-Core cpu_offloading_num_layers) and the FP8 weight copies under Megatron-FSDP."""

import numpy as np
import pytest

from planner.estimate import memory
from planner.estimate.evaluate import Context

from test_memory import raw_table, scenario

GIB = 2**30


def mem(sc, **fields):
    return memory.memory(Context(sc), raw_table(**fields))


def test_activation_offloading_keeps_the_other_layers_and_one_in_flight():
    """32 layers, 12 offloaded: 32 - 12 + 1 = 21 layers' activations stay on the GPU; what left the GPU
    is in the node's pinned host memory (8 GPUs per node): all 12 layers at the end of the forward pass."""
    plan = dict(framework="megatron", precision="bf16", dp=8, zero=3, mbs=1, ga=16)
    off = scenario(model="llama-3.1-8b", nodes=1, seq=8192, gb=128, runtime={"activation_offload_layers": 12})
    base = scenario(model="llama-3.1-8b", nodes=1, seq=8192, gb=128)
    a, b = mem(off, **plan), mem(base, **plan)
    assert float(a["activations.layers"][0]) == pytest.approx(float(b["activations.layers"][0]) * 21 / 32, rel=1e-9)
    moved = float(b["activations.layers"][0]) - float(a["activations.layers"][0])
    extra_host = float(a["host.pinned_buffers"][0] - b["host.pinned_buffers"][0])
    one_layer = float(b["activations.layers"][0]) / 32
    assert extra_host == pytest.approx(8 * 12 * one_layer, rel=1e-9) and moved == pytest.approx(11 * one_layer)
    # the loss and the layer in flight do not coexist: only the loss's part above one layer counts
    assert float(a["activations.logits_loss"][0]) == pytest.approx(
        max(0.0, float(b["activations.logits_loss"][0]) - one_layer), rel=1e-9)


@pytest.mark.parametrize("other", [dict(pp=2, dp=4, ga=32), dict(recompute="full"), dict(framework="torchtitan")])
def test_activation_offloading_is_ignored_where_megatron_refuses_it(other):
    """Megatron-Core rejects CPU offloading with pipeline parallelism or recompute; other frameworks do
    not read the key."""
    plan = {**dict(framework="megatron", precision="bf16", dp=8, zero=3, mbs=1, ga=16), **other}
    off = scenario(model="llama-3.1-8b", nodes=1, seq=8192, gb=128, runtime={"activation_offload_layers": 12})
    base = scenario(model="llama-3.1-8b", nodes=1, seq=8192, gb=128)
    assert float(mem(off, **plan)["total"][0]) == pytest.approx(float(mem(base, **plan)["total"][0]), rel=1e-12)


def test_megatron_fsdp_fp8_discards_transposes_unless_kept():
    """Megatron-FSDP frees each unit's FP8 weights and transposes with the unit: no persistent FP8 copy
    (the DDP path keeps 2 bytes per local GEMM weight); keep_fp8_transpose_cache keeps 1 byte per
    local GEMM weight; the live units hold 2 more bytes per parameter than in bf16."""
    sc = scenario(model="llama-3.1-8b", nodes=1, seq=8192, gb=128)
    kept = scenario(model="llama-3.1-8b", nodes=1, seq=8192, gb=128, runtime={"keep_fp8_transpose_cache": True})
    fsdp = dict(framework="megatron", precision="fp8", dp=8, zero=3, mbs=1, ga=16)
    ddp = dict(fsdp, zero=1)
    assert float(mem(sc, **fsdp)["weights.fp8_weight_copies"][0]) == 0.0
    copies_ddp = float(mem(sc, **ddp)["weights.fp8_weight_copies"][0])
    assert copies_ddp > 10 * GIB  # 2 bytes x ~7e9 GEMM weights
    assert float(mem(kept, **fsdp)["weights.fp8_weight_copies"][0]) == pytest.approx(copies_ddp / 2, rel=1e-9)
    bf16 = float(mem(sc, **dict(fsdp, precision="bf16"))["other.fsdp_prefetch"][0])
    fp8 = float(mem(sc, **fsdp)["other.fsdp_prefetch"][0])
    # unit = the larger of a block and the [vocab, h] embedding; 2 units of 2 + 2 (+2 fp8) bytes
    assert fp8 == pytest.approx(bf16 * 6 / 4, rel=1e-9)


def test_offloading_moves_a_published_70b_fsdp_recipe_under_capacity():
    """Llama-3 70B, 64 GB200, Megatron-FSDP, fp8, mbs 2, seq 8192, no recompute, 40 of 80 layers'
    activations offloaded (Megatron-Bridge 25.09/25.11 GB200 FP8-CS recipe): without offloading the
    activations alone exceed the GPU; with it the estimate must drop by about half of them."""
    plan = dict(framework="megatron", precision="fp8", dp=64, zero=3, mbs=2, ga=1)
    args = dict(model="llama-3.1-70b", node="gb200-nvl72", nodes=16, seq=8192, gb=128)
    base = mem(scenario(**args), **plan)
    off = mem(scenario(**args, runtime={"activation_offload_layers": 40}), **plan)
    assert float(base["activations"][0]) > 185 * GIB
    ratio = float(off["activations.layers"][0]) / float(base["activations.layers"][0])
    assert ratio == pytest.approx(41 / 80, rel=1e-9)
    assert np.all(off["total"] < base["total"])


def test_megatron_export_carries_offloading_and_the_transpose_cache():
    from planner.frameworks import megatron
    from planner.spec import parse_plan

    sc = scenario(model="llama-3.1-8b", nodes=1, seq=8192, gb=128,
                  runtime={"activation_offload_layers": 12, "keep_fp8_transpose_cache": True})
    plan = parse_plan("framework=megatron,precision=fp8,dp=8,zero=3,mbs=1,ga=16,recompute=none").resolved(sc)
    args = megatron.megatron_args(sc, plan)
    assert "--cpu-offloading-num-layers 12" in args and "--keep-fp8-transpose-cache" in args
    piped = parse_plan("framework=megatron,precision=fp8,dp=4,pp=2,zero=1,mbs=1,ga=32,recompute=none").resolved(sc)
    assert not any(a.startswith("--cpu-offloading") for a in megatron.megatron_args(sc, piped))


def test_block_recompute_keeps_the_layers_it_does_not_recompute():
    """--recompute-method block --recompute-num-layers 8 on 32 layers (pp 1): 8 layers keep their input
    only, 24 keep everything; the recompute time is 8/32 of full recompute's; with pp 2 x vpp 2 the N
    applies per chunk of 8 layers (all recomputed)."""
    from planner.estimate.evaluate import estimate
    from planner.spec import parse_plan

    plan = dict(framework="megatron", precision="bf16", dp=8, zero=1, mbs=1, ga=16)
    args = dict(model="llama-3.1-8b", nodes=1, seq=8192, gb=128)
    block = mem(scenario(**args, runtime={"recompute_num_layers": 8}), **plan, recompute="full")
    full = mem(scenario(**args), **plan, recompute="full")
    none = mem(scenario(**args), **plan, recompute="none")
    expected = 8 / 32 * float(full["activations.layers"][0]) + 24 / 32 * float(none["activations.layers"][0])
    assert float(block["activations.layers"][0]) == pytest.approx(expected, rel=1e-9)
    chunked = dict(plan, pp=2, vpp=2, dp=4, ga=32)
    assert float(mem(scenario(**args, runtime={"recompute_num_layers": 8}), **chunked, recompute="full")["total"][0]) \
        == pytest.approx(float(mem(scenario(**args), **chunked, recompute="full")["total"][0]), rel=1e-12)

    text = "framework=megatron,precision=bf16,dp=8,zero=1,mbs=1,recompute=full"
    sc_b, sc_f = scenario(**args, runtime={"recompute_num_layers": 8}), scenario(**args)
    rb = estimate(sc_b, parse_plan(text).resolved(sc_b))["time"]["breakdown_s"]["recompute"]
    rf = estimate(sc_f, parse_plan(text).resolved(sc_f))["time"]["breakdown_s"]["recompute"]
    # not exact: the power-limited tensor clock depends on the share of the step spent computing
    assert rb == pytest.approx(rf * 8 / 32, rel=1e-3)

    from planner.frameworks import megatron
    args_b = megatron.megatron_args(sc_b, parse_plan(text).resolved(sc_b))
    assert "--recompute-method block" in args_b and "--recompute-num-layers 8" in args_b


@pytest.mark.parametrize("zero", [1, 3])
def test_blackwell_keeps_no_fp8_weight_transposes(zero):
    """Transformer Engine creates FP8 transposes only where FP8 GEMMs need the TN layout (compute
    capability 9.0 here); on 10.0 (B200) the FP8 weight copy costs 1 byte per GEMM weight, nothing with
    FP8 parameters; under Megatron-FSDP the live units hold 1 FP8 byte per parameter instead of 2."""
    plan = dict(framework="megatron", precision="fp8", dp=8, zero=zero, mbs=1, ga=16)
    hopper = mem(scenario(model="llama-3.1-8b", nodes=1, seq=4096, gb=128, runtime={"keep_fp8_transpose_cache": True}),
                 **plan)
    blackwell = mem(scenario(model="llama-3.1-8b", node="dgx-b200", nodes=1, seq=4096, gb=128,
                             runtime={"keep_fp8_transpose_cache": True}), **plan)
    h, b = float(hopper["weights.fp8_weight_copies"][0]), float(blackwell["weights.fp8_weight_copies"][0])
    if zero == 1:
        assert b == pytest.approx(h / 2, rel=1e-9)
        fp8p = dict(runtime={"fp8_param_gather": True})
        assert float(mem(scenario(model="llama-3.1-8b", node="dgx-b200", nodes=1, seq=4096, gb=128, **fp8p),
                         **plan)["weights.fp8_weight_copies"][0]) == 0.0
    else:
        assert h > 0 and b == 0.0
        bf16 = float(mem(scenario(model="llama-3.1-8b", node="dgx-b200", nodes=1, seq=4096, gb=128),
                         **dict(plan, precision="bf16"))["other.fsdp_prefetch"][0])
        assert float(blackwell["other.fsdp_prefetch"][0]) == pytest.approx(bf16 * 5 / 4, rel=1e-9)


def test_activation_offloading_costs_the_copies_compute_cannot_hide():
    """Each micro-batch copies the offloaded activations to the host in forward and back in backward
    over the GPU's host link; what exceeds that micro-batch's forward / backward compute is exposed."""
    from planner.estimate.evaluate import estimate
    from planner.spec import parse_plan

    text = "framework=megatron,precision=bf16,dp=8,zero=3,mbs=1,recompute=none"
    sc = scenario(model="llama-3.1-8b", nodes=1, seq=8192, gb=128, runtime={"activation_offload_layers": 31})
    r = estimate(sc, parse_plan(text).resolved(sc))
    plan = dict(framework="megatron", precision="bf16", dp=8, zero=3, mbs=1, ga=16)
    host_bytes = float(mem(sc, **plan)["host.pinned_buffers"][0] - mem(scenario(model="llama-3.1-8b", nodes=1,
                       seq=8192, gb=128), **plan)["host.pinned_buffers"][0]) / 8
    copy = host_bytes / (63e9)  # dgx-h100: PCIe Gen5 x16, 63 GB/s one direction (catalogs/nodes.yaml)
    fwd = r["time"]["breakdown_s"]["compute"] / 16 / 3  # backward is 2x forward here
    want = 16 * (max(0.0, copy - fwd) + max(0.0, copy - 2 * fwd))
    assert want > 0
    assert r["time"]["breakdown_s"]["offload"] == pytest.approx(want, rel=0.02)
    base = estimate(scenario(model="llama-3.1-8b", nodes=1, seq=8192, gb=128), parse_plan(text).resolved(sc))
    assert base["time"]["breakdown_s"]["offload"] == 0.0


def test_mxfp8_keeps_row_and_column_wise_copies_with_scales():
    """Under the MXFP8 recipe TE keeps row-wise and column-wise FP8 data with a scale byte per 32
    elements (2 + 2/32 bytes per GEMM weight) even on Blackwell, where per-tensor FP8 keeps 1 byte."""
    plan = dict(framework="megatron", precision="fp8", dp=8, zero=1, mbs=1, ga=16)
    args = dict(model="llama-3.1-8b", node="dgx-b200", nodes=1, seq=8192, gb=128)
    mx = mem(scenario(**args, runtime={"fp8_recipe": "mxfp8"}), **plan)
    cs = mem(scenario(**args, runtime={"fp8_recipe": "current"}), **plan)
    gemm_weights = float(cs["weights.fp8_weight_copies"][0])  # 1 byte per GEMM weight on Blackwell
    assert gemm_weights > 0
    assert float(mx["weights.fp8_weight_copies"][0]) == pytest.approx(gemm_weights * (2 + 2 / 32), rel=1e-9)
