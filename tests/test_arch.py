"""Parameter counts against the published counts (ecosystem.md 5.3, model cards) and FLOPs."""

import json

import pytest

from planner import catalog
from planner.arch import flops_per_token, matmul_flops_per_token, model_stats
from planner.spec.hf import model_from_hf
from planner.spec.model import ModelSpec

from conftest import HF

# Counts of numel() over the instantiated Hugging Face models (ecosystem.md 5.3) and model cards.
PUBLISHED = {
    "qwen2.5-32b": 32_763_876_352,
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.1-405b": 405_853_388_800,
    "mixtral-8x7b": 46_702_792_704,
    "deepseek-v3": 671_026_404_352,
    "qwen3-30b-a3b": 30_532_122_624,
    "deepseek-v2-lite": 15_706_484_224,
    "llama-2-7b": 6_738_415_616,
    "llama-2-70b": 68_976_648_192,
    "mistral-7b": 7_241_732_096,
    # numel over DeepseekV3ForCausalLM built from Kimi-K2-Base's config.json (model_type kimi_k2); the model card
    # rounds it to 1T; recounted tensor by tensor in test_muon.test_kimi_k2_counts
    "kimi-k2": 1_026_408_209_408,
    # Llama 4: the text model, i.e. the Hugging Face safetensors total less the vision tower and projector
    # (tests/test_llama4_params.py derives both from the published totals and the fixtures' vision_config)
    "llama-4-scout": 108_641_793_536 - 871_932_416,
    "llama-4-maverick": 401_583_781_376 - 871_932_416,
}
# Model cards give rounded figures: (count, relative tolerance).
ROUNDED = {"qwen2.5-7b": (7.61e9, 0.001), "qwen2.5-72b": (72.7e9, 0.001), "qwen3-8b": (8.2e9, 0.005),
           "mixtral-8x22b": (141e9, 0.005), "qwen3-235b-a22b": (235e9, 0.001), "gpt3-175b": (175e9, 0.005)}


@pytest.mark.parametrize("name,count", sorted(PUBLISHED.items()))
def test_catalog_counts_are_exact(name, count):
    assert model_stats(catalog.model(name)).params_total == count


@pytest.mark.parametrize("name,spec", sorted(ROUNDED.items()))
def test_catalog_counts_match_model_cards(name, spec):
    count, tol = spec
    assert model_stats(catalog.model(name)).params_total == pytest.approx(count, rel=tol)


@pytest.mark.parametrize("path", sorted(HF.glob("*.json")), ids=lambda p: p.stem)
def test_hf_config_gives_the_published_count(path):
    """The main model's count (the MTP modules a config.json declares, num_nextn_predict_layers, are
    counted apart: test_mtp.py); the catalog entry is the main model."""
    cfg = json.loads(path.read_text())
    spec = ModelSpec.model_validate(model_from_hf(cfg, name=path.stem))
    st = model_stats(spec)
    assert spec.mtp_layers == cfg.get("num_nextn_predict_layers", 0)
    assert st.params_total - st.components.get("mtp", 0) == PUBLISHED[path.stem]
    assert spec.model_copy(update={"mtp_layers": 0}) == \
        catalog.model(path.stem).model_copy(update={"name": path.stem, "source": None, "notes": None})


def test_active_parameters_of_moe_models():
    # Active = total - routed + routed * k / E (ecosystem.md 5.3): Mixtral about 12.88B,
    # DeepSeek-V3 about 37.5B, Qwen3-30B-A3B about 3.35B.
    assert model_stats(catalog.model("mixtral-8x7b")).params_active == pytest.approx(12.88e9, rel=1e-3)
    assert model_stats(catalog.model("deepseek-v3")).params_active == pytest.approx(37.55e9, rel=1e-3)
    assert model_stats(catalog.model("qwen3-30b-a3b")).params_active == pytest.approx(3.35e9, rel=2e-3)
    dense = model_stats(catalog.model("llama-3.1-8b"))
    assert dense.params_active == dense.params_total


def test_forward_flops_are_two_per_active_matmul_weight():
    m = catalog.model("llama-3.1-8b")
    st = model_stats(m)
    # Every weight except the embedding table is a matmul weight (norms aside, 266K parameters).
    norms = st.components["norms"]
    assert matmul_flops_per_token(m) == 2 * (st.params_total - st.embedding - norms)


def test_attention_flops_convention():
    m = catalog.model("llama-3.1-8b")
    s = 8192
    causal = flops_per_token(m, s, causal=True)
    full = flops_per_token(m, s, causal=False)
    # 2 * s * heads * (d_qk + d_v) per layer, halved under the causal mask.
    assert full["attention_forward"] == 2 * s * 32 * 256 * 32
    assert causal["attention_forward"] * 2 == full["attention_forward"]
    assert causal["training"] == 3 * causal["forward"]


def test_megatron_flops_formula_for_gpt():
    """Narayanan et al. 2021 Eq. 3 without recompute: 72 B s l h^2 (1 + s/(6h) + V/(12 l h)) per
    iteration, i.e. per token 72 l h^2 (1 + s/6h + V/12lh); no causal halving in that paper."""
    m = ModelSpec(name="gpt", layers=24, hidden=2304, heads=24, ffn_hidden=4 * 2304, ffn_act="gelu",
                  vocab=51200, position="learned", max_seq_len=2048, norm="layernorm", tie_embeddings=True)
    s, l, h, V = 2048, 24, 2304, 51200
    paper = 72 * l * h * h * (1 + s / (6 * h) + V / (12 * l * h))
    ours = flops_per_token(m, s, causal=False)["training"]
    assert ours == pytest.approx(paper, rel=1e-9)


def test_mla_attention_parameters():
    """ecosystem.md 5.1 MLA formula for DeepSeek-V3 (q_lora 1536, kv_lora 512, nope 128, rope 64, v 128)."""
    from planner.arch import attention_params

    m = catalog.model("deepseek-v3")
    h, H = 7168, 128
    q = h * 1536 + 1536 + 1536 * H * 192
    kv = h * (512 + 64) + 512 + 512 * H * (128 + 128)
    o = H * 128 * h
    assert attention_params(m) == q + kv + o
