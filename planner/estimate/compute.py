"""Compute time of one micro-batch on one pipeline stage (vectorised over a plan table).

* Weight matmuls: a roofline per GEMM after the tensor-parallel split,
  max(2MKN / (peak x achievable fraction), bytes moved / HBM bandwidth). The achievable fraction is
  the GPU's measured maximum achievable matmul throughput (MAMF, ml-engineering, see
  catalogs/gpus.yaml `matmul_efficiency`); small per-GPU matrices fall onto the memory roof.
* Attention core (flash attention): FLOPs 2*s*H*(d_qk+d_v) per token and layer, halved for the
  causal mask, at a fraction of peak: FlashAttention-2 reaches 50-73% of A100 peak in forward and
  up to 63% in backward (Dao 2023, arXiv:2307.08691, Sec. 4.1); we take 0.70 and 0.60 of the GPU's
  MAMF fraction (A100: 0.61 / 0.52 of peak).
* Memory-bound operators (norms, residual adds, activation functions, rotary, dropout, MoE
  permutation, loss): bytes read and written per token / (HBM bandwidth x 0.8).
* Backward = 2 x forward for matmuls (input and weight gradients).
"""

from __future__ import annotations

import numpy as np

from planner.arch import attention_dims, layer_matmuls
from planner.estimate.memory import stage_layers

DEFAULT_MAMF = 0.70      # when a GPU has no measured MAMF (assumed)
# End-to-end training does not sustain the best-shape MAMF: clocks drop under long power-limited
# runs, transformer GEMM shapes tile less well than MAMF's best shape, kernels start and stop.
# FITTED, not measured: the one parameter calibrated on shared/calibration/published_runs.yaml (27
# Megatron runs on A100 and H100; benchmarks/accuracy.py). Mean error vs this fraction: 1.00 ->
# 10.6%, 0.96 -> 8.8%, 0.94 -> 8.1%, 0.92 -> 7.4%, 0.90 -> 6.7%, 0.88 -> 6.2% (worst 23% -> 15%).
SUSTAINED_FRACTION = 0.90
HBM_EFFICIENCY = 0.80    # streaming kernels reach about 80-90% of HBM peak (assumed lower end)
ATTN_FWD_OF_MAMF = 0.70  # Dao 2023 (FlashAttention-2), see module docstring
ATTN_BWD_OF_MAMF = 0.60
FLASH_BWD_FLOPS_RATIO = 2.5  # backward / forward FLOPs of flash attention (5 vs 2 matmuls; Dao 2023 Sec. 4.1)


def peaks(gpu, t):
    """(matmul FLOP/s achievable for linear layers, FLOP/s for attention/bf16 work, HBM bytes/s)."""
    def peak(p):
        v = gpu.peak_tflops(p)
        return (v or 0.0) * 1e12

    eff16 = (gpu.matmul_efficiency.bf16 or DEFAULT_MAMF) * SUSTAINED_FRACTION
    eff8 = (gpu.matmul_efficiency.fp8 or gpu.matmul_efficiency.bf16 or DEFAULT_MAMF) * SUSTAINED_FRACTION
    linear = np.array([peak("fp32") * eff16, peak("fp16") * eff16, peak("bf16") * eff16, peak("fp8") * eff8])
    half = np.array([peak("fp32"), peak("fp16"), peak("bf16"), peak("bf16")]) * eff16
    prec = t["precision"]
    return linear[prec], half[prec], gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY, eff16


def gemm_s(m_rows, k, n, flops_per_s, hbm_bytes_s, elem_bytes=2.0):
    """Roofline time of an (m x k) @ (k x n) matmul."""
    flops = 2.0 * m_rows * k * n
    moved = elem_bytes * (m_rows * k + k * n + m_rows * n)
    return np.maximum(flops / np.maximum(flops_per_s, 1.0), moved / hbm_bytes_s)


def layer_matmul_fwd_s(ctx, t, tokens, moe_layer: bool, linear_fps, hbm):
    """Forward time of the weight matmuls of one layer for `tokens` tokens on one GPU."""
    tp = t["tp"]
    total = 0.0
    for mm in layer_matmuls(ctx.model, moe_layer):
        k, n = mm.k, mm.n
        expert = mm.name.startswith("expert")
        split = (t["etp"] if expert else tp) if mm.tp else 1
        if mm.name.endswith("down") or mm.name == "o_proj":
            k = k / split
        else:
            n = n / split
        if expert:
            # Each GPU runs experts/ep local experts, split over etp ranks (expert tensor parallelism).
            # Balanced routing: the tokens * top_k routed rows of the tp ranks' tokens spread over the
            # ep x etp expert ranks, so every GPU sees tokens * top_k * etp / tp rows in all.
            experts_local = ctx.model.moe.experts / t["ep"]
            rows = tokens * mm.per_token * t["etp"] / tp / experts_local
            total = total + experts_local * gemm_s(rows, k, n, linear_fps, hbm)
        else:
            total = total + gemm_s(tokens * mm.per_token, k, n, linear_fps, hbm)
    return total


def attention_fwd_flops(ctx, t, tokens):
    """Causal flash-attention FLOPs on one GPU for `tokens` query tokens of full-length context."""
    d_qk, d_v = attention_dims(ctx.model)
    heads_local = ctx.model.heads / t["tp"]
    return tokens * 2.0 * ctx.seq_len * heads_local * (d_qk + d_v) / 2


def elementwise_bytes_per_token(ctx, t, moe_layer: bool):
    """HBM bytes read + written per token by one layer's memory-bound operators (forward)."""
    m = ctx.model
    h, tp = m.hidden, t["tp"]
    sp_div = np.where(t["sp"], tp, 1)
    residual = (2 * (2 + 2) + 2 * (4 + 2)) * h / sp_div  # 2 norms (r+w), 2 residual adds (2r+w)
    if m.dropout:
        residual = residual + 2 * 5 * h / sp_div
    d_qk, _ = attention_dims(m)
    kv = m.heads if m.mla else m.n_kv_heads
    rope = 2 * 2 * (m.heads + kv) * d_qk / tp
    ffn = m.moe.expert_ffn_hidden if (moe_layer and m.moe) else m.ffn_hidden
    act = (6 if m.ffn_act == "swiglu" else 4) * ffn / tp
    if moe_layer and m.moe:
        act = act * m.moe.top_k + 8 * h * m.moe.top_k + (6 * m.moe.shared_ffn / tp)
    return residual + rope + act


def fp8_cast_bytes_per_token(ctx, t, moe_layer: bool):
    """FP8 (Transformer Engine) quantisation traffic per token and layer in forward: every linear
    layer's input is read in bf16 and written in FP8 (3 bytes per element): QKV and MLP inputs (h each),
    the attention output (heads x d_v / tp) and the down-projection input (ffn / tp, per routed
    copy for experts). Backward casts the output gradients and transposes: counted by the 2x
    backward factor. Zero for other precisions."""
    m = ctx.model
    _, d_v = attention_dims(m)
    tp = t["tp"]
    ffn = m.ffn_hidden
    copies = 1
    if moe_layer and m.moe:
        ffn, copies = m.moe.expert_ffn_hidden, m.moe.top_k
    elems = m.hidden + copies * m.hidden + m.heads * d_v / tp + copies * ffn / tp
    return np.where(t["precision"] == 3, 3.0 * elems, 0.0)


def unfused_attention_s(ctx, t, half_fps, hbm):
    """Forward and backward seconds of one layer's attention without a fused kernel (Megatron before
    FlashAttention): QK^T and AV as batched GEMMs over the full s x s scores (no causal skipping),
    plus the memory-bound scale-mask-softmax (read + write, 2 bytes each) and, with dropout, its
    mask and output (5 bytes) per score; backward: 4 GEMMs and softmax/dropout gradients (6 + 5
    bytes per score)."""
    m = ctx.model
    d_qk, d_v = attention_dims(m)
    s_q = ctx.seq_len / t["cp"]
    s_kv = ctx.seq_len
    batches = t["mbs"] * m.heads / t["tp"]  # independent (sequence, head) pairs on this GPU
    qk = gemm_s(s_q, d_qk, s_kv, half_fps, hbm)
    av = gemm_s(s_q, s_kv, d_v, half_fps, hbm)
    scores = batches * s_q * s_kv
    drop = 5.0 if m.dropout else 0.0
    fwd = batches * (qk + av) + scores * (4.0 + drop) / hbm
    bwd = 2 * batches * (qk + av) + scores * (6.0 + drop) / hbm
    return fwd, bwd


def layer_costs(ctx, t) -> dict:
    """Seconds of one micro-batch through one layer of each kind (and through the output layer),
    which do not depend on the pipeline stage: computed once, then scaled by each stage's layer
    counts in `stage_compute`."""
    linear_fps, half_fps, hbm, _ = peaks(ctx.gpu, t)
    tokens = t["mbs"] * ctx.seq_len / t["cp"]
    out = {}
    for kind, moe_layer in (("dense", False), ("moe", True)):
        if moe_layer and not ctx.model.moe:
            out[f"{kind}_fwd"] = out[f"{kind}_matmul"] = 0.0
            continue
        mm = layer_matmul_fwd_s(ctx, t, tokens, moe_layer, linear_fps, hbm)
        ew = tokens * (elementwise_bytes_per_token(ctx, t, moe_layer)
                       + fp8_cast_bytes_per_token(ctx, t, moe_layer)) / hbm
        out[f"{kind}_fwd"], out[f"{kind}_matmul"] = mm + ew, mm
    if ctx.scenario.runtime.flash_attention:
        # half_fps = peak x MAMF fraction.
        flops = attention_fwd_flops(ctx, t, tokens)
        out["attn_fwd"] = flops / (half_fps * ATTN_FWD_OF_MAMF)
        out["attn_bwd"] = FLASH_BWD_FLOPS_RATIO * flops / (half_fps * ATTN_BWD_OF_MAMF)
    else:
        out["attn_fwd"], out["attn_bwd"] = unfused_attention_s(ctx, t, half_fps, hbm)
    # LM head and loss (bf16 even in FP8 recipes); the embedding lookup is negligible.
    out["head"] = gemm_s(tokens, ctx.model.hidden, ctx.model.vocab / t["tp"], half_fps, hbm) \
        + tokens * 10.0 * ctx.model.vocab / t["tp"] / hbm  # loss: bf16 logits read, fp32 written and read (2+4+4 B)
    return out


def stage_compute(t, unit: dict, dense, moe, stage: str) -> dict:
    """Forward, backward and recompute seconds of one micro-batch on a stage holding `dense` and
    `moe` layers (the output layer on the last stage, or on the only one)."""
    fwd = dense * unit["dense_fwd"] + moe * unit["moe_fwd"]
    lps = dense + moe
    attn_fwd, attn_bwd = lps * unit["attn_fwd"], lps * unit["attn_bwd"]
    head = np.where((t["pp"] == 1) | (stage == "last"), unit["head"], 0.0)
    rc = t["recompute"]
    return {"forward": fwd + attn_fwd + head, "backward": 2 * (fwd + head) + attn_bwd,
            "recompute": np.where(rc == 2, fwd + attn_fwd, np.where(rc == 1, attn_fwd, 0.0)),
            "attention_fwd": attn_fwd,
            "layer_matmul_fwd": dense * unit["dense_matmul"] + moe * unit["moe_matmul"]}


def microbatch_compute(ctx, t, stage: str) -> dict:
    """Forward, backward and recompute seconds of one micro-batch on the 'first' or 'last' stage."""
    _, dense, moe = stage_layers(ctx, t, stage)
    return stage_compute(t, layer_costs(ctx, t), dense, moe, stage)
