"""Megatron-Core DDP's edge buckets: the bucket group reduced after the backward and gathered before the
first forward layer (planner.estimate.comm.megatron_edge_bucket_params) stays exposed even when the
step's data-parallel traffic fits behind its compute."""

import pytest

from planner import estimate, parse_plan
from planner.estimate.comm import gather_s, megatron_edge_bucket_params
from planner.estimate.evaluate import Context
from planner.estimate.topology import group

from test_memory import plan_table, scenario


def _rt(sc, **kw):
    return sc.model_copy(update={"runtime": sc.runtime.model_copy(update=kw)})


def test_edge_group_is_the_embedding_or_every_16_bit_parameter():
    """Without FP8 parameters the last bucket closes on the word embedding (the first parameter, buckets
    filled in reverse order); with --fp8-param-gather every non-FP8 bucket joins the last FP8 group, so the
    output layer and the norms come along (partition_buckets, case 3)."""
    sc = scenario(model="llama-3.1-8b", nodes=2, gb=64)
    ctx = Context(sc)
    st = ctx.stats
    bf16 = megatron_edge_bucket_params(ctx, plan_table(sc, framework="megatron", tp=1, mbs=1, zero=1))
    assert bf16[0] == pytest.approx(st.embedding)
    fp8 = _rt(sc, fp8_param_gather=True, fp8_recipe="current")
    ctx8 = Context(fp8)
    t8 = plan_table(fp8, framework="megatron", precision="fp8", tp=1, mbs=1, zero=1)
    norms = st.norms_per_layer * ctx8.model.layers + st.final_norm
    assert megatron_edge_bucket_params(ctx8, t8)[0] == pytest.approx(st.embedding + st.lm_head + norms)
    # torchtitan's FSDP2 and Megatron-FSDP have their own per-unit edges (counted elsewhere)
    assert megatron_edge_bucket_params(ctx, plan_table(sc, framework="torchtitan", mbs=1, zero=3))[0] == 0.0


def test_edge_buckets_stay_exposed_when_the_rest_hides():
    """One micro-batch per step, traffic far below the backward: the exposed data-parallel time is the
    edge group's reduce-scatter plus its all-gather, over the data-parallel ring, not zero; it grows when
    the ring leaves the node (NICs instead of NVLink)."""
    exposed = []
    for nodes in (1, 2):
        sc = scenario(model="llama-3.1-8b", nodes=nodes, seq=8192, gb=8 * nodes * 4)
        plan = parse_plan("framework=megatron,tp=1,mbs=4,ga=1,zero=1,recompute=none").resolved(sc)
        r = estimate(sc, plan)
        dp = r["time"]["breakdown_s"]["dp_comm"]
        ring = group(sc.cluster.node, 8 * nodes, 1)
        emb = Context(sc).stats.embedding
        grad_bytes = 4.0 if sc.runtime.grad_reduce_dtype in ("auto", "fp32") else 2.0
        edge = gather_s(sc.cluster.node, emb * grad_bytes, ring) + gather_s(sc.cluster.node, emb * 2.0, ring)
        assert dp == pytest.approx(float(edge), rel=1e-3)  # the estimate rounds to the microsecond
        exposed.append(dp)
    assert exposed[1] > exposed[0] > 0.0


def test_no_edge_outside_megatron_ddp():
    """With windows far longer than any traffic, DeepSpeed's ZeRO-1 exposes nothing (not even a collective's
    latency) while Megatron's distributed optimizer still exposes its edge group."""
    from planner.estimate import comm, memory

    sc = scenario(model="llama-3.1-8b", nodes=2, seq=8192, gb=64)
    ctx = Context(sc)
    exposed = {}
    for fw in ("deepspeed", "megatron"):
        t = plan_table(sc, framework=fw, mbs=1, zero=1, recompute="none")
        exposed[fw] = float(comm.dp_comm(ctx, t, memory.memory(ctx, t), 1e3, 1e3)["dp_comm"][0])
    assert exposed["deepspeed"] == 0.0
    assert exposed["megatron"] > 0.0
