"""FP8 dot-product attention (runtime.fp8_attention): Transformer Engine's fp8_dpa, the cuDNN fused
attention kernel run on FP8 Q, K, V (and FP8 dO in backward), on Megatron fp8 plans.

Time: the BF16 attention kernel seconds times the FP8 / BF16 kernel-time ratio NVIDIA's cuDNN SDPA training
benchmark measured on the same GPU architecture (compute capability), forward and backward apart, at the
kernel's query length; plus the casts at the attention's boundary, which TE does outside the kernel.
"""

from __future__ import annotations

import numpy as np

from planner.arch import attention_dims
from planner.estimate.compute_quant import MXFP8_CAST_BYTES, MXFP8_OPERAND_BYTES
from planner.estimate.table import FP8, MEG

# NVIDIA/cudnn-frontend @3929da2 (2026-05-08) benchmark/sdpa_benchmark_training/results/: the cuDNN backend's
# causal (top_left) rows of the Llama 3.1 configuration (batch 1, 64 query / 8 KV heads of 128, non-deterministic
# backward), data_type bfloat16 and fp8 (per-tensor scaled E4M3; operands quantised before the timed call):
#   cc 9.0  h200_919_only_cudnn/llama3.1_20260227_034703.csv (H200, cuDNN 9.19.1)
#   cc 10.0 llama3.1/gb200/llama3.1_20260424_100750.csv (GB200, cuDNN 9.22.0)
#   cc 10.3 llama3.1/gb300/llama3.1_20260424_100757.csv (GB300, cuDNN 9.22.0)
# {compute capability: {seq: (bf16 fwd, bf16 bwd, fp8 fwd, fp8 bwd) ms}}. Hopper's FP8 backward is slower than
# BF16 from 8k on; Blackwell's is faster from 4k-8k on.
CUDNN_SDPA_MS = {
    9.0: {2048: (0.142, 0.464, 0.098, 0.437), 4096: (0.465, 1.450, 0.322, 1.459), 8192: (1.708, 5.083, 1.141, 6.392),
          16384: (6.531, 19.002, 4.357, 29.422), 32768: (25.566, 75.688, 16.884, 118.729)},
    10.0: {2048: (0.125, 0.389, 0.097, 0.414), 4096: (0.391, 1.198, 0.305, 1.167), 8192: (1.397, 4.127, 1.074, 3.781),
           16384: (5.150, 16.554, 4.084, 13.476), 32768: (21.692, 71.756, 16.012, 52.155)},
    10.3: {2048: (0.100, 0.356, 0.070, 0.364), 4096: (0.323, 1.101, 0.217, 0.985), 8192: (1.185, 3.832, 0.759, 3.087),
           16384: (4.593, 14.593, 2.880, 10.805), 32768: (18.014, 59.024, 11.319, 41.328)},
}

# The same files' mxfp8 rows (cuDNN MXFP8 attention: E4M3 with a scale per 32 elements; Blackwell only), which
# Transformer Engine runs under the MXFP8 recipe from v2.16 (PR #2719, "Add MXFP8 attention"):
# {compute capability: {seq: (mxfp8 fwd, mxfp8 bwd) ms}}, against CUDNN_SDPA_MS's bf16 columns.
CUDNN_SDPA_MXFP8_MS = {
    10.0: {2048: (0.103, 0.461), 4096: (0.326, 1.305), 8192: (1.156, 4.272), 16384: (4.400, 15.315),
           32768: (17.201, 61.716)},
    10.3: {2048: (0.079, 0.424), 4096: (0.242, 1.203), 8192: (0.856, 3.917), 16384: (3.225, 14.072),
           32768: (12.632, 55.340)},
}

# Transformer Engine's FP8 attention in FusedAttnFunc (pytorch/attention/dot_product_attention/backends.py @d0067d0):
# with fp8_dpa and not fp8_mha (recipe docstring: "LayerNormLinear (BF16 output) -> (cast to FP8) FP8 DPA (cast
# to BF16) -> Linear") forward quantises Q, K, V (combine_and_quantize) and dequantizes the FP8 output O;
# backward quantises dO and dequantizes dQ, dK, dV ("Return dQ/dK/dV in bf16"). Each cast reads 2 bytes and
# writes 1 (or reads 1 and writes 2) per element; per-tensor current scaling reads a quantised tensor once
# more for its amax first (2; TE uses Float8CurrentScaling for QKV, O, dO, dQKV under that recipe).
FP8_DPA_CAST_BYTES = 3.0
AMAX_READ_BYTES = 2.0
# MXFP8 attention (TE >= 2.16): in training, combine_and_quantize (attention/dot_product_attention/utils.py) casts
# Q, K, V once with row-wise and column-wise usage (both copies: forward and backward reduce along different
# dimensions), as compute_quant.MXFP8_CAST_BYTES counts for a linear input: read 2, write 2 x (1 + 1/32); dO
# likewise. Those copies are what FusedAttnFunc saves: 2 x (1 + 1/32) bytes per Q, K, V element (per-tensor: 1).
MXFP8_SAVED_BYTES = 2 * MXFP8_OPERAND_BYTES


def fp8_attention_rows(ctx, t):
    """True on the rows that run FP8 attention: runtime.fp8_attention on Megatron (Transformer Engine) fp8 plans."""
    if not ctx.scenario.runtime.fp8_attention:
        return np.zeros(np.shape(t["precision"]), dtype=bool)
    return (t["precision"] == FP8) & (t["framework"] == MEG)


def measured_capability(gpu) -> float | None:
    """The CUDNN_SDPA_MS key measured on the GPU's architecture (its compute capability), None if none was."""
    cc = gpu.compute_capability if gpu.vendor == "nvidia" else None
    return cc if cc in CUDNN_SDPA_MS else None


def fp8_time_ratios(gpu, q_len, recipe: str = "delayed"):
    """(forward, backward) FP8 / BF16 kernel-time ratios at query length q_len (array): the CUDNN_SDPA_MS
    ratios of the GPU's compute capability (CUDNN_SDPA_MXFP8_MS's for fp8_recipe 'mxfp8'), linear in log2(seq)
    between the measured lengths, the end values beyond them."""
    cc = measured_capability(gpu)
    table, seqs = CUDNN_SDPA_MS[cc], sorted(CUDNN_SDPA_MS[cc])
    bf16 = np.array([table[s][:2] for s in seqs])
    fp8 = np.array([CUDNN_SDPA_MXFP8_MS[cc][s] if recipe == "mxfp8" else table[s][2:] for s in seqs])
    x = np.log2(np.maximum(np.asarray(q_len, dtype=float), 1.0))
    xs = np.log2(np.array(seqs, dtype=float))
    return np.interp(x, xs, fp8[:, 0] / bf16[:, 0]), np.interp(x, xs, fp8[:, 1] / bf16[:, 1])


def quantise_bytes(recipe: str) -> float:
    """Bytes per element of quantising a bf16 tensor for FP8 attention: FP8_DPA_CAST_BYTES, plus AMAX_READ_BYTES
    under per-tensor current scaling; under 'mxfp8' compute_quant.MXFP8_CAST_BYTES (both copies, block scales)."""
    if recipe == "mxfp8":
        return MXFP8_CAST_BYTES
    return FP8_DPA_CAST_BYTES + (AMAX_READ_BYTES if recipe == "current" else 0.0)


def saved_qkv_bytes(recipe: str) -> float:
    """Bytes per Q, K, V element FusedAttnFunc keeps for its FP8 backward: 1 (per-tensor), MXFP8_SAVED_BYTES."""
    return MXFP8_SAVED_BYTES if recipe == "mxfp8" else 1.0


def cast_bytes(ctx, t, tokens):
    """(forward, backward) bytes of the casts at one layer's FP8 attention on one GPU, `tokens` query tokens:
    forward Q, K, V quantised (quantise_bytes per element) and O dequantised (FP8_DPA_CAST_BYTES), backward dO
    quantised and dQ, dK, dV dequantised; heads split by tp."""
    m = ctx.model
    d_qk, d_v = attention_dims(m)
    kv_heads = m.n_kv_heads if not m.mla else m.heads
    qkv = (m.heads * d_qk + kv_heads * (d_qk + d_v)) / t["tp"]
    out = m.heads * d_v / t["tp"]
    quant = quantise_bytes(ctx.scenario.runtime.fp8_recipe)
    fwd = tokens * (quant * qkv + FP8_DPA_CAST_BYTES * out)
    bwd = tokens * (quant * out + FP8_DPA_CAST_BYTES * qkv)
    return fwd, bwd


def fp8_attention_scaling(ctx, t, tokens, hbm):
    """(forward, backward) kernel-time factors and (forward, backward) added cast seconds of one layer's
    attention: fp8_time_ratios at the kernel's query length (seq_len / cp) and cast_bytes / hbm on the
    FP8-attention rows; 1 and 0 elsewhere. None when no row runs FP8 attention."""
    rows = fp8_attention_rows(ctx, t)
    if not np.any(rows):
        return None
    r_fwd, r_bwd = fp8_time_ratios(ctx.gpu, ctx.seq_len / t["cp"], ctx.scenario.runtime.fp8_recipe)
    c_fwd, c_bwd = cast_bytes(ctx, t, tokens)
    return (np.where(rows, r_fwd, 1.0), np.where(rows, r_bwd, 1.0),
            np.where(rows, c_fwd / hbm, 0.0), np.where(rows, c_bwd / hbm, 0.0))
