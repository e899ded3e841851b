"""Block-scaled FP8 dense GEMMs that SGLang 0.5.6-0.5.9 runs on MI300-series GPUs (gfx942) through aiter's Triton
kernel with its untuned default tile: a decode-step cost that is flat in the batch.

What the engine runs. With SGLANG_USE_AITER=1 (set in SGLang's ROCm images, docker/rocm.Dockerfile, and in every
InferenceX AMD launch script) SGLang's block-FP8 linear layers call `aiter_w8a8_block_fp8_linear`
(sglang/srt/layers/quantization/fp8_utils.py), which on gfx942 takes aiter's Triton `gemm_a8w8_blockscale`
(use_triton = True off gfx95; sgl-project/sglang PR 13617, merged 2025-11-20, replaced aiter's CK kernel with the
Triton one; PR 14043, which would have sent MI300X back to CK, was closed unmerged). The Triton kernel reads its
tile from a JSON config per (N, K), falling back to gfx942-GEMM-A8W8_BLOCKSCALE.json, whose only entry ("any") is
BLOCK_SIZE_M = BLOCK_SIZE_N = BLOCK_SIZE_K = 128 with NUM_KSPLIT = 1. Until ROCm/aiter PR 2024 (56055011a6,
2026-02-12: the first gfx942 per-shape configs of DeepSeek's GEMMs, N=2112-K=7168, N=3072-K=1536, N=7168-K=2048)
that default was the only gfx942 config, and the SGLang 0.5.9 ROCm image (lmsysorg/sglang:v0.5.9-rocm700-mi30x)
does not carry PR 2024 (SemiAnalysisAI/InferenceX PR 811, AMD, 2026-02-26, lists it among what a later image adds
over v0.5.9).

Why it is slow. With one 128 x 128 output tile per workgroup and no split-K, a decode GEMM of M <= 128 rows runs
ceil(N / 128) workgroups (17 for DeepSeek's fused q_a / kv_a projection, N = 2112) on the 304 CUs, each walking the
whole reduction in K / 128 sequential steps: its time is K / 128 x the time of one step of one tile, not the
weight read (a 15 MB read that the HBM does in 3.6 us takes 56 steps of a lone CU).

Time per step. MEASURED by AMD as an A/B of this kernel on this engine, model and GPU (ROCm/aiter PR 1930,
2026-01-29, SGLang DeepSeek-R1 TP8 on 8 x MI300X, 1k/1k, median TPOT with and without a tuned Triton config for
N=2112-K=7168 only): 28.76 -> 22.05 ms at 4 requests, so the default tile's 56 K-steps x 61 layers cost at
least 6.71 ms per decode step: 1.96 us per K-step (a lower bound: the tuned kernel's own time is not subtracted).
At 8 / 16 / 32 requests the same change saved 11.6 / 16.3 / 12.3 ms, more than this term grows (it is flat up to
128 rows); only the 4-request figure, where the step is nearly all decode, is used. Not fitted to any point of
benchmarks/serving_accuracy.py.

Model (default_tile_excess_s): for every block-FP8 dense GEMM of the layer that SGLang runs through this kernel, time
= waves x ceil(K / 128) x K_STEP_S, waves = ceil(tiles / CUs), tiles = ceil(M / 128) x ceil(N / 128); the term
charged is its excess over the GEMM's roofline (what timing.dense_linear_s already counts). Which GEMMs: MLA's
fused q_a + kv_a projection (SGLang's fused_qkv_a_proj_with_mqa, replicated), q_b (column split), o_proj (row
split), the dense layers' MLP (gate + up column split, down row split); a dense model's QKV / O / MLP the same way.
Not: the routed and shared experts (aiter's fused MoE: SGLang on ROCm runs the shared expert as a 257th expert,
the top-9 expert shapes of aiter's tuned DeepSeek MoE tables), MLA's kv_b (the absorbed decode runs it as two
batched matmuls), the router and the LM head (bf16).
Where: SGLang releases 0.5.6-0.5.9 (after PR 13617, before aiter PR 2024 reached a release image) on gfx942 GPUs
(MI300X, MI325X: 304 CUs) with block-scaled FP8 weights (fp8-block). Elsewhere 0.
"""

from __future__ import annotations

import numpy as np

from planner.serve import engines as E

TILE = 128  # BLOCK_SIZE_M = BLOCK_SIZE_N = BLOCK_SIZE_K of aiter's default gfx942 A8W8_BLOCKSCALE config
K_STEP_S = 6.71e-3 / (61 * (7168 // TILE))  # 1.96 us: aiter PR 1930's A/B (module doc)
# gfx942 GPUs and their compute units (AMD CDNA3: MI300X and MI325X, 304 CUs each; aiter keys its configs on it)
GFX942_CUS = {"mi300x": 304, "mi325x": 304}
FIRST_RELEASE, LAST_RELEASE = E.version_code("0.5.6"), E.version_code("0.5.9")


def block_gemm_shapes(m) -> tuple:
    """The dense GEMMs of one layer that SGLang runs as block-FP8 linears, as (moe_layer, k, n, split) with split
    'attn_col' / 'attn_row' / 'col' / 'row' (the tensor-parallel cut: n or k divided by the attention / MLP tp) or
    '' (replicated), for MoE layers (moe_layer True) and dense layers (False); empty for a model SGLang does not
    run this way (module doc)."""
    from planner.arch import layer_matmuls

    out = []
    kinds = (True, False) if m.moe else (False,)
    for moe_layer in kinds:
        mats = {x.name: x for x in layer_matmuls(m, moe_layer)}
        if "q_down" in mats and "kv_down" in mats:  # fused_qkv_a_proj_with_mqa
            out.append((moe_layer, mats["q_down"].k, mats["q_down"].n + mats["kv_down"].n, ""))
        elif "kv_down" in mats:
            out.append((moe_layer, mats["kv_down"].k, mats["kv_down"].n, ""))
        for name, split in (("q_up", "attn_col"), ("q_proj", "attn_col"), ("qkv_proj", "attn_col"),
                            ("o_proj", "attn_row"), ("mlp_up", "col"), ("mlp_down", "row")):
            if name in mats:
                out.append((moe_layer, mats[name].k, mats[name].n, split))
    return tuple(out)


def gfx942(gpu_name: str) -> bool:
    """The GPU is a gfx942 one (GFX942_CUS): the condition of this module's term and of hipblaslt_fp8's."""
    return gpu_name in GFX942_CUS


def applies(t: dict, gpu_name: str) -> np.ndarray:
    """Plan rows that run these GEMMs with the default tile: SGLang 0.5.6-0.5.9 on a gfx942 GPU, fp8-block weights."""
    if not gfx942(gpu_name):
        return np.zeros(np.shape(t["engine"]), dtype=bool)
    version = E.plan_engine_version(t)
    block = np.array([n == "fp8-block" for n in E.WEIGHT_NAMES])[t["wq"]]
    return (np.asarray(t["engine"]) == E.SGLANG) & block & (version >= FIRST_RELEASE) & (version <= LAST_RELEASE)


def default_tile_excess_s(f, ls, rows, tp, ta, lin, bw, bpe, cus, on):
    """Seconds the stage's default-tile block-FP8 GEMMs (f.block_gemms) take beyond their roofline for `rows` token
    rows per GPU (module doc), where `on` (applies); 0 elsewhere."""
    on = np.asarray(on)
    if not f.block_gemms or not on.any():
        return np.zeros(np.broadcast(on, rows).shape)
    rows = np.maximum(np.asarray(rows, dtype=float), 1.0)
    tp, ta = np.asarray(tp, dtype=float), np.asarray(ta, dtype=float)
    share = {True: f.moe_layers / f.layers, False: 1.0 - f.moe_layers / f.layers}
    total = 0.0
    for moe_layer, k, n, split in f.block_gemms:
        cut = {"attn_col": ta, "attn_row": ta, "col": tp, "row": tp, "": 1.0}[split]
        n_r = n / cut if split.endswith("col") else n + 0.0 * cut
        k_r = k / cut if split.endswith("row") else k + 0.0 * cut
        tiles = np.ceil(rows / TILE) * np.ceil(n_r / TILE)
        kernel = np.ceil(tiles / cus) * np.ceil(k_r / TILE) * K_STEP_S
        roof = np.maximum(2.0 * rows * n_r * k_r / lin, n_r * k_r * bpe / bw)
        total = total + ls * share[moe_layer] * np.maximum(kernel - roof, 0.0)
    return np.where(on, total, 0.0)
