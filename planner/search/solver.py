"""Plan search: CP-SAT enumerates every integer layout that satisfies the structural constraints;
numpy then evaluates memory and time for every layout x categorical choice at once, removes the
plans that do not fit (GPU memory, host memory, NVMe) or break the budget, and ranks the rest.

Nothing is pruned by a heuristic: every plan of the space is either rejected by an exact
constraint or evaluated, so the ranking is exact under the model.
"""

from __future__ import annotations

import functools
import itertools
import os
import time

import numpy as np

from planner.estimate import table as T
from planner.estimate import bands, memory
from planner.estimate.pipeline_split import split_key, valid_pairs_mask
from planner.estimate.evaluate import Context, evaluate_fitting, evaluate_table, memory_verdict, result_row
from planner.frameworks.rules import RULES, framework_mask, runtime_violations, unbuildable
from planner.search.bound import search_bound
from planner.search.rank import TIE, TIGHT_PENALTY, order, pareto_mask, preferred, ranking_rule
from planner.search.cpsat import all_solutions
from planner.search.order import ByBound
from planner.search.cpsat import cp_model as cpsat_module
from planner.search.space import all_layouts, domains, with_etp
from planner.spec.scenario import Runtime

INT_FIELDS = ("tp", "pp", "cp", "ep", "vpp", "dp", "mbs", "ga")
COLUMNS = INT_FIELDS + ("etp",)  # the layout columns once each layout has its expert tensor-parallel sizes


def _prime_exponents(n: int) -> dict[int, int]:
    out, p = {}, 2
    while p * p <= n:
        while n % p == 0:
            out[p] = out.get(p, 0) + 1
            n //= p
        p += 1
    if n > 1:
        out[n] = out.get(n, 0) + 1
    return out


def _layout_key(scenario) -> tuple:
    """Everything the layouts depend on: two scenarios with the same key have the same layouts."""
    m, so = scenario.model, scenario.search
    return (scenario.cluster.gpus, scenario.cluster.node.domain, m.layers, m.heads,
            m.heads if m.mla else m.n_kv_heads, m.moe.experts if m.moe else 0,
            scenario.training.seq_len, scenario.training.batches,
            tuple(so.micro_batch), *(tuple(getattr(so, k) or ()) for k in ("tp", "pp", "cp", "ep", "vpp")),
            tuple(sorted((k, str(v)) for k, v in so.fixed.items())), so.uneven_pipeline,
            split_key(scenario.runtime))


_LAYOUT_CACHE: dict[tuple, dict] = {}


def layouts(scenario) -> dict[str, np.ndarray]:
    """All (tp, pp, cp, ep, vpp, dp, mbs, ga) satisfying the structural constraints (cached by
    everything they depend on, so purchase comparisons reuse them across node types)."""
    key = _layout_key(scenario)
    if key not in _LAYOUT_CACHE:
        if len(_LAYOUT_CACHE) > 256:
            _LAYOUT_CACHE.clear()
        found = _enumerate_layouts(scenario)
        for a in found.values():
            a.setflags(write=False)
        _LAYOUT_CACHE[key] = found
    return _LAYOUT_CACHE[key]


GRID_FIELDS = ("tp", "pp", "cp", "dp")  # the device grid; ep, mbs, ga, vpp follow by arithmetic
MODEL_FIELDS = ("tp", "pp", "cp")  # enumerated by CP-SAT; dp = GPUs / (tp * pp * cp)


def _device_grid(dom: dict, n: int, batches: tuple[int, ...]) -> np.ndarray:
    """Every (tp, pp, cp, dp) of the domains with tp * pp * cp * dp = n; CP-SAT enumerates (tp, pp, cp).

    Every degree takes a value of its domain through one-hot booleans; products are written on prime
    exponents, which keeps the model linear: x * y | n  <=>  e_p(x) + e_p(y) <= e_p(n) for every prime
    p. dp = n / (tp * pp * cp) must divide some allowed batch, so e_p(n) - e_p(tp * pp * cp) <= the
    largest e_p of the batches (a necessary condition; the exact divisibility and the dp domain are
    checked by arithmetic afterwards)."""
    cp_model = cpsat_module()  # imported when a search needs it (start-up time)

    ne = _prime_exponents(n)
    batch_exp = [_prime_exponents(b) for b in batches]
    model = cp_model.CpModel()
    pick = {k: {v: model.new_bool_var(f"{k}={v}") for v in dom[k]} for k in MODEL_FIELDS}
    for k in MODEL_FIELDS:
        model.add_exactly_one(pick[k].values())
    exps = {v: _prime_exponents(v) for k in MODEL_FIELDS for v in dom[k]}  # each value's once
    for p in sorted({p for e in exps.values() for p in e} | set(ne)):
        # e_p(tp * pp * cp) as a weighted sum of the bits whose value holds p (a purchase sweep builds
        # one model per node count: Python's sum of products took a fifth of each)
        terms = [(b, exps[v][p]) for k in MODEL_FIELDS for v, b in pick[k].items() if p in exps[v]]
        least = ne.get(p, 0) - max(be.get(p, 0) for be in batch_exp)
        if not terms:  # e_p(tp * pp * cp) = 0: at most e_p(n) always holds, at least `least` never if > 0
            if least > 0:
                return np.zeros((0, len(GRID_FIELDS)), dtype=np.int64)
            continue
        used = cp_model.LinearExpr.weighted_sum([b for b, _ in terms], [e for _, e in terms])
        model.add(used <= ne.get(p, 0))
        model.add(used >= least)
    bits = [b for k in MODEL_FIELDS for b in pick[k].values()]
    values = np.array([v for k in MODEL_FIELDS for v in pick[k]], dtype=np.int64)
    chosen = all_solutions(model, bits).astype(bool)  # one true bit per field in every row, fields in order
    if not len(chosen):
        return np.zeros((0, len(GRID_FIELDS)), dtype=np.int64)
    grid = np.broadcast_to(values, chosen.shape)[chosen].reshape(len(chosen), len(MODEL_FIELDS))
    dp = n // grid.prod(axis=1)
    grid = np.column_stack([grid, dp])[np.isin(dp, dom["dp"])]
    return T.distinct(grid, axis=0)


def _enumerate_layouts(scenario) -> dict[str, np.ndarray]:
    """All (tp, pp, cp, ep, vpp, dp, mbs, ga) satisfying the structural constraints.

    CP-SAT enumerates the device grid (tp, pp, cp, dp) (_device_grid). Given a grid, the rest follows
    by arithmetic (numpy): ep from its domain with ep | tp * cp * dp (EP may fold over tp x cp x dp; space.with_etp then keeps the etp with ep * etp | tp * cp * dp); for every
    allowed global batch B, mbs from its domain with mbs * dp | B and ga = B / (mbs * dp); vpp = 1 or
    (pp > 1, ga % pp == 0 for Megatron's interleaved schedule, and pp * vpp <= layers, or
    layers % (pp * vpp) == 0 without uneven splits)."""
    dom = domains(scenario, ga=False)
    empty = {k: np.array([], dtype=np.int64) for k in INT_FIELDS}
    if any(not v for v in dom.values()):
        return empty
    layers = scenario.model.layers
    batches = np.array(scenario.training.batches, dtype=np.int64)
    grid = _device_grid(dom, scenario.cluster.gpus, scenario.training.batches)
    if not len(grid):
        return empty
    g = {k: grid[:, i] for i, k in enumerate(GRID_FIELDS)}
    # Expand every grid point by expert degree, micro-batch, interleaving depth and batch (vectorised).
    axes = [np.arange(len(grid))] + [np.array(dom[k], dtype=np.int64) for k in ("ep", "mbs", "vpp")] + [batches]
    gi, ep, mbs, vpp, gb = (a.ravel() for a in np.meshgrid(*axes, indexing="ij"))
    out = {k: g[k][gi] for k in GRID_FIELDS}
    out["ep"], out["mbs"], out["vpp"] = ep, mbs, vpp
    ok = ((out["tp"] * out["dp"] * out["cp"]) % ep == 0) & (gb % (out["dp"] * mbs) == 0)
    out["ga"] = np.where(ok, gb // np.maximum(out["dp"] * mbs, 1), 0)
    if "ga" in scenario.search.fixed:
        ok &= out["ga"] == int(scenario.search.fixed["ga"])
    pv = out["pp"] * vpp
    split = split_key(scenario.runtime)
    if split is not None:  # a Megatron split (runtime.pipeline_layout / account_for_*): the pairs it builds
        fits_layers = valid_pairs_mask(split, layers, out["pp"], vpp)
    else:
        fits_layers = pv <= layers if scenario.search.uneven_pipeline else layers % pv == 0
    ok &= (vpp == 1) | ((out["pp"] > 1) & (out["ga"] % out["pp"] == 0))
    ok &= fits_layers
    out = {k: out[k][ok] for k in INT_FIELDS}
    # Rows in the order (tp, pp, cp, ep, dp, mbs, vpp, batch): ties in the ranking keep that order.
    rank = np.lexsort(tuple(out[k] for k in ("ga", "vpp", "mbs", "dp", "ep", "cp", "pp", "tp")))
    return {k: v[rank] for k, v in out.items()}


def _rule_reads(runtime=None) -> frozenset[str]:
    """The plan columns the framework rules read under the scenario's runtime block (found by running
    them on a recording table; a runtime rule may read plan columns only where the runtime sets what it
    is about, so the columns depend on the block; without one, the default block's)."""
    return _reads_under((runtime if runtime is not None else Runtime()).model_dump_json())


@functools.cache
def _reads_under(runtime_json: str) -> frozenset[str]:
    runtime = Runtime.model_validate_json(runtime_json)
    seen = T.read_keys(lambda r: framework_mask(r, runtime=runtime),
                       {k: np.zeros(1, dtype=np.int64) for k in (*COLUMNS, *T.CATEGORICAL, "zero")}
                       | {"sp": np.zeros(1, dtype=bool)})
    return frozenset(seen | {"tp", "framework"})  # tp, framework: sp and its sequence check


def _rule_columns(runtime=None) -> tuple[str, ...]:
    """The integer layout columns the framework rules read."""
    return tuple(k for k in COLUMNS if k in _rule_reads(runtime))


def candidate_table(scenario, exhaustive: bool = False) -> tuple[dict, int]:
    """Layouts x categorical choices, with sp set as each framework runs it; framework rules and
    fixed fields applied. Returns (table, size of the space before the framework rules).
    `exhaustive` enumerates the layouts by brute force instead of CP-SAT (same result, slower)."""
    t, considered, _ = _candidate_rows(scenario, exhaustive)
    return t, considered


def _candidate_rows(scenario, exhaustive: bool = False, compact: bool = False) -> tuple[dict, int, np.ndarray]:
    """candidate_table, plus the layout of each row (rows are layout-major: each layout's rows are
    contiguous, its categorical choices in one order). `compact`: integer columns stored in the
    narrowest type that holds them (T.compact; T.take widens the rows it returns).

    The rules read only a few layout columns, so they are applied once per distinct projection of
    the layouts on those columns x categorical choice, then expanded to the layouts (same rows, same
    order as applying them to the full product)."""
    so = scenario.search
    lay = with_etp(scenario, all_layouts(scenario, INT_FIELDS) if exhaustive else layouts(scenario))
    fixed = so.fixed
    cats = {
        "framework": [T.FRAMEWORKS.index(f) for f in so.frameworks],
        "precision": [T.PRECISIONS.index(p) for p in so.precision
                      if scenario.cluster.node.gpu.peak_tflops(p) is not None],
        "zero": list(so.zero),
        "offload": [T.OFFLOADS.index(o) for o in so.offload],
        "offload_params": [T.OFFLOADS.index(o) for o in so.offload_params],
        "recompute": [T.RECOMPUTES.index(r) for r in so.recompute],
    }
    for key, values in cats.items():
        if key in fixed:
            want = fixed[key]
            code = T.CATEGORICAL[key].index(want) if key in T.CATEGORICAL else int(want)
            runs = key != "precision" or scenario.cluster.node.gpu.peak_tflops(want) is not None
            cats[key] = [c for c in values if c == code] or ([code] if runs else [])
    combos = np.array(list(itertools.product(*cats.values())), dtype=np.int64).reshape(-1, len(cats))
    n_lay, n_cat = len(lay["tp"]), len(combos)
    considered = n_lay * n_cat
    cols = _rule_columns(scenario.runtime)
    first, inverse = _groups(lay, cols)
    uniq = np.stack([lay[k][first] for k in cols], axis=1)
    # The rules on (distinct projection) x (categorical choice of the keys they read), by broadcasting
    # a column of projections against a row of choices; each full choice then takes its projection's.
    ruled = [key for key in cats if key in _rule_reads(scenario.runtime)]
    sub = np.array(list(itertools.product(*(cats[k] for k in ruled))), dtype=np.int64).reshape(-1, len(ruled))
    proj = np.ravel_multi_index([_first_place(cats[key])[combos[:, list(cats).index(key)]] for key in ruled],
                                [len(cats[k]) for k in ruled]) if n_cat else np.zeros(0, dtype=np.int64)
    grid = {k: uniq[:, j:j + 1] for j, k in enumerate(cols)}
    grid.update({k: np.ones((1, 1), dtype=np.int64) for k in COLUMNS if k not in cols})
    for j, key in enumerate(ruled):
        grid[key] = sub[None, :, j]
    grid["sp"] = _sp(grid, fixed)
    keep = ~_dropped(grid, scenario)
    m = _block(proj, len(sub))
    # layout-major, as the full product: the choice of every row, or (m > 1) the sub-choice of every
    # block of m rows, whose choices are s*m .. s*m + m - 1 (_kept)
    chosen, count = _expand(*(np.nonzero(keep) if m > 1 else _kept(keep, proj)), len(uniq), inverse)
    count *= m
    narrow = T.compact if compact else (lambda v: v)
    jobs = {k: functools.partial(np.repeat, narrow(lay[k]), count) for k in COLUMNS}
    for j, key in enumerate(cats):
        jobs[key] = functools.partial(_choice_column, narrow(combos[:, j]), m, chosen)
    # the layout of every row, its type narrowed before the repeat (the same values, no pass over the rows)
    order = narrow(np.arange(n_lay, dtype=np.int32 if n_lay < 2**31 else np.int64))
    jobs["layout"] = functools.partial(np.repeat, order, count)
    t = _in_threads(jobs, int(count.sum()))
    li = t.pop("layout")
    t["sp"] = _sp(t, fixed)
    return t, considered, li


def _in_threads(jobs: dict, rows: int) -> dict:
    """{key: job()} for independent numpy jobs (each a column of `rows` rows of the plan table), shared
    by MEMORY_THREADS threads when the columns are long (MEMORY_CHUNK rows or more: on shorter ones
    starting the threads costs more than they save): numpy's repeats and gathers release the
    interpreter lock, so this is wall time only (the same arrays)."""
    if MEMORY_THREADS < 2 or len(jobs) < 2 or rows < MEMORY_CHUNK:
        return {k: job() for k, job in jobs.items()}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(MEMORY_THREADS) as pool:
        running = {k: pool.submit(job) for k, job in jobs.items()}
        return {k: r.result() for k, r in running.items()}


def _fitting_plans(t: dict, rows: np.ndarray, layout) -> tuple[dict, np.ndarray | None]:
    """(the plans `rows` (ascending, not empty) of the compact plan table t, the first of them of each
    layout run or None). With `layout` (the layout of every row of t: _candidate_rows), the layout
    columns (COLUMNS: one value per layout) are repeated over the runs of a layout the rows keep, a
    sequential write, instead of gathered row by row; the other columns are gathered. The same arrays
    as t[k].take(rows), the columns shared by threads (_in_threads)."""
    if layout is None:
        return _in_threads({k: functools.partial(v.take, rows) for k, v in t.items()}, len(rows)), None
    heads = np.flatnonzero(T.changes(layout.take(rows)))
    length = np.diff(heads, append=len(rows))
    at = rows[heads]
    jobs = {k: functools.partial(np.repeat, v[at], length) if k in COLUMNS else functools.partial(v.take, rows)
            for k, v in t.items()}
    return _in_threads(jobs, len(rows)), heads


def _first_place(codes: list[int]) -> np.ndarray:
    """place[c]: the first position of code c in `codes` (a lookup table over the codes' range)."""
    place = np.zeros(max(codes, default=0) + 1, dtype=np.int64)
    for i, c in reversed(list(enumerate(codes))):  # a few codes; the last write is the first place
        place[c] = i
    return place


def _dropped(grid: dict, scenario) -> np.ndarray:
    """True where a row of the rules' table (a column of layout projections against a row of choices)
    breaks a rule: sequence parallelism where tp does not divide the sequence, framework_mask's rules and
    the runtime's, a framework that cannot build the model, or not Megatron under Megatron's own
    pipeline split. Each rule's violations are OR-ed into one table in place (one full-size pass per
    rule instead of three)."""
    framework = grid["framework"]
    shape = np.broadcast_shapes(*(np.shape(v) for v in grid.values()))
    drop = np.zeros(shape, dtype=bool)
    np.logical_or(drop, grid["sp"] & (scenario.training.seq_len % grid["tp"] != 0), out=drop)
    runs = {}  # framework code -> where the row's framework is it

    def add(fw, hit) -> None:
        if fw is not None:
            if fw not in runs:
                runs[fw] = framework == fw
            hit = hit & runs[fw]
        np.logical_or(drop, hit, out=drop)

    for fw, _, bad in RULES:  # framework_mask, broadcast
        add(fw, bad(grid))
    for fw, _, hit in runtime_violations(grid, scenario.runtime, scenario.model, scenario.training.optimizer):  # and its runtime rules
        add(fw, hit)
    for code in unbuildable(scenario.model, scenario.training.seq_len):  # frameworks that cannot build this model
        add(code, True)
    if split_key(scenario.runtime) is not None:  # Megatron's own split (runtime keys): Megatron plans only
        np.logical_or(drop, framework != T.MEG, out=drop)
    return drop


def _block(proj: np.ndarray, subs: int) -> int:
    """m where choice c reads the rules' sub-choice c // m (the keys the rules do not read come last in
    the product of choices, m choices of theirs: _kept), else 1."""
    m = len(proj) // max(subs, 1)
    return m if m > 1 and np.array_equal(proj, np.arange(len(proj)) // m) else 1


def _choice_column(values: np.ndarray, m: int, chosen: np.ndarray) -> np.ndarray:
    """values[c] for the choice c of every row. With m > 1, `chosen` holds the sub-choice s of every
    block of m rows (choices s*m .. s*m + m - 1): a column that depends on s alone is taken once per
    block and repeated, one that depends on the place in the block alone is tiled (the keys the rules
    do not read), any other is taken row by row."""
    if m == 1:
        return values[chosen]
    per_block, per_place = values[::m], values[:m]
    if np.array_equal(values, np.repeat(per_block, m)):
        return np.repeat(per_block[chosen], m)
    if np.array_equal(values, np.tile(per_place, len(values) // m)):
        return np.tile(per_place, len(chosen))
    return values[(chosen[:, None] * m + np.arange(m)).reshape(-1)]


def _kept(keep: np.ndarray, proj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.nonzero(keep[:, proj]): the rules' table (projections x choices of the keys they read)
    taken to every choice. Where the keys the rules do not read come last in the product of choices
    (recompute), choice c takes sub-choice c // m, so each kept sub-choice s gives the choices
    s*m .. s*m + m - 1 in order, without the wide table."""
    m = len(proj) // max(keep.shape[1], 1)
    if m > 1 and np.array_equal(proj, np.arange(len(proj)) // m):
        kept_row, kept_sub = np.nonzero(keep)
        return np.repeat(kept_row, m), (kept_sub[:, None] * m + np.arange(m)).reshape(-1)
    return np.nonzero(keep[:, proj])


def _expand(kept_row: np.ndarray, kept_col: np.ndarray, rows: int,
            inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.nonzero(keep[inverse])'s columns (of `keep`, in row-major order) and the number of them in each
    row of `inverse`, from np.nonzero(keep) (`kept_row`, `kept_col`; `rows` rows), without building
    keep[inverse] (layouts x choices): each row takes the kept columns of its row of keep, in order."""
    per = np.bincount(kept_row, minlength=rows)  # kept columns of each row of keep
    offset = np.cumsum(per) - per  # where each row of keep starts among kept_col
    count = per[inverse]
    pos = np.arange(int(count.sum()), dtype=np.intp)  # intp: kept_col[pos] takes it as it is
    pos -= np.repeat(np.cumsum(count) - count - offset[inverse], count)  # offset + place in the row
    return kept_col[pos], count


def _sp(t: dict, fixed: dict) -> np.ndarray:
    """Sequence parallelism as each framework runs it: with tp > 1, except DeepSpeed (or as fixed)."""
    sp = (t["tp"] > 1) & (t["framework"] != T.DS)
    return np.full_like(sp, bool(fixed["sp"])) if "sp" in fixed else sp


MEMORY_THREADS = min(2, os.cpu_count() or 1)  # threads of the memory verdict pass
SPLIT_MIN = 8192  # fewest rows in a chunk that even_chunk splits off for a thread
MEMORY_CHUNK = 65_536  # rows per memory pass: bounds the peak memory of the largest searches
FIRST_BATCH = 2_048  # plans evaluated first, by best bound, to set the pruning threshold


def _verdict(ctx, t: dict) -> np.ndarray:
    return memory_verdict(ctx, t, memory.memory(ctx, t))[0]


def _ga_for_memory(t: dict) -> np.ndarray:
    """The accumulation steps as the memory model tells them apart (memory_tables.in_flight_ga; the
    plans of torchtitan, whose receive buffers read ga, keep theirs)."""
    from planner.estimate.memory_tables import in_flight_ga

    return np.where(t["framework"] == T.TT, T.wide(t["ga"]), in_flight_ga(t))


def _fits_memory(ctx, t: dict, layout=None, peaks: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(fits, peak): fits is True where the plan's memory verdict is fits or tight (GPU, host RAM and
    NVMe), evaluated in chunks; peak is the plan's most loaded pipeline rank where it fits (its ranks
    were all evaluated; evaluate_table reuses it), a lower rank elsewhere; None without `peaks` (the
    verdict may then come from bounds, memory_tables.fits_memory, and evaluate_table finds the peak
    of the plans it times).
    With several global batches, plans that differ only in an accumulation count the memory does
    not tell apart (_ga_for_memory) share one evaluation (the columns the verdict reads: _read_columns;
    `layout`, each row's layout in a layout-major table, finds them without sorting: _shared_rows).
    A plan whose most loaded rank so far is already out of memory (its optimistic total, the total
    over 1 + the band's upper error, above the GPU's memory: planner.estimate.evaluate.memory_verdict)
    stays so whatever its other ranks hold, so they are not evaluated."""
    from planner.estimate import memory_tables

    several = len(ctx.scenario.training.batches) > 1 and T.size(t)
    runs = _shared_runs(ctx, t, layout) if several and layout is not None and memory_tables.usable(ctx, t) else None
    if runs is not None:  # the term tables: their cells share the terms, this the per-plan passes
        rows, evaluated, back = runs
        got, got_peak = _fits_memory_rows(ctx, t, rows, peaks, layout)
        other = np.flatnonzero(~evaluated)
        del evaluated
        src = other - back()[other]  # the plan at the same place of the run it copies
        fits = np.empty(T.size(t), dtype=bool)
        fits[rows] = got
        fits[other] = fits[src]
        peak = None
        if got_peak is not None:
            peak = np.empty(T.size(t), dtype=got_peak.dtype)
            peak[rows] = got_peak
            peak[other] = peak[src]
        return fits, peak
    if several and not memory_tables.usable(ctx, t):
        shared = _shared_rows(ctx, t, layout) if layout is not None else None
        first, inverse = shared or _groups({**t, "ga": _ga_for_memory(t)}, _read_columns(_verdict, ctx))
        if len(first) < 0.8 * T.size(t):
            fits, peak = _fits_memory_rows(ctx, t, first, peaks)
            return fits[inverse], None if peak is None else peak[inverse]
    return _fits_memory_rows(ctx, t, None, peaks, layout)


def _shared_rows(ctx, t: dict, layout: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """_groups of the plans by the columns the verdict reads with ga as _ga_for_memory, in linear time:
    layouts equal but for ga (as the memory tells it apart) are grouped first (few rows), then each
    plan maps to the plan at the same position among its group's first layout's rows (layouts that
    differ only in ga have the same categorical choices: the framework rules do not read ga). Every
    plan is then checked to equal its representative in those columns (the layout columns are equal by
    the grouping; the choices are compared as one mixed-radix code); None (sort instead) if not."""
    n = T.size(t)
    ix = np.int32 if n < 2**31 else np.int64  # row indices (the largest searches: 4 bytes, not 8)
    change = T.changes(layout)
    starts = np.flatnonzero(change).astype(ix)  # first row of each layout's run of rows
    run = np.cumsum(change, dtype=ix) - 1  # the run of every row
    del change
    length = np.diff(np.append(starts, n)).astype(ix)
    heads = {k: v[starts] for k, v in t.items()}
    heads["framework"] = np.zeros(len(starts), dtype=np.int64)  # ga capped alike: torchtitan below
    heads["ga"] = _ga_for_memory(heads)
    lead, grp = _groups(heads, COLUMNS)
    first_run = lead[grp].astype(ix)  # the group's first layout run, for every run
    offset = np.arange(n, dtype=ix)
    offset -= starts[run]  # position of every row in its run
    titan = t["framework"] == T.TT  # own representatives (_ga_for_memory)
    # the representative lies in its group's first run (at the same position): where that run is as long
    same = titan | (offset < length[first_run][run])
    rep = offset + starts[first_run][run]
    np.copyto(rep, np.arange(n, dtype=ix), where=titan | ~same)
    code, _ = T.radix_code([t[k] for k in _read_columns(_verdict, ctx) if k not in COLUMNS], n)
    same &= code[rep] == code
    if not same.all():
        return None
    own = rep == np.arange(n, dtype=ix)
    return np.flatnonzero(own), (np.cumsum(own, dtype=ix) - 1)[rep]


def _shared_runs(ctx, t: dict, layout: np.ndarray) -> tuple[np.ndarray, np.ndarray, object] | None:
    """The plans of a several-batch table whose memory verdict _fits_memory evaluates, the others
    copying theirs, found per layout run (few) instead of per plan (_shared_rows): layouts equal but
    for ga as the memory tells it apart (_ga_for_memory) hold the same categorical choices in the same
    order when the framework rules do not read ga (_candidate_rows applies them per projection of the
    layouts on the columns they read), so each plan of such a layout's run has the verdict of the plan
    at the same place in the group's first run; torchtitan's plans keep their ga (_ga_for_memory) and
    are evaluated. Returns (rows evaluated, ascending; whether each row is; each row's distance back to
    the row it copies, 0 where evaluated: made when called, after the verdict, whose peak memory it
    would add to), or None (the rules read ga, or nothing is shared)."""
    if "ga" in _rule_columns(ctx.scenario.runtime):
        return None
    from planner.estimate.memory_tables import in_flight_ga

    n = T.size(t)
    starts = np.flatnonzero(T.changes(layout))  # first row of each layout run
    length = np.diff(starts, append=n)
    heads = {k: T.wide(t[k][starts]) for k in COLUMNS}
    heads["ga"] = in_flight_ga(heads)  # as _ga_for_memory for all but torchtitan (evaluated below)
    lead, grp = _groups(heads, COLUMNS)
    first = lead[grp]  # the group's first run (np.unique's first index), for every run
    own = first == np.arange(len(starts))
    if own.all() or not np.array_equal(length[first], length):
        return None
    evaluated = np.repeat(own, length)
    evaluated |= t["framework"] == T.TT
    ix = np.int32 if n < 2**31 else np.int64
    back = (starts - starts[first]).astype(ix)
    rows = np.flatnonzero(evaluated).astype(ix)  # held through the verdict: 4 bytes a row where they fit
    return rows, evaluated, functools.partial(np.repeat, back, length)


def _fits_memory_rows(ctx, t: dict, rows, peaks: bool = True, layout=None) -> tuple[np.ndarray, np.ndarray | None]:
    """_fits_memory of the rows `rows` of t (None: all), taken one chunk at a time, the chunks shared
    by MEMORY_THREADS threads (numpy releases the interpreter lock in its array loops; each chunk's
    numbers are its own, so the result does not depend on the threads). The verdicts come from term
    tables where they can (planner.estimate.memory_tables: the same numbers, fewer evaluations;
    `layout`, each row's layout, marks their layout runs)."""
    from planner.estimate import memory_tables

    if memory_tables.usable(ctx, t):
        return memory_tables.fits_memory(ctx, t, rows, _in_chunks, MEMORY_CHUNK, peaks, layout)
    n = T.size(t) if rows is None else len(rows)
    out, peak = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int16)
    capacity = ctx.gpu.memory_gib * memory.GIB

    def chunk(lo: int) -> None:
        pick = slice(lo, lo + MEMORY_CHUNK) if rows is None else rows[lo:lo + MEMORY_CHUNK]
        part = T.take(t, pick)
        hi = bands.band_arrays("memory", ctx.model.moe is not None, part)[1]
        oom = lambda total, idx: total / (1 + hi[idx]) > capacity  # noqa: E731
        mem = memory.memory(ctx, part, oom, verdict_only=True)
        out[lo:lo + MEMORY_CHUNK] = memory_verdict(ctx, part, mem)[0] < 2
        peak[lo:lo + MEMORY_CHUNK] = mem["stage"]

    _in_chunks(chunk, n)
    return out, peak


def _in_chunks(chunk, n: int, size: int | None = None) -> None:
    """chunk(lo) for lo = 0, size, ... below n (size: MEMORY_CHUNK unless given), shared by MEMORY_THREADS
    threads."""
    starts = range(0, n, size or MEMORY_CHUNK)
    if MEMORY_THREADS > 1 and len(starts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(MEMORY_THREADS, len(starts))) as pool:
            list(pool.map(chunk, starts))  # list: re-raises a chunk's error here
    else:
        for lo in starts:
            chunk(lo)


def even_chunk(n: int) -> int:
    """Rows per chunk of _in_chunks over n rows whose chunks are independent: MEMORY_CHUNK, or n split
    evenly between the threads where it is below MEMORY_THREADS x MEMORY_CHUNK (at least SPLIT_MIN rows a
    chunk): DeepSeek-V3 / 2,048's 84,937 bound groups took a chunk of 65,536 and one of 19,401, one thread
    busy three times as long as the other, and its 33,406 layer costs one chunk, one thread. Wall time
    only: each chunk's numbers are its own."""
    if MEMORY_THREADS < 2 or n >= MEMORY_THREADS * MEMORY_CHUNK:
        return MEMORY_CHUNK
    return max(-(-n // MEMORY_THREADS), SPLIT_MIN)


def _read_columns(fn, ctx) -> tuple[str, ...]:
    """The plan columns `fn(ctx, table)` reads (found by running it on a one-row recording table),
    found once per context and function (kept in ctx.__dict__, as functools.cached_property stores
    on a frozen dataclass)."""
    found = ctx.__dict__.setdefault("_read_columns", {})
    if fn not in found:
        found[fn] = _record_columns(fn, ctx)
    return found[fn]


def _record_columns(fn, ctx) -> tuple[str, ...]:
    """_read_columns, uncached."""
    one = {k: np.ones(1, dtype=np.int64) for k in (*COLUMNS, *T.CATEGORICAL, "zero")}
    return tuple(sorted(T.read_keys(lambda r: fn(ctx, r), {**one, "sp": np.zeros(1, dtype=bool)})))


def _groups(t: dict, cols: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `t` that differ in `cols`: (one row index per distinct value, group of every row).
    The columns are packed into one integer key (mixed radix of each column's codes)."""
    key, span = np.zeros(T.size(t), dtype=np.int64), 1
    for k in cols:
        col = t[k].astype(np.int64)
        lo, hi = (int(col.min()), int(col.max())) if len(col) else (0, 0)
        if lo >= 0 and span * (hi + 1) < 2**62:  # the values themselves are the digits
            key, span = key * (hi + 1) + col, span * (hi + 1)
        else:
            values, codes = np.unique(col, return_inverse=True)
            key, span = key * len(values) + codes.reshape(-1), span * len(values)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def _prunable(scenario, objective: str) -> bool:
    """The bound prunes when every objective's score is a positive multiple of (tight penalty x
    tokens/s) within one node count and the feasible count needs no time: no days or dollar budget,
    and a price when ranking by cost."""
    b = scenario.budget
    return (b.max_days is None and b.max_usd is None
            and not (objective == "cost" and scenario.cluster.node.usd_per_gpu_hour is None))


def _evaluate_best(ctx, t: dict, keep: int, peak=None, heads=None) -> tuple[np.ndarray, dict] | None:
    """(rows, estimates) of every plan of `t` that can take one of the first `keep` places of the
    ranking (planner.search.rank.order), by branch and bound (bounded_rows), each chunk of rows
    evaluated here; None as bounded_rows returns it. `heads`: the first row of each layout run of t
    (_fitting_plans), or None."""
    lb, refine = search_bound(ctx, t, heads)
    search = bounded_rows(t, lb, ctx.seq_len, keep, FIRST_BATCH, refine, heads)
    try:
        rows = next(search)
        while True:
            ev, fit = evaluate_fitting(ctx, T.take(t, rows), None if peak is None else peak[rows])
            rows = search.send((ev, fitting_rows(fit, len(rows))))
    except StopIteration as done:
        return done.value


def fitting_rows(fit: np.ndarray, n: int) -> np.ndarray:
    """Where each of n evaluated plans is in evaluate_fitting's estimates (`fit`: the rows it timed), -1
    for a plan out of memory (bounded_rows skips it)."""
    at = np.full(n, -1, dtype=np.int64)
    at[fit] = np.arange(len(fit))
    return at


def bounded_rows(t: dict, lb: np.ndarray, seq_len: int, keep: int, first: int, refine=None, heads=None,
                 order=None):
    """The branch and bound of _evaluate_best as a generator, so that a caller may evaluate the chunks
    of several searches in one call (planner.purchase_search): yields the rows of `t` to evaluate and
    is sent (estimates, index), the evaluate_table result of a table holding those rows at `index`
    (-1: a plan out of memory, left out of the estimates: evaluate_fitting, fitting_rows);
    returns (rows, estimates) of the plans that can take one of the first `keep` places, or None.
    Plans are taken highest bound (tokens per step / step lower bound `lb`) first, `first` of them
    in the first chunk; after each chunk the keep-th best score found among the plans that fit (tight
    penalty x tokens/s), divided by the tie band TIE, is the threshold, and the search stops when no
    plan left has a bound that reaches it. A plan left out scores below every tie band of the first
    `keep` places, under any objective (each is a positive multiple of that score within one node
    count), and below the fastest plan (the Pareto front); the plans kept do not depend on the chunks.
    None when an evaluated plan's step time is below its bound (a model change broke the bound), or
    when nothing fits (the caller evaluates every plan for the explanation).
    `refine(rows)`, when given, returns a tighter lower bound of those rows' steps, applied (to `lb`, in
    place) to each chunk before it is evaluated: plans are taken in the order of the first bound, the
    stopping rule reads it for the plans not yet taken, and a plan the tighter bound puts below the
    threshold is skipped, and so is a plan whose first bound is below it, unrefined (a chunk's rows past
    the stopping point: 57% of the 1.2M plans the compare of report_scenarios/purchases_range.yaml takes);
    every bound being valid, the plans kept are the same. `heads` (optional): the
    first row of each layout run of t (bound_order). `order` (optional): bound_order(t, lb, seq_len,
    heads) already made by the caller (planner.purchase_search reads its first rows beforehand; its
    sort then goes on from there: the same order)."""
    tokens, ub, by_bound = order if order is not None else bound_order(t, lb, seq_len, heads)
    done, parts, scores = 0, [], np.array([])
    chunk = max(first, 4 * keep)
    threshold = 0.0
    while done < len(by_bound) and ub[by_bound[done]] >= threshold * (1 - 1e-9):
        rows = by_bound[done:done + chunk]
        if refine is not None:  # a tighter bound of the rows taken (the order stays the first bound's)
            rows = rows[ub[rows] >= threshold * (1 - 1e-9)]  # not those the first bound already leaves out
            lb[rows] = np.maximum(lb[rows], refine(rows))
            ub[rows] = tokens[rows] / lb[rows]
        rows = rows[ub[rows] >= threshold * (1 - 1e-9)]
        ev, at = yield rows
        if np.any(at < 0):  # out of memory, not timed (fitting_rows): such a plan scores nothing
            rows, at = rows[at >= 0], at[at >= 0]
        verdict, tps = ev["verdict"][at], ev["tokens_per_s"][at]
        if np.any(ev["step_s"][at] < lb[rows] * (1 - 1e-9)):
            return None
        score = np.where(verdict < 2, tps * np.where(verdict == 1, TIGHT_PENALTY, 1.0), -np.inf)
        scores = np.concatenate([scores, score[score > -np.inf]])
        if len(scores) >= keep:
            threshold = np.partition(scores, len(scores) - keep)[len(scores) - keep] / TIE
            scores = scores[scores >= threshold * (1 - 1e-9)]  # still holds the keep best
        # Dropped: plans that do not fit, and those whose tokens/s (penalty or not) cannot reach the
        # threshold: the fastest plan (the Pareto front) always stays.
        fast = np.where(verdict < 2, tps, -np.inf)
        mine = fast >= threshold * (1 - 1e-9)
        parts.append((rows[mine], fast[mine], _take_ev(ev, at[mine])))  # not the whole call's arrays
        done += chunk
        chunk = min(4 * chunk, MEMORY_CHUNK)  # bounded: the memory of one evaluation
    keepers = [(r[s >= threshold * (1 - 1e-9)], _take_ev(e, s >= threshold * (1 - 1e-9)))
               for r, s, e in parts if np.any(s >= threshold * (1 - 1e-9))]
    if not keepers:
        return None
    rows, ev = keepers[0]
    for more_rows, more in keepers[1:]:
        rows, ev = np.concatenate([rows, more_rows]), _concat(ev, more)
    back = np.argsort(rows, kind="stable")  # table order: ties rank as in the full table
    return rows[back], _take_ev(ev, back)


def bound_order(t: dict, lb: np.ndarray, seq_len: int, heads=None) -> tuple:
    """(tokens per step, their upper bound of tokens/s: tokens / step lower bound `lb`, the rows
    highest bound first, ties in table order), the order bounded_rows takes the plans in. `heads`
    (optional): the first row of each layout run of t (solver._fitting_plans); dp, mbs and ga are
    layout columns, equal on a run's rows, so the tokens are computed once per run and read per run
    (the same int64 numbers; tokens is then indexable by rows, not an array of every row)."""
    at = slice(None) if heads is None else heads
    tokens = np.multiply(t["dp"][at], t["mbs"][at], dtype=np.int64)  # int64 arithmetic, no widened copies
    tokens *= t["ga"][at]
    tokens *= seq_len
    if heads is None:
        ub = tokens / lb
        return tokens, ub, ByBound(ub)
    # per run: no array of every row's tokens beside ub (the 131,072-GPU range: 46 MB at the search's
    # peak); ub as tokens / lb, the int64 tokens converted to float64 as the division converts them
    ub = np.repeat(tokens.astype(np.float64), np.diff(heads, append=len(lb)))
    ub /= lb
    return _RunValues(tokens, heads), ub, ByBound(ub)


class _RunValues:
    """An array of one value per layout run (`values`; `heads`: each run's first row, ascending) as
    indexing by rows reads it."""

    def __init__(self, values: np.ndarray, heads: np.ndarray):
        self.values, self.heads = values, heads

    def __getitem__(self, rows):
        return self.values[np.searchsorted(self.heads, rows, side="right") - 1]


def _concat(a, b):
    """Two evaluate_table results (nested dicts of per-plan arrays and scalars) as one."""
    if isinstance(a, dict):
        return {k: _concat(a[k], b[k]) for k in a}
    return np.concatenate([a, b]) if np.ndim(a) else a


def _take_ev(ev, rows):
    if isinstance(ev, dict):
        return {k: _take_ev(v, rows) for k, v in ev.items()}
    return ev[rows] if np.ndim(ev) else ev


def _search_one(scenario, exhaustive: bool, objective: str | None = None, keep: int | None = None,
                counts: bool = True, prepared: dict | None = None) -> dict:
    """Every valid plan of a single-count scenario, ranked where feasible. With `keep`, only the
    plans that can take one of the first `keep` places are timed (an exact bound, _evaluate_best);
    with `counts`, every plan's memory verdict is evaluated first, for the exact numbers of plans that
    fit (`fits_memory`) and are feasible (`feasible_count`); without, those are None and only the
    timed plans' memory is evaluated. `prepared` (planner.purchase_search: many node counts searched
    together): this scenario's candidate table, its size before the rules, and _evaluate_best's result
    on it for `keep` places, computed elsewhere."""
    ctx = Context(scenario, all_ranks=exhaustive)
    if prepared is None:
        t, considered, layout = _candidate_rows(scenario, exhaustive, compact=True)
    else:
        t, considered, layout = prepared["t"], prepared["considered"], None
    out = {"ctx": ctx, "t": t, "considered": considered, "valid": T.size(t), "ev": None,
           "ranked": np.array([], dtype=np.int64), "fits_memory": 0, "feasible_count": 0}
    if not T.size(t):
        return out
    objective = objective or scenario.objective
    b = scenario.budget
    prune = keep is not None and _prunable(scenario, objective)
    counts = counts or not prune or b.max_gpus is not None
    # the peak rank of every fitting plan only when every fitting plan is timed (no bound prunes)
    fits, peak = _fits_memory(ctx, t, layout, not prune) if counts else (np.ones(T.size(t), dtype=bool), None)
    n_fit = int(fits.sum())
    # the plans to time (all when nothing fits), still compact; the rows found once, then gathered per
    # column (a boolean mask would be scanned again for every column)
    keep_rows = np.flatnonzero(fits) if counts and n_fit else None
    pool, heads = (t, None) if keep_rows is None else _fitting_plans(t, keep_rows, layout)
    layout = None
    peak = peak[fits] if peak is not None and n_fit and not exhaustive else None  # exhaustive: memory evaluated anew
    del keep_rows
    out["t"] = t = None  # only the pool is kept: the largest searches hold one table, not two
    if n_fit and prune:
        reuse = prepared is not None and not counts and prepared["keep"] == keep
        best = prepared["best"] if reuse else _evaluate_best(ctx, pool, keep, peak, heads)
    else:
        best = None
    if best is not None:
        rows, ev = best
        t = T.take(pool, rows)
    else:
        t = T.take(pool, slice(None))
        ev = evaluate_table(ctx, t, peak)
    ok = ev["verdict"] < 2
    within = ok.copy()
    if b.max_days is not None:
        within &= ev["days"] <= b.max_days
    if b.max_usd is not None:
        within &= np.nan_to_num(ev["cost_usd"], nan=np.inf) <= b.max_usd
    if b.max_gpus is not None:
        within &= ev["gpus"] <= b.max_gpus
    feasible = np.flatnonzero(within)
    if not counts:
        n_fit, count = None, None
    elif best is None:
        count = int(feasible.size)
    else:
        count = n_fit if b.max_gpus is None or scenario.cluster.gpus <= b.max_gpus else 0
    if not counts and not ok.any():  # nothing timed fits: then nothing fits (see _evaluate_best)
        n_fit, count = 0, 0
    out.update(t=t, ev=ev, ok=ok, feasible=feasible, fits_memory=n_fit, feasible_count=count)
    return out


def _total(values) -> int | None:
    """Sum of per-count statistics, None when one is unknown (solve with counts=False)."""
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def batch_choice(scenario, best: dict, merged: dict, ranked: np.ndarray, known: int) -> dict:
    """The chosen global batch, the allowed ones and why: the best plan's pipeline bubble and DP sync
    shares of the step and, with several batches, how the best plan of the next larger batch compares.
    Only the first `known` ranked plans are certain to be evaluated (the rest may be pruned), so
    the best tokens/s by batch are those of the batches found among them."""
    tr = scenario.training
    gb = best["plan"]["global_batch"]
    step = best["time"]["step_s"]
    parts = best["time"]["breakdown_s"]
    why = (f"a batch of {gb:,} ({gb * tr.seq_len:,} tokens per step) leaves the pipeline bubble at "
           f"{parts.get('pp_bubble', 0.0) / step:.1%} and the data-parallel sync at {parts.get('dp_comm', 0.0) / step:.1%} "
           "of the step")
    out = {"chosen": gb, "allowed": list(tr.batches) if len(tr.batches) <= 64 else tr.batch_text, "why": why}
    if len(tr.batches) > 1:
        head = ranked[:known]
        best_at: dict[int, float] = {}
        for b, v in zip(merged["global_batch"][head].tolist(), merged["tokens_per_s"][head].tolist()):
            best_at.setdefault(int(b), float(v))
        tps = best["throughput"]["tokens_per_s"]
        larger = [b for b in tr.batches if b > gb and b in best_at]
        if not any(b > gb for b in tr.batches):
            note = "it is the largest batch allowed"
        elif not larger:
            note = f"no plan with a larger batch ranks among the best {known:,}"
        elif best_at[larger[0]] < tps:
            note = f"the best plan at {larger[0]:,} is {1 - best_at[larger[0]] / tps:.1%} slower"
        else:
            note = f"the best plan at {larger[0]:,} ranks below it (memory verdict or the 1% tie rule)"
        out["why"] = f"{why}; {note} (allowed: {tr.batch_text})"
        out["best_tokens_per_s_by_batch"] = {f"{b}": round(v, 3) for b, v in sorted(best_at.items())}
    return out


def _keys(run: dict, rows: np.ndarray) -> dict:
    ev, t = run["ev"], run["t"]
    keys = {k: ev[k][rows] for k in ("tokens_per_s", "days", "cost_usd", "verdict")}
    keys.update({k: t[k][rows] for k in ("pp", "cp", "vpp", "ep", "offload", "offload_params")})
    keys["memory_total"] = ev["memory"]["total"][rows]
    keys["global_batch"] = t["dp"][rows] * t["mbs"][rows] * t["ga"][rows]
    return keys


def feasible_points(merged: dict, gpus: np.ndarray) -> dict:
    """Numbers of every evaluated feasible plan for the report's charts (numpy arrays, not JSON):
    tokens/s, days, cost (NaN without a price), GPU-hours = days x 24 x GPUs, memory per GPU (GiB)."""
    from planner.estimate.memory import GIB

    return {"tokens_per_s": merged["tokens_per_s"], "days": merged["days"], "cost_usd": merged["cost_usd"],
            "gpu_hours": merged["days"] * 24.0 * gpus, "memory_gib": merged["memory_total"] / GIB, "gpus": gpus}


def solve(scenario, objective: str | None = None, top: int | None = None, exhaustive: bool = False,
          progress=None, counts: bool = True, strict: bool = False, points: bool = False,
          prepared: dict | None = None) -> dict:
    """Search the scenario's plan space (every node count of the cluster) and return the ranked
    feasible plans, the Pareto front of (days, cost) across node counts, and search statistics.
    When nothing is feasible, `closest` and `explanation` say why (planner.search.explain).
    `counts=False` skips the memory verdict of plans that cannot rank (`fits_memory` and `feasible`
    are then None where not known): for callers that only want the best plans.
    strict: rank by the objective alone (planner.search.rank); else each plan's `preferred` says
    when the tie band or the tight penalty put it above a plan better by the objective.
    points: also return `points` (feasible_points: the feasible plans the search timed), for the
    HTML report; remove it before JSON.
    prepared: for a single node count, the search's table and bounded evaluation done elsewhere
    (_search_one; planner.purchase_search)."""
    from planner.search.explain import bound_by, explain_infeasible

    t0 = time.perf_counter()
    objective = objective or scenario.objective
    top = top or scenario.top
    node_counts = scenario.cluster.node_counts
    runs = []
    for n in node_counts:
        sc = scenario.model_copy(update={"cluster": scenario.cluster.with_nodes(n)})
        runs.append((sc, _search_one(sc, exhaustive, objective, None if exhaustive else top, counts,
                                     prepared if len(node_counts) == 1 else None)))
        if progress:
            progress(len(runs), len(node_counts))
    # Merge the feasible plans of every count and rank them together.
    # Every feasible plan of every count, as (run index, row) pairs in two arrays.
    live = [i for i, (_, run) in enumerate(runs) if run["ev"] is not None]
    pool_run = np.concatenate([np.full(len(runs[i][1]["feasible"]), i) for i in live]) if live else np.array([], int)
    pool_row = np.concatenate([runs[i][1]["feasible"] for i in live]) if live else np.array([], int)
    per_run = [_keys(run, run["feasible"]) for _, run in runs if run["ev"] is not None]
    merged = {k: np.concatenate([keys[k] for keys in per_run]) for k in per_run[0]} if per_run else {}
    ranked = order(merged, objective, places=top, strict=strict) if len(pool_row) else np.array([], dtype=np.int64)
    rows = lambda idx: [result_row(runs[pool_run[j]][1]["ctx"], runs[pool_run[j]][1]["t"],  # noqa: E731
                                   runs[pool_run[j]][1]["ev"], int(pool_row[j])) for j in idx]
    plans = rows(ranked[:top])
    for p, j, why in zip(plans, ranked[:top], preferred(merged, objective, ranked, top) if len(pool_row) else []):
        p["gpus"] = runs[pool_run[j]][0].cluster.gpus
        p["preferred"] = why
        p["bound_by"] = bound_by(p)
    result = {"scenario": scenario.name, "objective": objective, "ranking": ranking_rule(strict),
              "gpus": node_counts[0] * scenario.cluster.node.gpus_per_node if len(node_counts) == 1 else
              [n * scenario.cluster.node.gpus_per_node for n in node_counts],
              "node_counts": node_counts, "exhaustive": exhaustive,
              "considered": sum(run["considered"] for _, run in runs),
              "valid": sum(run["valid"] for _, run in runs),
              "fits_memory": _total(run["fits_memory"] for _, run in runs),
              "feasible": _total(run["feasible_count"] for _, run in runs), "plans": plans, "closest": None, "explanation": []}
    if len(node_counts) > 1 and len(pool_row):
        front = np.flatnonzero(pareto_mask(merged["days"], merged["cost_usd"]))
        front = front[np.argsort(merged["days"][front])]
        result["pareto"] = [{"gpus": runs[pool_run[j]][0].cluster.gpus, "days": float(merged["days"][j]),
                             "cost_usd": None if np.isnan(merged["cost_usd"][j]) else float(merged["cost_usd"][j]),
                             "plan": r["plan"], "tokens_per_s": r["throughput"]["tokens_per_s"]}
                            for j, r in zip(front, rows(front))]
    if plans:
        result["batch"] = batch_choice(scenario, plans[0], merged, ranked, top)
    if points and len(pool_row):
        result["points"] = feasible_points(merged, np.array([sc.cluster.gpus for sc, _ in runs])[pool_run])
    if not plans:
        result["closest"], result["reasons"], fix_lines = explain_infeasible(scenario, runs, objective)
        result["explanation"] = result["reasons"] + fix_lines  # the console's lines: reasons, then the fixes
    result["seconds"] = time.perf_counter() - t0
    return result
