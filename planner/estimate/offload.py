"""Optimizer step time on the GPU, or on the CPU with its PCIe/NVMe traffic when states are
offloaded (ZeRO-Offload, Ren et al. 2021, arXiv:2101.06840; ZeRO-Infinity, Rajbhandari et al. 2021).
"""

from __future__ import annotations

import numpy as np

from planner.estimate.compute import HBM_EFFICIENCY

# Adam step bytes per parameter on the GPU: read fp32 master, m, v and the gradient (4 each), write
# master, m, v (4 each) and the bf16 weight (2): a memory-bound kernel.
ADAM_BYTES_PER_PARAM = 30.0
# DeepSpeed CPU-Adam throughput per node (parameters updated per second). ZeRO-Offload reports
# CPU-Adam about 6x faster than PyTorch's CPU Adam (Ren et al. 2021, Sec. 5.1); assumed here as
# 2e9 parameters/s for a dual-socket server: to be measured (issue 4).
CPU_ADAM_PARAMS_PER_S_PER_NODE = 2e9
# Sustained NVMe bandwidth per node, read or write (assumed: several Gen4 drives striped).
NVME_BYTES_PER_S_PER_NODE = 12e9


def optimizer_s(ctx, t, mem):
    """Seconds of the optimizer step, and of the host transfers when offloading (exposed)."""
    zero = t["zero"]
    shard = np.where(zero >= 1, t["dp"] * t["cp"], 1)
    params = mem["local_params"] / shard  # parameters this GPU updates
    gpu_s = params * ADAM_BYTES_PER_PARAM / (ctx.gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY)
    gpn = ctx.node.gpus_per_node
    cpu_s = params * gpn / CPU_ADAM_PARAMS_PER_S_PER_NODE
    host_link = (ctx.node.host_link_gb_s or 25.0) * 1e9
    pcie_s = params * (2.0 + 2.0) / host_link  # bf16 gradients down, bf16 parameters up
    nvme_s = params * gpn * 2 * 12.0 / NVME_BYTES_PER_S_PER_NODE  # states read and written
    off = t["offload"]
    opt = np.where(off == 0, gpu_s, cpu_s)
    offload = np.where(off == 0, 0.0, pcie_s) + np.where(off == 2, nvme_s, 0.0)
    # Parameter offload (ZeRO-3): parameters stream over PCIe in forward and backward each micro-batch.
    par_bytes = mem["local_params"] / (t["dp"] * t["cp"]) * 2.0  # this GPU's bf16 shard
    offload = offload + np.where(t["offload_params"] > 0, t["ga"] * 2 * par_bytes / host_link, 0.0)
    return {"optimizer": opt, "offload": offload}
