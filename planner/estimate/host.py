"""Host (CPU) time to launch one micro-batch through one layer: a floor under the GPU time.

In eager PyTorch every kernel is issued by the host; when the GPU finishes a layer's kernels faster
than the host can issue them, the GPU waits (Megatron-Core MoE README, "CPU Overhead Bottleneck":
gaps between kernels; remedies CUDA graphs, larger micro-batches, smaller TP). The host seconds of a
layer, forward and backward together, are

    host = sum over forward kernels of the measured host cost of that kernel forward + backward,

with the costs measured on the H200 machine's host (torch 2.11, benchmarks/host_device_results.md):
  * an elementwise op with autograd, forward + backward: 28.6 us (HOST_OP_FWD_BWD_S);
  * a linear layer through F.linear, forward + backward (input and weight gradient GEMMs): 126 us,
    measured over a loop of 16 per-expert linears (HOST_LINEAR_FWD_BWD_S);
  * a GEMM launched from C++ inside a grouped-expert kernel loop (Transformer Engine GroupedLinear
    issues one cuBLAS call per local expert): the bare eager launch, 6.5 us, times 3 GEMMs
    (forward, input and weight gradient) per expert (HOST_LAUNCH_S).
Kernels per layer are counted from the op sequences the frameworks run (the same sequences as the
EAGER_*/FUSED_* byte counts in compute_elementwise.py): fused (Megatron/Transformer Engine, torch.compile):
2 norms, rotary on q and k, the activation, 2 residual adds, attention = 8 ops; eager torchtitan:
RMSNorm float/pow/mean/add/rsqrt/mul/type_as/mul = 8 ops x 2, rotary 4 ops x 2 (float, complex
view, multiply, type_as), SwiGLU 2, residual 2, attention 1 = 29 ops. An MoE layer adds, counted
from Megatron-Core's router and all-to-all dispatcher (megatron/core/transformer/moe/router.py,
token_dispatcher.py MoEAlltoAllTokenDispatcher, fused router and permute kernels):
  * ops with a backward (MOE_AUTOGRAD_OPS = 15): router input cast to fp32, fused top-k with score
    function, aux-loss scores, tokens per expert, fused aux loss, aux-loss scaler; permute (row-id
    map, permute), token and probability all-to-alls, sort_chunks_by_idxs after dispatch and before
    combine, probability-weighted activation, combine all-to-all, unpermute;
  * metadata ops without a backward (MOE_METADATA_OPS = 12, at the bare launch cost): tokens per
    expert, input splits, the all-gather of every rank's counts, the local-expert slice and 3 sums,
    4 device-to-host copies of the splits and the event the host waits on before the all-to-all.
FP8 adds one quantisation kernel per linear input, and in Megatron's grouped expert modules the
per-expert quantisation kernels of compute_moe.expert_quant_kernels, launched from C++ (HOST_LAUNCH_S).

The costs above were measured on an x86 server host. A node whose GPUs are driven by NVIDIA Grace
(Arm Neoverse V2; catalog `host_cpu: grace`: GB200 / GB300 NVL72) issues the same work more slowly:
Transformer Engine issue #2053 (2025-08) timed the host side of one BF16 torch Linear forward
(hidden 2,048, 8,192 tokens) at 37.08 us on GB200 and 33.17 us on GH200 against 13.48 us on a DGX
H100 (Xeon Platinum 8480C): HOST_CPU_DISPATCH_FACTOR["grace"] = 37.08 / 13.48 = 2.75. Every dispatch
cost of this module (elementwise ops, linear modules, bare launches, graph launches) is multiplied by
it; the device-to-host wait HOST_SYNC_S is not (a GPU-to-host round trip, not dispatch work; no
measurement on Grace).

This is a floor only: the measured costs are plain PyTorch; Megatron's backward runs in the C++
autograd engine as well, so real host time is at or below this for the same kernel count.
"""

from __future__ import annotations

import numpy as np

from planner.arch import layer_matmuls
from planner.estimate.table import FP8, MEG

HOST_OP_FWD_BWD_S = 28.6e-6      # measured (module docstring)
HOST_SYNC_S = 15e-6              # measured: a scalar device-to-host copy the host waits for (host_device_results.md)
# Kernels each Megatron-Core dispatcher issues after its last forward wait on the host, besides the
# expert GEMMs and their quantisation (token_dispatcher.py at 92c8482, the Megatron-LM of
# Megatron-Bridge 25.11):
#   alltoall (waits before the EP all-to-all): permute (row-id map, permute), token and probability
#     all-to-alls, sort_chunks_by_idxs after dispatch and before combine, the probability-weighted
#     activation, the combine all-to-all and unpermute = 9;
#   allgather (waits in dispatch_postprocess on .cpu() of its counts): permute (2), the local
#     probabilities' two transposes and masked_select (3), unpermute, the reduce-scatter = 7;
#   deepep (last wait: .item() of the received counts before permute): permute (2), the
#     probability-weighted activation, unpermute, the fused combine = 5;
#   hybridep (waits inside its fused dispatch + permute): the probability-weighted activation and the
#     fused unpermute + combine = 2.
MOE_POST_SYNC_OPS = {"alltoall": 9, "allgather": 7, "deepep": 5, "hybridep": 2}
# Dispatchers whose padded mode (--moe-pad-expert-input-to-capacity) removes the host wait
# (moe_forward_syncs): allgather ignores the flag; Megatron-Core rejects it with deepep.
PADDED_NO_SYNC_DISPATCHERS = ("alltoall", "hybridep")
HOST_LINEAR_FWD_BWD_S = 126e-6   # measured (module docstring)
HOST_LAUNCH_S = 6.5e-6           # measured (module docstring)
# Host seconds of one per-expert GEMM of Transformer Engine's GroupedLinear (one cuBLASLt call per local
# expert on its compute streams, nvte_multi_tensor_gemm -> multi_stream_cublas_gemm at TE v2.9-v2.13
# on Blackwell): taken as the bare launch. Transformer Engine's cublas_gemm also builds the matrix
# layouts, the matmul descriptor and preference and queries cuBLASLt's heuristic on every call; that
# part is not measured (benchmarks/b200_moe_results.md, section 5, b200_moe_host_gemm.py).
EXPERT_GEMM_HOST_S = HOST_LAUNCH_S
FUSED_LAYER_OPS, EAGER_LAYER_OPS = 8, 29
# host dispatch time relative to the x86 hosts the costs above were measured on (module docstring:
# TE issue #2053, torch Linear forward host time GB200 37.08 us / DGX H100 13.48 us)
HOST_CPU_DISPATCH_FACTOR = {"x86": 1.0, "grace": 37.08 / 13.48}
MOE_AUTOGRAD_OPS, MOE_METADATA_OPS = 15, 12  # counted in the module docstring


def _host_parts(ctx, t, moe_layer: bool, eager):
    """(forward + backward, forward) host seconds of one layer per micro-batch (layer_host_s,
    layer_host_fwd_s). The forward part counts the kernels each op issues in forward against those
    of forward + backward: a linear module or a per-expert GEMM 1 of 3 GEMMs (the backward runs the
    input- and weight-gradient GEMMs), an autograd elementwise op or FP8 quantisation 1 of 2 kernels,
    the dispatcher's metadata ops (no backward) all of theirs, the per-expert quantisation kernels a
    third (as compute.layer_costs splits their GPU time). Cross-check: Transformer Engine issue #2053
    (2025-08) measured one BF16 Linear forward at 13.48 us of host time with torch on a DGX H100
    (Xeon 8480C) and 99.66 us with TE's Linear vs 37.08 us with torch on GB200 (TE = 2.7 x torch):
    2.7 x 13.48 = 36 us on the x86 host, near the 126 / 3 = 42 us forward share taken here."""
    if moe_layer and not ctx.model.moe:
        zero = np.zeros_like(t["tp"], dtype=float)
        return zero, zero
    linears = 0
    expert_modules = 0
    for mm in layer_matmuls(ctx.model, moe_layer):
        if mm.name.startswith("expert"):
            expert_modules += 1
        else:
            linears += 1
    experts_local = ctx.model.moe.experts / t["ep"] if (moe_layer and ctx.model.moe) else 0.0
    ops = np.where(eager, EAGER_LAYER_OPS, FUSED_LAYER_OPS) + (MOE_AUTOGRAD_OPS if moe_layer else 0)
    metadata = MOE_METADATA_OPS * HOST_LAUNCH_S if moe_layer else 0.0
    quant = 0.0
    if moe_layer:
        from planner.estimate.compute_moe import expert_quant_kernels

        quant = expert_quant_kernels(ctx, t) * HOST_LAUNCH_S
    fp8_quant = np.where(t["precision"] == FP8, linears + expert_modules, 0)
    gemms = linears * HOST_LINEAR_FWD_BWD_S + expert_modules * (HOST_LINEAR_FWD_BWD_S
                                                                 + experts_local * 3 * expert_gemm_host_s(t))
    elementwise = (ops + fp8_quant) * HOST_OP_FWD_BWD_S
    total = gemms + elementwise + metadata + quant
    forward = gemms / 3 + elementwise / 2 + metadata + quant / 3
    return total, forward


def expert_gemm_host_s(t):
    """Host seconds of one per-expert GEMM launch: EXPERT_GEMM_HOST_S under Megatron (Transformer Engine's
    GroupedLinear, one cuBLASLt call per local expert), the bare launch (HOST_LAUNCH_S) elsewhere."""
    return np.where(t["framework"] == MEG, EXPERT_GEMM_HOST_S, HOST_LAUNCH_S)


def host_dispatch_factor(ctx) -> float:
    """How much longer the node's host CPU takes to issue the same work than the x86 hosts the
    costs of this module were measured on: HOST_CPU_DISPATCH_FACTOR[node.host_cpu] (module docstring)."""
    return HOST_CPU_DISPATCH_FACTOR[ctx.node.host_cpu]


def graph_launched(ctx, t, moe_layer: bool):
    """Rows whose layer of this kind runs as CUDA graphs whose replay issues all its kernels
    (runtime.cuda_graph_impl): Megatron dense layers under the local implementation (whole layers or
    full_iteration) or Transformer Engine's without a scope (whole layers), and MoE layers too under
    full_iteration, which graphs the whole step (full_cuda_graph.py; the scenario allows it only with a
    dispatcher that does not wait on the host: Scenario._check_full_iteration_moe). Under whole-layer
    graphs an MoE layer is captured with the rest of its layer when its dispatcher does not wait on the
    host (moe_forward_syncs: padded token drop): Megatron-Core core_v0.14.0 transformer_layer.py gives
    every TransformerLayer, MoE ones included, a CudaGraphManager under enable_cuda_graph (the
    NeMo 25.09 `cuda_graphs: true` recipes, which pad to capacity), and core_v0.15.0
    transformer_config.py: scope "full" "captures a whole Transformer layer". A dropless MoE layer, whose
    forward waits on a device-to-host copy, cannot be captured and stays eager, as do partial scopes
    (the router / preprocess graphs are not counted)."""
    rt = ctx.scenario.runtime
    impl = rt.cuda_graph_impl
    whole = impl == "local" or (impl == "transformer_engine" and not rt.cuda_graph_scope)
    full_iteration = impl == "local" and "full_iteration" in rt.cuda_graph_scope
    meg = t["framework"] == MEG
    if not moe_layer or full_iteration:
        return meg & whole
    return meg & whole & ~moe_forward_syncs(ctx, t)


def layer_host_s(ctx, t, moe_layer: bool, eager):
    """Host seconds (forward + backward) of one layer per micro-batch, per plan row: linear modules
    at HOST_LINEAR_FWD_BWD_S, per-expert GEMMs of a grouped expert module at 3 x HOST_LAUNCH_S,
    elementwise ops (and FP8 quantisations) at HOST_OP_FWD_BWD_S. A graph-launched layer
    (graph_launched) costs one launch forward and one backward, at HOST_LAUNCH_S each. All times the
    node's host_dispatch_factor."""
    return host_dispatch_factor(ctx) * np.where(graph_launched(ctx, t, moe_layer), 2 * HOST_LAUNCH_S,
                                                _host_parts(ctx, t, moe_layer, eager)[0])


def layer_host_fwd_s(ctx, t, moe_layer: bool, eager):
    """The forward part of layer_host_s (kernel-count split, _host_parts)."""
    return host_dispatch_factor(ctx) * np.where(graph_launched(ctx, t, moe_layer), HOST_LAUNCH_S,
                                                _host_parts(ctx, t, moe_layer, eager)[1])


def host_floor(fwd, bwd, host):
    """Scale forward and backward seconds up together so that their sum is at least the host
    seconds: max(GPU, host) per micro-batch, split in the GPU time's proportions."""
    gpu = fwd + bwd
    f = np.maximum(1.0, host / np.maximum(gpu, 1e-30))
    return fwd * f, bwd * f


def synced_host_floor(fwd, bwd, host, host_fwd, synced):
    """Forward and backward seconds of one micro-batch with the host floor, where each MoE layer's
    forward waits on the host for its token counts (`synced`, moe_forward_syncs) and where not.

    Without a sync the host runs ahead of the GPU across the whole micro-batch: forward + backward
    >= host, pooled (host_floor). With one, the wait empties the GPU's queue in every MoE layer's
    forward (Megatron-Core token_dispatcher.py `_maybe_dtoh_and_synchronize` blocks the host on the
    copy's event), so the host's lead cannot carry across it: each forward stretch between two
    syncs takes at least its own host time, and the forward cannot borrow the backward's GPU time:
        forward = max(GPU forward, host forward),  backward = max(GPU backward, host backward)
    (the backward reuses the host copies of the counts: no wait there). Pooled over the stage's
    layers, which is exact when its stretches are alike and a lower bound otherwise."""
    pooled_f, pooled_b = host_floor(fwd, bwd, host)
    return (np.where(synced, np.maximum(fwd, host_fwd), pooled_f),
            np.where(synced, np.maximum(bwd, host - host_fwd), pooled_b))


def moe_forward_syncs(ctx, t):
    """Per plan row: does every MoE layer's forward wait on a device-to-host copy of the token
    counts? Megatron: yes unless the experts' inputs are padded to capacity by a dispatcher that
    honours the padding (alltoall, hybridep; PADDED_NO_SYNC_DISPATCHERS). Megatron-Core
    (token_dispatcher.py at core_v0.15.0 and 92c8482, the Megatron-LM of Megatron-Bridge 25.11):
    the all-to-all dispatcher with drop_and_pad (--moe-pad-expert-input-to-capacity) builds its
    split sizes on the host (torch.full of the capacity) and leaves cuda_sync_point at "no_sync";
    dropless it waits "before_ep_alltoall" (or "before_finish" without EP), with an unpadded
    capacity factor "before_permutation_1"; the allgather dispatcher has no padded mode and calls
    .cpu() on its counts in every forward (MoEAllGatherTokenDispatcher.dispatch_postprocess, Megatron-LM
    main @ d98e8a6);
    DeepEP returns its received counts as a host list (fused_a2a.py) and HybridEP, unless padded,
    has no bound on its output size, which "will cause a CPU sync" (_HybridEPManager). torchtitan:
    with ep > 1 (its all-to-all splits are copied with non_blocking=False)."""
    from planner.estimate.table import MEG, TT

    if not ctx.model.moe:
        return np.zeros_like(t["tp"], dtype=bool)
    rt = ctx.scenario.runtime
    padded = (bool(rt.moe_pad_to_capacity) and ctx.model.moe.capacity_factor is not None
              and rt.moe_dispatcher in PADDED_NO_SYNC_DISPATCHERS)
    # HybridEP with a static expert-rank budget (runtime.moe_expert_rank_capacity_factor) sizes its output
    # without the counts on the host (_HybridEPManager.setup_metadata / dispatch at d0b3b7754)
    padded = padded or rt.moe_expert_rank_capacity_factor is not None
    return ((t["framework"] == MEG) & (not padded)) | ((t["framework"] == TT) & (t["ep"] > 1))


def moe_sync_exposed_s(ctx, t, gpu_post_s):
    """Forward seconds per MoE layer and micro-batch that the dispatcher's host synchronisation
    exposes where there is one (moe_forward_syncs; zero for dense models, padded token drop and
    torchtitan without EP).

    Megatron-Core's token dispatchers need the token counts on the host (all-to-all split sizes,
    the grouped GEMM's per-expert row counts): MoEAlltoAllTokenDispatcher copies them device-to-host
    and waits on that copy at its `cuda_sync_point` ("before_ep_alltoall" when dropless,
    "before_permutation_1" with an unpadded capacity factor, none when padded to capacity;
    megatron/core/transformer/moe/token_dispatcher.py, _maybe_dtoh_and_synchronize), every MoE
    layer's forward; the other dispatchers wait elsewhere (moe_forward_syncs, MOE_POST_SYNC_OPS). The wait drains the GPU's queue, so the
    host's lead is lost: from the sync on, the GPU runs each kernel only once the host has issued it.
    The kernels of the dispatch / expert / combine section after the sync are issued in
    (at least) one bare launch each (HOST_LAUNCH_S): the dispatcher's MOE_POST_SYNC_OPS, one GEMM per
    local expert and expert module, and the forward half of the per-expert FP8 quantisation kernels
    (compute_moe.expert_quant_kernels). Where issuing them takes longer than the GPU's work in that
    section (`gpu_post_s`: expert GEMMs, permutation traffic, the dispatch and combine
    all-to-alls), the GPU waits for the difference; the wait itself costs HOST_SYNC_S:
        exposed = max(0, launches x HOST_LAUNCH_S x host_dispatch_factor - gpu_post_s) + HOST_SYNC_S.
    NVIDIA's DeepSeek-V3 GB200 guide (Megatron-LM docs/discussions/deepseek-v3-gb200-optimization,
    "Future Work") names this device-host sync as what keeps the routed experts host-bound after
    CUDA graphs. The backward reuses the host copies of the counts: no sync there.
    torchtitan's expert-parallel dispatch does the same (its ExpertParallel token dispatch copies the
    all-to-all splits to the host with `non_blocking=False`, commented "this would incur a
    device-to-host sync"), only with ep > 1; its experts run one torch._grouped_mm per module, so
    one launch per module instead of one per local expert."""
    m = ctx.model
    if not m.moe:
        return np.zeros_like(t["tp"], dtype=float)
    from planner.estimate.compute_moe import expert_quant_kernels

    modules = sum(1 for mm in layer_matmuls(m, True) if mm.name.startswith("expert"))
    local = m.moe.experts / t["ep"]
    meg = t["framework"] == MEG
    gemms = np.where(meg, modules * local, modules)
    ops = np.where(meg, MOE_POST_SYNC_OPS[ctx.scenario.runtime.moe_dispatcher], MOE_POST_SYNC_OPS["alltoall"])
    launches = (ops + expert_quant_kernels(ctx, t) / 2) * HOST_LAUNCH_S \
        + gemms * expert_gemm_host_s(t)
    exposed = np.maximum(0.0, launches * host_dispatch_factor(ctx) - gpu_post_s) + HOST_SYNC_S
    return np.where(moe_forward_syncs(ctx, t), exposed, 0.0)
