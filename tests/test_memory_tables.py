"""The memory verdict from term tables (planner.estimate.memory_tables) equals the reference (a stage
evaluation per plan and candidate rank, memory.memory): every rank's total bit for bit, and the
verdict and peak rank of every plan, on random plan tables of several models and on the plan tables
of shipped scenarios."""

from pathlib import Path

import numpy as np
import pytest

from planner import catalog
from planner.estimate import memory, memory_ranks, memory_tables, table
from planner.estimate.evaluate import Context
from planner.search import solver

from test_memory import MOE, scenario
from test_memory_ranks import random_table

ROOT = Path(__file__).resolve().parent.parent
CASES = [("deepseek-v3", 256, 4096, {}), ("llama-3.1-8b", 8, 4096, {}), (MOE, 1, 2048, {}),
         ("mixtral-8x7b", 8, 4096, {}),
         ("llama-3.1-8b", 8, 4096, {"runtime": {"grad_reduce_dtype": "bf16", "expandable_segments": True}}),
         ("deepseek-v3", 256, 4096, {"training": {"seq_len": 4096, "global_batch": 512, "tokens": 1e9,
                                                 "optimizer": "adafactor"}}),
         # an MTP module on the last rank; sliding-window layers
         (catalog.model("deepseek-v3").model_copy(update={"mtp_layers": 1}).model_dump(exclude_none=True), 256, 4096, {}),
         ("gpt-oss-120b", 8, 4096, {})]


def _reference(ctx, t, monkeypatch):
    monkeypatch.setattr(memory_tables, "usable", lambda *a: False)
    out = solver._fits_memory_rows(ctx, t, None)
    monkeypatch.undo()
    return out


def _same(ref, new):
    (f1, p1), (f2, p2) = ref, new
    assert np.array_equal(f1, f2)
    assert np.array_equal(p1[f1], p2[f1])  # the peak rank is kept where the plan fits


@pytest.mark.parametrize("model,nodes,seq,extra", CASES)
def test_term_totals_equal_stage_memory_bit_for_bit(model, nodes, seq, extra):
    ctx = Context(scenario(model=model, nodes=nodes, seq=seq, **extra))
    t = random_table(np.random.default_rng(17), 2000, ctx.model.layers)
    plans = memory_tables.Plans(t)
    terms = memory_tables.Terms(ctx, plans, lambda f, n: [f(lo) for lo in range(0, n, 500)], 500)
    ranks = terms.ranks[plans.run]
    bases = terms.bases(slice(0, plans.n))
    per_layer = memory.layer_activation_bytes(ctx, t)
    checked = 0
    for j in range(terms.width):
        rows = np.flatnonzero(ranks[:, j] >= 0)
        ref = memory.stage_memory(ctx, memory._rows(t, rows), ranks[rows, j], memory._rows(per_layer, rows))
        assert np.array_equal(terms.totals([b[rows] for b in bases], j), ref["total"])
        stepless = np.take(terms.stepless, terms.cell[0])[rows]  # the shorter sum where it applies
        assert 0 < stepless.sum() < len(rows)
        assert np.array_equal(terms.totals([b[rows] for b in bases], j, stepless), ref["total"])
        checked += len(rows)
    assert checked > len(rows)


@pytest.mark.parametrize("model,nodes,seq,extra", CASES)
def test_verdict_and_peak_equal_the_reference_on_random_plans(model, nodes, seq, extra, monkeypatch):
    ctx = Context(scenario(model=model, nodes=nodes, seq=seq, **extra))
    t = random_table(np.random.default_rng(23), 4000, ctx.model.layers)
    assert memory_tables.usable(ctx, t)
    ref = _reference(ctx, t, monkeypatch)
    assert 0 < ref[0].sum() < len(ref[0]) and (ref[1][ref[0]] > 0).any()  # both verdicts, peaks past rank 0
    _same(ref, memory_tables.fits_memory(ctx, t, None, lambda f, n: [f(lo) for lo in range(0, n, 700)], 700))


@pytest.mark.parametrize("name", ["70b_64gpu.yaml", "qwen3_moe_16gpu.yaml", "long_context_128k.yaml"])
def test_verdict_and_peak_equal_the_reference_on_scenarios(name, monkeypatch):
    from planner import load_scenario

    sc = load_scenario(ROOT / "scenarios" / name)
    ctx = Context(sc)
    t, _, layout = solver._candidate_rows(sc, compact=True)
    assert memory_tables.usable(ctx, t)  # else both sides would be the reference
    full = _reference(ctx, t, monkeypatch)
    _same(full, solver._fits_memory_rows(ctx, t, None))
    # layout runs marked by the solver's layout of each row, and by a finer one (runs cut in pieces)
    finer = layout.astype(np.int64) * 4 + (np.arange(len(layout)) % 7 == 0).cumsum() % 4
    assert np.array_equal(memory_tables.Plans(t, None, layout).run, memory_tables.Plans(t).run)
    assert len(memory_tables.Plans(t, None, finer).heads) > len(memory_tables.Plans(t).heads)
    for lay in (layout, finer):
        _same(full, solver._fits_memory_rows(ctx, t, None, True, lay))
    rows = np.flatnonzero(np.random.default_rng(1).random(len(layout)) < 0.3)  # a subset, as shared batches
    ref = _reference(ctx, {k: v[rows] for k, v in t.items()}, monkeypatch)
    _same(ref, solver._fits_memory_rows(ctx, t, rows))
    _same(ref, memory_tables.fits_memory(ctx, t, rows, solver._in_chunks, solver.MEMORY_CHUNK, True, finer))


def test_model_states_read_the_accumulation_only_as_more_than_one_step():
    """memory_tables evaluates the model states with ga capped at 2 (_STATE_GA): every figure is the
    same as with the plan's own ga."""
    ctx = Context(scenario(model="deepseek-v3", nodes=256))
    t = random_table(np.random.default_rng(29), 3000, ctx.model.layers)
    capped = {**t, "ga": np.minimum(t["ga"], memory_tables._STATE_GA)}
    ranks = np.random.default_rng(30).integers(0, 64, len(t["pp"]))
    a, b = memory_tables.state_terms(ctx, t, ranks), memory_tables.state_terms(ctx, capped, ranks)
    assert (t["ga"] > 2).any()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_reference_where_the_tables_do_not_apply():
    """--exhaustive (every rank), Megatron's activation offloading (host memory reads the
    activations) and CUDA graphs (their buffers are not among the term tables) take the reference path."""
    t = random_table(np.random.default_rng(2), 10, 32)
    assert memory_tables.usable(Context(scenario(model="llama-3.1-8b", nodes=8)), t)
    assert not memory_tables.usable(Context(scenario(model="llama-3.1-8b", nodes=8), all_ranks=True), t)
    offload = scenario(model="llama-3.1-8b", nodes=8, runtime={"activation_offload_layers": 3})
    assert not memory_tables.usable(Context(offload), t)
    graphs = scenario(model="llama-3.1-8b", nodes=8, runtime={"cuda_graph_impl": "transformer_engine"})
    assert not memory_tables.usable(Context(graphs), t)


def test_rank_classes_inside_a_term_table_are_scanned_by_the_reference(monkeypatch):
    """Plans whose peak may lie inside a class of ranks (memory_ranks.level_beyond) take the reference
    scan; they occur in this table."""
    ctx = Context(scenario(model="deepseek-v3", nodes=256, seq=4096))
    t = random_table(np.random.default_rng(11), 20000, ctx.model.layers)
    seen = []
    real = memory_ranks.level_beyond
    monkeypatch.setattr(memory_ranks, "level_beyond", lambda *a: seen.append(real(*a)) or seen[-1])
    new = memory_tables.fits_memory(ctx, t, None, lambda f, n: [f(lo) for lo in range(0, n, 5000)], 5000)
    assert any(s.any() for s in seen)
    monkeypatch.undo()
    _same(_reference(ctx, t, monkeypatch), new)


def _serial(rows):
    return lambda f, n: [f(lo) for lo in range(0, n, rows)]


@pytest.mark.parametrize("model,nodes,seq,extra", CASES)
def test_bound_sums_enclose_every_candidate_rank(model, nodes, seq, extra):
    """The bounds fits_memory decides most plans by (each term's keys summed per slot in another order,
    the largest sum over a cell's slots and rank 0's, widened or narrowed by SUM_MARGIN: _bound_sums)
    hold the total of every candidate slot at or below the upper one, and rank 0's at or above the
    lower one, bit for bit, and are that close to them; the upper one equals the peak (but for the
    margin) for some plans."""
    ctx = Context(scenario(model=model, nodes=nodes, seq=seq, **extra))
    t = random_table(np.random.default_rng(53), 3000, ctx.model.layers)
    plans = memory_tables.Plans(t)
    terms = memory_tables.Terms(ctx, plans, _serial(500), 500)
    sums = memory_tables._bound_sums(ctx, plans, terms)
    over = np.ones(plans.n)
    upper, first = (memory_tables._bounded(sums[k], terms.cell, over) for k in ("upper", "first"))
    ranks = terms.ranks[plans.run]
    bases = terms.bases(slice(0, plans.n))
    stepless = np.take(terms.stepless, terms.cell[0])
    peak = np.full(plans.n, -np.inf)
    for j in range(terms.width):
        rows = np.flatnonzero(ranks[:, j] >= 0)
        peak[rows] = np.maximum(peak[rows], terms.totals([b[rows] for b in bases], j))
    rank0 = terms.totals(bases, 0)
    bounded = np.isfinite(upper)
    assert bounded.sum() > 100 and not bounded[~stepless].any()
    assert (upper[bounded] >= peak[bounded]).all()
    assert (first[stepless] <= rank0[stepless]).all()
    assert np.allclose(first[stepless], rank0[stepless], rtol=1e-11, atol=0)
    assert (upper[bounded] == peak[bounded]).sum() < bounded.sum()  # the margin is there
    assert np.isclose(upper[bounded], peak[bounded], rtol=1e-11, atol=0).any()
    # the crossed lower bounds (one term at its largest over the slots, the other at its least)
    for k in ("states_led", "transients_led"):
        crossed = memory_tables._bounded(sums[k], terms.cell, over)
        assert (crossed[stepless] <= peak[stepless]).all()
        assert (crossed[stepless] > first[stepless]).any()  # above rank 0's bound for some plans


@pytest.mark.parametrize("model,nodes,seq,extra", CASES)
def test_bounded_verdict_equals_the_reference_on_random_plans(model, nodes, seq, extra, monkeypatch):
    """Without peaks, fits_memory settles most plans by the bounds (fits under the upper bound, out of
    memory at rank 0) and scans the rest: the same verdict as the reference for every plan, and the
    bounds leave some plans to the scan (the three ways are all taken)."""
    ctx = Context(scenario(model=model, nodes=nodes, seq=seq, **extra))
    t = random_table(np.random.default_rng(43), 4000, ctx.model.layers)
    ref, _ = _reference(ctx, t, monkeypatch)
    scanned = []
    real = memory_tables._scan
    monkeypatch.setattr(memory_tables, "_scan", lambda *a: scanned.append(a[3]) or real(*a))
    fits, peak = memory_tables.fits_memory(ctx, t, None, _serial(700), 700, peaks=False)
    assert peak is None
    assert np.array_equal(ref, fits)
    in_scan = np.zeros(len(fits), dtype=bool)
    in_scan[np.concatenate(scanned)] = True
    assert (fits & ~in_scan).any()  # fits by the upper bound
    assert (~fits & ~in_scan).any()  # out of memory at rank 0
    assert in_scan.any() and fits[in_scan].any()  # scanned
    # the same verdicts without the crossed lower bounds (they only spare the plans' own sums)
    monkeypatch.setattr(memory_tables, "_crossed_out", lambda plans, terms, sums, at, *a: np.zeros(len(at), dtype=bool))
    assert np.array_equal(ref, memory_tables.fits_memory(ctx, t, None, _serial(700), 700, peaks=False)[0])


@pytest.mark.parametrize("model,nodes,seq,extra", [CASES[0], CASES[1], CASES[3], CASES[5]])
def test_largest_slot_total_decides_plans_between_the_bounds(model, nodes, seq, extra, monkeypatch):
    """Plans between the two bounds without a step temporary (host RAM fitting) are judged by their
    largest total over their candidate slots (_slot_bounds): some fit, some are out of memory, as the
    reference says, and only the rest is scanned (the crossed lower bounds left out here: they take
    some of those plans out of memory first, test_bounded_verdict_equals_the_reference_on_random_plans)."""
    ctx = Context(scenario(model=model, nodes=nodes, seq=seq, **extra))
    t = random_table(np.random.default_rng(59), 4000, ctx.model.layers)
    ref, _ = _reference(ctx, t, monkeypatch)
    monkeypatch.setattr(memory_tables, "_crossed_out", lambda plans, terms, sums, at, *a: np.zeros(len(at), dtype=bool))
    decided = []
    real = memory_tables._slot_bounds
    monkeypatch.setattr(memory_tables, "_slot_bounds",
                        lambda *a: decided.append((a[3], left := real(*a))) or left)
    fits, _ = memory_tables.fits_memory(ctx, t, None, _serial(700), 700, peaks=False)
    assert np.array_equal(ref, fits)
    judged = np.concatenate([np.setdiff1d(at, left) for at, left in decided])
    assert fits[judged].any() and not fits[judged].all()


@pytest.mark.parametrize("name", ["70b_64gpu.yaml", "qwen3_moe_16gpu.yaml", "long_context_128k.yaml",
                                  "70b_offload_1node.yaml"])
def test_bounded_verdict_equals_the_reference_on_scenarios(name, monkeypatch):
    from planner import load_scenario

    sc = load_scenario(ROOT / "scenarios" / name)
    ctx = Context(sc)
    t, _, layout = solver._candidate_rows(sc, compact=True)
    assert memory_tables.usable(ctx, t)  # else both sides would be the reference
    ref, _ = _reference(ctx, t, monkeypatch)
    fits, _ = solver._fits_memory_rows(ctx, t, None, peaks=False)
    assert np.array_equal(ref, fits)
    fits, _ = solver._fits_memory_rows(ctx, t, None, peaks=False, layout=layout)  # runs from the layouts
    assert np.array_equal(ref, fits)


def test_activations_read_the_accumulation_as_the_micro_batches_in_flight():
    """The activation terms with ga as in_flight_ga gives it (capped where the micro-batches in flight
    no longer grow) are the same as with the plan's own ga, but for torchtitan (receive buffers per
    micro-batch), whose plans keep theirs."""
    ctx = Context(scenario(model="deepseek-v3", nodes=256))
    t = random_table(np.random.default_rng(37), 3000, ctx.model.layers)
    capped = {**t, "ga": memory_tables.in_flight_ga(t)}
    ranks = np.minimum(np.random.default_rng(38).integers(0, 64, len(t["pp"])), t["pp"] - 1)
    a, b = memory_tables.activation_terms(ctx, t, ranks), memory_tables.activation_terms(ctx, capped, ranks)
    other = ~memory_tables._titan(t)
    assert (capped["ga"] < t["ga"])[other].any()
    for k in a:
        assert np.array_equal(np.broadcast_to(a[k], other.shape)[other], np.broadcast_to(b[k], other.shape)[other]), k
    assert not np.array_equal(a["recv"], b["recv"])  # torchtitan's differ: they keep their own ga


def test_batch_range_verdict_equals_the_reference(monkeypatch):
    """Several global batches: the term tables' verdict of every plan (cells sharing ga as in_flight_ga
    gives it) equals the reference's (plans grouped by that ga first, solver._shared_rows)."""
    sc = scenario(model="mixtral-8x7b", nodes=2, seq=4096, gb=[64, 128, 256, 512])
    assert len(sc.training.batches) == 4
    ctx = Context(sc)
    t, _, layout = solver._candidate_rows(sc, compact=True)
    monkeypatch.setattr(memory_tables, "usable", lambda *a: False)
    ref, _ = solver._fits_memory(ctx, t, layout, peaks=False)
    monkeypatch.undo()
    fits, _ = solver._fits_memory(ctx, t, layout, peaks=False)
    assert np.array_equal(ref, fits) and 0 < fits.sum() < len(fits)


@pytest.mark.parametrize("dense_span, dtype", [(1 << 22, np.int64), (16, np.int32)])
def test_rank_is_uniques_inverse(dense_span, dtype):
    """table.value_ranks (a presence table over short integer ranges) numbers values as np.unique's
    inverse does, in the type asked for, and returns its values, for integers, booleans, wide ranges
    (beyond 16 x the values and `dense_span`: sorted), ranges within `dense_span` only, and floats."""
    from planner.estimate import table

    rng = np.random.default_rng(3)
    for c in (rng.integers(-5, 40, 500), rng.random(300) < 0.5, rng.integers(0, 2**40, 200),
              rng.integers(0, 100_000, 50), rng.choice([0.5, 1.5, 3.0], 100), np.array([7, 7, 7]),
              np.zeros(0, dtype=np.int64)):
        values, inverse = np.unique(c, return_inverse=True)
        digit, got = table.value_ranks(c, dense_span, dtype)
        assert digit.dtype == dtype and np.array_equal(got, values.astype(got.dtype))
        assert np.array_equal(digit, inverse.reshape(-1))


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_present_ranks_are_uniques_inverse_in_the_type_asked(dtype):
    """table.present_ranks (its rank table in int32) numbers keys as np.unique's inverse does, in the
    type asked for, for keys dense in their span, sparse in a wide one, and all equal."""
    from planner.estimate import table

    rng = np.random.default_rng(11)
    for key, span in ((rng.integers(0, 50, 2000), 50), (rng.integers(0, 3_000_000, 500), 3_000_000),
                      (np.full(9, 4), 5)):
        values, inverse = np.unique(key, return_inverse=True)
        ranks, keys = table.present_ranks(key, span, dtype)
        assert ranks.dtype == dtype and np.array_equal(ranks, inverse.reshape(-1)) and np.array_equal(keys, values)


@pytest.mark.parametrize("peaks", [True, False])
def test_unknown_host_memory_leaves_offload_plans_unevaluated(peaks, monkeypatch):
    """A node of unknown host memory: every plan that offloads is out of memory (memory_verdict), so the
    term tables evaluate only the others, and the verdict (and the peak where a plan fits) equals the
    reference's."""
    ctx = Context(scenario(model="deepseek-v3", node="hgx-h800", nodes=256))
    assert ctx.node.host_memory_gib is None
    t = random_table(np.random.default_rng(47), 3000, ctx.model.layers)
    offload = (t["offload"] > 0) | (t["offload_params"] > 0)
    ref = _reference(ctx, t, monkeypatch)
    assert 0 < ref[0].sum() and offload.any() and not ref[0][offload].any()
    seen = []
    real = memory_tables.Plans
    monkeypatch.setattr(memory_tables, "Plans", lambda t, rows=None, layout=None: seen.append(real(t, rows, layout)) or seen[-1])
    fits, peak = memory_tables.fits_memory(ctx, t, None, _serial(700), 700, peaks=peaks)
    assert [p.n for p in seen] == [int((~offload).sum())]
    assert np.array_equal(ref[0], fits)
    if peaks:
        _same(ref, (fits, peak))


@pytest.mark.parametrize("model,nodes,seq,extra", [CASES[0], CASES[6]])
def test_stage_params_read_only_the_pipeline_shape(model, nodes, seq, extra):
    """The term tables evaluate stage_params once per (pp, vpp) pair and slot (_stage_params_by_slot):
    it reads no other plan column, and the table gives each slot the numbers of its own evaluation."""
    from planner.estimate import table as T
    from planner.estimate.memory_terms_stage import stage_params

    ctx = Context(scenario(model=model, nodes=nodes, seq=seq, **extra))
    t = random_table(np.random.default_rng(61), 500, ctx.model.layers)
    assert T.read_keys(lambda r: stage_params(ctx, r, np.zeros(1, dtype=np.int64)), t) == {"pp", "vpp"}
    pair, pp, vpp, ranks, _ = memory_ranks.candidate_table(ctx, t)
    c, j = np.nonzero(ranks[pair] >= 0)
    grid = memory_tables._stage_params_by_slot(ctx, pp, vpp, ranks)
    at = pair[c] * ranks.shape[1] + j
    own = stage_params(ctx, {k: v[c] for k, v in t.items()}, ranks[pair][c, j])
    for k, v in own.items():
        assert np.array_equal(np.take(grid[k], at), v), k


def test_cells_from_fine_keys_equal_the_shifted_keys(monkeypatch):
    """Plans.cells where some plans keep their own ga (torchtitan's, exact): keys taken over each plan's
    own layout and mapped to the cells (the fine path) give the same cell of every plan and the same
    cell rows as keys shifted per category code (the path kept where a run's coarse layout does not
    follow from its own), on the tables of two batch ranges."""
    fn, coarse, exact = memory_tables.TERMS[1][:3]
    for sc in (scenario(model="mixtral-8x7b", nodes=2, seq=4096, gb=[64, 128, 256, 512]),
               scenario(model="llama-3.1-8b", nodes=4, seq=8192, gb=[32, 96, 256])):
        c = Context(sc)
        tt, _, lay = solver._candidate_rows(sc, compact=True)
        plans = memory_tables.Plans(tt, None, lay)
        cols = tuple(set(memory_tables._read(c, fn, plans.take(np.arange(1)))) | {"pp", "vpp"})
        mask = exact(plans.decoded())
        assert mask[plans.present()].any() and not mask[plans.present()].all()
        calls = []
        real = memory_tables.Plans._consistent
        monkeypatch.setattr(memory_tables.Plans, "_consistent", lambda self, ids: calls.append(1) or real(self, ids))
        fine_cell, fine_rows = plans.cells(cols, coarse, mask)
        monkeypatch.setattr(memory_tables.Plans, "_consistent", lambda self, ids: False)
        cell, rows = plans.cells(cols, coarse, mask)
        monkeypatch.undo()
        assert calls and real(plans, _ids(plans, cols, coarse))  # the fine path was taken
        assert np.array_equal(fine_cell, cell) and fine_rows.keys() == rows.keys()
        assert all(np.array_equal(fine_rows[k], rows[k]) and fine_rows[k].dtype == rows[k].dtype for k in rows)
        assert len(rows["ga"]) < plans.n


def _ids(plans, cols, coarse):
    """The coarse and own layout ids of the runs, as Plans.cells numbers them."""
    from planner.estimate import memory_cells, table

    heads = memory_cells._Wide(plans, plans.heads)
    lay = [k for k in memory_cells.LAYOUT_COLUMNS if k in cols]
    rough = [coarse[k](heads) if k in coarse else heads[k] for k in lay]
    return [memory_cells._compact_ids(table.radix_code(v, len(plans.heads))[0]) for v in (rough, [heads[k] for k in lay])]


@pytest.mark.parametrize("node", ["hgx-h100", "hgx-h800"])  # h800: unknown host memory (offload plans held out)
@pytest.mark.parametrize("peaks", [True, False])
def test_batch_range_shared_runs_equal_every_plan(peaks, node):
    """Several global batches: the plans of a layout equal to an earlier one but for an accumulation the
    memory does not tell apart take the verdict (and peak rank) of the plan at the same place of that
    layout's run (solver._shared_runs; torchtitan's plans are evaluated): the same as the term tables'
    verdict of every plan."""
    sc = scenario(model="mixtral-8x7b", node=node, nodes=2, seq=4096, gb=[64, 128, 256, 512])
    ctx = Context(sc)
    t, _, layout = solver._candidate_rows(sc, compact=True)
    runs = solver._shared_runs(ctx, t, layout)
    assert runs is not None and len(runs[0]) < 0.8 * table.size(t)  # the path under test shares plans
    titan = t["framework"] == table.TT
    assert titan.any() and runs[1][titan].all()
    fits, peak = solver._fits_memory(ctx, t, layout, peaks=peaks)
    ref, ref_peak = solver._fits_memory_rows(ctx, t, None, peaks, layout)
    assert np.array_equal(ref, fits) and 0 < fits.sum() < len(fits)
    assert (peak is None) == (not peaks) and (not peaks or np.array_equal(peak, ref_peak))
