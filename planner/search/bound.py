"""The step-time lower bound the search prunes with (planner.search.solver.bounded_rows).

A plan's step is the pipeline's step over its stage time (planner.estimate.evaluate.step_time:
ga micro-batches plus the (pp - 1) / vpp bubble) plus DP sync, optimizer and offload, none of them
negative; so (ga + (pp - 1) / vpp) x (a lower bound of the stage time) bounds the step from below.

The stage time is evaluated once per distinct value of the columns it reads other than ga
(stage_groups), at the largest accumulation any plan of the group has: the stage time does not grow
with ga (the FP8 weight casts are spread over the ga micro-batches of a step, compute.weight_casts_per_mb;
the warm-up share of micro-batches whose EP all-to-all cannot be paired falls with ga,
comm.warmup_fraction), so its value at the group's largest ga is below every member's. For one global
batch ga follows from dp and mbs and every group holds one ga: the bound is the stage time itself.
With a range of batches the groups hold several (3.7 x fewer stage evaluations for DeepSeek-V3 on
131,072 GPUs with 4 batches), and the bound stays within 1% of the per-ga stage time for 99% of
the plans (benchmarks/speed_profile.md). tests/test_search.py checks both properties on varied plans.
"""

from __future__ import annotations

import numpy as np

from planner.estimate import comm, compute, pipeline
from planner.estimate import table as T
from planner.estimate.evaluate import first_last_stage_times, layer_units, stage_compute_times, stage_names, stage_time

SPARSE = 32  # _dense_ids sorts keys spread wider than this many key values per key
DENSE_SPAN = 1 << 22  # largest key span grouped through a dense table (9 bytes per key at most)


def stage_lower_bound(ctx, t: dict, units=None, exposed=None) -> np.ndarray:
    """A lower bound of one micro-batch's time on the slowest stage evaluated (the first, the last and, for
    models with leading dense layers or a Megatron split, the heaviest middle rank:
    evaluate.first_last_stage_times), compute and
    exposed communication (planner.estimate.evaluate.stage_time); the step is the pipeline's step over
    that time plus DP sync, optimizer and offload, none of them negative. On a GPU whose tensor clock
    drops under load (sustained_tensor_fraction: evaluate.with_tensor_clock sets each plan's clock
    between that fraction and 1), each stage's compute is taken at the burst clock (its fastest) and
    its exposed communication at the lowest clock (the most compute to hide it behind), so the bound
    holds at any clock between; elsewhere it is the stage time itself. `units`: the layer_units of t at
    the lowest clock (units_clock) when computed elsewhere (_shared_units); the two-clock bound computes
    its burst ones. `exposed` (optional): each stage's exposed communication at the lowest clock (stage
    time less its busy time, one row per stage of first_last_stage_times), as slow_clock_stage_bound
    found it for these rows: not evaluated again (the same numbers)."""
    s = ctx.gpu.sustained_tensor_fraction
    if not s:
        return stage_time(ctx, t, units)[0]
    busy = lambda c: c["forward"] + c["backward"] + c["recompute"]  # noqa: E731
    if exposed is not None:  # the burst clock's compute alone: its communication is not read
        fast = stage_compute_times(ctx, t, compute.layer_costs(ctx, t))
        return np.max([busy(fast[k]) + rest for k, rest in zip(fast, exposed)], axis=0)
    fast = first_last_stage_times(ctx, t)
    slow = first_last_stage_times(ctx, {**t, "tensor_clock": np.full(T.size(t), s)}, units)
    return np.max([busy(fast[k][1]) + (slow[k][0] - busy(slow[k][1])) for k in fast], axis=0)


def _dense_ids(key: np.ndarray, span: int) -> tuple[np.ndarray, int]:
    """Keys in [0, span) renumbered 0 .. distinct - 1 (in key order): in linear time (only the keys
    present are numbered: T.present_ranks) where the span is at most SPARSE x the keys, by sorting
    where it is wider (the same ranks). A presence table costs ~5 bytes per key of the span, written
    page by page on first touch: _dense_groups renumbers a span of up to distinct keys x a column's
    values (DeepSeek-V3 / 2,048: 13.2M for 85k keys, 92 ms of page faults in a fresh table, sorting 6 ms)."""
    if span > max(SPARSE * len(key), 1 << 20):
        keys, ids = np.unique(key, return_inverse=True)
        return ids.reshape(-1), len(keys)
    ids, keys = T.present_ranks(key, span)
    return ids, len(keys)


def stage_groups(t: dict, cols: tuple[str, ...], heads: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `t` that differ in `cols`: (one row index per distinct value, group of every row), as
    planner.search.solver._groups but without sorting. A plan table is layout-major (each layout's
    rows contiguous), so the layout columns change rarely from one row to the next: those columns
    are grouped on the first row of each run where they stay equal (few rows), and each row's key is
    then its run's group and a code of the other columns (_run_groups). `heads` (optional): the first
    row of each layout run (solver._fitting_plans), on which every layout column (solver.COLUMNS)
    stays equal: only the other columns are then compared row by row (the same groups)."""
    n = len(next(iter(t.values())))
    if n <= 4096:  # a small table: one key
        return _dense_groups(t, cols)
    steady: tuple[str, ...] = ()
    if heads is not None:
        from planner.search.solver import COLUMNS

        steady = tuple(k for k in cols if k in COLUMNS)
    changes = {k: T.changes(t[k]) for k in cols if k not in steady}
    slow = tuple(k for k in cols if k in steady or np.count_nonzero(changes[k]) * 16 < n)
    if not slow or len(slow) == len(cols):
        return _dense_groups(t, cols)
    moving = [changes[k] for k in slow if k not in steady]
    if steady:
        change = np.zeros(n, dtype=bool)
        change[heads] = True
    else:
        change = moving.pop(0)
    for c in moving:  # in place (np.logical_or.reduce would stack the columns first)
        change |= c
    heads = np.flatnonzero(change)
    del change, changes, moving
    return _run_groups(t, cols, slow, heads, n)


def _run_groups(t: dict, cols: tuple[str, ...], slow: tuple[str, ...], heads: np.ndarray,
                n: int) -> tuple[np.ndarray, np.ndarray]:
    """stage_groups where the columns `slow` stay equal on each run of rows (`heads`: its first rows):
    each row's key is its run's group (the slow columns grouped on the heads) and a code of the
    other columns (_small_code; _dense_groups where those take values outside [0, 64))."""
    length = np.diff(heads, append=n)  # rows of each run
    _, head_group = _dense_groups({k: t[k][heads] for k in slow}, slow)
    fast = tuple(k for k in cols if k not in slow)
    code, m = _small_code(t, fast, n)
    span = (int(head_group.max()) + 1) * m
    if code is None or span > min(DENSE_SPAN, max(16 * n, 1 << 12)):
        return _dense_groups({"runs": np.repeat(head_group, length), **{k: t[k] for k in fast}}, ("runs", *fast))
    key = np.repeat(head_group * m, length)  # the run's group, then the fast columns' code
    key += code
    del code
    return _first_rows(*_dense_ids(key, span))


def _small_code(t: dict, cols: tuple[str, ...], n: int) -> tuple[np.ndarray | None, int]:
    """(mixed-radix code of `cols`, its radix): each column's values its digits, in int16, where every
    value is in [0, 64) and the code below 2^15 (categorical columns); (None, 0) otherwise. The same
    key as _dense_groups builds from those columns (values as digits, radix max + 1)."""
    code, m = np.zeros(n, dtype=np.int16), 1
    for k in cols:
        col = t[k].view(np.int8) if t[k].dtype == bool else t[k]
        lo, hi = (int(col.min()), int(col.max()))
        if lo < 0 or hi >= 64 or m * (hi + 1) >= 2**15:
            return None, 0
        code *= hi + 1
        code += col
        m *= hi + 1
    return code, m


def _first_rows(inverse: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(a row of each group, group of every row) from the groups of the rows."""
    first = np.empty(groups, dtype=np.int64)
    first[inverse] = np.arange(len(inverse))  # a row of each group (all rows of a group are equal in cols)
    return first, inverse


def _dense_groups(t: dict, cols: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """stage_groups by one mixed-radix key: each column's values coded through a lookup table, the
    key renumbered densely whenever the next column would take its span past DENSE_SPAN or 16 x the
    rows (so it never outgrows distinct values x one column's values, nor a small table's size)."""
    n = len(next(iter(t.values())))
    if not n:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    limit = min(DENSE_SPAN, max(16 * n, 1 << 12))  # small tables: small lookup tables
    key, span = np.zeros(n, dtype=np.int64), 1
    for k in cols:
        col = t[k].view(np.int8) if t[k].dtype == bool else t[k]
        lo, hi = (int(col.min()), int(col.max()))
        if lo >= 0 and (hi < 64 or span * (hi + 1) <= limit):  # the values themselves are the digits
            digits, m = col, hi + 1
        else:
            digits, values = T.value_ranks(col, DENSE_SPAN)
            m = len(values)
        if span * m > limit:
            key, span = _dense_ids(key, span)
        key *= m
        key += digits
        span *= m
    return _first_rows(*_dense_ids(key, span))


def group_max(inverse: np.ndarray, groups: int, col: np.ndarray) -> np.ndarray:
    """The largest value of `col` (integers or floats) in each group (`inverse`: the group of every row,
    0 .. groups - 1; every group has a row), in col's type: np.maximum.at, linear time (numpy >= 1.25 runs it without
    buffering: 4 x faster here than marking (group, value) pairs in a dense table)."""
    low = np.iinfo(col.dtype).min if col.dtype.kind in "iu" else -np.inf
    top = np.full(groups, low, dtype=col.dtype)
    np.maximum.at(top, inverse, col)
    return top


def _groups_at_top_ga(ctx, t: dict, heads=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a row of each group, group of every row, each group's largest ga): the groups of plans equal in
    the columns the stage time reads other than ga (the slow-clock evaluation reads the same columns
    as the burst one: stage_lower_bound reads them all). `heads`: as stage_groups takes it."""
    first, inverse = stage_groups(t, _ga_free_columns(ctx), heads)
    return first, inverse, T.wide(group_max(inverse, len(first), t["ga"]))


def _ga_free_columns(ctx) -> tuple[str, ...]:
    """The columns stage_lower_bound reads other than ga (_reads: solver._read_columns runs it on a
    recording row)."""
    return tuple(k for k in _reads(stage_lower_bound, ctx) if k != "ga")


def _per_group(ctx, fn, groups: dict, units=None, exposed=None) -> np.ndarray:
    """fn(ctx, rows) of the groups' rows `groups` (_group_rows), in chunks shared by threads; with
    `units` (the layer_units of those rows: _shared_units, or _group_units of some groups' units),
    fn(ctx, rows, the rows' units): they read fewer columns than the stage time (not vpp), so they were
    evaluated once per distinct value of those columns. `exposed` (optional, with units): an array of
    (stages, groups) handed to fn by its columns of each chunk (fn(..., exposed=view))."""
    from planner.search.solver import _in_chunks, even_chunk

    n = len(groups["ga"])
    out = np.zeros(n)
    size = even_chunk(n)

    def chunk(lo: int) -> None:
        at = slice(lo, lo + size)
        part = T.take(groups, at)
        if units is None:
            out[at] = fn(ctx, part)
        elif exposed is None:
            out[at] = fn(ctx, part, tuple(_unit_rows(u, at) for u in units))
        else:
            out[at] = fn(ctx, part, tuple(_unit_rows(u, at) for u in units), exposed=exposed[:, at])

    if n:
        _in_chunks(chunk, n, size)
    return out


def _group_rows(ctx, t: dict, first: np.ndarray, ga_top: np.ndarray) -> dict:
    """The row of each group at its largest ga: the columns the stage time reads (stage_lower_bound's,
    as the slow-clock bound's and the units': a column fn read beyond them would fail loudly)."""
    return {**{k: t[k][first] for k in _ga_free_columns(ctx)}, "ga": T.compact(ga_top)}


def units_clock(ctx) -> float | None:
    """The tensor clock of the layer units the stage bounds take (stage_lower_bound,
    slow_clock_stage_bound): the lowest, sustained_tensor_fraction, or None (burst) on GPUs without one."""
    return ctx.gpu.sustained_tensor_fraction or None


def _group_units(units: tuple, groups: np.ndarray) -> tuple:
    """_shared_units of some groups' rows: the parts' tables, indexed for those groups."""
    return tuple([(table, index[groups]) for table, index in parts] for parts in units)


def _comm_of_columns(ctx, t: dict) -> dict:
    """comm.layer_comm of t with attention seconds as inputs (its columns for _reads)."""
    n = T.size(t)
    return comm.layer_comm(ctx, t, np.ones(n), np.ones(n))


def _reads(fn, ctx) -> tuple[str, ...]:
    """The columns fn(ctx, table) reads (found once per context: solver._read_columns)."""
    from planner.search.solver import _read_columns

    return _read_columns(fn, ctx)


def _shared_units(ctx, t: dict, clock: float | None) -> tuple[list, list]:
    """The layer_units of every row of t at tensor clock `clock` (None: burst), as (compute costs,
    communication) each a list of (table of values, the row of every row of t in it) (_unit_rows),
    evaluated in chunks shared by threads. The same numbers as layer_units of every row: each is
    computed row by row from the columns it reads alone (tests/test_bound.py compares). The units are
    the rows distinct in the columns layer_units reads, and their parts read fewer columns still, so
    each is evaluated once per distinct value of its own inputs (DeepSeek-V3 / 2,048 H100: 86,478
    units, 33,406 compute.layer_costs, 43,783 comm.layer_comm): the costs (not dp nor recompute) and
    the communication with its EP dispatch (not ga; precision since the FP8 sequence-parallel gathers
    move quantised bytes, comm.sp_quantised_gather_saving_s; the costs' attention seconds taken as
    inputs); each row of t reads its part's value through its unit (the two indices composed: no
    table of every unit; none for an empty t)."""
    if not T.size(t):
        return [], []
    first, inverse = stage_groups(t, _reads(layer_units, ctx))
    units = T.take(t, first)
    cost, at_cost = _per_value(units, _reads(compute.layer_costs, ctx), {},
                               lambda part, rows: compute.layer_costs(ctx, part), clock)
    m = int(at_cost.max()) + 1 if len(at_cost) else 0  # distinct cost inputs (each read by some unit)
    attn = [np.broadcast_to(cost[k], (m,)) for k in ("attn_fwd", "attn_bwd")]  # layer_units passes these
    # the inputs' values as columns: their ranks among the costs' values, read through each unit's cost
    ranks = {f"_attn{i}": np.take(T.value_ranks(a)[0], at_cost) for i, a in enumerate(attn)}
    unit_comm = _per_value(units, _reads(_comm_of_columns, ctx), ranks,
                           lambda part, rows: comm.layer_comm(ctx, part, *(np.take(a, np.take(at_cost, rows))
                                                                            for a in attn)), clock)
    through = lambda table, at: (table, np.take(at, inverse))  # noqa: E731  (the row of t, via its unit)
    return [through(cost, at_cost)], [through(*unit_comm)]


def _unit_rows(parts: list, at) -> dict:
    """One layer_units dict of the rows `at` of t from its parts (_shared_units: (table, row of every
    row of t in it)), scalars kept."""
    out: dict = {}
    for table, index in parts:
        out.update(_rows_of(table, index[at]))
    return out


def _per_value(t: dict, cols: tuple[str, ...], extra: dict, fn, clock: float | None) -> tuple[dict, np.ndarray]:
    """(fn(rows of t, those rows) (a dict of arrays and scalars) once per distinct value of the columns
    `cols` of t and the integer columns `extra`, in chunks shared by threads, at tensor clock `clock`
    (None: burst); the distinct value of every row of t)."""
    from planner.search.solver import _in_chunks, even_chunk

    first, inverse = stage_groups({**{k: t[k] for k in cols}, **extra}, (*cols, *extra))
    size = even_chunk(len(first))
    starts = range(0, len(first), size)
    parts: list = [None] * len(starts)

    def chunk(lo: int) -> None:
        rows = first[lo:lo + size]
        part = T.take(t, rows)
        if clock is not None:
            part["tensor_clock"] = np.full(len(rows), clock)
        parts[lo // size] = fn(part, rows)

    _in_chunks(chunk, len(first), size)
    sizes = [min(size, len(first) - lo) for lo in starts]
    return {k: _joined([p[k] for p in parts], sizes) for k in parts[0]}, inverse


def _joined(values: list, sizes: list[int]):
    """The chunks of one layer_units entry as one array (an entry may be a scalar: kept as one where
    every chunk has the same)."""
    if all(np.ndim(v) == 0 for v in values) and all(np.array_equal(v, values[0]) for v in values):
        return values[0]
    return np.concatenate([np.broadcast_to(v, (m,)) if np.ndim(v) == 0 else v for v, m in zip(values, sizes)])


def _rows_of(units: dict, pick: np.ndarray) -> dict:
    return {k: v[pick] if np.ndim(v) else v for k, v in units.items()}


def _pipeline_step(t: dict, rows, stage_s: np.ndarray) -> np.ndarray:
    return pipeline.pipeline_step_s({k: T.wide(t[k][rows]) for k in ("ga", "pp", "vpp")}, stage_s)


def _grouped_step(ctx, t: dict, first: np.ndarray, inverse: np.ndarray, stage_s: np.ndarray) -> np.ndarray:
    """_pipeline_step of every row from its group's stage time (`first`, `inverse`: _groups_at_top_ga):
    ga x stage + bubble, the bubble ((pp - 1) / vpp x stage, pipeline.bubble_s) computed once per
    group where pp and vpp are group columns (the same numbers: every row of a group has its pp, vpp
    and stage time), ga x stage per row (ga as float64, as numpy converts the int64 column: exact)."""
    if not {"pp", "vpp"} <= set(_ga_free_columns(ctx)):
        return _pipeline_step(t, slice(None), stage_s[inverse])
    bubble = pipeline.bubble_s({k: T.wide(t[k][first]) for k in ("pp", "vpp")}, stage_s)
    out = np.take(stage_s, inverse)
    np.multiply(t["ga"], out, out=out)  # in place: the same numbers, two temporaries of every row fewer
    out += np.take(bubble, inverse)
    return out


def step_lower_bound(ctx, t: dict, heads=None) -> np.ndarray:
    """A lower bound of every plan's step time: the pipeline's step (ga micro-batches and the bubble)
    over a lower bound of the stage time (stage_lower_bound), without the DP sync, optimizer and
    offload the step adds. The stage time is evaluated once per distinct value of the other columns
    it reads, at the group's largest accumulation (module docstring), in chunks shared by threads
    (solver._in_chunks). `heads`: the first row of each layout run of t, or None (stage_groups)."""
    first, inverse, ga_top = _groups_at_top_ga(ctx, t, heads)
    rows = _group_rows(ctx, t, first, ga_top)
    units = _shared_units(ctx, rows, units_clock(ctx))
    return _grouped_step(ctx, t, first, inverse, _per_group(ctx, stage_lower_bound, rows, units))


def slow_clock_stage_bound(ctx, t: dict, units=None, exposed=None) -> np.ndarray:
    """A lower bound of stage_lower_bound from one stage evaluation, at the lowest tensor clock s: the
    exposed communication as there, and the compute times s, since no compute time at the burst
    clock is below s times its time at clock s (compute_gemm.peaks scales only the tensor-core rates by
    the clock: a term is s-fold slower at most, the HBM-bound and host-paced ones not at all).
    `exposed` (optional): an array of (stages, rows) given each stage's exposed communication at the
    lowest clock (stage time less busy time), which stage_lower_bound takes back (search_bound's refine)."""
    s = ctx.gpu.sustained_tensor_fraction
    slow = first_last_stage_times(ctx, {**t, "tensor_clock": np.full(T.size(t), s)}, units)
    out = None
    for i, (stage_s, c, _) in enumerate(slow.values()):  # the largest over the stages (each busy time summed once)
        busy = c["forward"] + c["backward"] + c["recompute"]
        rest = stage_s - busy
        if exposed is not None:
            exposed[i] = rest
        v = s * busy + rest
        out = v if out is None else np.maximum(out, v, out=out)
    return out


def search_bound(ctx, t: dict, heads=None):
    """(lower bounds of every plan's step, refine) for solver.bounded_rows. On GPUs without a
    sustained-clock figure: step_lower_bound, refine None. Elsewhere stage_lower_bound costs two
    stage evaluations (burst and lowest clock); the search starts from slow_clock_stage_bound (one)
    and refine(rows) returns step_lower_bound of those rows (each group's two evaluations done once,
    when a plan of the group is first taken): the plans the search takes (highest bound first, until
    no plan left reaches the best found) are a few thousand of millions, so most groups never need
    the second evaluation (DeepSeek-V3 on 2,048 H100: 0.96 s instead of 1.7 s of CPU). Both bounds
    are valid, so the plans kept are the same (bounded_rows). `heads`: the first row of each layout
    run of t, or None (stage_groups)."""
    if not ctx.gpu.sustained_tensor_fraction:
        return step_lower_bound(ctx, t, heads), None
    first, inverse, ga_top = _groups_at_top_ga(ctx, t, heads)
    rows = _group_rows(ctx, t, first, ga_top)
    slow_units = _shared_units(ctx, rows, units_clock(ctx))
    # each group's exposed communication per stage at the lowest clock, kept for refine (not evaluated twice)
    exposed = np.empty((len(stage_names(ctx)), len(first)))
    lb = _grouped_step(ctx, t, first, inverse, _per_group(ctx, slow_clock_stage_bound, rows, slow_units, exposed))
    del rows
    if len(first) < 2**31:  # kept for refine while the search runs: half the bytes (the range: 23 MB)
        inverse = inverse.astype(np.int32)
    exact = np.full(len(first), np.nan)

    def refine(rows: np.ndarray) -> np.ndarray:
        g = inverse[rows]
        todo = T.distinct(g[np.isnan(exact[g])])
        if len(todo):  # the lowest clock's units are the first bound's (the same numbers: _shared_units)
            exact[todo] = _per_group(ctx, stage_lower_bound, _group_rows(ctx, t, first[todo], ga_top[todo]),
                                     _group_units(slow_units, todo), exposed[:, todo])
        return _pipeline_step(t, rows, exact[g])

    return lb, refine
