"""Model states per GPU — weights, gradients, master weights, optimizer states — per framework, and
what CPU/NVMe offload moves off the GPU. Vectorised over a plan table.

Layout (Rajbhandari et al. 2020, ZeRO, arXiv:1910.02054, Sec. 3.1 and Fig. 1): mixed precision keeps
2-byte weights and gradients plus K = 12 bytes of fp32 master weights and Adam moments per parameter;
ZeRO-1 shards the K bytes over the data-parallel group, ZeRO-2 also the gradients, ZeRO-3 also the
weights. Each framework's own choices:
  * DeepSpeed: as above. Before its step a ZeRO-1/2 rank converts its gradient partition to fp32 (a
    4-byte temporary, `stage_1_and_2.py` step), ZeRO-3 one sub-group at a time
    (`_prepare_fp32_grad_for_sub_group`); ZeRO-3 keeps its gradient partition in
    `grad_partitions_flat_buffer`, in the model dtype unless `data_types.grad_accum_dtype` says
    otherwise (`engine.get_data_types`). DeepSpeed's estimators count that fp32 copy as a steady
    4 bytes (ecosystem.md section 3: 18 = 2 + 4 + 4 + 8).
  * Megatron-LM: bf16/fp8 accumulate into an fp32 `main_grad` buffer of full size; fp16 keeps fp16
    gradients and an fp32 copy of the optimizer's shard. Bytes per parameter without / with the
    distributed optimizer: 18 / 6 + 12/d (bf16), 20 / 4 + 16/d (fp16), 16 / 8 + 8/d (fp32)
    (Megatron-LM docs, "Distributed Optimizer"). Gradient reduce-scatter and parameter all-gather
    work in place in those buffers.
  * torchtitan FSDP2: sharded fp32 parameters are the master copy; gradients are reduce-scattered
    into fp32 shards (`mixed_precision_reduce = float32`). With pipeline parallelism torchtitan's
    default `reshard_after_forward_policy` keeps the stage's bf16 parameters unsharded, and
    torch.distributed.pipelining disables gradient sync until the last micro-batch, so gradients
    accumulate unsharded in the reduce dtype (FSDP2 `to_accumulated_grad_if_needed`).
  * Megatron-FSDP (`--use-megatron-fsdp`, `--data-parallel-sharding-strategy optim_grads_params`,
    our zero = 3): compute weights, main gradients, fp32 main weights and Adam moments all sharded
    over the data-parallel group; the main gradients take the compute dtype by default
    (`--megatron-fsdp-main-grads-dtype auto`, Megatron-LM arguments.py / mcore_fsdp_adapter.py), the
    main weights fp32 (`--megatron-fsdp-main-params-dtype fp32`).
Shard groups: dp x cp for the dense part (Megatron-Core `with_context_parallel=True`; torchtitan
shards over dp_shard x cp); for experts the expert data-parallel group tp x cp x dp / (ep x etp)
(Megatron-Core parallel_state.py: the expert grid etp x ep x edp x pp spans the same ranks), and
experts are split over etp ranks (expert tensor parallelism) rather than tp.
"""

from __future__ import annotations

import numpy as np

from planner.arch import layer_matmuls
from planner.estimate.table import DS, FP8, FP16, FP32, MEG, TT
from planner.estimate.memory_terms_stage import pipeline_rank

# Bytes per element of the weights the framework computes with (bf16 weights under FP8, see below).
COMPUTE_BYTES = np.array([4.0, 2.0, 2.0, 2.0])
# Optimizer state bytes per parameter it updates (the fp32 master copy is counted apart):
#   adam / adamw: fp32 first and second moments (ZeRO's K = 12 = 4 master + 8);
#   adam8bit: uint8 moments plus an fp32 absmax per 2048-element block of each (Dettmers et al. 2022,
#     "8-bit Optimizers via Block-wise Quantization", block size 2048);
#   sgd: one fp32 momentum buffer (torch.optim.SGD with momentum > 0);
#   adafactor: 4 bytes when it sees flat partitions, else factored (adafactor_state_elements);
#   muon: 4 (one fp32 momentum) for its matrices, 8 (the Adam fallback) for the rest: estimate/muon.py, which
#     optimizer_state_bytes asks; the figure here is the Muon parameters' own.
STATE_BYTES = {"adamw": 8.0, "adam": 8.0, "adam8bit": 2.0 + 2 * 4.0 / 2048, "sgd": 4.0, "adafactor": 4.0,
               "muon": 4.0}
# Transformer Engine FP8 (Megatron-LM): each GEMM keeps an FP8 copy of its weight and of its
# transpose across micro-batches (1 + 1 bytes; Hopper's FP8 GEMM needs both layouts; Blackwell's does
# not, fp8_weight_transposes), and a delayed-
# scaling state: amax history (`--fp8-amax-history-len`, Megatron default 1), scale and inverse
# scale (fp32) for 3 forward and 2 backward tensors.
FP8_COPY_BYTES = 2.0
FP8_AMAX_HISTORY = 1
FP8_SCALING_BYTES_PER_GEMM = 5 * (FP8_AMAX_HISTORY + 2) * 4.0
DS_SUB_GROUP_SIZE = 1e9  # DeepSpeed zero_optimization.sub_group_size default (ecosystem.md 1.3)
ROW_PARALLEL = ("o_proj", "mlp_down", "expert_down", "shared_down")  # Megatron RowParallelLinear


def fp8_weight_transposes(ctx) -> bool:
    """Whether Transformer Engine keeps a transposed FP8 copy of each weight (Hopper's FP8 GEMMs take
    only the TN layout). Not on compute capability 10.x-11.x or >= 13 (Blackwell datacenter parts), whose
    FP8 GEMMs take any layout: TE `nvte_is_non_tn_fp8_gemm_supported` (common/transformer_engine.cpp),
    and its quantizer creates no columnwise copy then (pytorch/csrc/quantizer.cpp `create_transpose`).
    A GPU without a stated compute capability keeps them (the larger count): compute_quant.non_tn_fp8_gemm."""
    from planner.estimate.compute_quant import non_tn_fp8_gemm

    return not non_tn_fp8_gemm(ctx.gpu)


def fp8_weight_copy_bytes(ctx) -> float:
    """Bytes per GEMM weight of the FP8 copies Transformer Engine keeps across micro-batches: the FP8
    weight and, where the GEMMs need it (fp8_weight_transposes), its transpose: 2 on Hopper, 1 on
    Blackwell. Under the MXFP8 recipe (runtime.fp8_recipe mxfp8) the scales run along one direction,
    so a transpose cannot be derived from the row-wise copy: TE's MXFP8Tensor keeps row-wise and
    column-wise data, each with one E8M0 scale byte per 32 elements (TE pytorch/tensor/mxfp8_tensor.py,
    MXFP8Quantizer): 2 + 2/32. Under NVFP4 (runtime.fp8_recipe nvfp4) TE keeps row-wise and column-wise
    NVFP4 data too (NVFP4BlockScaling docstring: both computed from the high-precision tensor), each 0.5
    byte per element plus an E4M3 scale per 16: 2 x compute_quant.NVFP4_OPERAND_BYTES."""
    recipe = ctx.scenario.runtime.fp8_recipe
    if recipe == "mxfp8":
        return 2.0 + 2.0 / 32
    if recipe == "nvfp4":
        from planner.estimate.compute_quant import NVFP4_OPERAND_BYTES

        return 2 * NVFP4_OPERAND_BYTES
    return FP8_COPY_BYTES if fp8_weight_transposes(ctx) else FP8_COPY_BYTES - 1.0


def quantised_param_bytes(ctx) -> float:
    """Bytes per GEMM weight kept as the parameter itself with a quantised parameter gather (Megatron
    --fp8-param-gather / --fp4-param-gather, runtime.fp8_param_gather): 1 (FP8), 0.5 + 1/16 under NVFP4
    (compute_quant.NVFP4_OPERAND_BYTES)."""
    if ctx.scenario.runtime.fp8_recipe == "nvfp4":
        from planner.estimate.compute_quant import NVFP4_OPERAND_BYTES

        return NVFP4_OPERAND_BYTES
    return 1.0


def grad_buffer_bytes(ctx, t):
    """Bytes per element of the gradient buffer that accumulates micro-batches and is reduced
    (scenario `runtime.grad_reduce_dtype`; 'auto' takes each framework's default): Megatron fp32 for
    bf16/fp8 (Megatron-LM arguments.py sets --accumulate-allreduce-grads-in-fp32 unless
    --grad-reduce-in-bf16; Megatron-Core DistributedDataParallelConfig.grad_reduce_in_fp32), bf16
    when set (NeMo / Megatron-Bridge performance recipes: grad_reduce_in_fp32 = False); torchtitan the
    FSDP2 reduce dtype, fp32 by default (mixed_precision_reduce); DeepSpeed the model dtype unless
    data_types.grad_accum_dtype says fp32; Megatron-FSDP the compute dtype. fp32 plans keep fp32 gradients whatever is set."""
    name = ctx.scenario.runtime.grad_reduce_dtype
    wb = COMPUTE_BYTES[t["precision"]]
    if name == "fp32":
        return np.full(len(wb), 4.0)
    if name == "bf16":
        return wb
    # Megatron-FSDP (megatron, zero 3): --megatron-fsdp-main-grads-dtype auto, the compute dtype
    # (megatron/training/arguments.py, mcore_fsdp_adapter.py MixedPrecisionPolicy)
    mfsdp = (t["framework"] == MEG) & (t["zero"] >= 3)
    return np.where((t["framework"] == DS) | mfsdp, wb, np.maximum(wb, 4.0))


def shard_groups(t):
    """(dense, expert) sharding group sizes: dp*cp and the expert data-parallel size
    tp*cp*dp/(ep*etp)."""
    dense = t["dp"] * t["cp"]
    return dense, np.maximum(1, dense * t["tp"] // (t["ep"] * t["etp"]))


def local_and_shard(t, sp):
    """Parameters on this GPU after tensor/expert parallelism (local) and after sharding (shard)."""
    tp, ep = t["tp"], t["ep"]
    s, se = shard_groups(t)
    dense, expert = sp["non_expert"] / tp, sp["expert"] / (ep * t["etp"])  # each quotient once, for both
    return dense + expert, dense / s + expert / se


def _matrix_dims(m, moe_layer: bool) -> np.ndarray:
    """Rows and columns of one layer's weights as nn.Linear [out, in]: row 0 the non-expert matrices,
    row 1 one routed expert; columns: out split by TP, out whole, in split by TP, in whole."""
    dims = np.zeros((2, 4))
    for x in layer_matmuls(m, moe_layer):
        i = 1 if x.name.startswith("expert_") else 0
        if not x.tp:
            dims[i, 1] += x.n
            dims[i, 3] += x.k
        elif x.name in ROW_PARALLEL:
            dims[i, 1] += x.n
            dims[i, 2] += x.k
        else:
            dims[i, 0] += x.n
            dims[i, 3] += x.k
    return dims


def adafactor_state_elements(ctx, t, sp, stage, row_shard, row_shard_expert):
    """Second-moment elements of Adafactor on this GPU (Shazeer & Stern 2018, Alg. 4): an r x c matrix
    keeps r row and c column statistics, a vector its full second moment; beta1 = None, so no first
    moment (the default of transformers.Adafactor and torch.optim.Adafactor). Matrices are this GPU's
    tensor-parallel shards as [out, in] (column-parallel layers split out, row-parallel ones in); an
    FSDP2 shard splits dim 0 again (rows / row_shard). Embedding and output weight [vocab, h] are
    vocab-parallel; the learned position table [positions, h] is not split by TP."""
    m, tp, ep = ctx.model, t["tp"], t["ep"]
    total = sp["norms"] / row_shard
    for moe_layer, count in ((False, sp["dense"]), (True, sp["moe"])):
        d = _matrix_dims(m, moe_layer)
        total = total + count * ((d[0, 0] / tp + d[0, 1]) / row_shard + d[0, 2] / tp + d[0, 3])
        if moe_layer and m.moe:
            etp = t["etp"]
            one = (d[1, 0] / etp + d[1, 1]) / row_shard_expert + d[1, 2] / etp + d[1, 3]
            total = total + count * m.moe.experts / ep * one
    vocab = (m.vocab / tp) / row_shard + m.hidden
    emb = vocab + ((m.max_seq_len or 0) / row_shard + m.hidden if m.position == "learned" else 0.0)
    head = 0.0 if m.tie_embeddings else vocab
    final_norm = m.hidden / row_shard
    rank = pipeline_rank(t, stage)
    first, last, pp = rank == 0, rank == t["pp"] - 1, t["pp"]
    ends = np.where(pp == 1, emb + head + final_norm,
                    np.where(first, emb, 0.0) + np.where(last, vocab + final_norm, 0.0))
    return total + ends


def optimizer_state_bytes(ctx, t, sp, stage, held):
    """Optimizer states for the `held` parameters this GPU updates (STATE_BYTES). Adafactor factors
    only where the optimizer sees the parameters' shapes: Megatron without the distributed optimizer
    and torchtitan (DTensor shards). DeepSpeed (every stage flattens into fp32 partition groups) and
    the Megatron distributed optimizer (shards of a flat buffer) hand it 1-D tensors: 4 bytes each. Muon keeps
    one fp32 momentum per matrix parameter and Adam moments for the rest (muon.state_bytes), sharded by the
    layer-wise distributed optimizer (zero >= 1)."""
    name = ctx.optimizer
    if name == "muon":
        from planner.estimate.muon import state_bytes

        return state_bytes(ctx, t, sp, stage, t["zero"] >= 1)[0]
    if name != "adafactor":
        return held * STATE_BYTES[name]
    fw, zero = t["framework"], t["zero"]
    s, se = shard_groups(t)
    titan = fw == TT
    factored = adafactor_state_elements(ctx, t, sp, stage, np.where(titan, s, 1), np.where(titan, se, 1))
    shaped = titan | ((fw == MEG) & (zero == 0))
    return np.where(shaped, 4.0 * factored, 4.0 * held)


def gemm_local_held(t, sp):
    """GEMM weights this GPU holds: its tensor/expert-parallel share, sharded with ZeRO-3."""
    s, se = shard_groups(t)
    tp, ep = t["tp"], t["ep"]
    dense, expert = sp["gemm"] / tp, sp["expert"] / (ep * t["etp"])
    return np.where(t["zero"] >= 3, dense / s + expert / se, dense + expert)


def fp8_gemms(ctx, sp, ep):
    """Number of GEMM weights (Transformer Engine modules, one scaling state each) in the stage; each
    local routed expert has its own."""
    m = ctx.model
    count = 0.0
    for moe_layer, layers in ((False, sp["dense"]), (True, sp["moe"])):
        mats = [x for x in layer_matmuls(m, moe_layer) if x.name != "router"]
        experts = [x for x in mats if x.name.startswith("expert_")]
        per_layer = len(mats) - len(experts) + (len(experts) * m.moe.experts / ep if experts else 0)
        count = count + layers * per_layer
    return count


def model_state_parts(ctx, t, sp, stage) -> dict:
    """Per-GPU bytes of each model-state part ('group.part'), plus the optimizer-step temporary, what
    offload moves ('offloaded_opt', 'offloaded_params') and the parameter counts used elsewhere."""
    tp, ep, zero, fw, prec = t["tp"], t["ep"], t["zero"], t["framework"], t["precision"]
    ds, meg, tt = fw == DS, fw == MEG, fw == TT
    local, shard = local_and_shard(t, sp)
    wb = COMPUTE_BYTES[prec]
    w_held = np.where(zero >= 3, shard, local)
    g_held = np.where(zero >= 2, shard, local)
    if ctx.optimizer == "muon":  # Megatron's layer-wise distributed optimizer deals whole parameters (muon.py)
        from planner.estimate.muon import layerwise_shares

        shard = layerwise_shares(ctx, t, sp, stage, zero >= 1)[0]
    o_held = np.where(zero >= 1, shard, local)
    fp16 = prec == FP16

    gb = grad_buffer_bytes(ctx, t)
    params = np.where(tt, w_held * 4.0, w_held * wb)
    # torchtitan's sharded gradients take the dtype of its fp32 sharded parameters; Megatron-FSDP's
    # main gradients the compute dtype by default (grad_buffer_bytes)
    grads = np.where(tt, g_held * 4.0, g_held * np.where(meg & fp16, wb, gb))
    fp32_grad_copy = np.where(meg & fp16, o_held * 4.0, 0.0)
    master = np.where(tt | (prec == FP32), 0.0, o_held * 4.0)
    states = optimizer_state_bytes(ctx, t, sp, stage, o_held)
    pipelined = t["pp"] > 1
    unsharded = np.where(tt & pipelined, local * wb, 0.0)
    grad_accum = np.where(tt & pipelined & (t["ga"] > 1), local * gb, 0.0)
    te_fp8 = meg & (prec == FP8)
    gemm_local = sp["gemm"] / tp + sp["expert"] / (ep * t["etp"])
    fp8_params = te_fp8 & ctx.scenario.runtime.fp8_param_gather
    # --fp8-param-gather: the GEMM weights themselves are FP8 (1 byte; their fp32 master copy stays in
    # the optimizer), and only the transposed FP8 copy is cached beside them
    qb = quantised_param_bytes(ctx)
    if fp8_params.any():  # else x - 0 = x: nothing to subtract
        params = params - np.where(fp8_params, gemm_local_held(t, sp) * (wb - qb), 0.0)
    # without transposes (Blackwell) only the FP8 weight copy itself: 1 byte, none with FP8 parameters
    copy_bytes = fp8_weight_copy_bytes(ctx)
    fp8_copies = np.where(te_fp8, gemm_local * np.where(fp8_params, copy_bytes - qb, copy_bytes), 0.0)
    # Megatron-FSDP gathers each unit's weights for its use and frees them, FP8 copies and transposes with
    # them (megatron_fsdp.py release hooks: fp8_discard_transpose_cache unless keep_fp8_transpose_cache);
    # what is live is counted with the gathered units (memory_terms_runtime.fsdp_prefetch_bytes). Kept,
    # the transposes cost 1 byte per parameter (Megatron-FSDP README, keep_fp8_transpose_cache).
    keep_t = ctx.scenario.runtime.keep_fp8_transpose_cache
    keep_t = keep_t and fp8_weight_copy_bytes(ctx) > 1.5
    fp8_copies = np.where(te_fp8 & (zero >= 3), gemm_local * (fp8_weight_copy_bytes(ctx) / 2 if keep_t else 0.0),
                          fp8_copies)
    fp8_scaling = np.where(te_fp8, fp8_gemms(ctx, sp, ep) * FP8_SCALING_BYTES_PER_GEMM, 0.0)

    # Offload. DeepSpeed: master, moments and the fp32 gradient partition live in pinned host memory
    # (or NVMe); ZeRO-2/3 send their gradient partition there, ZeRO-1 keeps full gradients on the GPU
    # until the boundary. Megatron `--optimizer-cpu-offload`: master and moments on the host, which
    # receives an fp32 copy of the gradient shard; the main_grad buffer stays. torchtitan
    # CPUOffloadPolicy: sharded parameters, gradients and states all on the host.
    off_opt, off_par = t["offload"] > 0, (t["offload_params"] > 0) & ~tt
    moved_opt = np.where(off_opt, master + states + np.where(tt, params + grads, o_held * 4.0), 0.0)
    moved_par = np.where(off_par, params, 0.0)
    # DeepSpeed's 16-bit gradient partition buffer lives on the host under optimizer offload, even with
    # NVMe: ZeRO-3 allocates `grad_partitions_flat_buffer` on the offload device, ZeRO-1/2 accumulate
    # micro-batch gradients in pinned `accumulated_grads_in_cpu` when ga > 1.
    grad_buffer_host = np.where(ds & off_opt & ((zero >= 3) | (t["ga"] > 1)), o_held * wb, 0.0)
    step_temp = np.where(ds & ~off_opt, 4.0 * np.where(zero >= 3, np.minimum(o_held, DS_SUB_GROUP_SIZE), o_held), 0.0)
    return {
        "weights.params": np.where(off_par | (off_opt & tt), 0.0, params),
        "weights.fp8_weight_copies": fp8_copies,
        "weights.fp8_scaling_state": fp8_scaling,
        "weights.fsdp_unsharded_params": unsharded,
        "gradients.grads": np.where(off_opt & (tt | (ds & (zero >= 2))), 0.0, grads),
        "gradients.fp32_grad_copy": np.where(off_opt, 0.0, fp32_grad_copy),
        "gradients.fsdp_grad_accumulation": grad_accum,
        "optimizer.master_weights": np.where(off_opt, 0.0, master),
        "optimizer.states": np.where(off_opt, 0.0, states),
        "step_temp": step_temp, "offloaded_opt": moved_opt, "offloaded_params": moved_par,
        "host_grad_buffer": grad_buffer_host,
        "local_params": local, "partition_params": shard,
    }
