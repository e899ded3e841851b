"""runtime.moe_fused_grouped_mlp (Transformer Engine's CuTe-DSL fused grouped MLP, Megatron-Bridge v0.5.0+
cutedsl_fused_grouped_mlp): where it is accepted, and which of Megatron's unfused expert terms it removes."""

import numpy as np
import pytest
from pydantic import ValidationError

from planner.estimate import compute, compute_moe
from planner.estimate.compute_elementwise import FUSED_SWIGLU_BYTES
from planner.estimate.evaluate import Context
from planner.estimate.memory_terms_activations import layer_activation_bytes

from test_memory import raw_table, scenario


def _sc(model="gpt-oss-120b", node="gb200-nvl72", **runtime):
    rt = {"fp8_recipe": "mxfp8", **runtime}
    return scenario(model=model, node=node, nodes=16, seq=4096, gb=1280, runtime=rt)


def test_refused_off_compute_capability_10():
    with pytest.raises(ValidationError, match=r"runtime\.moe_fused_grouped_mlp: needs an NVIDIA GPU of compute "
                                              r"capability 10\.x"):
        scenario(model="gpt-oss-120b", node="dgx-h100", nodes=8, runtime={"moe_fused_grouped_mlp": True})


def test_refused_without_mxfp8_or_moe_or_megatron_fp8():
    with pytest.raises(ValidationError, match=r"needs runtime\.fp8_recipe mxfp8"):
        _sc(fp8_recipe="current", moe_fused_grouped_mlp=True)
    with pytest.raises(ValidationError, match=r"needs an MoE model"):
        _sc(model="llama-3.1-8b", moe_fused_grouped_mlp=True)
    with pytest.raises(ValidationError, match=r"applies to Megatron fp8 plans only"):
        scenario(model="gpt-oss-120b", node="gb200-nvl72", nodes=16,
                 runtime={"fp8_recipe": "mxfp8", "moe_fused_grouped_mlp": True}, search={"precision": ["bf16"]})


def test_rows_megatron_fp8_with_expert_tp_1_only():
    ctx = Context(_sc(moe_fused_grouped_mlp=True))
    assert compute_moe.fused_grouped_mlp(ctx, raw_table(precision="fp8", ep=64, dp=64))[0]
    assert not compute_moe.fused_grouped_mlp(ctx, raw_table(precision="bf16", ep=64, dp=64))[0]
    assert not compute_moe.fused_grouped_mlp(ctx, raw_table(precision="fp8", ep=8, dp=64, etp=2))[0]
    assert not compute_moe.fused_grouped_mlp(Context(_sc()), raw_table(precision="fp8", ep=64, dp=64))[0]


def test_elementwise_bytes_drop_by_the_activation_and_the_epilogue():
    """gpt-oss (h = f = 2880, top-4, clamped gated activation with biases), one MoE layer per token: the
    fused kernels take the experts' activation pass (FUSED_SWIGLU_BYTES x f x top_k) and Megatron's
    unfused clamp and fc2-bias loop (expert_epilogue_bytes_per_token, 245,760: hand-worked in
    tests/test_gptoss.py) out of the HBM traffic."""
    t = raw_table(precision="fp8", ep=64, dp=64)
    off, on = Context(_sc()), Context(_sc(moe_fused_grouped_mlp=True))
    m = off.model
    drop = compute.elementwise_bytes_per_token(off, t, True) - compute.elementwise_bytes_per_token(on, t, True)
    assert drop[0] == pytest.approx(FUSED_SWIGLU_BYTES * m.moe.expert_ffn_hidden * m.moe.top_k + 245_760)
    # dense layers and bf16 rows do not move
    assert compute.elementwise_bytes_per_token(on, t, False)[0] == compute.elementwise_bytes_per_token(off, t, False)[0]
    tb = raw_table(precision="bf16", ep=64, dp=64)
    assert compute.elementwise_bytes_per_token(on, tb, True)[0] == compute.elementwise_bytes_per_token(off, tb, True)[0]


def test_layer_time_falls_and_the_clamped_copy_is_not_kept():
    t = raw_table(precision="fp8", ep=64, dp=64, mbs=4)
    off, on = Context(_sc()), Context(_sc(moe_fused_grouped_mlp=True))
    tokens = np.array([4 * 4096.0])
    fwd = [compute.layer_kind_costs(c, t, tokens, True, 1e15, 8e12)["fwd"][0] for c in (off, on)]
    assert fwd[1] < fwd[0]
    # memory: 2 x 2f bytes per routed copy less (clamped_glu_bytes), top-4 copies, for the micro-batch's
    # 4 x 4096 tokens
    m = off.model
    saved = [layer_activation_bytes(c, t)["moe"]["none"][0] for c in (off, on)]
    assert saved[0] - saved[1] == pytest.approx(4 * 4096 * m.moe.top_k * 4.0 * m.moe.expert_ffn_hidden)


def test_fc2_input_cast_and_per_expert_quant_kernels_go():
    """The fc1 kernel writes fc2's input MXFP8-quantised (and the dGLU kernel fc1's output gradient): the
    experts' down-projection input cast (top_k x f x MXFP8 cast bytes per token) is not run, and the
    grouped module quantises with 2 group kernels instead of one per local expert, module and direction."""
    from planner.estimate.compute_quant import fp8_cast_bytes

    t = raw_table(precision="fp8", ep=64, dp=64)
    off, on = Context(_sc()), Context(_sc(moe_fused_grouped_mlp=True))
    m = off.model
    drop = compute.fp8_cast_bytes_per_token(off, t, True)[0] - compute.fp8_cast_bytes_per_token(on, t, True)[0]
    assert drop == pytest.approx(m.moe.top_k * m.moe.expert_ffn_hidden * fp8_cast_bytes(off.gpu, "mxfp8"))
    assert compute_moe.expert_quant_kernels(off, t)[0] == 2 * 2 * 128 / 64
    assert compute_moe.expert_quant_kernels(on, t)[0] == 2


def test_expert_rank_capacity_needs_hybridep_and_the_fused_mlp():
    with pytest.raises(ValidationError, match=r"runtime\.moe_expert_rank_capacity_factor: needs "
                                              r"runtime\.moe_fused_grouped_mlp true and runtime\.moe_dispatcher hybridep"):
        _sc(moe_fused_grouped_mlp=True, moe_expert_rank_capacity_factor=1.5)
    with pytest.raises(ValidationError, match=r"runtime\.moe_expert_rank_capacity_factor: needs"):
        _sc(moe_dispatcher="hybridep", moe_expert_rank_capacity_factor=1.5)


def test_expert_rank_capacity_removes_the_host_wait_and_allows_a_full_iteration_graph():
    from planner.estimate.host import moe_forward_syncs

    base = dict(moe_dispatcher="hybridep", moe_fused_grouped_mlp=True)
    graph = dict(cuda_graph_impl="local", cuda_graph_scope=["full_iteration"])
    with pytest.raises(ValidationError, match=r"full_iteration cannot capture this MoE model's step"):
        _sc(**base, **graph)
    t = raw_table(precision="fp8", ep=64, dp=64)
    assert moe_forward_syncs(Context(_sc(**base)), t)[0]
    sc = _sc(**base, **graph, moe_expert_rank_capacity_factor=1.5)
    assert not moe_forward_syncs(Context(sc), t)[0]
