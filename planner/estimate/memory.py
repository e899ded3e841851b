"""Per-GPU and per-host memory of a plan, term by term (vectorised over a plan table).

Model states follow Rajbhandari et al. 2020 (ZeRO, arXiv:1910.02054, Sec. 3 and Fig. 1: mixed
precision Adam keeps 2 + 2 + 12 bytes per parameter; stage 1 shards the 12, stage 2 also the
gradients, stage 3 also the weights) with each framework's own choices:
  * Megatron-LM keeps an fp32 `main_grad` accumulation buffer (4 bytes/param), and its distributed
    optimizer (ZeRO-1) shards only master weights and Adam moments: 6 + 12/d bytes per parameter
    (Megatron-LM docs, "Distributed Optimizer").
  * torchtitan FSDP2 keeps sharded fp32 parameters (they are the master copy) and fp32 sharded
    gradients: 4 + 4 + 8 bytes per parameter, all divided by the shard group.
Activations follow Korthikanti et al. 2022 (arXiv:2205.05198, Sec. 4, Eq. 1-2 and Table 2), derived
per tensor from the architecture so GQA, SwiGLU, MoE and flash attention are covered; pipeline
in-flight micro-batches per Sec. 4.2.3 (1F1B: pp micro-batches on the first stage; interleaved:
times 1 + (pp-1)/(pp*vpp)).
"""

from __future__ import annotations

import numpy as np

GIB = 2**30

# Bytes per element by precision code (fp32, fp16, bf16, fp8): the dtype weights are kept in for
# compute. FP8 training (Transformer Engine) keeps bf16 weights plus FP8 copies (see fp8_extra).
COMPUTE_BYTES = np.array([4, 2, 2, 2])
# Optimizer state bytes per parameter, excluding the fp32 master copy (ZeRO paper K=12 = 4 + 8).
OPTIMIZER_BYTES = {"adamw": 8.0, "adam": 8.0, "adam8bit": 2.0, "sgd": 4.0,
                   # Adafactor (Shazeer & Stern 2018): factored second moment, O(rows + cols) per matrix
                   # and no first moment by default: negligible per parameter.
                   "adafactor": 0.0}
# CUDA context, cuBLAS/cuDNN workspaces and NCCL communicator buffers. Assumed, not measured yet:
# PyTorch's CUDA context alone is about 0.3-0.6 GiB on Hopper; NCCL allocates buffers per
# communicator. Issue 3 replaces this with a measured, framework-aware term.
CONTEXT_BYTES = 1.5 * GIB
# The caching allocator's fragmentation: reserved exceeds allocated by a few percent. Assumed 5%.
FRAGMENTATION = 0.05
# Host RAM per node that is not model state: OS, the training processes and data loaders.
HOST_BASE_BYTES_PER_GPU = 8 * GIB


def stage_layers(ctx, t, stage: str):
    """(layers, dense layers, MoE layers) of the 'first' or 'last' pipeline stage; with pp = 1 the one
    stage holds everything. Even layer split (layers / pp); dense layers lead (DeepSeek)."""
    st, pp = ctx.stats, t["pp"]
    lps = ctx.model.layers / pp
    if stage == "first":
        dense = np.minimum(lps, st.dense_layers)
    else:
        dense = np.where(pp == 1, st.dense_layers, np.maximum(0, st.dense_layers - (pp - 1) * lps))
    return lps, dense, lps - dense


def stage_params(ctx, t, stage: str):
    """Parameters held by the 'first' or 'last' pipeline stage, split into (non_expert, expert) per
    model replica (before tensor/expert sharding)."""
    st, pp = ctx.stats, t["pp"]
    lps, dense, moe = stage_layers(ctx, t, stage)
    per_layer = st.attention_per_layer + st.norms_per_layer
    non_expert = lps * per_layer + dense * st.dense_mlp_per_layer \
        + moe * (st.router_per_moe_layer + st.shared_experts_per_moe_layer)
    ends = st.embedding if stage == "first" else st.lm_head + st.final_norm
    non_expert = non_expert + np.where(pp == 1, st.embedding + st.lm_head + st.final_norm, ends)
    expert = moe * st.routed_experts_per_moe_layer
    return non_expert, expert


def model_state_bytes(ctx, t, stage: str) -> dict:
    """Weights, gradients, optimizer (incl. master weights) per GPU, and what is offloaded."""
    non_expert, expert = stage_params(ctx, t, stage)
    tp, dp, cp, ep, zero, fw = t["tp"], t["dp"], t["cp"], t["ep"], t["zero"], t["framework"]
    # Tensor parallelism splits every weight matrix (norms are replicated but tiny); experts are
    # split over ep and, inside an expert, over tp (Megatron-Core's expert TP defaults to tp).
    local = non_expert / tp + expert / (ep * tp)
    shard = dp * cp                       # ZeRO / distributed-optimizer group: dp x cp
    eshard = np.maximum(1, dp * cp // ep)  # expert data-parallel group
    local_sharded = non_expert / tp / shard + expert / (ep * tp) / eshard

    wbytes = COMPUTE_BYTES[t["precision"]].astype(float)
    fp8_extra = np.where(t["precision"] == 3, 2.0, 0.0)  # FP8 weight copy + its transpose (TE)
    is_fp32 = t["precision"] == 0
    master = np.where(is_fp32, 0.0, 4.0)
    opt = OPTIMIZER_BYTES[ctx.optimizer]
    megatron, titan = fw == 1, fw == 2
    gbytes = np.where(megatron & ~is_fp32, 4.0, wbytes)  # Megatron fp32 main_grad buffer

    w = np.where(zero >= 3, local_sharded, local) * (wbytes + fp8_extra)
    g = np.where(zero >= 2, local_sharded, local) * gbytes
    o = np.where(zero >= 1, local_sharded, local) * (master + opt)
    # torchtitan FSDP2: fp32 sharded params are the master copy, fp32 sharded grads.
    w = np.where(titan, local_sharded * (4.0 + fp8_extra), w)
    g = np.where(titan, local_sharded * 4.0, g)
    o = np.where(titan, local_sharded * opt, o)

    off_opt = t["offload"] > 0
    off_par = t["offload_params"] > 0
    moved_opt, moved_par = np.where(off_opt, o, 0.0), np.where(off_par, w, 0.0)
    o = np.where(off_opt, 0.0, o)
    w = np.where(off_par, 0.0, w)
    return {"weights": w, "gradients": g, "optimizer": o, "offloaded_opt": moved_opt,
            "offloaded_params": moved_par, "local_params": local}


def layer_activation_bytes(ctx, t, flash: bool = True) -> dict:
    """Stored activation bytes per layer and micro-batch on one GPU, for dense and MoE layers,
    keyed by recompute mode. Tensors per token (bf16 = 2 bytes), after Korthikanti et al. 2022:
      replicated unless SP: norm inputs 2h x 2, QKV input 2h, MLP input 2h, dropout masks h x 2;
      split by tp: Q, K, V, attention output (2 bytes x heads x head dim), flash-attention's
      log-sum-exp (4 bytes x heads); MLP: SwiGLU gate, up and down-projection input (6 f), GeLU
      input and output (4 f); MoE: per routed copy its dispatched input, expert intermediates and
      combine buffer, plus fp32 router logits.
    Without flash attention, the softmax output (2 x heads x s) and, with dropout, its mask and
    output (3 x heads x s) are stored per token. Selective recompute drops the core-attention
    tensors except their output (s x s scores, softmax statistics); full recompute stores only each
    layer's input (Korthikanti Sec. 4.1 and 5)."""
    m = ctx.model
    h, H, s = m.hidden, m.heads, ctx.seq_len
    tp = t["tp"].astype(float)
    sp_div = np.where(t["sp"], tp, 1.0)
    tokens = t["mbs"] * s / t["cp"]
    drop = 1.0 if m.dropout else 0.0
    from planner.arch import attention_dims

    d_qk, d_v = attention_dims(m)
    kv = H if m.mla else m.n_kv_heads
    kv_local = np.maximum(kv / tp, 1.0)  # KV heads replicate when tp > kv_heads
    heads_local = H / tp
    replicated = (2 * h + 2 * h + drop * h) + (2 * h + 2 * h + drop * h)
    if m.mla:
        replicated = replicated + 2 * ((m.mla.q_lora_rank or 0) + m.mla.kv_lora_rank)
    qkv = 2 * (heads_local * d_qk + kv_local * d_qk + kv_local * d_v)
    if flash:
        core = 2 * heads_local * d_v + 4 * heads_local  # attention output + fp32 log-sum-exp
    else:  # attention output + softmax (+ dropout mask and output): s x s per head
        core = 2 * heads_local * d_v + heads_local * s / t["cp"] * (2 + 3 * drop)
    up = 2 if m.ffn_act == "swiglu" else 1
    dense_mlp = (2 * up + 2) * m.ffn_hidden / tp
    moe_mlp = 0.0
    if m.moe:
        mo = m.moe
        cf = mo.capacity_factor or 1.0
        routed = mo.top_k * cf * (2 * h + 2 * h + (2 * up + 2) * mo.expert_ffn_hidden / tp)
        shared = (2 * up + 2) * mo.shared_ffn / tp
        moe_mlp = routed + shared + 4 * mo.experts
    base = replicated / sp_div + qkv
    kept = 2 * heads_local * d_v  # core-attention output: the out-projection needs it either way
    per_token_dense = {"none": base + core + dense_mlp, "selective": base + kept + dense_mlp}
    per_token_moe = {"none": base + core + moe_mlp, "selective": base + kept + moe_mlp}
    out = {}
    for kind, table in (("dense", per_token_dense), ("moe", per_token_moe)):
        out[kind] = {k: v * tokens for k, v in table.items()}
        out[kind]["full"] = 2 * h / sp_div * tokens  # the checkpointed layer input
    return out


def activation_bytes(ctx, t, stage: str):
    """Activations of the most loaded stage: per-layer bytes x layers per stage x micro-batches in
    flight (first stage: min(pp, ga) for 1F1B, times 1 + (pp-1)/(pp*vpp) when interleaved; last
    stage: one), plus one layer's full activations when recomputing everything, plus the
    embedding output (first stage) or the logits and fp32 loss buffers (last stage)."""
    m = ctx.model
    pp, ga, vpp = t["pp"], t["ga"], t["vpp"]
    _, dense, moe = stage_layers(ctx, t, stage)
    per_layer = layer_activation_bytes(ctx, t)
    rc = t["recompute"]

    def pick(kind):
        d = per_layer[kind]
        return np.where(rc == 0, d["none"], np.where(rc == 1, d["selective"], d["full"]))

    stage_acts = dense * pick("dense") + moe * pick("moe")
    largest_full = np.maximum(per_layer["dense"]["none"], per_layer["moe"]["none"]) if m.moe \
        else per_layer["dense"]["none"]
    interleave = np.where(vpp > 1, 1 + (pp - 1) / (pp * vpp), 1.0)
    if stage == "first":
        in_flight = np.minimum(pp, ga) * interleave
    else:
        in_flight = np.ones_like(pp, dtype=float)
    acts = stage_acts * in_flight + np.where(rc == 2, largest_full, 0.0)
    tokens = t["mbs"] * ctx.seq_len / t["cp"]
    tp = t["tp"]
    embed_out = 2 * m.hidden * tokens / np.where(t["sp"], tp, 1)
    logits = 6 * m.vocab * tokens / tp  # bf16 logits + fp32 copy for the loss (vocab-parallel)
    ends = np.where(pp == 1, embed_out + logits, embed_out if stage == "first" else logits)
    return acts + ends


def other_bytes(ctx, t, used):
    """CUDA context and NCCL buffers, DeepSpeed's reduce/all-gather buckets, ZeRO-3 / FSDP live
    parameters of the next layer (prefetch), and allocator fragmentation."""
    st = ctx.stats
    fw, zero, tp = t["framework"], t["zero"], t["tp"]
    layer_params = (st.attention_per_layer + max(st.dense_mlp_per_layer, st.routed_experts_per_moe_layer
                                                 // max(1, st.experts) * max(1, st.top_k)
                                                 + st.shared_experts_per_moe_layer)) / tp
    # DeepSpeed defaults reduce_bucket_size = allgather_bucket_size = 5e8 elements (ZeRO config
    # docs); the planner's export sets both to 2e8 elements (bf16: 0.4 GB each).
    ds_buckets = np.where((fw == 0) & (zero >= 1), 2 * 2e8 * 2, 0.0)
    # Parameter prefetch under ZeRO-3 / FSDP: about two layers' full weights live at once.
    prefetch = np.where(zero >= 3, 2 * layer_params * 2, 0.0)
    base = CONTEXT_BYTES + ds_buckets + prefetch
    return base + FRAGMENTATION * (used + base)


def memory(ctx, t) -> dict:
    """Per-GPU memory of the most loaded stage, by term, and host memory per node (bytes)."""
    best = None
    for stage in ("first", "last"):
        ms = model_state_bytes(ctx, t, stage)
        acts = activation_bytes(ctx, t, stage)
        used = ms["weights"] + ms["gradients"] + ms["optimizer"] + acts
        other = other_bytes(ctx, t, used)
        total = used + other
        terms = {"weights": ms["weights"], "gradients": ms["gradients"], "optimizer": ms["optimizer"],
                 "activations": acts, "other": other, "total": total, "offloaded_opt": ms["offloaded_opt"],
                 "offloaded_params": ms["offloaded_params"],
                 "local_params": ms["local_params"]}
        if best is None:
            best = terms
        else:
            pick = total > best["total"]
            best = {k: np.where(pick, terms[k], best[k]) for k in best}
    node = ctx.node
    gpn = node.gpus_per_node
    opt, par = best["offloaded_opt"], best["offloaded_params"]
    host_states = np.where(t["offload"] == 1, opt, 0.0) + np.where(t["offload_params"] == 1, par, 0.0)
    best["host_per_node"] = host_states * gpn + HOST_BASE_BYTES_PER_GPU * gpn
    best["nvme_per_node"] = (np.where(t["offload"] == 2, opt, 0.0)
                             + np.where(t["offload_params"] == 2, par, 0.0)) * gpn
    return best
