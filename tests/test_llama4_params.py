"""Llama 4 Scout / Maverick: exact parameter counts against the published totals, the MoE-every-k-th-layer key
(moe.layer_step) and chunked attention.

Published totals: the parameter count Hugging Face shows from the safetensors of meta-llama/Llama-4-Scout-17B-16E
(-Instruct): 108,641,793,536; meta-llama/Llama-4-Maverick-17B-128E(-Instruct): 401,583,781,376 (the same figure is
Fireworks' `parameter_count` of llama4-maverick-instruct-basic in its billing export example). Model cards: 17B
active, 109B / 400B total. Both totals hold the vision tower and projector (Llama4ForConditionalGeneration), which the
planner does not model; vision_params counts them from the fixture's vision_config after transformers'
modeling_llama4.py, so that text + vision must equal the published total exactly.
"""

import json

import pytest

from planner import catalog
from planner.arch import attention_flops_per_token, chunk_context, matmul_flops_per_token, model_stats
from planner.spec.hf import model_from_hf
from planner.spec.model import ModelSpec, moe_pattern

from conftest import HF

SAFETENSORS_TOTAL = {"llama-4-scout": 108_641_793_536, "llama-4-maverick": 401_583_781_376}


def vision_params(v: dict, text_hidden: int) -> int:
    """Llama4VisionModel + Llama4MultiModalProjector (transformers modeling_llama4.py): patch embedding (an
    unfold + linear of channels x patch^2 -> hidden, no bias), class embedding, (patches + 1) positional
    embeddings, pre / post LayerNorms (weight and bias), per encoder layer q/k/v/o with biases, fc1 / fc2 with
    biases and two LayerNorms; the pixel-shuffle adapter's MLP (intermediate -> projector_input_dim,
    projector_output_dim -> projector_output_dim, no biases); the projector vision_output_dim -> text hidden
    (multi_modal_projector_bias false)."""
    h, f, c = v["hidden_size"], v["intermediate_size"], v["num_channels"]
    patches = (v["image_size"] // v["patch_size"]) ** 2
    layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h
    tower = c * v["patch_size"] ** 2 * h + h + (patches + 1) * h + 2 * 2 * h + v["num_hidden_layers"] * layer
    adapter = f * v["projector_input_dim"] + v["projector_output_dim"] * v["projector_output_dim"]
    return tower + adapter + v["vision_output_dim"] * text_hidden


@pytest.mark.parametrize("name", sorted(SAFETENSORS_TOTAL))
def test_text_model_plus_vision_tower_is_the_published_total(name):
    cfg = json.loads((HF / f"{name}.json").read_text())
    spec = ModelSpec.model_validate(model_from_hf(cfg, name=name))
    vision = vision_params(cfg["vision_config"], cfg["text_config"]["hidden_size"])
    assert vision == 871_932_416
    assert model_stats(spec).params_total + vision == SAFETENSORS_TOTAL[name]
    assert model_stats(catalog.model(name)).params_total + vision == SAFETENSORS_TOTAL[name]


def test_seventeen_billion_active():
    for name in SAFETENSORS_TOTAL:  # model cards: 17B activated (text model; top-1 expert + shared expert)
        assert model_stats(catalog.model(name)).params_active == pytest.approx(17e9, rel=0.015)


def test_maverick_alternates_dense_and_moe_layers():
    m = catalog.model("llama-4-maverick")
    pat = moe_pattern(m)
    assert pat == [i % 2 == 1 for i in range(48)]  # Llama4TextConfig: moe_layers = range(step - 1, layers, step)
    st = model_stats(m)
    assert (st.dense_layers, st.moe_layers) == (24, 24)
    assert st.dense_mlp_per_layer == 3 * 5120 * 16384  # intermediate_size_mlp
    assert model_stats(catalog.model("llama-4-scout")).dense_layers == 0
    assert m.mtp_moe  # the last layer (47) is MoE


def test_layer_step_with_leading_dense_layers_follows_qwen2_moe():
    base = dict(name="x", layers=8, hidden=64, heads=4, ffn_hidden=128, vocab=100)
    m = ModelSpec.model_validate({**base, "moe": {"experts": 4, "top_k": 1, "expert_ffn_hidden": 32,
                                                  "dense_layers": 2, "layer_step": 3}})
    # Qwen2MoeDecoderLayer: MoE iff not in mlp_only_layers and (layer_idx + 1) % decoder_sparse_step == 0
    assert moe_pattern(m) == [False, False, True, False, False, True, False, False]
    assert model_stats(m).moe_layers == 2 and not m.mtp_moe
    with pytest.raises(ValueError, match="layer_step"):
        ModelSpec.model_validate({**base, "layers": 2, "moe": {"experts": 4, "top_k": 1, "expert_ffn_hidden": 32,
                                                                "layer_step": 3}})


def test_matmul_flops_count_each_layer_kind():
    m = catalog.model("llama-4-maverick")
    h = m.hidden
    attn = 2 * (h * (40 * 128 + 2 * 8 * 128) + 40 * 128 * h)
    dense = 2 * 3 * h * 16384
    moe = 2 * (h * 128 + 3 * h * 8192 * 2)  # router, one routed expert and the shared expert
    assert matmul_flops_per_token(m) == 48 * attn + 24 * dense + 24 * moe + 2 * m.vocab * h


def test_chunked_attention_flops():
    m = catalog.model("llama-4-scout")
    full = m.model_copy(update={"attention_chunk": None, "attention_chunk_layers": None})
    # within one chunk nothing changes
    assert attention_flops_per_token(m, 8192) == attention_flops_per_token(full, 8192)
    # 20,000 tokens: 2 full chunks and 3,616 tokens; the 36 chunked layers attend (2 c^2 + r^2) / (2 s) keys
    assert chunk_context(20000, 8192) == pytest.approx((2 * 8192 ** 2 + 3616 ** 2) / 40000)
    per_key = 2.0 * 40 * 256
    assert attention_flops_per_token(m, 20000) == pytest.approx(per_key * (12 * 10000 + 36 * chunk_context(20000, 8192)))


def test_hf_import_refuses_what_it_cannot_express():
    from planner.errors import InputError

    cfg = json.loads((HF / "llama-4-maverick.json").read_text())
    cfg["text_config"]["moe_layers"] = [0, 5]
    with pytest.raises(InputError, match="moe_layers"):
        model_from_hf(cfg)
    with pytest.raises(InputError, match="text_config"):
        model_from_hf({"model_type": "llama4"})


def _megatron(name, seq):
    from planner import load_scenario
    from planner.frameworks import megatron

    from conftest import ROOT

    base = load_scenario(ROOT / "scenarios" / "70b_64gpu.yaml")
    sc = base.model_copy(update={"model": catalog.model(name),
                                 "training": base.training.model_copy(update={"seq_len": seq})})
    return megatron.parse_args(megatron._model_args(sc))


def test_megatron_renders_the_moe_pattern_and_the_nope_layers():
    a = _megatron("llama-4-maverick", 8192)
    # moe_freq_type evaluates the list: 1 = MoE (Megatron-Core get_moe_layer_freq); odd 0-based layers as in HF
    assert eval(a["moe_layer_freq"]) == [i % 2 for i in range(48)]  # noqa: S307 (our own literal)
    assert a["ffn_hidden_size"] == 16384 and a["moe_ffn_hidden_size"] == 8192
    assert a["moe_shared_expert_intermediate_size"] == 8192 and a["moe_router_score_function"] == "sigmoid"
    assert a["no_rope_freq"] == 4  # every 4th layer NoPE (HF no_rope_layer_interval 4)
    from planner.errors import InputError

    with pytest.raises(InputError, match="high_freq_factor"):  # Scout's llama3 scaling: Megatron fixes 4.0
        _megatron("llama-4-scout", 8192)


def test_exports_refuse_what_they_cannot_build():
    from planner.errors import InputError
    from planner.frameworks import hf_config, rules, torchtitan_model

    with pytest.raises(InputError, match="chunked attention"):  # beyond one chunk Megatron would attend in full
        _megatron("llama-4-scout", 16384)
    m = catalog.model("llama-4-maverick")
    with pytest.raises(InputError, match="layer_step"):
        torchtitan_model.model_args(m)
    with pytest.raises(InputError, match="chunked attention"):
        hf_config.hf_config(m)
    assert rules.MEG not in rules.unbuildable(m, 8192) and rules.MEG in rules.unbuildable(m, 16384)
    # a Qwen2-MoE with MoE on every other layer writes decoder_sparse_step and reads back the same
    q = ModelSpec.model_validate(dict(name="q", layers=4, hidden=64, heads=4, ffn_hidden=128, vocab=100,
                                      qkv_bias=True, moe={"experts": 4, "top_k": 1, "expert_ffn_hidden": 32,
                                                          "shared_experts": 1, "shared_expert_gate": True,
                                                          "layer_step": 2}))
    out = hf_config.hf_config(q)
    assert out["decoder_sparse_step"] == 2
    back = ModelSpec.model_validate(model_from_hf(out, name="q"))
    assert back.moe.layer_step == 2 and model_stats(back).params_total == model_stats(q).params_total


def test_pipeline_ranks_count_the_interleaved_dense_layers():
    """Each rank's dense layers are those of its chunks in the model's pattern (Maverick: the even 0-based
    layers), under the planner's split (rows and lookup table) and a Megatron split alike; the middle rank
    evaluated is the one with the most layers."""
    import numpy as np

    from planner.estimate import table
    from planner.estimate.evaluate import Context, heaviest_middle_rank
    from planner.estimate.memory_terms_stage import stage_layers
    from planner.estimate.pipeline_split import rank_layers
    from planner.spec.model import dense_prefix
    from test_memory import scenario

    ctx = Context(scenario(model="llama-4-maverick", nodes=8))
    pat = moe_pattern(ctx.model)
    assert dense_prefix(ctx.model) == tuple(sum(not x for x in pat[:n]) for n in range(49))
    base = dict(framework="megatron", precision="bf16", dp=1, tp=1, cp=1, ep=1, sp=False, zero=1, offload="none",
                offload_params="none", recompute="none", mbs=1, ga=64)
    for pp, vpp in ((5, 1), (4, 2), (3, 1)):
        t = table.from_plans([dict(base, pp=pp, vpp=vpp)])
        chunks = pp * vpp
        sizes = [48 // chunks + (c < 48 % chunks) for c in range(chunks)]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        for r in range(pp):
            mine = [c for c in range(chunks) if c % pp == r]
            want = sum(sizes[c] - sum(pat[starts[c]:starts[c] + sizes[c]]) for c in mine)
            _, dense, moe = stage_layers(ctx, t, np.array([r]))
            assert float(dense[0]) == want and float(moe[0]) == sum(sizes[c] for c in mine) - want
    lps, dense = rank_layers(("account", True, True), 48, 0, 5, 1, layer_step=2)
    assert list(lps) == [9, 10, 10, 10, 9] and list(dense) == [5, 5, 5, 5, 4]  # layers [0,9) [9,19) ... [39,48)
    t = table.from_plans([dict(base, pp=5, vpp=1), dict(base, pp=3, vpp=1), dict(base, pp=2, vpp=1)])
    assert list(heaviest_middle_rank(ctx, t)) == [1, 1, 0]  # 10, 10, 10, 9, 9 layers: the first middle rank


def test_serving_points_rebuild_the_catalog_models():
    """The Llama 4 points of benchmarks/serving_runs.yaml (TensorRT-LLM performance overview) describe the catalog's
    text models: same MoE pattern, chunked layers and parameter count; MoE columns read with attention DP (the
    points' shared ASSUMED handling, serving_accuracy.moe_attn_dp_assumed)."""
    import sys

    import yaml

    from conftest import ROOT

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from serving_accuracy import point_scenario

    pts = [p for p in yaml.safe_load((ROOT / "benchmarks" / "serving_runs.yaml").read_text()) if "llama4" in p["id"]]
    assert len(pts) == 66
    for p in pts:
        sc, plan, _ = point_scenario(p)
        m = catalog.model("llama-4-scout" if "scout" in p["id"] else "llama-4-maverick")
        assert model_stats(sc.model).params_total == model_stats(m).params_total, p["id"]
        assert (sc.model.moe.layer_step, sc.model.attention_chunk, sc.model.attention_chunk_layers) == \
            (m.moe.layer_step, m.attention_chunk, m.attention_chunk_layers)
        assert ("attn_dp=True" in plan) == (p["parallel"]["tp"] > 1), p["id"]


def test_closed_forms_agree_with_the_pattern():
    """moe_layers, mtp_moe and dense_before are closed forms of moe_pattern (a 2^40-layer spec validates at once)."""
    from planner.spec.model import dense_before

    base = dict(name="x", hidden=64, heads=4, ffn_hidden=128, vocab=100)
    for layers in range(1, 13):
        for d in range(0, layers + 1):
            for k in range(1, 5):
                moe = {"experts": 4, "top_k": 1, "expert_ffn_hidden": 32, "dense_layers": d, "layer_step": k}
                pat = [i >= d and (i + 1) % k == 0 for i in range(layers)]
                if k > 1 and not any(pat):
                    continue
                m = ModelSpec.model_validate({**base, "layers": layers, "moe": moe})
                assert moe_pattern(m) == pat and m.moe_layers == sum(pat) and m.mtp_moe == pat[-1]
                assert [int(dense_before(n, d, k)) for n in range(layers + 1)] == \
                    [n - sum(pat[:n]) for n in range(layers + 1)]
    huge = ModelSpec.model_validate({**base, "layers": 2 ** 40, "moe": {"experts": 4, "top_k": 1,
                                                                         "expert_ffn_hidden": 32, "layer_step": 2}})
    assert huge.moe_layers == 2 ** 39


def test_bad_llama4_keys_are_refused_naming_them():
    from planner.errors import InputError

    cfg = json.loads((HF / "llama-4-scout.json").read_text())
    for key, value in (("moe_layers", 5), ("no_rope_layer_interval", 0), ("no_rope_layers", [1, 0])):
        bad = {**cfg, "text_config": {**cfg["text_config"], key: value}}
        with pytest.raises(InputError) as e:
            model_from_hf(bad)
        assert e.value.key == key
