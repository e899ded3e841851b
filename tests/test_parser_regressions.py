"""Defects of the exports found by feeding them to the frameworks' own parsers: Megatron-LM d98e8a6
(benchmarks/megatron_parser_check.py) and torchtitan v0.2.2 (benchmarks/torchtitan_parser_check.py);
results in benchmarks/megatron_parser_results.md. Each test asserts the corrected flag set, config or
refusal, without torch or the frameworks."""

from __future__ import annotations

import pytest

from planner import catalog, load_scenario
from planner.errors import InputError
from planner.frameworks import megatron, rules, torchtitan
from planner.spec import parse_plan

from conftest import ROOT

MIXTRAL = load_scenario(ROOT / "scenarios" / "mixtral_64gpu.yaml")
DSV3 = load_scenario(ROOT / "benchmarks" / "scenarios" / "dsv3_2048_h100.yaml")
QWEN_MOE = load_scenario(ROOT / "scenarios" / "qwen3_moe_16gpu.yaml")


def _with(sc, model=None, **runtime):
    upd = {"runtime": sc.runtime.model_copy(update=runtime)} if runtime else {}
    if model is not None:
        upd["model"] = catalog.model(model) if isinstance(model, str) else model
    return sc.model_copy(update=upd)


def _plan(sc, text):
    return parse_plan(text).resolved(sc)


def test_moe_with_linear_biases_runs_experts_without_tensor_parallelism():
    """gpt-oss (experts with biases): Megatron-Core asserts 'Bias in Moe is only supported when ETP==1'."""
    sc = _with(MIXTRAL, "gpt-oss-120b")
    text = "framework=megatron,precision=bf16,tp=2,ep=8,dp=32,zero=1,mbs=1,recompute=selective"
    with pytest.raises(InputError, match="etp must be 1"):
        _plan(sc, text + ",etp=2")
    assert _plan(sc, text).etp == 1  # left out: the one size Megatron-Core takes for biased experts
    split = _plan(MIXTRAL, text)  # the same layout of a bias-free MoE model keeps etp = tp
    assert split.etp == 2 and "--expert-tensor-parallel-size 2" in megatron.megatron_args(MIXTRAL, split)
    with pytest.raises(InputError, match="expert-tensor-parallel-size 1"):  # the export refuses it too
        megatron.megatron_args(sc, split)
    folded = _plan(sc, text + ",etp=1")
    args = megatron.megatron_args(sc, folded)
    assert "--expert-tensor-parallel-size 1" in args and "--disable-bias-linear" not in args


@pytest.mark.parametrize("recipe,refused", [("delayed", True), ("current", False), ("mxfp8", False)])
def test_fp8_delayed_scaling_does_not_recompute_moe_act_or_layernorm(recipe, refused):
    """TransformerConfig: 'Delayed scaling does not support moe_act and layernorm recompute for fp8'."""
    sc = _with(QWEN_MOE, fp8_recipe=recipe, recompute_modules=["moe_act", "layernorm"])
    text = "framework=megatron,precision=fp8,ep=8,dp=16,zero=1,mbs=1,recompute=selective"
    plan = _plan(QWEN_MOE, text)
    assert (rules.MEG_FP8_DELAYED_RECOMPUTE in plan.problems(sc)) == refused
    if refused:
        with pytest.raises(InputError, match="fp8_recipe other than delayed"):
            _plan(sc, text)
        with pytest.raises(InputError, match="delayed cannot recompute"):
            megatron.megatron_args(sc, plan)
    else:
        args = megatron.megatron_args(sc, _plan(sc, text))
        assert "--recompute-modules moe_act layernorm" in args
    # core_attn alone is fine under delayed scaling
    ok = _with(QWEN_MOE, fp8_recipe="delayed", recompute_modules=["core_attn"])
    assert "--fp8-recipe delayed" in megatron.megatron_args(ok, _plan(ok, "framework=megatron,precision=fp8,ep=8,dp=16,"
                                                                       "zero=1,mbs=1,recompute=selective"))


def test_search_leaves_out_what_megatron_core_refuses():
    """The search applies the same rule: no gpt-oss plan with etp > 1."""
    from planner import solve

    sc = _with(MIXTRAL, "gpt-oss-20b")
    sc = sc.model_copy(update={"search": sc.search.model_copy(update={"frameworks": ["megatron"]})})
    plans = solve(sc, top=20)["plans"]
    assert plans and all(p["plan"]["etp"] == 1 for p in plans)


def test_expert_bias_needs_sigmoid_scores():
    """TransformerConfig: 'Expert bias for aux-loss-free routing only supports sigmoid ...'; DeepSeek-V3 has it."""
    m = catalog.model("deepseek-v3")
    assert m.moe.router_bias and m.moe.scoring == "sigmoid"
    args = megatron.architecture_args(m)
    assert "--moe-router-enable-expert-bias" in args and "--moe-router-score-function sigmoid" in args
    soft = m.model_copy(update={"moe": m.moe.model_copy(update={"scoring": "softmax"})})
    with pytest.raises(InputError, match="router_bias with softmax"):
        megatron.architecture_args(soft)


def test_calibration_runs_keep_their_sigmoid_router():
    """The calibration builder gives a run's sigmoid router (router_score) its scores, not only the bias."""
    import calibration_runs

    run = {"id": "x", "model": {"name": "DeepSeek-V3", "layers": 4, "hidden_size": 1024, "attention_heads": 8,
                                "ffn_hidden_size": 2048, "vocab_size": 1000,
                                "moe": {"num_experts": 8, "top_k": 2, "expert_ffn_hidden_size": 512,
                                        "router_score": "sigmoid"}}}
    moe = calibration_runs.model_of(run, []).moe
    assert moe.router_bias and moe.scoring == "sigmoid"
    run["model"]["moe"]["router_score"] = "softmax"
    moe = calibration_runs.model_of(run, []).moe
    assert not moe.router_bias and moe.scoring == "softmax"


def test_flags_use_the_names_of_the_pinned_megatron():
    """d98e8a6 deprecates --moe-hybridep-num-sms (-> --moe-flex-dispatcher-num-sms) and --cuda-graph-scope
    (-> --cuda-graph-modules; full_iteration -> --cuda-graph-impl full_iteration)."""
    sc = _with(QWEN_MOE, moe_dispatcher="hybridep", cuda_graph_impl="transformer_engine",
               cuda_graph_scope=["moe_router", "moe_preprocess"])
    args = megatron.megatron_args(sc, _plan(sc, "framework=megatron,precision=bf16,ep=8,dp=16,zero=1,mbs=1,"
                                                "recompute=selective"))
    assert "--moe-flex-dispatcher-num-sms 16" in args and "--cuda-graph-modules moe_router moe_preprocess" in args
    assert not any(a.startswith(("--moe-hybridep-num-sms", "--cuda-graph-scope")) for a in args)
    whole = megatron.cuda_graph_args(_with(QWEN_MOE, cuda_graph_impl="transformer_engine").runtime)
    assert whole == ["--cuda-graph-impl transformer_engine", "--te-rng-tracker"]


@pytest.mark.parametrize("recipe", ["current", "delayed"])
def test_torchtitan_float8_fsdp_all_gather_goes_without_a_recipe_name(recipe):
    """torchtitan v0.2.2 Float8LinearConverter asserts 'using enable_fsdp_float8_all_gather together with
    recipe_name is not supported': tensorwise scaling is the unset recipe_name."""
    sc = load_scenario(ROOT / "scenarios" / "70b_64gpu.yaml")
    sc = _with(sc, fp8_recipe=recipe)
    plan = _plan(sc, "framework=torchtitan,precision=fp8,tp=2,dp=32,zero=3,mbs=1,recompute=selective")
    cfg, _ = torchtitan.torchtitan_config(sc, plan)
    section = cfg["quantize"]["linear"]["float8"]
    assert cfg["model"]["converters"] == ["quantize.linear.float8"]
    assert section["enable_fsdp_float8_all_gather"] and "recipe_name" not in section
    assert not torchtitan.config_problems(cfg, 64)
    section["recipe_name"] = "tensorwise"  # what the export wrote before: the project's own check refuses it now
    assert any("recipe_name" in m for m in torchtitan.config_problems(cfg, 64))


def test_mla_without_yarn_turns_rope_fusion_off_and_refuses_other_scalings():
    """MLATransformerConfig: 'apply_rope_fusion for MLA only works with YARN RoPE' (plain RoPE needs
    --no-rope-fusion); Megatron-Core's MLA builds plain RoPE or YaRN only (multi_latent_attention.py)."""
    m = catalog.model("deepseek-v2-lite")
    args = megatron.architecture_args(m)
    if m.rope_scaling is None:
        assert "--rope-type rope" in args and "--no-rope-fusion" in args
    else:
        assert "--rope-type yarn" in args and "--no-rope-fusion" not in args
    plain = m.model_copy(update={"rope_scaling": None})
    args = megatron.architecture_args(plain)
    assert "--rope-type rope" in args and "--no-rope-fusion" in args
    yarn = megatron.architecture_args(catalog.model("deepseek-v3"))
    assert "--rope-type yarn" in yarn and "--no-rope-fusion" not in yarn
    llama = catalog.model("llama-3.1-8b").rope_scaling
    with pytest.raises(InputError, match="with MLA"):
        megatron.architecture_args(m.model_copy(update={"rope_scaling": llama}))
