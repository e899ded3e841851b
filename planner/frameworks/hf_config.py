"""Hugging Face `config.json` for a model spec: what a DeepSpeed or Accelerate training script
(`AutoConfig.from_pretrained(dir)` then `AutoModelForCausalLM.from_config`) needs to build the
planned model. The inverse of planner/spec/hf.py; key names per family follow
shared/reference/ecosystem.md section 5.1 (transformers v4 spelling, which v5 still reads).

The family is the one transformers class that has every feature of the model: DeepSeek-V3 (sigmoid
router, aux-free bias) or V2 for MLA, Qwen2-MoE for a gated shared expert, Qwen3-MoE for experts
with q/k norm, gpt-oss for attention sinks and its clamped activation, Mixtral for other experts,
GPT-2 for learned positions, GPT-NeoX for LayerNorm with biases, Qwen3 for q/k norm, Qwen2 for q/k/v
biases only (both with a window on their last layers: max_window_layers), Mistral for a sliding window
on every layer, else Llama.
"""

from __future__ import annotations

from planner.errors import InputError
from planner.spec.hf import GPT_OSS_WINDOW_DEFAULT, context_factor
from planner.spec.model import window_pattern

ARCHITECTURES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
                 "qwen3": "Qwen3ForCausalLM", "mixtral": "MixtralForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM",
                 "qwen3_moe": "Qwen3MoeForCausalLM", "deepseek_v2": "DeepseekV2ForCausalLM",
                 "deepseek_v3": "DeepseekV3ForCausalLM", "gpt2": "GPT2LMHeadModel", "gpt_neox": "GPTNeoXForCausalLM",
                 "gpt_oss": "GptOssForCausalLM", "gemma": "GemmaForCausalLM"}


def family(m) -> str:
    """The transformers model_type that builds this model (module docstring)."""
    if m.mla:
        return "deepseek_v3" if m.moe and (m.moe.router_bias or m.moe.scoring == "sigmoid") else "deepseek_v2"
    if m.moe and (m.attention_sinks or m.ffn_gate == "gpt_oss"):
        return "gpt_oss"  # only transformers' GptOss has attention sinks and its gated activation
    if m.moe:
        if m.moe.shared_expert_gate:
            return "qwen2_moe"
        return "qwen3_moe" if m.qk_norm else "mixtral"
    if m.position == "learned":
        return "gpt2"
    if m.norm == "layernorm":
        return "gpt_neox"
    if m.ffn_gate == "gelu":
        return "gemma"  # transformers' GemmaMLP: the one dense class here gated with GELU
    if m.qk_norm:
        return "qwen3"
    if m.qkv_bias and not (m.linear_bias or m.attn_out_bias):
        return "qwen2"
    return "mistral" if m.sliding_window else "llama"


def _problems(m, mt: str) -> list[str]:
    """Features of the model that the chosen transformers class cannot express."""
    out = []
    if m.attention_chunk:
        out.append(f"{mt} has no chunked attention (attention_chunk: Llama 4, whose llama4 config is not written "
                   "here)")
    if m.moe and m.moe.layer_step > 1 and (mt not in ("qwen2_moe", "qwen3_moe") or m.moe.dense_layers):
        out.append(f"{mt} cannot put MoE on every {m.moe.layer_step}th layer (moe.layer_step; Qwen2/3-MoE's "
                   "decoder_sparse_step can, without leading dense layers)")
    if mt in ("gpt2", "gpt_neox"):
        if m.ffn_act != "gelu":
            out.append(f"{mt} uses a GELU MLP, not {m.ffn_act}")
    elif m.ffn_act != "swiglu" or m.norm != "rmsnorm":
        out.append(f"{mt} uses a SwiGLU MLP with RMSNorm, not {m.ffn_act} with {m.norm}")
    if mt == "gpt2" and not (m.linear_bias and m.tie_embeddings and m.norm == "layernorm"):
        out.append("gpt2 has biases on every linear layer, LayerNorm and tied embeddings")
    if m.moe and mt == "mixtral" and (m.moe.shared_ffn or m.moe.dense_layers or not m.moe.norm_topk
                                      or m.moe.scoring != "softmax" or m.moe.groups or m.moe.routed_scale != 1):
        out.append("mixtral has no shared experts, dense layers or router options besides top-k")
    if m.moe and mt in ("qwen2_moe", "qwen3_moe") and (m.moe.dense_layers or m.moe.scoring != "softmax"
                                                       or m.moe.groups or m.moe.routed_scale != 1):
        out.append(f"{mt} has a softmax router without groups or scale, and experts in every layer")
    if m.qkv_bias and not (m.linear_bias or m.attn_out_bias) and mt not in ("qwen2", "qwen2_moe"):
        out.append(f"{mt} cannot put biases on q/k/v alone")
    if m.attn_out_bias and not m.linear_bias and mt not in ATTENTION_BIAS_FAMILIES:
        out.append(f"{mt} cannot put biases on the attention projections alone (q, k, v, o)")
    if mt == "gpt_oss":
        if not (m.attention_sinks and m.ffn_gate == "gpt_oss" and m.swiglu_limit is not None and m.linear_bias
                and m.moe.norm_topk
                and not (m.moe.shared_ffn or m.moe.dense_layers or m.moe.groups) and m.moe.scoring == "softmax"
                and m.moe.routed_scale == 1):
            out.append("gpt_oss has sinks, the clamped activation, biases and a plain top-k softmax router together")
        if window_pattern(m) is None:
            out.append(f"sliding_window_layers {m.sliding_window_layers} of {m.layers} without a "
                       "sliding_window_pattern: which layers are windowed is not stated")
        return out
    if mt == "gemma" and (m.qk_norm or m.sliding_window or (m.qkv_bias and not m.attn_out_bias)):
        out.append("gemma has no q/k norm, sliding window or q/k/v-only biases")
    if m.attention_sinks or m.swiglu_limit is not None or m.ffn_gate != ("gelu" if mt == "gemma" else "silu"):
        out.append(f"{mt} has no attention sinks, clamped activation or {m.ffn_gate} gate")
    if m.sliding_window and mt not in ("mistral", "mixtral", *WINDOW_FROM_FAMILIES):
        out.append(f"{mt} has no sliding_window here")
    if m.sliding_window and mt in ("mistral", "mixtral") and not all(window_pattern(m) or [False]):
        out.append(f"sliding_window_layers {m.sliding_window_layers} of {m.layers}: {mt}'s config.json puts the "
                   "window on every layer")
    if m.sliding_window and mt in WINDOW_FROM_FAMILIES and _first_window_layer(m) is None:
        out.append(f"sliding_window_layers {m.sliding_window_layers} of {m.layers}: {mt}'s config.json windows "
                   "every layer from max_window_layers on, and these windowed layers are not such a tail")
    return out


# Families whose attention_bias puts a bias on q_proj, k_proj, v_proj and o_proj and nowhere else (transformers
# modeling_llama.py / _qwen3 / _qwen3_moe / _gemma LlamaAttention-style projections; planner/spec/hf.py reads it back)
ATTENTION_BIAS_FAMILIES = ("llama", "qwen3", "qwen3_moe", "gemma")

# Families whose config.json windows the layers i >= max_window_layers under use_sliding_window
# (transformers configuration_qwen2.py / configuration_qwen3.py; planner/spec/hf.py reads it back).
WINDOW_FROM_FAMILIES = ("qwen2", "qwen3")


def _first_window_layer(m) -> int | None:
    """k where the model's windowed layers are exactly layers k..layers-1 (k = layers - windowed count),
    else None."""
    pattern = window_pattern(m)
    if pattern is None:
        return None
    k = m.layers - sum(pattern)
    return k if pattern == [i >= k for i in range(m.layers)] else None


def _rope(m) -> dict:
    out = {"rope_theta": m.rope_theta}
    rs = m.rope_scaling
    if m.max_seq_len is not None:  # the context, back to the table it stretches (planner.spec.hf.context_factor)
        f = context_factor(rs.type, rs.factor, rs.original_max_position_embeddings) if rs else 1
        out["max_position_embeddings"] = round(m.max_seq_len / f)
    if rs is not None:
        out["rope_scaling"] = {("type" if rs.type == "yarn" else "rope_type"): rs.type,
                               **rs.model_dump(exclude={"type"}, exclude_none=True)}
    return out


def _aux_loss(e) -> dict:
    """router_aux_loss_coef as the model states it (planner/spec/hf.py _aux_loss_coef reads it back), with
    output_router_logits false as in the released files (transformers' fine-tuning switch)."""
    if e.aux_loss_coef is None:
        return {"output_router_logits": False}
    return {"output_router_logits": False, "router_aux_loss_coef": e.aux_loss_coef}


def _moe(m, mt: str) -> dict:
    e = m.moe
    out = {"num_experts_per_tok": e.top_k, "norm_topk_prob": e.norm_topk}
    if mt.startswith("deepseek"):
        out.update({} if e.aux_loss_coef is None else {"aux_loss_alpha": e.aux_loss_coef})
    else:
        out.update(_aux_loss(e))
    if mt in ("mixtral", "gpt_oss"):  # both renormalise the top-k weights always (no norm_topk_prob key)
        out["num_local_experts"] = e.experts
        del out["norm_topk_prob"]
    elif mt in ("qwen2_moe", "qwen3_moe"):
        out.update(num_experts=e.experts, moe_intermediate_size=e.expert_ffn_hidden, decoder_sparse_step=e.layer_step,
                   mlp_only_layers=[])  # dense layers between MoE layers take intermediate_size (ffn_hidden)
        if mt == "qwen2_moe":
            out["shared_expert_intermediate_size"] = e.shared_ffn
    else:
        grouped = e.groups is not None
        out.update(n_routed_experts=e.experts, moe_intermediate_size=e.expert_ffn_hidden,
                   n_shared_experts=e.shared_experts, first_k_dense_replace=e.dense_layers, moe_layer_freq=1,
                   scoring_func=e.scoring, routed_scaling_factor=e.routed_scale, n_group=e.groups or 1,
                   topk_group=e.group_topk or 1,
                   topk_method="noaux_tc" if e.router_bias else "group_limited_greedy" if grouped else "greedy",
                   num_nextn_predict_layers=m.mtp_layers)
    return out


def hf_config(m) -> dict:
    """config.json of model spec `m`. Raises InputError when no transformers class builds it."""
    mt = family(m)
    problems = _problems(m, mt)
    if problems:
        raise InputError(f"no Hugging Face model class builds {m.name}: " + "; ".join(problems), key="model")
    if mt == "gpt2":
        return {"architectures": [ARCHITECTURES[mt]], "model_type": mt, "n_layer": m.layers, "n_embd": m.hidden,
                "n_head": m.heads, "n_inner": m.ffn_hidden, "n_positions": m.max_seq_len, "vocab_size": m.vocab,
                "activation_function": "gelu_new", "layer_norm_epsilon": m.norm_eps,
                "tie_word_embeddings": True,  # dropout: GPT2Config's 0.1, or none
                **{k: 0.1 if m.dropout else 0.0 for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}}
    out = {"architectures": [ARCHITECTURES[mt]], "model_type": mt, "num_hidden_layers": m.layers,
           "hidden_size": m.hidden, "num_attention_heads": m.heads, "num_key_value_heads": m.n_kv_heads,
           "intermediate_size": m.ffn_hidden, "vocab_size": m.vocab, "tie_word_embeddings": m.tie_embeddings,
           "hidden_act": {"silu": "silu", "gelu": "gelu_pytorch_tanh"}.get(m.ffn_gate, "silu") if m.ffn_act == "swiglu"
           else "gelu", **_rope(m)}
    if mt == "gpt_neox":
        out.update(layer_norm_eps=m.norm_eps, rotary_emb_base=out.pop("rope_theta"), rotary_pct=1.0,
                   use_parallel_residual=False)
    else:
        out["rms_norm_eps"] = m.norm_eps
    if not m.mla:
        out["head_dim"] = m.d_head
    if mt in ("llama", "mistral", "qwen3", "qwen3_moe", "mixtral", "gpt_oss", "gemma"):
        out["attention_bias"] = m.linear_bias or m.attn_out_bias
    if mt == "llama":
        out["mlp_bias"] = m.linear_bias
    if mt in ("mistral", "mixtral"):
        out["sliding_window"] = m.sliding_window
    if mt in WINDOW_FROM_FAMILIES and m.sliding_window:
        out.update(use_sliding_window=True, sliding_window=m.sliding_window, max_window_layers=_first_window_layer(m))
    if mt == "gpt_oss":
        kinds = ["sliding_attention" if x else "full_attention" for x in window_pattern(m) or [False] * m.layers]
        out.update(swiglu_limit=m.swiglu_limit, layer_types=kinds,
                   sliding_window=m.sliding_window or GPT_OSS_WINDOW_DEFAULT)
    if m.moe:
        out.update(_moe(m, mt))
    if m.mla:
        out.update(q_lora_rank=m.mla.q_lora_rank, kv_lora_rank=m.mla.kv_lora_rank,
                   qk_nope_head_dim=m.mla.qk_nope_head_dim, qk_rope_head_dim=m.mla.qk_rope_head_dim,
                   v_head_dim=m.mla.v_head_dim, attention_bias=False)
    return out
