"""Muon (training.optimizer muon) as Megatron-Core runs it: which parameters take Muon and which the Adam
fallback, what each keeps, and the Newton-Schulz work of one step. Read at Megatron-LM d7288711 (the
submodule of Megatron-Bridge v0.4.0; the same code at v0.4.2's 2edffadb) and NVIDIA-NeMo/Emerging-Optimizers
(orthogonalized_optimizers/*.py), which Megatron-Core calls.

* Split (megatron/core/optimizer/muon.py get_megatron_muon_optimizer, lines 283-302): every 2-D parameter that
  is not the embedding or the output layer (`is_embedding_or_output_parameter`) takes Muon: attention and MLP
  projections, shared and routed experts (Transformer Engine's grouped linear keeps one 2-D weight per local
  expert), the router and MTP's eh_proj. Everything else (norms, biases, the embedding and output layer) takes
  the scalar optimizer, Adam by default (--muon-scalar-optimizer adam; Megatron-Bridge
  distributed_muon_with_cosine_annealing muon_scalar_optimizer "adam"); the router's expert bias is a buffer
  (router.py register_buffer), in no optimizer.
* States: Muon one fp32 momentum buffer (muon_init_state_fn, line 246: zeros_like of the fp32 main parameter
  that Float16OptimizerWithFloat16Params keeps), Adam its two fp32 moments; both beside the fp32 master copy.
* Sharding: the LayerWiseDistributedOptimizer (layer_wise_optimizer.py; training.py passes
  layer_wise_distributed_optimizer='dist' in config.optimizer) is `--optimizer dist_muon` at d7288711 / 2edffadb
  (Megatron-Bridge's dist_muon; there `--optimizer muon` asserts no --use-distributed-optimizer and no
  --overlap-grad-reduce) and `--optimizer muon --use-distributed-optimizer` at d98e8a6, the export's version
  (validate_args turns the distributed optimizer off and the layer-wise one on; dist_muon deprecated). It deals
  WHOLE parameters, sorted by size, ping-pong over the dp x cp group (experts over the expert data-parallel
  group), each rank keeping master and states of its own only (shard_params, lines 105-157): our zero 1.
  Gradients stay in the full DDP buffer and are all-reduced (no reduce-scatter: the distributed optimizer is
  off), and after the step every rank all-gathers the updated 16-bit parameters (allgather_params, lines
  195-240), in the step itself unless --overlap-param-gather (async_allgather), which the Kimi-K2 recipes turn
  off ("Muon needs this to be False", recipes/kimi/kimi_k2.py): comm.dp_comm. Without it (zero 0) every rank
  updates all its parameters.
* Step: per Muon parameter the unfused passes of OrthogonalizedOptimizer.step (decoupled weight decay
  p.add_(p), momentum lerp_, Nesterov lerp, normalisation, bf16 casts, the two scale multiplications of
  TensorParallelMuon's scaled_orthogonalize_fn, p.add_) over fp32 tensors: MUON_PASS_BYTES; then
  NS_STEPS quintic Newton-Schulz iterations on the m x n matrix (m <= n, transposed when taller than wide,
  muon_utils.newton_schulz) in bf16 (fp32_matmul_prec "medium": the input is cast to bf16): A = X X^T,
  B = bA + cA A, X = aX + B X, i.e. GEMMs (m, n, m), (m, m, m) and (m, m, n) per iteration. Under tensor
  parallelism the recipes' --muon-tp-mode blockwise orthogonalises each rank's own shard (muon.py line 158:
  no partition_dim, no tensor-parallel collective); a parameter that is not split runs whole on every rank.
  A fused QKV weight (linear_qkv, not MLA's projections) is orthogonalised as its Q, K and V parts apart
  (muon.py lines 163-186, --muon-split-qkv on by default, arguments.py; qkv_split_shapes), a parameter all the
  same for the layer-wise dealing.
"""

from __future__ import annotations

import numpy as np

from planner.arch import layer_matmuls
from planner.estimate.compute_gemm import DEFAULT_MAMF, gemm_s

# --muon-num-ns-steps default 5 (megatron/training/arguments.py); Megatron-Bridge muon_num_ns_steps=5.
NS_STEPS = 5
# --muon-split-qkv (default on, megatron/training/arguments.py; the export passes no --muon-no-split-qkv):
# a fused QKV weight is orthogonalised as its Q, K and V parts apart (muon.py TensorParallelMuon.orthogonalize).
SPLIT_QKV = True
# HBM bytes per Muon parameter of OrthogonalizedOptimizer.step's elementwise passes, all fp32 (4-byte) tensors:
# weight decay p.add_(p, -wd lr): read 4, write 4 = 8; exp_avg.lerp_(grad): read 8, write 4 = 12; Nesterov
# grad.lerp(exp_avg): read 8, write 4 = 12; F.normalize (norm pass read 4, divide read 4 write 4) = 12; cast to
# bf16 read 4 write 2 = 6 and back read 2 write 4 = 6; `orth * scale * extra_scale`: two passes of read 4 write 4
# = 16; p.add_(update): read 8, write 4 = 12. Total 84.
MUON_PASS_BYTES = 84.0


def _matrices(m, moe_layer: bool, tp, etp):
    """[(rows, cols, copies, expert, name)] of one layer's Muon matrices as this GPU holds them: column-parallel
    weights split their output over tp, row-parallel ones their input, unsplit ones whole; a routed expert over
    etp, `copies` its local count per ep rank being applied by the caller."""
    from planner.estimate.memory_terms_states import ROW_PARALLEL

    out = []
    for x in layer_matmuls(m, moe_layer):
        expert = x.name.startswith("expert_")
        split = etp if expert else tp
        if not x.tp:
            rows, cols = x.n, x.k
        elif x.name in ROW_PARALLEL:
            rows, cols = x.n, x.k / split
        else:
            rows, cols = x.n / split, x.k
        out.append((rows, cols, m.moe.experts if expert else 1, expert, x.name))
    return out


def muon_params(ctx, sp):
    """(non-expert, expert) parameters of the stage replica `sp` (memory_terms_stage.stage_params, before
    tensor/expert sharding) that take Muon: its layers' matmul weights (router included) and MTP's eh_proj."""
    m = ctx.model
    dense = expert = 0.0
    for moe_layer, count in ((False, sp["dense"]), (True, sp["moe"])):
        for x in layer_matmuls(m, moe_layer):
            n = x.k * x.n
            if x.name.startswith("expert_"):
                expert = expert + count * m.moe.experts * n
            else:
                dense = dense + count * n
    return dense + sp["mtp"] * 2 * m.hidden * m.hidden, expert


def largest_dense_param(ctx, t, sp, stage):
    """Elements of the largest non-expert parameter of the stage as this GPU holds it (after tensor parallelism):
    the vocab-parallel embedding or output layer where the stage has one (Adam's), else its largest layer matrix
    (Muon's); returned as (elements, is_muon)."""
    from planner.estimate.memory_terms_stage import pipeline_rank

    m = ctx.model
    mats = [0.0]
    for moe_layer, count in ((False, sp["dense"]), (True, sp["moe"])):
        for rows, cols, _, expert, _ in _matrices(m, moe_layer, t["tp"], t["etp"]):
            if not expert:
                mats.append(np.where(count > 0, rows * cols, 0.0))
    matrix = np.maximum.reduce(np.broadcast_arrays(*mats))
    rank = pipeline_rank(t, stage)
    ends = (rank == 0) | (rank == t["pp"] - 1) | (sp["mtp"] > 0)
    table = np.where(ends, m.vocab * m.hidden / t["tp"], 0.0)
    return np.maximum(matrix, table), matrix >= table


def layerwise_shares(ctx, t, sp, stage, sharded):
    """(parameters, Muon parameters) whose master copy and states this GPU keeps: its tensor/expert-parallel share,
    and under the layer-wise distributed optimizer (`sharded`) the share of the rank that holds the stage's largest
    non-expert parameter (shard_params deals whole parameters sorted by size ping-pong, so that rank takes it whole
    plus about 1/d of the rest: (total - largest) / d + largest); experts over their own group, 1/d (their matrices
    are many and alike)."""
    from planner.estimate.memory_terms_states import shard_groups

    s, se = shard_groups(t)
    s, se = np.where(sharded, s, 1), np.where(sharded, se, 1)
    mu_dense, mu_expert = muon_params(ctx, sp)
    dense, mu_d = sp["non_expert"] / t["tp"], mu_dense / t["tp"]
    big, big_muon = largest_dense_param(ctx, t, sp, stage)
    big = np.where(sharded & (s > 1), np.minimum(big, dense), 0.0)
    dense_held = (dense - big) / s + big
    mu_held = (mu_d - np.where(big_muon, big, 0.0)) / s + np.where(big_muon, big, 0.0)
    expert = sp["expert"] / (t["ep"] * t["etp"]) / se
    mu_e = mu_expert / (t["ep"] * t["etp"]) / se
    return dense_held + expert, mu_held + mu_e


def state_bytes(ctx, t, sp, stage, sharded):
    """(bytes of the optimizer states this GPU keeps under Muon, its Muon parameters): memory_terms_states.STATE_BYTES
    of muon (one fp32 momentum) per Muon parameter, of adam (two fp32 moments) per other one, of layerwise_shares."""
    from planner.estimate.memory_terms_states import STATE_BYTES

    held, muon = layerwise_shares(ctx, t, sp, stage, sharded)
    return STATE_BYTES["muon"] * muon + STATE_BYTES["adam"] * (held - muon), muon


def newton_schulz_s(ctx, t, sp, sharded):
    """Seconds of the Newton-Schulz iterations of one step on this GPU: NS_STEPS x the three bf16 GEMMs of
    each Muon matrix it updates (gemm_s at the GPU's bf16 MAMF rate and the row's tensor clock). Under the
    layer-wise distributed optimizer (`sharded`) a rank orthogonalises its share of the matrices (the sum over
    the shard group, the step then waits for the slowest: at least one whole matrix of the largest kind)."""
    from planner.estimate.memory_terms_states import shard_groups

    gpu = ctx.gpu
    clock = t["tensor_clock"] if "tensor_clock" in t else 1.0
    flops = (gpu.peak_tflops("bf16") or 0.0) * 1e12 * (gpu.matmul_efficiency.bf16 or DEFAULT_MAMF) * clock
    hbm = gpu.hbm_tb_s * 1e12
    s, se = shard_groups(t)
    tp, etp, ep = t["tp"], t["etp"], t["ep"]
    dense_s = expert_s = largest = 0.0
    m = ctx.model

    def iterations(rows, cols):  # NS_STEPS x the three GEMMs on the (m <= n) matrix
        a, b = np.minimum(rows, cols), np.maximum(rows, cols)
        return NS_STEPS * (gemm_s(a, b, a, flops, hbm) + gemm_s(a, a, a, flops, hbm) + gemm_s(a, a, b, flops, hbm))

    for moe_layer, count in ((False, sp["dense"]), (True, sp["moe"])):
        for rows, cols, copies, expert, name in _matrices(m, moe_layer, tp, etp):
            if name == "qkv_proj" and SPLIT_QKV:  # linear_qkv: Q, K and V apart
                kv = rows * m.n_kv_heads / (m.heads + 2 * m.n_kv_heads)
                one = iterations(rows - 2 * kv, cols) + 2 * iterations(kv, cols)
            else:
                one = iterations(rows, cols)
            present = count > 0
            if expert:
                expert_s = expert_s + count * copies / ep * one
            else:
                dense_s = dense_s + count * one
            largest = np.maximum(largest, np.where(present, one, 0.0))
    if np.any(sp["mtp"] > 0):
        h = m.hidden
        one = iterations(h, 2 * h)
        dense_s = dense_s + sp["mtp"] * one
        largest = np.maximum(largest, np.where(sp["mtp"] > 0, one, 0.0))
    spread = dense_s / np.where(sharded, s, 1) + expert_s / np.where(sharded, se, 1)
    return np.where(sharded, np.maximum(spread, largest), dense_s + expert_s)
