"""Uneven pipeline splits (layers not divisible by pp x vpp) in the exports: every exporter writes
the memory model's split (chunk c holds base + (c < extra) layers, rank r runs chunks r, r+pp, ...),
Megatron through --pipeline-model-parallel-layout, torchtitan through module_fqns_per_model_part,
DeepSpeed through the README and launch notes; an even split is exported as before.

Plans are built as dicts, so these tests do not depend on the search offering uneven splits."""

import json
import re

import numpy as np
import pytest

from planner import load_scenario
from planner.errors import InputError
from planner.estimate.evaluate import Context
from planner.estimate.memory_terms_stage import stage_layers
from planner.export import build_files, plan_result
from planner.frameworks import common, megatron, megatron_layout, torchtitan
from planner.frameworks import deepspeed as ds
from planner.spec.load import resolve_scenario_dict
from planner.spec.scenario import Scenario

from conftest import ROOT

BASE = dict(precision="bf16", cp=1, vpp=1, sp=True, zero=1, offload="none", offload_params="none",
            recompute="selective", mbs=1)


def llama_405b():
    return load_scenario(ROOT / "scenarios" / "405b_16k.yaml")  # 126 layers


def deepseek_v3():
    data = {"name": "deepseek-v3 on 256 H100", "model": "deepseek-v3", "cluster": {"node": "dgx-h100", "nodes": 32},
            "training": {"seq_len": 4096, "global_batch": 512, "tokens": 1e12}}
    return Scenario.model_validate(resolve_scenario_dict(data, ROOT, None))  # 61 layers, the first 3 dense


# (scenario, layers, pp, vpp, plan fields with dp x tp x pp = the scenario's GPUs)
CASES = {
    "405b-pp16": (llama_405b, 126, 16, 1, dict(tp=8, dp=128, ep=1, ga=16)),
    "405b-pp8-vpp2": (llama_405b, 126, 8, 2, dict(tp=8, dp=256, ep=1, ga=8)),
    "dsv3-pp16": (deepseek_v3, 61, 16, 1, dict(tp=2, dp=8, ep=8, ga=64)),
}


def plan(case: str, framework: str, **extra) -> tuple:
    """(scenario, plan dict) of a case for one framework."""
    make, layers, pp, vpp, fields = CASES[case]
    sc = make()
    assert sc.model.layers == layers and layers % (pp * vpp)
    f = {**BASE, **fields, "framework": framework, "pp": pp, "vpp": vpp, **extra}
    if framework == "torchtitan":
        f["zero"] = 3  # FSDP2 over dp
    return sc, f


def unroll(text: str) -> str:
    """Megatron's layout grammar (docs/api-guide/pipeline_parallel_layout.md), read here without the
    planner's parser: '(group)*n' and 'x*n' repeat, commas are cosmetic."""
    out, i = "", 0
    text = text.replace(",", "")
    while i < len(text):
        if text[i] == "(":
            close = text.index(")", i)
            body, i = unroll(text[i + 1:close]), close + 1
        else:
            body, i = text[i], i + 1
        times = re.match(r"\*(\d+)", text[i:])
        if times:
            body, i = body * int(times.group(1)), i + times.end()
        out += body
    return out


def layout_stages(text: str) -> list[str]:
    return unroll(text).split("|")


@pytest.mark.parametrize("case", CASES)
def test_chunk_counts_match_the_memory_model(case):
    """The chunks hold every layer; the first and last ranks hold what memory_terms_stage counts
    (layers, and DeepSeek-V3's leading dense layers)."""
    make, layers, pp, vpp, _ = CASES[case]
    counts = common.chunk_layer_counts(layers, pp, vpp)
    assert len(counts) == pp * vpp and sum(counts) == layers and max(counts) - min(counts) == 1
    ctx, t = Context(make()), {"pp": np.array([pp]), "vpp": np.array([vpp])}
    per_rank = common.rank_layer_counts(layers, pp, vpp)
    assert sum(per_rank) == layers
    starts = [sum(counts[:c]) for c in range(len(counts))]
    for stage, rank in (("first", 0), ("last", pp - 1)):
        n, dense, _ = stage_layers(ctx, t, stage)
        assert float(n[0]) == per_rank[rank]
        leading = ctx.stats.dense_layers if ctx.stats.moe_layers else layers
        held = [i for c in common.rank_chunks(rank, pp, vpp) for i in range(starts[c], starts[c] + counts[c])]
        assert float(dense[0]) == sum(i < leading for i in held)


def test_named_splits():
    """126 layers on pp 16: fourteen stages of 8, two of 7; on pp 8 x vpp 2 the same chunks, ranks 6
    and 7 holding a 7-layer chunk; DeepSeek-V3's 61 layers on pp 16: thirteen stages of 4, three of 3."""
    assert common.chunk_layer_counts(126, 16) == [8] * 14 + [7] * 2
    assert common.rank_layer_counts(126, 8, 2) == [16] * 6 + [15] * 2
    assert common.chunk_layer_counts(61, 16) == [4] * 13 + [3] * 3
    sc, f = plan("405b-pp16", "megatron")
    with pytest.raises(InputError, match="chunk_layer_counts"):
        common.layers_per_stage(sc, f)


@pytest.mark.parametrize("case", CASES)
def test_megatron_layout_round_trips(case):
    """The layout string read back gives the planner's chunks, embedding first and loss last, and
    passes the project's Megatron checks; it replaces --num-layers-per-virtual-pipeline-stage."""
    sc, f = plan(case, "megatron")
    args = megatron.megatron_args(sc, f)
    a = megatron.parse_args(args)
    layers, pp, vpp = sc.model.layers, f["pp"], f["vpp"]
    stages = layout_stages(a["pipeline_model_parallel_layout"])
    assert [s.count("t") for s in stages] == common.chunk_layer_counts(layers, pp, vpp)
    assert stages[0].startswith("E") and stages[-1].endswith("L") and "".join(stages).count("E") == 1
    assert set("".join(stages)) == {"E", "t", "L"}
    assert megatron_layout.layout_counts(a["pipeline_model_parallel_layout"]) == [s.count("t") for s in stages]
    assert "num_layers_per_virtual_pipeline_stage" not in a and a["num_layers"] == layers
    assert megatron.args_problems(a, common.gpus(common.plan_fields(f))) == []


def test_layout_writer_and_parser_agree_on_many_splits():
    for layers in range(1, 70):
        for pp, vpp in ((2, 1), (3, 1), (4, 2), (8, 1), (4, 4), (16, 1), (8, 3)):
            if pp * vpp > layers:
                continue
            text = megatron_layout.pipeline_layout(layers, pp, vpp)
            counts = common.chunk_layer_counts(layers, pp, vpp)
            assert [s.count("t") for s in layout_stages(text)] == counts, text
            assert megatron_layout.layout_counts(text) == counts, text
            a = {"pipeline_model_parallel_layout": text}
            assert megatron_layout.layout_problems(a, layers, pp) == [], text


@pytest.mark.parametrize("layout,needle", [
    ("Et*8|(t*8|)*13t*7|t*6L", "125 transformer layers"),      # a layer missing
    ("Et*8|(t*8|)*13t*7|t*8L", "127 transformer layers"),      # a layer twice
    ("t*8|(t*8|)*13t*7|t*7L", "embedding"),                    # no embedding
    ("Et*8|(t*8|)*13t*7L|t*7", "loss"),                        # loss not last
    ("Et*8|(t*8|)*12t*14|t*7L", "not a multiple of pp"),        # 15 stages on pp 16
    ("Et*8|(t*8|)*13t*7|t*7xL", "symbols x"),                  # unknown symbol
])
def test_layout_checks_reject_a_wrong_layout(layout, needle):
    sc, f = plan("405b-pp16", "megatron")
    a = megatron.parse_args(megatron.megatron_args(sc, f))
    world = common.gpus(common.plan_fields(f))
    a["pipeline_model_parallel_layout"] = layout
    problems = megatron.args_problems(a, world)
    assert any(needle in p for p in problems), problems
    del a["pipeline_model_parallel_layout"]  # without a layout Megatron needs layers % pp == 0
    assert any("not divisible by pp" in p for p in megatron.args_problems(a, world))
    a.update(pipeline_model_parallel_layout=megatron_layout.pipeline_layout(126, 16),
             num_layers_per_virtual_pipeline_stage=4)
    assert any("cannot be combined" in p for p in megatron.args_problems(a, world))


@pytest.mark.parametrize("case", CASES)
def test_torchtitan_stages_hold_every_layer_once_in_order(case):
    tomllib = pytest.importorskip("tomllib")
    sc, f = plan(case, "torchtitan")
    cfg, _ = torchtitan.torchtitan_config(sc, f)
    p = cfg["parallelism"]
    parts = p["module_fqns_per_model_part"]
    layers = [m for part in parts for m in part if m.startswith("layers.")]
    assert layers == [f"layers.{i}" for i in range(sc.model.layers)]
    assert [sum(m.startswith("layers.") for m in part) for part in parts] == \
        common.chunk_layer_counts(sc.model.layers, f["pp"], f["vpp"])
    assert parts[0][0] == "tok_embeddings" and parts[-1][-2:] == ["norm", "output"]
    assert p["pipeline_parallel_schedule"] == ("Interleaved1F1B" if f["vpp"] > 1 else "1F1B")
    files = build_files(sc, plan_result(sc, f))
    parsed = tomllib.loads(files["torchtitan.toml"])
    assert parsed == cfg and torchtitan.config_problems(parsed, common.gpus(common.plan_fields(f))) == []
    shuffled = {**parsed, "parallelism": {**p, "module_fqns_per_model_part": [parts[1], parts[0], *parts[2:]]}}
    assert any("in order" in m for m in torchtitan.config_problems(shuffled, common.gpus(common.plan_fields(f))))


# DeepSpeed pipeline plans: no AutoTP with pipeline, so dp takes the GPUs tp leaves (rules.py).
DS_FIELDS = {"405b-pp16": dict(tp=1, dp=1024, ga=2), "dsv3-pp16": dict(tp=1, dp=16, ga=32)}


@pytest.mark.parametrize("case,framework", [("405b-pp16", "megatron"), ("405b-pp8-vpp2", "megatron"),
                                            ("405b-pp8-vpp2", "torchtitan"), ("dsv3-pp16", "torchtitan"),
                                            ("405b-pp16", "deepspeed"), ("dsv3-pp16", "deepspeed")])
def test_readme_states_the_stage_layers(case, framework):
    extra = dict(DS_FIELDS[case], sp=False, recompute="full") if framework == "deepspeed" else {}
    sc, f = plan(case, framework, **extra)
    files = build_files(sc, plan_result(sc, f))
    readme = files["README.txt"]
    counts = common.chunk_layer_counts(sc.model.layers, f["pp"], f["vpp"])
    big = counts.count(max(counts))
    assert "Pipeline split (uneven)" in readme
    assert f"s 0-{big - 1}" in readme and f"{max(counts)} layers each (layers 0-{big * max(counts) - 1})" in readme
    assert f"s {big}-{len(counts) - 1}" in readme and f"{min(counts)} layers each" in readme
    if framework == "megatron":
        layout = megatron_layout.pipeline_layout(sc.model.layers, f["pp"], f["vpp"])
        assert f"--pipeline-model-parallel-layout {layout}" in readme and "Megatron-Core >= 0.13.0" in readme
    if framework == "deepspeed":
        listed = ",".join(map(str, counts))
        assert f"per stage: {listed}" in readme and "uniform" in readme
        for name in ("launch.sh", "slurm.sbatch", "accelerate.yaml"):
            assert listed in files[name] and "custom partition" in files[name], name
        cfg = json.loads(files["ds_config.json"])
        assert cfg["activation_checkpointing"]["number_checkpoints"] == max(counts)
        assert ds.plan_from_ds_config(cfg, gpus=common.gpus(common.plan_fields(f))) == common.plan_fields(f)


def test_even_splits_are_exported_as_before():
    """126 layers on pp 2 x vpp 3 divide: 21 layers per virtual stage, no layout, no README section."""
    sc = llama_405b()
    f = {**BASE, "framework": "megatron", "tp": 8, "pp": 2, "vpp": 3, "dp": 1024, "ep": 1, "ga": 2}
    files = build_files(sc, plan_result(sc, f))
    assert "--num-layers-per-virtual-pipeline-stage 21\n" in files["megatron_args.txt"]
    assert "layout" not in files["megatron_args.txt"] and "Pipeline split" not in files["README.txt"]
    cfg, _ = torchtitan.torchtitan_config(sc, {**f, "framework": "torchtitan", "zero": 3})
    assert [len([m for m in part if m.startswith("layers.")]) for part in
            cfg["parallelism"]["module_fqns_per_model_part"]] == [21] * 6
