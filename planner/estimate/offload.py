"""Optimizer step time on the GPU, or on the CPU with its PCIe/NVMe traffic when states are
offloaded (ZeRO-Offload, Ren et al. 2021, arXiv:2101.06840; ZeRO-Infinity, Rajbhandari et al. 2021).
"""

from __future__ import annotations

import numpy as np

from planner.estimate.compute_gemm import HBM_EFFICIENCY
from planner.estimate.optimizer_bytes import grad_zeroing_bytes, optimizer_hbm_bytes, updated_params

# DeepSpeed CPU-Adam throughput per node (parameters updated per second). ZeRO-Offload reports
# CPU-Adam about 6x faster than PyTorch's CPU Adam (Ren et al. 2021, Sec. 5.1); assumed here as
# 2e9 parameters/s for a dual-socket server: to be measured (issue 4).
CPU_ADAM_PARAMS_PER_S_PER_NODE = 2e9
# Sustained NVMe bandwidth per node, read or write (assumed: several Gen4 drives striped).
NVME_BYTES_PER_S_PER_NODE = 12e9


def host_link_bytes_s(ctx) -> float:
    """This GPU's host link, bytes/s one direction (node host_link_gb_s; unknown: PCIe Gen4 x16 at
    about 80% of its 31 GB/s, assumed)."""
    return (ctx.node.host_link_gb_s or 25.0) * 1e9


def optimizer_s(ctx, t, mem, fwd_mb_s=0.0, bwd_mb_s=0.0):
    """Seconds of the optimizer step, and the exposed host traffic when offloading.

    * On the GPU: memory-bound passes over this GPU's shard (and Megatron's whole local gradient
      buffer), per framework: optimizer_bytes.optimizer_hbm_bytes at HBM_EFFICIENCY of HBM peak; under
      Muon plus its Newton-Schulz GEMMs (muon.newton_schulz_s).
    * Optimizer offload (ZeRO-Offload): gradients go to the host as backward produces them
      (bf16, 2 bytes; every micro-batch with ZeRO >= 2, once with ZeRO-1) and hide behind the
      backward of that micro-batch; the CPU Adam step is exposed; the updated bf16 parameters come
      back before the next forward (exposed); Megatron still zeroes its GPU gradient buffer
      (optimizer_bytes.grad_zeroing_bytes). NVMe (ZeRO-Infinity) reads and writes the fp32
      states (12 bytes) each step, pipelined with the CPU step: the slower of the two shows.
    * Parameter offload (ZeRO-3): each micro-batch fetches the parameter shard for forward and
      again for backward; prefetching hides it behind that micro-batch's compute.
    """
    zero, ga = t["zero"], t["ga"]
    params = updated_params(t, mem)
    hbm = ctx.gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY
    gpu_s = optimizer_hbm_bytes(ctx, t, mem) / hbm
    if ctx.optimizer == "muon":  # plus its Newton-Schulz GEMMs (muon.newton_schulz_s), the slower stage's
        from planner.estimate.memory_terms_stage import stage_params
        from planner.estimate.muon import newton_schulz_s

        gpu_s = gpu_s + np.maximum(*(newton_schulz_s(ctx, t, stage_params(ctx, t, s), t["zero"] >= 1)
                                     for s in ("first", "last")))
    gpn = ctx.node.gpus_per_node
    cpu_s = params * gpn / CPU_ADAM_PARAMS_PER_S_PER_NODE
    nvme_s = params * gpn * 2 * 12.0 / NVME_BYTES_PER_S_PER_NODE
    host_link = host_link_bytes_s(ctx)
    grads_down = params * 2.0 / host_link
    grads_shown = np.where(zero >= 2, ga * np.maximum(0.0, grads_down - bwd_mb_s),
                           np.maximum(0.0, grads_down - bwd_mb_s))
    params_up = params * 2.0 / host_link
    off = t["offload"]
    step_cpu = np.where(off == 2, np.maximum(cpu_s, nvme_s), cpu_s) + grad_zeroing_bytes(ctx, t, mem) / hbm
    opt = np.where(off == 0, gpu_s, step_cpu)
    offload = np.where(off == 0, 0.0, grads_shown + params_up)
    par_fetch = mem["partition_params"] * 2.0 / host_link  # this GPU's bf16 shard
    par_shown = ga * (np.maximum(0.0, par_fetch - fwd_mb_s) + np.maximum(0.0, par_fetch - bwd_mb_s))
    offload = offload + np.where(t["offload_params"] > 0, par_shown, 0.0)
    return {"optimizer": opt, "offload": offload}


def activation_offload_s(ctx, t, mem, fwd_mb_s, bwd_mb_s):
    """Exposed seconds per step of Megatron's activation offloading (runtime.activation_offload_layers):
    each micro-batch copies the offloaded layers' saved activations to the host during the forward pass
    and back during the backward pass (Transformer Engine cpu_offload.py: copies on side streams,
    overlapped with the compute of the following layers), over this GPU's host link (node
    host_link_gb_s, one direction). What the micro-batch's forward (backward) compute cannot cover is
    exposed: ga x (max(0, bytes/link - forward) + max(0, bytes/link - backward))."""
    copy = mem.get("offloaded_activations", 0.0) / host_link_bytes_s(ctx)
    return t["ga"] * (np.maximum(0.0, copy - fwd_mb_s) + np.maximum(0.0, copy - bwd_mb_s))
