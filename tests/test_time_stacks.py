"""Time terms of today's stacks, checked against hand-worked numbers from their sources."""

import numpy as np
import pytest

from planner.estimate import comm
from planner.estimate.evaluate import Context
from planner.estimate.topology import group

from test_memory import raw_table, scenario


def test_async_tp_hides_forward_collectives_only():
    """torchtitan async TP (torch.compile micro-pipeline TP) fuses the forward pass's all-gather ->
    matmul and matmul -> reduce-scatter pairs only; Megatron/TE overlap hides every collective
    behind 3x the forward GEMMs. Hand-worked, with 10% contention on what is hidden:
    10 s of TP collectives, 4 s of them in the forward and recomputed forward, 3 s of forward GEMMs.
      torchtitan, full recompute: window 2 x 3 = 6 s, hidden min(4, 6) = 4 -> 10 - 4 + 0.4 = 6.4 s
      torchtitan, no recompute:   window 3 s,         hidden min(4, 3) = 3 -> 10 - 3 + 0.3 = 7.3 s
      megatron:                   window 3 x 3 = 9 s, hidden 9            -> 10 - 9 + 0.9 = 1.9 s"""
    ctx = Context(scenario(runtime={"compile": True}))  # async TP needs torch.compile
    rows = [raw_table(framework="torchtitan", zero=3, recompute="full"),
            raw_table(framework="torchtitan", zero=3, recompute="none"),
            raw_table(framework="megatron", recompute="full")]
    got = [float(comm.tp_exposed_s(ctx, t, np.array([10.0]), np.array([3.0]), np.array([4.0]))[0]) for t in rows]
    assert got == pytest.approx([6.4, 7.3, 1.9])


def test_forward_share_of_tp_collectives():
    """TP collectives per layer in all-reduce equivalents: 2 in forward (attention and MLP), 2 more
    when the forward is recomputed, 2 in backward (Shoeybi et al. 2019 Sec. 3). Megatron's sequence
    parallelism adds two re-gathers in backward (Korthikanti et al. 2022 Sec. 4.2.2: only the sharded
    input is saved); torchtitan's DTensor sequence parallelism saves the gathered input: none."""
    sc = scenario(nodes=1, seq=4096)
    ctx = Context(sc)
    act = 2.0 * 4096 * sc.model.hidden
    ar = float(comm.all_reduce_s(sc.cluster.node, act, group(sc.cluster.node, 8, 1)))
    ag = float(comm.gather_s(sc.cluster.node, act, group(sc.cluster.node, 8, 1)))
    for fw, zero, regather in (("torchtitan", 3, 0.0), ("megatron", 1, 2 * ag)):
        for rc, fwd_units, all_units in (("full", 4, 6), ("none", 2, 4)):
            t = raw_table(framework=fw, zero=zero, tp=8, sp=True, recompute=rc)
            unit = comm.layer_comm(ctx, t, np.zeros(1))
            assert float(unit["tp_fwd_layer"][0]) == pytest.approx(fwd_units * ar)
            assert float(unit["tp_layer"][0]) == pytest.approx(all_units * ar + regather)


def test_ring_across_nodes_shares_the_members_nics():
    """An NCCL ring (all-gather / reduce-scatter) across nodes moves (n-1)/n x bytes per rank; with k
    members per 8-GPU node its crossings leave through k NICs. DGX H100: NIC 50 GB/s x 0.94 = 47 GB/s,
    NVLink 450 x 0.82 = 369 GB/s; 8 GiB over 64 ranks:
      stride 1 (k = 8): min(369, 8 x 47 = 376) = 369 GB/s -> 30 us + 63/64 x 8 GiB / 369 GB/s
      stride 8 (k = 1): 47 GB/s                            -> 30 us + 63/64 x 8 GiB / 47 GB/s"""
    node = scenario(nodes=64).cluster.node
    nbytes = 8 * 2**30
    k8 = float(comm.gather_s(node, nbytes, group(node, 64, 1)))
    k1 = float(comm.gather_s(node, nbytes, group(node, 64, 8)))
    assert k8 == pytest.approx(30e-6 + 63 / 64 * nbytes / 369e9, rel=1e-9)
    assert k1 == pytest.approx(30e-6 + 63 / 64 * nbytes / 47e9, rel=1e-9)
    inside = float(comm.gather_s(node, nbytes, group(node, 8, 1)))  # one node: NVLink only
    assert inside == pytest.approx(10e-6 + 7 / 8 * nbytes / 369e9, rel=1e-9)


def test_sustained_tensor_rate_under_the_power_limit():
    """GH100 SXM boards at 700 W: a GEMM-only load settles at 0.825 of the burst MAMF (H200
    measurement, benchmarks/host_device_results.md); a step that computes a share u of its time gets
    1 - 0.175 u. Hand-worked: u = 1 -> 0.825, u = 0.6 -> 0.895. Rates: H100 SXM bf16 burst
    989.4 x 0.803, times the row's clock for linear layers and attention alike, HBM not scaled."""
    from planner.catalog import gpu
    from planner.estimate import compute_gemm

    assert compute_gemm.sustained_clock(0.825, np.array([1.0, 0.6, 0.0])) == pytest.approx([0.825, 0.895, 1.0])
    t = raw_table(precision="bf16")
    linear, half, hbm, _ = compute_gemm.peaks(gpu("h100-sxm-80gb"), t)
    assert float(linear[0]) == pytest.approx(989.4e12 * 0.803)
    t = {**t, "tensor_clock": np.array([0.895])}
    linear, half, hbm2, _ = compute_gemm.peaks(gpu("h100-sxm-80gb"), t)
    assert float(linear[0]) == pytest.approx(989.4e12 * 0.803 * 0.895)
    assert float(half[0]) == pytest.approx(989.4e12 * 0.803 * 0.895)
    assert hbm2 == hbm == pytest.approx(3.35e12 * compute_gemm.HBM_EFFICIENCY)


def test_step_clock_from_the_busy_share():
    """evaluate.with_tensor_clock: time the step at burst clocks, u = (compute + recompute) / step,
    clock 1 - (1 - 0.825) u on an H100 SXM; a GPU without a measurement (A100) keeps burst rates."""
    from planner.estimate import evaluate, memory

    sc = scenario(model="llama-3.1-70b", nodes=8, gb=64)
    ctx = Context(sc)
    t = raw_table(tp=8, pp=4, dp=2, ga=32, vpp=1, sp=True)
    mem = memory.memory(ctx, t)
    step, b = evaluate.step_time(ctx, t, mem)
    u = (b["compute"] + b["recompute"]) / step
    assert 0.5 < float(u[0]) < 1.0  # the bubble and exposed communication leave part of the step idle
    clocked = evaluate.with_tensor_clock(ctx, t, mem)
    assert float(clocked["tensor_clock"][0]) == pytest.approx(1 - 0.175 * float(u[0]))
    a100 = Context(scenario(model="llama-3.1-70b", node="dgx-a100-80gb", nodes=8, gb=64))
    assert "tensor_clock" not in evaluate.with_tensor_clock(a100, t, memory.memory(a100, t))


def test_fp8_weight_cast_once_per_step_in_megatron():
    """Megatron-Core passes is_first_microbatch to Transformer Engine, which casts the FP8 weights on
    the first micro-batch and reuses them: per micro-batch 1/ga of a cast (ga = 8: 0.125); torchao
    (torchtitan) casts on every forward: 1. In the micro-batch's forward time: the Megatron plan with
    ga = 8 spends 7/8 of one cast less than with ga = 1."""
    from planner.estimate import compute, compute_gemm, compute_quant

    rows = [raw_table(framework="megatron", precision="fp8", ga=8),
            raw_table(framework="torchtitan", precision="fp8", zero=3, ga=8)]
    assert [float(compute_quant.weight_casts_per_mb(t)[0]) for t in rows] == [0.125, 1.0]
    ctx = Context(scenario(nodes=1, gb=64))
    t1, t8 = raw_table(precision="fp8", ga=1), raw_table(precision="fp8", ga=8)
    hbm = compute_gemm.peaks(ctx.gpu, t1)[2]
    cast = float(compute_quant.fp8_weight_cast_s(ctx, t1, False, hbm)[0])
    layers = ctx.model.layers
    f1 = compute.stage_compute(t1, compute.layer_costs(ctx, t1), layers, 0, "first")["forward"]
    f8 = compute.stage_compute(t8, compute.layer_costs(ctx, t8), layers, 0, "first")["forward"]
    assert float(f1[0] - f8[0]) == pytest.approx(layers * cast * 7 / 8, rel=1e-6)


def test_blackwell_sustained_tensor_rate():
    """B200 at its 1,000 W limit, a tensor-core kernel looped: 1,237 of 1,450 TFLOP/s burst, 0.853
    (flashinfer PR #2899); applied to B200 and GB200 (same die). A one-node B200 step that only
    computes (dp 8, no other parallelism) slows by at most 1/0.853 against the burst rate (its
    memory-bound kernels keep the HBM rate) and by more than half of that."""
    from planner.catalog import gpu
    from test_time import est

    for name in ("b200", "gb200"):
        assert gpu(name).sustained_tensor_fraction == pytest.approx(1237 / 1450, abs=5e-4)
    sc = scenario(node="dgx-b200", nodes=1, seq=8192, gb=64)
    plan = "framework=megatron,tp=1,pp=1,mbs=1,zero=1,recompute=none"
    node = sc.cluster.node
    burst_gpu = node.gpu.model_copy(update={"sustained_tensor_fraction": None})
    burst = sc.model_copy(update={"cluster": sc.cluster.model_copy(
        update={"node": node.model_copy(update={"gpu": burst_gpu})})})
    slow, fast = est(sc, plan)["time"]["step_s"], est(burst, plan)["time"]["step_s"]
    s = node.gpu.sustained_tensor_fraction
    assert fast / s >= slow > fast * (1 + 0.5 * (1 / s - 1))


def test_fp8_quantisation_bytes_by_gpu_and_recipe():
    """Bytes per quantised bf16 element, hand-worked from Transformer Engine: read 2, write the FP8
    copy 1, a transposed copy 1 only where FP8 GEMMs are TN-only (Hopper; not compute capability
    10.x: nvte_is_non_tn_fp8_gemm_supported), current scaling's amax pass 2 more; MXFP8 2 + 1 + 1
    plus two 1-byte scales per 32 elements. MXFP8 GEMMs at 6.812 / 7.161 of the FP8 rate (TE GEMM
    profiling tutorial, B300 pre-quantised)."""
    from planner.catalog import gpu
    from planner.estimate import compute_gemm, compute_quant

    h100, b200 = gpu("h100-sxm-80gb"), gpu("b200")
    assert [compute_quant.fp8_cast_bytes(h100, r) for r in ("delayed", "current", "mxfp8")] == \
        pytest.approx([4.0, 6.0, 4.0625])
    assert [compute_quant.fp8_cast_bytes(b200, r) for r in ("delayed", "current", "mxfp8")] == \
        pytest.approx([3.0, 5.0, 4.0625])
    assert [compute_quant.fp8_weight_cast_bytes(g, "current") for g in (h100, b200)] == pytest.approx([4.0, 3.0])
    assert not compute_quant.non_tn_fp8_gemm(gpu("a100-sxm-80gb"))
    t = raw_table(precision="fp8")
    per_tensor = float(compute_gemm.peaks(b200, t, "current")[0][0])
    mx = float(compute_gemm.peaks(b200, t, "mxfp8")[0][0])
    assert per_tensor == pytest.approx(4500e12 * 0.763)
    assert mx == pytest.approx(per_tensor * 6.812 / 7.161)


def test_megatron_export_names_the_fp8_recipe():
    """runtime.fp8_recipe reaches Megatron-LM's --fp8-recipe (delayed, tensorwise, mxfp8)."""
    from planner.frameworks import megatron
    from planner.spec import parse_plan

    for recipe, flag in (("delayed", "delayed"), ("current", "tensorwise"), ("mxfp8", "mxfp8")):
        sc = scenario(node="dgx-b200", nodes=1, seq=4096, gb=64, runtime={"fp8_recipe": recipe})
        args = megatron.megatron_args(sc, parse_plan("framework=megatron,precision=fp8,tp=1,pp=1,mbs=1,zero=1").resolved(sc))
        assert f"--fp8-recipe {flag}" in args


def test_mxfp8_needs_a_blackwell_gpu():
    """runtime.fp8_recipe = mxfp8 on a Hopper node is bad input (Transformer Engine's MXFP8 needs compute
    capability 10.0): a clear message naming the key; accepted on a B200 node."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="runtime.fp8_recipe: mxfp8 needs"):
        scenario(node="dgx-h100", nodes=1, runtime={"fp8_recipe": "mxfp8"})
    assert scenario(node="dgx-b200", nodes=1, runtime={"fp8_recipe": "mxfp8"}).runtime.fp8_recipe == "mxfp8"


@pytest.mark.parametrize("recipe", ["delayed", "current"])
def test_sequence_parallel_fp8_inputs_are_cast_on_the_shard(recipe):
    """Megatron's TE layers with sequence parallelism quantise the QKV and dense FC1 inputs on the 1/tp
    sequence shard and all-gather FP8 row-wise data; backward makes the transposed copy of the gathered
    tensor (TE layernorm_linear.py, v2.7-v2.14). Per token on an H100 (Hopper: TN-only FP8 GEMMs) at tp 4:
    those 2h elements cost (cast - 1) / 4 + 2 bytes instead of the full cast; the attention-output and FC2
    inputs keep it. On a B200 (any layout) no transposed copy at all: cast / 4. Without SP, torchtitan, MLA
    or the routed expert inputs of a MoE layer: unchanged."""
    from planner.catalog import gpu
    from planner.estimate import compute_quant

    sc = scenario(nodes=1, seq=4096, gb=64, runtime={"fp8_recipe": recipe})
    ctx, m = Context(sc), sc.model
    per = compute_quant.fp8_cast_bytes(gpu("h100-sxm-80gb"), recipe)
    rest = (m.heads * m.d_head + m.ffn_hidden) / 4 * per
    cast = lambda **kw: float(compute_quant.fp8_cast_bytes_per_token(  # noqa: E731
        ctx, raw_table(precision="fp8", tp=4, **kw), False)[0])
    assert cast(sp=True) == pytest.approx(2 * m.hidden * ((per - 1) / 4 + 2) + rest, rel=1e-12)
    assert cast(sp=False) == pytest.approx(2 * m.hidden * per + rest, rel=1e-12)
    assert cast(sp=True, framework="torchtitan") == pytest.approx(cast(sp=False), rel=1e-12)
    assert cast(sp=True) < cast(sp=False)
    t = raw_table(precision="fp8", tp=4, sp=True)
    assert float(compute_quant.sp_gathered_cast_bytes(gpu("b200"), recipe, t)[0]) == \
        pytest.approx(compute_quant.fp8_cast_bytes(gpu("b200"), recipe) / 4)
    moe = Context(scenario(model="qwen3-30b-a3b", nodes=1, seq=4096, gb=64, runtime={"fp8_recipe": recipe}))
    mm = moe.model
    got = float(compute_quant.fp8_cast_bytes_per_token(moe, raw_table(precision="fp8", tp=4, sp=True), True)[0])
    routed = mm.moe.top_k * (mm.hidden * per + mm.moe.expert_ffn_hidden / 4 * per)
    assert got == pytest.approx(mm.hidden * ((per - 1) / 4 + 2) + mm.heads * mm.d_head / 4 * per + routed, rel=1e-12)


@pytest.mark.parametrize("recipe, q_in, q_grad, q_re, amax", [
    ("delayed", 1.0, 1.0, 1.0, False),
    ("current", 1.0, 1.0, 1.0, True),
    ("mxfp8", 1 + 1 / 32, 2 + 2 / 32, 1 + 1 / 32, False),
    ("nvfp4", 0.5625, 1.125, 0.5625, True)])
def test_sequence_parallel_gathers_move_quantised_bytes(recipe, q_in, q_grad, q_re, amax):
    """Transformer Engine all-gathers the quantised shard (distributed.py _all_gather_fp8 / _mxfp8 / _nvfp4): per
    dense layer the QKV and FC1 inputs forward (q_in bytes per element) and again in backward (q_re: row-wise for
    per-tensor FP8, column-wise for MXFP8 / NVFP4), the projection and FC2 output gradients (q_grad: both copies
    for the block-scaled recipes); a bf16 gather moves 2. Current scaling and NVFP4 all-reduce a tensor-wide amax
    before each forward-input and gradient cast (one latency each). Hand-worked on 8 B200 at tp 4; zero for bf16,
    without sequence parallelism and for torchtitan."""
    sc = scenario(node="dgx-b200", nodes=1, seq=4096, gb=64, runtime={"fp8_recipe": recipe})
    ctx = Context(sc)
    node, elems = sc.cluster.node, 4096 * sc.model.hidden
    up = node.scaleup_gb_s * 1e9 * node.scaleup_efficiency
    per_byte = 3 / 4 * elems / up  # ring all-gather: (n - 1) / n of the buffer at the link rate
    saved = 2 * (2 - q_in) + 2 * (2 - q_grad) + 2 * (2 - q_re)
    expect = saved * per_byte - (4 * comm.ALPHA_IN_S if amax else 0.0)
    tp4 = group(node, 4, 1)
    got = comm.sp_quantised_gather_saving_s(ctx, raw_table(precision="fp8", tp=4, sp=True), elems, False, tp4)
    assert float(got[0]) == pytest.approx(expect, rel=1e-9)
    for other in (dict(precision="bf16", tp=4, sp=True), dict(precision="fp8", tp=4, sp=False),
                  dict(precision="fp8", tp=4, sp=True, framework="torchtitan", zero=3)):
        assert float(np.asarray(comm.sp_quantised_gather_saving_s(ctx, raw_table(**other), elems, False, tp4))) == 0.0
    # full recompute gathers the forward inputs once more
    rc = comm.sp_quantised_gather_saving_s(ctx, raw_table(precision="fp8", tp=4, sp=True, recompute="full"),
                                           elems, False, tp4)
    assert float(rc[0]) - float(got[0]) == pytest.approx(2 * (2 - q_in) * per_byte
                                                         - (2 * comm.ALPHA_IN_S if amax else 0.0), rel=1e-9)


def test_moe_layers_take_the_moe_tp_traffic():
    """A MoE layer's expert inputs and gradients go through the token dispatcher in bf16, so its quantised-gather
    saving covers the attention gathers only: comm.layer_comm's tp_moe_layer lies above tp_layer by the FC1 / FC2
    gathers' saving, and stage_comm charges it to the MoE layers (dense layers keep tp_layer)."""
    sc = scenario(model="qwen3-30b-a3b", node="dgx-b200", nodes=1, seq=4096, gb=64, runtime={"fp8_recipe": "current"})
    ctx = Context(sc)
    t = raw_table(precision="fp8", tp=4, sp=True)
    unit = comm.layer_comm(ctx, t, np.ones(1), np.ones(1))
    elems = 4096 * sc.model.hidden
    tp4 = group(ctx.node, t["tp"], 1)
    dense_saving = comm.sp_quantised_gather_saving_s(ctx, t, elems, False, tp4)
    moe_saving = comm.sp_quantised_gather_saving_s(ctx, t, elems, True, tp4)
    assert 0.0 < float(moe_saving[0]) < float(dense_saving[0])
    assert float(unit["tp_moe_layer"][0] - unit["tp_layer"][0]) == pytest.approx(
        float(dense_saving[0] - moe_saving[0]), rel=1e-9)
    tp = comm.stage_comm(unit, 1, 2)["tp_comm"]
    assert float(tp[0]) == pytest.approx(float(unit["tp_layer"][0] + 2 * unit["tp_moe_layer"][0]), rel=1e-12)


@pytest.mark.parametrize("path", ["scenarios/long_context_128k.yaml", "benchmarks/scenarios/dsv3_2048_h100.yaml"])
def test_evaluate_table_shares_the_communication_of_both_clocks(path):
    """evaluate.evaluate_table times the step at burst clocks and again at the sustained clock, the
    second time with the layers' communication of the first but for the context-parallel ring
    (comm.with_attention): every estimate is the same, bit for bit, as with_tensor_clock and a
    step_time of their own (context parallelism among the plans of the 128K-token scenario)."""
    from pathlib import Path

    from planner.estimate import evaluate, memory
    from planner.estimate import table as T
    from planner.search import solver
    from planner.spec import load_scenario

    sc = load_scenario(Path(__file__).resolve().parent.parent / path)
    ctx = Context(sc)
    assert ctx.gpu.sustained_tensor_fraction
    t = solver.candidate_table(sc)[0]
    rows = np.random.default_rng(1).choice(T.size(t), size=min(3000, T.size(t)), replace=False)
    t = T.take(t, np.sort(rows))
    if "long_context" in path:
        assert (t["cp"] > 1).any()
    got = evaluate.evaluate_table(ctx, t)
    mem = memory.memory(ctx, t)
    clocked = evaluate.with_tensor_clock(ctx, t, mem)
    want = evaluate._evaluated(ctx, clocked, mem, *evaluate.step_time(ctx, clocked, mem))

    def same(a, b):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for k in a:
                same(a[k], b[k])
        else:
            assert np.array_equal(a, b, equal_nan=True)

    same(got, want)
