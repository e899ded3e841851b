"""Exact model math: parameter counts (total, active, by component), FLOPs per token, and the
matrix shapes of one layer.

Counts follow the Hugging Face modeling code of each family (checked against `numel()` of the
instantiated models, `shared/reference/ecosystem.md` section 5.3). MLA formulas: ecosystem.md 5.1.

FLOPs convention: a matmul of (m x k) by (k x n) costs 2mkn. Per token, the forward pass costs
2 x (active matmul parameters, including the output projection and excluding the embedding
lookup) plus attention scores and context: 2 * s * heads * (d_qk + d_v) for full attention. With
`causal=True` (our default: it is the work flash-attention really does) that attention term is
halved; a sliding-window layer attends min(position, w) keys (window_context). Training = 3 x
forward (backward = 2 x forward, Kaplan et al. 2020; Narayanan et al. 2021).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.spec.model import ModelSpec


@dataclass(frozen=True)
class Matmul:
    """One weight matmul of a layer: tokens x k @ k x n, applied `per_token` times per token
    (top_k for routed experts). `tp` says whether tensor parallelism splits it."""

    name: str
    k: int
    n: int
    per_token: float = 1.0
    tp: bool = True


@dataclass(frozen=True)
class ModelStats:
    """Parameter counts by component (all exact integers) and FLOPs per token."""

    name: str
    embedding: int
    lm_head: int
    final_norm: int
    attention_per_layer: int
    norms_per_layer: int
    dense_mlp_per_layer: int
    router_per_moe_layer: int
    routed_experts_per_moe_layer: int
    shared_experts_per_moe_layer: int
    dense_layers: int
    moe_layers: int
    top_k: int = 0
    experts: int = 0
    components: dict = field(default_factory=dict)
    mtp_layers: int = 0
    mtp_moe: bool = False
    mtp_extra_per_layer: int = 0

    @property
    def params_total(self) -> int:
        return sum(self.components.values())

    @property
    def routed_total(self) -> int:
        """Routed-expert parameters of the decoder's MoE layers and of the MTP modules' MoE layers."""
        return self.routed_experts_per_moe_layer * (self.moe_layers + self.mtp_layers * self.mtp_moe)

    @property
    def params_active(self) -> int:
        """Total minus the routed experts a token does not use: total - routed + routed * k / E."""
        if not self.experts:
            return self.params_total
        return self.params_total - self.routed_total + self.routed_total * self.top_k // self.experts

    @property
    def params_non_expert(self) -> int:
        return self.params_total - self.routed_total


def attention_params(m: ModelSpec) -> int:
    h, H = m.hidden, m.heads
    if m.mla:
        a = m.mla
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        if a.q_lora_rank:
            q = h * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * H * qk  # q_a_proj, q_a_layernorm, q_b_proj
        else:
            q = h * H * qk
        kv = h * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank \
            + a.kv_lora_rank * H * (a.qk_nope_head_dim + a.v_head_dim)
        return q + kv + H * a.v_head_dim * h
    d, kv_h = m.d_head, m.n_kv_heads
    qkv_out = H * d + 2 * kv_h * d
    params = h * qkv_out + H * d * h
    if m.qkv_bias or m.linear_bias:
        params += qkv_out
    if m.linear_bias or m.attn_out_bias:
        params += h
    if m.qk_norm:
        params += 2 * d
    if m.attention_sinks:
        params += H
    return params


def norm_params(m: ModelSpec) -> int:
    return m.hidden * (2 if m.norm == "layernorm" else 1)


def mlp_params(m: ModelSpec, ffn: int, bias: bool | None = None) -> int:
    mats = 3 if m.ffn_act == "swiglu" else 2
    p = mats * m.hidden * ffn
    if m.linear_bias if bias is None else bias:
        p += (2 * ffn if m.ffn_act == "swiglu" else ffn) + m.hidden
    return p


def mtp_extra_params(m: ModelSpec) -> int:
    """What one MTP module holds besides its transformer layer: enorm and hnorm (the embedding's and
    the hidden state's norms), eh_proj (2h -> h, no bias) and its own final norm before the shared
    output head: 3 norms + 2h^2 (Megatron-Core MultiTokenPredictionLayer.__init__; DeepSeek-V3
    README_WEIGHTS.md: enorm, hnorm, eh_proj, shared_head.norm)."""
    return 3 * norm_params(m) + 2 * m.hidden * m.hidden


def mtp_checkpoint_params(m: ModelSpec) -> int:
    """Parameters the released checkpoint stores for the MTP modules: each module's own (model_stats
    component 'mtp') plus a copy of the word embedding (embed_tokens) and of the output head
    (shared_head.head) per module. Trained, they are the model's: Megatron-Core and DeepSeek share them
    (README_WEIGHTS.md: "11.5B unique parameters (excluding the shared 0.9B Embedding and 0.9B output
    Head)"); the Hugging Face total of 685B counts the copies."""
    return model_stats(m).components.get("mtp", 0) + m.mtp_layers * (m.vocab * m.hidden * 2)


def model_stats(m: ModelSpec) -> ModelStats:
    h = m.hidden
    emb = m.vocab * h + (m.max_seq_len * h if m.position == "learned" else 0)
    head = 0 if m.tie_embeddings else m.vocab * h
    attn = attention_params(m)
    norms = 2 * norm_params(m)
    dense_mlp = mlp_params(m, m.ffn_hidden)
    router = routed = shared = 0
    dense_layers, moe_layers = m.layers, 0
    if m.moe:
        mo = m.moe
        moe_layers = m.moe_layers  # spec.model.moe_pattern: after the leading dense layers, every layer_step-th
        dense_layers = m.layers - moe_layers
        # DeepSeek-V3's e_score_correction_bias is a buffer, not a parameter; gpt-oss (linear_bias) has
        # a trained router bias and biases on every expert's projections (HF GptOssTopKRouter.bias,
        # GptOssExperts gate_up_proj_bias / down_proj_bias)
        router = mo.experts * h + (mo.experts if m.linear_bias else 0)
        routed = mo.experts * mlp_params(m, mo.expert_ffn_hidden)
        shared = (mlp_params(m, mo.shared_ffn, bias=False) if mo.shared_ffn else 0) \
            + (h if mo.shared_expert_gate else 0)
    components = {
        "embedding": emb,
        "attention": attn * m.layers,
        "norms": norms * m.layers + norm_params(m),
        "dense_mlp": dense_mlp * dense_layers,
        "router": router * moe_layers,
        "routed_experts": routed * moe_layers,
        "shared_experts": shared * moe_layers,
        "lm_head": head,
    }
    mtp_moe = m.mtp_moe
    if m.mtp_layers:
        # one transformer layer of the decoder's last kind per module, plus its norms and eh_proj
        layer = attn + norms + (router + routed + shared if mtp_moe else dense_mlp)
        components["mtp"] = m.mtp_layers * (layer + mtp_extra_params(m))
    return ModelStats(
        name=m.name, embedding=emb, lm_head=head, final_norm=norm_params(m), attention_per_layer=attn,
        norms_per_layer=norms, dense_mlp_per_layer=dense_mlp, router_per_moe_layer=router,
        routed_experts_per_moe_layer=routed, shared_experts_per_moe_layer=shared,
        dense_layers=dense_layers, moe_layers=moe_layers,
        top_k=m.moe.top_k if m.moe else 0, experts=m.moe.experts if m.moe else 0, components=components,
        mtp_layers=m.mtp_layers, mtp_moe=mtp_moe, mtp_extra_per_layer=mtp_extra_params(m) if m.mtp_layers else 0,
    )


def layer_matmuls(m: ModelSpec, moe_layer: bool) -> list[Matmul]:
    """The weight matmuls of one layer with their shapes (before any parallel split)."""
    h, H = m.hidden, m.heads
    mats: list[Matmul] = []
    if m.mla:
        a = m.mla
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        if a.q_lora_rank:
            mats += [Matmul("q_down", h, a.q_lora_rank, tp=False), Matmul("q_up", a.q_lora_rank, H * qk)]
        else:
            mats.append(Matmul("q_proj", h, H * qk))
        mats += [Matmul("kv_down", h, a.kv_lora_rank + a.qk_rope_head_dim, tp=False),
                 Matmul("kv_up", a.kv_lora_rank, H * (a.qk_nope_head_dim + a.v_head_dim)),
                 Matmul("o_proj", H * a.v_head_dim, h)]
    else:
        d = m.d_head
        mats += [Matmul("qkv_proj", h, H * d + 2 * m.n_kv_heads * d), Matmul("o_proj", H * d, h)]
    up = 2 if m.ffn_act == "swiglu" else 1
    if moe_layer and m.moe:
        mo = m.moe
        mats.append(Matmul("router", h, mo.experts, tp=False))
        mats += [Matmul("expert_up", h, up * mo.expert_ffn_hidden, per_token=mo.top_k),
                 Matmul("expert_down", mo.expert_ffn_hidden, h, per_token=mo.top_k)]
        if mo.shared_ffn:
            mats += [Matmul("shared_up", h, up * mo.shared_ffn), Matmul("shared_down", mo.shared_ffn, h)]
    else:
        mats += [Matmul("mlp_up", h, up * m.ffn_hidden), Matmul("mlp_down", m.ffn_hidden, h)]
    return mats


def attention_dims(m: ModelSpec) -> tuple[int, int]:
    """(d_qk, d_v) per head."""
    if m.mla:
        return m.mla.qk_nope_head_dim + m.mla.qk_rope_head_dim, m.mla.v_head_dim
    return m.d_head, m.d_head


def window_layers(m: ModelSpec) -> int:
    """Layers that attend within `sliding_window` (all of them when the spec gives a window and no
    count; none without a window)."""
    if not m.sliding_window:
        return 0
    return m.layers if m.sliding_window_layers is None else m.sliding_window_layers


def window_context(seq_len: int, window: int) -> float:
    """Keys a query attends on average in a causal sliding-window layer of `window` keys (the current
    token included, HF `sliding_window`): query i (0-based) sees min(i + 1, w), whose mean over s
    queries is w - w (w - 1) / (2 s) for w < s (Megatron-Bridge flop_utils.py calculate_swa_context,
    since 2026-03); s / 2 for w >= s, the full causal convention of attention_flops_per_token."""
    if window >= seq_len:
        return seq_len / 2
    return window - window * (window - 1) / (2.0 * seq_len)


def chunk_layers(m: ModelSpec) -> int:
    """Layers that attend within `attention_chunk` (all of them when the spec gives a chunk and no count;
    none without a chunk)."""
    if not m.attention_chunk:
        return 0
    return m.layers if m.attention_chunk_layers is None else m.attention_chunk_layers


def chunk_context(seq_len: int, chunk: int) -> float:
    """Keys a query attends on average in a causal chunked-attention layer (Llama 4 attention_chunk_size:
    a query sees the keys of its own chunk up to itself), in the s / 2 convention of
    attention_flops_per_token: q full chunks and a remainder r (s = q c + r) give
    (q c^2 + r^2) / (2 s), which is s / 2 for s <= c."""
    q, r = divmod(seq_len, chunk)
    return (q * chunk * chunk + r * r) / (2.0 * seq_len)


def attention_flops_per_token(m: ModelSpec, seq_len: int, causal: bool = True) -> float:
    """Forward FLOPs of scores (QK^T) and context (AV) per token, summed over layers (the MTP
    modules' layers included, full attention): 2 * s * H * (d_qk + d_v) per layer, halved under a
    causal mask; a sliding-window layer (causal)
    attends window_context(s, w) keys instead of s / 2, a chunked-attention layer chunk_context(s, c)."""
    d_qk, d_v = attention_dims(m)
    per_key = 2.0 * m.heads * (d_qk + d_v)
    if not causal:
        return per_key * seq_len * (m.layers + m.mtp_layers)
    n_sw = window_layers(m)
    ctx_sw = window_context(seq_len, m.sliding_window) if n_sw else 0.0
    n_ch = chunk_layers(m)
    ctx_ch = chunk_context(seq_len, m.attention_chunk) if n_ch else 0.0
    return per_key * (seq_len / 2 * (m.layers + m.mtp_layers - n_sw - n_ch) + ctx_sw * n_sw + ctx_ch * n_ch)


def mtp_matmul_flops_per_token(m: ModelSpec) -> float:
    """Forward FLOPs per token of the MTP modules' weight matmuls: per module its transformer layer
    (the decoder's last kind), eh_proj (2 x 2h x h) and one more pass through the shared output
    head (2 x vocab x h). Megatron-LM training.py num_floating_point_operations counts the same:
    the MTP layers as decoder layers, `2 * hidden * hidden` for eh_proj and the logits x (mtp + 1)."""
    if not m.mtp_layers:
        return 0.0
    layer = sum(2.0 * x.k * x.n * x.per_token for x in layer_matmuls(m, m.mtp_moe))
    return m.mtp_layers * (layer + 2.0 * 2 * m.hidden * m.hidden + 2.0 * m.vocab * m.hidden)


def matmul_flops_per_token(m: ModelSpec) -> float:
    """Forward FLOPs of the weight matmuls per token (2 per active weight, LM head included; the
    MTP modules' too, mtp_matmul_flops_per_token)."""
    total = 0.0
    for moe_layer, count in ((False, model_stats(m).dense_layers), (True, model_stats(m).moe_layers)):
        if count:
            total += count * sum(2.0 * x.k * x.n * x.per_token for x in layer_matmuls(m, moe_layer))
    return total + 2.0 * m.vocab * m.hidden + mtp_matmul_flops_per_token(m)


def flops_per_token(m: ModelSpec, seq_len: int, causal: bool = True) -> dict:
    attn = attention_flops_per_token(m, seq_len, causal)
    fwd = matmul_flops_per_token(m) + attn
    return {"forward": fwd, "training": 3 * fwd, "attention_forward": attn, "causal": causal}


def summary(m: ModelSpec, seq_len: int = 4096) -> dict:
    """Everything `planner model` reports."""
    st = model_stats(m)
    fl = flops_per_token(m, seq_len)
    return {
        "name": m.name,
        "params_total": st.params_total,
        "params_active": st.params_active,
        "params_non_expert": st.params_non_expert,
        "params_by_component": dict(st.components),
        "flops_per_token": {"seq_len": seq_len, "forward": fl["forward"], "training": fl["training"],
                            "attention_forward": fl["attention_forward"],
                            "convention": "2 FLOPs per multiply-add; causal attention counted as half of "
                                          "2*s*H*(d_qk+d_v) per layer; training = 3 x forward"},
        "layer_shapes": {
            kind: [{"name": x.name, "k": x.k, "n": x.n, "per_token": x.per_token, "tp_split": x.tp}
                   for x in layer_matmuls(m, kind == "moe")]
            for kind in (["dense"] if st.dense_layers else []) + (["moe"] if st.moe_layers else [])
        },
        "architecture": m.model_dump(exclude_none=True, exclude={"source", "notes"}),
    }
