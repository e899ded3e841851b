"""The memory verdict of every plan of a table from term tables, not a stage evaluation per plan-rank.

memory.stage_memory evaluates ~100 numpy passes per plan and candidate rank. Its total is a sum of
pieces that each read few plan columns:
  states  (state_terms): weights, gradients and optimizer (model_state_parts), DeepSpeed's buckets,
          ZeRO-3's gathered parameters, FSDP's prefetched units, the optimizer-step temporary, the
          CUDA context, workspaces and NCCL buffers (fixed_bytes), and the host RAM / NVMe per node;
          they read the parallel degrees, ZeRO, offload, precision and framework, the accumulation
          only as ga > 1 (_STATE_GA), not mbs or recompute, and the rank only through its class
          (memory_ranks: evaluated at each class's lowest rank);
  transients (activation_terms): the activation parts, the sequence-parallel and MoE permute
          buffers, torchtitan's receive buffers and the largest tensor; they read tp, cp, etp, mbs,
          vpp, sp, recompute, precision and framework, not dp, ZeRO or offload, and ga only as far as
          the micro-batches in flight tell it apart (in_flight_ga; torchtitan's plans keep theirs).
Each is evaluated once per distinct value of the columns it reads (a "cell") and candidate rank
(memory_ranks), the columns found by running it on a recording row (_read). A plan's cell comes
from arithmetic, not sorting (memory_cells.Plans): its layout run (the table is layout-major) and a
mixed-radix code of its categorical columns, each mapped through a small table. Per plan-rank only gathers and the
additions of stage_memory remain (combine: the same operations in the same order on the same
numbers, so every total is bit for bit stage_memory's and every verdict and peak rank equal; where a
plan has no step temporary nor DeepSpeed bucket, combine_stepless drops the additions of zeros).
With several global batches, plans that differ only in a ga the memory does not tell apart share
their cells, so no grouping of the plans is needed first.

When the caller does not need each plan's peak rank (fits_memory `peaks`), most verdicts come from
two bounds: a plan whose terms at their largest over its candidate slots fit (each term's keys summed
per slot, the largest sum over the cell's slots; the two terms' sums added, widened by a margin of
rounding: _bound_sums) fits; one out of memory at rank 0 (its sums narrowed by the margin) is out of
memory; of the plans between, those without a step temporary whose host RAM fits are judged by
their exact largest total over their slots (_slot_bounds), and only the rest is scanned rank by
rank. Otherwise, as in the reference, a plan out of memory at one rank is not evaluated at its
higher ranks. Where the node's host memory is unknown, plans that offload are out of memory and not
evaluated (_offload_unknown). Term evaluations and plan chunks are shared by the caller's threads
(in_chunks).

Plans whose peak may lie between a class's lowest and highest rank (memory_ranks.level_beyond) are
left to the reference (memory.memory). The reference is used for the whole table under --exhaustive
(every rank), with Megatron's activation offloading (host memory then reads the activations), or
when the host figures read anything else than the states (verdict_keys).
"""

from __future__ import annotations

import numpy as np

from planner.estimate import table as T
from planner.estimate.memory_cells import CATEGORY_COLUMNS, LAYOUT_COLUMNS, Plans
from planner.estimate.memory_terms_activations import (activation_parts, flash_attention, largest_tensor_bytes,
                                                       largest_tensor_candidates, layer_activation_bytes)
from planner.estimate.memory_terms_host import host_parts
from planner.estimate.memory_terms_runtime import (CUBLAS_WORKSPACE_BYTES, CUDA_CONTEXT_BYTES, WORKSPACE_STREAMS,
                                                   ds_bucket_bytes, fragmentation_bytes, fsdp_prefetch_bytes,
                                                   nccl_buffer_bytes, pipelining_recv_bytes, transient_comm_bytes,
                                                   zero3_live_bytes)
from planner.estimate.memory_terms_stage import stage_params
from planner.estimate.memory_terms_states import model_state_parts

STATE_KEYS = ("offloaded_opt", "offloaded_params", "partition_params", "host_grad_buffer", "offloaded_activations")
COMBINED = ("states", "step_temp", "zero3_live", "fsdp_prefetch", "frag_step", "lead", "activations",
            "transient", "gather", "permute", "recv", "frag_tensor")  # what combine reads
_STATE_GA = 2  # model states read ga only as ga > 1: every ga >= 2 is evaluated as 2 (tests check it)


def _group_sum(parts: dict, group: str):
    """stage_memory's sum of one group's parts, in its order."""
    from planner.estimate.memory import GROUPS

    return sum(parts[f"{group}.{p}"] for p in GROUPS[group])


def state_terms(ctx, t: dict, stage, fixed=None, fsdp=None, sp=None) -> dict:
    """The pieces of stage_memory's total that come from the model states (see the module docstring),
    with host RAM and NVMe per node (memory.memory without offloaded activations). `fixed`, `fsdp`:
    fixed_bytes and fsdp_prefetch_bytes of the rows (they do not read the rank), `sp` their
    stage_params, when computed elsewhere."""
    from planner.estimate.memory import HOST_PARTS

    sp = stage_params(ctx, t, stage) if sp is None else sp
    states = model_state_parts(ctx, t, sp, stage)
    parts = {k: v for k, v in states.items() if "." in k}
    out = {"states": sum(_group_sum(parts, g) for g in ("weights", "gradients", "optimizer")),
           "step_temp": states["step_temp"],
           "ds_buckets": ds_bucket_bytes(ctx, t, states["local_params"]),
           "zero3_live": zero3_live_bytes(ctx, t, sp),
           "fsdp_prefetch": fsdp_prefetch_bytes(ctx, t) if fsdp is None else fsdp,
           "frag_step": fragmentation_bytes(ctx, t, states["step_temp"])}
    host = host_parts(ctx, t, {k: states[k] for k in STATE_KEYS[:-1]} | {"offloaded_activations": 0.0})
    out["host_per_node"] = sum(host[k] for k in HOST_PARTS)
    out["nvme_per_node"] = host["nvme.offloaded_states"]
    # stage_memory's `other` group begins with these, in this order (combine, combine_stepless)
    fixed = fixed_bytes(ctx, t) if fixed is None else fixed
    out["lead"] = fixed + out["ds_buckets"] + out["zero3_live"] + out["fsdp_prefetch"]
    out["lead_stepless"] = fixed + out["zero3_live"] + out["fsdp_prefetch"]
    return out


def layer_bytes(ctx, t: dict) -> dict:
    """activation_terms' stored bytes per layer (the rank does not enter: once per cell)."""
    return layer_activation_bytes(ctx, t, flash=flash_attention(ctx))


def rank_free_bytes(ctx, t: dict) -> dict:
    """activation_terms' inputs that do not read the rank (once per cell): torch's ring-attention
    buffers (context_parallel.ring_attention_buffer_bytes) and the candidates of the largest tensor
    (largest_tensor_candidates)."""
    from planner.estimate.context_parallel import ring_attention_buffer_bytes

    return {"ring": ring_attention_buffer_bytes(ctx, t), "largest": largest_tensor_candidates(ctx, t)}


def activation_terms(ctx, t: dict, stage, per_layer: dict | None = None, sp: dict | None = None,
                     rank_free: dict | None = None) -> dict:
    """The pieces of stage_memory's total that come from one micro-batch's transients: the
    activations group, the activation parts summed in their own order (forward/backward), the
    sequence-parallel and MoE permute buffers, the receive buffers, and fragmentation over the
    largest tensor. `per_layer`: layer_bytes of the rows, `sp` their stage_params, `rank_free` their
    rank_free_bytes, when computed elsewhere."""
    per_layer = layer_bytes(ctx, t) if per_layer is None else per_layer
    sp = stage_params(ctx, t, stage) if sp is None else sp
    rank_free = rank_free_bytes(ctx, t) if rank_free is None else rank_free
    acts = activation_parts(ctx, t, stage, per_layer, sp, rank_free["ring"])
    gather, permute = transient_comm_bytes(ctx, t, sp)
    n = T.size(t)
    return {"activations": _group_sum(acts, "activations"), "transient": sum(acts.values()),
            "gather": gather + np.zeros(n), "permute": permute + np.zeros(n),
            "recv": pipelining_recv_bytes(ctx, t, stage),
            "frag_tensor": fragmentation_bytes(ctx, t, largest_tensor_bytes(ctx, t, stage, rank_free["largest"]))}


def fixed_bytes(ctx, t: dict) -> np.ndarray:
    """CUDA context, library workspaces and NCCL buffers, summed as stage_memory's `other` group
    begins (the layout only: held with the model states, whose cells determine it)."""
    n = T.size(t)
    return (0 + np.full(n, CUDA_CONTEXT_BYTES) + np.full(n, CUBLAS_WORKSPACE_BYTES * WORKSPACE_STREAMS)
            + nccl_buffer_bytes(ctx, t))


def combine(s: dict, a: dict) -> np.ndarray:
    """stage_memory's total from the two term groups, the same operations in the same order:
    forward/backward = the activation parts, ZeRO-3 live, FSDP prefetch, SP gather, MoE permute;
    step extra = max(0, step temporary - forward/backward); fragmentation over the step temporary
    where it leads, else over the largest tensor; other = fixed, buckets, ZeRO-3 live, FSDP (the
    states' `lead`, summed in that order per state cell), gather, permute, receive buffers, step extra,
    fragmentation; total = states + activations + other."""
    fb = a["transient"] + s["zero3_live"] + s["fsdp_prefetch"] + a["gather"] + a["permute"]
    step_extra = np.maximum(0.0, s["step_temp"] - fb)
    frag = np.where(step_extra > 0, s["frag_step"], a["frag_tensor"])
    other = s["lead"] + a["gather"] + a["permute"] + a["recv"] + step_extra + frag
    return s["states"] + a["activations"] + other


COMBINED_STEPLESS = ("states", "lead_stepless", "activations", "gather", "permute", "recv", "frag_tensor")


def combine_stepless(s: dict, a: dict) -> np.ndarray:
    """combine where the step temporary and DeepSpeed's buckets are 0: the step extra is then 0 and
    fragmentation is over the largest tensor, and adding those zeros to the non-negative sums changes
    no bit, so the same total with fewer operations."""
    other = s["lead_stepless"] + a["gather"] + a["permute"] + a["recv"] + a["frag_tensor"]
    return s["states"] + a["activations"] + other


def _read(ctx, fn, sample: dict) -> tuple[str, ...]:
    """The plan columns fn(ctx, table, stage) reads, on a recording one-row copy of `sample`."""
    seen = T.read_keys(lambda r: fn(ctx, r, np.zeros(1, dtype=np.int64)), sample)
    return tuple(k for k in (*LAYOUT_COLUMNS, *CATEGORY_COLUMNS) if k in seen)


def usable(ctx, t: dict) -> bool:
    """Whether the term tables give the verdict (module docstring), else the reference does."""
    from planner.estimate.memory import verdict_keys

    runtime = ctx.scenario.runtime
    return (not ctx.all_ranks and not runtime.activation_offload_layers and runtime.cuda_graph_impl == "none"
            and T.size(t) > 0 and set(verdict_keys(ctx, t)) <= {"total", *STATE_KEYS})


def _state_ga(t) -> np.ndarray:
    """ga as the model states tell it apart: only ga > 1 (_STATE_GA)."""
    return np.minimum(t["ga"], _STATE_GA)


def in_flight_ga(t) -> np.ndarray:
    """ga as the stored micro-batches in flight tell it apart: they are min(chunks, ga x vpp) / vpp on
    every rank (memory_terms_stage.in_flight_microbatches), at most rank 0's count, so every ga at or
    above cap = max(2, ceil(rank 0's count with ga unbounded)) gives the same memory except where ga
    enters otherwise: the `ga > 1` tests (kept by the 2) and torchtitan's receive buffers, one per
    micro-batch (pipelining_recv_bytes: those plans keep their ga, _titan)."""
    from planner.estimate.memory_terms_stage import in_flight_microbatches

    pp, vpp, ga = T.wide(t["pp"]), T.wide(t["vpp"]), T.wide(t["ga"])
    unbounded = in_flight_microbatches({"pp": pp, "vpp": vpp, "ga": np.full_like(ga, 2**40)}, "first")
    return np.minimum(ga, np.maximum(np.ceil(unbounded).astype(np.int64), 2))


def _titan(digits: dict) -> np.ndarray:
    """The category codes of torchtitan (its receive buffers read ga: in_flight_ga)."""
    return digits["framework"] == T.TT


# (term, coarse layout columns, the category codes that keep their own columns, whether the term
# reads the rank only as its class does, rank-free inputs it takes computed once per cell)
TERMS = ((state_terms, {"ga": _state_ga}, None, True, {"fixed": fixed_bytes, "fsdp": fsdp_prefetch_bytes}),
         (activation_terms, {"ga": in_flight_ga}, _titan, False,
          {"per_layer": layer_bytes, "rank_free": rank_free_bytes}))


def _stage_params_by_slot(ctx, pp: np.ndarray, vpp: np.ndarray, ranks: np.ndarray) -> dict:
    """stage_params of (pp, vpp) pairs at each of their candidate slots (`ranks`: pairs x slots,
    memory_ranks.candidate_table), flattened (pair p's slot j at row p x slots + j): stage_params reads
    only pp, vpp and the rank (tests check it), so it is evaluated once per pair and slot, not per cell."""
    w = ranks.shape[1]
    grid = {"pp": np.repeat(pp, w), "vpp": np.repeat(vpp, w)}
    return stage_params(ctx, grid, np.maximum(ranks, 0).reshape(-1))  # rank 0 past a pair's slots


def _slot_layout(pair: np.ndarray, ranks: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, ...]:
    """The candidate slots of cells whose (pp, vpp) pairs are `pair`, from each pair's ranks and class
    ends (memory_ranks.candidate_table): per cell (offset of its first slot, its slot count; its slots
    are stored together: slot j at offset + j), per slot (cell, j, rank, the j of its class's lowest
    rank: its own, or for the highest rank of a class of several ranks the class's lowest)."""
    has = ranks >= 0
    assert not (has[:, 1:] & ~has[:, :-1]).any()  # candidate slots are a prefix
    w = ranks.shape[1]
    count = np.take(has.sum(axis=1), pair)
    offset = np.cumsum(count) - count
    c = np.repeat(np.arange(len(pair)), count)
    j = np.arange(len(c)) - np.take(offset, c)
    flat = np.take(pair, c) * w + j
    low = np.tile(np.arange(w), (len(ranks), 1))
    p, k = np.nonzero(ends[..., 1] >= 0)
    low[p, ends[p, k, 1]] = ends[p, k, 0]
    return offset, count, c, j, np.take(ranks.reshape(-1), flat), np.take(low.reshape(-1), flat)


def _extremes(at: list[np.ndarray], v: np.ndarray, least: bool = True) -> tuple:
    """(each cell's largest value of v over its slots, its least or None; at: Terms._slot_columns), as
    np.maximum.reduceat and np.minimum.reduceat but by one gather per slot column (faster), shared by
    the two."""
    top = np.take(v, at[0])
    low = top.copy() if least else None
    for a in at[1:]:
        col = np.take(v, a)
        np.maximum(top, col, out=top)
        if least:
            np.minimum(low, col, out=low)
    return top, low


def _constant(v: np.ndarray) -> bool:
    """Whether every value of v equals its first (v[0] == min == max), its first entries compared
    first: a key that varies is then told without a pass over the whole column."""
    return bool(len(v) and v[0] == v[-1] and (v[:4096] == v[0]).all() and v[0] == v.min() == v.max())


class Terms:
    """Every term of TERMS evaluated once per cell (and candidate rank slot) of a plan table, in
    chunks of `chunk_rows` run by in_chunks(chunk, n)."""

    def __init__(self, ctx, plans: Plans, in_chunks, chunk_rows: int):
        from planner.estimate import memory_ranks

        self.plans = plans
        heads = plans.take(plans.heads)
        self.ranks, self.ends = memory_ranks.candidate_ranks(ctx, heads)  # per run
        self.width = w = self.ranks.shape[1]
        self.slots = (self.ranks >= 0).sum(axis=1)  # per run
        sample = plans.take(np.arange(1))
        self.cell, self.table, self.offset, self.count, self.constant = [], [], [], [], []
        plans.present()  # computed once, before the threads
        plans.head_columns()
        found = [None] * len(TERMS)

        def cells(lo: int) -> None:  # each term's cells, the terms shared by in_chunks' threads
            fn, coarse, exact = TERMS[lo // chunk_rows][:3]
            cols = tuple(set(_read(ctx, fn, sample)) | {"pp", "vpp"})
            found[lo // chunk_rows] = plans.cells(cols, coarse, None if exact is None else exact(plans.decoded()))

        in_chunks(cells, len(TERMS) * chunk_rows)
        for (fn, coarse, exact, by_class, per_cell), (cell, tt) in zip(TERMS, found):
            pair, pair_pp, pair_vpp, ranks, ends = memory_ranks.candidate_table(ctx, tt)
            assert ranks.shape[1] <= w
            offset, count, c, j, stage, low = _slot_layout(pair, ranks, ends)
            table: dict[str, np.ndarray] = {}
            source = None
            if by_class:  # evaluated at each class's lowest rank, copied to its highest
                own = low == j
                source = np.cumsum(own) - 1
                source = np.take(source, np.take(offset, c) + low)  # the evaluated entry of every slot
                if own.all():
                    source = None
                c, j, stage = c[own], j[own], stage[own]
            del low
            sp_grid = _stage_params_by_slot(ctx, pair_pp, pair_vpp, ranks)
            sp_at = pair * ranks.shape[1]  # each cell's slot 0 in sp_grid

            def chunk(lo: int, fn=fn, tt=tt, c=c, j=j, stage=stage, table=table, per_cell=per_cell, sp_grid=sp_grid,
                      sp_at=sp_at) -> None:
                at = slice(lo, lo + chunk_rows)
                cc = c[at]
                pick = np.take(sp_at, cc) + j[at]
                extra = {"sp": {k: np.take(v, pick) if np.ndim(v) else v for k, v in sp_grid.items()}}
                if per_cell:  # rank-free inputs once per cell of the chunk (c ascends), then per slot
                    from planner.estimate.memory import _rows

                    cells = T.take(tt, slice(cc[0], cc[-1] + 1))
                    extra.update({k: _rows({k: f(ctx, cells)}, cc - cc[0])[k] for k, f in per_cell.items()})
                vals = fn(ctx, {k: np.take(v, cc) for k, v in tt.items()}, stage[at], **extra)  # tt: int64 (cells)
                for k, v in vals.items():
                    table[k][at] = v

            if len(c):  # the first chunk here: it makes the arrays the other chunks fill
                first = fn(ctx, T.take(tt, c[:1]), stage[:1])
                table.update({k: np.empty(len(c)) for k in first})
                in_chunks(chunk, len(c))
            # a key equal in every cell is read as that number (the same sums, without a gather)
            same = {k: v[0] for k, v in table.items() if _constant(v)}
            if source is not None:
                for k, v in table.items():
                    table[k] = np.broadcast_to(v[:1], source.shape) if k in same else np.take(v, source)
            self.cell.append(cell)
            self.offset.append(offset)
            self.count.append(count)
            self.table.append(table)
            self.constant.append(same)
        s, cell_s = self.table[0], self.offset[0]
        if len(s.get("step_temp", ())):  # per state cell: no step temporary, no buckets at any slot
            busy = (s["step_temp"] != 0) | (s["ds_buckets"] != 0)
            self.stepless = np.logical_and.reduceat(~busy, cell_s)
        else:
            self.stepless = None
        self.slot = [{k: same.get(k, v) for k, v in table.items()} for table, same in zip(self.table, self.constant)]
        self.host_upper = self._per_cell(0, ("host_per_node", "nvme_per_node"), self._slot_max(0))
        self.sums = self._slot_sums()

    def _slot_max(self, term: int):
        """how(values, offsets) for _per_cell: each cell's largest value over its slots (_extremes)."""
        at = self._slot_columns(term)
        return lambda v, _: _extremes(at, v, least=False)[0]

    def _slot_columns(self, term: int) -> list[np.ndarray]:
        """Per slot j, the position of each cell's slot j of the term (its last for cells with fewer)."""
        o, count = self.offset[term], self.count[term]
        return [o + np.minimum(j, count - 1) for j in range(int(count.max()) if len(count) else 0)]

    def _per_cell(self, term: int, keys, how) -> dict:
        """Per cell of a term, each key of `keys` it has as how(slot values, offsets); constants stay
        numbers."""
        table, o, same = self.table[term], self.offset[term], self.constant[term]
        return {k: same[k] if k in same else how(table[k], o) for k in keys if k in table}

    def _slot_sums(self) -> dict | None:
        """Per cell of each term, from the sum at each slot of the term's keys that combine_stepless
        adds (in any order: a plan's stepless total at a slot is within a relative SUM_MARGIN of the
        sum of its two terms' sums there): "upper", the largest over the cell's slots, "least", the
        smallest, and "first", slot 0's (rank 0). None where a value is negative (the rounding bound
        holds for sums of non-negative numbers)."""
        out = {"upper": [], "least": [], "first": []}
        for term, table in enumerate(self.slot):
            n = int(self.count[term].sum())
            parts = [np.broadcast_to(v, (n,)) for k, v in table.items() if k in COMBINED_STEPLESS]
            if any(len(p) and p.min() < 0 for p in parts):
                return None
            total = np.zeros(n)
            for part in parts:  # in place: no (keys x slots) temporary
                total += part
            top, low = _extremes(self._slot_columns(term), total)
            out["upper"].append(top)
            out["least"].append(low)
            out["first"].append(np.take(total, self.offset[term]))
        return out

    def bases(self, at) -> list[np.ndarray]:
        """Where the plans `at` (a slice or indices) read each term: the position of its cell's first
        slot (slot j: + j)."""
        return [np.take(o, c[at]) for c, o in zip(self.cell, self.offset)]

    def totals(self, bases: list[np.ndarray], j: int, stepless: np.ndarray | None = None) -> np.ndarray:
        """stage_memory's total at candidate slot j of plans whose term positions are `bases`
        (Terms.bases; the plans have slot j); `stepless` (optional): the plans whose model states have
        no step temporary nor DeepSpeed buckets at any rank (Terms.stepless), summed by combine_stepless."""
        at = [b + j if j else b for b in bases]
        return self._split(self.slot, at, stepless)

    @staticmethod
    def _split(tables: list[dict], at: list[np.ndarray], stepless: np.ndarray | None) -> np.ndarray:
        """combine over the rows `at` of `tables`, combine_stepless where `stepless`."""
        n = len(at[0])
        if stepless is not None and stepless.all():
            return _sum(tables, at, COMBINED_STEPLESS, combine_stepless, n)
        if stepless is None or not stepless.any():
            return _sum(tables, at, COMBINED, combine, n)
        easy = np.flatnonzero(stepless)
        hard = np.flatnonzero(~stepless)
        out = np.empty(n)
        out[easy] = _sum(tables, [a[easy] for a in at], COMBINED_STEPLESS, combine_stepless, len(easy))
        out[hard] = _sum(tables, [a[hard] for a in at], COMBINED, combine, len(hard))
        return out

    def at(self, term: int, key: str, base: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """A ranked term's `key` at each plan's slot."""
        same = self.constant[term]
        if key in same:  # a number (its table may be a broadcast view, which np.take would copy whole)
            return np.full(len(base), same[key])
        return np.take(self.table[term][key], base + slot)


def _sum(tables: list[dict], at: list[np.ndarray], keys, how, n: int) -> np.ndarray:
    """how(...) over each term's `keys` at rows `at` of its table (numbers stay numbers)."""
    picked = [{k: v if np.ndim(v) == 0 else np.take(v, a) for k, v in tb.items() if k in keys}
              for a, tb in zip(at, tables)]
    return np.broadcast_to(how(*picked), (n,))


class _Columns(dict):
    """The columns of plans `at`, each taken when first read."""

    def __init__(self, plans: Plans, at):
        super().__init__()
        self.plans, self.at = plans, at

    def __missing__(self, k):
        v = self[k] = self.plans.column(k, self.at)
        return v


def fits_memory(ctx, t: dict, rows, in_chunks, chunk_rows: int, peaks: bool = True, layout=None):
    """(fits, peak) of the plans `rows` of t (None: all) as the reference gives them (solver
    _fits_memory: fits = memory verdict fits or tight; peak = the most loaded rank, ties to the lower,
    where it fits), from the term tables (Terms), in chunks of `chunk_rows` plans run by
    in_chunks(chunk, n). Plans whose peak may lie inside a class of ranks (level_beyond) take the
    reference's every-rank scan (memory.memory).

    Without `peaks` (peak None: the caller finds the peak of the plans it times), a plan is first
    judged between two bounds: it fits if it does with each term at its largest over the plan's
    candidate slots (and the largest host RAM / NVMe per node), and it does not if its rank 0 alone is
    out of memory, each sum taken in another order and widened by a margin of rounding (_bound_sums:
    two gathers and an addition per plan); only the plans in between are scanned.
    `layout` (optional): the layout of every row of t, which marks the layout runs (Plans)."""
    from planner.estimate import bands, memory

    held = _offload_unknown(ctx, t, rows)
    if held is not None:  # only the plans without offload can fit: the others are not evaluated
        n = T.size(t) if rows is None else len(rows)
        fits = np.zeros(n, dtype=bool)
        peak = np.zeros(n, dtype=np.int16) if peaks else None
        # the plans held, as rows of t (Plans gathers the columns it reads: no copy of the table)
        keep = np.flatnonzero(held) if rows is None else rows[held]
        fits[held], got = fits_memory(ctx, t, keep, in_chunks, chunk_rows, peaks, layout)
        if peaks:
            peak[held] = got
        return fits, peak
    plans = Plans(t, rows, layout)
    if not plans.n:
        return np.zeros(0, dtype=bool), (np.zeros(0, dtype=np.int16) if peaks else None)
    terms = Terms(ctx, plans, in_chunks, chunk_rows)
    n = plans.n
    fits = np.zeros(n, dtype=bool)
    peak = np.zeros(n, dtype=np.int16) if peaks else None
    over_by_cat = 1 + bands.band_arrays("memory", ctx.model.moe is not None, plans.decoded())[1]
    capacity = ctx.gpu.memory_gib * memory.GIB
    sums = None if peaks else _bound_sums(ctx, plans, terms)

    def chunk(lo: int) -> None:
        hi = min(lo + chunk_rows, n)
        if peaks or sums is None:
            _scan(ctx, plans, terms, np.arange(lo, hi), over_by_cat, capacity, fits, peak)
            return
        over = np.take(over_by_cat, plans.cat[lo:hi])
        sure, out = (_bounded(sums[k], [c[lo:hi] for c in terms.cell], over) > capacity for k in ("upper", "first"))
        sure = ~sure  # as memory_verdict: optimistic total above the GPU: out of memory
        if terms.stepless is not None:  # rank 0's sum is not a lower bound with a step temporary
            out &= np.take(terms.stepless, terms.cell[0][lo:hi])
        fits[lo:hi] = sure
        rest = lo + np.flatnonzero(~(sure | out))
        if len(rest):  # out of memory by the crossed lower bounds (states or transients at their peak)
            rest = rest[~_crossed_out(plans, terms, sums, rest, over_by_cat, capacity)]
        if len(rest):  # the plans' own largest sum over their slots, where the upper sum is finite
            rest = _slot_bounds(plans, terms, sums, rest, over_by_cat, capacity, fits)
        if len(rest):
            _scan(ctx, plans, terms, rest, over_by_cat, capacity, fits, None)

    in_chunks(chunk, n)
    return fits, peak


SUM_MARGIN = 1e-12  # relative: far above the rounding of a dozen additions of non-negative numbers (2^-53 each)


def _bound_sums(ctx, plans: Plans, terms: Terms) -> dict | None:
    """The per-cell sums (Terms.sums) of the two bounds: "upper", each term at its largest over the
    cell's slots (inf for state cells with a step temporary or buckets, for which combine is not
    monotone, or whose largest host RAM / NVMe does not fit: _host_ok), widened by SUM_MARGIN; "first",
    rank 0's, narrowed by it; "states_led" and "transients_led", lower bounds too (narrowed): the
    states at their largest over the cell's slots with the transients at their least, and the
    reverse (at the slot where one term peaks the other is at least its least, so the plan's total
    there is at least that sum, and its peak too). None where a sum is not a bound (Terms.sums)."""
    if terms.sums is None:
        return None
    (s_up, a_up), (s_least, a_least) = terms.sums["upper"], terms.sums["least"]
    ok = _host_ok(ctx, plans, terms)
    ok = ok[0] if ok[1] == "cell" else np.ones(len(terms.offset[0]), dtype=bool)  # "cat": no offload here
    if terms.stepless is not None:
        ok = ok & terms.stepless
    return {"upper": ([np.where(ok, s_up, np.inf), a_up], 1 + SUM_MARGIN),
            "first": (terms.sums["first"], 1 - SUM_MARGIN),
            "states_led": ([s_up, a_least], 1 - SUM_MARGIN), "transients_led": ([s_least, a_up], 1 - SUM_MARGIN)}


def _bounded(sums: tuple, cells: list[np.ndarray], over: np.ndarray) -> np.ndarray:
    """The optimistic total of plans whose term cells are `cells` as a bound (_bound_sums): (the sum of
    their terms' sums x the margin factor) / over. The plan's own total (combine_stepless: the same
    numbers added in another order) differs from the plain sum by less than the margin, so the upper
    bound's quotient is at least every candidate rank's, and rank 0's at most its own (division and
    multiplication by a positive number are monotone under rounding)."""
    (s, a), factor = sums
    out = np.take(s, cells[0])
    out += np.take(a, cells[1])
    out *= factor
    out /= over
    return out


def _crossed_out(plans: Plans, terms: Terms, sums: dict, at: np.ndarray, over_by_cat, capacity: float) -> np.ndarray:
    """Which plans `at` are out of memory by the lower bounds "states_led" or "transients_led"
    (_bound_sums), as by rank 0's: where their state cell has no step temporary nor buckets (the
    total is then the sum of the two terms' sums, within the margin)."""
    cells = [np.take(c, at) for c in terms.cell]
    over = np.take(over_by_cat, np.take(plans.cat, at))
    out = _bounded(sums["states_led"], cells, over) > capacity
    out |= _bounded(sums["transients_led"], cells, over) > capacity
    if terms.stepless is not None:
        out &= np.take(terms.stepless, cells[0])
    return out


def _slot_bounds(plans: Plans, terms: Terms, sums: dict, at: np.ndarray, over_by_cat, capacity: float,
                 fits) -> np.ndarray:
    """fits[at] for the plans `at` whose state cell has a finite upper sum (no step temporary nor
    buckets, host RAM and NVMe fit at every slot: _bound_sums), from their largest total over their
    candidate slots (combine_stepless, bit for bit the scan's): the class of ranks holding the peak
    has it at its lowest or highest rank (memory_ranks), and the host fits wherever the peak is, so
    that total decides the verdict as memory_verdict does. The other plans (ascending) are returned
    for the scan."""
    (s_up, _), _ = sums["upper"]
    cells = [np.take(c, at) for c in terms.cell]
    ok = np.isfinite(np.take(s_up, cells[0]))
    own = at[ok]
    bases = [np.take(o, c[ok]) for c, o in zip(cells, terms.offset)]
    slots = np.take(terms.slots, np.take(plans.run, own))
    stepless = np.ones(len(own), dtype=bool)
    peak = np.array(terms.totals(bases, 0, stepless))
    for j in range(1, terms.width):
        r = np.flatnonzero(slots > j)
        if len(r):
            peak[r] = np.maximum(peak[r], terms.totals([b[r] for b in bases], j, stepless[r]))
    over = np.take(over_by_cat, np.take(plans.cat, own))
    fits[own] = ~(peak / over > capacity)  # memory_verdict: optimistic total above the GPU: out of memory
    return at[~ok]


def _offload_unknown(ctx, t: dict, rows) -> np.ndarray | None:
    """Where the node's host memory is unknown, memory_verdict finds every plan with optimizer or
    parameter offload out of memory whatever its GPU memory: the mask of the others among the plans
    `rows` of t (None: all), when some plan offloads; else None."""
    if ctx.node.host_memory_gib is not None:
        return None
    pick = slice(None) if rows is None else rows
    held = (t["offload"][pick] == 0) & (t["offload_params"][pick] == 0)
    return None if held.all() else held


def _host_ok(ctx, plans: Plans, terms: Terms) -> tuple[np.ndarray, str]:
    """memory_verdict's host_ok at the largest host RAM and NVMe per node over each state cell's
    slots (by state cell: 'cell'), or, where the node's host memory is unknown, by category code
    ('cat': no offload)."""
    from planner.estimate.memory import GIB

    if ctx.node.host_memory_gib is None:
        d = plans.decoded()
        return (d["offload"] == 0) & (d["offload_params"] == 0), "cat"
    up = terms.host_upper
    n_cells = len(terms.offset[0])
    ok = ((up["host_per_node"] <= ctx.node.host_memory_gib * GIB)
          & (up["nvme_per_node"] <= (ctx.node.nvme_tb or 0.0) * 1e12))
    return np.broadcast_to(ok, (n_cells,)), "cell"


def _verdict(ctx, part, mem: dict) -> np.ndarray:
    """evaluate.memory_verdict's codes."""
    from planner.estimate.evaluate import memory_verdict

    return memory_verdict(ctx, part, mem)[0]


def _scan(ctx, plans: Plans, terms: Terms, at: np.ndarray, over_by_cat, capacity: float, fits, peak) -> None:
    """fits[at] (and peak[at], given an array) by the candidate-rank scan: slot 0, then each higher
    slot of the plans not yet out of memory at one rank (out of memory: so at every rank, as the
    reference skips them too); plans where a class's highest rank leads its lowest
    (memory_ranks.level_beyond) take the reference (memory.memory)."""
    from planner.estimate import memory, memory_ranks

    bases = terms.bases(at)
    stepless = None if terms.stepless is None else np.take(terms.stepless, terms.cell[0][at])
    total = np.array(terms.totals(bases, 0, stepless))
    over = np.take(over_by_cat, plans.cat[at])
    open_ = ~(total / over > capacity)  # out of memory at one rank: out of memory (memory_verdict)
    m, w = len(at), terms.width
    run = np.take(plans.run, at)
    slots = np.take(terms.slots, run)
    slot = np.zeros(m, dtype=np.int64)
    seen = np.full((w, m), np.nan)
    seen[0] = total
    for j in range(1, w):
        r = np.flatnonzero((slots > j) & open_)
        if not len(r):
            continue
        cand = terms.totals([b[r] for b in bases], j, None if stepless is None else stepless[r])
        seen[j][r] = cand
        pick = cand > total[r]
        r = r[pick]
        total[r], slot[r] = cand[pick], j
        open_[r] = ~(cand[pick] / over[r] > capacity)
    mem = {"total": total, "host_per_node": terms.at(0, "host_per_node", bases[0], slot),
           "nvme_per_node": terms.at(0, "nvme_per_node", bases[0], slot)}
    fits[at] = _verdict(ctx, _Columns(plans, at), mem) < 2
    if peak is not None:
        peak[at] = terms.ranks[run, slot]
    live = np.flatnonzero(open_)
    again = live[memory_ranks.level_beyond(seen[:, live].T, terms.ends[run[live]])]
    if len(again):
        sub = plans.take(at[again])
        ref = memory.memory(ctx, sub, verdict_only=True)
        fits[at[again]] = _verdict(ctx, sub, ref) < 2
        if peak is not None:
            peak[at[again]] = ref["stage"]
