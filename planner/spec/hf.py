"""Hugging Face `config.json` -> inline model mapping (ModelSpec keys).

Families: Llama, Mistral, Qwen2/2.5, Qwen3, Mixtral, Qwen2-MoE, Qwen3-MoE, DeepSeek-V2/V3, GPT-2,
GPT-NeoX, gpt-oss, Llama 4 (`llama4`: the language model of its `text_config`, the vision tower left out). Field names per family follow `shared/reference/ecosystem.md` section 5.1; both the
transformers v4 and v5 spellings are read. DeepSeek-V3's multi-token-prediction modules
(`num_nextn_predict_layers`, 1 in the released file) become `mtp_layers`: transformers does not
instantiate them, but DeepSeek trained with them and Megatron-Bridge's DeepSeek-V3 recipes train them
(mtp_num_layers = 1); `{hf_config: ..., mtp_layers: 0}` in a scenario plans without them.
"""

from __future__ import annotations

from typing import Any

from planner.errors import InputError

# transformers' config-class defaults (configuration_<family>.py, v4.5x) for a file that omits a key.
NORM_EPS_DEFAULT = {"mixtral": 1e-5, "gpt2": 1e-5, "gpt_neox": 1e-5, "gpt_oss": 1e-5,
                    "llama4_text": 1e-5}  # every other family: 1e-6
ROPE_THETA_DEFAULT = {"mixtral": 1e6, "gpt_oss": 150000.0, "llama4_text": 500000.0}  # every other family: 10,000
# transformers Llama4TextConfig (configuration_llama4.py) when the file omits them: intermediate_size_mlp (the dense
# layers' FFN), interleave_moe_layer_step, no_rope_layer_interval (every 4th layer NoPE, the others RoPE + chunked)
LLAMA4_FFN_MLP_DEFAULT, LLAMA4_STEP_DEFAULT, LLAMA4_NOPE_INTERVAL_DEFAULT = 16384, 1, 4
# Qwen2Config / Qwen3Config max_window_layers (configuration_qwen2.py, configuration_qwen3.py): the first
# windowed layer when use_sliding_window is on and the file gives neither max_window_layers nor layer_types
MAX_WINDOW_LAYERS_DEFAULT = 28
# transformers GptOssConfig (configuration_gpt_oss.py) when the file omits them: rope_parameters (YaRN),
# sliding_window, layer_types alternating from a sliding first layer; GptOssExperts clamps at limit = 7.0
GPT_OSS_ROPE_DEFAULT = {"type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                        "original_max_position_embeddings": 4096}
GPT_OSS_WINDOW_DEFAULT, GPT_OSS_SWIGLU_LIMIT_DEFAULT = 128, 7.0

# Families whose config class defaults differ from the others (which default to silu and untied embeddings):
# transformers GemmaConfig (configuration_gemma.py) hidden_act "gelu_pytorch_tanh", overridden by hidden_activation,
# and tie_word_embeddings True (google/gemma-7b's config.json leaves the key out).
GATED_ACT_DEFAULT = {"gemma": "gelu_pytorch_tanh"}
TIED_DEFAULT = {"gemma"}
# head_dim when the file omits it: Qwen3Config head_dim=128, GemmaConfig head_dim=256 (configuration_qwen3.py,
# configuration_gemma.py, v4.5x and v5); every other family's config class takes hidden_size // num_attention_heads
HEAD_DIM_DEFAULT = {"qwen3": 128, "gemma": 256, "llama4_text": 128}
# attention_bias puts a bias on q_proj, k_proj, v_proj and o_proj (modeling_<family>.py); mlp_bias on gate_proj,
# up_proj and down_proj. Mistral's and Mixtral's projections have no bias whatever the file says.
ATTENTION_BIAS = ("llama", "qwen3", "qwen3_moe", "olmo", "granite", "gemma", "llama4_text")
MLP_BIAS = ("llama", "granite")

DENSE = {"llama", "mistral", "qwen2", "qwen3", "gemma", "olmo", "granite", "phi3"}
SUPPORTED = DENSE | {"mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3", "gpt2", "gpt_neox", "gpt_oss",
                     "llama4", "llama4_text"}
# model_type values whose checkpoints transformers builds with another family's class, as their config.json's
# `architectures` says: {model_type: (family read as, architecture)}. Moonshot's Kimi-K2 (model_type kimi_k2)
# ships DeepseekV3ForCausalLM (its config.json auto_map: configuration_deepseek.DeepseekV3Config).
ALIASES = {"kimi_k2": ("deepseek_v3", "DeepseekV3ForCausalLM")}


def _get(cfg: dict, *names: str, default: Any = ..., key: str | None = None):
    for n in names:
        if n in cfg and cfg[n] is not None:
            return cfg[n]
    if default is ...:
        raise InputError(f"missing '{names[0]}' (needed for model_type '{cfg.get('model_type')}')", key=key or names[0])
    return default


def _flag(cfg: dict, name: str, default: bool) -> bool:
    """A config.json boolean: JSON true/false (absent or null: the family default). A string such as
    "false" is refused rather than read as true by Python's truthiness."""
    v = cfg.get(name)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise InputError(f"expected true or false, not {v!r}", key=name)
    return v


def _act(cfg: dict, key: str = "hidden_act") -> str:
    """The config's activation (`key`, the key named in errors) as swiglu / gelu / relu."""
    act = str(_get(cfg, "hidden_act", "activation_function", default="silu")).lower()
    if act in ("silu", "swish", "swiglu"):
        return "swiglu"
    if act.startswith("gelu"):
        return "gelu"
    if act == "relu":
        return "relu"
    raise InputError(f"unsupported activation '{act}' (expected silu, gelu or relu)", key=key)


def _rope_scaling(cfg: dict) -> dict | None:
    """`rope_scaling` (v4) or `rope_parameters` (v5) as RopeScaling keys; None for default RoPE."""
    rs = cfg.get("rope_scaling") or cfg.get("rope_parameters")
    if not rs:
        return None
    if not isinstance(rs, dict):
        raise InputError(f"rope_scaling must be a mapping, not {type(rs).__name__}", key="rope_scaling")
    kind = rs.get("rope_type", rs.get("type"))
    if kind in (None, "default"):
        return None
    if kind not in ("llama3", "yarn", "linear"):
        raise InputError(f"unsupported rope_scaling type {kind!r} (expected llama3, yarn or linear)",
                         key="rope_scaling.rope_type")
    keys = ("factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor", "beta_fast",
            "beta_slow", "mscale", "mscale_all_dim")
    return {"type": kind, **{k: rs[k] for k in keys if rs.get(k) is not None}}


def context_factor(kind: str | None, factor, original) -> float:
    """How many times max_position_embeddings the context is: the rope scaling factor for a scaling that
    names no original length and is not llama3 (a linear interpolation stretching the stated table), else
    1 (llama3 and YaRN configs state the extended length itself: Llama 3.1 131072, DeepSeek-V3 163840 =
    4096 x 40). SGLang get_context_length (python/sglang/srt/utils/hf_transformers_utils.py), the length
    it refuses --context-length beyond (ModelConfig._derive_context_length)."""
    if kind in (None, "llama3") or original is not None or isinstance(factor, bool) \
            or not isinstance(factor, (int, float)):
        return 1
    return factor


def _max_len(cfg: dict, rs: dict | None):
    """The model's context (ModelSpec max_seq_len): max_position_embeddings times context_factor; None
    when the file gives none (no known limit, no check)."""
    n = _get(cfg, "max_position_embeddings", default=None)
    f = context_factor(*(rs.get(k) for k in ("type", "factor", "original_max_position_embeddings"))) if rs else 1
    if f == 1 or isinstance(n, bool) or not isinstance(n, int):
        return n  # a bad value is refused by ModelSpec, naming max_position_embeddings (HF_NAMES)
    return int(n * f)


def _context(cfg: dict, mt: str) -> dict:
    """Rotary base and scaling, norm epsilon, context length and sliding window (ecosystem.md 5.1
    "context" row)."""
    rs = cfg.get("rope_parameters") if isinstance(cfg.get("rope_parameters"), dict) else {}
    out = {"rope_theta": _get(cfg, "rope_theta", "rotary_emb_base", default=rs.get("rope_theta", ROPE_THETA_DEFAULT.get(mt, 10000.0))),
           "rope_scaling": _rope_scaling(cfg),
           "norm_eps": _get(cfg, "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon",
                            default=NORM_EPS_DEFAULT.get(mt, 1e-6))}
    out["max_seq_len"] = _max_len(cfg, out["rope_scaling"])
    if mt in ("mistral", "mixtral"):
        out["sliding_window"] = cfg.get("sliding_window")
    elif _flag(cfg, "use_sliding_window", False) and cfg.get("sliding_window") is not None:
        # Qwen2/Qwen3 (configuration_qwen2.py): without layer_types, layers from max_window_layers on
        # attend within the window; modeling_qwen2 applies it per layer_types
        layers = _get(cfg, "num_hidden_layers", "n_layer", "num_layers")
        first = _get(cfg, "max_window_layers", default=MAX_WINDOW_LAYERS_DEFAULT)
        types = cfg.get("layer_types")
        if types is None and isinstance(layers, int) and isinstance(first, int):
            types = ["sliding_attention" if i >= first else "full_attention" for i in range(layers)]
        window = _window_keys(types, layers)
        if window:
            out["sliding_window"] = _get(cfg, "sliding_window")
            out.update(window)
    return out


def _window_keys(types, layers) -> dict:
    """sliding_window_layers (the count of 'sliding_attention' entries of HF layer_types) and, where the
    layers are not all windowed nor alternating from a windowed layer 0 (what the count implies:
    spec.model.window_pattern), sliding_window_pattern; {} without a windowed layer."""
    if not isinstance(types, list) or any(not isinstance(x, str) for x in types):
        raise InputError(f"expected a list of layer type names, not {types!r}", key="layer_types")
    odd = sorted({x for x in types if x not in ("sliding_attention", "full_attention")})
    if odd:  # transformers' layer_type_validation refuses unknown names
        raise InputError(f"expected sliding_attention or full_attention, not {', '.join(map(repr, odd))}",
                         key="layer_types")
    if isinstance(layers, int) and len(types) != layers:
        raise InputError(f"layer_types has {len(types)} entries for {layers} layers", key="layer_types")
    pattern = [x == "sliding_attention" for x in types]
    if not any(pattern):
        return {}
    out: dict[str, Any] = {"sliding_window_layers": sum(pattern)}
    if not all(pattern) and pattern != [i % 2 == 0 for i in range(len(pattern))]:
        out["sliding_window_pattern"] = pattern
    return out


def _aux_loss_coef(cfg: dict):
    """The load-balancing coefficient the model's authors state (`router_aux_loss_coef`: Mixtral, Qwen2/3-MoE,
    gpt-oss; DeepSeek's `aux_loss_alpha`), as the file states it. transformers applies router_aux_loss_coef
    only when `output_router_logits` is set (a fine-tuning switch, false in the released files); a
    Megatron pretraining run balances its experts only if given a coefficient (--moe-aux-loss-coeff defaults
    to 0), and Megatron-Bridge's Mixtral / Qwen3-MoE providers train with one, so the stated value is kept
    whatever output_router_logits says. (Megatron-Bridge's GPTOSSProvider trains gpt-oss without it: set
    the model's moe.aux_loss_coef to null in a scenario to export the same.)"""
    return _get(cfg, "router_aux_loss_coef", "aux_loss_alpha", default=None)


def _router(cfg: dict, mt: str) -> dict:
    """MoE router keys: score function, top-k renormalisation, routed scale, group-limited routing,
    load-balancing coefficient (HF scoring_func, norm_topk_prob, routed_scaling_factor, n_group /
    topk_group with topk_method group_limited_greedy or noaux_tc, router_aux_loss_coef / aux_loss_alpha).
    Mixtral and gpt-oss take the softmax over their top-k logits (HF GptOssTopKRouter): renormalised
    top-k weights."""
    out = {"scoring": str(cfg.get("scoring_func") or "softmax"),
           "norm_topk": True if mt in ("mixtral", "gpt_oss") else _flag(cfg, "norm_topk_prob", False),
           "routed_scale": cfg.get("routed_scaling_factor") or 1.0}
    coef = _aux_loss_coef(cfg)
    if coef is not None:
        out["aux_loss_coef"] = coef
    groups = cfg.get("n_group") or 1
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise InputError(f"expected a whole number of expert groups, not {groups!r}", key="n_group")
    if cfg.get("topk_method") in ("group_limited_greedy", "noaux_tc") and groups > 1:
        out.update(groups=groups, group_topk=_get(cfg, "topk_group"))
    return out


def model_from_hf(cfg: dict, name: str = "hf-model") -> dict:
    """Map a config.json dict to ModelSpec keys (validated later by the ModelSpec model)."""
    if not isinstance(cfg, dict):
        raise InputError("config.json must hold a JSON object")
    mt = cfg.get("model_type")
    if isinstance(mt, str) and mt in ALIASES and ALIASES[mt][1] in (cfg.get("architectures") or []):
        mt = ALIASES[mt][0]
    if not isinstance(mt, str) or mt not in SUPPORTED:
        raise InputError(f"unsupported model_type {mt!r} (supported: {', '.join(sorted(SUPPORTED))})",
                         key="model_type")
    if mt == "llama4":  # Llama4ForConditionalGeneration: the language model is text_config (module doc)
        text = cfg.get("text_config")
        if not isinstance(text, dict):
            raise InputError("model_type llama4 needs its language model's keys under text_config (a mapping)",
                             key="text_config")
        cfg, mt = {**text, "model_type": "llama4_text"}, "llama4_text"
    if mt == "gpt2":
        h = _get(cfg, "n_embd", "hidden_size")
        return {
            "name": name, "layers": _get(cfg, "n_layer", "num_hidden_layers"), "hidden": h,
            "heads": _get(cfg, "n_head", "num_attention_heads"), "ffn_hidden": _get(cfg, "n_inner", default=4 * h),
            "ffn_act": "gelu", "vocab": _get(cfg, "vocab_size"), "tie_embeddings": True, "position": "learned",
            "max_seq_len": _get(cfg, "n_positions", "max_position_embeddings"), "norm": "layernorm",
            "linear_bias": True, "dropout": float(cfg.get("resid_pdrop", 0) or 0) > 0,
            "norm_eps": _get(cfg, "layer_norm_epsilon", "layer_norm_eps", default=NORM_EPS_DEFAULT[mt]),
        }
    act_key = "hidden_activation" if cfg.get("hidden_activation") else "hidden_act"
    act = _act({**cfg, "hidden_act": cfg.get("hidden_activation") or cfg.get("hidden_act")
                or GATED_ACT_DEFAULT.get(mt, "silu")}, act_key)
    out: dict[str, Any] = {
        "name": name,
        "layers": _get(cfg, "num_hidden_layers"),
        "hidden": _get(cfg, "hidden_size"),
        "heads": _get(cfg, "num_attention_heads"),
        "kv_heads": _get(cfg, "num_key_value_heads", default=None),
        "ffn_hidden": _get(cfg, "intermediate_size"),
        "ffn_act": act,
        "vocab": _get(cfg, "vocab_size"),
        "tie_embeddings": _flag(cfg, "tie_word_embeddings", mt in TIED_DEFAULT),
        "position": "rope",
        "norm": "rmsnorm",
        **_context(cfg, mt),
    }
    if cfg.get("head_dim") is not None:  # 0 or false is an error of the config, not "absent"
        out["head_dim"] = cfg["head_dim"]
    elif mt in HEAD_DIM_DEFAULT:
        out["head_dim"] = HEAD_DIM_DEFAULT[mt]
    if mt == "gpt_neox":
        out.update(norm="layernorm", linear_bias=True, ffn_act=_act(cfg), kv_heads=None)
    elif act == "gelu":  # these families' MLPs are gated whatever the activation: gate_proj, up_proj, down_proj
        out.update(ffn_act="swiglu", ffn_gate="gelu")
    elif act == "relu":
        raise InputError(f"a gated ReLU MLP ({mt} with {act_key} relu) is not supported (gated MLPs take silu or "
                         "gelu)", key=act_key)
    if mt in ("qwen2", "qwen2_moe"):
        out["qkv_bias"] = _flag(cfg, "qkv_bias", True)  # hard-coded in Qwen2 modeling code
    out.update(_biases(cfg, mt))
    if mt in ("qwen3", "qwen3_moe"):
        out["qk_norm"] = True
    if mt == "mixtral":
        out["moe"] = {"experts": _get(cfg, "num_local_experts"), "top_k": _get(cfg, "num_experts_per_tok"),
                      "expert_ffn_hidden": out["ffn_hidden"], **_router(cfg, mt)}
    if mt in ("qwen2_moe", "qwen3_moe"):
        only = cfg.get("mlp_only_layers") or []
        if only:
            raise InputError("mlp_only_layers is not supported yet", key="mlp_only_layers")
        moe = {"experts": _get(cfg, "num_experts", "num_local_experts"), "top_k": _get(cfg, "num_experts_per_tok"),
               "expert_ffn_hidden": _get(cfg, "moe_intermediate_size"),
               "layer_step": cfg.get("decoder_sparse_step", 1) or 1}  # (layer_idx + 1) % step == 0: spec.model
        shared = cfg.get("shared_expert_intermediate_size") or 0
        if mt == "qwen2_moe" and shared:
            moe.update(shared_experts=1, shared_expert_ffn_hidden=shared, shared_expert_gate=True)
        out["moe"] = {**moe, **_router(cfg, mt)}
    if mt == "gpt_oss":
        out.update(_gpt_oss(cfg, out))
    if mt == "llama4_text":
        out.update(_llama4(cfg, out))
    if mt in ("deepseek_v2", "deepseek_v3"):
        freq = cfg.get("moe_layer_freq", 1) or 1
        if freq != 1:
            raise InputError("moe_layer_freq != 1 is not supported yet", key="moe_layer_freq")
        out["kv_heads"] = None
        out["moe"] = {
            "experts": _get(cfg, "n_routed_experts"), "top_k": _get(cfg, "num_experts_per_tok"),
            "expert_ffn_hidden": _get(cfg, "moe_intermediate_size"),
            "shared_experts": cfg.get("n_shared_experts") or 0,
            "dense_layers": cfg.get("first_k_dense_replace") or 0,
            "router_bias": cfg.get("topk_method") == "noaux_tc", **_router(cfg, mt),
        }
        out["mla"] = {"q_lora_rank": cfg.get("q_lora_rank"), "kv_lora_rank": _get(cfg, "kv_lora_rank"),
                      "qk_nope_head_dim": _get(cfg, "qk_nope_head_dim"),
                      "qk_rope_head_dim": _get(cfg, "qk_rope_head_dim"), "v_head_dim": _get(cfg, "v_head_dim")}
        out.pop("head_dim", None)
        out["mtp_layers"] = _nonneg_int(cfg, "num_nextn_predict_layers")
    return out


def _llama4(cfg: dict, out: dict) -> dict:
    """Llama 4's language model (transformers Llama4TextConfig / modeling_llama4.py; meta-llama/Llama-4-Scout-17B-16E
    and Llama-4-Maverick-17B-128E config.json, text_config). MoE on every `interleave_moe_layer_step`-th layer
    (0-based layer i iff (i + 1) % step == 0; Scout 1, Maverick 2) of `num_local_experts` experts of width
    `intermediate_size`, top `num_experts_per_tok`, each MoE layer with one shared expert of the same width
    (Llama4TextMoe.shared_expert) and a bias-free router (hidden x experts) whose top-k logits pass a sigmoid
    (Llama4Router: no renormalisation); the dense layers' MLP is `intermediate_size_mlp` wide. `use_qk_norm` is an
    L2 norm without weights (Llama4TextL2Norm): no parameters, so not qk_norm. Layers with RoPE (no_rope_layers 1,
    by default all but every `no_rope_layer_interval`-th) attend in chunks of `attention_chunk_size` tokens;
    the NoPE layers attend to everything (attention temperature tuning there changes no count). The vision tower
    and projector of Llama4ForConditionalGeneration (vision_config) are not modelled: plans are text-only."""
    layers = out["layers"]
    explicit = cfg.get("moe_layers")
    step = _get(cfg, "interleave_moe_layer_step", default=LLAMA4_STEP_DEFAULT)
    if explicit is not None and not isinstance(explicit, list):
        raise InputError(f"expected a list of layer indices, not {explicit!r}", key="moe_layers")
    if explicit is not None and isinstance(layers, int) and isinstance(step, int) and step > 0 \
            and explicit != list(range(step - 1, layers, step)):
        raise InputError(f"moe_layers {explicit} is not every interleave_moe_layer_step-th layer ({step}); only that "
                         "pattern is supported", key="moe_layers")
    extra: dict[str, Any] = {
        "ffn_hidden": _get(cfg, "intermediate_size_mlp", default=LLAMA4_FFN_MLP_DEFAULT),
        "moe": {"experts": _get(cfg, "num_local_experts"), "top_k": _get(cfg, "num_experts_per_tok"),
                "expert_ffn_hidden": _get(cfg, "intermediate_size"), "shared_experts": 1, "layer_step": step,
                "scoring": "sigmoid", "norm_topk": False, "routed_scale": 1.0},
    }
    coef = _aux_loss_coef(cfg)
    if coef is not None:
        extra["moe"]["aux_loss_coef"] = coef
    chunk = cfg.get("attention_chunk_size")
    if chunk is not None:
        rope = cfg.get("no_rope_layers")
        if not rope:  # Llama4TextConfig: an absent or empty list takes the interval's default
            every = _get(cfg, "no_rope_layer_interval", default=LLAMA4_NOPE_INTERVAL_DEFAULT)
            if isinstance(every, bool) or not isinstance(every, int) or every < 1:
                raise InputError(f"expected a whole number >= 1, not {every!r}", key="no_rope_layer_interval")
            rope = [int((i + 1) % every != 0) for i in range(layers)] if isinstance(layers, int) else []
        if not isinstance(rope, list) or (isinstance(layers, int) and len(rope) != layers):
            raise InputError(f"expected one 0/1 entry per layer ({layers}), not {rope!r}", key="no_rope_layers")
        extra.update(attention_chunk=chunk, attention_chunk_layers=sum(1 for x in rope if x))
    return extra


def _biases(cfg: dict, mt: str) -> dict:
    """ModelSpec bias keys from attention_bias / mlp_bias (ATTENTION_BIAS, MLP_BIAS): both -> a bias on every
    linear layer (linear_bias); attention_bias alone -> q, k, v and o (qkv_bias, attn_out_bias). A bias on the
    MLP alone is not modelled: refused."""
    attn = mt in ATTENTION_BIAS and _flag(cfg, "attention_bias", False)
    mlp = mt in MLP_BIAS and _flag(cfg, "mlp_bias", False)
    if mlp and not attn:
        raise InputError("mlp_bias without attention_bias (biases on the MLP alone) is not supported: the planner "
                         "models biases on every linear layer, or on the attention projections", key="mlp_bias")
    if attn and mlp:
        return {"linear_bias": True}
    return {"qkv_bias": True, "attn_out_bias": True} if attn else {}


def _nonneg_int(cfg: dict, name: str) -> int:
    """A config.json count that may be absent (0) but, when given, is a whole number >= 0."""
    v = cfg.get(name)
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise InputError(f"expected a whole number >= 0, not {v!r}", key=name)
    return v


def _gpt_oss(cfg: dict, out: dict) -> dict:
    """gpt-oss (transformers GptOssConfig; openai/gpt-oss-20b and -120b config.json): every layer an
    MoE of `num_local_experts` experts of width `intermediate_size`, top `num_experts_per_tok`
    (softmax over the top-k logits, HF GptOssTopKRouter: renormalised weights); biases on q/k/v/o,
    the router and the experts (`attention_bias`, modeling_gpt_oss.py); `layer_types` lists which
    layers attend within `sliding_window`; the gated activation's inputs are clamped at
    `swiglu_limit`; each layer has one learned attention-sink logit per head (`sinks`). Keys the file
    omits take GptOssConfig's defaults (GPT_OSS_*_DEFAULT, NORM_EPS_DEFAULT, ROPE_THETA_DEFAULT)."""
    types = cfg.get("layer_types")
    if types is None:  # GptOssConfig: "sliding_attention" on even layers (0, 2, ...), else "full_attention"
        types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(out["layers"])] \
            if isinstance(out["layers"], int) else []
    window = _window_keys(types, out["layers"])
    extra: dict[str, Any] = {
        "moe": {"experts": _get(cfg, "num_local_experts"),
                "top_k": _get(cfg, "num_experts_per_tok", "experts_per_token"),
                "expert_ffn_hidden": out["ffn_hidden"], **_router(cfg, "gpt_oss")},
        "linear_bias": _flag(cfg, "attention_bias", True),
        "attention_sinks": True,  # GptOssAttention.sinks: one learned logit per head, every layer
    }
    # GptOssExperts' activation whatever hidden_act says: gate * sigmoid(1.702 gate) * (up + 1)
    extra["ffn_gate"] = "gpt_oss"
    extra["swiglu_limit"] = _get(cfg, "swiglu_limit", default=GPT_OSS_SWIGLU_LIMIT_DEFAULT)
    if not (cfg.get("rope_scaling") or cfg.get("rope_parameters")):
        extra["rope_scaling"] = dict(GPT_OSS_ROPE_DEFAULT)
    if window:
        extra["sliding_window"] = _get(cfg, "sliding_window") if "sliding_window" in cfg else GPT_OSS_WINDOW_DEFAULT
        extra.update(window)
    return extra


# ModelSpec key -> the config.json keys it is read from (model_from_hf's _get order), so that an error found
# when the mapped model is validated names the key the user wrote (ecosystem.md 5.1 field names).
HF_NAMES = {
    "layers": ("num_hidden_layers", "n_layer", "num_layers"), "hidden": ("hidden_size", "n_embd"),
    "heads": ("num_attention_heads", "n_head"), "kv_heads": ("num_key_value_heads",), "head_dim": ("head_dim",),
    "ffn_hidden": ("intermediate_size_mlp", "intermediate_size", "n_inner"), "vocab": ("vocab_size",),
    "max_seq_len": ("n_positions", "max_position_embeddings"),
    "norm_eps": ("rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon"), "rope_theta": ("rope_theta", "rotary_emb_base"),
    "sliding_window_layers": ("layer_types",), "sliding_window_pattern": ("layer_types",),
    "mtp_layers": ("num_nextn_predict_layers",),
    "moe.experts": ("num_local_experts", "num_experts", "n_routed_experts"),
    "moe.top_k": ("num_experts_per_tok", "experts_per_token"),
    "moe.expert_ffn_hidden": ("moe_intermediate_size", "intermediate_size"),
    "moe.shared_experts": ("n_shared_experts",), "moe.shared_expert_ffn_hidden": ("shared_expert_intermediate_size",),
    "moe.dense_layers": ("first_k_dense_replace",), "moe.groups": ("n_group",), "moe.group_topk": ("topk_group",),
    "moe.layer_step": ("interleave_moe_layer_step", "decoder_sparse_step"),
    "attention_chunk": ("attention_chunk_size",), "attention_chunk_layers": ("no_rope_layers",),
    "moe.routed_scale": ("routed_scaling_factor",), "moe.aux_loss_coef": ("router_aux_loss_coef", "aux_loss_alpha"),
    "moe.scoring": ("scoring_func",),
}


def hf_name(key: str, cfg: dict) -> str:
    """The config.json key a ModelSpec key path was read from: the first of its HF_NAMES present in `cfg`
    (else the first); `mla.x` is HF's `x`, `rope_scaling.x` stays; unmapped keys are returned unchanged."""
    if key.startswith("mla."):
        return key.removeprefix("mla.")
    head = key
    while head not in HF_NAMES and "." in head:
        head = head.rsplit(".", 1)[0]
    names = HF_NAMES.get(head)
    if not names:
        return key
    found = next((n for n in names if n in cfg), names[0])
    return found + key[len(head):]


def hf_message(text: str, cfg: dict, scope: str = "") -> str:
    """A validation message with every ModelSpec key it names replaced by its config.json key; a bare
    name is first read inside `scope` (an error at `moe` names `top_k`: moe.top_k)."""
    import re

    def swap(m) -> str:
        word = m.group(0)
        for key in (f"{scope}.{word}" if scope else None, word):
            if key and (key in HF_NAMES or key.startswith("mla.")):
                return hf_name(key, cfg)
        return word

    return re.sub(r"(?<![\w.])(?:moe\.|mla\.)?[a-z_]+(?![\w.])", swap, text)
