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

from planner.estimate import pipeline
from planner.estimate import table as T
from planner.estimate.evaluate import first_last_stage_times, stage_time

DENSE_SPAN = 1 << 22  # largest key span grouped through a dense table (9 bytes per key at most)


def stage_lower_bound(ctx, t: dict) -> np.ndarray:
    """A lower bound of one micro-batch's time on the slower of the first and last stage, compute and
    exposed communication (planner.estimate.evaluate.stage_time); the step is the pipeline's step over
    that time plus DP sync, optimizer and offload, none of them negative. On a GPU whose tensor clock
    drops under load (sustained_tensor_fraction: evaluate.with_tensor_clock sets each plan's clock
    between that fraction and 1), each stage's compute is taken at the burst clock (its fastest) and
    its exposed communication at the lowest clock (the most compute to hide it behind), so the bound
    holds at any clock between; elsewhere it is the stage time itself."""
    s = ctx.gpu.sustained_tensor_fraction
    if not s:
        return stage_time(ctx, t)[0]
    fast = first_last_stage_times(ctx, t)
    slow = first_last_stage_times(ctx, {**t, "tensor_clock": np.full(T.size(t), s)})
    busy = lambda c: c["forward"] + c["backward"] + c["recompute"]  # noqa: E731
    return np.maximum(*(busy(fast[k][1]) + (slow[k][0] - busy(slow[k][1])) for k in ("first", "last")))


def _codes(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code of every value, the distinct values in increasing order): small non-negative integers
    through a lookup table (linear time), others by sorting."""
    col = col.view(np.int8) if col.dtype == bool else col
    lo, hi = (int(col.min()), int(col.max())) if len(col) else (0, 0)
    if lo >= 0 and hi < DENSE_SPAN:
        present = np.zeros(hi + 1, dtype=bool)
        present[col] = True
        lut = np.cumsum(present, dtype=np.int64) - 1
        return lut[col], np.flatnonzero(present)
    values, codes = np.unique(col, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), values


def _dense_ids(key: np.ndarray, span: int) -> tuple[np.ndarray, int]:
    """Keys in [0, span) renumbered 0 .. distinct - 1 (in key order), in linear time."""
    present = np.zeros(span, dtype=bool)
    present[key] = True
    ids = np.cumsum(present, dtype=np.int64)
    ids -= 1
    return ids[key], int(ids[-1]) + 1


def stage_groups(t: dict, cols: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `t` that differ in `cols`: (one row index per distinct value, group of every row), as
    planner.search.solver._groups but without sorting: each column's values are coded through a lookup
    table and packed into a mixed-radix key, renumbered densely whenever the next column would take
    its span past DENSE_SPAN (so the key never outgrows distinct values x one column's values)."""
    n = T.size(t)
    if not n:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    key, span = np.zeros(n, dtype=np.int64), 1
    for k in cols:
        col = t[k].view(np.int8) if t[k].dtype == bool else t[k]
        lo, hi = (int(col.min()), int(col.max()))
        if lo >= 0 and hi < 64:  # small codes: the values themselves are the digits
            digits, m = col, hi + 1
        else:
            digits, values = _codes(col)
            m = len(values)
        if span * m > DENSE_SPAN:
            key, span = _dense_ids(key, span)
        key *= m
        key += digits
        span *= m
    inverse, groups = _dense_ids(key, span)
    first = np.empty(groups, dtype=np.int64)
    first[inverse] = np.arange(n)  # a row of each group (all rows of a group are equal in cols)
    return first, inverse


def group_max(inverse: np.ndarray, groups: int, col: np.ndarray) -> np.ndarray:
    """The largest value of `col` in each group (`inverse`: the group of every row, 0 .. groups - 1):
    which (group, value) pairs occur, marked in a dense (groups x distinct values) table, linear time."""
    codes, values = _codes(col)
    m = len(values)
    if groups * m > DENSE_SPAN:
        top = np.full(groups, values[0] if m else 0, dtype=values.dtype)
        np.maximum.at(top, inverse, col)
        return top
    seen = np.zeros((groups, m), dtype=bool)
    seen.reshape(-1)[inverse * m + codes] = True
    return values[m - 1 - np.argmax(seen[:, ::-1], axis=1)]


def step_lower_bound(ctx, t: dict) -> np.ndarray:
    """A lower bound of every plan's step time: the pipeline's step (ga micro-batches and the bubble)
    over a lower bound of the stage time (stage_lower_bound), without the DP sync, optimizer and
    offload the step adds. The stage time is evaluated once per distinct value of the other columns
    it reads, at the group's largest accumulation (module docstring), in chunks shared by threads
    (solver._in_chunks)."""
    from planner.search.solver import MEMORY_CHUNK, _in_chunks, _read_columns

    cols = tuple(k for k in _read_columns(stage_lower_bound, ctx) if k != "ga")
    first, inverse = stage_groups(t, cols)
    ga = T.wide(t["ga"])
    ga_top = group_max(inverse, len(first), ga)
    stage_s = np.zeros(len(first))

    def chunk(lo: int) -> None:
        rows = first[lo:lo + MEMORY_CHUNK]
        stage_s[lo:lo + MEMORY_CHUNK] = stage_lower_bound(ctx, {**T.take(t, rows), "ga": ga_top[lo:lo + MEMORY_CHUNK]})

    _in_chunks(chunk, len(first))
    return pipeline.pipeline_step_s({"ga": ga, "pp": T.wide(t["pp"]), "vpp": T.wide(t["vpp"])}, stage_s[inverse])
