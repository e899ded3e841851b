"""Memory terms against the papers' worked numbers."""

import numpy as np
import pytest

from planner import catalog
from planner.estimate import memory, table
from planner.estimate.evaluate import Context, estimate
from planner.spec import parse_plan
from planner.spec.scenario import Scenario

from conftest import ROOT


def scenario(model="llama-3.1-8b", node="dgx-h100", nodes=8, seq=4096, gb=512, **extra):
    from planner.spec.load import resolve_scenario_dict

    data = {"model": model, "cluster": {"node": node, "nodes": nodes},
            "training": {"seq_len": seq, "global_batch": gb, "tokens": 1e9}, **extra}
    return Scenario.model_validate(resolve_scenario_dict(data, ROOT, None))


def plan_table(sc, **fields):
    p = parse_plan(",".join(f"{k}={v}" for k, v in fields.items())).resolved(sc)
    return table.from_plans([p])


@pytest.mark.parametrize("zero,per_param", [(0, 16.0), (1, 4 + 12 / 64), (2, 2 + 14 / 64), (3, 16 / 64)])
def test_zero_model_states_match_the_zero_paper(zero, per_param):
    """Rajbhandari et al. 2020, Fig. 1: Psi = 7.5B, Nd = 64, K = 12 -> 120 / 31.4 / 16.6 / 1.9 GB."""
    sc = scenario(nodes=8, gb=512)
    t = plan_table(sc, framework="deepspeed", zero=zero, dp=64, tp=1, mbs=1)
    ms = memory.model_state_bytes(Context(sc), t, "first")
    total = ms["weights"] + ms["gradients"] + ms["optimizer"]
    assert float(total[0] / ms["local_params"][0]) == pytest.approx(per_param, rel=1e-12)
    paper_gb = {0: 120, 1: 31.4, 2: 16.6, 3: 1.9}[zero]
    assert 7.5e9 * per_param / 1e9 == pytest.approx(paper_gb, rel=0.02)


def test_megatron_distributed_optimizer_is_6_plus_12_over_d():
    """Megatron-LM docs (distributed optimizer): bf16 params 2 + fp32 main_grad 4 + 12/d."""
    sc = scenario(nodes=8, gb=512)
    t = plan_table(sc, framework="megatron", zero=1, dp=64, tp=1, mbs=1)
    ms = memory.model_state_bytes(Context(sc), t, "first")
    total = ms["weights"] + ms["gradients"] + ms["optimizer"]
    assert float(total[0] / ms["local_params"][0]) == pytest.approx(6 + 12 / 64)


def test_torchtitan_fsdp_shards_everything():
    sc = scenario(nodes=8, gb=512)
    t = plan_table(sc, framework="torchtitan", zero=3, dp=64, tp=1, mbs=1)
    ms = memory.model_state_bytes(Context(sc), t, "first")
    total = ms["weights"] + ms["gradients"] + ms["optimizer"]
    assert float(total[0] / ms["local_params"][0]) == pytest.approx(16 / 64)


@pytest.mark.parametrize("sp", [False, True])
def test_activations_match_korthikanti_table_2(sp):
    """Korthikanti et al. 2022, Table 2, per layer: sbh(10 + 24/t + 5as/(ht)) with tensor
    parallelism, sbh(34/t + 5as/(ht)) with sequence parallelism (no flash attention, dropout on)."""
    sc = scenario(model="gpt-22b", nodes=1, seq=2048, gb=8)
    fields = dict(framework="megatron", precision="bf16", dp=1, tp=8, pp=1, cp=1, ep=1, vpp=1, sp=sp, zero=1,
                  offload="none", offload_params="none", recompute="none", mbs=4, ga=2)
    t = table.from_plans([fields])  # the table takes any layout; the framework rules are not applied
    acts = memory.layer_activation_bytes(Context(sc), t, flash=False)["dense"]
    s, b, h, a, tp = 2048, 4, 6144, 64, 8
    base = (34 / tp) if sp else (10 + 24 / tp)
    expected = s * b * h * (base + 5 * a * s / (h * tp))
    assert float(acts["none"][0]) == pytest.approx(expected, rel=1e-12)
    # Selective recompute removes the 5as/h term (Sec. 5); full recompute keeps the layer input.
    assert float(acts["selective"][0]) == pytest.approx(s * b * h * base, rel=1e-12)
    assert float(acts["full"][0]) == pytest.approx(2 * s * b * h / (tp if sp else 1), rel=1e-12)


def test_pipeline_keeps_pp_microbatches_in_flight_on_the_first_stage():
    """Korthikanti Sec. 4.2.3: the first stage of 1F1B stores pp micro-batches of its L/pp layers,
    the total of L layers; interleaving multiplies by 1 + (pp-1)/(pp*vpp)."""
    sc = scenario(model="llama-3.1-70b", nodes=8, gb=512)
    ctx = Context(sc)
    t1 = plan_table(sc, tp=8, pp=4, dp=2, mbs=1, recompute="none")
    per_layer = memory.layer_activation_bytes(ctx, t1)["dense"]["none"]
    acts = memory.activation_bytes(ctx, t1, "first")
    tokens = 4096
    embed = 2 * 8192 * tokens / 8
    assert float(acts[0]) == pytest.approx(float(per_layer[0]) * 80 + embed, rel=1e-12)
    t2 = plan_table(sc, tp=8, pp=4, vpp=5, dp=2, mbs=1, recompute="none")
    acts2 = memory.activation_bytes(ctx, t2, "first")
    assert float(acts2[0]) == pytest.approx(float(per_layer[0]) * 80 * (1 + 3 / 20) + embed, rel=1e-12)


def test_offload_moves_states_to_the_host_and_is_checked_against_it():
    sc = scenario(model="llama-3.1-70b", node="hgx-a100-40gb", nodes=1, seq=2048, gb=64)
    on_gpu = estimate(sc, parse_plan("framework=deepspeed,zero=3,dp=8,mbs=1,recompute=full").resolved(sc))
    off = estimate(sc, parse_plan("framework=deepspeed,zero=3,dp=8,mbs=1,recompute=full,offload=cpu,"
                                  "offload_params=cpu").resolved(sc))
    assert on_gpu["memory"]["verdict"] == "oom"
    assert off["memory"]["breakdown_gib"]["optimizer"] == 0 and off["memory"]["breakdown_gib"]["weights"] == 0
    # 70.6B parameters x (12 bytes optimizer + 2 bytes weights) on the host of the one node.
    assert off["memory"]["host_per_node_gib"] > 70.55e9 * 14 / 2**30
    assert off["memory"]["verdict"] in ("fits", "tight")


def test_memory_never_negative_and_grows_with_micro_batch(scenario_32b):
    ctx = Context(scenario_32b)
    rows = [parse_plan(f"tp=8,pp=2,mbs={b},recompute=none").resolved(scenario_32b) for b in (1, 2, 4)]
    mem = memory.memory(ctx, table.from_plans(rows))
    assert np.all(np.diff(mem["activations"]) > 0)
    for k in ("weights", "gradients", "optimizer", "activations", "other"):
        assert np.all(mem[k] >= 0)
