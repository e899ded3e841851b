"""The step-time lower bound the search prunes with (planner.search.bound): below every plan's step,
built on a stage time that does not grow with ga, and grouped exactly as sorting would group."""

import numpy as np
import pytest

from planner.estimate import compute
from planner.estimate import table as T
from planner.estimate.evaluate import Context, evaluate_table, layer_units, stage_time
from planner.search import bound
from planner.search.solver import _groups, _read_columns, candidate_table

from test_memory import scenario

CASES = [
    # dense, several batches (groups hold several ga), H100: power-limited clocks
    dict(model="llama-3.1-8b", node="hgx-h100", nodes=2, gb=[32, 64, 128]),
    # MoE with the EP-overlap schedule (ga in the warm-up share) and FP8 (weight casts once per step)
    dict(model="mixtral-8x7b", node="hgx-h100", nodes=2, gb={"min": 16, "max": 64, "step": 16},
         runtime={"ep_comm_overlap": True}),
    # a GPU without a sustained-clock figure (A100): the bound is the stage time itself
    dict(model="qwen2.5-32b", node="dgx-a100-80gb", nodes=2, gb=[64, 96]),
    # sliding-window layers (full and windowed attention apart per stage)
    dict(model="gpt-oss-20b", node="hgx-h100", nodes=2, gb=[32, 64]),
]


@pytest.mark.parametrize("kw", CASES)
def test_step_lower_bound_is_below_every_plans_step(kw):
    sc = scenario(**kw)
    t, _ = candidate_table(sc)
    ctx = Context(sc)
    assert bool(ctx.gpu.sustained_tensor_fraction) == (kw.get("node") != "dgx-a100-80gb")  # both branches run
    lb = bound.step_lower_bound(ctx, t)
    step = evaluate_table(ctx, t)["step_s"]
    assert np.all(lb > 0) and np.all(step >= lb * (1 - 1e-12))
    # groups hold several accumulations where several batches are allowed (the ga-free path runs)
    cols = tuple(k for k in _read_columns(bound.stage_lower_bound, ctx) if k != "ga")
    assert len(bound.stage_groups(t, cols)[0]) < len(_groups(t, cols + ("ga",))[0])
    # below the pipeline step over each plan's own stage bound, and equal to it exactly where the
    # plan's ga is its group's largest (the module docstring: evaluated at the group's largest ga)
    exact = _own_pipeline_step(ctx, t)
    tight = _at_group_top_ga(t, cols)
    assert tight.any() and (~tight).any()
    assert np.all(lb <= exact * (1 + 1e-12))
    np.testing.assert_allclose(lb[tight], exact[tight], rtol=1e-12, atol=0)
    # the search's first bound (one stage evaluation at the lowest clock) is below it, and refine
    # gives it back row by row
    first_lb, refine = bound.search_bound(ctx, t)
    if ctx.gpu.sustained_tensor_fraction:
        assert np.all(first_lb <= lb * (1 + 1e-12)) and np.any(first_lb < lb * (1 - 1e-6))
        rows = np.arange(0, T.size(t), 7)
        assert np.allclose(refine(rows), lb[rows], rtol=1e-12)
        # compute at the burst clock is at least the sustained fraction x compute at the lowest clock
        s = ctx.gpu.sustained_tensor_fraction
        fast, slow = (stage_time(ctx, {**t, "tensor_clock": np.full(T.size(t), c)})[1] for c in (1.0, s))
        busy = lambda c: c["forward"] + c["backward"] + c["recompute"]  # noqa: E731
        assert np.all(busy(fast) >= s * busy(slow) * (1 - 1e-12))
    else:
        assert refine is None and np.array_equal(first_lb, lb)


def _own_pipeline_step(ctx, t):
    """The pipeline step over each plan's own stage lower bound (evaluated at the plan's own ga)."""
    from planner.estimate import pipeline

    return pipeline.pipeline_step_s(t, bound.stage_lower_bound(ctx, t))


def _at_group_top_ga(t, cols):
    """True where a plan's ga is the largest of the plans equal to it in `cols` (found here with
    np.unique and np.maximum.at, not with bound.group_max)."""
    key = np.stack([T.wide(t[k]).astype(np.int64) for k in cols], axis=1)
    _, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    ga = T.wide(t["ga"])
    top = np.zeros(inverse.max() + 1, dtype=ga.dtype)
    np.maximum.at(top, inverse, ga)
    return ga == top[inverse]


@pytest.mark.parametrize("kw", [dict(model="llama-3.1-8b", node="hgx-h100", nodes=2, gb=64),
                                dict(model="mixtral-8x7b", node="dgx-a100-80gb", nodes=2, gb=32,
                                     runtime={"ep_comm_overlap": True})])
def test_one_batch_bound_is_the_stage_bounds_pipeline_step(kw):
    """One global batch: ga follows from dp and mbs, every group holds one ga, and the bound is the
    pipeline step over each plan's own stage bound, for every plan (module docstring); the stage
    bound is the stage time itself on a GPU without a sustained-clock figure."""
    sc = scenario(**kw)
    t, _ = candidate_table(sc)
    ctx = Context(sc)
    lb = bound.step_lower_bound(ctx, t)
    np.testing.assert_allclose(lb, _own_pipeline_step(ctx, t), rtol=1e-12, atol=0)
    assert np.all(evaluate_table(ctx, t)["step_s"] >= lb * (1 - 1e-12))
    if not ctx.gpu.sustained_tensor_fraction:
        np.testing.assert_array_equal(bound.stage_lower_bound(ctx, t), stage_time(ctx, t)[0])


@pytest.mark.parametrize("kw", CASES)
def test_shared_layer_units_equal_per_row_ones(kw):
    """The bound's stage times from layer units evaluated once per distinct value of the columns they
    read (bound._shared_units) equal those evaluated row by row (the same numbers, not close ones)."""
    sc = scenario(**kw)
    t, _ = candidate_table(sc)
    ctx = Context(sc)
    first, inverse, ga_top = bound._groups_at_top_ga(ctx, t)
    units = bound.stage_groups(t, bound._reads(layer_units, ctx))[0]
    assert len(units) < len(first)  # the units are shared
    # and their parts (the compute costs, the communication with its EP dispatch) more widely still
    for fn in (compute.layer_costs, bound._comm_of_columns):
        cols = bound._reads(fn, ctx)
        assert len(bound.stage_groups(T.take(t, units), cols)[0]) < len(units)
    s = ctx.gpu.sustained_tensor_fraction
    fn = bound.slow_clock_stage_bound if s else bound.stage_lower_bound
    rows = bound._group_rows(ctx, t, first, ga_top)
    shared = bound._per_group(ctx, fn, rows, bound._shared_units(ctx, rows, bound.units_clock(ctx)))
    assert np.array_equal(shared, bound._per_group(ctx, fn, rows))


@pytest.mark.parametrize("kw", CASES[:2])
def test_stage_time_does_not_grow_with_accumulation(kw):
    """What the bound rests on: the stage time (and the clock-bounded stage time) at a larger ga is
    never above the one at a smaller ga, for every plan of the table, ga times 2, 3 and 8."""
    sc = scenario(**kw)
    t, _ = candidate_table(sc)
    ctx = Context(sc)
    megatron = T.wide(t["framework"]) == T.FRAMEWORKS.index("megatron")
    fp8 = T.wide(t["precision"]) == T.PRECISIONS.index("fp8")
    assert (megatron & fp8).any()  # FP8 weight casts once per step (and the EP-overlap share) read ga
    base, base_lb = stage_time(ctx, t)[0], bound.stage_lower_bound(ctx, t)
    for f in (2, 3, 8):
        more = {**t, "ga": t["ga"] * f}
        assert np.all(stage_time(ctx, more)[0] <= base * (1 + 1e-12))
        assert np.all(bound.stage_lower_bound(ctx, more) <= base_lb * (1 + 1e-12))
    # ga does change it (the test would see a term that grew)
    assert np.any(stage_time(ctx, {**t, "ga": t["ga"] * 8})[0] < base * (1 - 1e-9))


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Two group labellings of the same rows describe the same partition."""
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


@pytest.mark.parametrize("span", [1 << 22, 64])  # 64: renumbered after almost every column
@pytest.mark.parametrize("layout_major", [False, True])  # True: a and d grouped on their runs first
@pytest.mark.parametrize("small", [False, True])  # True: b, tp, f coded in one int16 pass (_small_code)
def test_stage_groups_equal_sorting(monkeypatch, span, layout_major, small):
    monkeypatch.setattr(bound, "DENSE_SPAN", span)
    rng = np.random.default_rng(7)
    n = 5000
    t = {"a": rng.integers(0, 3, n).astype(np.int8), "b": rng.integers(0, 2, n).astype(bool),
         "tp": rng.choice([1, 4096, 65536], n).astype(np.int32),  # large values: coded by lookup
         "c": rng.integers(-5, 5, n).astype(np.int16),  # negative values: coded by sorting
         "d": rng.integers(0, 50, n).astype(np.int64)}
    if small:  # the columns that change often are all in [0, 64)
        t = {"a": t["a"], "b": t["b"], "tp": rng.integers(0, 64, n).astype(np.int8),
             "f": rng.integers(2, 4, n).astype(np.int32), "d": t["d"]}
    if layout_major:
        order = np.lexsort((t["a"], t["d"]))
        t = {k: v[order] for k, v in t.items()}
    first, inverse = bound.stage_groups(t, tuple(t))
    ref_first, ref_inverse = _groups(t, tuple(t))
    assert len(first) == len(ref_first) and _same_partition(inverse, ref_inverse)
    assert np.all(inverse[first] == np.arange(len(first)))  # each group's row lies in the group
    top = bound.group_max(inverse, len(first), t["d"])
    want = np.full(len(first), -1)
    for g, v in zip(inverse, t["d"]):
        want[g] = max(want[g], v)
    assert np.array_equal(top, want)


def test_empty_table():
    sc = scenario(model="llama-3.1-8b", node="hgx-h100", nodes=1, gb=8)
    t, _ = candidate_table(sc)
    empty = {k: v[:0] for k, v in t.items()}
    assert bound.step_lower_bound(Context(sc), empty).shape == (0,)
    assert bound.search_bound(Context(sc), empty)[0].shape == (0,)



@pytest.mark.parametrize("kw", CASES[:2])
def test_layout_runs_give_the_same_plans_and_groups(kw):
    """solver._fitting_plans (layout columns repeated over the layout runs the rows keep) gives the
    arrays of a row-by-row gather, and stage_groups told those runs (`heads`) the groups it finds
    column by column, numbered alike."""
    from planner.search.solver import _candidate_rows, _fitting_plans

    sc = scenario(**kw)
    ctx = Context(sc)
    t, _, layout = _candidate_rows(sc, compact=True)
    rows = np.flatnonzero(np.random.default_rng(3).random(len(layout)) < 0.6)  # plans kept, as the memory keeps some
    pool, heads = _fitting_plans(t, rows, layout)
    assert set(pool) == set(t)
    for k, v in t.items():
        assert pool[k].dtype == v.dtype and np.array_equal(pool[k], v[rows])
    assert len(rows) > 4096 and 1 < len(heads) < len(rows) / 8  # runs are found from them (stage_groups)
    cols = bound._ga_free_columns(ctx)
    got, want = bound.stage_groups(pool, cols, heads), bound.stage_groups(pool, cols)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert len(want[0]) < len(rows)


@pytest.mark.parametrize("n, span", [(3000, 50), (3000, 3000 * bound.SPARSE + (1 << 20)), (0, 1 << 21)])
def test_dense_ids_number_keys_as_sorting(n, span):
    """bound._dense_ids numbers the keys present in key order (np.unique's inverse), through a presence
    table where the span is dense and by sorting where it is wide (the second case)."""
    key = np.random.default_rng(5).integers(0, span, n)
    ids, count = bound._dense_ids(key, span)
    values, inverse = np.unique(key, return_inverse=True)
    assert count == len(values) and np.array_equal(ids, inverse.reshape(-1))


def test_even_chunks_give_the_same_bound(monkeypatch):
    """The bound's per-value and per-group passes split their rows evenly between the threads where they
    are fewer than two full chunks (solver.even_chunk): the same bounds as with chunks of MEMORY_CHUNK."""
    from planner.search import solver

    sc = scenario(model="mixtral-8x7b", node="hgx-h100", nodes=2, gb=[32, 64, 128])
    t, _, _ = solver._candidate_rows(sc, compact=True)
    monkeypatch.setattr(solver, "MEMORY_THREADS", 2)
    monkeypatch.setattr(solver, "SPLIT_MIN", 16)
    sizes = []
    even = solver.even_chunk
    monkeypatch.setattr(solver, "even_chunk", lambda n: sizes.append((n, even(n))) or even(n))
    want = bound.search_bound(Context(sc), t)[0]
    assert any(n > size for n, size in sizes)  # some pass took two chunks
    monkeypatch.setattr(solver, "even_chunk", lambda n: solver.MEMORY_CHUNK)
    assert np.array_equal(bound.search_bound(Context(sc), t)[0], want)


@pytest.mark.parametrize("kw", [CASES[0], CASES[1], CASES[3],
                                dict(model="llama-3.1-70b", node="hgx-h100", nodes=4, gb=[64, 128],
                                     search={"cp": [1, 2, 4]})])  # context parallel: the CP ring at burst
def test_refine_reuses_the_first_bounds_exposed_communication(kw, monkeypatch):
    """search_bound's refine takes each stage's exposed communication at the lowest clock from the first
    bound's evaluation (slow_clock_stage_bound) instead of evaluating it again, and the layers'
    communication at the burst clock from the lowest clock's units (all but the CP ring, which reads the
    attention seconds: comm.with_attention): the same bounds, bit for bit, as stage_lower_bound evaluating
    both clocks from the plans' columns alone."""
    sc = scenario(**kw)
    t, _ = candidate_table(sc)
    ctx = Context(sc)
    rows = np.arange(0, T.size(t), 3)
    kept = bound.search_bound(ctx, t)[1](rows)
    calls = []
    plain = bound.stage_lower_bound
    monkeypatch.setattr(bound, "stage_lower_bound",
                        lambda c, r, units=None, exposed=None: (calls.append(exposed is not None), plain(c, r))[1])
    again = bound.search_bound(ctx, t)[1](rows)
    assert True in calls  # the cached path was the one replaced (False: the one-row recording of the columns read)
    np.testing.assert_array_equal(kept, again)
