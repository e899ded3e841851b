"""Per-GPU and per-host memory of a plan, part by part, vectorised over a plan table.

The contract's five groups and their named parts (each part a small function with its formula and
source in memory_terms_*.py):
  weights      params, fp8_weight_copies, fp8_scaling_state, fsdp_unsharded_params
  gradients    grads, fp32_grad_copy, fsdp_grad_accumulation
  optimizer    master_weights, states                                      (memory_terms_states)
  activations  layers, moe_dispatch_combine, recompute_layer, cp_ring_buffers,
               embedding, logits_loss                                           (memory_terms_activations)
  other        cuda_context, library_workspaces, nccl_buffers, ds_buckets, zero3_live_params,
               fsdp_prefetch, sp_allgather_buffer, moe_permute_buffer,
               pp_recv_buffers                                               (memory_terms_runtime)
               optimizer_step_temp, fragmentation                                    (below)
               cuda_graph_buffers (runtime.cuda_graph_impl)                  (memory_terms_runtime)
Host RAM per node: offloaded_states, pinned_buffers (incl. offloaded activations), process_base; NVMe
per node: offloaded_states
(memory_terms_host).

The peak of a GPU: model states, context, NCCL and buckets stay for the whole run; activations and
gathered or in-flight communication buffers exist during forward and backward and are freed before
the optimizer step, whose temporaries (DeepSpeed's fp32 gradient partition) take their place. So
    total = states + fixed + max(forward/backward transients, step temporary) + fragmentation
and `other.optimizer_step_temp` is the part of the step temporary above the forward/backward peak;
fragmentation is the caching allocator's slack times the largest tensor of the peak's phase
(memory_terms_runtime.fragmentation_bytes, measured on an H200).
Every pipeline rank is evaluated (memory_terms_stage: its layers, dense or MoE, its ends and its
micro-batches in flight) and the most loaded one is kept: with leading dense layers (DeepSeek-V3) a
middle rank made only of MoE layers can exceed both ends.
"""

from __future__ import annotations

import numpy as np

from planner.estimate import table as T
from planner.estimate.memory_terms_activations import (activation_parts, flash_attention, largest_tensor_bytes,
                                                       layer_activation_bytes, offloaded_layers,
                                                       resident_layer_share)
from planner.estimate.memory_terms_host import host_parts
from planner.estimate.memory_terms_runtime import (DS_BUCKET_ELEMENTS, cuda_graph_bytes, fixed_runtime_parts,
                                                   fragmentation_bytes,
                                                   pipelining_recv_bytes, transient_runtime_parts)
from planner.estimate.memory_terms_stage import stage_layers, stage_params
from planner.estimate.memory_terms_states import model_state_parts

__all__ = ["GIB", "GROUPS", "HOST_PARTS", "DS_BUCKET_ELEMENTS", "memory", "stage_layers", "stage_params",
           "layer_activation_bytes", "model_state_bytes", "activation_bytes"]

GIB = 2**30
GROUPS = {
    "weights": ("params", "fp8_weight_copies", "fp8_scaling_state", "fsdp_unsharded_params"),
    "gradients": ("grads", "fp32_grad_copy", "fsdp_grad_accumulation"),
    "optimizer": ("master_weights", "states"),
    "activations": ("layers", "moe_dispatch_combine", "recompute_layer", "cp_ring_buffers", "embedding",
                    "logits_loss"),
    "other": ("cuda_context", "library_workspaces", "nccl_buffers", "ds_buckets", "zero3_live_params",
              "fsdp_prefetch", "sp_allgather_buffer", "moe_permute_buffer", "pp_recv_buffers", "optimizer_step_temp",
              "fragmentation", "cuda_graph_buffers"),
}
HOST_PARTS = ("host.offloaded_states", "host.pinned_buffers", "host.process_base")
def stage_memory(ctx, t, stage, per_layer: dict) -> dict:
    """Every part ('group.part' keys), the five group sums and the total of one pipeline stage, plus
    the figures other terms need (local_params, offloaded_opt, offloaded_params, partition_params,
    host_grad_buffer). The search's memory verdict repeats this sum from term tables
    (memory_tables.combine; tests/test_memory_tables.py holds the totals equal bit for bit): change
    both together."""
    sp = stage_params(ctx, t, stage)
    states = model_state_parts(ctx, t, sp, stage)
    transient = activation_parts(ctx, t, stage, per_layer, sp) | transient_runtime_parts(ctx, t, sp)
    parts = {k: v for k, v in states.items() if "." in k}
    parts |= fixed_runtime_parts(ctx, t, states["local_params"]) | transient
    parts["other.pp_recv_buffers"] = pipelining_recv_bytes(ctx, t, stage)
    forward_backward = sum(transient.values())
    step_extra = np.maximum(0.0, states["step_temp"] - forward_backward)
    parts["other.optimizer_step_temp"] = step_extra
    largest = np.where(step_extra > 0, states["step_temp"], largest_tensor_bytes(ctx, t, stage))
    parts["other.fragmentation"] = fragmentation_bytes(ctx, t, largest)
    # static for the whole run (graph pools): beside both the forward/backward and the step peaks
    parts["other.cuda_graph_buffers"] = cuda_graph_bytes(ctx, t, stage)
    out = {f"{g}.{p}": parts[f"{g}.{p}"] for g, names in GROUPS.items() for p in names}
    for g, names in GROUPS.items():
        out[g] = sum(parts[f"{g}.{p}"] for p in names)
    out["total"] = sum(out[g] for g in GROUPS)
    out["peak_phase"] = (step_extra > 0).astype(np.int64)  # 0: forward/backward, 1: optimizer step
    # activations offloaded to pinned host memory (runtime.activation_offload_layers)
    # (all N offloaded layers are on the host at the end of the forward pass, the one in flight too)
    share = resident_layer_share(ctx, t, sp["layers"])
    kept = parts["activations.layers"] + parts["activations.moe_dispatch_combine"]
    per_layer = kept / (share * np.maximum(sp["layers"], 1.0))
    out["offloaded_activations"] = per_layer * offloaded_layers(ctx, t, sp["layers"])
    for k in ("local_params", "offloaded_opt", "offloaded_params", "partition_params", "host_grad_buffer"):
        out[k] = states[k]
    return out


def _rows(d, rows):
    """The rows `rows` of every array in a (nested) dict of per-plan arrays; scalars stay."""
    return {k: _rows(v, rows) if isinstance(v, dict) else (v[rows] if np.ndim(v) else v) for k, v in d.items()}


def verdict_keys(ctx, t) -> tuple[str, ...]:
    """What the memory verdict reads of the most loaded stage: its total and the figures host_parts
    reads (found by running it on a recording dict: one row of zeros per key asked, table.read_keys)."""
    one = {k: np.asarray(v)[:1] for k, v in t.items()}
    return ("total", *sorted(T.read_keys(lambda parts: host_parts(ctx, one, parts), {}, fill=np.zeros(1))))


def most_loaded_stage(ctx, t, per_layer: dict, decided=None, all_ranks: bool = False, keep=None) -> dict:
    """stage_memory of the most loaded pipeline rank of each plan, with that rank in 'stage'.

    Rank 0 is evaluated for every plan, then, in ascending order, the ranks that can hold the peak
    (memory_ranks: the lowest and highest rank of each class of ranks that hold the same; with
    `all_ranks` or ctx.all_ranks, every rank) for the plans that have them. Ties keep the lower rank.
    Plans whose peak may lie between a class's lowest and highest rank (memory_ranks.level_beyond)
    are scanned again rank by rank. Only each rank's total is kept while scanning (and the `keep`
    keys, when given: then only those are returned); without `keep`, the full parts of a plan whose
    peak is rank r > 0 are then taken from one more evaluation of rank r over those plans (row-wise,
    so the same numbers).

    `decided(total, rows)` (optional) marks the plans whose verdict a total already settles (e.g. out
    of memory: the peak can only be larger); their higher ranks are skipped, so their parts are
    those of the most loaded rank evaluated, a lower bound, good only for that verdict."""
    from planner.estimate import memory_ranks

    n = len(t["pp"])
    first = stage_memory(ctx, t, "first", per_layer)
    best = {k: np.array(np.broadcast_to(first[k], (n,))) for k in (keep or first)}
    total, stage = best["total"].copy(), np.zeros(n, dtype=np.int64)
    open_ = np.ones(n, dtype=bool) if decided is None else ~decided(total, np.arange(n))
    every = all_ranks or getattr(ctx, "all_ranks", False)
    if n:
        ranks, ends = (memory_ranks.every_rank(t), None) if every else memory_ranks.candidate_ranks(ctx, t)
    else:
        ranks, ends = np.zeros((0, 1), dtype=np.int64), None
    seen = np.full(ranks.shape if ends is not None else (0, 0), np.nan)  # each candidate's total
    if ends is not None:
        seen[:, 0] = total
    for j in range(1, ranks.shape[1]):
        rows = np.nonzero((ranks[:, j] > 0) & open_)[0]
        full = stage_memory(ctx, _rows(t, rows), ranks[rows, j], _rows(per_layer, rows))
        cand = full["total"]
        if ends is not None:
            seen[rows, j] = cand
        pick = cand > total[rows]
        total[rows[pick]], stage[rows[pick]] = cand[pick], ranks[rows[pick], j]
        for k in keep or ():
            best[k][rows[pick]] = np.broadcast_to(full[k], cand.shape)[pick]
        if decided is not None:
            open_[rows[pick]] = ~decided(cand[pick], rows[pick])
    if ends is not None:
        again = np.nonzero(memory_ranks.level_beyond(seen, ends))[0]
        if len(again):
            sub = every_rank_stage(ctx, _rows(t, again), _rows(per_layer, again), keep=keep)
            total[again], stage[again] = sub["total"], sub["stage"]
            for k in keep or ():
                best[k][again] = sub[k]
    for r in T.distinct(stage[stage > 0]).tolist() if keep is None else ():
        rows = np.nonzero(stage == r)[0]
        cand = stage_memory(ctx, _rows(t, rows), np.full(len(rows), r), _rows(per_layer, rows))
        for k, v in cand.items():
            best[k][rows] = v
    best["total"], best["stage"] = total, stage
    return best


FLAT_PAIRS = 1 << 16  # (plan, rank) pairs evaluated together by every_rank_stage


def every_rank_stage(ctx, t, per_layer: dict, keep=None) -> dict:
    """most_loaded_stage over every rank (all_ranks), its `total`, `stage` and `keep` keys (every key
    without), with every (plan, rank) pair of up to FLAT_PAIRS plans' ranks evaluated in one
    stage_memory call instead of one call per rank (row-wise, so the same numbers; the first
    largest total per plan, ties to the lower rank as the rank scan keeps them). n >= 1 plans."""
    n = len(t["pp"])
    pp = np.asarray(t["pp"], dtype=np.int64)
    if n > 1 and int(pp.sum()) > FLAT_PAIRS:  # in halves: the pairs' table stays small
        half = n // 2
        a = every_rank_stage(ctx, _rows(t, slice(0, half)), _rows(per_layer, slice(0, half)), keep)
        b = every_rank_stage(ctx, _rows(t, slice(half, n)), _rows(per_layer, slice(half, n)), keep)
        return {k: np.concatenate([np.broadcast_to(a[k], (half,)), np.broadcast_to(b[k], (n - half,))]) for k in a}
    starts = np.concatenate([[0], np.cumsum(pp)[:-1]])
    plan = np.repeat(np.arange(n), pp)
    rank = np.arange(len(plan)) - np.repeat(starts, pp)
    full = stage_memory(ctx, _rows(t, plan), rank, _rows(per_layer, plan))
    total = np.broadcast_to(full["total"], plan.shape)
    top = np.maximum.reduceat(total, starts)
    first = np.where(total == np.repeat(top, pp), np.arange(len(plan)), len(plan))
    at = np.minimum.reduceat(first, starts)
    best = {k: np.broadcast_to(full[k], plan.shape)[at] for k in (keep or full)}
    best["total"], best["stage"] = total[at], rank[at]
    return best


def stage_memory_at(ctx, t, peak: np.ndarray, per_layer: dict) -> dict:
    """most_loaded_stage when each plan's most loaded rank `peak` is already known (found by an
    earlier scan of the same plans): rank 0 for every plan, then rank r over the plans whose peak it
    is, as most_loaded_stage does (row-wise, so the same numbers)."""
    n = len(t["pp"])
    best = {k: np.array(np.broadcast_to(v, (n,))) for k, v in stage_memory(ctx, t, "first", per_layer).items()}
    rows = np.nonzero(peak > 0)[0]
    if len(rows):
        cand = stage_memory(ctx, _rows(t, rows), peak[rows], _rows(per_layer, rows))
        for k, v in cand.items():
            best[k][rows] = v
    best["stage"] = np.asarray(peak, dtype=np.int64)
    return best


def memory(ctx, t, decided=None, verdict_only: bool = False, peak=None) -> dict:
    """Per-GPU memory of the most loaded pipeline rank by part and group, its total, and host RAM /
    NVMe per node (bytes; arrays over the plan table). 'stage' is that rank (0 = first).
    `decided`: see most_loaded_stage (for a verdict only). `verdict_only`: only what the memory
    verdict reads (total, host and NVMe per node; verdict_keys), not every part. `peak`: each plan's
    most loaded rank when known (stage_memory_at: no scan)."""
    per_layer = layer_activation_bytes(ctx, t, flash=flash_attention(ctx))
    if peak is not None:
        best = stage_memory_at(ctx, t, peak, per_layer)
    else:
        best = most_loaded_stage(ctx, t, per_layer, decided, keep=verdict_keys(ctx, t) if verdict_only else None)
    host = host_parts(ctx, t, best)
    best.update(host)
    best["host_per_node"] = sum(host[k] for k in HOST_PARTS)
    best["nvme_per_node"] = host["nvme.offloaded_states"]
    return best


def model_state_bytes(ctx, t, stage) -> dict:
    """Weights, gradients and optimizer (master weights included) of one stage's GPU, the optimizer-step
    temporary, what offload moves, and the GPU's parameters before sharding (local_params)."""
    states = model_state_parts(ctx, t, stage_params(ctx, t, stage), stage)
    out = {g: sum(v for k, v in states.items() if k.startswith(g + ".")) for g in ("weights", "gradients", "optimizer")}
    out.update({k: states[k] for k in ("step_temp", "offloaded_opt", "offloaded_params", "local_params")})
    return out


def activation_bytes(ctx, t, stage):
    """Activations of one stage's GPU (the sum of its activation parts)."""
    per_layer = layer_activation_bytes(ctx, t, flash=flash_attention(ctx))
    return sum(activation_parts(ctx, t, stage, per_layer, stage_params(ctx, t, stage)).values())
