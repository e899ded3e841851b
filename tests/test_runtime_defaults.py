"""Issue 11: a scenario without a `runtime:` block gets each framework's real default, and an
out-of-memory plan names the runtime settings recipes change on purpose (planner.search.explain)."""

import json

from click.testing import CliRunner
import yaml

from planner.cli import main
from planner.estimate.evaluate import estimate
from planner.search.explain import RUNTIME_MEMORY_KEYS, runtime_fixes
from planner.spec.plan import parse_plan
from planner.spec.scenario import Runtime

from test_memory import scenario

OOM_FP8 = "framework=megatron,precision=fp8,tp=1,pp=1,dp=8,zero=1,mbs=2,recompute=none"


def test_memory_keys_recipes_set_default_off_as_in_megatron_lm():
    """Megatron-LM core_v0.13.0 megatron/training/arguments.py: bf16 turns on
    accumulate_allreduce_grads_in_fp32 unless --grad-reduce-in-bf16 (l. 683-686); --fp8-param-gather is
    store_true (l. 1208); --cross-entropy-fusion-impl default 'native' (l. 1900); TransformerConfig
    recompute_modules None -> ['core_attn'] (transformer_config.py l. 814); PyTorch's allocator without
    expandable segments. Megatron-Bridge v0.2.2 MixedPrecisionConfig: grad_reduce_in_fp32 = True,
    fp8_param_gather = False (training/mixed_precision.py l. 42, 56)."""
    rt = Runtime()
    assert rt.grad_reduce_dtype in ("auto", "fp32") and not rt.fp8_param_gather
    assert rt.cross_entropy_impl in ("auto", "native") and rt.recompute_modules is None
    assert rt.expandable_segments in ("auto", False) and rt.activation_offload_layers == 0
    # each key the fixes offer is one the default leaves off
    assert all(getattr(rt, key) != value for key, value, _, _ in RUNTIME_MEMORY_KEYS)


def test_runtime_fixes_lower_the_plan_and_match_estimate():
    sc = scenario(model="llama-3.1-8b", nodes=1, gb=64)
    plan = parse_plan(OOM_FP8).resolved(sc)
    base = estimate(sc, plan)["memory"]
    assert base["verdict"] == "oom"
    fixes = runtime_fixes(sc, plan)
    changes = {f["change"].split(":")[0] for f in fixes}
    assert {"runtime.grad_reduce_dtype", "runtime.fp8_param_gather"} <= changes
    for f in fixes[:-1]:  # each alone gives what estimate gives with that setting in the scenario
        key, value = f["change"].removeprefix("runtime.").split(": ")
        value = {"true": True, "false": False}.get(value, value)
        rt = sc.runtime.model_copy(update={key: value})
        m = estimate(sc.model_copy(update={"runtime": rt}), plan)["memory"]
        assert m["per_gpu_gib"] == f["per_gpu_gib"] < base["per_gpu_gib"]
    assert fixes[-1]["change"] == "all of these" and fixes[-1]["per_gpu_gib"] < min(f["per_gpu_gib"] for f in fixes[:-1])
    # a setting the scenario already has is not offered again
    done = sc.model_copy(update={"runtime": sc.runtime.model_copy(update={"grad_reduce_dtype": "bf16"})})
    assert not any(f["change"].startswith("runtime.grad_reduce_dtype") for f in runtime_fixes(done, plan))


def test_bf16_plan_is_not_offered_fp8_param_gather():
    sc = scenario(model="llama-3.1-8b", nodes=1, gb=64)
    plan = parse_plan(OOM_FP8.replace("fp8", "bf16")).resolved(sc)
    assert not any("fp8_param_gather" in f["change"] for f in runtime_fixes(sc, plan))


def test_estimate_of_an_oom_plan_names_the_runtime_keys(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"model": "llama-3.1-8b", "cluster": {"node": "dgx-h100", "nodes": 1},
                                 "training": {"seq_len": 4096, "global_batch": 64, "tokens": 1e9}}))
    text = CliRunner().invoke(main, ["estimate", str(f), "--plan", OOM_FP8]).output
    assert "runtime.grad_reduce_dtype: bf16" in text and "runtime.fp8_param_gather: true" in text
    r = json.loads(CliRunner().invoke(main, ["estimate", str(f), "--plan", OOM_FP8, "--json"]).output)
    assert r["memory"]["verdict"] == "oom" and r["runtime_fixes"]
    fits = json.loads(CliRunner().invoke(main, ["estimate", str(f), "--plan", OOM_FP8.replace("mbs=2", "mbs=1").replace(
        "zero=1", "zero=3"), "--json"]).output)
    assert fits["memory"]["verdict"] != "oom" and "runtime_fixes" not in fits


def test_torchtitan_compile_is_off_by_default_as_in_torchtitan():
    """torchtitan v0.2.2 config/job_config.py Compile.enable = False (its llama3 8B and 70B configs keep it
    off): a scenario without runtime.compile gets eager torchtitan, and the export says so."""
    from planner.frameworks import torchtitan

    assert Runtime().compile is False
    sc = scenario(model="llama-3.1-8b", nodes=1, gb=64)
    plan = parse_plan("framework=torchtitan,precision=bf16,zero=3,mbs=2,recompute=none").resolved(sc)
    cfg, _ = torchtitan.torchtitan_config(sc, plan)
    assert cfg["compile"]["enable"] is False
    on = sc.model_copy(update={"runtime": sc.runtime.model_copy(update={"compile": True})})
    assert torchtitan.torchtitan_config(on, plan)[0]["compile"]["enable"] is True
