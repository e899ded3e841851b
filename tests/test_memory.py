"""Memory terms, one by one, against hand-computed values (the papers' and the frameworks' own numbers
are in test_memory_reference.py, invariants in test_memory_properties.py)."""

import numpy as np
import pytest

from planner.estimate import memory, table
from planner.estimate import memory_terms_runtime as rt
from planner.estimate.evaluate import Context, FITS_FRACTION, estimate, memory_verdict
from planner.estimate.memory_terms_stage import in_flight_microbatches, stage_layers
from planner.report.console import breakdown_lines
from planner.spec import parse_plan
from planner.spec.scenario import Scenario

from conftest import ROOT

GIB = 2**30
MOE = dict(name="moe-toy", layers=8, hidden=1024, heads=16, kv_heads=4, ffn_hidden=4096, vocab=32000,
           moe={"experts": 8, "top_k": 2, "expert_ffn_hidden": 1024})


def scenario(model="llama-3.1-8b", node="dgx-h100", nodes=8, seq=4096, gb=512, **extra):
    from planner.spec.load import resolve_scenario_dict

    data = {"model": model, "cluster": {"node": node, "nodes": nodes},
            "training": {"seq_len": seq, "global_batch": gb, "tokens": 1e9}, **extra}
    return Scenario.model_validate(resolve_scenario_dict(data, ROOT, None))


def plan_table(sc, **fields):
    p = parse_plan(",".join(f"{k}={v}" for k, v in fields.items())).resolved(sc)
    return table.from_plans([p])


def raw_table(**fields):
    """A plan table with any layout (the framework rules are not applied)."""
    base = dict(framework="megatron", precision="bf16", dp=1, tp=1, pp=1, cp=1, ep=1, vpp=1, sp=False, zero=1,
                offload="none", offload_params="none", recompute="none", mbs=1, ga=1)
    return table.from_plans([{**base, **fields}])


@pytest.mark.parametrize("sp", [False, True])
def test_activations_match_korthikanti_table_2(sp):
    """Korthikanti et al. 2022, Table 2, per layer: sbh(10 + 24/t + 5as/(ht)) with tensor
    parallelism, sbh(34/t + 5as/(ht)) with sequence parallelism (no flash attention, dropout on)."""
    sc = scenario(model="gpt-22b", nodes=1, seq=2048, gb=8)
    t = raw_table(tp=8, sp=sp, mbs=4, ga=2)
    acts = memory.layer_activation_bytes(Context(sc), t, flash=False)["dense"]
    s, b, h, a, tp = 2048, 4, 6144, 64, 8
    base = (34 / tp) if sp else (10 + 24 / tp)
    expected = s * b * h * (base + 5 * a * s / (h * tp))
    assert float(acts["none"][0]) == pytest.approx(expected, rel=1e-12)
    # Selective recompute removes the 5as/h term (Sec. 5); full recompute keeps the layer input.
    assert float(acts["selective"][0]) == pytest.approx(s * b * h * base, rel=1e-12)
    assert float(acts["full"][0]) == pytest.approx(2 * s * b * h / (tp if sp else 1), rel=1e-12)


def test_pipeline_micro_batches_in_flight():
    """1F1B: the first rank holds min(pp, ga) micro-batches, the last one. Interleaved (Megatron-Core):
    rank r warms up 2(pp-r-1) + (vpp-1)pp chunks and runs one more, chunks of 1/vpp of its layers:
    pp(1 + (pp-1)/(pp vpp)) on the first rank (Korthikanti Sec. 4.2.3), ((vpp-1)pp + 1)/vpp on the
    last; capped by the ga*vpp chunks of the step."""
    t = {"pp": np.array([4, 4, 4, 4, 1]), "vpp": np.array([1, 1, 5, 5, 1]), "ga": np.array([64, 2, 64, 2, 8])}
    first, last = in_flight_microbatches(t, "first"), in_flight_microbatches(t, "last")
    assert list(first) == pytest.approx([4, 2, 4 * (1 + 3 / 20), 2, 1])
    assert list(last) == pytest.approx([1, 1, (4 * 4 + 1) / 5, 2, 1])


def test_first_stage_stores_all_layers_worth_of_micro_batches():
    sc = scenario(model="llama-3.1-70b", nodes=8, gb=512)
    ctx = Context(sc)
    t1 = plan_table(sc, tp=8, pp=4, dp=2, mbs=1, recompute="none")
    per_layer = float(memory.layer_activation_bytes(ctx, t1)["dense"]["none"][0])
    mem = memory.memory(ctx, t1)
    assert float(mem["activations.layers"][0]) == pytest.approx(per_layer * 80, rel=1e-12)
    assert int(mem["stage"][0]) == 0
    t2 = plan_table(sc, tp=8, pp=4, vpp=5, dp=2, mbs=1, recompute="none")
    assert float(memory.memory(ctx, t2)["activations.layers"][0]) == pytest.approx(per_layer * 80 * (1 + 3 / 20))


def test_uneven_layer_split_and_leading_dense_layers():
    """80 layers on pp = 3: the first rank takes the extra layers (27, 26, 27 -> first 27, last 26);
    with vpp = 2 the six chunks hold 14, 14, 13, 13, 13, 13 and rank 0 owns chunks 0 and 3."""
    sc = scenario(model="llama-3.1-70b", nodes=3, gb=48)
    ctx = Context(sc)
    t = {"pp": np.array([3, 3]), "vpp": np.array([1, 2])}
    assert list(stage_layers(ctx, t, "first")[0]) == [27, 27]
    assert list(stage_layers(ctx, t, "last")[0]) == [26, 26]
    ds = Context(scenario(model="deepseek-v3", nodes=8))  # 61 layers, the first 3 dense
    t = {"pp": np.array([1, 2, 61]), "vpp": np.array([1, 1, 1])}
    layers, dense, moe = stage_layers(ds, t, "first")
    assert list(layers) == [61, 31, 1] and list(dense) == [3, 3, 1] and list(moe) == [58, 28, 0]
    assert list(stage_layers(ds, t, "last")[1]) == [3, 0, 0]


def test_tied_embedding_copy_on_the_last_stage():
    """With tied embeddings and pp > 1 the last stage holds its own output weight (vocab x h)."""
    ctx = Context(scenario(model="gpt-22b", nodes=1, seq=2048, gb=8))
    st, m = ctx.stats, ctx.model
    t = raw_table(tp=8, pp=2, ga=4)
    last = memory.stage_params(ctx, t, "last")
    layer = st.attention_per_layer + st.norms_per_layer + st.dense_mlp_per_layer
    assert float(last["non_expert"][0]) == 24 * layer + st.final_norm + m.vocab * m.hidden
    one = memory.stage_params(ctx, raw_table(tp=8), "last")
    assert float(one["non_expert"][0]) == st.params_total  # pp = 1: one copy


def test_moe_dispatch_buffers_scale_with_capacity_factor():
    """Each routed copy keeps its dispatched input (2h) and, where the probabilities weight the
    combined output (Megatron-Core <= 0.12), that output too (2h), else its fp32 probability (4 B):
    x top_k x capacity factor per token and MoE layer; the all-to-all's send buffer is 2h per copy,
    once. Megatron's default is the probabilities inside the experts' activation."""
    tokens = 4096
    for probs, per_copy in ((None, 2 * 1024 + 4), ("combine", 4 * 1024), ("activation", 2 * 1024 + 4)):
        for cf in (None, 1.25):
            moe = dict(MOE["moe"], **({"capacity_factor": cf} if cf else {}))
            extra = {"runtime": {"moe_router_probs": probs}} if probs else {}
            ctx = Context(scenario(model=dict(MOE, moe=moe), nodes=1, seq=tokens, gb=8, **extra))
            mem = memory.memory(ctx, raw_table(ep=1, ga=8))
            assert float(mem["activations.moe_dispatch_combine"][0]) == pytest.approx(8 * 2 * per_copy * (cf or 1.0) * tokens)  # 8 layers, top 2
            assert float(mem["other.moe_permute_buffer"][0]) == pytest.approx(2 * 1024 * 2 * (cf or 1.0) * tokens)
    full = memory.memory(ctx, raw_table(recompute="full", ga=8))
    assert float(full["activations.moe_dispatch_combine"][0]) == 0


def test_megatron_recompute_modules():
    """--recompute-modules (runtime.recompute_modules, Megatron selective): each listed module drops
    what it would keep (moe_act: the second expert GEMM's input, 2 f_expert per routed copy; moe: the
    whole MoE block with its dispatch buffers; mlp: the dense MLP's intermediates), and its forward
    runs again: more recompute seconds and hardware FLOPs."""
    from planner.estimate import compute
    from planner.estimate.recompute import recomputed_flops_per_token

    def ctx_of(mods):
        return Context(scenario(model=MOE, nodes=1, seq=4096, gb=8, runtime={"recompute_modules": mods}))

    t = raw_table(recompute="selective", ga=8)
    base, act, moe = (memory.layer_activation_bytes(ctx_of(m), t)["moe"]["selective"]
                      for m in (["core_attn"], ["core_attn", "moe_act"], ["core_attn", "moe"]))
    mo = ctx_of(None).model.moe
    assert float((base - act)[0]) == pytest.approx(mo.top_k * 2 * mo.expert_ffn_hidden * 4096)
    assert float(moe[0]) < float(act[0])
    assert float(memory.memory(ctx_of(["moe"]), t)["activations.moe_dispatch_combine"][0]) == 0
    assert float(memory.memory(ctx_of(["core_attn"]), t)["activations.moe_dispatch_combine"][0]) > 0
    assert recomputed_flops_per_token(ctx_of(None)) < recomputed_flops_per_token(ctx_of(["core_attn", "moe"]))
    assert recomputed_flops_per_token(ctx_of([])) == 0
    rc = [float(compute.microbatch_compute(ctx_of(m), t, "last")["recompute"][0])
          for m in ([], ["core_attn"], ["core_attn", "moe"])]
    assert rc[0] == 0 and 0 < rc[1] < rc[2]


def test_mla_keeps_its_latents():
    """MLA stores its query and key-value latents before and after their norms: 4 bytes per token per
    latent dimension (compare two ranks of the key-value latent)."""
    ctx = Context(scenario(model="deepseek-v3", nodes=8, seq=4096))
    m = ctx.model
    wider = Context(scenario(model={**m.model_dump(exclude_none=True), "mla": {**m.mla.model_dump(exclude_none=True),
                                                                              "kv_lora_rank": 1024}}, nodes=8))
    t = raw_table(tp=1)
    a = memory.layer_activation_bytes(ctx, t)["moe"]["none"]
    b = memory.layer_activation_bytes(wider, t)["moe"]["none"]
    assert float((b - a)[0]) == 4 * (1024 - m.mla.kv_lora_rank) * 4096


def test_logits_and_loss_by_framework():
    """Megatron's vocab-parallel cross entropy keeps bf16 logits and one fp32 copy (6 bytes per vocab
    entry); Hugging Face / torchtitan: F.cross_entropy on the fp32 upcast, whose log-softmax backward
    holds its saved output, the incoming gradient and its result, fp32 each (12; measured on an H200)."""
    sc = scenario(model="qwen2.5-32b", nodes=2, seq=4096)
    ctx = Context(sc)
    v, h = ctx.model.vocab, ctx.model.hidden
    for fw, per_vocab in (("megatron", 6), ("deepspeed", 12), ("torchtitan", 12)):
        mem = memory.memory(ctx, raw_table(framework=fw, tp=1, ga=8))
        assert float(mem["activations.logits_loss"][0]) == 4096 * (per_vocab * v + 4 * h)


def test_fp8_extras_and_torchtitan_pipeline_buffers():
    sc = scenario(model="llama-3.1-70b", nodes=8)
    ctx = Context(sc)
    st = ctx.stats
    meg = memory.memory(ctx, raw_table(precision="fp8", tp=8, pp=4, dp=2, ga=64))
    gemm = 20 * (st.attention_per_layer + st.dense_mlp_per_layer) / 8
    assert float(meg["weights.fp8_weight_copies"][0]) == pytest.approx(2 * gemm)
    assert 0 < float(meg["weights.fp8_scaling_state"][0]) < 1e6
    titan = memory.memory(ctx, raw_table(framework="torchtitan", precision="fp8", tp=8, pp=4, dp=2, zero=3, ga=64))
    assert float(titan["weights.fp8_weight_copies"][0]) == 0  # torchao casts per use, caches nothing
    local = float(titan["local_params"][0])
    assert float(titan["weights.fsdp_unsharded_params"][0]) == 2 * local
    assert float(titan["gradients.fsdp_grad_accumulation"][0]) == 4 * local
    assert float(titan["other.fsdp_prefetch"][0]) == 0
    flat = memory.memory(ctx, raw_table(framework="torchtitan", tp=8, dp=8, zero=3, ga=8))
    assert float(flat["weights.fsdp_unsharded_params"][0]) == 0 and float(flat["other.fsdp_prefetch"][0]) > 0


@pytest.mark.parametrize("opt,per_param", [("adam8bit", 2 + 8 / 2048), ("sgd", 4.0)])
def test_optimizer_state_bytes(opt, per_param):
    from planner.spec.load import resolve_scenario_dict

    data = {"model": "llama-3.1-8b", "cluster": {"node": "dgx-h100", "nodes": 1},
            "training": {"seq_len": 4096, "global_batch": 8, "tokens": 1e9, "optimizer": opt}}
    sc = Scenario.model_validate(resolve_scenario_dict(data, ROOT, None))
    ms = memory.model_state_bytes(Context(sc), raw_table(framework="deepspeed", dp=8, zero=1), "first")
    assert float((ms["optimizer"] / ms["local_params"])[0]) * 8 == pytest.approx(4 + per_param)


def test_adafactor_factors_only_where_it_sees_matrices():
    """Shaped parameters (Megatron without the distributed optimizer, torchtitan) keep row + column
    statistics: far below a byte per parameter. Flat partitions (DeepSpeed, Megatron's distributed
    optimizer) keep a full second moment: 4 bytes."""
    from planner.spec.load import resolve_scenario_dict

    data = {"model": "llama-3.1-8b", "cluster": {"node": "dgx-h100", "nodes": 1},
            "training": {"seq_len": 4096, "global_batch": 8, "tokens": 1e9, "optimizer": "adafactor"}}
    ctx = Context(Scenario.model_validate(resolve_scenario_dict(data, ROOT, None)))
    m = ctx.model
    ms = memory.memory(ctx, raw_table(zero=0, ga=8))
    rows_cols = 32 * ((m.hidden + 2 * 8 * 128 + 128 * 32) + m.hidden * 2 + (2 * m.ffn_hidden + m.hidden)
                      + (m.hidden + m.ffn_hidden) + 2 * m.hidden) + 2 * (m.vocab + m.hidden) + m.hidden
    assert float(ms["optimizer.states"][0]) == pytest.approx(4 * rows_cols)
    assert float(ms["optimizer.states"][0]) < 0.01 * float(ms["local_params"][0])  # < 0.01 byte per parameter
    flat = memory.memory(ctx, raw_table(zero=1, dp=8, ga=1))
    assert float(flat["optimizer.states"][0]) == pytest.approx(4 * float(flat["partition_params"][0]))


def test_nccl_buffers_count_the_communicators_in_use():
    sc = scenario(model="llama-3.1-70b", nodes=8)
    ctx = Context(sc)
    mem = memory.memory(ctx, raw_table(tp=8, pp=4, dp=2, ga=64))
    expected = rt.NCCL_COMM_BYTES * 2 + rt.NCCL_PAIR_COMM_BYTES + rt.NCCL_P2P_PEER_BYTES  # tp, world, dp; one neighbour
    assert float(mem["other.nccl_buffers"][0]) == pytest.approx(expected)
    alone = memory.memory(ctx, raw_table(ga=8))
    assert float(alone["other.nccl_buffers"][0]) == 0
    moe = Context(scenario(model=MOE, nodes=1, gb=8))
    ep = memory.memory(moe, raw_table(dp=8, ep=8, ga=1))
    assert float(ep["other.nccl_buffers"][0]) == pytest.approx(rt.NCCL_COMM_BYTES + 7 * rt.NCCL_P2P_PEER_BYTES)


def test_deepspeed_buckets_follow_overlap_comm():
    """transformers' DeepSpeed docs: overlap_comm uses 4.5x both bucket sizes: 2e8 elements x 2 bytes
    x 2 x 4.5 = 3.6 GB."""
    for overlap, expected in ((True, 3.6e9), (False, 0.8e9)):
        sc = scenario(model="llama-3.1-8b", nodes=2, runtime={"dp_comm_overlap": overlap})
        mem = memory.memory(Context(sc), raw_table(framework="deepspeed", dp=16, zero=2, ga=32))
        assert float(mem["other.ds_buckets"][0]) == pytest.approx(expected)
    assert memory.DS_BUCKET_ELEMENTS == rt.DS_BUCKET_ELEMENTS == 2e8


def test_optimizer_step_peak_replaces_the_freed_activations():
    """DeepSpeed's fp32 gradient partition (4 bytes per partitioned parameter) exists at the step, when
    activations are freed: it counts only where it exceeds the forward/backward transients."""
    ctx = Context(scenario(model="llama-3.1-8b", nodes=1, seq=512, gb=8))
    mem = memory.memory(ctx, raw_table(framework="deepspeed", dp=8, zero=1, recompute="full", ga=1))
    transients = sum(mem[f"activations.{p}"] for p in memory.GROUPS["activations"]) + sum(
        mem[f"other.{p}"] for p in ("zero3_live_params", "fsdp_prefetch", "sp_allgather_buffer", "moe_permute_buffer"))
    temp = 4 * mem["partition_params"]
    assert float(mem["other.optimizer_step_temp"][0]) == pytest.approx(float((temp - transients)[0]))
    assert int(mem["peak_phase"][0]) == 1
    assert float(mem["other.fragmentation"][0]) == pytest.approx(rt.ALLOCATOR_SLACK_DEFAULT * float(temp[0]))


def test_offload_moves_states_to_the_host_and_is_checked_against_it():
    """Llama-3.1-70B on one 8 x A100-40GB server (1 TiB host). ZeRO-3 with optimizer and parameter
    offload to the CPU: the host holds 2 (bf16 params) + 4 + 8 (fp32 master, Adam) + 4 (fp32 grads)
    + 2 (16-bit gradient buffer) = 20 bytes per parameter, 1.3 TiB: the host cannot hold it (oom).
    Optimizer states on NVMe instead: 4 bytes per parameter plus pinned swap buffers stay in RAM."""
    sc = scenario(model="llama-3.1-70b", node="hgx-a100-40gb", nodes=1, seq=2048, gb=64)
    p = Context(sc).stats.params_total
    on_gpu = estimate(sc, parse_plan("framework=deepspeed,zero=3,dp=8,mbs=1,recompute=full").resolved(sc))
    assert on_gpu["memory"]["verdict"] == "oom"
    cpu = estimate(sc, parse_plan("framework=deepspeed,zero=3,dp=8,mbs=1,recompute=full,offload=cpu,"
                                  "offload_params=cpu").resolved(sc))
    m = cpu["memory"]
    assert m["breakdown_gib"]["optimizer"] == 0 and m["breakdown_gib"]["weights"] == 0
    assert m["host_parts_gib"]["offloaded_states"] == pytest.approx(20 * p / GIB, abs=1e-3)
    assert m["verdict"] == "oom" and m["per_gpu_gib"] < m["capacity_gib"] and m["host_headroom_gib"] < 0
    nvme = estimate(sc, parse_plan("framework=deepspeed,zero=3,dp=8,mbs=1,recompute=full,offload=nvme,"
                                   "offload_params=cpu").resolved(sc))["memory"]
    assert nvme["verdict"] in ("fits", "tight")
    assert nvme["nvme_per_node_gb"] == pytest.approx(16 * p / 1e9, abs=1e-3)
    assert nvme["host_parts_gib"]["offloaded_states"] == pytest.approx(4 * p / GIB, abs=1e-3)
    assert nvme["host_parts_gib"]["pinned_buffers"] > 0


def test_zero2_nvme_means_cpu():
    """DeepSpeed's ZeRO-1/2 optimizer takes any offload device as CPU offload: nothing on NVMe."""
    sc = scenario(model="llama-3.1-8b", node="hgx-a100-40gb", nodes=1, gb=64)
    mem = memory.memory(Context(sc), raw_table(framework="deepspeed", dp=8, zero=2, offload="nvme", ga=8))
    assert float(mem["nvme_per_node"][0]) == 0 and float(mem["host.offloaded_states"][0]) > 0


def test_verdict_thresholds():
    """fits while the pessimistic edge of the family's memory band x/(1+lo) is within 80% of the usable
    memory (Fujii et al. 2024), oom when even the optimistic edge x/(1+hi) is above it or when the
    host cannot hold its part, tight between (tests/test_error_bands.py checks the edges)."""
    from planner.estimate import bands

    sc = scenario(model="llama-3.1-8b", nodes=1, gb=8)
    ctx = Context(sc)
    cap = ctx.gpu.memory_gib * GIB
    t = raw_table()
    t = {k: np.repeat(v, 5) for k, v in t.items()}
    lo, hi = bands.band("memory", "megatron", False, "bf16")["band"]
    fits, oom = FITS_FRACTION * (1 + lo), 1 + hi
    mem = {"total": np.array([0.5, fits * 0.999, fits * 1.001, oom * 1.001, 0.5]) * cap,
           "host_per_node": np.array([0, 0, 0, 0, 3 * 2**40]), "nvme_per_node": np.zeros(5)}
    verdict, capacity, host_ok = memory_verdict(ctx, t, mem)
    assert list(verdict) == [0, 0, 1, 2, 2] and capacity == cap and list(host_ok) == [True] * 4 + [False]


def test_json_parts_add_up_and_console_names_them(scenario_32b):
    r = estimate(scenario_32b, parse_plan("tp=8,pp=2,dp=1,zero=1,mbs=1,recompute=selective").resolved(scenario_32b))
    m = r["memory"]
    assert set(m["breakdown_gib"]) == {"weights", "gradients", "optimizer", "activations", "other"}
    for group, parts in m["parts_gib"].items():
        assert sum(parts.values()) == pytest.approx(m["breakdown_gib"][group], abs=0.01)
    assert sum(m["breakdown_gib"].values()) == pytest.approx(m["per_gpu_gib"], abs=0.02)
    assert sum(m["host_parts_gib"].values()) == pytest.approx(m["host_per_node_gib"], abs=0.01)
    assert m["headroom_gib"] == pytest.approx(m["capacity_gib"] - m["per_gpu_gib"], abs=0.002)
    assert m["most_loaded_stage"] in ("first", "last") and m["fits_below_gib"] == pytest.approx(
        0.8 * 79.65 * (1 + m["error_band"][0]), abs=1e-3)
    text = "\n".join(breakdown_lines(r))
    assert "nccl_buffers" in text and "master_weights" in text and "host/node" in text


def test_memory_never_negative_and_grows_with_micro_batch(scenario_32b):
    ctx = Context(scenario_32b)
    rows = [parse_plan(f"tp=8,pp=2,mbs={b},recompute=none").resolved(scenario_32b) for b in (1, 2, 4)]
    mem = memory.memory(ctx, table.from_plans(rows))
    assert np.all(np.diff(mem["activations"]) > 0)
    for k, v in mem.items():
        assert np.all(np.asarray(v) >= 0), k


def test_gradient_buffer_dtype_by_framework_and_runtime_key():
    """runtime.grad_reduce_dtype: auto keeps Megatron's fp32 main_grad (4 bytes per parameter) and
    DeepSpeed's model-dtype gradients (2); bf16 (NeMo / Megatron-Bridge performance recipes) halves
    Megatron's buffer; torchtitan's sharded gradients stay fp32 (its sharded parameters' dtype)."""
    local = None
    for fw, key, per_param in (("megatron", "auto", 4), ("megatron", "bf16", 2), ("megatron", "fp32", 4),
                               ("deepspeed", "auto", 2), ("deepspeed", "fp32", 4),
                               ("torchtitan", "auto", 4), ("torchtitan", "bf16", 4)):
        ctx = Context(scenario(nodes=1, runtime={"grad_reduce_dtype": key}))
        mem = memory.memory(ctx, raw_table(framework=fw, dp=8, zero=1))
        local = float(mem["local_params"][0])
        assert float(mem["gradients.grads"][0]) == pytest.approx(per_param * local), (fw, key)


def test_fp8_param_gather_keeps_gemm_weights_in_fp8_only():
    """Megatron fp8: bf16 weights plus an FP8 copy and its transpose (2 + 2 bytes per GEMM weight);
    with runtime.fp8_param_gather the weights are FP8 and only the transpose is cached (1 + 1)."""
    plain = Context(scenario(nodes=1))
    gather = Context(scenario(nodes=1, runtime={"fp8_param_gather": True}))
    t = raw_table(precision="fp8", dp=8, zero=1)
    a, b = memory.memory(plain, t), memory.memory(gather, t)
    gemm = float(memory.stage_params(plain, t, "first")["gemm"][0])
    assert float(a["weights.fp8_weight_copies"][0]) == pytest.approx(2 * gemm)
    assert float(b["weights.fp8_weight_copies"][0]) == pytest.approx(gemm)
    assert float(a["weights.params"][0] - b["weights.params"][0]) == pytest.approx(gemm)


def test_torchtitan_pipeline_receive_buffers_per_micro_batch():
    """torch.distributed.pipelining allocates a receive buffer per micro-batch: on a middle rank each of
    its vpp stages one for activations and one for gradients, 2h/tp (SP) bytes per token each."""
    ctx = Context(scenario(nodes=4))
    t = raw_table(framework="torchtitan", tp=8, sp=True, pp=4, vpp=2, dp=1, zero=3, ga=16)
    per_layer = memory.layer_activation_bytes(ctx, t)
    middle = memory.stage_memory(ctx, t, np.array([1]), per_layer)
    first = memory.stage_memory(ctx, t, np.array([0]), per_layer)
    boundary = 2 * 4096 / 8 * 4096
    assert float(middle["other.pp_recv_buffers"][0]) == pytest.approx(4 * 16 * boundary)
    assert float(first["other.pp_recv_buffers"][0]) == pytest.approx(3 * 16 * boundary)
    megatron = memory.stage_memory(ctx, raw_table(tp=8, sp=True, pp=4, vpp=2, ga=16), np.array([1]), per_layer)
    assert float(megatron["other.pp_recv_buffers"][0]) == 0.0


def test_torchtitan_ring_attention_buffers_hand_worked():
    """torch's ring attention (all-gather rotater) while one layer's attention runs backward, Llama-3.1-8B
    (32 heads of 128, torchtitan repeats K/V to 32 heads), seq 32768, cp 4, tp 1, full recompute, pp 2
    (rank 0 holds no loss): local tokens 8192, so E = 8192 x 32 x 128 elements; this rank's K+V chunk
    C = 4E bytes; gathered K/V 4C = 16E; fp32 dQ 4E, fp32 dK/dV 8E, fp32 dK/dV hop 8E: 36E bytes."""
    ctx = Context(scenario(seq=32768, nodes=1, gb=8))
    t = raw_table(framework="torchtitan", cp=4, dp=2, pp=2, zero=3, recompute="full", ga=4)
    e = 8192 * 32 * 128
    first = memory.stage_memory(ctx, t, "first", memory.layer_activation_bytes(ctx, t))
    assert float(first["activations.cp_ring_buffers"][0]) == pytest.approx(36 * e)
    # all-to-all rotater: the chunk sent and the one received (2C = 8E) instead of the gathered 16E
    ctx_a2a = Context(scenario(seq=32768, nodes=1, gb=8, runtime={"cp_comm": "p2p"}))
    a2a = memory.stage_memory(ctx_a2a, t, "first", memory.layer_activation_bytes(ctx_a2a, t))
    assert float(a2a["activations.cp_ring_buffers"][0]) == pytest.approx(28 * e)
    # no CP, or another framework: nothing
    for fields in (dict(framework="torchtitan", cp=1, dp=8), dict(framework="megatron", cp=4, dp=2)):
        tt = raw_table(**{**dict(pp=2, zero=3, recompute="full", ga=4), **fields})
        m = memory.stage_memory(ctx, tt, "first", memory.layer_activation_bytes(ctx, tt))
        assert float(m["activations.cp_ring_buffers"][0]) == 0.0
    # on the stage holding the loss the buffers only count above the fp32 logits' 12 bytes per vocab
    # entry (the attention's backward runs after the loss's): 8192 x 128256 x 12 B >> 36E + one layer
    last = memory.stage_memory(ctx, t, "last", memory.layer_activation_bytes(ctx, t))
    assert float(last["activations.cp_ring_buffers"][0]) == 0.0


def test_torch_compile_drops_the_saved_residual_only_matmul_output():
    """torchtitan op-level SAC keeps wq, wv, w1 and w2 outputs (SwiGLU); compiled, the min-cut
    partitioner does not save w2's output (only the residual add reads it): 2h bytes per token and
    layer less. Llama-3.1-8B, seq 4096, mbs 1, tp 1: 4096 x 8192 B x 32 layers = 1 GiB."""
    t = raw_table(framework="torchtitan", dp=8, zero=3, recompute="selective")
    layers = {}
    for compiled in (False, True):
        ctx = Context(scenario(nodes=1, gb=8, runtime={"compile": compiled}))
        layers[compiled] = float(memory.memory(ctx, t)["activations.layers"][0])
    assert layers[False] - layers[True] == pytest.approx(4096 * 2 * 4096 * 32)
