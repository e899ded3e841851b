"""Megatron's own pipeline splits (runtime.account_for_*_in_pipeline_split, runtime.pipeline_layout):
the stage contents against Megatron's division, every rank's memory, the search and estimate honouring
them, the export writing them, and bad splits refused with exit code 2."""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from planner.cli import main
from planner.estimate import memory, table
from planner.estimate.evaluate import Context
from planner.estimate.memory_terms_stage import stage_layers, stage_params
from planner.estimate.pipeline_split import chunk_decoders, split_problems
from planner.frameworks import megatron

from conftest import ROOT, write
from test_memory import scenario
from test_memory_stages import one_by_one

BASE = dict(framework="megatron", precision="bf16", dp=1, tp=1, pp=1, cp=1, ep=1, vpp=1, sp=False, zero=1,
            offload="none", offload_params="none", recompute="none", mbs=1, ga=64)
BOTH = {"account_for_embedding_in_pipeline_split": True, "account_for_loss_in_pipeline_split": True}
# Megatron-LM docs/user-guide/features/pipeline_parallel_layout.md, DeepSeek-V3 on PP16 x VPP2, with the
# MTP stage left empty (empty stages are allowed, same document)
DOC_LAYOUT = "Et*3|(tt|)*29,|L"


def megatron_chunks(layers, pp, vpp, e, lo):
    """Megatron-LM transformer_block.get_num_layers_to_build, written out: (layers + e + lo) // pp per
    rank, // vpp per virtual stage, one fewer on the first (embedding) and last (loss) virtual stage."""
    per_stage = (layers + e + lo) // pp // vpp
    return [[per_stage - (e and r == 0 and v == 0) - (lo and r == pp - 1 and v == vpp - 1)
             for v in range(vpp)] for r in range(pp)]


# Megatron's unit-test cases with the account_for flags (tests/unit_tests/transformer/test_transformer_block.py
# TestPipelineParallelTransformerBlock), plus Llama-3.1-405B on pp16 x vpp8 (Megatron-Bridge 26.02 GB200 NVFP4)
@pytest.mark.parametrize("layers,pp,vpp,e,lo", [(63, 4, 1, 1, 0), (63, 4, 1, 0, 1), (62, 4, 1, 1, 1),
                                                 (62, 4, 2, 1, 1), (126, 16, 8, 1, 1), (94, 8, 12, 1, 1)])
def test_account_for_flags_divide_like_megatron(layers, pp, vpp, e, lo):
    expect = megatron_chunks(layers, pp, vpp, e, lo)
    counts = chunk_decoders(("account", bool(e), bool(lo)), layers, pp, vpp)
    assert [[counts[v * pp + r] for v in range(vpp)] for r in range(pp)] == expect
    assert sum(counts) == layers


def test_405b_ranks_hold_seven_eight_and_seven_layers():
    """126 layers + E + L = 128 units on 16 x 8 virtual stages: one each; rank 0's first stage holds only
    the embedding, rank 15's last only the loss, so ranks 0 and 15 hold 7 decoder layers, the others 8."""
    ctx = Context(scenario(model="llama-3.1-405b", nodes=32, runtime=BOTH))
    t = table.from_plans([dict(BASE, pp=16, vpp=8, dp=16, ga=16)] * 16)
    layers, dense, moe = stage_layers(ctx, t, np.arange(16))
    assert list(layers) == [7] + [8] * 14 + [7] and list(dense) == list(layers) and not moe.any()
    sp = stage_params(ctx, t, np.arange(16))
    st = ctx.stats
    assert sp["non_expert"][0] - sp["non_expert"][1] == pytest.approx(st.embedding - (st.attention_per_layer
                                                                       + st.norms_per_layer + st.dense_mlp_per_layer))


def test_documented_layout_ranks():
    """Megatron's documented DeepSeek-V3 layout on PP16 x VPP2: rank 0 embedding + 3 then 2 decoder
    layers (the three dense ones among them), ranks 1..13 2 + 2, rank 14 2 + nothing, rank 15 2 + loss."""
    ctx = Context(scenario(model="deepseek-v3", nodes=64, runtime={"pipeline_layout": DOC_LAYOUT}))
    t = table.from_plans([dict(BASE, pp=16, vpp=2, dp=32, ep=8, ga=16)] * 16)
    layers, dense, moe = stage_layers(ctx, t, np.arange(16))
    assert list(layers) == [5] + [4] * 13 + [2, 2]
    assert list(dense) == [3] + [0] * 15 and list(moe) == [2] + [4] * 13 + [2, 2]


@pytest.mark.parametrize("model,runtime,plan,nodes", [
    ("llama-3.1-405b", BOTH, dict(BASE, pp=16, vpp=8, dp=16, ga=16), 32),
    ("llama-3.1-8b", {"account_for_loss_in_pipeline_split": True}, dict(BASE, pp=3, dp=8, ga=9), 3),  # 11, 11, 10
    ("deepseek-v3", {"pipeline_layout": DOC_LAYOUT}, dict(BASE, pp=16, vpp=2, dp=32, ep=8, ga=16), 64),
    ("qwen3-235b-a22b", BOTH, dict(BASE, pp=8, vpp=12, dp=8, ep=8, ga=16, recompute="full"), 8),
])
def test_reported_peak_is_the_maximum_over_all_ranks(model, runtime, plan, nodes):
    ctx = Context(scenario(model=model, nodes=nodes, runtime=runtime))
    mem = memory.memory(ctx, table.from_plans([plan]))
    totals = one_by_one(ctx, plan)
    assert float(mem["total"][0]) == pytest.approx(max(totals), rel=1e-12)
    assert int(mem["stage"][0]) == int(np.argmax(totals))


def test_megatron_rejects_what_it_cannot_divide():
    key = ("account", True, True)
    assert split_problems(key, 126, 16, 8) == []
    assert "not divisible by pp (5)" in split_problems(key, 126, 5, 1)[0]
    assert "not divisible by vpp (3)" in split_problems(key, 126, 16, 3)[0]
    assert any("32 virtual stages, the plan pp*vpp = 16*1" in p for p in split_problems(("layout", DOC_LAYOUT), 61, 16, 1))


def _scenario_file(tmp_path, model, runtime_yaml, nodes=8):
    return write(tmp_path, "s.yaml", f"model: {model}\ncluster: {{node: dgx-h100, nodes: {nodes}}}\n"
                 f"training: {{seq_len: 4096, global_batch: 512, tokens: 1e9}}\nruntime:\n{runtime_yaml}")


@pytest.mark.parametrize("runtime_yaml,plan,needle", [
    ("  pipeline_layout: 'Et*3|(tt|)*28|L'\n", "tp=8,pp=2", "runtime.pipeline_layout"),   # 59 decoder layers
    ("  pipeline_layout: 'Et|tL|x'\n", "tp=8,pp=3", "runtime.pipeline_layout"),             # unknown symbol
    ("  pipeline_layout: 'tE|t*60L'\n", "tp=8,pp=2", "runtime.pipeline_layout"),            # E not first
    ("  pipeline_layout: 'Et*99999999999|L'\n", "tp=8,pp=2", "unrolls to"),               # runaway repeat
    ("  pipeline_layout: 'E(t|)*99999999999L'\n", "tp=8,pp=2", "unrolls to"),
    ("  pipeline_layout: 'Et|(tt|)*30mL'\n", "tp=8,pp=16", "model.mtp_layers is 0"),      # MTP layer, none in the model
    ("  pipeline_layout: " + repr(DOC_LAYOUT) + "\n  account_for_loss_in_pipeline_split: true\n", "tp=8,pp=16",
     "runtime.pipeline_layout"),                                                           # clash
    ("  pipeline_layout: " + repr(DOC_LAYOUT) + "\n", "tp=4,pp=8,vpp=2", "runtime.pipeline_layout has 32"),
    ("  account_for_embedding_in_pipeline_split: true\n", "tp=8,pp=8", "runtime.account_for_embedding"),
])
def test_bad_splits_exit_2(tmp_path, runtime_yaml, plan, needle):
    path = _scenario_file(tmp_path, "deepseek-v3", runtime_yaml, nodes=16)
    r = CliRunner().invoke(main, ["estimate", str(path), "--plan", plan], catch_exceptions=False)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr and "Traceback" not in r.output


def test_estimate_and_search_honour_the_split(tmp_path):
    """The 405B recipe's pp16 x vpp8 is refused with the planner's split (128 chunks, 126 layers) and
    estimated with the account_for flags; the search then offers only pairs Megatron divides."""
    plain = _scenario_file(tmp_path, "llama-3.1-405b", "  tp_comm_overlap: true\n", nodes=32)
    flags = write(tmp_path, "f.yaml", plain.read_text().replace("  tp_comm_overlap: true\n",
                  "  account_for_embedding_in_pipeline_split: true\n  account_for_loss_in_pipeline_split: true\n"))
    plan = "tp=8,pp=16,vpp=8,dp=2,mbs=1"
    r = CliRunner().invoke(main, ["estimate", str(plain), "--plan", plan], catch_exceptions=False)
    assert r.exit_code == 2 and "exceeds the 126 layers" in r.stderr
    r = CliRunner().invoke(main, ["estimate", str(flags), "--plan", plan, "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["solve", str(flags), "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    plans = json.loads(r.stdout)["plans"]
    assert plans
    for p in plans:
        q = p["plan"]
        assert q["framework"] == "megatron"
        units = 128 // q["pp"]
        assert 128 % q["pp"] == 0 and units % q.get("vpp", 1) == 0


def test_export_writes_the_flags_megatron_knows():
    """The flags written are Megatron's own (the parser as built at d98e8a6, listed in the shared
    reference ecosystem.md section 4.1), and the layout string is written as given."""
    sc = scenario(model="llama-3.1-405b", nodes=32, runtime=BOTH)
    from planner.spec.plan import parse_plan

    args = megatron.megatron_args(sc, parse_plan("tp=8,pp=16,vpp=8,dp=2,mbs=1,ga=256").resolved(sc))
    written = {a.split()[0] for a in args}
    assert {"--account-for-embedding-in-pipeline-split", "--account-for-loss-in-pipeline-split",
            "--num-virtual-stages-per-pipeline-rank 8"} <= written | set(args)
    assert not any(a.startswith("--pipeline-model-parallel-layout") for a in args)
    reference = (ROOT.parent / "shared" / "reference" / "ecosystem.md")
    if reference.exists():
        known = set(re.findall(r"`(--[a-z0-9-]+)`", reference.read_text()))
        for flag in ("--account-for-embedding-in-pipeline-split", "--account-for-loss-in-pipeline-split",
                     "--num-virtual-stages-per-pipeline-rank", "--pipeline-model-parallel-layout"):
            assert flag in known
    ds = scenario(model="deepseek-v3", nodes=64, runtime={"pipeline_layout": DOC_LAYOUT})
    args = megatron.megatron_args(ds, parse_plan("tp=1,pp=16,vpp=2,ep=8,dp=32,mbs=1,ga=16").resolved(ds))
    assert f"--pipeline-model-parallel-layout {DOC_LAYOUT}" in args
    assert not any("virtual" in a for a in args)


@pytest.mark.parametrize("model,runtime,plan,nodes", [
    ("llama-3.1-405b", BOTH, dict(BASE, pp=16, vpp=8, dp=16, ga=16), 32),
    ("deepseek-v3", {"pipeline_layout": DOC_LAYOUT}, dict(BASE, pp=16, vpp=2, dp=32, ep=8, ga=16), 64),
])
def test_stage_time_is_the_slowest_rank(model, runtime, plan, nodes):
    """The pipeline's pace (the slowest of the stages evaluated) equals the slowest of every rank's
    stage time computed one by one (a middle rank can hold the most layers under Megatron's split)."""
    from planner.estimate import comm, compute
    from planner.estimate.evaluate import first_last_stage_times, rank_stage_time

    ctx = Context(scenario(model=model, nodes=nodes, runtime=runtime))
    t = table.from_plans([plan])
    unit = compute.layer_costs(ctx, t)
    unit_comm = comm.layer_comm(ctx, t, unit["attn_fwd"], unit["attn_bwd"])
    every = [float(rank_stage_time(ctx, t, unit, unit_comm, np.array([r]),
                                   "last" if r == plan["pp"] - 1 else ("first" if r == 0 else "middle"))[0][0])
             for r in range(plan["pp"])]
    paced = max(float(s[0][0]) for s in first_last_stage_times(ctx, t).values())
    assert paced == pytest.approx(max(every), rel=1e-12)


def test_no_plan_names_the_scenarios_split(tmp_path):
    """A layout of 3 virtual stages leaves no plan on 128 GPUs (pp x vpp = 3 divides no layout of them): the
    explanation names the runtime key, not only the generic structural constraints."""
    path = _scenario_file(tmp_path, "llama-3.1-70b", "  pipeline_layout: 'Et*40|t*20|t*20L'\n", nodes=16)
    r = CliRunner().invoke(main, ["solve", str(path)], catch_exceptions=False)
    assert "No plan fits" in r.output and "runtime.pipeline_layout has 3 virtual stages" in r.output, r.output
