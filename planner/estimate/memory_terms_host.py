"""Host RAM and NVMe per node: what CPU/NVMe offload moves there, the pinned staging buffers, and a base
for each training process. Vectorised over a plan table; every GPU of a node is counted at the most
loaded stage's figures.

What offload moves (memory_terms_states.model_state_parts): optimizer offload moves master weights,
optimizer states and an fp32 gradient partition (torchtitan: its sharded parameters and gradients
too), and DeepSpeed keeps a 16-bit gradient partition buffer in host memory; parameter offload
(ZeRO-3) moves the 16-bit parameter partition. What stays on the GPU: the
16-bit weights (unless parameters are offloaded), ZeRO-1's full gradients, Megatron's main_grad
buffer, activations, buckets and gathered parameters. CPU offload keeps the moved states in pinned
host memory (DeepSpeed `pin_memory: true` default); NVMe offload keeps them on the node's drives and
stages them through pinned swap buffers. Only ZeRO-3 swaps optimizer states to NVMe: DeepSpeed's
ZeRO-1/2 optimizer treats any `offload_optimizer.device` other than none as CPU offload
(`stage_1_and_2.py`: `self.cpu_offload = True`), so there the states stay in host memory.
"""

from __future__ import annotations

import numpy as np

from planner.estimate.memory_terms_states import COMPUTE_BYTES, DS_SUB_GROUP_SIZE

GIB = 2**30
# Host RAM of one training process outside offloaded state: Python, the framework, CUDA/NCCL host
# allocations and data-loader workers. A CUDA-initialised PyTorch process alone showed ~2 GB resident
# (pytorch/pytorch#113326); 8 GiB per GPU is assumed to cover loaders and framework buffers.
HOST_PROCESS_BYTES_PER_GPU = 8 * GIB
# DeepSpeed NVMe offload defaults (ecosystem.md 1.4): offload_optimizer.buffer_count = 4 pinned swap
# buffers, each the size of the largest optimizer sub-group in fp32 (PartitionedOptimizerSwapper);
# offload_param: buffer_count 5 x buffer_size 1e8 elements, and up to max_in_cpu = 1e9 parameters
# kept in host memory.
DS_OPT_SWAP_BUFFERS = 4
DS_PARAM_BUFFER_COUNT = 5
DS_PARAM_BUFFER_ELEMENTS = 1e8
DS_PARAM_MAX_IN_CPU = 1e9


def host_parts(ctx, t, states: dict) -> dict:
    """Per-node bytes: host.offloaded_states, host.pinned_buffers (NVMe swap staging, offloaded activations),
    host.process_base, and nvme.offloaded_states."""
    gpn = ctx.node.gpus_per_node
    opt, par, partition = states["offloaded_opt"], states["offloaded_params"], states["partition_params"]
    off_par = t["offload_params"]
    off = np.where((t["offload"] == 2) & (t["zero"] < 3), 1, t["offload"])
    host = np.where(off == 1, opt, 0.0) + np.where(off_par == 1, par, 0.0) + states["host_grad_buffer"]
    nvme = np.where(off == 2, opt, 0.0) + np.where(off_par == 2, par, 0.0)
    opt_swap = np.where(off == 2, DS_OPT_SWAP_BUFFERS * np.minimum(DS_SUB_GROUP_SIZE, partition) * 4.0, 0.0)
    par_swap = np.where(off_par == 2, (DS_PARAM_BUFFER_COUNT * DS_PARAM_BUFFER_ELEMENTS
                                       + np.minimum(DS_PARAM_MAX_IN_CPU, partition))
                        * COMPUTE_BYTES[t["precision"]], 0.0)
    # Megatron activation offloading: Transformer Engine copies them into pinned host tensors
    # (cpu_offload.py SynchronizedGroupOffloadHandler.offload, pin_memory=True)
    acts = states.get("offloaded_activations", 0.0)
    return {"host.offloaded_states": gpn * host, "host.pinned_buffers": gpn * (opt_swap + par_swap + acts),
            "host.process_base": np.full(len(host), gpn * HOST_PROCESS_BYTES_PER_GPU),
            "nvme.offloaded_states": gpn * nvme}
