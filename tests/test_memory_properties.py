"""Invariants of the memory model over random plans (hypothesis): more sharding never adds per-GPU
state, more recomputation never adds activations, offload never adds GPU memory, the parts add up,
and a plan's memory does not depend on the other rows of the table it is evaluated in."""

from functools import lru_cache

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.estimate import memory, table
from planner.estimate.evaluate import Context
from planner.spec.load import resolve_scenario_dict
from planner.spec.scenario import Scenario

from conftest import ROOT

MODELS = {
    "dense": "llama-3.1-8b",  # 32 layers, 8 KV heads
    "moe": dict(name="moe-toy", layers=8, hidden=1024, heads=16, kv_heads=8, ffn_hidden=4096, vocab=32000,
                moe={"experts": 8, "top_k": 2, "expert_ffn_hidden": 1024, "shared_experts": 1,
                     "dense_layers": 1}),
    "mla": "deepseek-v2-lite",
}


@lru_cache(maxsize=None)
def ctx(kind: str, optimizer: str = "adamw") -> Context:
    data = {"model": MODELS[kind], "cluster": {"node": "dgx-h100", "nodes": 8},
            "training": {"seq_len": 4096, "global_batch": 512, "tokens": 1e9, "optimizer": optimizer}}
    return Context(Scenario.model_validate(resolve_scenario_dict(data, ROOT, None)))


@st.composite
def plans(draw):
    tp = draw(st.sampled_from([1, 2, 4, 8]))
    pp = draw(st.sampled_from([1, 2, 4]))
    fw = draw(st.sampled_from(table.FRAMEWORKS))
    zero = draw(st.sampled_from([0, 1, 2, 3]))
    return dict(framework=fw, precision=draw(st.sampled_from(table.PRECISIONS)),
                dp=draw(st.sampled_from([1, 2, 4, 8])), tp=tp, pp=pp, cp=draw(st.sampled_from([1, 2])),
                ep=draw(st.sampled_from([1, 2, 4])), vpp=draw(st.sampled_from([1, 2])) if pp > 1 else 1,
                sp=draw(st.booleans()) if tp > 1 else False, zero=zero,
                offload=draw(st.sampled_from(table.OFFLOADS)) if zero else "none",
                offload_params=draw(st.sampled_from(table.OFFLOADS)) if zero == 3 else "none",
                recompute=draw(st.sampled_from(table.RECOMPUTES)), mbs=draw(st.sampled_from([1, 2, 4])),
                ga=draw(st.sampled_from([1, 2, 8, 32])))


def mem_of(kind, rows, optimizer="adamw"):
    return memory.memory(ctx(kind, optimizer), table.from_plans(rows))


def stage_activations(kind, rows, stage):
    return memory.activation_bytes(ctx(kind, "adamw"), table.from_plans(rows), stage)


def states(m):
    return m["weights"] + m["gradients"] + m["optimizer"]


def largest_state_over_ranks(kind, rows):
    """Per row, the largest model states (plus the optimizer-step temporary) of any pipeline rank."""
    c, t = ctx(kind), table.from_plans(rows)
    per_layer = memory.layer_activation_bytes(c, t)
    out = np.zeros(len(rows))
    for r in range(int(t["pp"].max())):
        m = memory.stage_memory(c, t, np.full(len(rows), r), per_layer)
        out = np.maximum(out, np.where(t["pp"] > r, states(m) + m["other.optimizer_step_temp"], 0.0))
    return out


KINDS = st.sampled_from(list(MODELS))
# Derandomized: CI runs the same 150 examples every time (a failure reproduces; no flaky runs).
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)


@SETTINGS
@given(KINDS, plans(), st.sampled_from(["dp", "tp", "pp", "ep", "zero"]))
def test_more_sharding_never_adds_model_state(kind, p, dim):
    """Doubling dp, tp, pp or ep, or raising the ZeRO stage, never raises the per-GPU model states.
    (pp starts at 2: torchtitan keeps a pipelined stage unsharded, so its first pipeline split can
    add state, a real effect covered in test_memory.py.)"""
    q = dict(p)
    if dim == "zero":
        if p["zero"] == 3:
            return
        q["zero"] = p["zero"] + 1
        q["offload_params"] = "none"
    elif dim == "pp":
        p, q = {**p, "pp": 2}, {**p, "pp": 4}
    elif dim == "tp":
        if p["tp"] == 8:
            return
        q["tp"] = p["tp"] * 2
    else:
        q[dim] = p[dim] * 2
    total = largest_state_over_ranks(kind, [p, q])  # the most loaded rank by total may differ
    assert total[1] <= total[0] * (1 + 1e-12)


@SETTINGS
@given(KINDS, plans())
def test_recomputation_never_adds_activations(kind, p):
    # Compared stage by stage: the reported (most loaded) stage can switch from the first (embedding
    # states) to the last (logits) once recomputation shrinks the layers' activations.
    rows = [{**p, "recompute": r} for r in ("none", "selective", "full")]
    for stage in ("first", "last"):
        acts = stage_activations(kind, rows, stage)
        assert acts[2] <= acts[1] * (1 + 1e-12) and acts[1] <= acts[0] * (1 + 1e-12)


@SETTINGS
@given(KINDS, plans())
def test_tensor_and_context_parallel_never_add_activations(kind, p):
    # Compared stage by stage: the reported (most loaded) stage can switch from the first to the
    # last when tp grows, e.g. the logits then outweigh the shrunken in-flight activations.
    for dim, cap in (("tp", 8), ("cp", 2)):
        if p[dim] < cap:
            q = {**p, dim: p[dim] * 2}
            for stage in ("first", "last"):
                acts = stage_activations(kind, [p, q], stage)
                assert acts[1] <= acts[0] * (1 + 1e-12)


@SETTINGS
@given(KINDS, plans(), st.sampled_from(["cpu", "nvme"]))
def test_offload_never_adds_gpu_memory(kind, p, device):
    if p["zero"] == 0:
        return
    base = {**p, "offload": "none", "offload_params": "none"}
    rows = [base, {**base, "offload": device}]
    if p["zero"] == 3:
        rows.append({**base, "offload": device, "offload_params": device})
    m = mem_of(kind, rows)
    assert np.all(m["total"][1:] <= m["total"][0] * (1 + 1e-12))
    assert np.all(m["host_per_node"][1:] + m["nvme_per_node"][1:] >= m["host_per_node"][0])


@SETTINGS
@given(KINDS, plans(), st.sampled_from(["adamw", "adam8bit", "sgd", "adafactor"]))
def test_parts_add_up_and_are_never_negative(kind, p, optimizer):
    m = mem_of(kind, [p], optimizer)
    for group, names in memory.GROUPS.items():
        assert np.allclose(m[group], sum(m[f"{group}.{n}"] for n in names))
    assert np.allclose(m["total"], sum(m[g] for g in memory.GROUPS))
    assert np.allclose(m["host_per_node"], sum(m[k] for k in memory.HOST_PARTS))
    assert all(np.all(np.asarray(v) >= 0) for v in m.values())


@SETTINGS
@given(KINDS, plans())
def test_activations_grow_with_the_micro_batch(kind, p):
    for stage in ("first", "last"):  # stage by stage: the most loaded stage can switch
        acts = stage_activations(kind, [p, {**p, "mbs": p["mbs"] * 2}], stage)
        assert acts[1] >= acts[0]


@settings(max_examples=25, deadline=None, derandomize=True)
@given(KINDS, st.lists(plans(), min_size=2, max_size=12))
def test_a_plan_does_not_depend_on_its_table(kind, rows):
    together = mem_of(kind, rows)
    for i, row in enumerate(rows):
        alone = mem_of(kind, [row])
        for k, v in together.items():
            assert np.isclose(v[i], alone[k][0], rtol=1e-12, atol=0), k
