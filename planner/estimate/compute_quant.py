"""FP8 / FP4 quantisation in the compute model: bytes moved by casting activations and weights
(Transformer Engine's per-tensor, MXFP8 and NVFP4 recipes), the FP8 / FP4 operand sizes and GEMM-rate
ratios, and how often the weights are cast per micro-batch. Constants carry their sources."""

from __future__ import annotations

import numpy as np

from planner.arch import attention_dims, layer_matmuls
from planner.estimate.table import FP8, MEG

# FP8 quantisation of one activation element (Transformer Engine): read bf16 (2), write the FP8
# row-wise copy (1) and the column-wise / transposed copy the weight-gradient GEMM needs (1; Hopper
# FP8 tensor cores take only the TN layout: TE "FP8 primer"). Delayed scaling (TE's DelayedScaling,
# Megatron --fp8-recipe delayed, the default) takes the scale from the amax history and fuses the
# new amax into the cast; current (per-tensor) scaling (Float8CurrentScaling, NeMo/Megatron-Bridge
# "FP8-CS", torchao tensorwise) must read the tensor once more for its amax first (2).
FP8_CAST_BYTES = {"delayed": 4.0, "current": 6.0}
# GPUs whose FP8 GEMMs take every layout need no transposed copy: Transformer Engine creates none
# for per-tensor FP8 there (pytorch/csrc/quantizer.cpp: create_transpose = columnwise_usage &&
# !nvte_is_non_tn_fp8_gemm_supported()), which is true for compute capability 10.x-11.x and 13.x+
# (common/transformer_engine.cpp): Blackwell data-centre parts. 1 byte less per quantised element.
NON_TN_TRANSPOSE_SAVED = 1.0
# MXFP8 (TE MXFP8BlockScaling, Megatron --fp8-recipe mxfp8, Megatron-Bridge "FP8-MX"; Blackwell only):
# one kernel reads bf16 (2) and writes a row-wise and a column-wise FP8 copy (1 + 1: the E8M0 scales
# run along the reduction dimension, which differs between forward and weight-gradient GEMMs), each
# with a 1-byte scale per 32 elements (MXFP8_OPERAND_BYTES each); the block amax is taken inside the kernel.
MXFP8_OPERAND_BYTES = 1.0 + 1.0 / 32
MXFP8_CAST_BYTES = 2.0 + 2 * MXFP8_OPERAND_BYTES
# MXFP8 GEMM kernels run slower than per-tensor FP8 ones (block scales loaded with the tiles): TE's
# GEMM profiling tutorial (docs/examples/gemm_profiling/gemm_profiling.rst, B300, pre-quantised
# operands, a 5B model's 12 GEMM shapes): 6.812 ms per layer with FP8 current scaling, 7.161 with MXFP8.
MXFP8_GEMM_OF_FP8 = 6.812 / 7.161
# NVFP4 (TE NVFP4BlockScaling; Megatron --fp4-format e2m1 --fp4-recipe nvfp4; Megatron-Bridge "NVFP4").
# An E2M1 element is half a byte, with one E4M3 scale byte per 16 elements (TE recipe docstring: 16-element
# blocks, E4M3 scales, plus one FP32 scale per tensor): 0.5 + 1/16 bytes per GEMM operand element.
NVFP4_OPERAND_BYTES = 0.5 + 1.0 / 16
# GEMM rate: per GPU, measured (catalogs/gpus.yaml `fp4_gemm_over_fp8`: B200 1.44, GB200 1.50 from NVIDIA's
# TensorRT-LLM GEMM tables; B300 / GB300 1.81 from TE's GEMM profiling tutorial on B300). A GPU with FP4 tensor
# cores but no measurement borrows the B200's, the first FP4 part measured (ASSUMED, stated in the catalog).
FP4_GEMM_OVER_FP8_DEFAULT = 1.44
# Quantising one bf16 activation or gradient element (TE pytorch/csrc/quantizer.cpp
# NVFP4Quantizer::quantize_impl): the per-tensor amax pass reads it (2; with the Hadamard transform the
# post-RHT column-wise amax is taken in the same pass, nvte_hadamard_transform_amax), then the fused RHT
# cast reads it again (2) and writes a row-wise and a column-wise NVFP4 copy (both from the bf16 input,
# recipe docstring), 0.5 + 1/16 bytes each. Weights (2D 16x16 blocks, no RHT) move the same bytes.
# The recipe's switches (NVTE_NVFP4_DISABLE_RHT / _STOCHASTIC_ROUNDING / _2D_QUANTIZATION, recipe/__init__.py
# NVFP4BlockScaling; MLPerf v5.1 sets all three) change no bytes here: without RHT the amax pass
# (nvte_compute_amax) and one cast writing both copies (nvte_quantize_v2); with RHT from TE v2.14 one fused
# kernel writes the row-wise and the Hadamard-transformed column-wise copy (nvte_quantize_with_hadamard_transform);
# stochastic rounding (gradients) and 2D blocks (weights) are done inside the same casts. Only TE v2.8-v2.13 with
# RHT on read the input once more (separate row-wise cast and nvte_hadamard_transform_cast_fusion_columnwise:
# 2 bytes more per element); the planner does not know the TE version and charges the v2.14+ kernels.
NVFP4_CAST_BYTES = 2.0 + 2.0 + 2 * NVFP4_OPERAND_BYTES
# Grouped expert modules: TE's split_quantize has a fused NVFP4 path for all experts' tensors (extensions/
# cast.cpp split_quantize_nvfp4_impl: one grouped amax and one grouped cast kernel).
NVFP4_SPLIT_QUANT_KERNELS = 2


def gemm_operand_bytes(ctx, t):
    """Bytes per GEMM operand element of each plan row: 4 under fp32, 2 under fp16 / bf16, 1 under FP8,
    NVFP4_OPERAND_BYTES where the FP8 precision runs runtime.fp8_recipe nvfp4."""
    low = NVFP4_OPERAND_BYTES if ctx.scenario.runtime.fp8_recipe == "nvfp4" else 1.0
    return np.where(t["precision"] == FP8, low, np.where(t["precision"] == 0, 4.0, 2.0))


def non_tn_fp8_gemm(gpu) -> bool:
    """True where Transformer Engine runs FP8 GEMMs in any layout (no transposed FP8 copies):
    NVIDIA compute capability 10.x-11.x or >= 13.0 (nvte_is_non_tn_fp8_gemm_supported)."""
    cc = gpu.compute_capability
    return gpu.vendor == "nvidia" and cc is not None and (10.0 <= cc < 12.0 or cc >= 13.0)


def fp8_cast_bytes(gpu, recipe: str) -> float:
    """HBM bytes of quantising one bf16 element to FP8 under `recipe` on `gpu`: FP8_CAST_BYTES
    (Hopper layout), less NON_TN_TRANSPOSE_SAVED where the GPU needs no transposed copy;
    MXFP8_CAST_BYTES for MXFP8, NVFP4_CAST_BYTES for NVFP4."""
    return _cast_bytes(gpu, recipe, FP8_CAST_BYTES.get(recipe))


def _cast_bytes(gpu, recipe: str, per_tensor_bytes) -> float:
    """Bytes per quantised element: MXFP8_CAST_BYTES / NVFP4_CAST_BYTES for the block-scaled recipes,
    else `per_tensor_bytes` (Hopper layout) less NON_TN_TRANSPOSE_SAVED where the GPU needs no
    transposed copy (non_tn_fp8_gemm)."""
    if recipe == "mxfp8":
        return MXFP8_CAST_BYTES
    if recipe == "nvfp4":
        return NVFP4_CAST_BYTES
    return per_tensor_bytes - (NON_TN_TRANSPOSE_SAVED if non_tn_fp8_gemm(gpu) else 0.0)


# Sequence parallelism with Megatron's Transformer Engine layers (TELayerNormColumnParallelLinear: the QKV
# projection and the dense MLP's FC1 take the norm output through TE's own all-gather). TE quantises the norm
# output on the rank's sequence shard and all-gathers it in FP8, row-wise only for per-tensor FP8
# (pytorch/module/layernorm_linear.py forward, `with_input_all_gather`; `supports_only_rowwise_all_gather` is
# True for Float8Quantizer and Float8CurrentScalingQuantizer); backward gathers the shard again and builds the
# column-wise (transposed) copy of the gathered tensor for the weight-gradient GEMM ("If data is in FP8, we
# compute FP8 transposes manually": `ln_out_total.update_usage(columnwise_usage=True)`), reading 1 and writing
# 1 byte per gathered element; no transposed copy where non-TN FP8 GEMMs run (non_tn_fp8_gemm). The same
# in TE v2.7, v2.9, v2.12 and v2.14 (the Megatron-Bridge 25.09 - 26.04 containers). The row-parallel layers'
# output gradients are quantised on the shard and gathered the same way (module/base.py
# grad_output_preprocess: "FP8 with all-gather"), which the 2x backward factor stands for.
SP_GATHERED_TRANSPOSE_BYTES = 1.0 + 1.0


def sp_gathered_cast_bytes(gpu, recipe: str, t):
    """Bytes per token-element of quantising an input that a Megatron TE column-parallel layer all-gathers
    under sequence parallelism (tp > 1). Per-tensor FP8 (recipe 'delayed' or 'current'): the cast on the
    1/tp sequence shard without its transposed copy, (fp8_cast_bytes - transposed copy) / tp, plus
    SP_GATHERED_TRANSPOSE_BYTES for the transposed copy of the gathered tensor (none on non-TN GPUs).
    MXFP8 / NVFP4: the whole cast (row-wise and column-wise copies) on the shard, fp8_cast_bytes / tp (the
    quantised norm output keeps its column-wise copy for the backward re-gather: layernorm_linear.py).
    Other rows: fp8_cast_bytes."""
    per = fp8_cast_bytes(gpu, recipe)
    if recipe in ("mxfp8", "nvfp4"):
        sharded = per / t["tp"]
    elif recipe in ("delayed", "current"):
        transposed = 0.0 if non_tn_fp8_gemm(gpu) else NON_TN_TRANSPOSE_SAVED
        sharded = (per - transposed) / t["tp"] + (SP_GATHERED_TRANSPOSE_BYTES if transposed else 0.0)
    else:
        return np.full(np.shape(t["tp"]), per)
    return np.where(te_sp_gathered(t), sharded, per)


def te_sp_gathered(t):
    """Rows whose column-parallel inputs Transformer Engine all-gathers itself: Megatron (TE layers) with
    sequence parallelism and tp > 1 (what sp_gathered_cast_bytes and comm.sp_quantised_gather_saving_s read)."""
    return t["sp"] & (t["tp"] > 1) & (t["framework"] == MEG)


# The same TE all-gathers move the quantised tensor, not bf16 (transformer_engine/pytorch/distributed.py
# gather_along_first_dim: _all_gather_fp8 for Float8Quantizer / Float8CurrentScalingQuantizer, _all_gather_mxfp8,
# and from v2.8 _all_gather_nvfp4; the shard is quantised first, the data and its scales are gathered; checked in
# v2.5, v2.7, v2.8, v2.9, v2.12 and v2.14). Bytes per gathered element, by recipe, for the three gathers of a
# Megatron TE layer pair under sequence parallelism:
#   * forward input of a column-parallel layer (layernorm_linear.py: the quantizer is set row-wise only
#     before gather_along_first_dim): one FP8 byte; MXFP8 1 + 1/32 (E8M0 scale per 32); NVFP4 0.5 + 1/16;
#   * output gradient of a row-parallel layer (module/base.py grad_output_preprocess, "FP8 with all-gather";
#     linear.py keeps both usages when a weight gradient is needed): per-tensor FP8 gathers the row-wise copy
#     only and transposes after the gather (_all_gather_fp8), the block-scaled recipes gather the row-wise and
#     the column-wise copy (_all_gather_mxfp8 / _all_gather_nvfp4: one all_gather_into_tensor per usage);
#   * backward re-gather of the column-parallel input for the weight gradient (layernorm_linear.py backward,
#     ln_out_needs_gather): row-wise for per-tensor FP8, column-wise only for MXFP8 / NVFP4.
# Reduce-scatters stay bf16 (GEMM outputs). A gather in bf16 moves 2 bytes per element.
SP_GATHER_BYTES = {  # recipe: (forward input, output gradient, backward input re-gather)
    "delayed": (1.0, 1.0, 1.0),
    "current": (1.0, 1.0, 1.0),
    "mxfp8": (MXFP8_OPERAND_BYTES, 2 * MXFP8_OPERAND_BYTES, MXFP8_OPERAND_BYTES),
    "nvfp4": (NVFP4_OPERAND_BYTES, 2 * NVFP4_OPERAND_BYTES, NVFP4_OPERAND_BYTES),
}
# Recipes whose quantiser of a gathered tensor takes a tensor-wide amax: TE sets with_amax_reduction on the
# tp group for the column-parallel input and the row-parallel output gradient under sequence parallelism
# (layernorm_linear.py / linear.py _customize_quantizers_float8_current_scaling and _customize_quantizers_nvfp4):
# one scalar all-reduce before each such cast. Delayed scaling takes its scale from the amax history, MXFP8 has
# only block-local scales.
SP_AMAX_REDUCTION_RECIPES = ("current", "nvfp4")


def fp8_cast_bytes_per_token(ctx, t, moe_layer: bool):
    """FP8 quantisation traffic per token and layer in forward: every linear layer's input (QKV and
    MLP inputs, h each; the attention output, heads x d_v / tp; the down-projection input, ffn / tp,
    per routed copy for experts) x fp8_cast_bytes of the runtime's recipe; the inputs a Megatron TE
    layer all-gathers under sequence parallelism (QKV of non-MLA attention, the dense FC1) x
    sp_gathered_cast_bytes. Backward quantises the output gradients the same way: counted by the 2x
    backward factor. Zero for other precisions."""
    m = ctx.model
    _, d_v = attention_dims(m)
    tp = t["tp"]
    ffn = m.ffn_hidden
    copies = 1
    if moe_layer and m.moe:
        ffn, copies = m.moe.expert_ffn_hidden, m.moe.top_k
    recipe = ctx.scenario.runtime.fp8_recipe
    per, gathered = fp8_cast_bytes(ctx.gpu, recipe), sp_gathered_cast_bytes(ctx.gpu, recipe, t)
    qkv_in = m.hidden * (per if m.mla else gathered)
    fc1_in = copies * m.hidden * (per if moe_layer and m.moe else gathered)
    down_in = copies * ffn / tp
    if moe_layer and m.moe:
        # the fused grouped MLP's fc1 kernel writes fc2's input already MXFP8-quantised, row- and column-wise
        # (grouped_gemm_glu d_tensor / d_col_tensor), and its backward dGLU kernel fc1's output gradient
        # (forward_grouped_mlp.py / backward_grouped_mlp.py at 4220403e8): no separate cast of the experts'
        # down-projection input (compute_moe.fused_grouped_mlp)
        from planner.estimate.compute_moe import fused_grouped_mlp
        down_in = np.where(fused_grouped_mlp(ctx, t), 0.0, down_in)
    rest = (m.heads * d_v / tp + down_in) * per
    return np.where(t["precision"] == FP8, qkv_in + fc1_in + rest, 0.0)


# Quantising a bf16 weight to FP8 reads 2 bytes and writes the FP8 copy plus, because Hopper's FP8
# tensor-core GEMMs take only the TN layout, a transposed FP8 copy for the backward GEMMs (TE docs,
# "FP8 primer": columnwise/transposed FP8 data): 1 + 1 per weight element.
FP8_WEIGHT_CAST_BYTES = 4.0


def fp8_weight_cast_bytes(gpu, recipe: str) -> float:
    """Bytes per weight element of its FP8 quantisation: FP8_WEIGHT_CAST_BYTES, without the
    transposed copy on GPUs that need none (non_tn_fp8_gemm); MXFP8_CAST_BYTES under MXFP8,
    NVFP4_CAST_BYTES under NVFP4."""
    return _cast_bytes(gpu, recipe, FP8_WEIGHT_CAST_BYTES)


def fp8_weight_cast_s(ctx, t, moe_layer: bool, hbm):
    """Seconds to quantise this GPU's weights of one layer to FP8 once (zero for other precisions):
    its local weight elements x fp8_weight_cast_bytes / HBM bandwidth. How often: weight_casts_per_mb."""
    local = 0.0
    for mm in layer_matmuls(ctx.model, moe_layer):
        if mm.name == "router":
            continue  # the router stays in higher precision
        if mm.name.startswith("expert"):  # experts are split over etp (expert tensor parallelism)
            local = local + ctx.model.moe.experts / t["ep"] * mm.k * mm.n / np.where(mm.tp, t["etp"], 1)
        else:
            local = local + mm.k * mm.n / np.where(mm.tp, t["tp"], 1)
    per_elem = fp8_weight_cast_bytes(ctx.gpu, ctx.scenario.runtime.fp8_recipe)
    return np.where(t["precision"] == FP8, per_elem * local / hbm, 0.0)


def weight_casts_per_mb(t):
    """FP8 weight quantisations per micro-batch forward. Megatron-Core's Transformer Engine layers
    pass `is_first_microbatch` to TE (megatron/core/extensions/transformer_engine.py, TELinear and
    TEGroupedLinear forward), which casts on the first micro-batch of a step and reuses the cached FP8
    weight and its transpose for the others (TE Linear docs, `is_first_microbatch`): 1 / ga. With FP8
    parameters (--fp8-param-gather) there is no cast at all, which this bounds. torchtitan (torchao
    Float8Linear) and DeepSpeed cast on every forward: 1."""
    return np.where(t["framework"] == MEG, 1.0 / np.maximum(t["ga"], 1), 1.0)

