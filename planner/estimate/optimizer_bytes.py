"""HBM bytes of one optimizer step on the GPU, per framework and state layout, as each framework's
step runs it (a memory-bound sequence of passes over the parameters this GPU updates). Vectorised over
a plan table. Read at Megatron-LM @d98e8a6, DeepSpeed @edaa722, torchtitan @b5bcd76.

Per parameter of the shard this GPU updates (its ZeRO / distributed-optimizer partition, else its local
parameters) unless said otherwise:

  * Megatron-LM, DDP buffer (zero 0-2, with or without the distributed optimizer):
      grad cast   16-bit main_grad -> fp32 `.grad` (read 2, write 4) when the gradient buffer is
                  16-bit: Float16OptimizerWithFloat16Params._copy_model_grads_to_main_grads and
                  DistributedOptimizer._copy_model_grads_to_main_grads (`.float()`, a no-op on fp32);
      Adam        fused over fp32 master, moments and fp32 grad (optimizer_kernel_bytes);
      copy        fp32 master -> 16-bit model weight (read 4, write 2): _copy_main_params_to_model_params
                  (optimizer.py multi_tensor_copy_this_to_that; distrib_optimizer.py copy into the param
                  buffer shard); with --fp8/--fp4-param-gather a quantising cast instead (quantize_param_shard);
                  with --use-precision-aware-optimizer (no scenario key: off by default; the exporter sets it
                  only with CPU offload, whose step runs on the host) the optimizer writes the weight itself
                  and this pass returns early, not modelled;
      zeroing     DistributedDataParallel.zero_grad_buffer at the start of every iteration
                  (training.py train_step -> _ParamAndGradBuffer.reset: grad_data.zero_()) over the WHOLE
                  local buffer, not only the shard, at the buffer's dtype.
  * Megatron-FSDP (zero 3): grad cast (its main grads take the compute dtype by default), Adam,
    copy (param_and_grad_buffer.copy_main_weights_to_model_weights); no zeroing pass
    (MegatronFSDP.zero_grad_buffer dereferences the gradient shards).
  * DeepSpeed ZeRO (on-GPU optimizer): cast of the 16-bit gradient partition to fp32 (stage_1_and_2.py
    step `flat_grad_partition.to(fp32)`; stage3.py _prepare_fp32_grad_for_sub_group, which first flattens
    the averaged gradients: one more 16-bit copy), Adam, copy (`bit16_partitions[..].data.copy_(fp32_partition)`;
    stage3 _reassign_or_swap_out_partitioned_parameters). With CPU offload the step runs on the host
    (offload.optimizer_s).
  * torchtitan (FSDP2): fp32 sharded parameters updated in place by the fused AdamW (optimizer
    `implementation = "fused"`), gradients fp32 shards: no copy, no zeroing (zero_grad frees the gradients).
  * Muon (Megatron only, estimate/muon.py): its matrices take muon.MUON_PASS_BYTES of unfused passes instead
    of the fused kernel (muon_updated_params of them on this GPU); the Adam fallback keeps the fused kernel; the
    Newton-Schulz GEMMs are timed apart (muon.newton_schulz_s).

Not counted: gradient clipping's passes (a norm read of the gradients and, where the code scales
unconditionally, an in-place scale: DeepSpeed unscale_and_clip_grads `mul_`, torchtitan through
torch.nn.utils.clip_grads_with_norm_, Megatron through Transformer Engine's multi_tensor_scale_tensor; older
Megatron scales only when the norm exceeds --clip-grad). benchmarks/optimizer_bytes_results.md measures
what they would move on the calibration runs (a what-if, not adopted).
"""

from __future__ import annotations

import numpy as np

from planner.estimate.memory_terms_states import COMPUTE_BYTES, STATE_BYTES, grad_buffer_bytes, quantised_param_bytes
from planner.estimate.table import DS, FP8, FP16, FP32, MEG, TT

# fp32 master weight read and written (4 + 4) and the fp32 gradient read (4) by the fused optimizer kernel
# (TE / apex FusedAdam in Megatron-Core; torch fused AdamW in torchtitan; DeepSpeed FusedAdam); the moments
# are read and written at memory_terms_states.STATE_BYTES.
OPT_MASTER_AND_GRAD_BYTES = 12.0
# fp32 master -> 16-bit weight (read 4, write 2), and 16-bit gradient -> fp32 (read 2, write 4).
MASTER_TO_16BIT_BYTES = 6.0
GRAD_TO_FP32_BYTES = 6.0
# DeepSpeed ZeRO-3 flattens the averaged 16-bit gradients before the cast (stage3.py
# _prepare_fp32_grad_for_sub_group: self.flatten(...)): read 2, write 2.
DS_Z3_FLATTEN_BYTES = 4.0
FP32_BYTES = 4.0


def optimizer_kernel_bytes(name: str) -> float:
    """Bytes per parameter of the fused optimizer kernel: fp32 master read + write and fp32 grad read
    (OPT_MASTER_AND_GRAD_BYTES) + its states read and written (2 x STATE_BYTES): 28 for Adam(W)."""
    return OPT_MASTER_AND_GRAD_BYTES + 2.0 * STATE_BYTES[name]


def param_write_bytes(ctx, t):
    """Bytes per shard parameter of writing the updated model weight from the fp32 master: 0 where the
    master is the parameter (fp32 plans, torchtitan); MASTER_TO_16BIT_BYTES for 16-bit weights; with
    Megatron's --fp8-param-gather (runtime.fp8_param_gather, FP8 plans) a quantising cast of the master shard
    (distrib_optimizer._copy_main_params_to_model_params -> fp8_utils.quantize_param_shard): read 4 + write
    memory_terms_states.quantised_param_bytes, plus one more read of the master for the amax where the scale
    comes from the tensor itself (fp8_recipe current, nvfp4's per-tensor global amax); delayed scaling takes
    the amax during the cast, MXFP8's block scales are found in the same pass. GEMM weights only are FP8;
    counted on all of the shard (the norms and embeddings are a small share)."""
    rt = ctx.scenario.runtime
    copy = np.where((t["precision"] == FP32) | (t["framework"] == TT), 0.0, MASTER_TO_16BIT_BYTES)
    if rt.fp8_param_gather:
        amax = FP32_BYTES if rt.fp8_recipe in ("current", "nvfp4") else 0.0
        quant = FP32_BYTES + quantised_param_bytes(ctx) + amax
        copy = np.where((t["framework"] == MEG) & (t["precision"] == FP8), quant, copy)
    return copy


def grad_elem_bytes(ctx, t):
    """Bytes per element of the gradients the step reads: Megatron fp16 keeps fp16 gradients
    (memory_terms_states); torchtitan's gradients take its fp32 parameters' dtype; otherwise the gradient
    buffer dtype (memory_terms_states.grad_buffer_bytes)."""
    fw = t["framework"]
    gb = grad_buffer_bytes(ctx, t)
    gb = np.where((fw == MEG) & (t["precision"] == FP16), COMPUTE_BYTES[t["precision"]], gb)
    return np.where(fw == TT, FP32_BYTES, gb)


def updated_params(t, mem):
    """Parameters this GPU's optimizer updates: its ZeRO / distributed-optimizer partition (experts sharded
    over their own group), else all its local parameters."""
    return np.where(t["zero"] >= 1, mem["partition_params"], mem["local_params"])


def optimizer_hbm_bytes(ctx, t, mem):
    """HBM bytes of one on-GPU optimizer step of each row (module docstring):
    shard x (grad cast + optimizer kernel + weight write [+ DeepSpeed ZeRO-3 flatten])
    + local x gradient bytes for Megatron's zero_grad_buffer (zero < 3)."""
    fw, zero = t["framework"], t["zero"]
    shard = updated_params(t, mem)
    g = grad_elem_bytes(ctx, t)
    cast = np.where(g < FP32_BYTES, GRAD_TO_FP32_BYTES, 0.0)
    flatten = np.where((fw == DS) & (zero >= 3), DS_Z3_FLATTEN_BYTES, 0.0)
    per_shard = cast + optimizer_kernel_bytes(ctx.optimizer) + param_write_bytes(ctx, t) + flatten
    if ctx.optimizer == "muon":  # Adam's fused kernel for the fallback, Muon's passes for its matrices
        from planner.estimate.muon import MUON_PASS_BYTES

        per_shard = cast + optimizer_kernel_bytes("adam") + param_write_bytes(ctx, t) + flatten
        return shard * per_shard + muon_updated_params(ctx, t) * (MUON_PASS_BYTES - optimizer_kernel_bytes("adam")) \
            + grad_zeroing_bytes(ctx, t, mem)
    return shard * per_shard + grad_zeroing_bytes(ctx, t, mem)


def muon_updated_params(ctx, t):
    """Muon parameters this GPU updates, the larger of the first and last pipeline stage's (muon.state_bytes:
    its tensor/expert-parallel share, over the shard groups with the layer-wise distributed optimizer)."""
    from planner.estimate.memory_terms_stage import stage_params
    from planner.estimate.muon import state_bytes

    return np.maximum(*(state_bytes(ctx, t, stage_params(ctx, t, s), s, t["zero"] >= 1)[1] for s in ("first", "last")))


def grad_zeroing_bytes(ctx, t, mem):
    """Megatron's DistributedDataParallel.zero_grad_buffer: the whole local gradient buffer (not only the
    optimizer's shard) zeroed every iteration at its dtype; none for Megatron-FSDP, DeepSpeed, torchtitan.
    It runs on the GPU with the optimizer offloaded too (the buffer stays on the GPU)."""
    return np.where((t["framework"] == MEG) & (t["zero"] < 3), mem["local_params"] * grad_elem_bytes(ctx, t), 0.0)
