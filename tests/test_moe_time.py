"""MoE time terms: the all-to-all dispatcher's permutation traffic, the expert-tensor-parallel
all-gather / reduce-scatter, the metadata exchange, Megatron-Core's EP-overlap phases, the MoE
layer's host launches, and the expert GEMM model against published grouped-GEMM kernel timings."""

import numpy as np
import pytest

from planner.catalog import gpu as catalog_gpu
from planner.estimate import comm, compute, compute_gemm, compute_moe, host, table
from planner.estimate.evaluate import Context
from planner.spec import parse_plan

from test_memory import scenario


def _table(sc, text):
    return table.from_plans([parse_plan(text).resolved(sc)])


def test_permutation_bytes_follow_the_dispatcher_steps():
    """Qwen3-30B-A3B (h 2048, top-8, 128 experts). EP8: 16 local experts, so sort_chunks runs:
    permute 4kh + unpermute 2kh + 2h + 2 sort_chunks 8kh = (50 + 64) x 2048 = 233,472 B per token.
    EP128: one local expert, no sort_chunks: 50 x 2048 = 102,400 B. tp 2 (sequence parallel
    shards): half of each."""
    sc = scenario(model="qwen3-30b-a3b", nodes=16)
    m = sc.model
    assert (m.hidden, m.moe.top_k, m.moe.experts) == (2048, 8, 128)
    t = table.from_plans([{"framework": "megatron", "precision": "bf16", "dp": 128, "tp": tp, "pp": 1, "cp": 1,
                           "ep": ep, "etp": 1, "vpp": 1, "sp": tp > 1, "zero": 1, "offload": "none",
                           "offload_params": "none", "recompute": "none", "mbs": 1, "ga": 1}
                          for tp, ep in ((1, 8), (1, 128), (2, 8))])
    got = compute_moe.permutation_bytes_per_token(m, t)
    assert got == pytest.approx([233_472, 102_400, 116_736])


def test_expert_tensor_parallel_gathers_the_received_tokens():
    """etp = 1: no all-gather; etp = 4 on NVLink: (4-1)/4 of the 4x gathered buffer + one latency."""
    sc = scenario(model="mixtral-8x7b", nodes=1)
    node = sc.cluster.node
    nbytes = 64e6
    assert comm.expert_tp_gather_s(node, nbytes, np.array([1]))[0] == 0.0
    bw = node.scaleup_gb_s * 1e9 * node.scaleup_efficiency
    assert comm.expert_tp_gather_s(node, nbytes, np.array([4]))[0] == pytest.approx(
        comm.ALPHA_IN_S + 0.75 * 4 * nbytes / bw)


def test_metadata_exchange_is_one_latency_of_the_groups_link():
    """EP8 in one DGX: the intra-node latency; EP64 spans 8 nodes: the inter-node latency; no EP: 0."""
    node = scenario(model="mixtral-8x7b", nodes=8).cluster.node
    got = comm.moe_metadata_s(node, np.array([1, 8, 64]), np.array([1, 1, 1]))
    assert got == pytest.approx([0.0, comm.ALPHA_IN_S, comm.ALPHA_OUT_S])


def test_ep_overlap_phases_hand_worked():
    """One a2a of 1.0, pre-dispatch forward 0.5 (backward 1.0), expert GEMMs forward 0.2:
    phase 1 max(1, 0.5) = 1; phase 2 max(max(0.4, 1) + 0.2, max(1, 0.2) + 1) = 2; phase 3
    max(1, 1) = 1; compute 0.5 + 0.6 + 1.0 = 2.1, so 4 - 2.1 = 1.9 of the 4 all-to-alls stay exposed.
    Small all-to-alls hide completely; with no compute all four show."""
    f = comm.ep_overlap_pair_exposed_s
    assert f(np.array(1.0), np.array(0.5), np.array(0.2)) == pytest.approx(1.9)
    assert f(np.array(0.01), np.array(0.5), np.array(0.2)) == pytest.approx(0.0)
    assert f(np.array(1.0), np.array(0.0), np.array(0.0)) == pytest.approx(4.0)


@pytest.mark.parametrize("pp,vpp,ga,expected", [(1, 1, 8, 1 / 8), (4, 1, 16, 3 / 16), (2, 12, 32, 24 / 384),
                                                (8, 1, 4, 1.0)])
def test_warmup_share_of_the_1f1b_schedules(pp, vpp, ga, expected):
    """Rank 0 warm-up: pp - 1 forwards (1F1B), 2(pp-1) + (vpp-1) pp chunk forwards (interleaved), out of
    ga x vpp; capped at all of them."""
    t = {"pp": np.array([pp]), "vpp": np.array([vpp]), "ga": np.array([ga])}
    assert comm.warmup_fraction(t)[0] == pytest.approx(expected)


def test_ep_overlap_exposes_between_contention_and_everything():
    """With overlap on, the exposed EP time of a stage lies between the contention share and the
    whole, and a DeepSeek-V3 layout whose inter-node all-to-alls outlast the paired compute keeps
    part of them exposed (the old whole-micro-batch hiding hid them all)."""
    base = scenario(model="deepseek-v3", nodes=64, gb=8192)
    on = base.model_copy(update={"runtime": base.runtime.model_copy(update={"ep_comm_overlap": True})})
    plan = "tp=2,pp=8,vpp=2,dp=32,ep=64,etp=1,recompute=selective,mbs=1"
    t = _table(on, plan)
    ctx = Context(on)
    unit = compute.layer_costs(ctx, t)
    uc = comm.layer_comm(ctx, t, unit["attn_fwd"])
    moe = np.array([7.0])
    ep_s = moe * uc["ep_moe_layer"]
    one = comm.ep_dispatch_s(ctx, t)
    exposed = comm.ep_exposed_s(ctx, t, ep_s, moe, one, unit["moe_fwd"] - unit["moe_expert"]
                                + unit["attn_fwd"], unit["moe_expert"])
    assert comm.TP_OVERLAP_CONTENTION * ep_s[0] < exposed[0] < ep_s[0]
    # Megatron refuses the overlap with full recompute, and with pp > 1 without interleaving
    for refused in ("tp=2,pp=8,vpp=2,dp=32,ep=64,etp=1,recompute=full,mbs=1",
                    "tp=2,pp=8,dp=32,ep=64,etp=1,recompute=selective,mbs=1"):
        assert not comm.ep_overlap_allowed(ctx, _table(on, refused))[0]
    assert comm.ep_overlap_allowed(ctx, t)[0]
    assert exposed[0] > 0.2 * ep_s[0]
    off = comm.ep_exposed_s(Context(base), t, ep_s, moe, one, unit["moe_fwd"], unit["moe_expert"])
    assert off[0] == pytest.approx(ep_s[0])


def test_moe_layer_host_launches_hand_worked():
    """Qwen3-30B-A3B, Megatron bf16, EP8 (16 local experts): 3 linear modules (qkv, o, router) at 126 us,
    2 grouped expert modules at 126 us + 16 x 3 x 6.5 us, 8 fused layer ops + 15 MoE ops with a
    backward at 28.6 us, 12 metadata launches at 6.5 us = 378 + 876 + 657.8 + 78 = 1989.8 us."""
    sc = scenario(model="qwen3-30b-a3b", nodes=2, gb=64)
    t = _table(sc, "framework=megatron,precision=bf16,tp=1,pp=1,dp=16,ep=8,recompute=none,mbs=1")
    ctx = Context(sc)
    linears = [mm.name for mm in compute.layer_matmuls(sc.model, True) if not mm.name.startswith("expert")]
    assert len(linears) == 3, linears
    got = host.layer_host_s(ctx, t, True, np.array([False]))
    assert got[0] == pytest.approx(1989.8e-6, rel=1e-6)


# DeepGEMM README (deepseek-ai/DeepGEMM at a6d97a1, 2025-02-25), H800 (H100 SXM compute), FP8:
# grouped GEMMs for MoE, (groups, rows per group, N, K, measured TFLOPS).
DEEPGEMM_GROUPED = [(4, 8192, 4096, 7168, 1297), (4, 8192, 7168, 2048, 1099), (8, 4096, 4096, 7168, 1288),
                    (8, 4096, 7168, 2048, 1093), (1, 1024, 4096, 7168, 1233), (1, 1024, 7168, 2048, 925),
                    (2, 512, 4096, 7168, 1040), (2, 512, 7168, 2048, 916), (4, 256, 4096, 7168, 932),
                    (4, 256, 7168, 2048, 815)]


def test_expert_gemms_never_beat_deepgemm_and_lose_more_on_small_groups():
    """The per-expert GEMM model (compute_gemm.gemm_s: MAMF rate + operand traffic + launch, one GEMM per
    expert as Transformer Engine's GroupedLinear issues them) on an H100 at FP8: at most DeepGEMM's
    measured grouped-GEMM rate (the fastest published kernel, 1.0-1.2x CUTLASS), at least half of it,
    and further below it at 256-512 rows per expert than at 4096-8192 (per-expert traffic and launch)."""
    g = catalog_gpu("h100-sxm-80gb")
    rate = g.peak_tflops("fp8") * 1e12 * g.matmul_efficiency.fp8
    hbm = g.hbm_tb_s * 1e12 * compute_gemm.HBM_EFFICIENCY
    ratios = {}
    for groups, m, n, k, measured in DEEPGEMM_GROUPED:
        s = groups * compute_gemm.gemm_s(m, k, n, rate, hbm, 1.0)
        ratios[(m, n, k)] = 2 * groups * m * n * k / s / 1e12 / measured
    assert all(0.5 <= r <= 1.05 for r in ratios.values()), ratios
    for n, k in ((4096, 7168), (7168, 2048)):
        assert ratios[(256, n, k)] < ratios[(512, n, k)] < ratios[(4096, n, k)]


def test_per_expert_fp8_quantisation_kernels_hand_worked():
    """Qwen3-30B-A3B, EP8 (16 local experts), 2 grouped expert modules, input + output gradient each:
    current scaling 2 x 2 x 16 x 3 (amax, scale, cast) = 192 kernels; delayed scaling one fused
    multi-tensor cast per tensor = 4; bf16 and torchtitan none. The host pays 6.5 us for each."""
    base = scenario(model="qwen3-30b-a3b", nodes=2, gb=64)
    plans = ["framework=megatron,precision=fp8,tp=1,pp=1,dp=16,ep=8,recompute=none,mbs=1",
             "framework=megatron,precision=bf16,tp=1,pp=1,dp=16,ep=8,recompute=none,mbs=1",
             "framework=torchtitan,precision=fp8,tp=1,pp=1,dp=16,ep=8,zero=3,recompute=none,mbs=1"]
    got = {}
    for recipe in ("current", "delayed"):
        sc = base.model_copy(update={"runtime": base.runtime.model_copy(update={"fp8_recipe": recipe})})
        t = table.from_plans([parse_plan(p).resolved(sc) for p in plans])
        got[recipe] = compute_moe.expert_quant_kernels(Context(sc), t)
    assert list(got["current"]) == [192, 0, 0]
    assert list(got["delayed"]) == [4, 0, 0]
    sc = base.model_copy(update={"runtime": base.runtime.model_copy(update={"fp8_recipe": "current"})})
    t = table.from_plans([parse_plan(plans[0]).resolved(sc)])
    t_bf16 = table.from_plans([parse_plan(plans[1]).resolved(sc)])
    ctx = Context(sc)
    no = np.array([False])
    fp8_host, bf16_host = host.layer_host_s(ctx, t, True, no)[0], host.layer_host_s(ctx, t_bf16, True, no)[0]
    # fp8 adds one quantisation op per linear module (3 linears + 2 expert modules) and the 192 launches
    assert fp8_host - bf16_host == pytest.approx(5 * host.HOST_OP_FWD_BWD_S + 192 * host.HOST_LAUNCH_S)


def test_dispatcher_sync_exposes_host_paced_expert_section_hand_worked():
    """Qwen3-30B-A3B, EP8 (16 local experts), 2 expert modules. FP8 current scaling: after the sync
    the host issues 9 dispatcher ops + 2 x 16 expert GEMMs + 96 forward quantisation kernels = 137
    launches x 6.5 us = 890.5 us; against 0.5 ms of GPU work that leaves 390.5 us + the 15 us wait.
    bf16: 41 launches = 266.5 us, under the GPU's 0.5 ms: only the wait. torchtitan EP8 (one grouped
    GEMM per module): only the wait; torchtitan without EP (no splits to copy): none."""
    base = scenario(model="qwen3-30b-a3b", nodes=2, gb=64)
    sc = base.model_copy(update={"runtime": base.runtime.model_copy(update={"fp8_recipe": "current"})})
    plans = ["framework=megatron,precision=fp8,tp=1,pp=1,dp=16,ep=8,recompute=none,mbs=1",
             "framework=megatron,precision=bf16,tp=1,pp=1,dp=16,ep=8,recompute=none,mbs=1",
             "framework=torchtitan,precision=fp8,tp=1,pp=1,dp=16,ep=8,zero=3,recompute=none,mbs=1",
             "framework=torchtitan,precision=fp8,tp=1,pp=1,dp=16,ep=1,zero=3,recompute=none,mbs=1"]
    t = table.from_plans([parse_plan(p).resolved(sc) for p in plans])
    got = host.moe_sync_exposed_s(Context(sc), t, np.full(4, 0.5e-3))
    assert got == pytest.approx([390.5e-6 + 15e-6, 15e-6, 15e-6, 0.0])
    # the GPU's own work in that section hides the launches it outlasts
    assert host.moe_sync_exposed_s(Context(sc), t, np.full(4, 2e-3))[0] == pytest.approx(15e-6)


def test_per_expert_gemm_host_cost_scales_megatron_expert_launches_only(monkeypatch):
    """Qwen3-30B-A3B, EP8 (16 local experts), 2 expert modules. Raising the host time of one
    per-expert GEMM (host.EXPERT_GEMM_HOST_S) by d adds 2 x 16 x 3 x d to the layer's host time
    (forward, dgrad and wgrad GEMM per expert) and 2 x 16 x d to the launches after the dispatcher's
    sync for Megatron; torchtitan's one grouped GEMM per module keeps the bare launch."""
    sc = scenario(model="qwen3-30b-a3b", nodes=2, gb=64)
    plans = ["framework=megatron,precision=bf16,tp=1,pp=1,dp=16,ep=8,recompute=none,mbs=1",
             "framework=torchtitan,precision=bf16,tp=1,pp=1,dp=16,ep=8,zero=3,recompute=none,mbs=1"]
    t = table.from_plans([parse_plan(p).resolved(sc) for p in plans])
    ctx, no = Context(sc), np.array([False, False])
    host_before = host.layer_host_s(ctx, t, True, no)
    sync_before = host.moe_sync_exposed_s(ctx, t, np.zeros(2))
    d = 10e-6
    monkeypatch.setattr(host, "EXPERT_GEMM_HOST_S", host.HOST_LAUNCH_S + d)
    host_after = host.layer_host_s(ctx, t, True, no)
    assert host_after[0] - host_before[0] == pytest.approx(2 * 16 * 3 * d)
    assert host_after[1] == pytest.approx(host_before[1])
    after = host.moe_sync_exposed_s(ctx, t, np.zeros(2))
    assert after[0] - sync_before[0] == pytest.approx(2 * 16 * d)
    assert after[1] == pytest.approx(sync_before[1])


def test_dispatcher_sync_slows_moe_forward_only_and_leaves_dense_models_alone():
    """The sync term lengthens a MoE plan's forward by the layer count x the exposed seconds (when the
    host floor does not bind) and is absent from dense models."""
    sc = scenario(model="qwen3-30b-a3b", nodes=2, gb=64)
    t = _table(sc, "framework=megatron,precision=bf16,tp=1,pp=1,dp=16,ep=8,recompute=none,mbs=1")
    unit = compute.layer_costs(Context(sc), t)
    assert unit["moe_sync"][0] > 0
    without = {**unit, "moe_sync": 0.0}
    with_sync = compute.stage_compute(t, unit, 0, 48, "first")
    base = compute.stage_compute(t, without, 0, 48, "first")
    assert with_sync["backward"][0] == pytest.approx(base["backward"][0])
    assert with_sync["forward"][0] - base["forward"][0] == pytest.approx(48 * unit["moe_sync"][0])
    dense = scenario(model="llama-3.1-8b", nodes=1)
    td = _table(dense, "framework=megatron,precision=bf16,tp=1,pp=1,dp=8,recompute=none,mbs=1")
    assert "moe_sync" not in compute.layer_costs(Context(dense), td)


@pytest.mark.parametrize("pp,vpp", [(4, 1), (8, 1), (16, 1), (8, 2), (4, 4), (16, 2)])
def test_stage_time_is_the_slowest_of_every_rank(pp, vpp):
    """DeepSeek-V3 (3 leading dense layers, 58 MoE, 61 in all): the stage time the step is built on
    equals the slowest rank's time when every pipeline rank is evaluated one by one (its dense and
    MoE layers from stage_layers, the output layer on the last rank only). E.g. pp 8: the first rank
    holds 3 dense + 5 MoE, rank 1 8 MoE, the last 7 MoE + the output layer: rank 1 is the slowest."""
    from planner.estimate import evaluate

    sc = scenario(model="deepseek-v3", nodes=64)
    ctx = Context(sc)
    t = _table(sc, f"framework=megatron,precision=bf16,tp=1,pp={pp},vpp={vpp},ep=8,recompute=none,mbs=1")
    unit = compute.layer_costs(ctx, t)
    unit_comm = comm.layer_comm(ctx, t, unit["attn_fwd"], unit["attn_bwd"])
    every = [float(evaluate.rank_stage_time(ctx, t, unit, unit_comm, np.array([r]),
                                            "last" if r == pp - 1 else "first" if r == 0 else "middle")[0][0])
             for r in range(pp)]
    assert float(evaluate.stage_time(ctx, t)[0][0]) == pytest.approx(max(every), rel=1e-12)
    if (pp, vpp) == (8, 1):  # the worked case: a middle rank, which first and last alone would miss
        slowest = every.index(max(every))
        assert slowest not in (0, pp - 1) and max(every) > max(every[0], every[-1])
