"""The plan searches of a purchase comparison, node counts of one node type searched together.

A plan's estimates (planner.estimate.evaluate.evaluate_table) depend on the model, the workload,
the node and the plan's own columns (dp, tp, pp, ... per row), not on how many nodes the cluster has:
the GPU count of a plan is dp x tp x pp x cp. So the searches of every node count of one node type
and workload share their work: the step-time lower bounds of all their plans are computed in one
pass, and the bounded evaluation (planner.search.solver.bounded_rows: plans taken highest bound
first, in chunks, until no plan left can reach the best found) runs for every count at once, each
round evaluating the next chunk of every count still open in one call. Each count keeps its own
chunks, threshold and stopping rule, so its result is the one its own search finds; the rest of the
search (ranking, the plan, the explanation when nothing fits) is the solver's, given these results
(solver.solve(..., prepared=...)). What this saves is the fixed cost of each call (a few tens of
milliseconds each, whatever the number of plans: measured in benchmarks/purchase_speed.py).
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from planner.estimate import table as T
from planner.estimate.evaluate import Context, evaluate_fitting
from planner.search import solver

FIRST = 64  # first chunk of each search (solver.bounded_rows): calls are shared, so a small one costs little
ROWS_HELD = 1_048_576  # plans of one slice of node counts held at once (bounds the memory; fewer: more calls)
PASS_ROWS = 65_536  # plans of several counts evaluated in one call: past this, a call's fixed cost is small


def _pieces(sizes: list[int], limit: int) -> Iterator[list[int]]:
    """Consecutive indices of `sizes` in groups of at most `limit` in total (a larger one alone)."""
    group, total = [], 0
    for i, n in enumerate(sizes):
        if group and total + n > limit:
            yield group
            group, total = [], 0
        group.append(i)
        total += n
    if group:
        yield group


def _concat_tables(tables: list[dict]) -> dict:
    """The rows of `tables` in one table; one table is returned as is (not copied: the searches only
    read it, and a copy of a range's largest, a million plans, cost up to 0.19 s)."""
    if len(tables) == 1:
        return tables[0]
    return {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}


def _lower_bounds(ctx: Context, tables: list[dict], first: int,
                  heads: list | None = None) -> list[tuple[np.ndarray, Callable | None, tuple]]:
    """solver.search_bound of every table, computed over all of them together (row-wise: the same
    numbers), in passes of at most PASS_ROWS plans (a larger table alone): each table's part of the
    cheap bound and a refine of its own rows (the pass's refine at the table's offset), for
    solver.bounded_rows. The exact bound of the `first` plans of highest cheap bound of each table (the
    plans its search takes first: prepare passes its first two chunks) is computed for the whole pass
    in one call, so that most searches, which stop within them, make no call of their own (a call's
    fixed cost is what sharing saves); the bounds are the same, only computed earlier. Each table's
    bound_order (the order its search takes the plans in) is made once here and handed to its search
    (solver.bounded_rows(order=...)), which reads on from the rows sorted here. `heads`: each table's
    first row of each layout run (_candidates), or None: the bound groups the layout columns on them
    and the order reads its tokens per run (the same numbers: bound.stage_groups, solver.bound_order)."""
    out: list[tuple[np.ndarray, Callable | None, tuple | None]] = [(np.zeros(0), None, None)] * len(tables)
    sizes = [T.size(t) for t in tables]
    for group in _pieces(sizes, PASS_ROWS):
        group = [i for i in group if sizes[i]]
        if not group:
            continue
        ends = np.cumsum([sizes[i] for i in group])
        # a table's first row starts a run (T.changes marks it), so the pass's runs are its tables' runs
        runs = None if heads is None else np.concatenate([heads[i] + s for i, s in zip(group, [0, *ends[:-1]])])
        lb, refine = solver.search_bound(ctx, _concat_tables([tables[i] for i in group]), runs)
        parts = list(zip(group, np.split(lb, ends[:-1]), [0, *ends[:-1]]))
        for i, part, start in parts:
            order = solver.bound_order(tables[i], part, ctx.seq_len, None if heads is None else heads[i])
            out[i] = (part, None if refine is None else _shifted(refine, int(start)), order)
        if refine is not None:  # the `first` rows of highest bound, in the order bounded_rows takes them
            refine(np.concatenate([out[i][2][2][:first] + start for i, _, start in parts]))
    return out


def _shifted(refine: Callable, start: int) -> Callable:
    """refine of a pass's table for the rows of one table starting at row `start` of it."""
    return lambda rows: refine(rows + start)


def _drive(ctx: Context, tables: list[dict], searches: dict[int, Iterator]) -> dict[int, tuple | None]:
    """Run the bounded searches together: each round, the rows every open search asks for are
    evaluated in calls of at most PASS_ROWS plans (one search's larger chunk alone; only the plans not
    out of memory timed: evaluate_fitting) and sent back; returns each search's result."""
    results: dict[int, tuple | None] = {}
    asks: dict[int, np.ndarray] = {}
    for i, gen in searches.items():
        try:
            asks[i] = next(gen)
        except StopIteration as stop:
            results[i] = stop.value
    while asks:
        order = list(asks)
        following: dict[int, np.ndarray] = {}
        for group in _pieces([len(asks[i]) for i in order], PASS_ROWS):
            ids = [order[j] for j in group]
            ev, fit = _evaluate(ctx, _concat_tables([T.take(tables[i], asks[i]) for i in ids]))
            at = solver.fitting_rows(fit, sum(len(asks[i]) for i in ids))  # out of memory: -1, not timed
            lo = 0
            for i in ids:
                hi = lo + len(asks[i])
                try:
                    following[i] = searches[i].send((ev, at[lo:hi]))
                except StopIteration as stop:
                    results[i] = stop.value
                lo = hi
        asks = following
    return results


def _evaluate(ctx: Context, t: dict) -> tuple[dict, np.ndarray]:
    """evaluate_fitting of t, its rows split evenly between solver.MEMORY_THREADS threads where they number
    2 x solver.SPLIT_MIN or more (solver.even_chunk; numpy releases the interpreter lock in its array
    loops): each part's numbers are its own, so the estimates are the same; wall time only."""
    n = T.size(t)
    size = solver.even_chunk(n)
    if size >= n:
        return evaluate_fitting(ctx, t)
    parts: dict[int, tuple] = {}

    def chunk(lo: int) -> None:
        parts[lo] = evaluate_fitting(ctx, {k: v[lo:lo + size] for k, v in t.items()})

    solver._in_chunks(chunk, n, size)
    starts = sorted(parts)
    return (_joined([parts[lo][0] for lo in starts], [len(parts[lo][1]) for lo in starts]),
            np.concatenate([parts[lo][1] + lo for lo in starts]))


def _joined(values: list, sizes: list[int]):
    """Estimates of consecutive parts of a table (nested dicts of per-plan arrays and scalars; `sizes`:
    each part's plans) as one: arrays joined, a scalar kept where every part has the same one, else
    repeated over its part's plans."""
    if isinstance(values[0], dict):
        return {k: _joined([v[k] for v in values], sizes) for k in values[0]}
    if all(np.ndim(v) == 0 for v in values) and all(np.array_equal(v, values[0]) for v in values):
        return values[0]
    return np.concatenate([np.broadcast_to(v, (m,)) if np.ndim(v) == 0 else v for v, m in zip(values, sizes)])


def _candidates(scenario) -> tuple[dict, int, np.ndarray]:
    """solver.candidate_table(scenario); when no layout satisfies the structural constraints (e.g. an
    odd node count of a model with fewer layers than its prime factor), the empty table (every
    column of planner.estimate.table, no row) directly. The integer columns are stored compact, as the
    solver's own search stores them (T.take widens the rows evaluated); third, the first row of each
    layout run (the table is layout-major: solver._candidate_rows)."""
    if len(solver.layouts(scenario)["tp"]):
        t, considered, layout = solver._candidate_rows(scenario, compact=True)
        return t, considered, np.flatnonzero(T.changes(layout))
    return T.from_plans([]), 0, np.zeros(0, dtype=np.int64)


def prepare(scenarios: list, keep: int = 1, built: list | None = None) -> list[dict]:
    """For scenarios that differ only in their node count (same node, model, workload, search
    options, runtime): each one's candidate table, its size before the rules, and the bounded
    evaluation for `keep` places, ready for solver.solve(scenario, top=keep, counts=False,
    prepared=...). `built`: their _candidates results, if already made."""
    ctx = Context(scenarios[0])
    built = built if built is not None else [_candidates(sc) for sc in scenarios]
    tables, heads = [b[0] for b in built], [b[2] for b in built]
    bounds = _lower_bounds(ctx, tables, 5 * max(FIRST, 4 * keep), heads)  # bounded_rows' first two chunks: c, then 4c
    searches = {i: solver.bounded_rows(t, lb, ctx.seq_len, keep, FIRST, refine, h, order)
                for i, (t, h, (lb, refine, order)) in enumerate(zip(tables, heads, bounds)) if T.size(t)}
    best = _drive(ctx, tables, searches)
    return [{"t": t, "considered": considered, "keep": keep, "best": best.get(i)}
            for i, (t, considered, _) in enumerate(built)]


def search_group(scenarios: list, best_plan: Callable, limit: int | None = None) -> Iterator[tuple[int, dict]]:
    """(index, best_plan(scenario, prepared)) of every scenario of one node type and workload, a slice
    of node counts at a time (at most about `limit` candidate plans held at once; default ROWS_HELD)."""
    limit = ROWS_HELD if limit is None else limit
    start = 0
    while start < len(scenarios):
        built, held = [], 0
        while start + len(built) < len(scenarios) and (not built or held < limit):
            built.append(_candidates(scenarios[start + len(built)]))
            held += T.size(built[-1][0])
        part = scenarios[start:start + len(built)]
        for j, prep in enumerate(prepare(part, built=built), start):
            yield j, best_plan(scenarios[j], prep)
        start += len(built)
