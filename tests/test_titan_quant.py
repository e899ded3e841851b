"""What the search offers under runtime.fp8_recipe / fp8_param_gather runs on the framework it names:
torchtitan plans under mxfp8 export torchao's MX converters with keys that exist in torchtitan's
JobConfig at the pinned tag (planner/frameworks/torchtitan_keys.json); torchtitan has no NVFP4 path and
MXLinear no tensor parallelism under torch.compile, so those plans are neither offered nor estimated;
Megatron's --fp8-param-gather needs the distributed optimizer (and delayed scaling with CPU offload)."""

import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

from planner import solve
from planner.cli import main
from planner.estimate import table as T
from planner.export import build_files
from planner.frameworks import common, torchtitan
from planner.search.solver import candidate_table
from planner.spec import parse_plan

from conftest import write
from test_memory import scenario

runner = CliRunner()
TT, MEG = T.FRAMEWORKS.index("torchtitan"), T.FRAMEWORKS.index("megatron")
FP8 = T.PRECISIONS.index("fp8")
SEARCH = {"frameworks": ["torchtitan", "megatron"], "precision": ["fp8"]}


def dotted(cfg: dict, prefix: str = "") -> dict:
    """{'quantize.linear.mx.recipe_name': value, ...} of a nested config."""
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(dotted(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def assert_known(cfg: dict):
    """Every key written is a JobConfig key at the pinned tag, every value inside its Literal choices,
    every converter registered there."""
    keys = torchtitan.KEYS["keys"]
    for key, value in dotted(cfg).items():
        assert key in keys, f"torchtitan {torchtitan.TORCHTITAN_VERSION} JobConfig has no {key}"
        if keys[key] is not None:
            assert value in keys[key], f"{key} = {value!r} not in {keys[key]}"
    for name in cfg["model"].get("converters", []):
        assert name in torchtitan.KEYS["converters"], name


def test_key_list_comes_from_the_pinned_tag():
    assert torchtitan.KEYS["tag"] == torchtitan.TORCHTITAN_VERSION
    assert torchtitan.KEYS["commit"].startswith("73a0e69")
    assert {"quantize.linear.mx", "quantize.grouped_mm.mx", "quantize.linear.float8"} <= torchtitan.CONVERTERS


def test_extractor_follows_nested_dataclasses_and_literals():
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("tke", ROOT / "benchmarks" / "torchtitan_keys_extract.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    src = '''
@dataclass
class Inner:
    kind: Literal["a", "b"] | None = None
    names: list[str] = field(default_factory=list)

@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    n: int = 1

@dataclass
class JobConfig:
    outer: Outer = field(default_factory=Outer)
    flag: bool = False
'''
    assert mod.job_config_keys(src) == {"outer.inner.kind": ["a", "b"], "outer.inner.names": None,
                                        "outer.n": None, "flag": None}


PLANS = [  # (model, node, nodes, runtime, plan)
    ("llama-3.1-8b", "dgx-b200", 2, {"fp8_recipe": "mxfp8"}, "framework=torchtitan,precision=fp8,zero=3,mbs=1"),
    ("llama-3.1-8b", "dgx-b200", 2, {"fp8_recipe": "mxfp8"}, "framework=torchtitan,precision=fp8,zero=3,pp=2,vpp=2,mbs=1"),
    ("qwen3-30b-a3b", "dgx-b200", 2, {"fp8_recipe": "mxfp8"}, "framework=torchtitan,precision=fp8,zero=3,ep=8,mbs=1"),
    ("qwen3-30b-a3b", "dgx-h100", 2, {"fp8_recipe": "current"}, "framework=torchtitan,precision=fp8,zero=3,tp=2,ep=4,mbs=1"),
    ("llama-3.1-8b", "dgx-h100", 2, {}, "framework=torchtitan,precision=bf16,zero=3,tp=2,cp=2,recompute=selective,mbs=1"),
]


@pytest.mark.parametrize("case", PLANS, ids=lambda c: f"{c[0]}-{c[3].get('fp8_recipe', 'bf16')}-{c[4][21:]}")
def test_every_key_written_exists_in_torchtitan_job_config(case):
    model, node, nodes, runtime, text = case
    sc = scenario(model=model, node=node, nodes=nodes, seq=4096, gb=64, runtime=runtime)
    cfg, _ = torchtitan.torchtitan_config(sc, parse_plan(text).resolved(sc))
    assert_known(cfg)
    assert torchtitan.config_problems(cfg, common.gpus(common.plan_fields(parse_plan(text).resolved(sc)))) == []


def test_mxfp8_converts_what_the_estimate_runs_in_mxfp8():
    """Every linear layer but the output (the estimate's head GEMM runs at the bf16 rate) and, for MoE, the
    routed experts' grouped GEMMs (the estimate runs every expert GEMM at the MXFP8 rate); compiled, no TP."""
    from planner.estimate import compute
    from planner.estimate.evaluate import Context

    for model, moe in (("llama-3.1-8b", False), ("qwen3-30b-a3b", True)):
        sc = scenario(model=model, node="dgx-b200", nodes=2, seq=4096, gb=64, runtime={"fp8_recipe": "mxfp8", "compile": True})
        plan = parse_plan("framework=torchtitan,precision=fp8,zero=3,mbs=1").resolved(sc)
        cfg, _ = torchtitan.torchtitan_config(sc, plan)
        conv = cfg["model"]["converters"]
        assert conv[0] == "quantize.linear.mx" and ("quantize.grouped_mm.mx" in conv) == moe
        assert cfg["quantize"]["linear"]["mx"]["filter_fqns"] == ["output"]
        if moe:  # torchtitan's GroupedExperts sits at layers.<i>.moe.experts
            assert cfg["quantize"]["grouped_mm"]["mx"]["fqns"] == ["experts"]
        assert cfg["compile"]["enable"] and "model" in cfg["compile"]["components"]
        assert cfg["parallelism"]["tensor_parallel_degree"] == 1
        # the estimate's output layer: the same time as in a bf16 plan of the same layout
        heads = []
        for prec in ("fp8", "bf16"):
            p = parse_plan(f"framework=torchtitan,precision={prec},zero=3,mbs=1").resolved(sc)
            heads.append(float(compute.layer_costs(Context(sc), T.from_plans([p]))["head"][0]))
        assert heads[0] == pytest.approx(heads[1], rel=1e-12)


def test_config_problems_catch_torchtitan_converter_rules():
    sc = scenario(model="qwen3-30b-a3b", node="dgx-b200", nodes=2, seq=4096, gb=64, runtime={"fp8_recipe": "mxfp8", "compile": True})
    plan = parse_plan("framework=torchtitan,precision=fp8,zero=3,ep=8,mbs=1").resolved(sc)
    cfg, _ = torchtitan.torchtitan_config(sc, plan)
    world = common.gpus(common.plan_fields(plan))
    tp2 = {**cfg, "parallelism": {**cfg["parallelism"], "tensor_parallel_degree": 2, "data_parallel_shard_degree": 8}}
    assert any("tensor parallelism under torch.compile" in m for m in torchtitan.config_problems(tp2, world))
    mixed = {**cfg, "model": {**cfg["model"], "converters": ["quantize.linear.float8", "quantize.grouped_mm.mx"]}}
    assert any("cannot be combined" in m for m in torchtitan.config_problems(mixed, world))
    assert any("needs its [quantize.linear.float8] section" in m for m in torchtitan.config_problems(mixed, world))
    nv = {**cfg, "model": {**cfg["model"], "converters": ["quantize.linear.nvfp4"]}}
    assert any("not a torchtitan v0.2.2 converter" in m for m in torchtitan.config_problems(nv, world))


def test_top_mxfp8_torchtitan_plans_export():
    """`solve --emit` of the planner's own best torchtitan plans under mxfp8 (dense and MoE)."""
    for model in ("llama-3.1-8b", "qwen3-30b-a3b"):
        sc = scenario(model=model, node="dgx-b200", nodes=2, seq=4096, gb=256, runtime={"fp8_recipe": "mxfp8"},
                      search={"frameworks": ["torchtitan"], "precision": ["fp8"]})
        plans = solve(sc, top=3)["plans"]
        assert plans
        for r in plans:
            assert r["plan"]["tp"] == 1
            cfg = tomllib.loads(build_files(sc, r)["torchtitan.toml"])
            assert_known(cfg)
            assert "quantize.linear.mx" in cfg["model"]["converters"]


def test_search_offers_no_torchtitan_nvfp4_and_no_tp_mxfp8_plans():
    nv = scenario(node="gb300-nvl72", nodes=4, seq=4096, gb=256, runtime={"fp8_recipe": "nvfp4"}, search=SEARCH)
    t, _ = candidate_table(nv)
    assert not np.any((t["framework"] == TT) & (t["precision"] == FP8))
    assert np.any(t["framework"] == MEG)  # Megatron runs NVFP4
    mx = scenario(node="dgx-b200", nodes=2, seq=4096, gb=256, runtime={"fp8_recipe": "mxfp8", "compile": True}, search=SEARCH)
    t, _ = candidate_table(mx)
    titan = t["framework"] == TT
    assert np.any(titan) and not np.any(titan & (t["tp"] > 1))
    assert np.any((t["framework"] == MEG) & (t["tp"] > 1))


def test_estimate_refuses_torchtitan_nvfp4_with_exit_2(tmp_path):
    path = write(tmp_path, "s.yaml", "model: llama-3.1-8b\ncluster: {node: gb300-nvl72, nodes: 4}\n"
                 "training: {seq_len: 4096, global_batch: 256, tokens: 1e9}\nruntime: {fp8_recipe: nvfp4}\n")
    r = runner.invoke(main, ["estimate", str(path), "--plan", "framework=torchtitan,precision=fp8,zero=3,mbs=1"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "runtime.fp8_recipe nvfp4" in r.output and "torchtitan" in r.output
    ok = runner.invoke(main, ["estimate", str(path), "--plan", "framework=megatron,precision=fp8,zero=1,mbs=1"])
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize("recipe,offload,zero,refused", [
    ("current", "none", 0, True), ("current", "none", 1, False), ("mxfp8", "none", 0, True),
    ("current", "cpu", 1, True), ("delayed", "cpu", 1, False), ("nvfp4", "none", 0, False)])
def test_fp8_param_gather_only_where_megatron_accepts_it(tmp_path, recipe, offload, zero, refused):
    """Megatron-LM validate_args: --fp8-param-gather needs the distributed optimizer (or an FSDP), and
    delayed scaling with --optimizer-cpu-offload; --fp4-param-gather (nvfp4) has neither check."""
    path = write(tmp_path, "s.yaml", "model: llama-3.1-8b\ncluster: {node: gb300-nvl72, nodes: 2}\n"
                 "training: {seq_len: 4096, global_batch: 64, tokens: 1e9}\n"
                 f"runtime: {{fp8_recipe: {recipe}, fp8_param_gather: true}}\n")
    plan = f"framework=megatron,precision=fp8,zero={zero},offload={offload},mbs=1"
    r = runner.invoke(main, ["estimate", str(path), "--plan", plan])
    assert (r.exit_code == 2) == refused, r.output
    if refused:
        assert "runtime.fp8_param_gather" in r.output and "Traceback" not in r.output
    sc = scenario(node="gb300-nvl72", nodes=2, seq=4096, gb=64,
                  runtime={"fp8_recipe": recipe, "fp8_param_gather": True},
                  search={"frameworks": ["megatron"], "precision": ["fp8"], "zero": [zero], "offload": [offload]})
    t, _ = candidate_table(sc)
    assert (T.size(t) == 0) == refused


@pytest.mark.parametrize("compiled", [True, False])
def test_export_compiles_as_the_estimate_assumes(compiled):
    """runtime.compile reaches [compile] enable (torchtitan's default is off, the planner's on), for bf16
    plans too; async TP only with it (torchtitan raises without torch.compile), and the estimate hides no
    torchtitan TP collective behind GEMMs without it."""
    from planner.estimate.evaluate import estimate

    sc = scenario(model="llama-3.1-70b", nodes=2, seq=4096, gb=64, runtime={"compile": compiled})
    text = "framework=torchtitan,precision=bf16,zero=3,tp=8,mbs=1"
    cfg, _ = torchtitan.torchtitan_config(sc, parse_plan(text).resolved(sc))
    assert cfg["compile"]["enable"] is compiled
    assert cfg["parallelism"]["enable_async_tensor_parallel"] is compiled
    assert_known(cfg)
    fsdp_only, _ = torchtitan.torchtitan_config(sc, parse_plan("framework=torchtitan,precision=bf16,zero=3,mbs=1")
                                                .resolved(sc))
    assert fsdp_only["compile"]["enable"] is compiled
    steps = {}
    for overlap in (True, False):
        s = scenario(model="llama-3.1-70b", nodes=2, seq=4096, gb=64,
                     runtime={"compile": compiled, "tp_comm_overlap": overlap})
        steps[overlap] = estimate(s, parse_plan(text).resolved(s))["time"]["step_s"]
    assert (steps[True] < steps[False]) is compiled
    if not compiled:
        assert steps[True] == pytest.approx(steps[False], rel=1e-12)


def test_mxfp8_with_tensor_parallelism_runs_eager():
    """MXLinear refuses tp > 1 only under torch.compile: with runtime.compile false the plan is offered,
    exported uncompiled, and passes torchtitan's rules."""
    sc = scenario(node="dgx-b200", nodes=2, seq=4096, gb=64, runtime={"fp8_recipe": "mxfp8", "compile": False})
    plan = parse_plan("framework=torchtitan,precision=fp8,zero=3,tp=2,mbs=1").resolved(sc)
    cfg, _ = torchtitan.torchtitan_config(sc, plan)
    assert not cfg["compile"]["enable"] and cfg["parallelism"]["tensor_parallel_degree"] == 2
    assert torchtitan.config_problems(cfg, common.gpus(common.plan_fields(plan))) == []
