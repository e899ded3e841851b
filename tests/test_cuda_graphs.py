"""CUDA graphs in Megatron (runtime.cuda_graph_impl / cuda_graph_scope): the static buffers they keep,
the flags and environment the export writes, and how run files name them."""

import pytest

from planner.errors import InputError
from planner.estimate import memory
from planner.estimate.evaluate import Context
from planner.frameworks import launch, megatron
from planner.spec import parse_plan

from test_memory import plan_table, scenario



def test_te_router_graphs_keep_one_hidden_state_per_moe_layer_and_microbatch_in_flight():
    """Qwen3-30B-A3B (48 MoE layers, hidden 2048), s = 4,096, mbs 1, no pipeline: one micro-batch in
    flight, so 48 static inputs of 4,096 x 2,048 bf16 values (16 MiB each) = 0.75 GiB; with pp 2 the
    first rank holds 24 layers and 2 micro-batches in flight: the same 0.75 GiB."""
    fields = dict(framework="megatron", precision="bf16", ep=8, dp=8, zero=1, mbs=1, recompute="none")
    rt = {"cuda_graph_impl": "transformer_engine", "cuda_graph_scope": ["moe_router", "moe_preprocess"]}
    sc = scenario(model="qwen3-30b-a3b", nodes=1, runtime=rt)
    t = plan_table(sc, **fields)
    part = memory.memory(Context(sc), t)["other.cuda_graph_buffers"][0]
    assert part == pytest.approx(48 * 4096 * 2048 * 2)
    off = scenario(model="qwen3-30b-a3b", nodes=1)
    base = memory.memory(Context(off), plan_table(off, **fields))
    assert base["other.cuda_graph_buffers"][0] == 0.0
    assert memory.memory(Context(sc), t)["total"][0] == pytest.approx(base["total"][0] + part)
    pp2 = scenario(model="qwen3-30b-a3b", nodes=2, runtime=rt)
    t2 = plan_table(pp2, **(fields | {"pp": 2}))
    assert memory.cuda_graph_bytes(Context(pp2), t2, "first")[0] == pytest.approx(24 * 2 * 4096 * 2048 * 2)


def test_scopes_pick_the_layers_transformer_engine_graphs():
    """attn (or no scope): every layer; mlp: dense layers only, so none in an all-MoE model."""
    fields = dict(framework="megatron", precision="bf16", ep=8, dp=8, zero=1, mbs=1, recompute="none")
    one = 4096 * 2048 * 2
    for scope, layers in ((["attn"], 48), ([], 48), (["mlp"], 0)):
        sc = scenario(model="qwen3-30b-a3b", nodes=1,
                      runtime={"cuda_graph_impl": "transformer_engine", "cuda_graph_scope": scope})
        got = memory.cuda_graph_bytes(Context(sc), plan_table(sc, **fields), "first")[0]
        assert got == pytest.approx(layers * one), scope


def test_local_graphs_chain_layer_buffers_and_full_iteration_keeps_the_batches():
    """local per layer: one hidden state per chunk-forward in flight (8B, s 8,192, mbs 2: 8,192 x 2 x
    4,096 x 2 B = 128 MiB); full_iteration: ga x mbs x s tokens x 28 B (8 x 2 x 8,192 x 28)."""
    fields = dict(framework="megatron", precision="bf16", dp=8, zero=1, mbs=2, recompute="none")
    layer = scenario(model="llama-3.1-8b", nodes=1, seq=8192, gb=128, runtime={"cuda_graph_impl": "local"})
    assert memory.cuda_graph_bytes(Context(layer), plan_table(layer, **fields), "first")[0] == \
        pytest.approx(8192 * 2 * 4096 * 2)
    full = scenario(model="llama-3.1-8b", nodes=1, seq=8192, gb=128,
                    runtime={"cuda_graph_impl": "local", "cuda_graph_scope": ["full_iteration"]})
    assert memory.cuda_graph_bytes(Context(full), plan_table(full, **fields), "first")[0] == \
        pytest.approx(8 * 2 * 8192 * 28)
    titan = plan_table(full, **(fields | {"framework": "torchtitan", "zero": 3}))
    assert memory.cuda_graph_bytes(Context(full), titan, "first")[0] == 0.0


@pytest.mark.parametrize("runtime,needle", [
    ({"cuda_graph_scope": ["attn"]}, "needs runtime.cuda_graph_impl"),
    ({"cuda_graph_impl": "transformer_engine", "cuda_graph_scope": ["full_iteration"]}, "full_iteration needs"),
    ({"cuda_graph_impl": "local", "cuda_graph_scope": ["moe_router"]}, "need runtime.cuda_graph_impl transformer_engine"),
])
def test_scopes_megatron_refuses_are_bad_input(runtime, needle):
    with pytest.raises((InputError, ValueError), match=needle):
        scenario(model="llama-3.1-8b", nodes=1, runtime=runtime)


def test_export_writes_the_graph_flags_and_nccl_graph_register():
    sc = scenario(model="llama-3.1-8b", nodes=1, seq=8192, gb=128,
                  runtime={"cuda_graph_impl": "local", "cuda_graph_scope": ["full_iteration"]})
    plan = parse_plan("framework=megatron,precision=bf16,dp=8,zero=1,mbs=2,recompute=none").resolved(sc)
    args = megatron.megatron_args(sc, plan)
    # Megatron-LM d98e8a6: the whole-iteration graph is --cuda-graph-impl full_iteration, without modules
    for flag in ("--cuda-graph-impl full_iteration", "--te-rng-tracker", "--no-check-for-nan-in-loss-and-grad"):
        assert flag in args
    assert not any(a.startswith(("--cuda-graph-scope", "--cuda-graph-modules")) for a in args)
    assert launch.environment(plan.as_dict(), sc.runtime)["NCCL_GRAPH_REGISTER"] == "0"
    plain = scenario(model="llama-3.1-8b", nodes=1, seq=8192, gb=128)
    assert not any("cuda-graph" in a for a in megatron.megatron_args(plain, plan))
    assert "NCCL_GRAPH_REGISTER" not in launch.environment(plan.as_dict(), plain.runtime)


def test_run_files_name_the_graphs_as_the_recipes_do():
    import calibration_runs

    assert calibration_runs.cuda_graphs_of("local full_iteration") == \
        {"cuda_graph_impl": "local", "cuda_graph_scope": ["full_iteration"]}
    assert calibration_runs.cuda_graphs_of("transformer_engine [moe_router, moe_preprocess]") == \
        {"cuda_graph_impl": "transformer_engine", "cuda_graph_scope": ["moe_router", "moe_preprocess"]}
    assert calibration_runs.cuda_graphs_of("cuda_graphs") == {"cuda_graph_impl": "local", "cuda_graph_scope": []}
    assert calibration_runs.cuda_graphs_of(None) == {}


def test_graph_launched_dense_layers_cost_the_host_one_launch_each_way():
    """local graphs: a dense layer's host floor is one graph launch forward and one backward."""
    from planner.estimate import host

    sc = scenario(model="llama-3.1-8b", nodes=1, runtime={"cuda_graph_impl": "local"})
    eager = scenario(model="llama-3.1-8b", nodes=1)
    t = plan_table(sc, framework="megatron", precision="bf16", dp=8, zero=1, mbs=1, recompute="none")
    assert host.layer_host_s(Context(sc), t, False, False)[0] == pytest.approx(2 * host.HOST_LAUNCH_S)
    assert host.layer_host_s(Context(eager), t, False, False)[0] > 10 * host.HOST_LAUNCH_S


def test_full_iteration_graphs_moe_layers_only_without_a_host_wait():
    """Megatron's dropless (or unpadded) MoE dispatchers wait on the host for the token counts every
    forward, which a full-iteration capture cannot hold: bad input. Padded to capacity (alltoall) the
    whole step is one graph and a MoE layer costs the host one launch each way, as a dense one."""
    from planner.estimate import host
    from planner.catalog import model as catalog_model

    graphs = {"cuda_graph_impl": "local", "cuda_graph_scope": ["full_iteration"]}
    with pytest.raises((InputError, ValueError), match="full_iteration cannot capture"):
        scenario(model="mixtral-8x7b", nodes=1, runtime=graphs)
    spec = catalog_model("mixtral-8x7b").model_dump()
    spec["moe"]["capacity_factor"] = 1.0
    with pytest.raises((InputError, ValueError), match="full_iteration cannot capture"):
        scenario(model=spec, nodes=1, runtime=graphs)  # a capacity factor without padding still waits
    sc = scenario(model=spec, nodes=1, runtime=graphs | {"moe_pad_to_capacity": True})
    t = plan_table(sc, framework="megatron", precision="bf16", dp=8, ep=8, zero=1, mbs=1, recompute="none")
    assert host.layer_host_s(Context(sc), t, True, False)[0] == pytest.approx(2 * host.HOST_LAUNCH_S)


def test_whole_layer_graphs_capture_moe_layers_only_without_a_host_wait():
    """Whole-layer graphs (Megatron-Core enable_cuda_graph / scope "full") capture an MoE layer with
    its layer when the dispatcher does not wait on the host (padded to capacity): one launch each way.
    A dropless MoE layer waits on the token counts every forward, so it stays eager."""
    from planner.estimate import host
    from planner.catalog import model as catalog_model

    spec = catalog_model("mixtral-8x7b").model_dump()
    spec["moe"]["capacity_factor"] = 1.0
    fields = dict(framework="megatron", precision="bf16", dp=8, ep=8, zero=1, mbs=1, recompute="none")
    padded = scenario(model=spec, nodes=1, runtime={"cuda_graph_impl": "local", "moe_pad_to_capacity": True})
    dropless = scenario(model="mixtral-8x7b", nodes=1, runtime={"cuda_graph_impl": "local"})
    assert host.layer_host_s(Context(padded), plan_table(padded, **fields), True, False)[0] == \
        pytest.approx(2 * host.HOST_LAUNCH_S)
    assert host.layer_host_s(Context(dropless), plan_table(dropless, **fields), True, False)[0] > \
        10 * host.HOST_LAUNCH_S


def test_grace_hosts_issue_the_same_work_more_slowly():
    """A node whose host_cpu is grace takes HOST_CPU_DISPATCH_FACTOR['grace'] = 37.08 / 13.48 (TE issue
    #2053) times the x86 host time for the same layer, eager or graph-launched; the same node declared
    x86 takes the measured x86 time."""
    from planner import catalog
    from planner.estimate import host

    grace = catalog.node_entry("gb200-nvl72")
    assert grace["host_cpu"] == "grace"
    x86 = {**grace, "name": "gb200-x86-host", "host_cpu": "x86"}
    fields = dict(framework="megatron", precision="bf16", dp=4, ep=4, zero=1, mbs=1, recompute="none")
    for runtime in ({}, {"cuda_graph_impl": "local"}):
        on_grace = scenario(model="mixtral-8x7b", node="gb200-nvl72", nodes=1, runtime=runtime)
        on_x86 = scenario(model="mixtral-8x7b", node=x86, nodes=1, runtime=runtime)
        t = plan_table(on_grace, **fields)
        for moe_layer in (False, True):
            slow = host.layer_host_s(Context(on_grace), t, moe_layer, False)[0]
            fast = host.layer_host_s(Context(on_x86), t, moe_layer, False)[0]
            assert slow == pytest.approx(37.08 / 13.48 * fast)
            assert host.layer_host_fwd_s(Context(on_grace), t, moe_layer, False)[0] == \
                pytest.approx(37.08 / 13.48 * host.layer_host_fwd_s(Context(on_x86), t, moe_layer, False)[0])
    assert Context(scenario(node="dgx-h100")).node.host_cpu == "x86"
