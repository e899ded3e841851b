"""Model architecture: dense or mixture-of-experts decoder transformer.

The inline keys are the contract of PRODUCT.md (`name, layers, hidden, heads, kv_heads, head_dim,
ffn_hidden, ffn_act, vocab, tie_embeddings, position, norm`, optional `moe`, `mla`). The extra
optional keys (`qkv_bias`, `linear_bias`, `qk_norm`, `max_seq_len`, `dropout`, ...) exist because
exact parameter counts need them (`linear_bias` on an MoE model: the experts' and router's biases too,
as in gpt-oss) (Qwen2 has q/k/v biases, Qwen3 normalises q and k, GPT-2/3 have
learned positions and biases on every linear layer). `max_seq_len` is also the context of a RoPE model
(config.json max_position_embeddings): no count changes, but serving cannot exceed it.

Architecture keys that change no count but that a framework needs to rebuild the same model
(`rope_theta`, `rope_scaling`, `norm_eps`, `sliding_window`, the MoE router's `scoring`,
`norm_topk`, `routed_scale`, `groups`, `group_topk`, `aux_loss_coef`) are carried to every export.
Their defaults for inline models are the common convention: rope_theta 10,000 (RoFormer, Su et al.
2021; Llama 1/2; Megatron --rotary-base and transformers LlamaConfig default), no rope scaling,
norm_eps 1e-5 (Llama 2/3 model cards; Megatron --norm-epsilon default), full attention, and a
Mixtral-style router: softmax over the experts, top-k weights renormalised, scale 1, no groups.
"""

from typing import Literal

from pydantic import Field, StrictBool, model_validator

from planner.spec.base import Count, Name, NonNegCount, NonNegFloat, PosFloat, Strict


class RopeScaling(Strict):
    """Rotary-embedding context extension, as in Hugging Face `rope_scaling`.

    llama3: Llama 3.1 frequency-dependent scaling (factor, low_freq_factor, high_freq_factor,
    original_max_position_embeddings; transformers `_compute_llama3_parameters`).
    yarn: YaRN (Peng et al. 2023, arXiv:2309.00071) with DeepSeek's mscale / mscale_all_dim
    (transformers `_compute_yarn_parameters`, DeepSeek-V2/V3 modeling code).
    linear: position interpolation (Chen et al. 2023, arXiv:2306.15595)."""

    type: Literal["llama3", "yarn", "linear"]
    factor: PosFloat
    original_max_position_embeddings: Count | None = None
    low_freq_factor: PosFloat | None = None
    high_freq_factor: PosFloat | None = None
    beta_fast: PosFloat | None = None
    beta_slow: PosFloat | None = None
    mscale: PosFloat | None = None
    mscale_all_dim: PosFloat | None = None

    @model_validator(mode="after")
    def _check(self):
        need = {"llama3": ("low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
                "yarn": ("original_max_position_embeddings",), "linear": ()}[self.type]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"rope_scaling type {self.type} needs {', '.join(missing)}")
        return self


class MoE(Strict):
    experts: Count
    top_k: Count
    expert_ffn_hidden: Count
    shared_experts: NonNegCount = 0
    shared_expert_ffn_hidden: Count | None = Field(
        None, description="total FFN width of the shared expert(s); default shared_experts * expert_ffn_hidden")
    dense_layers: NonNegCount = Field(0, description="leading layers with a dense FFN (DeepSeek first_k_dense_replace)")
    layer_step: Count = Field(1, description=
        "MoE on every layer_step-th layer, the others dense (FFN width ffn_hidden): 0-based layer i is MoE iff "
        "i >= dense_layers and (i + 1) % layer_step == 0 (HF Llama 4 interleave_moe_layer_step, Qwen2-MoE "
        "decoder_sparse_step; Megatron --moe-layer-freq takes the pattern as a list). 1 = every layer")
    shared_expert_gate: bool = Field(False, description="Qwen2-MoE sigmoid gate on the shared expert (hidden x 1)")
    router_bias: bool = Field(False, description=
        "DeepSeek-V3 e_score_correction_bias (one per expert; a buffer, not a trained parameter)")
    capacity_factor: PosFloat | None = Field(None, description="token capacity per expert; None = dropless")
    scoring: Literal["softmax", "sigmoid"] = Field("softmax", description="router score function (HF scoring_func)")
    norm_topk: bool = Field(True, description=
        "top-k weights renormalised to sum to 1 (HF norm_topk_prob; Mixtral's softmax over the top-k is the same)")
    routed_scale: PosFloat = Field(1.0, description="routed experts' output scale (HF routed_scaling_factor)")
    groups: Count | None = Field(None, description="expert groups for group-limited routing (HF n_group)")
    group_topk: Count | None = Field(None, description="groups a token may use (HF topk_group)")
    aux_loss_coef: NonNegFloat | None = Field(None, description=
        "load-balancing loss coefficient the model was trained with (HF router_aux_loss_coef / aux_loss_alpha)")

    @model_validator(mode="after")
    def _check(self):
        if self.top_k > self.experts:
            raise ValueError(f"top_k ({self.top_k}) cannot exceed experts ({self.experts})")
        if (self.groups is None) != (self.group_topk is None):
            raise ValueError("groups and group_topk go together (group-limited routing)")
        if self.groups is not None and (self.experts % self.groups or self.group_topk > self.groups):
            raise ValueError(f"groups ({self.groups}) must divide experts ({self.experts}) and be >= group_topk "
                             f"({self.group_topk})")
        if self.groups is not None and self.top_k > self.group_topk * (self.experts // self.groups):
            # Megatron-Core group_limited_topk (moe_utils.py) takes top_k experts from the kept groups only
            raise ValueError(f"top_k ({self.top_k}) exceeds the {self.group_topk * (self.experts // self.groups)} "
                             f"experts of the group_topk ({self.group_topk}) groups a token may use "
                             f"(experts / groups = {self.experts // self.groups} each)")
        return self

    @property
    def shared_ffn(self) -> int:
        if self.shared_expert_ffn_hidden is not None:
            return self.shared_expert_ffn_hidden
        return self.shared_experts * self.expert_ffn_hidden


class MLA(Strict):
    """Multi-head latent attention (DeepSeek-V2/V3). q_lora_rank None = plain q projection."""

    q_lora_rank: Count | None = None
    kv_lora_rank: Count
    qk_nope_head_dim: Count
    qk_rope_head_dim: Count
    v_head_dim: Count


def alternating_window_layers(layers: int) -> int:
    """Sliding-window layers when sliding and full attention alternate from a sliding first layer:
    ceil(layers / 2). Megatron-Core is_layer_window_attention (megatron/core/transformer/utils.py):
    1-based layer n is windowed iff n % window_attn_skip_freq != 0, so freq 2 windows layers 1, 3, 5, ...;
    transformers GptOssConfig's default layer_types put sliding_attention on 0-based even layers: the same."""
    return layers - layers // 2


def window_pattern(m) -> list[bool] | None:
    """Per layer (0-based), whether it attends within the sliding window: the spec's
    sliding_window_pattern; else every layer for a window without a count (or a count of all layers),
    alternating from layer 0 for ceil(layers / 2) (alternating_window_layers); no layer without a
    window. None where a count leaves the layers unnamed."""
    if not m.sliding_window:
        return [False] * m.layers
    if m.sliding_window_pattern is not None:
        return list(m.sliding_window_pattern)
    n = m.sliding_window_layers
    if n is None or n == m.layers:
        return [True] * m.layers
    if n == alternating_window_layers(m.layers):
        return [i % 2 == 0 for i in range(m.layers)]
    return None


class ModelSpec(Strict):
    name: Name = "custom"
    layers: Count
    hidden: Count
    heads: Count
    kv_heads: Count | None = None
    head_dim: Count | None = None
    ffn_hidden: Count
    ffn_act: Literal["swiglu", "gelu", "relu"] = "swiglu"
    vocab: Count
    tie_embeddings: bool = False
    position: Literal["rope", "learned"] = "rope"
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    max_seq_len: Count | None = Field(None, description=
        "the model's maximum context in tokens (HF config.json max_position_embeddings; GPT-2 n_positions): the "
        "learned position table's size (position: learned, required), or the context a RoPE model was "
        "published for (through its rope_scaling where that is how it is reached). Serving refuses longer "
        "requests (planner.spec.serving.check_positions); training may exceed it on RoPE (context extension). "
        "None = no known limit, no check")
    qkv_bias: bool = False
    attn_out_bias: bool = Field(False, description=
        "bias on the attention output projection as well as q/k/v (HF attention_bias of Llama, Qwen3, OLMo, "
        "Granite, Gemma: q_proj, k_proj, v_proj and o_proj; give qkv_bias too)")
    linear_bias: bool = Field(False, description="bias on every linear layer (GPT-2/3, NeoX)")
    qk_norm: bool = Field(False, description="per-head RMSNorm of q and k (Qwen3)")
    rope_theta: PosFloat = Field(10000.0, description="rotary base (HF rope_theta); default 10,000 (RoFormer)")
    rope_scaling: RopeScaling | None = Field(None, description="rotary context extension (HF rope_scaling)")
    norm_eps: PosFloat = Field(1e-5, description="RMSNorm/LayerNorm epsilon (HF rms_norm_eps / layer_norm_eps)")
    dropout: bool = Field(False, description="dropout layers present (GPT-3 era); adds their masks to activations")
    attention_sinks: bool = Field(False, description=
        "a learned softmax offset per head (gpt-oss `sinks`; Megatron-Core softmax_type 'learnable')")
    ffn_gate: Literal["silu", "gelu", "gpt_oss"] = Field("silu", description=
        "gate of a gated (swiglu) MLP: silu = SwiGLU silu(gate) * up; gelu = GeGLU gelu(gate) * up (Gemma: "
        "transformers GemmaMLP, gelu_pytorch_tanh); gpt_oss = gate * sigmoid(1.702 gate) * "
        "(up + 1) (transformers GptOssExperts, alpha 1.702 and the +1 written in the modeling code, not in "
        "config.json; Megatron-Core quick_gelu with glu_linear_offset 1.0)")
    swiglu_limit: PosFloat | None = Field(None, description=
        "clamp of the gated activation's inputs (HF gpt_oss swiglu_limit 7.0: gate clamped above, linear "
        "half to +-limit; Megatron-Core activation_func_clamp_value); None = no clamp")
    sliding_window: Count | None = Field(None, description="tokens a sliding-window attention layer attends "
                                          "to (and keeps in its KV cache); None = full attention")
    sliding_window_layers: Count | None = Field(None, description="how many layers use the window (gpt-oss: "
                                                 "every other layer); default all layers when a window is given")
    mtp_layers: NonNegCount = Field(0, description=
        "multi-token-prediction modules trained with the model (DeepSeek-V3: 1; HF num_nextn_predict_layers; "
        "Megatron --mtp-num-layers). Each: two RMSNorms, a 2h -> h projection, one transformer layer of the "
        "decoder's last kind and its own final norm; embedding and output head shared with the model "
        "(Megatron-Core multi_token_prediction.py). 0 = none")
    sliding_window_pattern: list[StrictBool] | None = Field(None, description=
        "per layer, true where it attends within sliding_window (HF config.json layer_types: "
        "'sliding_attention'); default: implied by sliding_window_layers (all layers, or alternating from a "
        "sliding layer 0 when ceil(layers / 2)); sliding_window_layers is then its count")
    attention_chunk: Count | None = Field(None, description=
        "chunked local attention (HF Llama 4 attention_chunk_size): a query attends only to the keys of its own "
        "chunk of this many tokens (positions c*chunk .. (c+1)*chunk - 1). None = full attention")
    attention_chunk_layers: Count | None = Field(None, description=
        "how many layers attend in chunks (Llama 4: the layers with RoPE, HF no_rope_layers = 1; every 4th layer "
        "is a NoPE global layer); default all layers when attention_chunk is given")
    moe: MoE | None = None
    mla: MLA | None = None
    source: str | None = None
    notes: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _count_pattern(cls, data):
        """sliding_window_layers defaults to the pattern's count of windowed layers."""
        if isinstance(data, dict) and isinstance(data.get("sliding_window_pattern"), list) \
                and data.get("sliding_window_layers") is None and any(x is True for x in data["sliding_window_pattern"]):
            data = {**data, "sliding_window_layers": sum(1 for x in data["sliding_window_pattern"] if x is True)}
        return data

    @model_validator(mode="after")
    def _check(self):
        kv = self.kv_heads or self.heads
        if self.heads % kv:
            raise ValueError(f"kv_heads: heads ({self.heads}) must be a multiple of kv_heads ({kv})")
        if self.head_dim is None and self.mla is None and self.hidden % self.heads:
            raise ValueError(f"heads: hidden ({self.hidden}) is not divisible by heads ({self.heads}); give head_dim")
        if self.moe and self.moe.dense_layers > self.layers:
            raise ValueError(f"moe.dense_layers: moe.dense_layers ({self.moe.dense_layers}) exceeds layers ({self.layers})")
        if self.moe and self.moe.layer_step > 1 and not self.moe_layers:
            raise ValueError(f"moe.layer_step: moe.layer_step ({self.moe.layer_step}) leaves no MoE layer among the "
                             f"{self.layers} layers")
        if self.attention_chunk_layers is not None and not self.attention_chunk:
            raise ValueError("attention_chunk_layers needs attention_chunk (tokens per chunk)")
        if self.attention_chunk_layers is not None and self.attention_chunk_layers > self.layers:
            raise ValueError(f"attention_chunk_layers ({self.attention_chunk_layers}) exceeds layers ({self.layers})")
        if self.attention_chunk and self.sliding_window:
            raise ValueError("attention_chunk and sliding_window together are not supported (one local attention "
                             "kind per model)")
        pat = self.sliding_window_pattern
        if pat is not None and len(pat) != self.layers:  # first: the count below is derived from it
            raise ValueError(f"sliding_window_pattern has {len(pat)} entries, expected one per layer ({self.layers})")
        if self.sliding_window_layers is not None and self.sliding_window_layers > self.layers:
            raise ValueError(f"sliding_window_layers ({self.sliding_window_layers}) exceeds layers ({self.layers})")
        if pat is not None:
            if any(pat) and not self.sliding_window:
                raise ValueError("sliding_window_pattern marks windowed layers: give sliding_window (tokens)")
            if self.sliding_window and not any(pat):
                raise ValueError("sliding_window_pattern marks no windowed layer: mark them, or drop sliding_window")
            if any(pat) and self.sliding_window_layers != sum(pat):
                raise ValueError(f"sliding_window_layers ({self.sliding_window_layers}) is not the pattern's count "
                                 f"of windowed layers ({sum(pat)})")
        if self.attn_out_bias and not (self.qkv_bias or self.linear_bias):
            raise ValueError("attn_out_bias needs qkv_bias (HF attention_bias puts a bias on q, k, v and o)")
        if self.swiglu_limit is not None and self.ffn_act != "swiglu":
            raise ValueError("swiglu_limit needs ffn_act: swiglu (it clamps the gated activation)")
        if self.ffn_gate != "silu" and self.ffn_act != "swiglu":
            raise ValueError(f"ffn_gate {self.ffn_gate} needs ffn_act: swiglu (a gated MLP)")
        if self.position == "learned" and self.max_seq_len is None:
            raise ValueError("position: learned needs max_seq_len (size of the position table)")
        if self.position == "learned" and self.rope_scaling is not None:
            raise ValueError("rope_scaling needs position: rope")
        return self

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads or self.heads

    @property
    def d_head(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def moe_layers(self) -> int:
        return self.layers - int(dense_before(self.layers, self.moe.dense_layers, self.moe.layer_step)) \
            if self.moe else 0

    @property
    def mtp_moe(self) -> bool:
        """The MTP modules' transformer layer is the decoder's last layer kind: MoE when the last decoder
        layer is (Megatron-Core get_gpt_mtp_block_spec takes the last layer spec; training.py
        num_floating_point_operations counts MTP layers as MoE when `last_layer_is_moe`)."""
        return self.moe is not None and self.layers > self.moe.dense_layers \
            and self.layers % self.moe.layer_step == 0


def moe_pattern(m) -> list[bool]:
    """Per decoder layer (0-based), whether its FFN is the MoE: layer i is MoE iff i >= moe.dense_layers and
    (i + 1) % moe.layer_step == 0 (transformers Llama4TextConfig: moe_layers = range(step - 1, layers, step);
    Qwen2MoeDecoderLayer: (layer_idx + 1) % decoder_sparse_step == 0 outside mlp_only_layers). All False
    without an MoE."""
    if m.moe is None:
        return [False] * m.layers
    d, k = m.moe.dense_layers, m.moe.layer_step
    return [i >= d and (i + 1) % k == 0 for i in range(m.layers)]


def dense_before(n, dense_layers: int, layer_step: int):
    """Dense-FFN layers among the first n decoder layers (n an int or an integer array) under moe_pattern:
    n less the MoE layers i < n, those i >= dense_layers with (i + 1) % layer_step == 0, i.e. the multiples of
    layer_step in (dense_layers, n]: n // step - dense_layers // step when n > dense_layers. A pipeline chunk of
    layers [a, b) holds dense_before(b) - dense_before(a) of them."""
    import numpy as np

    moe = np.maximum(np.asarray(n) // layer_step - dense_layers // layer_step, 0)
    return np.asarray(n) - moe


def dense_prefix(m) -> tuple[int, ...]:
    """dense_before for n = 0 .. layers (a spec without MoE: every layer dense)."""
    import numpy as np

    n = np.arange(m.layers + 1)
    return tuple(int(x) for x in (dense_before(n, m.moe.dense_layers, m.moe.layer_step) if m.moe else n))
