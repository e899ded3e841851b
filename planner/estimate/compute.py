"""Compute time of one micro-batch on one pipeline stage (vectorised over a plan table).

* Weight matmuls, per GEMM after the tensor-parallel split: 2MKN / (peak x MAMF) + bytes moved /
  (HBM bandwidth x 0.8) + a launch latency (`gemm_s`). MAMF is the GPU's measured maximum achievable
  matmul throughput at its best shape (ml-engineering, catalogs/gpus.yaml `matmul_efficiency`);
  real transformer shapes lose to it by their operand and output traffic, which the kernels do not
  fully hide, so small hidden sizes and small experts run well below the dense rate. Measured on an
  H200 (benchmarks/gemm_device_results.md): within 10% on transformer-sized GEMMs.
* Attention core (flash attention): FLOPs 2*s*H*(d_qk+d_v) per token and layer, halved for the
  causal mask (a sliding-window layer: the score tiles the kernel visits, `window_work_ratio`), at a
  fraction of peak: FlashAttention-2 reaches 50-73% of A100 peak in forward and
  up to 63% in backward (Dao 2023, arXiv:2307.08691, Sec. 4.1); we take 0.70 and 0.60 of the GPU's
  MAMF fraction (A100: 0.61 / 0.52 of peak).
* Memory-bound operators (norms, residual adds, activation functions, rotary, dropout, MoE
  permutation, loss): bytes read and written per token / (HBM bandwidth x 0.8).
* Backward = 2 x forward for matmuls (input and weight gradients).
"""

from __future__ import annotations

import numpy as np

from planner.arch import attention_dims, layer_matmuls
from planner.estimate import context_parallel, recompute
from planner.estimate import table as T
from planner.estimate.table import MEG, TT
from planner.estimate.host import (HOST_SYNC_S, layer_host_fwd_s, layer_host_s, moe_forward_syncs,
                                   moe_sync_exposed_s, synced_host_floor)
# ATTN_FWD_OF_MAMF and exp_bound_fps are imported from here by planner.serve.timing
from planner.estimate.compute_attention import (ATTN_FWD_OF_MAMF, FLASH_BWD_FLOPS_RATIO,  # noqa: F401
                                                attention_fwd_flops, attention_rates, exp_bound_fps,
                                                full_attention_fwd_flops, unfused_attention_s, window_tile_share)
# DEFAULT_MAMF, HBM_EFFICIENCY and fp4_gemm_over_fp8 are imported from here by planner.serve.timing
from planner.estimate.compute_elementwise import (EAGER_RMSNORM_BYTES, EAGER_ROPE_BYTES, EAGER_SWIGLU_BYTES,
                                                  FUSED_NORM_BYTES, FUSED_ROPE_BYTES, FUSED_SWIGLU_BYTES,
                                                  MEGATRON_UNFUSED_ROPE_BYTES, MEGATRON_UNFUSED_ROPE_EXTRA_KERNELS,
                                                  eager_mask, megatron_unfused_rope)
from planner.estimate.compute_gemm import (DEFAULT_MAMF, GEMM_LAUNCH_S, HBM_EFFICIENCY, fp4_gemm_over_fp8,  # noqa: F401
                                           gemm_s, peaks)
from planner.estimate.compute_quant import (NVFP4_OPERAND_BYTES, NVFP4_SPLIT_QUANT_KERNELS, fp8_cast_bytes_per_token,
                                            fp8_weight_cast_s, weight_casts_per_mb)
from planner.estimate.memory import stage_layers


def layer_matmul_fwd_s(ctx, t, tokens, moe_layer: bool, linear_fps, hbm):
    """Forward time of the weight matmuls of one layer for `tokens` tokens on one GPU, and the part
    of it spent in expert GEMMs."""
    tp = t["tp"]
    low = NVFP4_OPERAND_BYTES if ctx.scenario.runtime.fp8_recipe == "nvfp4" else 1.0
    elem = np.where(t["precision"] == 3, low, np.where(t["precision"] == 0, 4.0, 2.0))  # FP8 operands: 1 byte
    total = experts = 0.0
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
            # ep x etp expert ranks, so every GPU sees tokens * top_k * etp / tp rows in all (the
            # busiest rank runtime.moe_load_imbalance times that), each expert's rows padded to whole
            # GEMM tiles.
            experts_local = ctx.model.moe.experts / t["ep"]
            rows = tokens * mm.per_token * t["etp"] / tp * ctx.scenario.runtime.moe_load_imbalance / experts_local
            rows = np.ceil(rows / GEMM_TILE_ROWS) * GEMM_TILE_ROWS
            e = experts_local * gemm_s(rows, k, n, linear_fps, hbm, elem)
            total, experts = total + e, experts + e
        else:
            total = total + gemm_s(tokens * mm.per_token, k, n, linear_fps, hbm, elem)
    return total, experts


def elementwise_bytes_per_token(ctx, t, moe_layer: bool):
    """HBM bytes read + written per token by one layer's memory-bound operators (forward): 2 norms
    and 2 residual adds on the (sequence-parallel) hidden state, rotary on q and k, the FFN
    activation; per routed copy for experts plus their permutation (permutation_bytes_per_token),
    Megatron's FP8 quantisation padding copies (quant_padding_bytes_per_token), and the router. Unfused (eager) kernels move more bytes: see the EAGER_* constants. A LayerNorm
    is one fused kernel in PyTorch too (torch.nn.functional.layer_norm)."""
    m = ctx.model
    h, tp = m.hidden, t["tp"]
    eager = eager_mask(ctx, t)
    sp_div = np.where(t["sp"], tp, 1)
    norm = np.where(eager & (m.norm == "rmsnorm"), EAGER_RMSNORM_BYTES, FUSED_NORM_BYTES)
    residual = (2 * norm + 2 * (4 + 2)) * h / sp_div  # 2 norms (r+w), 2 residual adds (2r+w)
    if m.dropout:
        residual = residual + 2 * 5 * h / sp_div
    d_qk, _ = attention_dims(m)
    kv = m.heads if m.mla else m.n_kv_heads
    rope_b = np.where(eager, EAGER_ROPE_BYTES,
                      np.where(megatron_unfused_rope(ctx, t), MEGATRON_UNFUSED_ROPE_BYTES, FUSED_ROPE_BYTES)) \
        if m.position == "rope" else 0.0
    rope = rope_b * (m.heads + kv) * d_qk / tp
    ffn = m.moe.expert_ffn_hidden if (moe_layer and m.moe) else m.ffn_hidden
    act_b = np.where(eager, EAGER_SWIGLU_BYTES, FUSED_SWIGLU_BYTES) if m.ffn_act == "swiglu" else 4.0
    act = act_b * ffn / tp
    if moe_layer and m.moe:
        act = act * m.moe.top_k + permutation_bytes_per_token(m, t) + (act_b * m.moe.shared_ffn / tp) \
            + ROUTER_BYTES_PER_EXPERT * m.moe.experts + expert_epilogue_bytes_per_token(m, t) \
            + quant_padding_bytes_per_token(ctx, t)
    return residual + rope + act


# Megatron-Core's grouped experts (TEGroupedMLP in megatron/core/transformer/moe/experts.py, with
# fusions/fused_bias_geglu.py, at 92c8482e: the Megatron-LM that Megatron-Bridge 25.11 pins) run two
# pieces of gpt-oss's expert MLP outside fused kernels, in bf16 (Megatron-Bridge's gpt-oss recipe
# leaves moe_router_dtype unset, so the routing probabilities are bf16 too):
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
#   and reduced, 2 + 2 + 2 each) = 12. Kernels: a product and a sum per local expert forward, two
#   products and two reductions backward.
EXPERT_BIAS_BYTES_FWD, EXPERT_BIAS_BYTES_BWD = 12.0, 12.0
EXPERT_BIAS_KERNELS_PER_EXPERT = 6


def expert_epilogue_bytes_per_token(m, t):
    """Forward-equivalent HBM bytes per token of one MoE layer spent on Megatron's unfused clamp of a
    clamped gated activation (`swiglu_limit`) and per-expert fc2 bias (`linear_bias`), per routed
    copy: (forward + backward) / 3, because the time model takes every forward term's backward as
    twice the forward (layer_costs). Zero for other frameworks (torchtitan's and the serving engines'
    expert kernels apply the clamp and the bias in their fused activation / GEMM epilogue) and for
    models without the clamp or the biases."""
    if not m.moe:
        return 0.0
    clamp = (CLAMPED_GLU_BYTES_FWD + CLAMPED_GLU_BYTES_BWD) / 3 * m.moe.expert_ffn_hidden / t["tp"] \
        if m.swiglu_limit is not None else 0.0
    bias = (EXPERT_BIAS_BYTES_FWD + EXPERT_BIAS_BYTES_BWD) / 3 * m.hidden if m.linear_bias else 0.0
    return np.where(t["framework"] == MEG, m.moe.top_k * (clamp + bias), 0.0)


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


def titan_sac_recomputed_share(m, moe_layer: bool) -> float:
    """Share of a layer's non-expert weight-matmul FLOPs that torchtitan's op-level selective
    checkpointing recomputes: it saves the output of every compute op 'except every second mm'
    (torchtitan activation_checkpoint.py `_custom_policy`, mm counter per block), and saves SDPA, so
    attention itself is not recomputed. The mm sequence is the model's forward order: q, k, v, o, then
    w1, w3, w2 (gated) or up, down; MoE layers add the router and the shared expert (grouped expert
    GEMMs are not aten.mm)."""
    h, H = m.hidden, m.heads
    if m.mla:
        a = m.mla
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        seq = ([h * a.q_lora_rank, a.q_lora_rank * H * qk] if a.q_lora_rank else [h * H * qk]) + \
            [h * (a.kv_lora_rank + a.qk_rope_head_dim), a.kv_lora_rank * H * (a.qk_nope_head_dim + a.v_head_dim),
             H * a.v_head_dim * h]
    else:
        d, kv = m.d_head, m.n_kv_heads
        seq = [h * H * d, h * kv * d, h * kv * d, H * d * h]
    if moe_layer and m.moe:
        seq.append(h * m.moe.experts)
        f = m.moe.shared_ffn
    else:
        f = m.ffn_hidden
    if f:
        seq += [h * f, h * f, f * h] if m.ffn_act == "swiglu" else [h * f, f * h]
    return sum(seq[1::2]) / sum(seq)


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


def quant_padding_copies(ctx, t):
    """True per plan row where Megatron's grouped experts copy their tokens into and out of a padded
    buffer (QUANT_PAD_BYTES_*): Megatron, FP8 / FP4 precision, and per-expert row counts that are not
    multiples of the quantisation block. Dropless routing gives data-dependent counts (taken as
    unaligned); padding to capacity (runtime.moe_pad_to_capacity with model.moe.capacity_factor) gives
    each local expert capacity x etp x ep rows, capacity = ceil(local tokens x top_k / experts x
    capacity factor) (Megatron-Core get_capacity, MoEAlltoAllTokenDispatcher.preprocess), aligned or not
    as that number is."""
    import math

    m = ctx.model
    if not m.moe:
        return np.zeros(T.size(t), dtype=bool)
    rt = ctx.scenario.runtime
    quantised = (t["framework"] == MEG) & (t["precision"] == 3)
    if not (rt.moe_pad_to_capacity and m.moe.capacity_factor is not None):
        return quantised
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
    return np.where((t["framework"] == MEG) & (t["precision"] == 3), modules * 2 * per_tensor, 0.0)


# Router (Megatron-Core TopKRouter): logits computed and normalised in fp32: logits written (4),
# read by softmax / sigmoid which writes scores (4 + 4), read by top-k (4) per expert and token.
ROUTER_BYTES_PER_EXPERT = 16.0
# GEMM tile rows: cuBLAS / CUTLASS Hopper and Ampere kernels tile the output in 64-256 row blocks;
# a grouped expert GEMM pads each expert's rows to whole tiles ("tile quantization", NVIDIA Deep
# Learning Performance guide, Matrix Multiplication Background). 128 is the common tile height.
GEMM_TILE_ROWS = 128


def layer_costs(ctx, t) -> dict:
    """Seconds of one micro-batch through one layer of each kind (and through the output layer),
    which do not depend on the pipeline stage: computed once, then scaled by each stage's layer
    counts in `stage_compute`."""
    linear_fps, half_fps, hbm, _ = peaks(ctx.gpu, t, ctx.scenario.runtime.fp8_recipe)
    tokens = t["mbs"] * ctx.seq_len / t["cp"]
    out = {"dense_expert": 0.0, "moe_expert": 0.0}  # expert GEMM forward seconds (EP overlap phases)
    for kind, moe_layer in (("dense", False), ("moe", True)):
        if moe_layer and not ctx.model.moe:
            out[f"{kind}_fwd"] = out[f"{kind}_matmul"] = out[f"{kind}_sac"] = out[f"{kind}_host"] = out[f"{kind}_mrc"] = 0.0
            out[f"{kind}_host_fwd"] = 0.0
            out[f"{kind}_wcast"] = 0.0
            continue
        mm, expert_mm = layer_matmul_fwd_s(ctx, t, tokens, moe_layer, linear_fps, hbm)
        ew = tokens * (elementwise_bytes_per_token(ctx, t, moe_layer)
                       + fp8_cast_bytes_per_token(ctx, t, moe_layer)) / hbm
        # weight quantisation: forward only (its output serves the backward GEMMs too)
        out[f"{kind}_wcast"] = fp8_weight_cast_s(ctx, t, moe_layer, hbm) * weight_casts_per_mb(t)
        out[f"{kind}_fwd"], out[f"{kind}_matmul"] = mm + ew, mm
        # the unfused RoPE's extra kernels, a launch and tail each (a third of them in forward)
        out[f"{kind}_fwd"] = out[f"{kind}_fwd"] + np.where(
            megatron_unfused_rope(ctx, t), MEGATRON_UNFUSED_ROPE_EXTRA_KERNELS * GEMM_LAUNCH_S / 3, 0.0)
        if moe_layer:
            out[f"{kind}_expert"] = expert_mm
            # each per-expert quantisation kernel costs at least a launch and tail on the GPU; the
            # forward carries a third of forward + backward (backward = 2 x forward)
            out[f"{kind}_fwd"] = out[f"{kind}_fwd"] + (expert_quant_kernels(ctx, t)
                                                       + expert_bias_kernels(ctx.model, t)) * GEMM_LAUNCH_S / 3
        # torchtitan op-level selective checkpointing: every second non-expert mm and every
        # elementwise op run again in backward; attention is saved.
        out[f"{kind}_sac"] = titan_sac_recomputed_share(ctx.model, moe_layer) * (mm - expert_mm) + ew
        out[f"{kind}_host"] = layer_host_s(ctx, t, moe_layer, eager_mask(ctx, t))
        out[f"{kind}_host_fwd"] = layer_host_fwd_s(ctx, t, moe_layer, eager_mask(ctx, t))
        if moe_layer:
            # the dispatcher's device-to-host sync leaves the dispatch / expert section host-paced
            from planner.estimate.comm import ep_dispatch_s

            permute = tokens * permutation_bytes_per_token(ctx.model, t) / hbm
            out["moe_sync"] = moe_sync_exposed_s(ctx, t, expert_mm + permute + 2 * ep_dispatch_s(ctx, t))
            # forward host stretches end at each MoE layer's wait (host.synced_host_floor), which adds its latency
            out["moe_synced"] = moe_forward_syncs(ctx, t)
            out["moe_host_fwd"] = out["moe_host_fwd"] + np.where(out["moe_synced"], HOST_SYNC_S, 0.0)
        # Megatron selective recompute by module (planner.estimate.recompute): the listed modules' matmuls
        out[f"{kind}_mrc"] = recompute.recomputed_matmul_share(ctx, moe_layer, False) * (mm - expert_mm) \
            + recompute.recomputed_matmul_share(ctx, moe_layer, True) * expert_mm
        if moe_layer and "moe_act" in recompute.recompute_modules(ctx):
            out[f"{kind}_mrc"] = out[f"{kind}_mrc"] + tokens * moe_act_recompute_bytes_per_token(ctx.model, t) / hbm
    if ctx.scenario.runtime.flash_attention:
        # half_fps = peak x MAMF fraction.
        flops = attention_fwd_flops(ctx, t, tokens)
        fwd_fps, bwd_fps = attention_rates(ctx, t, half_fps)
        # context parallelism: merging the ring steps' partial results (context_parallel.merge_s)
        merge_fwd, merge_bwd = context_parallel.merge_s(ctx, t, hbm)
        out["attn_fwd"] = flops / fwd_fps + merge_fwd
        out["attn_bwd"] = FLASH_BWD_FLOPS_RATIO * flops / bwd_fps + merge_bwd
        # a full and a windowed layer apart, for the stages' own counts (stage_compute)
        full = full_attention_fwd_flops(ctx, t, tokens)
        share = window_tile_share(ctx.model, ctx.seq_len)
        out["attn_full_fwd"] = full / fwd_fps + merge_fwd
        out["attn_full_bwd"] = FLASH_BWD_FLOPS_RATIO * full / bwd_fps + merge_bwd
        out["attn_window_fwd"] = share * full / fwd_fps + merge_fwd
        out["attn_window_bwd"] = FLASH_BWD_FLOPS_RATIO * share * full / bwd_fps + merge_bwd
    else:
        out["attn_fwd"], out["attn_bwd"] = unfused_attention_s(ctx, t, half_fps, hbm)
    out["core_attn_rc"] = 1.0 if "core_attn" in recompute.recompute_modules(ctx) else 0.0
    out["full_rc_share"] = recompute.full_recompute_share(ctx, t)  # Megatron --recompute-method block
    # LM head and loss (bf16 even in FP8 recipes); the embedding lookup is negligible. Each MTP module
    # runs the shared output layer and the loss once more on the stage that holds the loss
    # (Megatron-Core process_mtp_loss, called in GPTModel._postprocess where post_process is set).
    out["head"] = (1 + ctx.model.mtp_layers) * (
        gemm_s(tokens, ctx.model.hidden, ctx.model.vocab / t["tp"], half_fps, hbm)
        + tokens * 10.0 * ctx.model.vocab / t["tp"] / hbm)  # loss: bf16 logits read, fp32 written and read (2+4+4 B)
    out["mtp_extra"] = mtp_extra_fwd_s(ctx, t, tokens, linear_fps, hbm) if ctx.model.mtp_layers else 0.0
    return out


# Elementwise bytes per token and hidden unit of one MTP module outside its transformer layer, forward:
# enorm and hnorm each read h and write h (bf16), the concatenation reads 2h and writes 2h, and its own
# final norm reads h and writes h: 2*2 + 2*2 + 2*2 = 12 bytes (Megatron-Core
# MultiTokenPredictionLayer._concat_embeddings and _postprocess).
MTP_ELEMENTWISE_BYTES_PER_HIDDEN = 12.0


def mtp_extra_fwd_s(ctx, t, tokens, linear_fps, hbm):
    """Forward seconds of one MTP module outside its transformer layer on the stage that holds it:
    eh_proj, a column-parallel (tokens x 2h) @ (2h x h/tp) GEMM run in the FP8 context, and the norms
    and concatenation (MTP_ELEMENTWISE_BYTES_PER_HIDDEN). Backward is twice the forward as for the
    layers (stage_compute)."""
    h = ctx.model.hidden
    low = NVFP4_OPERAND_BYTES if ctx.scenario.runtime.fp8_recipe == "nvfp4" else 1.0
    elem = np.where(t["precision"] == 3, low, np.where(t["precision"] == 0, 4.0, 2.0))
    return gemm_s(tokens, 2 * h, h / t["tp"], linear_fps, hbm, elem) \
        + tokens * MTP_ELEMENTWISE_BYTES_PER_HIDDEN * h / hbm


def stage_compute(t, unit: dict, dense, moe, stage: str, mtp=0.0, windowed=None) -> dict:
    """Forward, backward and recompute seconds of one micro-batch on a stage holding `dense` and
    `moe` layers (the output layer on the last stage, or on the only one), `mtp` MTP modules
    (their transformer layers among `dense` / `moe`; eh_proj and norms here: unit['mtp_extra']) and
    `windowed` of the layers sliding-window ones (None: each layer at the model's mean attention cost)."""
    fwd = dense * unit["dense_fwd"] + moe * unit["moe_fwd"] + mtp * unit.get("mtp_extra", 0.0)
    lps = dense + moe
    sync = moe * unit.get("moe_sync", 0.0)  # forward only, not recomputed (host.moe_sync_exposed_s)
    if windowed is None or "attn_full_fwd" not in unit:
        attn_fwd, attn_bwd = lps * unit["attn_fwd"], lps * unit["attn_bwd"]
    else:
        attn_fwd = (lps - windowed) * unit["attn_full_fwd"] + windowed * unit["attn_window_fwd"]
        attn_bwd = (lps - windowed) * unit["attn_full_bwd"] + windowed * unit["attn_window_bwd"]
    head = np.where((t["pp"] == 1) | (stage == "last"), unit["head"], 0.0)
    rc = t["recompute"]
    # Selective: Megatron recomputes core attention (Korthikanti et al. 2022) and the other modules of
    # runtime.recompute_modules (unit["core_attn_rc"], "*_mrc"); torchtitan its op-level policy
    # (titan_sac_recomputed_share).
    megatron = unit.get("core_attn_rc", 1.0) * attn_fwd + dense * unit.get("dense_mrc", 0.0) + moe * unit.get("moe_mrc", 0.0)
    selective = np.where(t["framework"] == TT, dense * unit["dense_sac"] + moe * unit["moe_sac"], megatron)
    # The host must issue every kernel: forward + backward is at least its launch time (host.py).
    # FP8 weight quantisation runs in forward only; a recomputed forward casts again where the
    # framework keeps no cached FP8 weight (weight_casts_per_mb).
    wcast = dense * unit.get("dense_wcast", 0.0) + moe * unit.get("moe_wcast", 0.0)
    # With a dispatcher wait in every MoE layer's forward, forward and backward meet the host apart.
    synced = (moe > 0) & unit.get("moe_synced", False)
    forward, backward = synced_host_floor(fwd + attn_fwd + head + wcast + sync, 2 * (fwd + head) + attn_bwd,
                                          dense * unit["dense_host"] + moe * unit["moe_host"],
                                          dense * unit.get("dense_host_fwd", 0.0) + moe * unit.get("moe_host_fwd", 0.0),
                                          synced)
    full = fwd + attn_fwd + np.where(t["framework"] == MEG, 0.0, wcast)
    return {"forward": forward, "backward": backward,
            "recompute": np.where(rc == 2, unit.get("full_rc_share", 1.0) * full,
                                  np.where(rc == 1, selective, 0.0)),
            "attention_fwd": attn_fwd,
            "layer_matmul_fwd": dense * unit["dense_matmul"] + moe * unit["moe_matmul"]}


def microbatch_compute(ctx, t, stage: str) -> dict:
    """Forward, backward and recompute seconds of one micro-batch on the 'first' or 'last' stage."""
    from planner.estimate.memory_terms_stage import stage_mtp

    _, dense, moe = stage_layers(ctx, t, stage)
    return stage_compute(t, layer_costs(ctx, t), dense, moe, stage, stage_mtp(ctx, t, stage))
