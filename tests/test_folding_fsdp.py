"""MoE parallel folding (etp, EP over tp x cp x dp) and Megatron-FSDP (megatron, zero 3): estimate,
search space and exports; and the MFU basis."""

import numpy as np
import pytest

from planner.errors import InputError
from planner.estimate import comm, memory, table
from planner.estimate.evaluate import Context, estimate, evaluate_table
from planner.estimate.topology import group
from planner.frameworks import launch, megatron, torchtitan
from planner.frameworks.rules import framework_problems
from planner.search.solver import candidate_table
from planner.search.space import structural_problems
from planner.spec import parse_plan

from test_memory import scenario


def resolved(sc, text):
    return parse_plan(text).resolved(sc)


@pytest.fixture(scope="module")
def dsv3_512():
    """DeepSeek-V3 on 512 H100 (64 DGX nodes), the published EP64 tp2 pp8 dp32 layout."""
    return scenario(model="deepseek-v3", nodes=64, gb=8192)


def test_published_folded_ep64_on_512_h100_is_estimated(dsv3_512):
    """EP64 with tp2 pp8 dp32: ep (64) does not divide dp*cp (32) but ep*etp = 64 divides tp*cp*dp = 64
    with etp = 1, so Megatron-Core builds it; the planner estimates it (etp = 1 chosen when omitted)."""
    plan = resolved(dsv3_512, "tp=2,pp=8,dp=32,ep=64,recompute=full,precision=fp8")
    assert plan.etp == 1
    r = estimate(dsv3_512, plan)
    assert r["plan"]["etp"] == 1 and r["plan"]["ep"] == 64
    assert r["memory"]["verdict"] != "oom"
    assert r["throughput"]["tokens_per_s_per_gpu"] > 0


def test_expert_layout_that_does_not_multiply_out_is_rejected(dsv3_512):
    with pytest.raises(InputError, match=r"ep\*etp = 64\*2 = 128 must divide tp\*cp\*dp = 2\*1\*32 = 64"):
        resolved(dsv3_512, "tp=2,pp=8,dp=32,ep=64,etp=2")


def test_experts_are_split_over_etp_not_tp(dsv3_512):
    """Per-GPU weights without sharding (zero 0): non-expert / tp + expert / (ep x etp), 2 bytes each."""
    ctx = Context(dsv3_512)
    rows = [resolved(dsv3_512, f"tp=2,pp=8,dp=32,ep=32,etp={e},zero=0") for e in (1, 2)]
    t = table.from_plans(rows)
    sp = memory.stage_params(ctx, t, "first")
    for i, etp in enumerate((1, 2)):
        want = 2.0 * (sp["non_expert"][i] / 2 + sp["expert"][i] / (32 * etp))
        got = memory.stage_memory(ctx, t, "first", memory.layer_activation_bytes(ctx, t))["weights.params"][i]
        assert got == pytest.approx(want, rel=1e-12)
    # experts exist on the first stage of DeepSeek-V3 with pp 8 (3 dense layers, then MoE)
    assert sp["expert"][0] > 0


def test_ep_all_to_all_runs_over_the_ranks_the_group_crosses():
    """ep 8 with tp 2 on 8-GPU nodes: with etp = tp the EP ranks sit 2 apart and span two nodes; folded
    (etp = 1) they are 8 consecutive ranks of one node, so the all-to-all stays on NVLink."""
    sc = scenario(model="mixtral-8x7b", nodes=4, gb=64)
    ctx = Context(sc)
    t = table.from_plans([resolved(sc, f"tp=2,dp=16,ep=8,etp={e},recompute=none") for e in (2, 1)])
    unit, one = comm.layer_comm(ctx, t, np.zeros(2))["ep_moe_layer"], comm.ep_dispatch_s(ctx, t)
    tokens = 4096
    a2a = 2.0 * tokens * sc.model.moe.top_k * sc.model.hidden / 2
    # etp = 2 adds the dispatcher's all-gather / reduce-scatter of the received tokens over the etp pair
    assert one[0] == pytest.approx(comm.all_to_all_s(ctx.node, a2a, group(ctx.node, 8, 2)) + comm.gather_s(ctx.node, 2 * a2a, group(ctx.node, 2, 1)))
    # folded, the group is one 8-GPU board: NCCL's measured all-to-all there (comm.ep_all_to_all_s)
    from planner.serve import nccl_measured

    board = nccl_measured.interp_s(nccl_measured.measured_table(ctx.node, "alltoall", [8]), a2a)[0]
    assert one[1] == pytest.approx(board)
    assert unit == pytest.approx(4 * one + comm.moe_metadata_s(ctx.node, np.array([8, 8]), t["etp"])
                                 + 2 * comm.probs_all_to_all_s(ctx, t))
    assert unit[1] < unit[0]


def test_search_offers_folded_expert_parallelism():
    """The MoE search holds layouts with etp = 1 and ep beyond dp*cp; every row is structurally valid."""
    sc = scenario(model="mixtral-8x7b", nodes=2, gb=64, search={"frameworks": ["megatron"], "precision": ["bf16"],
                                                                 "zero": [1], "offload": ["none"],
                                                                 "offload_params": ["none"], "recompute": ["full"],
                                                                 "micro_batch": [1]})
    t, _ = candidate_table(sc)
    folded = (t["etp"] == 1) & (t["tp"] > 1) & ((t["dp"] * t["cp"]) % t["ep"] != 0)
    assert folded.any()
    assert np.all((t["tp"] * t["cp"] * t["dp"]) % (t["ep"] * t["etp"]) == 0)
    for i in np.flatnonzero(folded)[:5]:
        row = table.row(t, int(i))
        plan = parse_plan(",".join(f"{k}={v}" for k, v in row.items() if k != "global_batch"))
        assert structural_problems(plan, sc) == [] and framework_problems(plan, sc) == []
    dense = candidate_table(scenario(model="llama-3.1-8b", nodes=1, gb=64))[0]
    assert np.all(dense["etp"] == dense["tp"])  # no expert split to choose without experts


def test_megatron_fsdp_shards_every_model_state():
    """megatron zero 3 = Megatron-FSDP optim_grads_params: bf16 weights and (compute-dtype) main grads,
    fp32 main weights and Adam moments, all divided by dp*cp."""
    sc = scenario(model="llama-3.1-8b", nodes=1, gb=64)
    ctx = Context(sc)
    plan = resolved(sc, "framework=megatron,dp=8,zero=3,recompute=none")
    assert framework_problems(plan, sc) == []
    t = table.from_plans([plan])
    n = memory.stage_params(ctx, t, "first")["non_expert"][0]
    m = memory.memory(ctx, t)
    assert m["weights.params"][0] == pytest.approx(2 * n / 8)
    assert m["gradients.grads"][0] == pytest.approx(2 * n / 8)
    assert m["optimizer.master_weights"][0] == pytest.approx(4 * n / 8)
    assert m["optimizer.states"][0] == pytest.approx(8 * n / 8)
    assert m["other.fsdp_prefetch"][0] > 0
    with pytest.raises(InputError, match="ZeRO-2 is not planned"):
        resolved(sc, "framework=megatron,dp=8,zero=2")


def test_megatron_fsdp_gathers_parameters_every_micro_batch():
    """zero 3 all-gathers the parameters in forward and backward of every micro-batch: more DP traffic
    than the distributed optimizer (zero 1) on the same layout, without overlap."""
    sc = scenario(model="llama-3.1-8b", nodes=2, gb=64, runtime={"dp_comm_overlap": False})
    t = table.from_plans([resolved(sc, f"framework=megatron,dp=16,zero={z},recompute=none") for z in (1, 3)])
    dp = evaluate_table(Context(sc), t)["breakdown_s"]["dp_comm"]
    assert dp[1] > dp[0] > 0


def test_megatron_exports_fsdp_and_expert_tp(dsv3_512):
    args = megatron.megatron_args(dsv3_512, resolved(dsv3_512, "tp=2,pp=8,dp=32,ep=64,etp=1,recompute=full"))
    assert "--expert-tensor-parallel-size 1" in args and "--expert-model-parallel-size 64" in args
    sc = scenario(model="llama-3.1-8b", nodes=1, gb=64)
    plan = resolved(sc, "framework=megatron,tp=2,dp=4,zero=3")
    args = megatron.megatron_args(sc, plan)
    for flag in ("--use-megatron-fsdp", "--data-parallel-sharding-strategy optim_grads_params",
                 "--ckpt-format fsdp_dtensor", "--use-distributed-optimizer"):
        assert flag in args
    assert "CUDA_DEVICE_MAX_CONNECTIONS" not in launch.environment(plan.as_dict(), sc.runtime)
    assert launch.environment(resolved(sc, "framework=megatron,tp=2,dp=4,zero=1").as_dict(), sc.runtime)[
        "CUDA_DEVICE_MAX_CONNECTIONS"] == "1"
    parsed = megatron.parse_args([a for a in args if not a.startswith("--ckpt-format")])
    assert any("fsdp_dtensor" in p for p in megatron.args_problems(parsed, 8))


def test_torchtitan_exports_the_plans_expert_tp():
    sc = scenario(model="mixtral-8x7b", nodes=2, gb=64)
    plan = resolved(sc, "framework=torchtitan,tp=4,dp=4,ep=8,etp=1,zero=3")
    cfg, _ = torchtitan.torchtitan_config(sc, plan)
    assert cfg["parallelism"]["expert_tensor_parallel_degree"] == 1
    assert torchtitan.config_problems(cfg, 16) == []
    with pytest.raises(InputError, match="expert tensor parallelism is 1 or tp"):
        resolved(sc, "framework=torchtitan,tp=4,dp=4,ep=2,etp=2,zero=3")


def test_mfu_has_one_basis_and_a_labelled_precision_figure():
    """mfu = model TFLOP/s / dense BF16 peak for every precision; mfu_precision_peak / the plan's own."""
    sc = scenario(model="llama-3.1-8b", nodes=1, gb=64)
    gpu = sc.cluster.node.gpu
    for prec in ("bf16", "fp8"):
        r = estimate(sc, resolved(sc, f"framework=megatron,dp=8,precision={prec}"))
        th = r["throughput"]
        assert th["mfu"] == pytest.approx(th["model_tflops_per_gpu"] / gpu.peak_tflops("bf16"), rel=1e-3)
        assert th["mfu_precision_peak"] == pytest.approx(th["model_tflops_per_gpu"] / gpu.peak_tflops(prec), rel=1e-3)
    assert gpu.peak_tflops("fp8") > gpu.peak_tflops("bf16")
    assert r["throughput"]["mfu_precision_peak"] < r["throughput"]["mfu"]
