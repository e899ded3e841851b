"""Model architecture: dense or mixture-of-experts decoder transformer.

The inline keys are the contract of PRODUCT.md (`name, layers, hidden, heads, kv_heads, head_dim,
ffn_hidden, ffn_act, vocab, tie_embeddings, position, norm`, optional `moe`, `mla`). The extra
optional keys (`qkv_bias`, `linear_bias`, `qk_norm`, `max_seq_len`, `dropout`, ...) exist because
exact parameter counts need them (Qwen2 has q/k/v biases, Qwen3 normalises q and k, GPT-2/3 have
learned positions and biases on every linear layer).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from planner.spec.base import Name, NonNegInt, PosFloat, PosInt, Strict


class MoE(Strict):
    experts: PosInt
    top_k: PosInt
    expert_ffn_hidden: PosInt
    shared_experts: NonNegInt = 0
    shared_expert_ffn_hidden: PosInt | None = Field(
        None, description="total FFN width of the shared expert(s); default shared_experts * expert_ffn_hidden")
    dense_layers: NonNegInt = Field(0, description="leading layers with a dense FFN (DeepSeek first_k_dense_replace)")
    shared_expert_gate: bool = Field(False, description="Qwen2-MoE sigmoid gate on the shared expert (hidden x 1)")
    router_bias: bool = Field(False, description=
        "DeepSeek-V3 e_score_correction_bias (one per expert; a buffer, not a trained parameter)")
    capacity_factor: PosFloat | None = Field(None, description="token capacity per expert; None = dropless")

    @model_validator(mode="after")
    def _check(self):
        if self.top_k > self.experts:
            raise ValueError(f"top_k ({self.top_k}) cannot exceed experts ({self.experts})")
        return self

    @property
    def shared_ffn(self) -> int:
        if self.shared_expert_ffn_hidden is not None:
            return self.shared_expert_ffn_hidden
        return self.shared_experts * self.expert_ffn_hidden


class MLA(Strict):
    """Multi-head latent attention (DeepSeek-V2/V3). q_lora_rank None = plain q projection."""

    q_lora_rank: PosInt | None = None
    kv_lora_rank: PosInt
    qk_nope_head_dim: PosInt
    qk_rope_head_dim: PosInt
    v_head_dim: PosInt


class ModelSpec(Strict):
    name: Name = "custom"
    layers: PosInt
    hidden: PosInt
    heads: PosInt
    kv_heads: PosInt | None = None
    head_dim: PosInt | None = None
    ffn_hidden: PosInt
    ffn_act: Literal["swiglu", "gelu", "relu"] = "swiglu"
    vocab: PosInt
    tie_embeddings: bool = False
    position: Literal["rope", "learned"] = "rope"
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    max_seq_len: PosInt | None = Field(None, description="learned position table size (position: learned)")
    qkv_bias: bool = False
    linear_bias: bool = Field(False, description="bias on every linear layer (GPT-2/3, NeoX)")
    qk_norm: bool = Field(False, description="per-head RMSNorm of q and k (Qwen3)")
    dropout: bool = Field(False, description="dropout layers present (GPT-3 era); adds their masks to activations")
    sliding_window: PosInt | None = Field(None, description="tokens a sliding-window attention layer attends "
                                          "to (and keeps in its KV cache); None = full attention")
    sliding_window_layers: PosInt | None = Field(None, description="how many layers use the window (gpt-oss: "
                                                 "every other layer); default all layers when a window is given")
    moe: MoE | None = None
    mla: MLA | None = None
    source: str | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _check(self):
        kv = self.kv_heads or self.heads
        if self.heads % kv:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({kv})")
        if self.head_dim is None and self.mla is None and self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) is not divisible by heads ({self.heads}); give head_dim")
        if self.moe and self.moe.dense_layers > self.layers:
            raise ValueError(f"moe.dense_layers ({self.moe.dense_layers}) exceeds layers ({self.layers})")
        if self.sliding_window_layers is not None and self.sliding_window_layers > self.layers:
            raise ValueError(f"sliding_window_layers ({self.sliding_window_layers}) exceeds layers ({self.layers})")
        if self.position == "learned" and self.max_seq_len is None:
            raise ValueError("position: learned needs max_seq_len (size of the position table)")
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
        return self.layers - self.moe.dense_layers if self.moe else 0
