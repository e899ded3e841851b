"""Muon (training.optimizer muon) as Megatron-Core runs it (planner/estimate/muon.py), and Kimi-K2."""

import numpy as np
import pytest
import yaml

from planner import catalog
from planner.arch import model_stats
from planner.errors import InputError
from planner.estimate.evaluate import estimate
from planner.estimate.muon import NS_STEPS, muon_params
from planner.estimate.memory_terms_stage import stage_params
from planner.estimate import table as T
from planner.frameworks import deepspeed, megatron
from planner.frameworks.rules import framework_problems
from planner.spec import Plan
from planner.spec.scenario import Scenario

from conftest import ROOT

PLAN = {"framework": "megatron", "precision": "bf16", "dp": 8, "tp": 2, "pp": 2, "cp": 1, "ep": 4, "vpp": 1,
        "zero": 1, "recompute": "selective", "mbs": 1, "ga": 8}


def scenario(opt="muon", model="deepseek-v2-lite", **runtime):
    return Scenario.model_validate({"name": "m", "model": catalog.model(model), "runtime": runtime,
                                    "cluster": {"node": catalog.node("dgx-h100"), "nodes": 4},
                                    "training": {"seq_len": 4096, "global_batch": 64, "tokens": 1e9, "optimizer": opt}})


def run(opt, plan=None, **runtime):
    sc = scenario(opt, **runtime)
    p = Plan.model_validate(plan or PLAN).resolved(sc, check_build=False)
    return sc, p, estimate(sc, p)


def test_kimi_k2_counts():
    """Recount DeepseekV3ForCausalLM's parameters tensor by tensor from Kimi-K2's config.json shapes (the router's
    e_score_correction_bias is a buffer there), against the catalog model's count; the model card says 1T / 32B."""
    h, v, H, L, E = 7168, 163840, 64, 61, 384
    attn = h * 1536 + 1536 + 1536 * H * 192 + h * 576 + 512 + 512 * H * 256 + H * 128 * h
    moe = E * h + E * 3 * h * 2048 + 3 * h * 2048
    count = 2 * v * h + h + L * (2 * h + attn) + 3 * h * 18432 + (L - 1) * moe
    st = model_stats(catalog.model("kimi-k2"))
    assert st.params_total == count == 1_026_408_209_408
    # with the 60 x 384 router biases: the checkpoint's tensors; Kimi-K2-Instruct's Hugging Face page prints
    # 1,026,408,235,864 (3,416 more, not explained)
    assert abs((count + 60 * E) / 1_026_408_235_864 - 1) < 1e-8
    # the checkpoint's FP8 (F8_E4M3) tensors, every layer's linear weight (not the router, embedding or output
    # layer), against the page's per-dtype count: exact, so the 3,416 lie in the BF16 / F32 tensors
    fp8 = L * (attn - 1536 - 512) + 3 * h * 18432 + (L - 1) * (moe - E * h)
    assert fp8 == 1_023_893_241_856
    assert round(st.params_total / 1e12) == 1 and round(st.params_active / 1e9) in (32, 33)


def test_muon_splits_matrices_from_the_rest():
    """Muon takes the layers' matrices (router included); the embedding, output layer and norms stay Adam's."""
    sc = scenario()
    t = T.from_plans([Plan.model_validate(PLAN).resolved(sc, check_build=False)])
    from planner.estimate.evaluate import Context
    ctx = Context(sc)
    first, last = stage_params(ctx, t, "first"), stage_params(ctx, t, "last")
    for sp in (first, last):
        dense, expert = muon_params(ctx, sp)
        assert np.allclose(expert, sp["expert"])  # no expert biases in this model: all routed experts are Muon's
        rest = sp["non_expert"] - dense
        assert np.all(rest >= sp["norms"])
    m = sc.model
    # first stage: the embedding is Adam's; last: the output layer and final norm
    assert np.all(first["non_expert"] - muon_params(ctx, first)[0] - first["norms"] >= m.vocab * m.hidden)
    assert np.all(last["non_expert"] - muon_params(ctx, last)[0] - last["norms"] >= m.vocab * m.hidden)


def test_muon_states_and_step():
    """One fp32 momentum (4 B) against Adam's two moments (8 B) on the matrices: the states shrink, master and
    gradients stay; the step adds Newton-Schulz GEMMs and, under the layer-wise optimizer, an exposed gather."""
    z0 = {**PLAN, "zero": 0}
    pa, pm = run("adamw", z0)[2]["memory"]["parts_gib"], run("muon", z0)[2]["memory"]["parts_gib"]
    assert pm["optimizer"]["master_weights"] == pa["optimizer"]["master_weights"]
    assert pm["gradients"] == pa["gradients"]
    assert 0.5 * pa["optimizer"]["states"] < pm["optimizer"]["states"] < 0.6 * pa["optimizer"]["states"]
    _, _, adam = run("adamw")
    _, _, muon = run("muon")
    ta, tm = adam["time"]["breakdown_s"], muon["time"]["breakdown_s"]
    assert tm["optimizer"] > ta["optimizer"] > 0
    assert tm["dp_comm"] >= ta["dp_comm"]
    assert tm["compute"] == pytest.approx(ta["compute"], rel=0.02)  # only the power-limited clock moves it


def test_newton_schulz_scales_with_steps(monkeypatch):
    """The Newton-Schulz time is NS_STEPS x the per-iteration GEMMs: doubling the steps adds that much again."""
    import planner.estimate.muon as mu
    base = run("muon")[2]["time"]["breakdown_s"]["optimizer"]
    monkeypatch.setattr(mu, "NS_STEPS", 2 * NS_STEPS)
    more = run("muon")[2]["time"]["breakdown_s"]["optimizer"]
    adam = run("adamw")[2]["time"]["breakdown_s"]["optimizer"]
    assert more > base > adam
    assert more - base < base  # the passes over memory stay the same


def test_split_qkv_orthogonalises_q_k_and_v_apart(monkeypatch):
    """--muon-split-qkv (Megatron's default) runs Newton-Schulz on Q, K and V apart: for a GQA model (Llama 3.1
    70B: Q 8192 x 8192, K and V 1024 x 8192 against one 10240 x 8192 matrix) less work than the fused weight,
    2 (3 x 8192^3 + 2 x (2 x 1024^2 x 8192 + 1024^3)) against 2 (2 x 8192^2 x 10240 + 8192^3) flops an iteration;
    for multi-head attention (Llama 2 7B: three 4096 x 4096 against one 12288 x 4096) more, 18 h^3 against 14 h^3."""
    import planner.estimate.muon as mu
    plan = {**PLAN, "ep": 1, "zero": 0, "tp": 1, "dp": 16, "ga": 4}  # whole matrices (tp 1), as the flop counts above

    def ns(model):
        sc = scenario(model=model)
        p = Plan.model_validate(plan).resolved(sc, check_build=False)
        t = T.from_plans([p])
        from planner.estimate.evaluate import Context
        ctx = Context(sc)
        return float(np.ravel(mu.newton_schulz_s(ctx, t, stage_params(ctx, t, "first"), np.asarray(False)))[0])

    split = {m: ns(m) for m in ("llama-3.1-70b", "llama-2-7b")}
    monkeypatch.setattr(mu, "SPLIT_QKV", False)
    fused = {m: ns(m) for m in ("llama-3.1-70b", "llama-2-7b")}
    assert split["llama-3.1-70b"] < fused["llama-3.1-70b"]
    assert split["llama-2-7b"] > fused["llama-2-7b"]


def test_layer_wise_shards_states_and_work():
    """zero 1 (layer-wise distributed optimizer) shards Muon's states and Newton-Schulz work over dp; zero 0 does not."""
    z0 = run("muon", {**PLAN, "zero": 0})[2]
    z1 = run("muon")[2]
    # dense states over dp x cp = 8 (but the embedding whole on one rank), experts over tp*cp*dp/(ep*etp) = 2
    assert z1["memory"]["parts_gib"]["optimizer"]["states"] < 0.6 * z0["memory"]["parts_gib"]["optimizer"]["states"]
    assert z1["time"]["breakdown_s"]["optimizer"] < z0["time"]["breakdown_s"]["optimizer"]


def test_muon_rules_and_exports():
    sc = scenario()
    ds = {**PLAN, "framework": "deepspeed", "tp": 1, "pp": 1, "dp": 32, "ep": 1, "zero": 2}
    p = Plan.model_validate(ds)
    assert any("muon" in m for m in framework_problems(p, optimizer="muon"))
    assert not any("muon" in m for m in framework_problems(p, optimizer="adamw"))
    with pytest.raises(InputError, match="Muon"):
        deepspeed._optimizer(sc, {"zero": 2})
    for bad in ({"zero": 3}, {"offload": "cpu"}):
        assert any("muon" in m for m in framework_problems(Plan.model_validate({**PLAN, **bad}), optimizer="muon"))
    fp8 = Plan.model_validate({**PLAN, "precision": "fp8"})
    rt = scenario(fp8_param_gather=True).runtime
    assert any("fp8_param_gather" in m and "muon" in m for m in framework_problems(fp8, runtime=rt, optimizer="muon"))
    args = megatron._training_args(sc, {**PLAN, "global_batch": 64, "precision": "bf16"})
    assert "--optimizer muon" in args and "--muon-num-ns-steps 5" in args and "--muon-tp-mode blockwise" in args


def test_muon_export_keeps_param_gather_in_the_step(tmp_path):
    from click.testing import CliRunner
    from planner.cli import main
    path = tmp_path / "s.yaml"
    sc = scenario().model_dump(mode="json")
    path.write_text(yaml.safe_dump(sc))
    r = CliRunner().invoke(main, ["export", str(path), "--plan",
                                  "framework=megatron,precision=bf16,dp=8,tp=2,pp=2,ep=4,zero=1,mbs=1,ga=8",
                                  "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    text = "".join(p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert "--optimizer muon" in text and "--use-distributed-optimizer" in text
    assert "--overlap-param-gather" not in text


def test_deepspeed_muon_exits_2(tmp_path):
    from click.testing import CliRunner
    from planner.cli import main
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario().model_dump(mode="json")))
    r = CliRunner().invoke(main, ["export", str(path), "--plan",
                                  "framework=deepspeed,precision=bf16,dp=32,zero=2,mbs=1,ga=2", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "muon" in r.output.lower() and "Traceback" not in r.output


def test_kimi_rows_state_muon():
    runs = [r for r in yaml.safe_load((ROOT / "benchmarks" / "recipe_runs.yaml").read_text()) if "kimi-k2" in r["id"]]
    assert len(runs) == 4
    from benchmarks.calibration_runs import build
    for r in runs:
        sc, plan, _, _ = build(r)
        assert sc.training.optimizer == "muon" and not sc.runtime.fp8_param_gather
        assert plan.zero == 1 and plan.pp == 4 and plan.ep == 64


def test_kimi_k2_config_imports_as_deepseek_v3():
    """Kimi-K2's config.json (model_type kimi_k2, architectures DeepseekV3ForCausalLM) reads through the
    deepseek_v3 path into the catalog entry; another model_type with that name but no DeepseekV3 class is refused."""
    import json
    from planner.spec.hf import model_from_hf
    from planner.spec.model import ModelSpec
    cfg = json.loads((ROOT / "tests" / "fixtures" / "kimi-k2-config.json").read_text())
    spec = ModelSpec.model_validate(model_from_hf(cfg, name="kimi-k2"))
    assert spec == catalog.model("kimi-k2").model_copy(update={"source": None, "notes": None})
    assert model_stats(spec).params_total == 1_026_408_209_408
    with pytest.raises(InputError, match="model_type"):
        model_from_hf({**cfg, "architectures": ["KimiForCausalLM"]})


def test_megatron_cli_cannot_set_kimi_yarn_betas():
    """Megatron-LM's CLI leaves MLATransformerConfig.beta_fast at 32 (no flag reaches it); Kimi-K2's config says 1.0:
    the export refuses the exact model rather than train another one."""
    with pytest.raises(InputError, match="beta_fast"):
        megatron.architecture_args(catalog.model("kimi-k2"))


def test_layer_wise_deals_whole_parameters():
    """Under the layer-wise optimizer the rank that is dealt the embedding keeps its fp32 master and Adam moments
    whole (12 bytes per element), against 1/dp of them under the distributed optimizer's flat shards."""
    sc, _, adam = run("adamw")
    _, _, muon = run("muon")
    m = sc.model
    table = m.vocab * m.hidden / PLAN["tp"] / 2**30
    master = muon["memory"]["parts_gib"]["optimizer"]["master_weights"] - adam["memory"]["parts_gib"]["optimizer"]["master_weights"]
    assert 4 * table * (1 - 2 / PLAN["dp"]) < master < 4 * table * 1.01


def test_kimi_k2_muon_no_plan_names_the_frameworks():
    """Kimi-K2 with Muon: Megatron (the one framework modelled for Muon) cannot rebuild its YaRN beta_fast 1.0;
    the explanation says that framework by framework instead of the generic 'widen the search' paragraph."""
    from planner.search.explain import explain_infeasible
    sc = scenario(model="kimi-k2")
    closest, lines, fixes = explain_infeasible(sc, [], "throughput")
    assert closest is None and fixes == []
    assert lines[0].startswith("no searched framework can run this scenario")
    text = "\n".join(lines)
    assert "megatron cannot build the model" in text and "beta_fast" in text and "structural constraints" not in text
    assert "deepspeed takes no plan: training.optimizer muon" in text
    # with AdamW DeepSpeed can build the model: the generic explanation stays
    _, lines, _ = explain_infeasible(scenario("adamw", model="kimi-k2"), [], "throughput")
    assert "structural constraints" in lines[0]
