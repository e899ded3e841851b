"""Compute time of one micro-batch on one pipeline stage (vectorised over a plan table).

* Weight matmuls, per GEMM after the tensor-parallel split: 2MKN / (peak x MAMF) + bytes moved /
  (HBM bandwidth x 0.8) + a launch latency (compute_gemm.gemm_s); expert matmuls as grouped GEMMs
  padded to whole tiles (compute_moe.grouped_expert_gemm_s).
* Attention core: flash attention at a fraction of the MAMF rate, sliding-window layers by the score
  tiles the kernel visits, or the unfused path (compute_attention).
* Memory-bound operators (norms, residual adds, activation functions, rotary, dropout, MoE
  permutation, router, FP8 casts): bytes read and written per token / (HBM bandwidth x 0.8)
  (compute_elementwise, compute_moe, compute_quant); the LM head and loss, and the MTP modules'
  extra work on the stage that holds them (compute_mtp).
* Backward = 2 x forward for matmuls (input and weight gradients).

This module assembles them per layer (`layer_costs`) and per stage (`stage_compute`).
"""

from __future__ import annotations

import numpy as np

from planner.arch import attention_dims, layer_matmuls
from planner.estimate import recompute
from planner.estimate.compute_attention import attention_costs
from planner.estimate.compute_elementwise import (EAGER_RMSNORM_BYTES, EAGER_ROPE_BYTES, EAGER_SWIGLU_BYTES,
                                                  FUSED_NORM_BYTES, FUSED_ROPE_BYTES, FUSED_SWIGLU_BYTES,
                                                  MEGATRON_UNFUSED_ROPE_BYTES, MEGATRON_UNFUSED_ROPE_EXTRA_KERNELS,
                                                  eager_mask, megatron_unfused_rope)
from planner.estimate.compute_gemm import GEMM_LAUNCH_S, gemm_s, peaks
from planner.estimate.compute_moe import (ROUTER_BYTES_PER_EXPERT, expert_bias_kernels,
                                          expert_epilogue_bytes_per_token, expert_quant_kernels, fused_grouped_mlp,
                                          grouped_expert_gemm_s,
                                          moe_act_recompute_bytes_per_token, permutation_bytes_per_token,
                                          quant_padding_bytes_per_token)
from planner.estimate.compute_mtp import mtp_extra_fwd_s, output_layer_fwd_s
from planner.estimate.compute_quant import (fp8_cast_bytes_per_token, fp8_weight_cast_s, gemm_operand_bytes,
                                            weight_casts_per_mb)
from planner.estimate.host import (HOST_SYNC_S, layer_host_fwd_s, layer_host_s, moe_forward_syncs,
                                   moe_sync_exposed_s, synced_host_floor)
from planner.estimate.memory import stage_layers
from planner.estimate.table import MEG, TT


def layer_matmul_fwd_s(ctx, t, tokens, moe_layer: bool, linear_fps, hbm):
    """Forward time of the weight matmuls of one layer for `tokens` tokens on one GPU, and the part
    of it spent in expert GEMMs."""
    tp = t["tp"]
    elem = gemm_operand_bytes(ctx, t)
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
            e = grouped_expert_gemm_s(ctx, t, tokens, mm.per_token, k, n, linear_fps, hbm, elem)
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
        # the fused grouped MLP (runtime.moe_fused_grouped_mlp) computes the experts' activation, clamp and
        # biases in its GEMM epilogues (compute_moe.fused_grouped_mlp)
        fused_mlp = fused_grouped_mlp(ctx, t)
        epilogue = expert_epilogue_bytes_per_token(m, t, ctx.scenario.runtime.moe_dispatcher)
        act = np.where(fused_mlp, 0.0, act * m.moe.top_k + epilogue) \
            + permutation_bytes_per_token(m, t) + (act_b * m.moe.shared_ffn / tp) \
            + ROUTER_BYTES_PER_EXPERT * m.moe.experts + quant_padding_bytes_per_token(ctx, t)
    return residual + rope + act


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


def layer_kind_costs(ctx, t, tokens, moe_layer: bool, linear_fps, hbm) -> dict:
    """Seconds of one micro-batch through one dense or MoE layer, its attention core apart: 'fwd'
    (weight matmuls, elementwise and FP8 cast traffic, the launches of the kernels counted by number),
    'matmul' (its weight matmuls), 'expert' (their expert GEMMs, MoE only), 'wcast' (FP8 weight
    quantisation), 'sac' (what torchtitan's selective checkpointing runs again), 'mrc' (what Megatron's
    recompute by module runs again), 'host' / 'host_fwd' (the host's time to issue the kernels), and
    for MoE layers 'sync' / 'synced' (the dispatcher's device-to-host wait, host.py)."""
    out = {}
    mm, expert_mm = layer_matmul_fwd_s(ctx, t, tokens, moe_layer, linear_fps, hbm)
    ew = tokens * (elementwise_bytes_per_token(ctx, t, moe_layer)
                   + fp8_cast_bytes_per_token(ctx, t, moe_layer)) / hbm
    # weight quantisation: forward only (its output serves the backward GEMMs too)
    out["wcast"] = fp8_weight_cast_s(ctx, t, moe_layer, hbm) * weight_casts_per_mb(t)
    out["fwd"], out["matmul"] = mm + ew, mm
    # the unfused RoPE's extra kernels, a launch and tail each (a third of them in forward)
    out["fwd"] = out["fwd"] + np.where(
        megatron_unfused_rope(ctx, t), MEGATRON_UNFUSED_ROPE_EXTRA_KERNELS * GEMM_LAUNCH_S / 3, 0.0)
    if moe_layer:
        out["expert"] = expert_mm
        # each per-expert quantisation kernel costs at least a launch and tail on the GPU; the
        # forward carries a third of forward + backward (backward = 2 x forward)
        out["fwd"] = out["fwd"] + (expert_quant_kernels(ctx, t) + np.where(fused_grouped_mlp(ctx, t), 0.0, expert_bias_kernels(ctx.model, t))) \
            * GEMM_LAUNCH_S / 3
    # torchtitan op-level selective checkpointing: every second non-expert mm and every
    # elementwise op run again in backward; attention is saved.
    out["sac"] = titan_sac_recomputed_share(ctx.model, moe_layer) * (mm - expert_mm) + ew
    out["host"] = layer_host_s(ctx, t, moe_layer, eager_mask(ctx, t))
    out["host_fwd"] = layer_host_fwd_s(ctx, t, moe_layer, eager_mask(ctx, t))
    if moe_layer:
        # the dispatcher's device-to-host sync leaves the dispatch / expert section host-paced
        from planner.estimate.comm import ep_dispatch_s

        permute = tokens * permutation_bytes_per_token(ctx.model, t) / hbm
        out["sync"] = moe_sync_exposed_s(ctx, t, expert_mm + permute + 2 * ep_dispatch_s(ctx, t))
        # forward host stretches end at each MoE layer's wait (host.synced_host_floor), which adds its latency
        out["synced"] = moe_forward_syncs(ctx, t)
        out["host_fwd"] = out["host_fwd"] + np.where(out["synced"], HOST_SYNC_S, 0.0)
    # Megatron selective recompute by module (planner.estimate.recompute): the listed modules' matmuls
    out["mrc"] = recompute.recomputed_matmul_share(ctx, moe_layer, False) * (mm - expert_mm) \
        + recompute.recomputed_matmul_share(ctx, moe_layer, True) * expert_mm
    if moe_layer and "moe_act" in recompute.recompute_modules(ctx):
        out["mrc"] = out["mrc"] + tokens * moe_act_recompute_bytes_per_token(ctx.model, t) / hbm
    return out


def layer_costs(ctx, t) -> dict:
    """Seconds of one micro-batch through one layer of each kind (and through the output layer),
    which do not depend on the pipeline stage: computed once, then scaled by each stage's layer
    counts in `stage_compute`. Keys: layer_kind_costs's with a 'dense_' / 'moe_' prefix (zero for
    MoE layers of a dense model), attention_costs's, the recompute shares and the output layer."""
    linear_fps, half_fps, hbm, _ = peaks(ctx.gpu, t, ctx.scenario.runtime.fp8_recipe)
    tokens = t["mbs"] * ctx.seq_len / t["cp"]
    out = {"dense_expert": 0.0, "moe_expert": 0.0}  # expert GEMM forward seconds (EP overlap phases)
    for kind, moe_layer in (("dense", False), ("moe", True)):
        if moe_layer and not ctx.model.moe:
            out.update(dict.fromkeys(("moe_fwd", "moe_matmul", "moe_sac", "moe_host", "moe_mrc", "moe_host_fwd",
                                      "moe_wcast"), 0.0))
            continue
        costs = layer_kind_costs(ctx, t, tokens, moe_layer, linear_fps, hbm)
        out.update({f"{kind}_{key}": v for key, v in costs.items()})
    out.update(attention_costs(ctx, t, tokens, half_fps, hbm))
    out["core_attn_rc"] = 1.0 if "core_attn" in recompute.recompute_modules(ctx) else 0.0
    out["full_rc_share"] = recompute.full_recompute_share(ctx, t)  # Megatron --recompute-method block
    out["head"] = output_layer_fwd_s(ctx, t, tokens, half_fps, hbm)
    out["mtp_extra"] = mtp_extra_fwd_s(ctx, t, tokens, linear_fps, hbm) if ctx.model.mtp_layers else 0.0
    return out


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
