"""Everything else on the GPU: CUDA context and library workspaces, NCCL communicator buffers, the
frameworks' gradient buckets and gathered parameters, transient communication buffers and allocator
fragmentation. Vectorised over a plan table. Constants say where they come from, or "assumed".
"""

from __future__ import annotations

import numpy as np

from planner.arch import attention_dims
from planner.estimate import table as T
from planner.estimate.memory_terms_states import COMPUTE_BYTES, fp8_weight_copy_bytes, grad_buffer_bytes
from planner.estimate.table import DS, FP8, MEG, TT

MIB, GIB = 2**20, 2**30
# CUDA context with lazy module loading (CUDA >= 11.7, PyTorch's default): "around 400MB" (PyTorch
# maintainers in pytorch/pytorch#109888 and #107667); rounded up to 0.5 GiB for the kernels a training
# stack loads on top (NCCL, Transformer Engine, flash-attention): the rounding is assumed.
CUDA_CONTEXT_BYTES = 0.5 * GIB
# cuBLAS/cuBLASLt workspace: 32 MiB recommended on Hopper (cuBLAS docs, cublasSetWorkspace; 4 MiB
# before); PyTorch allocates one per (handle, stream). Streams assumed: compute, TP-overlap,
# gradient-reduction and pipeline p2p.
CUBLAS_WORKSPACE_BYTES = 32 * MIB
WORKSPACE_STREAMS = 4
# NCCL buffers per communicator that runs collectives: +544 MB for a 2-rank and +688 MB for a larger
# communicator after a 4 MB all-reduce on 4 NVLink A100s (NVIDIA/nccl#964); they grow with channels,
# not with ranks beyond two nodes (sjeaugey, NVIDIA/nccl#864/#986). Point-to-point connections add
# buffers per peer: an 8-GPU H100 all_to_all grew NCCL memory from 1.06 to 4.34 GB, 0.47 GB per peer
# (NVIDIA/nccl#1685). Capping the peers at one node's seven is assumed.
NCCL_PAIR_COMM_BYTES = 544e6
NCCL_COMM_BYTES = 688e6
NCCL_P2P_PEER_BYTES = (4.34e9 - 1.06e9) / 7
NCCL_P2P_MAX_PEERS = 7
# DeepSpeed buckets. The planner's exporter sets reduce_bucket_size = allgather_bucket_size = 2e8
# elements (DeepSpeed's default is 5e8). "overlap_comm uses 4.5x the allgather_bucket_size and
# reduce_bucket_size values ... 5e8 ... requires a 9GB footprint (5e8 x 2Bytes x 2 x 4.5)"
# (transformers DeepSpeed integration docs, ZeRO-2 config). ZeRO-0 all-reduces gradients in flat
# buckets of MEMORY_OPT_ALLREDUCE_SIZE = 5e8 elements (deepspeed/runtime/engine.py).
DS_BUCKET_ELEMENTS = 2e8
DS_OVERLAP_BUCKET_FACTOR = 4.5
DS_ALLREDUCE_BUCKET_ELEMENTS = 5e8
# ZeRO-3 parameter gathering, DeepSpeed defaults (zero_optimization, ecosystem.md 1.3):
# stage3_prefetch_bucket_size, stage3_max_live_parameters, stage3_param_persistence_threshold.
DS_PREFETCH_BUCKET_ELEMENTS = 5e7
DS_MAX_LIVE_PARAMETERS = 1e9
DS_PARAM_PERSISTENCE_THRESHOLD = 1e5
# PyTorch caching allocator: memory it holds beyond what is allocated at the peak, as a fraction of
# the largest tensor allocated in that phase. A freed block is split to serve smaller requests but
# cannot serve a larger one, so the allocator maps a new segment for the largest request while
# smaller cached pieces stay reserved; expandable segments (PYTORCH_CUDA_ALLOC_CONF=
# expandable_segments:True) grow one segment by pages instead. Measured on an H200 (torch 2.11,
# benchmarks/memory_device_results.md, 7 configurations of a 3B-parameter decoder): max_memory_reserved
# - max_memory_allocated was 0.54 to 0.98 of the largest tensor (the fp32 logits) with the default
# allocator, 0.52 to 0.64 with expandable segments; taken at the measured maxima, rounded up.
ALLOCATOR_SLACK_DEFAULT = 1.0
ALLOCATOR_SLACK_EXPANDABLE = 0.65


def expandable_segments_on(setting, framework: str) -> bool:
    """runtime.expandable_segments resolved for one framework by name ('auto': torchtitan's
    run_train.sh sets PYTORCH_ALLOC_CONF=expandable_segments:True, the PyTorch default that DeepSpeed
    and Megatron-LM keep is off). The exporters' launch environment reads the same rule."""
    return framework == "torchtitan" if setting == "auto" else bool(setting)


def expandable_segments(ctx, t):
    """Whether each plan's run uses expandable segments: expandable_segments_on per framework code."""
    setting = ctx.scenario.runtime.expandable_segments
    if setting != "auto":  # the same for every framework: the framework column is not read
        return np.full(len(t["tp"]), bool(setting))
    return np.array([expandable_segments_on(setting, name) for name in T.FRAMEWORKS])[t["framework"]]


def fragmentation_bytes(ctx, t, largest):
    """Reserved beyond allocated at the peak: the allocator slack times the phase's largest tensor."""
    return np.where(expandable_segments(ctx, t), ALLOCATOR_SLACK_EXPANDABLE, ALLOCATOR_SLACK_DEFAULT) * largest


def _comm_bytes(size):
    """NCCL buffers of one communicator of `size` ranks that runs collectives (none for one rank)."""
    return np.where(size > 2, NCCL_COMM_BYTES, np.where(size == 2, NCCL_PAIR_COMM_BYTES, 0.0))


def _p2p_bytes(peers):
    return np.minimum(peers, NCCL_P2P_MAX_PEERS) * NCCL_P2P_PEER_BYTES


def nccl_buffer_bytes(ctx, t):
    """NCCL buffers of the communicators this GPU uses: tensor parallel, data parallel x cp, the
    default group where it differs from the data-parallel one (loss, gradient norm, barriers), the
    expert data-parallel group, all-to-all peers of expert parallelism, ring peers of context
    parallelism, pipeline neighbours (one at the ends, two when interleaved: the last rank feeds the
    first), and the first/last-stage group that all-reduces tied embedding gradients."""
    tp, pp, cp, dp, ep, vpp = t["tp"], t["pp"], t["cp"], t["dp"], t["ep"], t["vpp"]
    dpcp = dp * cp
    world = dpcp * tp * pp
    tied = ctx.model.tie_embeddings
    return (_comm_bytes(tp) + _comm_bytes(dpcp) + np.where(world > dpcp, _comm_bytes(world), 0.0)
            + np.where(ep > 1, _comm_bytes(np.maximum(1, dpcp * tp // (ep * t["etp"]))) + _p2p_bytes(ep - 1), 0.0)
            + _p2p_bytes(np.minimum(cp - 1, 2))
            + _p2p_bytes(np.minimum(pp - 1, np.where(vpp > 1, 2, 1)))
            + np.where((pp > 1) & tied, NCCL_PAIR_COMM_BYTES, 0.0))


def ds_bucket_bytes(ctx, t, local):
    """DeepSpeed's gradient buckets (persistent once allocated). ZeRO-1/2: reduce + all-gather buckets
    of DS_BUCKET_ELEMENTS each, 4.5 times with overlap_comm (runtime.dp_comm_overlap); ZeRO-3: its
    contiguous reduce bucket; ZeRO-0: the all-reduce bucket. No bucket exceeds the GPU's parameters."""
    wb = COMPUTE_BYTES[t["precision"]]
    zero = t["zero"]
    overlap = ctx.scenario.runtime.dp_comm_overlap
    bucket = np.minimum(DS_BUCKET_ELEMENTS, local) * wb
    zero12 = 2 * bucket * (DS_OVERLAP_BUCKET_FACTOR if overlap else 1.0)
    zero0 = np.minimum(DS_ALLREDUCE_BUCKET_ELEMENTS, local) * wb
    by_stage = np.where(zero == 0, zero0, np.where(zero >= 3, bucket, zero12))
    return np.where(t["framework"] == DS, by_stage, 0.0)


def largest_module_params(ctx, t):
    """Parameters of the largest module ZeRO-3 gathers at once (DeepSpeed gathers per leaf module, as
    its estimator's `largest_layer_params`): the embedding or output layer [vocab, h], a projection
    of attention or of the MLP (Hugging Face modules: q, k, v, o, gate, up and down apart), or a whole
    sparse-MoE block (DeepSpeed's default `leaf_module` classes: Mixtral, Qwen2-MoE, Qwen3-MoE)."""
    m, st = ctx.model, ctx.stats
    d_qk, d_v = attention_dims(m)
    candidates = [m.vocab * m.hidden, m.hidden * m.heads * d_qk, m.heads * d_v * m.hidden]
    if st.dense_layers:
        candidates.append(m.hidden * m.ffn_hidden)
    if m.mla:
        a = m.mla
        candidates.append(a.kv_lora_rank * m.heads * (a.qk_nope_head_dim + a.v_head_dim))
    largest = float(max(candidates))
    if st.moe_layers:
        return np.maximum(largest, st.routed_experts_per_moe_layer / t["ep"]) / t["tp"]
    return largest / t["tp"]


def zero3_live_bytes(ctx, t, sp):
    """DeepSpeed ZeRO-3 gathered parameters: the largest module L plus the prefetch bucket, within
    max_live_parameters (never below L), its full gradient before the reduce-scatter (L), and the
    persistent small parameters (norm weights, below the persistence threshold). DeepSpeed's
    estimator counts 4L bytes for the first two (ecosystem.md section 3)."""
    wb = COMPUTE_BYTES[t["precision"]]
    big = largest_module_params(ctx, t)
    live = np.maximum(big, np.minimum(DS_MAX_LIVE_PARAMETERS, big + DS_PREFETCH_BUCKET_ELEMENTS))
    small = sp["norms"] if ctx.model.hidden < DS_PARAM_PERSISTENCE_THRESHOLD else 0.0
    on = (t["framework"] == DS) & (t["zero"] >= 3)
    return np.where(on, wb * (live + big + small), 0.0)


def fsdp_prefetch_bytes(ctx, t):
    """Gathered FSDP units.
      torchtitan FSDP2 without pipeline parallelism. torchtitan wraps every transformer block, then
    the whole model, so the root unit holds the embedding, the final norm and the output layer
    (`apply_fsdp`); the last block and the root are not resharded after forward. At the step's
    forward/backward peak (the loss's backward) both are unsharded in the compute dtype. The
    reduce-scatter input of the largest unit, in the reduce dtype (fp32 by default,
    memory_terms_states.grad_buffer_bytes), is allocated on FSDP2's reduce-scatter stream, whose
    cached blocks the compute stream cannot reuse. Measured on an H200 (one-rank FSDP2, 3B decoder,
    benchmarks/memory_device_results.md): the allocated peak above the activations was the root and
    last block unsharded (2.41 GiB), and expandable segments reserved the root's fp32 reduce-scatter
    input (3.9 GiB) beyond the non-FSDP run's slack. With pipeline parallelism the stage stays
    unsharded (weights.fsdp_unsharded_params).
      Megatron-FSDP (megatron, zero 3): double-buffered, at most two units' parameters (compute
    dtype) and two units' gradients (main grads dtype, the compute dtype by default) allocated at
    once (Megatron-LM docs/user-guide/features/megatron_fsdp.md, "double-buffering"); a unit is a
    transformer block or the embedding/output layer, the larger after tensor and expert parallelism.
    With fp8 each live unit also holds its FP8 weights and their transposes (1 + 1 bytes per
    parameter, 1 on Blackwell: memory_terms_states.fp8_weight_transposes; Transformer Engine builds them from the gathered weights and Megatron-FSDP discards
    them with the unit, megatron_fsdp.py `release_params_fp8_transpose_cache`)."""
    st, m = ctx.stats, ctx.model
    wb = COMPUTE_BYTES[t["precision"]]
    block = (st.attention_per_layer + st.norms_per_layer + max(
        st.dense_mlp_per_layer if st.dense_layers else 0,
        st.router_per_moe_layer + st.shared_experts_per_moe_layer if st.moe_layers else 0)) / t["tp"]
    block = block + (st.routed_experts_per_moe_layer / (t["ep"] * t["etp"]) if st.moe_layers else 0.0)
    root = (st.embedding + st.lm_head + st.final_norm) / t["tp"]
    gb = grad_buffer_bytes(ctx, t)
    titan = (t["framework"] == TT) & (t["zero"] >= 3) & (t["pp"] == 1)
    mfsdp = (t["framework"] == MEG) & (t["zero"] >= 3)
    unit = np.maximum(block, m.vocab * m.hidden / t["tp"])
    fp8_live = fp8_weight_copy_bytes(ctx)  # FP8 weights (+ transposes on Hopper, + column-wise MXFP8)
    return np.where(titan, (root + block) * wb + np.maximum(root, block) * gb,
                    np.where(mfsdp, unit * 2 * (wb + gb + np.where(t["precision"] == FP8, fp8_live, 0.0)), 0.0))


def transient_comm_bytes(ctx, t, sp):
    """Buffers of one micro-batch and layer that live only around a collective: the sequence-parallel
    all-gather of a layer input (2h per token of the full sequence; Megatron's global memory buffer,
    torchtitan's DTensor redistribute), and the permuted tokens the MoE dispatch all-to-all sends
    (2h per routed copy). Both are freed within the layer, so they count once per stage, not per
    layer or per micro-batch in flight."""
    m = ctx.model
    tokens = t["mbs"] * ctx.seq_len / t["cp"]
    gather = np.where(t["sp"] & (t["tp"] > 1), 2.0 * m.hidden * tokens, 0.0)
    permute = 0.0
    if m.moe:
        fold = t["etp"] / t["tp"]  # routed copies an expert rank receives (memory_terms_activations)
        permute = np.where(sp["moe"] > 0, 2.0 * m.hidden * tokens * m.moe.top_k * (m.moe.capacity_factor or 1.0)
                           * fold, 0.0)
    return gather, permute


def pipelining_recv_bytes(ctx, t, stage):
    """torchtitan's pipeline (torch.distributed.pipelining) allocates its receive buffers when the
    schedule is set up, one per micro-batch: each of the rank's vpp stages an activation buffer
    (stages with a predecessor) and a gradient buffer (stages with a successor)
    (`_PipelineStageBase._prepare_forward_infra` / `_prepare_backward_infra`: "should be deleted once
    lazy buffer allocation is implemented"). Each holds the stage boundary tensor, a block output:
    2h bytes per token of the micro-batch, sequence-sharded under SP. Megatron receives into one
    buffer at a time and frees it with the micro-batch's backward: nothing persistent."""
    from planner.estimate.memory_terms_stage import pipeline_rank

    rank, pp, vpp = pipeline_rank(t, stage), t["pp"], t["vpp"]
    tokens = t["mbs"] * ctx.seq_len / t["cp"]
    boundary = 2.0 * ctx.model.hidden / np.where(t["sp"], t["tp"], 1) * tokens
    buffers = (vpp - (rank == 0)) + (vpp - (rank == pp - 1))
    return np.where((t["framework"] == TT) & (pp > 1), buffers * t["ga"] * boundary, 0.0)


def fixed_runtime_parts(ctx, t, local) -> dict:
    """Parts that are allocated once and stay for the whole run."""
    return {"other.cuda_context": np.full(len(t["tp"]), CUDA_CONTEXT_BYTES),
            "other.library_workspaces": np.full(len(t["tp"]), CUBLAS_WORKSPACE_BYTES * WORKSPACE_STREAMS),
            "other.nccl_buffers": nccl_buffer_bytes(ctx, t),
            "other.ds_buckets": ds_bucket_bytes(ctx, t, local)}


def transient_runtime_parts(ctx, t, sp) -> dict:
    """Parts that exist during forward and backward only."""
    gather, permute = transient_comm_bytes(ctx, t, sp)
    return {"other.zero3_live_params": zero3_live_bytes(ctx, t, sp),
            "other.fsdp_prefetch": fsdp_prefetch_bytes(ctx, t),
            "other.sp_allgather_buffer": gather + np.zeros(len(t["tp"])),
            "other.moe_permute_buffer": permute + np.zeros(len(t["tp"]))}


# Megatron-Core full-iteration graphs (full_cuda_graph.py StaticBufferLoader) copy every micro-batch's
# batch into static buffers kept for the run: tokens, labels and position ids (int64, 8 B each) and the
# loss mask (fp32, 4 B) per token.
FULL_ITERATION_BATCH_BYTES_PER_TOKEN = 3 * 8 + 4


def graphed_layers(ctx, t, stage):
    """Layers of the stage that Transformer Engine graphs (Megatron-Core cuda_graphs.py
    _layer_is_graphable): every layer with no scope or with attn; the MoE layers with moe, moe_router or
    moe_preprocess; the dense layers with mlp."""
    from planner.estimate.memory_terms_stage import stage_layers

    layers, dense, moe = stage_layers(ctx, t, stage)
    scope = set(ctx.scenario.runtime.cuda_graph_scope)
    if not scope or "attn" in scope:
        return layers
    moe_scoped = bool(scope & {"moe", "moe_router", "moe_preprocess"})
    return np.where(moe_scoped, moe, 0) + np.where("mlp" in scope, dense, 0)


def cuda_graph_bytes(ctx, t, stage):
    """Static memory CUDA graphs keep for the whole run beyond what the eager step allocates
    (runtime.cuda_graph_impl; Megatron only, Megatron-Core at 92c8482e, the Megatron-Bridge 25.11 pin):
      transformer_engine: make_graphed_callables (TE graph.py) keeps each graph's sample input as a
        static buffer the replay copies into; Megatron-Core (TECudaGraphHelper) builds one per graphed
        layer and micro-batch and passes _reuse_graph_input_output_buffers (TE >= 2.7), which reuses a
        micro-batch's buffers once its backward has run: one hidden-state buffer (tokens x hidden x 2 B in 16-bit,
        tokens = mbs x s / cp, / tp with sequence parallelism) per graphed layer (graphed_layers) per
        micro-batch in flight. Outputs are the tensors the eager code holds anyway (not counted);
      local, per layer: CudaGraphManager chains each layer's static output into the next layer's input
        (create_cudagraphs, optimize_transformer_layer_graph_buffers), so only the first layer of each
        model chunk keeps its own input: one hidden-state buffer per chunk-forward in flight;
      local, full_iteration: FULL_ITERATION_BATCH_BYTES_PER_TOKEN for every token of the step's ga
        micro-batches (StaticBufferLoader). The graphed forward and backward allocate from a private pool
        the optimizer step cannot reuse; Megatron's step temporaries are not modelled (0), so that adds
        nothing here."""
    from planner.estimate.memory_terms_stage import in_flight_microbatches

    rt = ctx.scenario.runtime
    impl = rt.cuda_graph_impl
    n = len(t["tp"])
    if impl == "none":
        return np.zeros(n)
    tokens = t["mbs"] * ctx.seq_len / t["cp"]
    hidden_buf = tokens / np.where(t["sp"], t["tp"], 1) * ctx.model.hidden * COMPUTE_BYTES[t["precision"]]
    in_flight = in_flight_microbatches(t, stage)
    if impl == "transformer_engine":
        out = graphed_layers(ctx, t, stage) * in_flight * hidden_buf
    elif "full_iteration" in rt.cuda_graph_scope:
        out = t["ga"] * t["mbs"] * ctx.seq_len * FULL_ITERATION_BATCH_BYTES_PER_TOKEN  # whole sequences, as loaded
    else:
        out = in_flight * t["vpp"] * hidden_buf
    return np.where(t["framework"] == MEG, out, 0.0) + np.zeros(n)
