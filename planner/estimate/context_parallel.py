"""Context-parallel (ring) attention: what each stack exchanges, when it waits, and the extra
memory traffic of merging the per-step partial results (vectorised over a plan table).

With causal load balancing (each rank holds chunks i and 2cp-1-i of the sequence) both stacks split
one rank's attention into cp equal steps: the local causal block, then cp-1 half blocks against the
other ranks' K/V (Megatron-Core / Transformer Engine `AttnFuncWithCP`; torch
`torch/distributed/tensor/experimental/_attention.py`, `_templated_ring_attention`, note "Context
parallelism load balance algorithm for causal masking"). A step's compute is therefore 1/cp of the
layer's attention time, and communication hides behind it step by step, not in aggregate.

* `p2p` (Transformer Engine `cp_comm_type="p2p"`, Megatron-Core's default; torch's 'alltoall'
  rotater): step i computes with the K/V received during step i-1 while sending them on; forward
  cp-1 exchanges of one K/V chunk, each exposed where it outlasts a step; backward sends K/V and their
  gradients (2 chunks) per step.
* `allgather` (torch `_AllGatherRotater`, torchtitan's default `context_parallel_rotate_method`):
  one all-gather of every rank's K/V, issued before the local causal step and waited for at step 1,
  so only that first step (1/cp of the attention) hides it; the backward gathers K/V again
  (`kv_rotater`) and passes the K/V gradients around the ring in fp32 with the all-to-all rotater
  (`dkv_rotater`, `accum_dtype = float32`), one hop per step behind that step's backward, and waits
  for the last hop after the loop with nothing left to hide it.

Under torch.compile (torchtitan compiles every TransformerBlock, fullgraph=True, and the ring
attention is traced into that graph) the exchange does not overlap at all: a functional collective
traced by the compiler is followed at once by its wait (torch/distributed/_functional_collectives.py,
`_maybe_wrap_tensor`: "if _are_we_tracing(): return wait_tensor(self)", leaving the move to the
compiler), and Inductor moves waits only with `reorder_for_compute_comm_overlap`, off by default
(torch/_inductor/config.py; torchtitan 9dec370 sets no Inductor option but `_micro_pipeline_tp`).
Each exchange then runs between two attention steps with nothing beside it (`ring_serial`).

Which heads travel: Transformer Engine takes grouped-query K/V as they are (num_gqa_groups);
torchtitan's Llama repeats the K/V heads to the query heads before calling SDPA (`repeat_kv` in
torchtitan/models/llama/model.py at 9dec370, the 2024-12 benchmark commit), so its ring carries
`heads` K/V heads, n_heads / n_kv_heads times the bytes. MLA carries per-head K/V in both.
"""

from __future__ import annotations

import numpy as np

from planner.arch import attention_dims
from planner.estimate import table as T
from planner.estimate.table import MEG, TT

# torch's ring attention merges each step's output into an fp32 running output and log-sum-exp
# (_SDPAMerger with convert_to_f32=True) and accumulates the gradients in fp32 (grad_query/key/value
# zeros_like(..., dtype=float32)); torchtitan compiles each block with fullgraph=True, so the merge
# ops run as fused kernels. Bytes per local query element (tokens x local heads x head dim) and per
# non-local step, read + written:
#   forward: merge (read the fp32 output 4 and the bf16 step output 2, write 4): 10;
#   backward: dQ accumulated (read 4 + 2, write 4 = 10), dK and dV accumulated into the received
#     fp32 buffer and concatenated for the next hop (4 + 2 + 4, twice = 20): 30;
#   with per-step exchange (p2p / torch 'alltoall') each step also concatenates K and V for the next
#     hop (torch.cat of key, value: read 2 + write 2, twice = 8), forward and backward; the
#     all-gather rotater ignores those copies after the first, so the compiled graph drops them.
TORCH_RING_MERGE_FWD_BYTES = 10.0
TORCH_RING_MERGE_BWD_BYTES = 30.0
TORCH_RING_KV_CAT_BYTES = 8.0

# Transformer Engine's p2p ring (Megatron-Core's CP: `AttnFuncWithCP` in transformer_engine/pytorch/
# attention.py at v1.4, NeMo 24.03's; the same ops in v2.4's attention/dot_product_attention/
# context_parallel.py) keeps outputs and gradients in 16 bits and merges them with separate
# elementwise kernels. Bytes read + written per element of the local queries (E_q: tokens/cp x local
# heads x d_v) or of this rank's K and V (E_kv, kv_chunk_bytes / 2); at a non-local step the ranks
# split into those that use the whole local Q against the first half of the received K/V and those
# that use the second half of Q against all of it, and the ring waits for the slower kind:
#   forward (the whole-Q ranks, the slower; the last rank is one at every step): out correction
#     (flash_attn_fwd_out_correction: read out_per_step 2 and out 2, write out 2) over the whole Q at
#     every step: 6 E_q (the first step's is 8 in v1.4, a zero fill before it, and 4 in v2.4, an init
#     kernel: counted as 6); a non-local step also copies the half K/V it uses
#     (`kv[:, :, 0, ...].contiguous()`, 2 + 2 bytes over E_kv / 2): 2 E_kv; once, K and V
#     concatenated into the first send buffer (torch.cat): 4 E_kv;
#   backward (the second-half-Q ranks, the slower; rank 0 is one at every non-local step): per
#     non-local step Q, out and dout second halves made contiguous (3 x 4 bytes over E_q / 2) and dQ
#     added into its half (6 bytes over E_q / 2): 9 E_q; dK and dV concatenated (4 E_kv) and added into
#     the received dK/dV (6 E_kv): 10 E_kv; local step: dQ first half copied and second half added
#     (2 + 3): 5 E_q, dK/dV concatenated and half added, half copied (4 + 3 + 2): 9 E_kv; once, K/V
#     copied into the first send buffer (`p2p_comm_buffers[0][0].copy_(kv)`): 4 E_kv.
# The log-sum-exp corrections (fp64, one value per query row and head) move under 0.2 bytes per E_q
# and are left out.
TE_RING_FWD_Q_BYTES = 6.0
TE_RING_FWD_KV_BYTES = 2.0
TE_RING_BWD_Q_BYTES = 9.0
TE_RING_BWD_KV_BYTES = 10.0
TE_RING_BWD_LOCAL_Q_BYTES = 5.0
TE_RING_BWD_LOCAL_KV_BYTES = 9.0
TE_RING_KV_BUFFER_BYTES = 4.0


def cp_method(ctx, t):
    """True where the row's ring exchange is an all-gather (runtime.cp_comm, 'auto' = the
    framework's default: torchtitan 'allgather', Megatron-Core and DeepSpeed 'p2p'; Megatron-Core
    with sliding-window attention 'all_gather', the exchange Transformer Engine runs windows with
    (frameworks.rules.MEG_SWA_CP_P2P))."""
    method = ctx.scenario.runtime.cp_comm
    if method == "auto":
        return (t["framework"] == TT) | ((t["framework"] == MEG) & bool(ctx.model.sliding_window))
    return np.full(T.size(t), method == "allgather")


def _torch_ring(t):
    """True where the row runs torch's ring attention: torchtitan with cp > 1."""
    return (t["framework"] == TT) & (t["cp"] > 1)


def ring_serial(ctx, t):
    """True where each ring exchange is waited for as soon as it is issued: torch's ring attention
    (torchtitan, cp > 1) traced by torch.compile (runtime.compile), see the module docstring."""
    return _torch_ring(t) & bool(ctx.scenario.runtime.compile)


def kv_heads_exchanged(ctx, t):
    """K/V heads per GPU that the ring carries: query heads for torchtitan (repeat_kv before SDPA)
    and for MLA, the model's K/V heads otherwise; split over tp."""
    m = ctx.model
    kv = np.where((t["framework"] == TT) | bool(m.mla), m.heads, m.n_kv_heads)
    return np.maximum(kv / t["tp"], 1)


def kv_chunk_bytes(ctx, t):
    """Bytes of this rank's K and V (16-bit): tokens/cp x exchanged heads x (d_qk + d_v) x 2."""
    d_qk, d_v = attention_dims(ctx.model)
    tokens = t["mbs"] * ctx.seq_len / t["cp"]
    return 2.0 * tokens * kv_heads_exchanged(ctx, t) * (d_qk + d_v)


def ring_exposed_s(cp, hop_s, bwd_hop_s, gather_s, attn_fwd_s, attn_bwd_s, allgather, fwd_passes,
                   serial=False):
    """Exposed seconds per layer and micro-batch of the ring exchange.
    p2p: forward (cp-1) max(0, hop - F/cp) per forward pass, backward (cp-1) max(0, 2 hop - B/cp)
    (K/V and their gradients travel together).
    allgather: forward max(0, gather - F/cp) per forward pass; backward max(0, gather - B/cp) for the
    K/V gathered again, (cp-1) max(0, dkv - B/cp) for the fp32 gradient hops and one last dkv hop.
    `hop_s` moves one K/V chunk, `bwd_hop_s` one fp32 K/V-gradient chunk, `gather_s` all of them;
    F, B the layer's attention forward / backward seconds; `fwd_passes` 2 when the forward is
    recomputed (full activation checkpointing runs the ring again).
    `serial` (torch's ring under torch.compile, `ring_serial`): every exchange waited at issue, all
    exposed: p2p fwd_passes (cp-1) hop + (cp-1) hop + cp dkv (torch's backward loop sends K/V at
    cp-1 steps and dK/dV after each of its cp steps); allgather fwd_passes gather + gather + cp dkv."""
    steps = np.maximum(cp - 1, 0)
    f_step, b_step = attn_fwd_s / np.maximum(cp, 1), attn_bwd_s / np.maximum(cp, 1)
    p2p = fwd_passes * steps * np.maximum(0.0, hop_s - f_step) + steps * np.maximum(0.0, 2 * hop_s - b_step)
    ag = fwd_passes * np.maximum(0.0, gather_s - f_step) + np.maximum(0.0, gather_s - b_step) \
        + steps * np.maximum(0.0, bwd_hop_s - b_step) + bwd_hop_s
    cp_f = np.asarray(cp, dtype=float)
    p2p_serial = (fwd_passes + 1) * steps * hop_s + cp_f * bwd_hop_s
    ag_serial = (fwd_passes + 1) * gather_s + cp_f * bwd_hop_s
    exposed = np.where(serial, np.where(allgather, ag_serial, p2p_serial), np.where(allgather, ag, p2p))
    return np.where(cp > 1, exposed, 0.0)


def _te_p2p_ring(ctx, t):
    """True where the row runs Transformer Engine's p2p ring (AttnFuncWithCP): Megatron with cp > 1
    and a per-step exchange (cp_method false; the all-gather variant merges differently and is not
    counted)."""
    return (t["framework"] == MEG) & (t["cp"] > 1) & ~cp_method(ctx, t)


def te_ring_merge_bytes(cp, e_q, e_kv):
    """(forward, backward) bytes of HBM traffic per layer of Transformer Engine's ring merges and
    copies (TE_RING_* above): forward cp x 6 E_q + (cp-1) x 2 E_kv + 4 E_kv; backward
    (cp-1) x (9 E_q + 10 E_kv) + 5 E_q + 9 E_kv + 4 E_kv."""
    steps = cp - 1
    fwd = cp * TE_RING_FWD_Q_BYTES * e_q + (steps * TE_RING_FWD_KV_BYTES + TE_RING_KV_BUFFER_BYTES) * e_kv
    bwd = steps * (TE_RING_BWD_Q_BYTES * e_q + TE_RING_BWD_KV_BYTES * e_kv) + TE_RING_BWD_LOCAL_Q_BYTES * e_q \
        + (TE_RING_BWD_LOCAL_KV_BYTES + TE_RING_KV_BUFFER_BYTES) * e_kv
    return fwd, bwd


def merge_s(ctx, t, hbm_bytes_s):
    """(forward, backward) seconds per layer of merging the ring steps' partial results, on HBM:
    torchtitan: torch's fp32 merger and gradient accumulators over the cp-1 non-local steps
    (TORCH_RING_MERGE_*_BYTES per local query element and step, plus TORCH_RING_KV_CAT_BYTES with
    per-step exchange); Megatron's p2p ring: Transformer Engine's 16-bit corrections and copies
    (te_ring_merge_bytes). Zero without context parallelism."""
    m = ctx.model
    _, d_v = attention_dims(m)
    elems = t["mbs"] * ctx.seq_len / t["cp"] * m.heads / t["tp"] * d_v
    steps = np.where(_torch_ring(t), t["cp"] - 1, 0)
    cat = np.where(cp_method(ctx, t), 0.0, TORCH_RING_KV_CAT_BYTES)
    te_fwd, te_bwd = te_ring_merge_bytes(t["cp"], elems, kv_chunk_bytes(ctx, t) / 2.0)
    te = _te_p2p_ring(ctx, t)
    return ((steps * elems * (TORCH_RING_MERGE_FWD_BYTES + cat) + np.where(te, te_fwd, 0.0)) / hbm_bytes_s,
            (steps * elems * (TORCH_RING_MERGE_BWD_BYTES + cat) + np.where(te, te_bwd, 0.0)) / hbm_bytes_s)


def ring_attention_buffer_bytes(ctx, t):
    """Bytes torch's ring attention (torchtitan's context parallelism) holds beyond the stored
    activations while one layer's attention runs backward (torch/distributed/tensor/experimental/
    _attention.py at the 2024-12 benchmark's torch, `_templated_ring_attention_backward`), with
    C = kv_chunk_bytes (this rank's bf16 K and V) and Q = 2 x tokens/cp x local heads x d_qk:
      K/V of the other ranks: with the all-gather rotater (`_AllGatherRotater`, torch's default
        `rotate_method`) the gathered buffer of every rank's K/V, cp x C, kept for the whole loop;
        with the all-to-all rotater the chunk sent and the one received, 2C;
      gradients: fp32 accumulators (`accum_dtype = float32`) for grad_query (2Q) and grad_key /
        grad_value (2C), plus the fp32 dK/dV hop in flight on the all-to-all `dkv_rotater` (2C).
    The forward's fp32 merger output (2Q) is smaller than the backward's set and is not added.
    Megatron/Transformer Engine's ring (p2p) is not counted here (not modelled)."""
    d_qk, _ = attention_dims(ctx.model)
    chunk = kv_chunk_bytes(ctx, t)
    q = 2.0 * t["mbs"] * ctx.seq_len / t["cp"] * ctx.model.heads / t["tp"] * d_qk
    grads = 2.0 * q + 2.0 * chunk + 2.0 * chunk
    return ring_gathered_kv_bytes(ctx, t) + np.where(_torch_ring(t), grads, 0.0)


def ring_gathered_kv_bytes(ctx, t):
    """The largest single tensor of torch's ring attention: the all-gathered K/V (cp x kv_chunk_bytes)
    with the all-gather rotater, the fp32 dK/dV hop (2 x kv_chunk_bytes) otherwise; 0 without CP or
    outside torchtitan."""
    chunk = kv_chunk_bytes(ctx, t)
    return np.where(_torch_ring(t), np.where(cp_method(ctx, t), t["cp"] * chunk, 2.0 * chunk), 0.0)
