"""torchtitan v0.2.2 model arguments for a model spec, written as a flavor module.

torchtitan v0.2.2 builds a model from a registered flavor (`[model] name/flavor`); its TOML rejects
keys the JobConfig dataclasses do not have (torchtitan/config/manager.py `_dict_to_dataclass`), so
the architecture cannot go into the TOML. The export writes `torchtitan_flavor.py`, which adds the
flavor "planner" with the exact arguments to the family's flavor table, and the TOML imports it
through `[experimental] custom_import` (torchtitan/train.py imports it before the model is built).

Argument names and defaults: torchtitan v0.2.2 `torchtitan/models/llama3/model/args.py`
(TransformerModelArgs, RoPEScalingArgs), `models/qwen3/model/args.py` (Qwen3ModelArgs),
`models/deepseek_v3/model/args.py` (DeepSeekV3ModelArgs), `models/moe/moe.py` (MoEArgs).
"""

from __future__ import annotations

import math

from planner.errors import InputError

FLAVOR = "planner"
MODULE = "torchtitan_flavor"
# family -> (module holding the flavor table, table name, args class and its module)
FAMILIES = {
    "llama3": ("torchtitan.models.llama3", "llama3_args", "torchtitan.models.llama3.model.args",
               "TransformerModelArgs"),
    "qwen3": ("torchtitan.models.qwen3", "qwen3_args", "torchtitan.models.qwen3.model.args", "Qwen3ModelArgs"),
    "deepseek_v3": ("torchtitan.models.deepseek_v3", "deepseekv3_args", "torchtitan.models.deepseek_v3.model.args",
                    "DeepSeekV3ModelArgs"),
}
# MoEArgs.load_balance_coeff: the aux-free bias update speed, 1e-3 (DeepSeek-V3 report, arXiv:2412.19437,
# Sec. 4.2: gamma 0.001); None turns the bias off.
BIAS_UPDATE_RATE = 1e-3


def family(m) -> str:
    """deepseek_v3 for MLA, qwen3 for q/k norm or experts (its qk_norm flag turns the norm off), else llama3."""
    if m.mla:
        return "deepseek_v3"
    return "qwen3" if m.qk_norm or m.moe else "llama3"


def _problems(m, fam: str) -> list[str]:
    """Features the torchtitan family cannot build."""
    out = []
    if m.ffn_act != "swiglu" or m.norm != "rmsnorm" or m.position != "rope":
        out.append("torchtitan's models use SwiGLU, RMSNorm and RoPE")
    if m.qkv_bias or m.linear_bias:
        out.append("torchtitan's attention has no biases")
    if m.ffn_gate != "silu" or m.swiglu_limit is not None or m.attention_sinks:
        out.append("torchtitan's SwiGLU has no other gate, clamp or attention sinks")
    if m.sliding_window:
        out.append("no sliding-window attention")
    if m.mtp_layers:  # DeepSeekV3ModelArgs (models/deepseek_v3/model/args.py) has no MTP module
        out.append("no multi-token-prediction modules (mtp_layers)")
    if m.tie_embeddings and fam != "qwen3":
        out.append(f"{fam} has no tied embeddings")
    rs = m.rope_scaling
    wanted = {"llama3": "llama3", "deepseek_v3": "yarn", "qwen3": None}[fam]
    if rs is not None and rs.type != wanted:
        out.append(f"{fam} has no {rs.type} rope scaling")
    if rs is not None and rs.type == "yarn" and (rs.mscale or 1.0) != (rs.mscale_all_dim or 1.0):
        out.append("one YaRN mscale only (mscale must equal mscale_all_dim)")
    if fam == "llama3" and m.head_dim and m.head_dim * m.heads != m.hidden:
        out.append("llama3 takes head_dim = dim / n_heads")
    if m.moe:
        e = m.moe
        if e.shared_expert_gate or (e.shared_expert_ffn_hidden and e.shared_expert_ffn_hidden
                                    != e.shared_experts * e.expert_ffn_hidden):
            out.append("shared experts are num_shared_experts x moe_inter_dim, ungated")
        if fam == "qwen3" and e.dense_layers:
            out.append("qwen3 puts experts in every layer")
        if e.layer_step > 1:
            out.append(f"MoE on every {e.layer_step}th layer (moe.layer_step): the families put experts in every "
                       "layer after n_dense_layers")
    if m.attention_chunk:
        out.append("no chunked attention (attention_chunk, Llama 4)")
    return out


def _moe_args(e) -> dict:
    return {"num_experts": e.experts, "num_shared_experts": e.shared_experts, "top_k": e.top_k,
            "score_func": e.scoring, "route_norm": e.norm_topk, "route_scale": e.routed_scale,
            "num_expert_groups": e.groups, "num_limited_groups": e.group_topk, "score_before_experts": False,
            "load_balance_coeff": BIAS_UPDATE_RATE if e.router_bias else None}


def _llama3(m) -> dict:
    """TransformerModelArgs. The FFN width is multiple_of x ceil(int(m x int(8 dim / 3)) / multiple_of)
    (llama3/model/model.py FeedForward): multiple_of = ffn_hidden gives it exactly whenever
    int(8 dim / 3) <= ffn_hidden, else a multiplier brings it under. Without rope scaling the
    factor is 1 (llama3's scaling is always applied; a factor of 1 leaves every frequency alone)."""
    base = int(8 * m.hidden / 3)
    rs = m.rope_scaling
    scaling = ({"scaling_factor": rs.factor, "low_freq_factor": rs.low_freq_factor,
                "high_freq_factor": rs.high_freq_factor,
                "original_max_position_embeddings": rs.original_max_position_embeddings} if rs else
               {"scaling_factor": 1.0})
    return {"dim": m.hidden, "n_layers": m.layers, "n_heads": m.heads, "n_kv_heads": m.n_kv_heads,
            "vocab_size": m.vocab, "multiple_of": m.ffn_hidden,
            "ffn_dim_multiplier": None if base <= m.ffn_hidden else m.ffn_hidden / base,
            "norm_eps": m.norm_eps, "rope_theta": m.rope_theta, "rope_scaling_args": ("RoPEScalingArgs", scaling)}


def _qwen3(m) -> dict:
    out = {"dim": m.hidden, "n_layers": m.layers, "n_heads": m.heads, "n_kv_heads": m.n_kv_heads,
           "vocab_size": m.vocab, "head_dim": m.d_head, "hidden_dim": m.ffn_hidden, "norm_eps": m.norm_eps,
           "rope_theta": m.rope_theta, "qk_norm": m.qk_norm, "enable_weight_tying": m.tie_embeddings,
           "moe_enabled": m.moe is not None}
    if m.moe:
        out.update(moe_inter_dim=m.moe.expert_ffn_hidden, moe_args=("MoEArgs", _moe_args(m.moe)))
    return out


def _deepseek_v3(m) -> dict:
    rs, a = m.rope_scaling, m.mla
    out = {"vocab_size": m.vocab, "dim": m.hidden, "inter_dim": m.ffn_hidden, "n_layers": m.layers,
           "n_heads": m.heads, "norm_eps": m.norm_eps, "q_lora_rank": a.q_lora_rank or 0,
           "kv_lora_rank": a.kv_lora_rank, "qk_nope_head_dim": a.qk_nope_head_dim,
           "qk_rope_head_dim": a.qk_rope_head_dim, "v_head_dim": a.v_head_dim, "rope_theta": m.rope_theta,
           "rope_factor": rs.factor if rs else 1.0}
    if rs:
        out.update(original_seq_len=rs.original_max_position_embeddings, beta_fast=rs.beta_fast or 32,
                   beta_slow=rs.beta_slow or 1, mscale=rs.mscale or 1.0)
    if m.moe:
        out.update(moe_inter_dim=m.moe.expert_ffn_hidden, n_dense_layers=m.moe.dense_layers,
                   moe_args=("MoEArgs", _moe_args(m.moe)))
    else:
        out.update(n_dense_layers=m.layers)
    return out


def model_args(m) -> tuple[str, dict]:
    """(family, keyword arguments of its args class; nested classes as (class name, kwargs)).
    Raises InputError naming what torchtitan cannot build."""
    fam = family(m)
    problems = _problems(m, fam)
    if problems:
        raise InputError(f"torchtitan v0.2.2 cannot build {m.name}: " + "; ".join(problems), key="model")
    return fam, {"llama3": _llama3, "qwen3": _qwen3, "deepseek_v3": _deepseek_v3}[fam](m)


def _py(v) -> str:
    if isinstance(v, tuple):
        return f"{v[0]}(" + ", ".join(f"{k}={_py(x)}" for k, x in v[1].items()) + ")"
    if isinstance(v, float) and not math.isfinite(v):
        raise InputError(f"non-finite model value {v}", key="model")
    return repr(v)


def flavor_module(m) -> str:
    """Python source of torchtitan_flavor.py for model spec `m` (values written with repr)."""
    fam, kwargs = model_args(m)
    table_mod, table, args_mod, cls = FAMILIES[fam]
    nested = sorted({v[0] for v in kwargs.values() if isinstance(v, tuple)})
    lines = [f"# torchtitan v0.2.2 flavor {FLAVOR!r}, written by planner for model {m.name!r}; imported",
             "# through [experimental] custom_import in torchtitan.toml (run from this directory).",
             f"from {table_mod} import {table}",
             f"from {args_mod} import {cls}"]
    if "RoPEScalingArgs" in nested:
        lines.append(f"from {args_mod} import RoPEScalingArgs")
    if "MoEArgs" in nested:
        lines.append("from torchtitan.models.moe import MoEArgs")
    body = ",\n    ".join(f"{k}={_py(v)}" for k, v in kwargs.items())
    lines += ["", f"{table}[{FLAVOR!r}] = {cls}(\n    {body},\n)"]
    return "\n".join(lines) + "\n"
