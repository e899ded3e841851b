"""MoE terms of the compute model (vectorised over a plan table): the grouped expert GEMMs with
their tile padding, the token permutation of the all-to-all dispatcher, the router, Megatron's FP8 /
FP4 quantisation padding copies and per-expert quantisation kernels, and its unfused expert
epilogues (clamped activation, fc2 bias). Sources beside each constant and in each docstring."""

from __future__ import annotations

import numpy as np

from planner.arch import layer_matmuls
from planner.estimate import table as T
from planner.estimate.compute_elementwise import FUSED_SWIGLU_BYTES
from planner.estimate.compute_gemm import gemm_s
from planner.estimate.compute_quant import NVFP4_SPLIT_QUANT_KERNELS
from planner.estimate.table import FP8, MEG

# Megatron-Core's grouped experts (TEGroupedMLP in megatron/core/transformer/moe/experts.py, with
# fusions/fused_bias_geglu.py, at 92c8482e: the Megatron-LM that Megatron-Bridge 25.11 pins) run two
# pieces of gpt-oss's expert MLP outside fused kernels, in bf16 (Megatron-Bridge's gpt-oss recipe
# leaves moe_router_dtype unset, so the routing probabilities are bf16 too with the all-to-all
# dispatcher; DeepEP and HybridEP hand over fp32 ones, FP32_PROB_DISPATCHERS below):
# * the clamp of a clamped gated activation (activation_func_clamp_value = swiglu_limit):
#   weighted_bias_quick_geglu_impl clamps each half of the 2f-wide fc1 output (read 2 + write 2 bytes
#   per element) and torch.cat's them (2 + 2 per element of both halves) before the fused kernel:
#   16 bytes per f element forward. Backward: each clamp's masked gradient (gradient and input read,
#   gradient written: 6 per element of its half, 12 per f) and the gradient cat of the chunk (8): 20.
CLAMPED_GLU_BYTES_FWD, CLAMPED_GLU_BYTES_BWD = 16.0, 20.0
# * fc2's bias (add_bias_linear): TEGroupedMLP._apply_bias adds `bias * prob` to each local expert's
#   rows in a Python loop over the experts and torch.cat's the results: per routed row and hidden
#   element b*p written (2), the sum read 2 + 2 and written 2, the cat read 2 and written 2 = 12 bytes
#   forward; backward the product's gradients for the bias and the probabilities (a product written
#   and reduced, 2 + 2 + 2 each) and torch.split's backward, which concatenates the per-expert
#   gradients of the fc2 output into one tensor (read 2 + write 2) = 16. Kernels: a product and a sum
#   per local expert forward, two products and two reductions backward.
EXPERT_BIAS_BYTES_FWD, EXPERT_BIAS_BYTES_BWD = 12.0, 16.0
EXPERT_BIAS_KERNELS_PER_EXPERT = 6
# Under the DeepEP and HybridEP dispatchers the routing probabilities reach the experts in fp32:
# MoEFlexTokenDispatcher casts them up before its fused dispatch ("HybridEP only supports float32
# probs", "DeepEP only supports float32 probs": token_dispatcher.py lines 1035-1041 and 1183-1189 at
# 92c8482e, the same code at d7288711 and 2edffadb, the Megatron-LM of Megatron-Bridge v0.4.0 / v0.4.2),
# so `t + b * p` in _apply_bias promotes to fp32: b*p written (4), the sum read 2 + 4 and written 4,
# the cat read 4 and written 4, the final .to(bf16) read 4 and written 2 = 28 bytes forward; backward
# the cast of the gradient up (2 + 4) and of t's gradient down (4 + 2), the two fp32 product
# gradients written and reduced (4 + 4 + 4 each) and the split's concatenation (2 + 2) = 40.
EXPERT_BIAS_BYTES_FWD_FP32_PROBS, EXPERT_BIAS_BYTES_BWD_FP32_PROBS = 28.0, 40.0
FP32_PROB_DISPATCHERS = ("deepep", "hybridep")


def expert_epilogue_bytes_per_token(m, t, dispatcher: str = "alltoall"):
    """Forward-equivalent HBM bytes per token of one MoE layer spent on Megatron's unfused clamp of a
    clamped gated activation (`swiglu_limit`) and per-expert fc2 bias (`linear_bias`), per routed
    copy: (forward + backward) / 3, because the time model takes every forward term's backward as
    twice the forward (layer_costs). The bias loop runs in fp32 where `dispatcher`
    (runtime.moe_dispatcher) hands the experts fp32 probabilities (FP32_PROB_DISPATCHERS). Zero for
    other frameworks (torchtitan's and the serving engines' expert kernels apply the clamp and the
    bias in their fused activation / GEMM epilogue) and for models without the clamp or the biases."""
    if not m.moe:
        return 0.0
    clamp = (CLAMPED_GLU_BYTES_FWD + CLAMPED_GLU_BYTES_BWD) / 3 * m.moe.expert_ffn_hidden / t["tp"] \
        if m.swiglu_limit is not None else 0.0
    per_elem = EXPERT_BIAS_BYTES_FWD_FP32_PROBS + EXPERT_BIAS_BYTES_BWD_FP32_PROBS \
        if dispatcher in FP32_PROB_DISPATCHERS else EXPERT_BIAS_BYTES_FWD + EXPERT_BIAS_BYTES_BWD
    bias = per_elem / 3 * m.hidden if m.linear_bias else 0.0
    return np.where(t["framework"] == MEG, m.moe.top_k * (clamp + bias), 0.0)


def fused_grouped_mlp(ctx, t):
    """True per plan row where the expert MLP runs as Transformer Engine's fused grouped MLP
    (runtime.moe_fused_grouped_mlp): Megatron, fp8 precision (the validator requires fp8_recipe mxfp8 and
    compute capability 10.x) and expert tensor parallelism 1 (TEGroupedMLP._is_fused_impl_supported
    refuses a tensor-parallel expert group: megatron/core/transformer/moe/experts.py at d0b3b7754, the
    Megatron-LM of Megatron-Bridge v0.5.0). Forward, ForwardGroupedMLP_CuTeGEMMSwiGLU_MXFP8
    (transformer_engine/pytorch/ops/fused/forward_grouped_mlp.py at 4220403e8, the TE of v0.5.0) calls
    cuDNN-frontend grouped_gemm_glu_wrapper_sm100 with fc1's bias, the routing probabilities and the
    activation (swiglu, or geglu for a clamped one) in the GEMM epilogue, and grouped_gemm_quant for fc2
    with its bias and probabilities; backward, grouped_gemm_dglu fuses the activation's gradient, the
    probabilities' gradient and fc1's bias gradient into fc2's data-gradient GEMM. So on these rows the
    experts' own activation pass (act x top_k in compute.elementwise_bytes_per_token), Megatron's unfused
    clamp and fc2-bias loop (expert_epilogue_bytes_per_token, expert_bias_kernels) and the clamped copy
    kept for backward (memory_terms_activations.clamped_glu_bytes) are not run."""
    if not (ctx.model.moe and ctx.scenario.runtime.moe_fused_grouped_mlp):
        return np.zeros(T.size(t), dtype=bool)
    return (t["framework"] == MEG) & (t["precision"] == FP8) & (t["etp"] == 1)


def moe_act_recompute_bytes_per_token(m, t):
    """HBM bytes per token of one MoE layer that Megatron's `moe_act` recompute moves again in
    backward: the experts' activation forward (TEGroupedMLP checkpoints bias_act_func) per routed
    copy, the fused gated activation (FUSED_SWIGLU_BYTES per f element) and, for a clamped one, its
    unfused clamp (CLAMPED_GLU_BYTES_FWD)."""
    if not m.moe:
        return 0.0
    act = FUSED_SWIGLU_BYTES if m.ffn_act == "swiglu" else 4.0
    clamp = CLAMPED_GLU_BYTES_FWD if m.swiglu_limit is not None else 0.0
    return m.moe.top_k * (act + clamp) * m.moe.expert_ffn_hidden / t["tp"]


def expert_bias_kernels(m, t):
    """Kernels per MoE layer and micro-batch (forward + backward) of Megatron's per-expert fc2 bias
    loop (EXPERT_BIAS_KERNELS_PER_EXPERT per local expert); zero without linear biases."""
    if not (m.moe and m.linear_bias):
        return np.zeros(T.size(t))
    return np.where(t["framework"] == MEG, EXPERT_BIAS_KERNELS_PER_EXPERT * m.moe.experts / t["ep"], 0.0)


def permutation_bytes_per_token(m, t):
    """HBM bytes per token (of the micro-batch, on one GPU) of Megatron-Core's all-to-all token
    dispatcher in forward (megatron/core/transformer/moe/token_dispatcher.py,
    MoEAlltoAllTokenDispatcher; fused permute kernels, 16-bit tokens): `permute` gathers each of this
    rank's tokens/tp tokens into top_k expert-ordered copies (read 2kh, write 2kh bytes), and
    `unpermute` reads the k returned copies and writes one merged token (2kh + 2h); with more than
    one local expert, `sort_chunks_by_idxs` regroups the received rows by local expert after the
    dispatch all-to-all and back before the combine (read + write 2kh each, on the etp x tokens/tp
    rows the expert-tensor-parallel all-gather delivers):
        (6kh + 2h + [local experts > 1] 8kh etp) / tp.
    torchtitan's all-to-all MoE moves the same copies (gather into expert order, regroup after the
    all-to-all, scatter-add back): the same count is used for every framework."""
    k, h = m.moe.top_k, m.hidden
    local = m.moe.experts / t["ep"]
    return ((6 * k + 2) * h + np.where(local > 1, 8 * k * h * t["etp"], 0.0)) / t["tp"]


# Megatron-Core's grouped experts under FP8 / FP4 (TEGroupedMLP.forward in
# megatron/core/transformer/moe/experts.py at 92c8482e) pass the permuted tokens through Transformer
# Engine's Fp8Padding and the fc2 output through Fp8Unpadding, so that every local expert's row count
# is a multiple of the quantisation block (transformer_engine/pytorch/module/fp8_padding.py at v2.9:
# 32 rows under MXFP8, 16 otherwise). Where a count is not aligned the module copies the whole tensor
# (tex.fused_multi_row_padding into a new buffer: read 2 + write 2 bytes per element), and its
# backward copies the gradient back (fused_multi_row_unpadding, 2 + 2); the unpadding of the fc2
# output likewise (2 + 2 forward, 2 + 2 backward). Per routed row and hidden element: 8 bytes forward,
# 8 backward. Megatron-Bridge's recipes leave moe_router_padding_for_quantization off (the router
# would then pad the routing map itself), so dropless routing hands the experts unaligned counts.
QUANT_PAD_BYTES_FWD, QUANT_PAD_BYTES_BWD = 8.0, 8.0
# Dispatchers whose output already reaches the experts padded to the quantisation block, so that no
# padding copy runs. HybridEP: under fp8 / fp4 _HybridEPManager.dispatch passes pad_multiple =
# get_align_size_for_quantization (32 under MXFP8, 16 otherwise: fp8_utils.get_fp8_align_size) to
# dispatch_with_permute (megatron/core/transformer/moe/token_dispatcher.py lines 1042-1043 at 92c8482e,
# 1035-1036 at b0cc2706 / 55ac7082, 1040-1041 at d7288711 / 2edffadb, 1085-1086 at d0b3b7754 /
# 458c8d0e, 1122-1123 at cd4afffa: the Megatron-LM of Megatron-Bridge 25.11, v0.3.0, v0.3.1, v0.4.0,
# v0.4.2, v0.5.0, v0.5.1, v0.6.0), whose permute (DeepEP hybrid-ep csrc/hybrid_ep/extension/permute.cu,
# permute_processing_kernel pass 4) rounds every local expert's rows up to that multiple, writes zero
# rows into the gaps and returns the padded tokens_per_expert. Up to v0.4.2 the expert module still
# calls Fp8Padding / Fp8Unpadding (experts.py lines 860-866 at 92c8482e, 345-351 at d7288711 /
# 2edffadb), which return their input unchanged when every count is already aligned
# (transformer_engine/pytorch/module/fp8_padding.py and fp8_unpadding.py 'if m_splits ==
# padded_m_splits', since TE 4c9626e7e, 2025-04, so in every container's TE); from d0b3b7754 it skips
# them (moe_utils.skip_routed_expert_padding, experts.py lines 570 / 660). No copy either way. DeepEP
# and the all-to-all dispatcher pad only with moe_router_padding_for_quantization (off in the recipes).
# The zero rows HybridEP adds cost no GEMM time here (each expert's rows are already rounded up to
# GEMM_TILE_ROWS, a multiple of 32) and are not sent over the network (the permute runs after the
# dispatch); their write is at most align - 1 rows per local expert and micro-batch, not modelled.
PADDED_DISPATCHERS = ("hybridep",)


def quant_padding_copies(ctx, t):
    """True per plan row where Megatron's grouped experts copy their tokens into and out of a padded
    buffer (QUANT_PAD_BYTES_*): Megatron, FP8 / FP4 precision, and per-expert row counts that are not
    multiples of the quantisation block. Dropless routing gives data-dependent counts (taken as
    unaligned), except under a dispatcher that pads them itself (PADDED_DISPATCHERS: HybridEP, no copy);
    padding to capacity (runtime.moe_pad_to_capacity with model.moe.capacity_factor) gives
    each local expert capacity x etp x ep rows, capacity = ceil(local tokens x top_k / experts x
    capacity factor) (Megatron-Core get_capacity, MoEAlltoAllTokenDispatcher.preprocess; HybridEP's
    setup_metadata sets the same capacity x ep counts), aligned or not as that number is. (From
    d0b3b7754 the expert module skips the padding under HybridEP with capacity padding too; no published
    HybridEP run pads to capacity, so that version split is not keyed.)"""
    m = ctx.model
    if not m.moe:
        return np.zeros(T.size(t), dtype=bool)
    rt = ctx.scenario.runtime
    quantised = (t["framework"] == MEG) & (t["precision"] == FP8)
    if not (rt.moe_pad_to_capacity and m.moe.capacity_factor is not None):
        return quantised & (rt.moe_dispatcher not in PADDED_DISPATCHERS)
    align = 32 if rt.fp8_recipe == "mxfp8" else 16
    local_tokens = t["mbs"] * ctx.seq_len / t["cp"] / t["tp"]
    capacity = np.ceil(local_tokens * m.moe.top_k / m.moe.experts * m.moe.capacity_factor)
    rows = capacity * t["etp"] * t["ep"]
    return quantised & (np.mod(rows, align) != 0)


def quant_padding_bytes_per_token(ctx, t):
    """Forward-equivalent HBM bytes per token of one MoE layer spent on Megatron's quantisation padding
    copies (QUANT_PAD_BYTES_*; the time model takes every forward term's backward as twice the forward,
    so (forward + backward) / 3), on the routed copies this GPU's experts receive (top_k x hidden x
    etp / tp per token, as permutation_bytes_per_token). Zero where quant_padding_copies is false."""
    m = ctx.model
    if not m.moe:
        return 0.0
    per_elem = (QUANT_PAD_BYTES_FWD + QUANT_PAD_BYTES_BWD) / 3
    return np.where(quant_padding_copies(ctx, t), per_elem * m.moe.top_k * m.hidden * t["etp"] / t["tp"], 0.0)


# Transformer Engine's GroupedLinear quantises each local expert's input (forward) and output
# gradient (backward) separately (tex.split_quantize -> multi_tensor_quantize_impl,
# transformer_engine/pytorch/csrc/extensions/cast.cpp at v2.9): with delayed scaling one fused
# multi-tensor cast-transpose kernel covers all experts; with current scaling every expert's tensor
# goes through Float8CurrentScalingQuantizer::quantize_impl (csrc/quantizer.cpp): amax, scale from
# amax and cast, 3 kernels each.
FP8_CURRENT_QUANT_KERNELS = 3


def expert_quant_kernels(ctx, t):
    """FP8 quantisation kernels of one MoE layer's grouped expert modules per micro-batch,
    forward and backward (Megatron, fp8; zero otherwise): per module, input and output gradient,
    3 per local expert with current scaling, 1 with MXFP8, one fused kernel with delayed scaling, the
    fused NVFP4 pair (NVFP4_SPLIT_QUANT_KERNELS) with NVFP4."""
    m = ctx.model
    if not m.moe:
        return np.zeros(T.size(t))
    modules = sum(1 for mm in layer_matmuls(m, True) if mm.name.startswith("expert"))
    local = m.moe.experts / t["ep"]
    recipe = ctx.scenario.runtime.fp8_recipe
    # the fused multi-tensor kernel exists for delayed scaling only (multi_tensor_quantize_impl: "only
    # have fused kernel for FP8 delayed scaling"); MXFP8 quantises each expert's tensor in one kernel
    per_tensor = {"current": local * FP8_CURRENT_QUANT_KERNELS, "mxfp8": local,
                  "nvfp4": NVFP4_SPLIT_QUANT_KERNELS}.get(recipe, 1.0)
    # the fused grouped MLP quantises fc1's input and fc2's output gradient with one tex.group_quantize each
    # and writes the other two quantised from its GEMM epilogues (forward_grouped_mlp.py /
    # backward_grouped_mlp.py at 4220403e8): 2 kernels
    n = np.where(fused_grouped_mlp(ctx, t), 2.0, modules * 2 * per_tensor)
    return np.where((t["framework"] == MEG) & (t["precision"] == FP8), n, 0.0)


# Router (Megatron-Core TopKRouter): logits computed and normalised in fp32: logits written (4),
# read by softmax / sigmoid which writes scores (4 + 4), read by top-k (4) per expert and token.
ROUTER_BYTES_PER_EXPERT = 16.0
# GEMM tile rows: cuBLAS / CUTLASS Hopper and Ampere kernels tile the output in 64-256 row blocks;
# a grouped expert GEMM pads each expert's rows to whole tiles ("tile quantization", NVIDIA Deep
# Learning Performance guide, Matrix Multiplication Background). 128 is the common tile height.
GEMM_TILE_ROWS = 128


def grouped_expert_gemm_s(ctx, t, tokens, per_token, k, n, linear_fps, hbm, elem):
    """Forward seconds of one expert matmul of a MoE layer (k x n after the expert-tensor-parallel
    split) on one GPU, run as a grouped GEMM over its local experts. Each GPU runs experts / ep local
    experts, split over etp ranks (expert tensor parallelism). Balanced routing: the tokens x top_k
    routed rows (`per_token` per token) of the tp ranks' tokens spread over the ep x etp expert ranks,
    so every GPU sees tokens x top_k x etp / tp rows in all (the busiest rank runtime.moe_load_imbalance
    times that), each expert's rows padded to whole GEMM tiles (GEMM_TILE_ROWS):
        experts_local x gemm_s(ceil(rows per expert / tile) x tile, k, n)."""
    experts_local = ctx.model.moe.experts / t["ep"]
    rows = tokens * per_token * t["etp"] / t["tp"] * ctx.scenario.runtime.moe_load_imbalance / experts_local
    rows = np.ceil(rows / GEMM_TILE_ROWS) * GEMM_TILE_ROWS
    return experts_local * gemm_s(rows, k, n, linear_fps, hbm, elem)
