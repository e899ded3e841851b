"""gpt-oss model keys (HF config.json -> spec -> exports) and Megatron-Core's unfused expert epilogue
(clamp of the gated activation, per-expert fc2 bias) in the training time and memory model."""

import pytest

from planner.arch import model_stats
from planner.catalog import model as catalog_model
from planner.estimate import compute, compute_attention, compute_elementwise, compute_moe
from planner.estimate.evaluate import Context
from planner.estimate.memory_terms_activations import layer_activation_bytes
from planner.errors import InputError
from planner.frameworks import hf_config, megatron
from planner.spec.hf import model_from_hf
from planner.spec.model import ModelSpec

from test_memory import raw_table, scenario

GPT_OSS_120B = {  # openai/gpt-oss-120b config.json (architecture keys)
    "model_type": "gpt_oss", "attention_bias": True, "hidden_act": "silu", "head_dim": 64, "hidden_size": 2880,
    "intermediate_size": 2880, "layer_types": ["sliding_attention", "full_attention"] * 18,
    "num_attention_heads": 64, "num_key_value_heads": 8, "num_hidden_layers": 36, "num_local_experts": 128,
    "num_experts_per_tok": 4, "rms_norm_eps": 1e-5, "rope_theta": 150000, "sliding_window": 128,
    "swiglu_limit": 7.0, "tie_word_embeddings": False, "vocab_size": 201088, "output_router_logits": False,
    "router_aux_loss_coef": 0.9, "max_position_embeddings": 131072,
    "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0, "original_max_position_embeddings": 4096,
                     "rope_type": "yarn", "truncate": False},
}


def test_config_json_gives_the_model_cards_parameter_counts():
    """OpenAI's gpt-oss model card: 116.83B parameters, 5.13B active (embedding excluded); 20b:
    20.91B and 3.61B. Biases on attention, router and experts and one sink logit per head count."""
    m = ModelSpec.model_validate(model_from_hf(GPT_OSS_120B, name="gpt-oss-120b"))
    assert (m.swiglu_limit, m.linear_bias, m.attention_sinks) == (7.0, True, True)
    assert (m.sliding_window, m.sliding_window_layers) == (128, 18)
    s = model_stats(m)
    assert round(s.params_total / 1e9, 2) == 116.83
    assert round((s.params_active - s.embedding) / 1e9, 2) == 5.13
    assert m.model_dump(exclude={"name", "source", "notes"}) == \
        catalog_model("gpt-oss-120b").model_dump(exclude={"name", "source", "notes"})
    s20 = model_stats(catalog_model("gpt-oss-20b"))
    assert (round(s20.params_total / 1e9, 2), round((s20.params_active - s20.embedding) / 1e9, 2)) == (20.91, 3.61)


def test_megatron_export_rebuilds_the_gpt_oss_block():
    """Megatron-LM flags of Megatron-Bridge's GPTOSSProvider: alternating window, learnable softmax,
    clamped quick-GEGLU with linear offset 1 instead of --swiglu."""
    m = catalog_model("gpt-oss-120b")
    args = megatron.architecture_args(m)
    for flag in ("--window-size 127,0", "--window-attn-skip-freq 2", "--softmax-type learnable", "--quick-geglu",
                 "--glu-linear-offset 1.0", "--activation-func-clamp-value 7.0"):
        assert flag in args
    shape = megatron._model_args(scenario(model="gpt-oss-120b", nodes=8))
    assert "--swiglu" not in shape and "--disable-bias-linear" not in shape


def test_expert_epilogue_bytes_hand_worked():
    """Per token of a gpt-oss MoE layer (h = f = 2880, top-4), Megatron: clamp (16 + 20) / 3 = 12 and
    fc2 bias (12 + 16) / 3 forward-equivalent bytes per element and routed copy:
    4 x 2880 x (12 + 28 / 3) = 245,760. torchtitan (fused epilogue): 0. Without clamp and biases: 0."""
    m = catalog_model("gpt-oss-120b")
    t = raw_table(framework="megatron", ep=8, dp=8)
    assert compute_moe.expert_epilogue_bytes_per_token(m, t)[0] == pytest.approx(245_760)
    assert compute_moe.expert_epilogue_bytes_per_token(m, raw_table(framework="torchtitan", ep=8, dp=8))[0] == 0
    plain = m.model_copy(update={"swiglu_limit": None, "linear_bias": False})
    assert compute_moe.expert_epilogue_bytes_per_token(plain, t)[0] == 0
    # DeepEP / HybridEP hand the experts fp32 probabilities: the bias loop promotes to fp32,
    # (28 + 40) / 3 bytes per element instead of (12 + 16) / 3: 4 x 2880 x (12 + 68 / 3) = 399,360
    for dispatcher in ("hybridep", "deepep"):
        assert compute_moe.expert_epilogue_bytes_per_token(m, t, dispatcher)[0] == pytest.approx(399_360)
    assert compute_moe.expert_epilogue_bytes_per_token(m, t, "alltoall")[0] == pytest.approx(245_760)
    no_bias = m.model_copy(update={"linear_bias": False})
    assert compute_moe.expert_epilogue_bytes_per_token(no_bias, t, "hybridep")[0] == \
        pytest.approx(compute_moe.expert_epilogue_bytes_per_token(no_bias, t)[0])
    # the per-expert bias loop: 6 kernels per local expert (16 at EP8), none without biases
    assert compute_moe.expert_bias_kernels(m, t)[0] == 96
    assert compute_moe.expert_bias_kernels(plain, t)[0] == 0


def test_clamped_copy_is_kept_unless_moe_act_is_recomputed():
    """The clamped fc1 output (2 x 2f bytes per routed copy) is saved for backward by Megatron's fused
    activation; moe_act recompute drops it with the activation output."""
    def moe_bytes(model, recompute, mods=None):
        extra = {"runtime": {"recompute_modules": mods}} if mods else {}
        sc = scenario(model=model, nodes=8, seq=4096, **extra)
        t = raw_table(ep=8, dp=8, recompute=recompute)
        return layer_activation_bytes(Context(sc), t)["moe"][recompute][0]

    gpt = catalog_model("gpt-oss-120b")
    plain = gpt.model_dump(exclude={"swiglu_limit"})
    tokens, copies, f = 4096, 4, 2880
    assert moe_bytes(gpt.model_dump(), "none") - moe_bytes(plain, "none") == pytest.approx(tokens * copies * 4 * f)
    mods = ["layernorm", "moe_act"]
    assert moe_bytes(gpt.model_dump(), "selective", mods) == pytest.approx(moe_bytes(plain, "selective", mods))


def test_exponentials_bind_attention_at_head_dim_64_on_blackwell_only():
    """Forward attention at d = 64 does 256 FLOPs per score: on B200 (512 BF16 FLOPs per exponential)
    the exponentials allow 2250 / 512 x 256 = 1125 TFLOP/s, below the tensor cores' MAMF rate
    (0.776 x 2250 = 1746), so the forward rate is 0.7 x 1125; at d = 128 (512 per score, 2250) and on
    H100 (256 per exponential: 989 at d = 64, above MAMF) the tensor cores bind as before."""
    from planner.catalog import gpu as catalog_gpu

    b200, h100 = catalog_gpu("b200"), catalog_gpu("h100-sxm-80gb")
    assert compute_attention.exp_bound_fps(b200, 256.0) == pytest.approx(1125e12)
    assert compute_attention.exp_bound_fps(h100, 256.0) == pytest.approx(989e12, rel=0.01)
    sc = scenario(model="gpt-oss-120b", node="dgx-b200", nodes=8)
    t = raw_table(ep=8, dp=8)
    half = 2250e12 * b200.matmul_efficiency.bf16
    fwd, bwd = compute_attention.attention_rates(Context(sc), t, half)
    assert fwd[0] == pytest.approx(0.7 * 1125e12)
    assert bwd[0] == pytest.approx(compute_attention.ATTN_BWD_OF_MAMF * half)  # 640 FLOPs per exponential: tensor cores
    llama = scenario(model="llama-3.1-8b", node="dgx-b200", nodes=1)
    assert compute_attention.attention_rates(Context(llama), t, half)[0][0] == pytest.approx(0.7 * half)
    hopper = scenario(model="gpt-oss-120b", node="dgx-h100", nodes=8)
    h_half = 989e12 * h100.matmul_efficiency.bf16
    assert compute_attention.attention_rates(Context(hopper), t, h_half)[0][0] == pytest.approx(0.7 * h_half)


def test_yarn_with_a_concentration_factor_runs_megatrons_unfused_rope():
    """gpt-oss: YaRN factor 32 without mscale keys -> 0.1 ln 32 + 1 = 1.3466, Megatron-Core falls back
    to its unfused RoPE ((24 + 20) / 3 bytes per q/k element instead of 4); DeepSeek-V3 (mscale =
    mscale_all_dim) and Llama 3.1 (llama3 scaling) keep the fused kernel."""
    import math

    yarn = compute_elementwise.yarn_concentration
    assert yarn(catalog_model("gpt-oss-120b")) == pytest.approx(0.1 * math.log(32) + 1)
    assert yarn(catalog_model("deepseek-v3")) == 1.0
    assert yarn(catalog_model("llama-3.1-8b")) == 1.0
    sc = scenario(model="gpt-oss-120b", nodes=8)
    meg, titan = raw_table(ep=8, dp=8), raw_table(framework="torchtitan", ep=8, dp=8)
    gpt = Context(sc)
    plain = Context(scenario(model={**catalog_model("gpt-oss-120b").model_dump(exclude_none=True),
                                    "rope_scaling": None}, nodes=8))
    delta = compute.elementwise_bytes_per_token(gpt, meg, False) - compute.elementwise_bytes_per_token(plain, meg, False)
    assert delta[0] == pytest.approx((44 / 3 - 4) * (64 + 8) * 64)
    assert compute.elementwise_bytes_per_token(gpt, titan, False)[0] == \
        pytest.approx(compute.elementwise_bytes_per_token(plain, titan, False)[0])


def test_exponential_bound_matches_measured_context_attention():
    """NVIDIA's measured TensorRT-LLM context attention (AIConfigurator extract, 64/8 heads, bf16): on
    B200 at head size 64 the 8k-16k rate (682-770 TFLOP/s) is within 10% of the model's exponential
    bound, while the tensor-core rate alone would be over 40% too fast; at head size 128 and on H200
    the tensor-core rate is within 10% of the 16k measurement."""
    import context_attn_check as CA

    data = CA.rows()
    b64 = CA.measured_rates(data, "b200", 64)
    model, tc = CA.model_rate("b200", 64)
    long = (b64[8192] + b64[16384]) / 2
    assert model == pytest.approx(long, rel=0.10)
    assert tc > 1.4 * long
    assert CA.model_rate("b200", 128)[0] == pytest.approx(CA.measured_rates(data, "b200", 128)[16384], rel=0.10)
    assert CA.model_rate("h200-sxm-141gb", 64)[0] == pytest.approx(
        CA.measured_rates(data, "h200-sxm-141gb", 64)[16384], rel=0.10)


def test_config_without_the_defaulted_keys_reads_as_transformers_builds_it():
    """transformers GptOssConfig fills layer_types (alternating, sliding first), sliding_window 128,
    rms_norm_eps 1e-5, rope theta 150000 and YaRN factor 32 when config.json omits them, and
    GptOssExperts clamps at 7.0 whatever the file says: the same model as the full file."""
    bare = {k: v for k, v in GPT_OSS_120B.items()
            if k not in ("layer_types", "sliding_window", "rms_norm_eps", "rope_theta", "rope_scaling", "swiglu_limit")}
    full = ModelSpec.model_validate(model_from_hf(GPT_OSS_120B, name="x"))
    assert ModelSpec.model_validate(model_from_hf(bare, name="x")) == full


def test_unknown_layer_type_is_bad_input():
    """A layer type other than sliding_attention / full_attention is refused (exit 2), not read as full."""
    from planner.errors import InputError

    with pytest.raises(InputError, match="full_attention") as e:
        model_from_hf({**GPT_OSS_120B, "layer_types": ["sliding_attention", "foo_attention"] * 18})
    assert e.value.key == "layer_types"


def test_router_aux_loss_coef_is_read_as_stated():
    """The stated coefficient is kept whatever output_router_logits says (a Megatron pretraining run
    balances experts only with a coefficient; hf.py _aux_loss_coef), and the HF export writes it back with
    output_router_logits false, as the released files have it."""
    from planner.frameworks import hf_config, megatron
    from planner.spec.hf import model_from_hf
    from planner.spec.model import ModelSpec

    m = ModelSpec.model_validate(model_from_hf(GPT_OSS_120B, name="x"))
    assert m.moe.aux_loss_coef == 0.9 and "--moe-aux-loss-coeff 0.9" in megatron.architecture_args(m)
    mixtral = {"model_type": "mixtral", "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000, "num_local_experts": 8,
               "num_experts_per_tok": 2, "router_aux_loss_coef": 0.02, "output_router_logits": False}
    mx = ModelSpec.model_validate(model_from_hf(mixtral, name="x"))
    assert mx.moe.aux_loss_coef == 0.02
    back = hf_config._aux_loss(mx.moe)
    assert back == {"output_router_logits": False, "router_aux_loss_coef": 0.02}


def test_a_clamped_silu_swiglu_is_not_exported_as_gpt_oss_activation():
    """swiglu_limit alone does not name gpt-oss's gate (DeepSeek-V4 / GLM clamp a SiLU SwiGLU with the
    same key); only ffn_gate gpt_oss gives --quick-geglu --glu-linear-offset 1.0, and a clamped SiLU gate
    is refused rather than relabelled."""
    m = ModelSpec.model_validate(model_from_hf(GPT_OSS_120B, name="x"))
    assert m.ffn_gate == "gpt_oss"
    silu = m.model_copy(update={"ffn_gate": "silu"})
    with pytest.raises(InputError, match="swiglu_limit"):
        megatron.architecture_args(silu)
    from planner.frameworks import rules
    clamped = ModelSpec(layers=2, hidden=256, heads=4, ffn_hidden=512, vocab=1000, swiglu_limit=7.0,
                        moe={"experts": 4, "top_k": 2, "expert_ffn_hidden": 512})
    assert set(rules.unbuildable(clamped)) == {rules.MEG, rules.TT}  # neither relabels it as a plain SwiGLU
    plain = silu.model_copy(update={"swiglu_limit": None})
    args = megatron.architecture_args(plain)
    assert "--quick-geglu" not in args and "--glu-linear-offset 1.0" not in args


@pytest.mark.parametrize("layers", [5, 7])
def test_odd_layer_count_alternates_as_megatron_skip_freq_2(layers):
    """Megatron-Core is_layer_window_attention: 1-based layer n windowed iff n % 2 != 0, i.e. 0-based
    0, 2, ..., ceil(L/2) layers; transformers' default gpt-oss layer_types are the same list."""
    cfg = {k: v for k, v in GPT_OSS_120B.items() if k != "layer_types"}
    cfg["num_hidden_layers"] = layers
    m = ModelSpec.model_validate(model_from_hf(cfg, name="x"))
    assert m.sliding_window_layers == (layers + 1) // 2
    assert "--window-attn-skip-freq 2" in megatron.architecture_args(m)
    out = hf_config.hf_config(m)
    assert out["layer_types"] == ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)]
    floor = m.model_copy(update={"sliding_window_layers": layers // 2})
    with pytest.raises(InputError):
        megatron.architecture_args(floor)


def test_layer_types_in_another_order_keep_their_exact_pattern():
    """Full attention first is not what the count implies (alternating from a windowed layer 0): the
    spec keeps the pattern, and Megatron gets it as a per-layer list, not skip freq 2."""
    types = ["full_attention", "sliding_attention"] * 18
    m = ModelSpec.model_validate(model_from_hf({**GPT_OSS_120B, "layer_types": types}))
    assert m.sliding_window_layers == 18
    assert m.sliding_window_pattern == [i % 2 == 1 for i in range(36)]
    assert "--window-attn-skip-freq [" + ",".join(["0", "1"] * 18) + "]" in megatron.architecture_args(m)
    assert hf_config.hf_config(m)["layer_types"] == types
    with pytest.raises(InputError) as e:
        model_from_hf({**GPT_OSS_120B, "layer_types": ["full_attention"] * 35})
    assert e.value.key == "layer_types"


def test_fp32_probability_dispatchers_run_the_fc2_bias_loop_in_fp32():
    """A gpt-oss MoE layer under HybridEP (fp32 routing probabilities) moves (28 + 40 - 12 - 16) / 3
    more bytes per hidden element and routed copy than under the all-to-all dispatcher; a model without
    linear biases (Qwen3-30B-A3B) moves the same under both."""
    def moe_bytes(model, dispatcher):
        sc = scenario(model=model, nodes=8, runtime={"moe_dispatcher": dispatcher})
        return compute.elementwise_bytes_per_token(Context(sc), raw_table(ep=8, dp=8), True)[0]

    delta = moe_bytes("gpt-oss-120b", "hybridep") - moe_bytes("gpt-oss-120b", "alltoall")
    assert delta == pytest.approx(40 / 3 * 2880 * 4)
    assert moe_bytes("qwen3-30b-a3b", "hybridep") == pytest.approx(moe_bytes("qwen3-30b-a3b", "alltoall"))
