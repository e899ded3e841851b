"""Exports rebuild the catalog model exactly: each architecture value read back from the Megatron
arguments, the torchtitan flavor module and the Hugging Face config.json equals the model card's
config.json (tests/fixtures/hf/, whose file names are catalog model names)."""

from __future__ import annotations

import ast
import json
import math

import pytest

from planner import catalog, load_scenario
from planner.errors import InputError
from planner.frameworks import hf_config, megatron, rules, torchtitan_model
from planner.spec.hf import model_from_hf
from planner.spec.model import ModelSpec
from conftest import HF, ROOT

# Llama 4's config.json nests its language model in text_config: its exports are tested in test_llama4_params.py
FIXTURES = sorted(p for p in HF.glob("*.json") if json.loads(p.read_text())["model_type"] != "llama4")
BASE = load_scenario(ROOT / "scenarios" / "70b_64gpu.yaml")


def card(path):
    return json.loads(path.read_text())


def megatron_model(name: str) -> dict:
    sc = BASE.model_copy(update={"model": catalog.model(name)})
    return megatron.parse_args(megatron._model_args(sc))


def titan_kwargs(name: str) -> tuple[str, dict]:
    """The family and keyword arguments of the flavor registered by torchtitan_flavor.py, parsed
    back from its source (nested MoEArgs / RoPEScalingArgs calls become dicts)."""
    tree = ast.parse(torchtitan_model.flavor_module(catalog.model(name)))
    assign = next(n for n in tree.body if isinstance(n, ast.Assign))
    table = assign.targets[0].value.id

    def val(node):
        if isinstance(node, ast.Call):
            return {k.arg: val(k.value) for k in node.keywords}
        return ast.literal_eval(node)

    return table, val(assign.value)


def close(a, b) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-12)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_megatron_args_carry_the_model_card(path):
    cfg, a = card(path), megatron_model(path.stem)
    assert close(a["rotary_base"], cfg["rope_theta"])
    assert close(float(a["norm_epsilon"]), cfg["rms_norm_eps"])
    assert a.get("untie_embeddings_and_output_weights", False) == (not cfg.get("tie_word_embeddings", False))
    assert a.get("add_qkv_bias", False) == (cfg["model_type"] in ("qwen2", "qwen2_moe"))
    assert a.get("qk_layernorm", False) == cfg["model_type"].startswith("qwen3")
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type") == "llama3":
        assert a["use_rope_scaling"] is True and close(a["rope_scaling_factor"], rs["factor"])
        assert all(rs[k] == v for k, v in megatron.LLAMA3_FIXED.items())  # what Megatron hard-codes
    elif rs:  # YaRN in MLA
        assert a["rope_type"] == "yarn" and close(a["rotary_scaling_factor"], rs["factor"])
        assert close(a["mscale"], rs["mscale"]) and close(a["mscale_all_dim"], rs["mscale_all_dim"])
        assert all(rs[k] == v for k, v in megatron.MLA_YARN_FIXED.items())
    else:
        assert "use_rope_scaling" not in a and "rotary_scaling_factor" not in a
    experts = cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts")
    if experts:
        assert a["num_experts"] == experts and a["moe_router_topk"] == cfg["num_experts_per_tok"]
        assert a["moe_router_score_function"] == cfg.get("scoring_func", "softmax")
        normalised = cfg["model_type"] == "mixtral" or cfg.get("norm_topk_prob", False)
        assert a.get("moe_router_pre_softmax", False) == (not normalised)
        assert close(a.get("moe_router_topk_scaling_factor", 1.0), cfg.get("routed_scaling_factor", 1.0))
        aux_free = cfg.get("topk_method") == "noaux_tc"
        assert a.get("moe_router_enable_expert_bias", False) == aux_free
        assert a.get("moe_router_num_groups") == (cfg["n_group"] if aux_free else None)
        assert a.get("moe_router_group_topk") == (cfg["topk_group"] if aux_free else None)
    if "kv_lora_rank" in cfg:
        assert a.get("q_lora_rank") == cfg["q_lora_rank"] and a["kv_lora_rank"] == cfg["kv_lora_rank"]
        assert (a["qk_head_dim"], a["qk_pos_emb_head_dim"], a["v_head_dim"]) == \
            (cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"])


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_torchtitan_flavor_carries_the_model_card(path):
    cfg = card(path)
    if cfg["model_type"] == "qwen2":  # q/k/v biases: no torchtitan model has them
        with pytest.raises(InputError, match="biases"):
            titan_kwargs(path.stem)
        return
    table, k = titan_kwargs(path.stem)
    assert close(k["rope_theta"], cfg["rope_theta"]) and close(k["norm_eps"], cfg["rms_norm_eps"])
    rs = cfg.get("rope_scaling")
    if table == "llama3_args":
        s = k["rope_scaling_args"]
        assert (s["scaling_factor"], s["low_freq_factor"], s["high_freq_factor"],
                s["original_max_position_embeddings"]) == (rs["factor"], rs["low_freq_factor"],
                                                           rs["high_freq_factor"], rs["original_max_position_embeddings"])
        # torchtitan llama3 FeedForward: multiple_of * ceil(int(m * int(8 dim / 3)) / multiple_of)
        hidden = int(8 * k["dim"] / 3)
        hidden = int(k["ffn_dim_multiplier"] * hidden) if k["ffn_dim_multiplier"] else hidden
        assert k["multiple_of"] * -(-hidden // k["multiple_of"]) == cfg["intermediate_size"]
    elif table == "deepseekv3_args":
        assert (k["rope_factor"], k["original_seq_len"], k["beta_fast"], k["beta_slow"], k["mscale"]) == \
            (rs["factor"], rs["original_max_position_embeddings"], rs["beta_fast"], rs["beta_slow"],
             rs["mscale_all_dim"])
        assert (k["q_lora_rank"] or None, k["kv_lora_rank"], k["qk_nope_head_dim"], k["qk_rope_head_dim"],
                k["v_head_dim"]) == (cfg["q_lora_rank"], cfg["kv_lora_rank"], cfg["qk_nope_head_dim"],
                                     cfg["qk_rope_head_dim"], cfg["v_head_dim"])
    else:
        assert rs is None and k["qk_norm"] == cfg["model_type"].startswith("qwen3")
        assert k["enable_weight_tying"] == cfg.get("tie_word_embeddings", False)
    if "moe_args" in k:
        e = k["moe_args"]
        assert e["score_func"] == cfg.get("scoring_func", "softmax")
        assert e["route_norm"] == (cfg["model_type"] == "mixtral" or cfg.get("norm_topk_prob", False))
        assert close(e["route_scale"], cfg.get("routed_scaling_factor", 1.0))
        assert e["top_k"] == cfg["num_experts_per_tok"]
        aux_free = cfg.get("topk_method") == "noaux_tc"
        assert (e["load_balance_coeff"] is not None) == aux_free
        assert (e["num_expert_groups"], e["num_limited_groups"]) == \
            ((cfg["n_group"], cfg["topk_group"]) if aux_free else (None, None))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_hf_config_export_equals_the_model_card(path):
    """Every key of the exported config.json that the card has holds the card's value (the catalog
    entry is the main model: the card's MTP modules are set on it first)."""
    cfg = card(path)
    out = hf_config.hf_config(catalog.model(path.stem).model_copy(
        update={"mtp_layers": cfg.get("num_nextn_predict_layers", 0)}))
    shared = [k for k in out if k in cfg]
    assert {"model_type", "rope_theta", "rms_norm_eps", "tie_word_embeddings"} <= set(shared)
    assert {k: out[k] for k in shared} == {k: cfg[k] for k in shared}
    assert ("rope_scaling" in out) == bool(cfg.get("rope_scaling"))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_hf_reader_gives_the_catalog_architecture(path):
    """Reading the card gives the catalog entry's architecture keys (rope, norm, biases, router, MLA)."""
    read = ModelSpec.model_validate(model_from_hf(card(path), name=path.stem))
    m = catalog.model(path.stem)
    keys = ("rope_theta", "rope_scaling", "norm_eps", "sliding_window", "qkv_bias", "qk_norm", "tie_embeddings",
            "moe", "mla")
    assert {k: getattr(read, k) for k in keys} == {k: getattr(m, k) for k in keys}


@pytest.mark.parametrize("name", catalog.names("models"))
def test_hf_config_round_trip_for_every_catalog_model(name):
    """config.json written for a catalog model reads back as the same model."""
    m = catalog.model(name)
    if m.attention_chunk:  # Llama 4: no llama4 config.json is written; refused, naming the feature
        with pytest.raises(InputError, match="chunked attention"):
            hf_config.hf_config(m)
        return
    back = ModelSpec.model_validate(model_from_hf(hf_config.hf_config(m), name=name))
    skip = {"name", "source", "notes", "head_dim"}
    assert back.d_head == m.d_head
    assert back.model_dump(exclude=skip) == m.model_dump(exclude=skip)


def test_inline_defaults_are_the_stated_convention():
    m = ModelSpec(layers=2, hidden=256, heads=4, ffn_hidden=512, vocab=1000)
    assert (m.rope_theta, m.norm_eps, m.rope_scaling, m.sliding_window) == (10000.0, 1e-5, None, None)
    args = megatron.parse_args(megatron.architecture_args(m))
    assert args["rotary_base"] == 10000 and float(args["norm_epsilon"]) == 1e-5


def test_frameworks_that_cannot_build_the_model_are_not_searched():
    qwen = catalog.model("qwen2.5-32b")  # q/k/v biases
    assert set(rules.unbuildable(qwen)) == {rules.TT}
    assert rules.unbuildable(catalog.model("llama-3.1-8b")) == {}
    odd = ModelSpec(layers=2, hidden=256, heads=4, ffn_hidden=512, vocab=1000, rope_theta=10000.5)
    assert "rope_theta" in rules.unbuildable(odd)[rules.MEG]


def test_transformers_v5_rope_parameters_are_read():
    """transformers v5 folds rope_theta and rope_scaling into rope_parameters (ecosystem.md 5.1)."""
    cfg = card(HF / "llama-3.1-8b.json")
    v5 = {k: v for k, v in cfg.items() if k not in ("rope_theta", "rope_scaling")}
    v5["rope_parameters"] = {**cfg["rope_scaling"], "rope_theta": cfg["rope_theta"]}
    read = ModelSpec.model_validate(model_from_hf(v5, name="v5"))
    m = catalog.model("llama-3.1-8b")
    assert (read.rope_theta, read.rope_scaling) == (m.rope_theta, m.rope_scaling)
    plain = {**v5, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6}}
    read = ModelSpec.model_validate(model_from_hf(plain, name="v5"))
    assert (read.rope_theta, read.rope_scaling) == (1e6, None)


def test_estimate_says_why_a_framework_cannot_build_the_model():
    from planner.spec import parse_plan

    sc = load_scenario(ROOT / "scenarios" / "32b_16gpu.yaml")  # Qwen2.5: q/k/v biases
    with pytest.raises(InputError, match="torchtitan v0.2.2 cannot build qwen2.5-32b: .*biases"):
        parse_plan("framework=torchtitan,tp=8,zero=3,mbs=1").resolved(sc)
