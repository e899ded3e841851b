"""Attention core time of one layer (vectorised over a plan table).

* Flash attention: FLOPs 2*s*H*(d_qk+d_v) per token and layer, halved for the causal mask (a
  sliding-window layer: the score tiles the kernel visits, `window_work_ratio`), at a fraction of
  peak: FlashAttention-2 reaches 50-73% of A100 peak in forward and up to 63% in backward (Dao 2023,
  arXiv:2307.08691, Sec. 4.1); we take 0.70 and 0.60 of the GPU's MAMF fraction (A100: 0.61 / 0.52
  of peak), bounded by the softmax exponentials' rate (`exp_bound_fps`) and, for FlashAttention-2 on
  Hopper / Blackwell, by its measured fraction of peak (`attention_rates`).
* Without a fused kernel: batched GEMMs over the full score matrix plus the memory-bound softmax
  (`unfused_attention_s`).
"""

from __future__ import annotations

import numpy as np

from planner.arch import attention_dims, chunk_layers, window_layers
from planner.estimate import context_parallel
from planner.estimate import table as T
from planner.estimate.compute_gemm import gemm_s
from planner.estimate.fp8_attention import fp8_attention_scaling
from planner.estimate.table import MEG

ATTN_FWD_OF_MAMF = 0.70  # Dao 2023 (FlashAttention-2), see module docstring
ATTN_BWD_OF_MAMF = 0.60
FLASH_BWD_FLOPS_RATIO = 2.5  # backward / forward FLOPs of flash attention (5 vs 2 matmuls; Dao 2023 Sec. 4.1)


# Flash-attention kernels compute scores in tiles of ATTN_TILE_Q queries x ATTN_TILE_K keys and skip
# only tiles the mask leaves wholly empty (causal and local masks alike): FlashAttention-2 forward at
# head dim 64, 128 x 128 (csrc/flash_attn/src/flash_fwd_launch_template.h run_mha_fwd_hdim64);
# FlashAttention-3 (Hopper) forward with a local mask at head dim 128, 128 x 128, and backward at
# head dim 64, 128 x 128 (hopper/tile_size.h tile_size_fwd_sm90, hopper/flash_bwd_launch_template.h
# run_mha_bwd_hdim64). cuDNN's fused attention (Transformer Engine's default) is closed: assumed the same.
ATTN_TILE_Q = ATTN_TILE_K = 128


def attention_tiles(seq_len: int, window: int | None = None, chunk: int | None = None) -> int:
    """Score tiles a flash-attention kernel computes for one causal (head, sequence): query tile i
    (rows i Bq .. min((i+1) Bq, s) - 1) visits key tiles from the one holding its first visible key
    (0, or i Bq - w + 1 with a window of w keys) to the one holding its last row."""
    rows = np.arange(0, seq_len, ATTN_TILE_Q)
    last = np.minimum(rows + ATTN_TILE_Q, seq_len) - 1
    first = np.zeros_like(rows) if window is None else np.maximum(rows - window + 1, 0)
    if chunk is not None:  # chunked attention (Llama 4): from the start of the first row's chunk
        first = (rows // chunk) * chunk
    return int(np.sum(last // ATTN_TILE_K - first // ATTN_TILE_K + 1))


def window_work_ratio(m, seq_len: int) -> float:
    """Kernel work of the model's attention layers relative to all of them full causal: the mean over
    layers of attention_tiles(s, w) / attention_tiles(s) for the windowed layers (arch.window_layers),
    1 for the others. A 128-key window at s = 4,096 computes 63 of 528 tiles (twice its useful
    scores: the diagonal tile and the one before it are both partly masked)."""
    n_sw, n_ch = window_layers(m), chunk_layers(m)
    if not n_sw and not n_ch:
        return 1.0
    ch = attention_tiles(seq_len, chunk=m.attention_chunk) / attention_tiles(seq_len) \
        if n_ch and m.attention_chunk < seq_len else 1.0
    return (m.layers - n_sw - n_ch + n_sw * window_tile_share(m, seq_len) + n_ch * ch) / m.layers


def window_tile_share(m, seq_len: int) -> float:
    """A sliding-window layer's kernel work relative to a full causal layer's:
    attention_tiles(s, w) / attention_tiles(s) (1 when the window covers the sequence)."""
    if not m.sliding_window or m.sliding_window >= seq_len:
        return 1.0
    return attention_tiles(seq_len, m.sliding_window) / attention_tiles(seq_len)


def attention_fwd_flops(ctx, t, tokens):
    """Flash-attention FLOPs on one GPU for `tokens` query tokens of full-length context: causal
    (half the scores) times window_work_ratio for sliding-window layers. Per layer, the mean over the
    model's layers; stage_compute counts each stage's own windowed layers (stage_window_layers)."""
    return full_attention_fwd_flops(ctx, t, tokens) * window_work_ratio(ctx.model, ctx.seq_len)


def full_attention_fwd_flops(ctx, t, tokens):
    """Causal flash-attention FLOPs of one full-attention layer on one GPU for `tokens` query tokens."""
    d_qk, d_v = attention_dims(ctx.model)
    heads_local = ctx.model.heads / t["tp"]
    return tokens * 2.0 * ctx.seq_len * heads_local * (d_qk + d_v) / 2


# FlashAttention-2 is written for Ampere's mma.sync tensor-core instructions; on Hopper it reaches
# about 35% of the dense peak, where kernels built on Hopper's warpgroup MMA and TMA (FlashAttention-3,
# cuDNN fused attention) reach 75% forward and are 1.5-1.75x faster backward (Shah et al. 2024,
# FlashAttention-3, arXiv:2407.08608, abstract and Sec. 4.1). Backward keeps Dao 2023's ratio to forward.
FA2_HOPPER_FWD_OF_PEAK = 0.35
FA2_HOPPER_BWD_OF_PEAK = FA2_HOPPER_FWD_OF_PEAK * ATTN_BWD_OF_MAMF / ATTN_FWD_OF_MAMF


def warpgroup_tensor_cores(gpu) -> bool:
    """True for NVIDIA Hopper and Blackwell data-centre GPUs (FP8 tensor cores with HBM of at least
    2 TB/s; Ada parts have FP8 but GDDR), whose tensor cores FlashAttention-2 under-uses."""
    return gpu.vendor == "nvidia" and gpu.peak_tflops("fp8") is not None and gpu.hbm_tb_s >= 2.0


# Softmax exponentials run on the SM's special-function units (MUFU.EX2), one per attention score
# in forward and one in backward (P recomputed), 16 per SM and clock on A100, H100 and B200. As dense
# BF16 tensor-core FLOPs per exponential: A100 2048 / 16 per SM-clock (312 TFLOPS, 108 SMs, 1.41 GHz);
# H100 4096 / 16 (FlashAttention-3 paper, Shah et al. 2024, arXiv:2407.08608 Sec. 3.1: "989 TFLOPS
# of FP16 matmul but only 3.9 TFLOPS of special functions"); B200 8192 / 16 (FlashAttention-4,
# Zadouri et al.: a 128 x 128 x 128 forward tile takes 1,024 tensor-core and 1,024 exponential cycles
# per SM, tensor cores doubled, SFUs not); Blackwell Ultra (cc 10.3) doubles the SFU throughput
# (NVIDIA technical blog "Making Softmax More Efficient with NVIDIA Blackwell Ultra"). Forward
# attention does 2 (d_qk + d_v) FLOPs per score, so at head dimension 64 the exponentials, not the
# tensor cores, bind on B200.
BF16_FLOPS_PER_EXP = {8.0: 128.0, 9.0: 256.0, 10.0: 512.0, 10.3: 256.0}


def exp_bound_fps(gpu, flops_per_score: float) -> float:
    """Attention FLOP/s at which the softmax exponentials bind: dense BF16 peak / BF16_FLOPS_PER_EXP x
    FLOPs per score (one exponential per score); inf where the GPU's exponential rate is not known."""
    ratio = BF16_FLOPS_PER_EXP.get(gpu.compute_capability) if gpu.vendor == "nvidia" else None
    peak = gpu.peak_tflops("bf16")
    if ratio is None or not peak:
        return float("inf")
    return peak * 1e12 / ratio * flops_per_score


def attention_rates(ctx, t, half_fps):
    """(forward, backward) FLOP/s of fused attention. The kernel follows `runtime.attention_kernel`;
    'auto' is each framework's default: Megatron runs Transformer Engine's fused attention (cuDNN,
    Hopper-native), torchtitan and DeepSpeed PyTorch SDPA, whose flash backend is FlashAttention-2.
    Hopper-native kernels get Dao 2023's fractions of the rate of the unit that binds them
    (flash_rates); FlashAttention-2 on a Hopper or Blackwell GPU is capped at FA2_HOPPER_*_OF_PEAK of
    the dense bf16 peak (fa2_capped)."""
    fwd, bwd = flash_rates(ctx, t, half_fps)
    return fa2_capped(ctx, t, fwd, bwd, (ctx.gpu.peak_tflops("bf16") or 0.0) * 1e12)


def flash_rates(ctx, t, half_fps):
    """(forward, backward) FLOP/s of a Hopper-native flash kernel: Dao 2023's fractions
    (ATTN_*_OF_MAMF) of the rate of the unit that binds it, the tensor cores (the matmul rate) or the
    exponential units (exp_bound_fps at the row's tensor_clock; forward 2 (d_qk + d_v) FLOPs per score,
    backward FLASH_BWD_FLOPS_RATIO times that, one exponential each)."""
    d_qk, d_v = attention_dims(ctx.model)
    clock = t["tensor_clock"] if "tensor_clock" in t else 1.0
    per_score = 2.0 * (d_qk + d_v)
    fwd = np.minimum(half_fps, exp_bound_fps(ctx.gpu, per_score) * clock) * ATTN_FWD_OF_MAMF
    bwd = np.minimum(half_fps, exp_bound_fps(ctx.gpu, FLASH_BWD_FLOPS_RATIO * per_score) * clock) * ATTN_BWD_OF_MAMF
    return fwd, bwd


def fa2_capped(ctx, t, fwd, bwd, peak_fps):
    """The rates with the rows that run FlashAttention-2 (runtime.attention_kernel 'fa2', or 'auto' off
    Megatron) capped at FA2_HOPPER_*_OF_PEAK x peak_fps (the dense bf16 peak, FLOP/s) on a GPU with
    warpgroup tensor cores (Hopper, Blackwell); unchanged elsewhere."""
    if not warpgroup_tensor_cores(ctx.gpu):
        return fwd, bwd
    kernel = ctx.scenario.runtime.attention_kernel
    fa2 = (t["framework"] != MEG) if kernel == "auto" else np.full(T.size(t), kernel == "fa2")
    return (np.where(fa2, np.minimum(fwd, FA2_HOPPER_FWD_OF_PEAK * peak_fps), fwd),
            np.where(fa2, np.minimum(bwd, FA2_HOPPER_BWD_OF_PEAK * peak_fps), bwd))


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


def attention_costs(ctx, t, tokens, half_fps, hbm) -> dict:
    """Forward and backward seconds of one layer's attention core for `tokens` query tokens on one GPU
    ('attn_fwd', 'attn_bwd': a layer at the model's mean cost). Flash attention: FLOPs /
    attention_rates, backward FLASH_BWD_FLOPS_RATIO times the forward FLOPs, plus the merge of the
    context-parallel ring steps' partial results (context_parallel.merge_s) and, with runtime.fp8_attention,
    the kernel at its FP8 time and the casts around it (fp8_attention.fp8_attention_scaling); a full and a windowed
    layer apart as well ('attn_full_*', 'attn_window_*'), for the stages' own counts
    (compute.stage_compute). Without flash attention: unfused_attention_s (half_fps = peak x MAMF
    fraction)."""
    if not ctx.scenario.runtime.flash_attention:
        fwd, bwd = unfused_attention_s(ctx, t, half_fps, hbm)
        return {"attn_fwd": fwd, "attn_bwd": bwd}
    out = {}
    flops = attention_fwd_flops(ctx, t, tokens)
    fwd_fps, bwd_fps = attention_rates(ctx, t, half_fps)
    merge_fwd, merge_bwd = context_parallel.merge_s(ctx, t, hbm)
    fp8 = fp8_attention_scaling(ctx, t, tokens, hbm)
    if fp8 is not None:  # runtime.fp8_attention: the kernel at its measured FP8 / BF16 time, plus the casts
        fwd_fps, bwd_fps = fwd_fps / fp8[0], bwd_fps / fp8[1]
        merge_fwd, merge_bwd = merge_fwd + fp8[2], merge_bwd + fp8[3]
    out["attn_fwd"] = flops / fwd_fps + merge_fwd
    out["attn_bwd"] = FLASH_BWD_FLOPS_RATIO * flops / bwd_fps + merge_bwd
    full = full_attention_fwd_flops(ctx, t, tokens)
    share = window_tile_share(ctx.model, ctx.seq_len)
    out["attn_full_fwd"] = full / fwd_fps + merge_fwd
    out["attn_full_bwd"] = FLASH_BWD_FLOPS_RATIO * full / bwd_fps + merge_bwd
    out["attn_window_fwd"] = share * full / fwd_fps + merge_fwd
    out["attn_window_bwd"] = FLASH_BWD_FLOPS_RATIO * share * full / bwd_fps + merge_bwd
    return out
