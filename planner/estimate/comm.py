"""Communication time of each collective on the link it crosses (vectorised over a plan table).

Ranks are placed TP innermost, then CP, then DP (EP is carved from DP x CP, consecutive), then PP
(Megatron-LM's default order). A group whose span (size x stride) fits in the scale-up domain runs
on NVLink/xGMI; a larger one is bounded by the per-GPU scale-out NIC (rings: all-gather,
reduce-scatter, send/recv), except all-reduce, which runs hierarchically (inside each domain on
NVLink, across domains on the NICs with the bytes divided among the domain's members).

Cost model (Thakur et al. 2005; NCCL's bus-bandwidth convention, nccl-tests PERFORMANCE.md):
ring all-reduce moves 2(n-1)/n x bytes per GPU, all-gather / reduce-scatter (n-1)/n x bytes,
all-to-all (n-1)/n x bytes; time = alpha + moved / achievable bus bandwidth.
Achievable fractions of the spec bandwidth come from the node catalog (`scaleup_efficiency`,
`scaleout_efficiency`; e.g. NVLink ring collectives reach about 80-82% of the unidirectional spec,
NDR 400G about 46-48 GB/s per NIC through NCCL: shared/reference/hardware_facts.yaml).
"""

from __future__ import annotations

import numpy as np

from planner.estimate import memory
from planner.estimate import table as T
from planner.estimate.table import DS, MEG, TT
from planner.estimate.topology import Group, group
from planner.estimate import ep_dedup
from planner.estimate.compute_attention import FLASH_BWD_FLOPS_RATIO
from planner.estimate.compute_gemm import HBM_EFFICIENCY
from planner.estimate import compute_quant as CQ


DEFAULT_SCALEUP_EFF = 0.80
DEFAULT_SCALEOUT_EFF = 0.85  # assumed where the node has none: lower end of 85-94% measured (NDR, HDR)
# Per-collective latency, assumed: NCCL small-message latency is about 10 us inside a node and
# a few tens of us across nodes (nccl-tests, 8-byte all-reduce).
ALPHA_IN_S = 10e-6
ALPHA_OUT_S = 30e-6
# token dispatchers whose kernels send a token once per destination node / GPU (planner.estimate.ep_dedup)
DEDUP_DISPATCHERS = ("deepep", "hybridep")


def _rates(node):
    up = node.scaleup_gb_s * 1e9 * (node.scaleup_efficiency or DEFAULT_SCALEUP_EFF)
    out = (node.scaleout_gb_s or 0.0) * 1e9 * (node.scaleout_efficiency or DEFAULT_SCALEOUT_EFF)
    return up, (out if out > 0 else 1e-9)  # no scale-out link: only single-domain clusters are valid


def mesh_share(node, k):
    """Share of the scale-up bandwidth a group with k members in one domain can use: 1 behind a switch
    (NVSwitch: every GPU reaches every peer at its full rate); on a switchless full mesh of L direct links
    per GPU (node `scaleup_mesh_links`; AMD's 8-GPU xGMI boards: 7 links, scaleup_gb_s = 7 x one link) only
    the k - 1 links to the other members carry the group's traffic: min(1, (k - 1) / L). Measured on 8x
    MI300X: RCCL all-reduce 47.7 GB/s bus bandwidth on 2 GPUs vs 312.9 GB/s on 8 (ml-engineering network
    notes, catalogs/nodes.yaml mi300x-8; 312.9 x 1/7 = 44.7); vLLM's custom all-reduce on MI300X: 2 GPUs
    44.1 us per extra 2 MB (47.6 GB/s), 4 GPUs 112 us per extra 8 MB (107 GB/s) (vLLM PR 19744 / ROCm aiter
    PR 801 kernel tables); vLLM PR 39080 states MI355X peak bus bandwidth as (N - 1) x 76.8 GB/s."""
    links = getattr(node, "scaleup_mesh_links", None)
    if not links:
        return 1.0
    return np.minimum(1.0, np.maximum(np.asarray(k, dtype=float) - 1.0, 1.0) / links)


def link(node, g: Group):
    """(bandwidth bytes/s, latency s) of the slowest hop of the ring of group `g` (topology.group):
    NVLink/xGMI when the whole group sits in one scale-up domain, else the per-GPU NIC (the
    cluster graph of planner.estimate.topology decides)."""
    up, out = _rates(node)
    return np.where(g.crosses, out, up * mesh_share(node, g.k)), np.where(g.crosses, ALPHA_OUT_S, ALPHA_IN_S)


def gather_s(node, nbytes, g: Group):
    """All-gather or reduce-scatter of a buffer of `nbytes` (the full, gathered size) as an NCCL ring:
    every rank sends (n-1)/n x bytes to its successor. Across scale-up domains the ring's crossing
    hops carry that traffic, and NCCL spreads its channels so that the crossings leave through
    different members' NICs (one NIC per GPU, rail-optimised fabric): the k members of a domain
    share k NICs, bandwidth min(scale-up, k x NIC). One member per domain gives the per-GPU NIC
    rate; eight give the node's eight NICs, which is why multi-node ring bus bandwidth on 8-GPU
    nodes is about 8 x the per-NIC rate (e.g. 400-450 GB/s on DGX H100, 8 x NDR 400G: nccl-tests
    expectations in cluster acceptance guides)."""
    up, out = _rates(node)
    size, k = g.size, g.k
    up = up * mesh_share(node, k)
    bw = np.where(g.crosses, np.minimum(up, k * out), up)
    alpha = np.where(g.crosses, ALPHA_OUT_S, ALPHA_IN_S)
    return np.where(size > 1, alpha + (size - 1) / size * nbytes / bw, 0.0)


def all_reduce_s(node, nbytes, g: Group):
    """All-reduce, 2(n-1)/n x bytes, hierarchical across scale-up domains (NCCL tree / NVLS-tree
    algorithms): with k ranks per domain and m domains, the intra-domain part moves 2(k-1)/k of the
    buffer on NVLink and the inter-domain part 2(m-1)/m of a 1/k shard on the NICs, which is why
    multi-node all-reduce bus bandwidth exceeds the NIC rate by about (n-1)/(m-1) (ml-engineering
    network notes: 4 x 8 B200, 381.8 GB/s busbw = 37 GB/s per NIC)."""
    up, out = _rates(node)
    size, k = g.size, g.k
    m = size / k
    intra = 2 * (k - 1) / k * nbytes / (up * mesh_share(node, k))
    inter = 2 * (m - 1) / m * nbytes / k / out
    alpha = np.where(m > 1, ALPHA_IN_S + ALPHA_OUT_S, ALPHA_IN_S)
    return np.where(size > 1, alpha + intra + inter, 0.0)


def all_to_all_s(node, nbytes, g: Group):
    """All-to-all of `nbytes` per rank: (k-1)/n of it to peers in the same domain on NVLink and
    (n-k)/n to the others on the NICs, both at once."""
    up, out = _rates(node)
    size, k = g.size, g.k
    intra = (k - 1) / size * nbytes / (up * mesh_share(node, k))
    inter = (size - k) / size * nbytes / out
    alpha = np.where(size > k, ALPHA_OUT_S, ALPHA_IN_S)
    return np.where(size > 1, alpha + np.maximum(intra, inter), 0.0)


def layer_comm(ctx, t, attn_layer_fwd_s, attn_layer_bwd_s=None) -> dict:
    """Exposed communication seconds of one micro-batch, per layer (TP, CP), per MoE layer (EP) and
    per stage boundary (PP): stage-independent, scaled by each stage's layer counts in evaluate; and
    one EP dispatch (ep_dispatch_s) as 'ep_dispatch'. Each group is profiled once (topology.group)."""
    m, node = ctx.model, ctx.node
    tp, cp, ep, dp, pp = t["tp"], t["cp"], t["ep"], t["dp"], t["pp"]
    tp_g = group(node, tp, 1)
    tokens = t["mbs"] * ctx.seq_len / cp
    full_rc = t["recompute"] == 2

    # Tensor parallel (Megatron, Shoeybi et al. 2019 Sec. 3; with SP, Korthikanti et al. 2022
    # Sec. 4.2.2: all-gather + reduce-scatter, the same volume): 2 per layer forward, 2 backward,
    # 2 more when the forward is recomputed. Overlap with GEMMs: tp_exposed_s.
    act_bytes = 2.0 * tokens * m.hidden
    per_layer = all_reduce_s(node, act_bytes, tp_g)
    # With SP the backward all-gathers each column-parallel input again for the weight gradient,
    # since only the sequence-sharded input was stored (Korthikanti et al. 2022 Sec. 4.2.2): two more
    # all-gathers (half an all-reduce each) per layer. torchtitan's sequence parallelism is DTensor
    # redistribution (Shard -> Replicate before the column-parallel matmul): autograd saves the
    # gathered input the matmul consumed, so its backward has no re-gather (and with full activation
    # checkpointing the recomputed forward gathers again, counted in the 6 above).
    regather = np.where(t["sp"] & (t["framework"] != TT),
                        2 * gather_s(node, act_bytes, tp_g), 0.0)
    tp_layer = per_layer * np.where(full_rc, 6, 4) + regather
    # Megatron's TE layers gather quantised tensors in the FP8 precision (sp_quantised_gather_saving_s)
    tp_moe_layer = tp_layer - sp_quantised_gather_saving_s(ctx, t, tokens * m.hidden, True, tp_g)
    tp_layer = tp_layer - sp_quantised_gather_saving_s(ctx, t, tokens * m.hidden, False, tp_g)
    # the forward-pass share (forward and recomputed forward): what torchtitan's async TP can hide
    tp_fwd_layer = per_layer * np.where(full_rc, 4, 2)

    cp_layer = cp_layer_s(ctx, t, attn_layer_fwd_s, attn_layer_bwd_s)

    # Expert parallel all-to-all: dispatch and combine, forward and backward (4 per MoE layer), over
    # the EP group of Megatron-Core's expert grid (order etp-ep-edp-pp: ep ranks etp apart, so with
    # etp = 1 the group runs over consecutive ranks of tp x cp x dp).
    ep_g = group(node, ep, t["etp"]) if m.moe else None  # profiled once for the dispatch and the probabilities
    ep_layer, dispatch = 0.0, ep_dispatch_s(ctx, t, ep_g)
    if m.moe:
        ep_layer = dispatch * np.where(full_rc, 6, 4) + moe_metadata_s(node, ep, t["etp"]) \
            + probs_all_to_all_s(ctx, t, ep_g) * np.where(full_rc, 3, 2)

    # Pipeline send/recv of the boundary activation, forward and backward.
    bw, a = link(node, group(node, pp, tp * cp * dp))
    p2p_bytes = 2.0 * tokens * m.hidden / np.where(t["sp"], tp, 1)
    pp_s = np.where(pp > 1, 2 * (a + p2p_bytes / bw), 0.0)
    return {"tp_layer": tp_layer, "tp_moe_layer": tp_moe_layer, "tp_fwd_layer": tp_fwd_layer, "cp_layer": cp_layer,
            "ep_moe_layer": ep_layer, "pp_comm": pp_s, "ep_dispatch": dispatch}


def cp_layer_s(ctx, t, attn_layer_fwd_s, attn_layer_bwd_s=None):
    """Exposed context-parallel seconds of one micro-batch per layer (layer_comm's 'cp_layer'): ring
    attention (planner.estimate.context_parallel), each stack's exchange of K/V (and, backward, their
    gradients) against the attention step it hides behind, the only part of layer_comm that reads
    the attention seconds (with_attention)."""
    from planner.estimate import context_parallel as CP
    from planner.estimate.recompute import recompute_modules

    node, cp, tp = ctx.node, t["cp"], t["tp"]
    full_rc = t["recompute"] == 2
    kv_bytes = CP.kv_chunk_bytes(ctx, t)
    cp_g = group(node, cp, tp)
    bw, a = link(node, cp_g)
    attn_bwd = FLASH_BWD_FLOPS_RATIO * attn_layer_fwd_s if attn_layer_bwd_s is None else attn_layer_bwd_s
    # the ring runs again wherever attention's forward is recomputed: full recompute, and Megatron's
    # selective recompute of core attention (torchtitan's op-level policy saves SDPA's output)
    core_rc = (t["recompute"] == 1) & (t["framework"] != TT) \
        & ("core_attn" in recompute_modules(ctx))
    return CP.ring_exposed_s(cp, a + kv_bytes / bw, a + 2.0 * kv_bytes / bw, gather_s(node, cp * kv_bytes, cp_g),
                             attn_layer_fwd_s, attn_bwd, CP.cp_method(ctx, t), np.where(full_rc | core_rc, 2, 1),
                             CP.ring_serial(ctx, t))


def with_attention(ctx, t, unit_comm: dict, attn_layer_fwd_s, attn_layer_bwd_s=None) -> dict:
    """layer_comm of t at other attention seconds, from its result `unit_comm` at some: only 'cp_layer'
    reads them (cp_layer_s), so the rest is kept (evaluate.evaluate_table: the step at the sustained
    tensor clock after the one at burst clocks, whose attention is slower)."""
    return {**unit_comm, "cp_layer": cp_layer_s(ctx, t, attn_layer_fwd_s, attn_layer_bwd_s)}


def sp_quantised_gather_saving_s(ctx, t, elems, moe_layer: bool, tp_g: Group):
    """Seconds one layer's tensor-parallel traffic is shorter because Transformer Engine all-gathers quantised
    tensors (compute_quant.SP_GATHER_BYTES), for Megatron rows in the FP8 precision with sequence parallelism
    and tp > 1 (zero elsewhere): per gather of `elems` elements, gather_s(2 x elems) - gather_s(q x elems),
    less one tp-group latency (link alpha) for each cast with a tensor-wide amax (SP_AMAX_REDUCTION_RECIPES).
    Gathers per layer: the QKV input (not under MLA, whose down-projections take a bf16 gather) and, in a dense
    layer, the FC1 input, forward (twice with full recompute) and re-gathered in backward; the output gradients
    of the attention projection and, in a dense layer, FC2. A MoE layer's expert inputs and gradients go
    through the token dispatcher in bf16. `tp_g`: the tensor-parallel group (topology.group of tp, 1)."""
    q = CQ.SP_GATHER_BYTES.get(ctx.scenario.runtime.fp8_recipe)
    quantised = (t["precision"] == T.FP8) & CQ.te_sp_gathered(t)
    if q is None or not np.any(quantised):
        return 0.0
    node = ctx.node
    inputs = (0 if ctx.model.mla else 1) + (0 if moe_layer and ctx.model.moe else 1)
    grads = 1 + (0 if moe_layer and ctx.model.moe else 1)
    bf16 = gather_s(node, 2.0 * elems, tp_g)
    q_in, q_grad, q_re = (bf16 - gather_s(node, b * elems, tp_g) for b in q)
    fwd_gathers = inputs * np.where(t["recompute"] == 2, 2, 1)
    saving = fwd_gathers * q_in + grads * q_grad + inputs * q_re
    if ctx.scenario.runtime.fp8_recipe in CQ.SP_AMAX_REDUCTION_RECIPES:
        _, alpha = link(node, tp_g)
        saving = saving - (fwd_gathers + grads) * alpha
    return np.where(quantised, saving, 0.0)


def ep_dispatch_s(ctx, t, ep_g: Group | None = None):
    """Seconds of one MoE dispatch (or combine) per micro-batch: the all-to-all of this rank's
    routed copies (tokens x top_k x hidden / tp, 16-bit; the busiest rank sends and receives
    moe_load_imbalance times the balanced share), or with the DeepEP / HybridEP kernels each token once
    per destination node and GPU (planner.estimate.ep_dedup, over the TPxEP group), plus, with etp > 1 and
    the all-to-all, the expert-tensor-parallel all-gather (or reduce-scatter) of the received tokens. Zero
    for dense models. `ep_g`: the EP group (ep_all_to_all_s), where the caller has it."""
    m = ctx.model
    if not m.moe:
        return np.zeros(T.size(t))
    tokens = t["mbs"] * ctx.seq_len / t["cp"]
    token_bytes = 2.0 * m.hidden / t["tp"] * ctx.scenario.runtime.moe_load_imbalance
    a2a_bytes = tokens * m.moe.top_k * token_bytes
    send = ep_all_to_all_s(ctx, t, a2a_bytes, ep_g) + expert_tp_gather_s(ctx.node, a2a_bytes, t["etp"])
    if ctx.scenario.runtime.moe_dispatcher in DEDUP_DISPATCHERS:  # Megatron's flex dispatcher (TPxEP group)
        send = np.where(t["framework"] == MEG, ep_dedup.dedup_dispatch_s(ctx, t, tokens, token_bytes), send)
    return send


# Routing probabilities travel in their own all-to-all beside the tokens (Megatron-Core
# MoEAlltoAllTokenDispatcher.token_dispatch: all_to_all of permutated_local_input_tokens, then of
# permuted_probs, at 92c8482e), one probability per routed copy in the router's dtype: the input's
# (bf16, 2 bytes) unless moe_router_dtype says fp32. Its gradient returns the same way in backward.
PROB_BYTES = 2.0


def probs_all_to_all_s(ctx, t, ep_g: Group | None = None):
    """Seconds of one all-to-all of the routing probabilities (tokens x top_k / tp x PROB_BYTES per
    rank; a few hundred kB, so latency-bound): forward dispatch and backward, again in a recomputed
    forward (layer_comm counts 2, or 3 with full recompute). Megatron's all-to-all dispatcher only:
    DeepEP and HybridEP carry the probabilities inside their fused dispatch kernels, and torchtitan
    weights the tokens by their scores on the sending side. Zero for dense models. `ep_g`: as ep_dispatch_s."""
    m = ctx.model
    if not m.moe or ctx.scenario.runtime.moe_dispatcher != "alltoall":
        return np.zeros(T.size(t))
    tokens = t["mbs"] * ctx.seq_len / t["cp"]
    return np.where(t["framework"] == MEG, ep_all_to_all_s(ctx, t, PROB_BYTES * tokens * m.moe.top_k / t["tp"], ep_g),
                    0.0)


def ep_all_to_all_s(ctx, t, a2a_bytes, ep_g: Group | None = None):
    """One expert-parallel all-to-all of `a2a_bytes` per rank. The all-to-all token dispatcher
    (runtime.moe_dispatcher 'alltoall': Megatron-Core MoEAlltoAllTokenDispatcher, torchtitan's
    all_to_all_single) runs NCCL's all-to-all; where its EP group lies on one 8-GPU NVSwitch board of
    a GPU with NVIDIA's measured NCCL table (planner.serve.nccl_measured: H100, H200, B200, and B300 boards
    through B200's; group of
    2, 4 or 8; GB200 / GB300 NVL72 racks: groups of 2 or 4, as measured there; every group, etp ranks apart,
    inside one NVLink domain: the ep x etp consecutive ranks of a group tile the node's scaleup_domain, e.g. not
    ep 2 x etp 3 on an 8-GPU board, whose second group straddles two boards), the measured time
    at that size is used: NCCL's all-to-all reaches 0.45-0.8 of the link model's rate there
    (benchmarks/collective_results.md; e.g. B200, 8 GPUs, 128 MiB per rank: 0.250 ms measured, 415 GB/s
    bus bandwidth against the model's 611). Elsewhere the link
    model (all_to_all_s). `ep_g`: the group of ep ranks etp apart (topology.group), profiled here if not given."""
    from planner.serve import nccl_measured

    if ep_g is None:
        ep_g = group(ctx.node, t["ep"], t["etp"])
    model = all_to_all_s(ctx.node, a2a_bytes, ep_g)
    if ctx.scenario.runtime.moe_dispatcher != "alltoall":
        return model
    ep = np.broadcast_to(np.asarray(t["ep"]), np.shape(model) or (1,))
    on_board = (ctx.node.scaleup_domain % (ep * t["etp"]) == 0) & (ep > 1)
    rows = nccl_measured.measured_table(ctx.node, "alltoall", np.where(on_board, ep, 0))
    measured = nccl_measured.interp_s(rows, a2a_bytes)
    return np.where(on_board & ~np.isnan(measured), np.nan_to_num(measured), model)


def expert_tp_gather_s(node, a2a_bytes, etp):
    """Expert tensor parallelism (etp > 1) in Megatron-Core's all-to-all dispatcher
    (megatron/core/transformer/moe/token_dispatcher.py, MoEAlltoAllTokenDispatcher workflow): after
    the EP all-to-all the received tokens are all-gathered over the etp group ("dispatch
    postprocess: AG(TP)"), and before the combine all-to-all the expert outputs are reduce-scattered
    over it ("combine preprocess: RS(TP)"). Each rank holds `a2a_bytes` of routed tokens, so the
    gathered buffer is etp x a2a_bytes; the etp ranks are consecutive (expert grid etp-ep-edp-pp).
    One AG or RS: the caller counts 4 per layer (dispatch and combine, forward and backward)."""
    return gather_s(node, etp * a2a_bytes, group(node, etp, 1))


def moe_metadata_s(node, ep, etp):
    """Seconds per MoE layer and micro-batch of the dispatcher's metadata exchange: before the
    token all-to-all each rank all-gathers every rank's per-expert token counts over the tp x ep
    group (MoEAlltoAllTokenDispatcher.preprocess, gather_from_sequence_parallel_region of
    num_local_tokens_per_expert) and copies the splits to the host, a latency-bound collective
    (a few hundred bytes): one alpha of the group's slowest hop, forward only (backward reuses the
    splits)."""
    _, alpha = link(node, group(node, ep * etp, 1))
    return np.where(ep * etp > 1, alpha, 0.0)


def stage_comm(unit: dict, dense, moe) -> dict:
    """Per micro-batch communication of a stage holding `dense` and `moe` layers."""
    layers = dense + moe
    return {"tp_comm": dense * unit["tp_layer"] + moe * unit.get("tp_moe_layer", unit["tp_layer"]),
            "tp_fwd": layers * unit.get("tp_fwd_layer", 0.0), "cp_comm": layers * unit["cp_layer"],
            "ep_comm": moe * unit["ep_moe_layer"], "pp_comm": unit["pp_comm"]}


# With TP communication overlap the collectives run on few SMs / copy engines next to the GEMMs
# they are split against; the GEMMs slow down while they share the GPU. Assumed: 10% of the
# overlapped communication time still shows (contention), to be refined with measurements.
TP_OVERLAP_CONTENTION = 0.10


def tp_exposed_s(ctx, t, tp_s, matmul_fwd_s, tp_fwd_s=None):
    """Exposed tensor-parallel time of a micro-batch. Without overlap all of it; with overlap only
    what exceeds the GEMM time it overlaps with, plus contention:
      * Megatron / Transformer Engine (--tp-comm-overlap, userbuffers): every collective, forward and
        backward, against the forward + backward GEMMs (3x the forward GEMMs);
      * torchtitan async TP: torch.compile's micro-pipeline pass (torch/_inductor/fx_passes/
        micro_pipeline_tp.py) fuses an all-gather into the matmul consuming it along its row
        dimension, and a matmul into the reduce-scatter of its output. The forward pass has
        exactly those pairs; in backward the row-parallel layer's gathered output gradient also
        feeds the weight-gradient GEMM, which contracts over the gathered (sequence) dimension.
        Modelled: the forward and recomputed-forward collectives (`tp_fwd_s`) hide behind the
        forward GEMMs (twice them with full recompute), the backward ones stay exposed. The authors
        measured up to 20% faster forward passes but only 8% end to end on Llama 3 70B (PyTorch
        dev-discuss, 'Introducing Async Tensor Parallelism in PyTorch', 2024): no more than a
        forward-only overlap gives. Only with `runtime.compile` (torchtitan v0.2.2
        distributed/tensor_parallel.py maybe_enable_async_tp raises without torch.compile);
      * DeepSpeed AutoTP: none."""
    if not ctx.scenario.runtime.tp_comm_overlap:
        return tp_s
    titan = t["framework"] == TT
    if tp_fwd_s is None:
        tp_fwd_s = tp_s
    fwd_gemms = matmul_fwd_s * np.where(t["recompute"] == 2, 2.0, 1.0)
    titan_overlap = fwd_gemms if ctx.scenario.runtime.compile else 0.0  # eager: no async TP
    overlap = np.where(t["framework"] == DS, 0.0, np.where(titan, titan_overlap, 3.0 * matmul_fwd_s))
    hidden = np.minimum(np.where(titan, np.minimum(tp_s, tp_fwd_s), tp_s), overlap)
    return tp_s - hidden + TP_OVERLAP_CONTENTION * hidden


def warmup_fraction(t):
    """Share of a stage's micro-batch forwards that run before its first backward (warm-up) in
    Megatron's 1F1B schedules: pp - 1 on the first stage without interleaving, 2(pp - 1) +
    (vpp - 1) pp model-chunk forwards with it (megatron/core/pipeline_parallel/schedules.py,
    num_warmup_microbatches on rank 0), out of ga x vpp; one micro-batch without a pipeline (the
    EP-overlap schedule pairs micro-batch i + 1's forward with micro-batch i's backward)."""
    vpp = np.maximum(t["vpp"], 1)
    warm = np.where(t["pp"] == 1, 1, np.where(vpp > 1, 2 * (t["pp"] - 1) + (vpp - 1) * t["pp"], t["pp"] - 1))
    return np.minimum(1.0, warm / (t["ga"] * vpp))


def ep_overlap_pair_exposed_s(a2a_s, attn_fwd_s, mlp_fwd_s):
    """Exposed all-to-all seconds of one MoE layer when its forward runs beside another
    micro-batch's backward of the same layer, as Megatron-Core's EP-overlap schedule pairs them
    (--overlap-moe-expert-parallel-comm; megatron/core/models/common/model_chunk_schedule_plan.py,
    TransformerLayerSchedulePlan.run): three phases, communication stream | computation stream,
        combine_bwd               | pre-dispatch forward (attention, router, permute)
        dispatch_fwd, dispatch_bwd | mlp backward (dgrad, wgrad), mlp forward
        combine_fwd               | pre-dispatch backward
    each taking the longer of its two streams; the mlp forward waits for dispatch_fwd and
    dispatch_bwd for the mlp dgrad. `a2a_s` is one dispatch or combine, backward = 2 x forward
    compute. Returns the phases' time beyond their compute."""
    attn_bwd = 2 * attn_fwd_s
    phase1 = np.maximum(a2a_s, attn_fwd_s)
    m = mlp_fwd_s
    phase2 = np.maximum(np.maximum(2 * m, a2a_s) + m, np.maximum(a2a_s, m) + a2a_s)
    phase3 = np.maximum(a2a_s, attn_bwd)
    return phase1 + phase2 + phase3 - (attn_fwd_s + 3 * mlp_fwd_s + attn_bwd)


def ep_overlap_runs(ep, pp, vpp, full_recompute, moe_recompute):
    """Where Megatron-Core runs its EP-overlap schedule (--overlap-moe-expert-parallel-comm): expert
    parallelism, an interleaved pipeline when pp > 1, no full recompute and no 'moe' recompute module
    (megatron/core/transformer/transformer_config.py asserts all of them; the all-to-all dispatcher is
    what the export writes). Scalars (the export) or arrays (the table) alike."""
    return (ep > 1) & ((pp == 1) | (vpp > 1)) & ~full_recompute & ~moe_recompute


def ep_overlap_allowed(ctx, t):
    """ep_overlap_runs for the Megatron plans of table t; elsewhere the plan runs without the overlap."""
    mods = ctx.scenario.runtime.recompute_modules or ()
    return (t["framework"] == MEG) & ep_overlap_runs(
        t["ep"], t["pp"], t["vpp"], t["recompute"] == 2, (t["recompute"] == 1) & ("moe" in mods))


def ep_exposed_s(ctx, t, ep_s, moe_layers, a2a_s, attn_fwd_s, mlp_fwd_s):
    """Exposed expert-parallel communication of a micro-batch on a stage: all of it, or with
    `runtime.ep_comm_overlap` (Megatron-Core --overlap-moe-expert-parallel-comm) what the paired
    phases leave exposed (ep_overlap_pair_exposed_s) for the steady-state micro-batches of the plans
    Megatron runs it for (ep_overlap_allowed; all of it elsewhere), all of it
    for the warm-up / cool-down share (warmup_fraction) and for the two extra all-to-alls a full
    recompute adds, plus contention on the hidden part. `ep_s`: the stage's EP seconds per
    micro-batch (moe_layers x layer_comm's ep_moe_layer); `a2a_s`: one dispatch or combine; the
    forward seconds of a MoE layer's pre-dispatch part and of its expert GEMMs."""
    if not ctx.scenario.runtime.ep_comm_overlap:
        return ep_s
    paired = np.where(ep_overlap_allowed(ctx, t), 1.0 - warmup_fraction(t), 0.0)
    four = 4 * a2a_s * moe_layers
    pair = ep_overlap_pair_exposed_s(a2a_s, attn_fwd_s, mlp_fwd_s) * moe_layers
    exposed = np.minimum(ep_s, ep_s - paired * (four - pair))
    hidden = ep_s - exposed
    return exposed + TP_OVERLAP_CONTENTION * hidden


def nccl_sm_share(ctx) -> float:
    """Share of the GPU's SMs an NCCL ring collective holds while it runs: runtime.nccl_min_ctas CTAs (one per
    channel, NCCL src/graph/connect.cc: ring channels copied up to the minimum) of gpu.sm_count SMs. A CTA
    stays resident for the whole collective, also while it waits on the network, so compute overlapped with it
    runs on the other SMs. 0 where either is unknown (NCCL then picks the channel count from the topology)."""
    ctas, sms = ctx.scenario.runtime.nccl_min_ctas, ctx.gpu.sm_count
    return min(ctas, sms) / sms if ctas and sms else 0.0


def dp_comm(ctx, t, mem, fwd_mb_s, bwd_mb_s) -> dict:
    """Data-parallel gradient synchronisation per step and what of it is exposed.

    ZeRO-0: all-reduce of the gradients once per step (after accumulation); ZeRO-1/2: reduce-scatter
    of gradients plus all-gather of the updated bf16 parameters (the same volume as all-reduce,
    Rajbhandari et al. 2020 Sec. 7); ZeRO-2 reduce-scatters every micro-batch; ZeRO-3 / FSDP also
    all-gathers parameters in forward and again in backward for every micro-batch (1.5x volume).
    With `runtime.dp_comm_overlap` (default), gradient reduction overlaps the backward pass of the
    last micro-batch (Megatron --overlap-grad-reduce, DeepSpeed overlap_comm), ZeRO-3 gathers
    overlap compute by prefetching, and the post-step parameter all-gather of ZeRO-1/2 overlaps the
    first forward (--overlap-param-gather); without it everything is exposed. Whatever fits those
    windows, Megatron's edge bucket group (megatron_edge_bucket_params) is reduced after the backward
    and gathered before the first layer, so at least its reduce-scatter and all-gather stay exposed. The
    hidden part slows the compute it overlaps by the share of SMs NCCL's CTAs hold
    (nccl_sm_share). Muon under Megatron's layer-wise distributed optimizer (zero 1, estimate/muon.py)
    all-reduces the gradients like ZeRO-0 and all-gathers the updated parameters in the step, exposed
    (LayerWiseDistributedOptimizer.step -> allgather_params).
    """
    from planner.estimate.memory_terms_stage import heaviest_rank, split_key_of, stage_params

    node = ctx.node
    tp, cp, dp, ep, zero, ga = t["tp"], t["cp"], t["dp"], t["ep"], t["zero"], t["ga"]
    # Every stage synchronises its own gradients at the same time; the step waits for the stage with
    # the most (the first holds the embedding and any extra layer, the last the output layer).
    first, last = stage_params(ctx, t, "first"), stage_params(ctx, t, "last")
    first_stage = first  # the first stage itself (the edge buckets below), before any middle rank's maximum
    if split_key_of(ctx) is not None:  # a Megatron split: a middle rank may hold the most parameters
        middle = stage_params(ctx, t, heaviest_rank(ctx, t))
        first = {k: np.maximum(first[k], middle[k]) for k in ("non_expert", "expert")}
    non_expert = np.maximum(first["non_expert"], last["non_expert"])
    expert = np.maximum(first["expert"], last["expert"])
    # This GPU's parameters: non-expert ones sharded over dp x cp, experts over their own group.
    # Experts: split over etp, synchronised over the expert data-parallel group tp*cp*dp/(ep*etp),
    # whose members are etp*ep ranks apart (Megatron-Core expert grid etp-ep-edp-pp).
    etp = t["etp"]
    groups = ((non_expert / tp, dp * cp, tp),
              (expert / (ep * etp), np.maximum(1, dp * cp * tp // (ep * etp)), etp * ep))
    # Gradients are reduced in fp32 by Megatron and torchtitan (bf16 params: main_grad / reduce_dtype)
    # and by everyone training in fp32; DeepSpeed and Megatron-FSDP (main grads in the compute dtype
    # by default, --megatron-fsdp-grad-comm-dtype auto) reduce 16-bit gradients.
    mfsdp = (t["framework"] == MEG) & (zero >= 3)
    grad_bytes = np.where((t["precision"] == T.FP32)
                          | ((t["framework"] != DS) & ~mfsdp), 4.0, 2.0)
    # runtime.grad_reduce_dtype (the memory model's gradient buffer) overrides the framework default
    reduce = ctx.scenario.runtime.grad_reduce_dtype
    if reduce != "auto":
        grad_bytes = np.where(t["precision"] == T.FP32, 4.0, {"fp32": 4.0, "bf16": 2.0}[reduce])
    param_bytes = np.where(t["precision"] == 0, 4.0, 2.0)
    # torchtitan with pipeline parallelism keeps FSDP2 parameters gathered across micro-batches
    # (reshard_after_forward "default" policy: False when PP is on, torchtitan fsdp.py) and the
    # pipeline stage reduce-scatters gradients only after the last micro-batch's backward
    # (torch.distributed.pipelining: set_requires_gradient_sync on the last backward only).
    titan_pp = (t["framework"] == TT) & (t["pp"] > 1) & (zero >= 3)
    # Muon's layer-wise distributed optimizer (Megatron, zero 1; estimate/muon.py): the DDP buffer is
    # all-reduced whole, and the updated parameters are all-gathered inside the step (no overlap)
    muon_lw = (t["framework"] == MEG) & (zero == 1) & (ctx.optimizer == "muon")
    reduce_all = (zero == 0) | muon_lw
    step_sync = post = per_mb = 0.0  # both groups share the NICs: their times add up
    rings = [group(node, size, stride) for _, size, stride in groups]
    for (params, _, _), ring in zip(groups, rings):
        g = gather_s(node, params * grad_bytes, ring)
        p = gather_s(node, params * param_bytes, ring)
        step_sync = step_sync + np.where(reduce_all, all_reduce_s(node, params * grad_bytes, ring),
                                         np.where((zero == 1) | titan_pp, g, 0.0))
        post = post + np.where(((zero >= 1) & (zero <= 2)) | titan_pp, p, 0.0)
        per_mb = per_mb + np.where(zero == 2, g, np.where((zero >= 3) & ~titan_pp, 2 * p + g, 0.0))
    # Megatron's edge buckets (megatron_edge_bucket_params): reduced after the backward, gathered before
    # the first layer of the forward, over the non-expert data-parallel ring
    ring = rings[0]
    edge = megatron_edge_bucket_params(ctx, t, first_stage) / tp
    edge_sync = np.where(edge > 0, np.where(reduce_all, all_reduce_s(node, edge * grad_bytes, ring),
                                            gather_s(node, edge * grad_bytes, ring)), 0.0)
    edge_post = np.where((edge > 0) & (zero == 1), gather_s(node, edge * param_bytes, ring), 0.0)
    total = step_sync + post + ga * per_mb
    copies = ga * fsdp2_copy_s(ctx, t, np.maximum(first["non_expert"] + first["expert"] / ep,
                                                  last["non_expert"] + last["expert"] / ep) / tp)
    if not ctx.scenario.runtime.dp_comm_overlap:
        return {"dp_total": total, "dp_comm": total + copies}
    window = np.where(zero >= 3, fwd_mb_s + bwd_mb_s, bwd_mb_s)  # what one micro-batch's comm hides behind
    # ZeRO-3 / FSDP prefetch the next layer's parameters behind the current layer's compute; nothing
    # runs before the first layer's all-gather of the forward and of the backward, nor after the last
    # layer's reduce-scatter: one layer's share of those stays exposed per micro-batch.
    layers = np.maximum(memory.stage_layers(ctx, t, "first")[0], memory.stage_layers(ctx, t, "last")[0])
    layer_share = np.where(per_mb > 0, per_mb / np.maximum(layers, 1), 0.0)
    exposed = np.maximum(edge_sync, step_sync - bwd_mb_s) \
        + np.where(muon_lw, post, np.maximum(edge_post, post - fwd_mb_s)) \
        + ga * (np.maximum(0, per_mb - window) + np.minimum(layer_share, per_mb))
    # the hidden part runs beside compute, whose kernels lose the SMs NCCL's CTAs hold meanwhile
    contention = np.maximum(0.0, total - exposed) * nccl_sm_share(ctx)
    return {"dp_total": total, "dp_comm": exposed + contention + copies}


def megatron_edge_bucket_params(ctx, t, first=None):
    """Parameters (before tensor-parallel sharding) of the bucket group Megatron-Core's DDP reduces last
    and gathers first, on the first pipeline stage (the one whose backward ends last); 0 outside
    Megatron's DDP / distributed optimizer (zero 0 or 1).

    Megatron-Core (megatron/core/distributed/param_and_grad_buffer.py at 25.09-alpha.rc1,
    _ParamAndGradBuffer.__init__) fills buckets of `bucket_size` elements walking the parameters in
    reverse order, so the word embedding, the first parameter of the first stage, closes the last
    bucket; its reduce-scatter (all-reduce without the distributed optimizer) is dispatched only when
    the embedding's gradient exists, after the whole backward, with nothing left to hide behind.
    With --overlap-param-gather the next forward waits for that same group's all-gather in its first
    module's forward pre-hook (distributed_data_parallel.py _make_forward_pre_hook ->
    finish_param_sync, which dispatches the next group only then), before any layer runs.
    With FP8 parameters (--fp8-param-gather: the GEMM weights sit in a uint8 buffer, every other
    parameter in a 16-bit one) partition_buckets merges all non-FP8 buckets into the last FP8
    bucket group ("Case 3"), so that group holds every 16-bit parameter of the stage: the embedding,
    norms and, without a pipeline, the output layer. The rest of the last FP8 bucket (less than one
    bucket) is not counted: the bucket size is not a runtime setting here, so this is a lower bound.
    `first`: stage_params(ctx, t, "first") where the caller already has it (dp_comm)."""
    if first is None:
        from planner.estimate.memory_terms_stage import stage_params

        first = stage_params(ctx, t, "first")
    fp8_params = (t["precision"] == T.FP8) & bool(ctx.scenario.runtime.fp8_param_gather)
    edge = np.where(fp8_params, first["non_expert"] - first["gemm"], float(ctx.stats.embedding))
    return np.where((t["framework"] == MEG) & (t["zero"] <= 1), edge, 0.0)


# FSDP2 (torchtitan) gathers each layer into one flat buffer and copies it out into the parameters'
# own tensors (foreach_all_gather_copy_out: read 2 + write 2 bytes per bf16 element), and copies the
# bf16 gradients into a flat reduce_dtype (fp32) buffer before reduce-scatter (foreach_reduce:
# read 2 + write 4): torch/distributed/fsdp/_fully_shard/_fsdp_collectives.py.
FSDP2_COPY_BYTES_PER_PARAM = 2 * (2 + 2) + (2 + 4)  # forward and backward all-gathers, one reduce-scatter


def fsdp2_copy_s(ctx, t, params_local):
    """Seconds per micro-batch of FSDP2's copy-in / copy-out kernels on the GPU (torchtitan, ZeRO-3,
    parameters resharded after forward), over the stage's tensor-parallel-local parameters."""
    titan = (t["framework"] == TT) & (t["zero"] >= 3) & (t["pp"] == 1)
    hbm = ctx.gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY
    return np.where(titan, FSDP2_COPY_BYTES_PER_PARAM * params_local / hbm, 0.0)
