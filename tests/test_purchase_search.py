"""Purchase searches shared across node counts (planner.purchase_search) give each option the plan
that its own search finds."""

import json

import numpy as np

import pytest

from planner import purchase, purchase_search
from planner.spec.purchase import load_purchases

from conftest import write

# Two node types (one listed twice at another price: its searches are shared) at 1..12 nodes, a dense
# and a mixture-of-experts workload, and one that fits nowhere.
SWEEP = """
name: sweep
clusters:
  - {name: h100-rent, node: hgx-h100, nodes: {min: 1, max: 12}, cloud: {usd_per_gpu_hour: 3.0}}
  - {name: h100-rent-cheap, node: hgx-h100, nodes: {min: 1, max: 12}, cloud: {usd_per_gpu_hour: 2.0}}
  - name: b200-buy
    node: dgx-b200
    nodes: {min: 1, max: 12}
    owned: {capex_usd_per_node: 400000, power_kw: 14.0}
workloads:
  - {name: dense-8b, model: llama-3.1-8b, seq_len: 4096, global_batch: 256, tokens: 2.0e10}
  - {name: moe-16b, model: deepseek-v2-lite, seq_len: 4096, global_batch: 128, tokens: 1.0e10,
     search: {uneven_pipeline: false}}   # 27 layers in equal stages: no layout on 5, 7 or 11 nodes
  - {name: no-fit-8b, model: llama-3.1-8b, seq_len: 4096, global_batch: 256, tokens: 1.0e10,
     search: {tp: [1], pp: [1], cp: [1], zero: [0], offload: [none], offload_params: [none]}}  # 16 B/param > 80 GB
"""


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    pf = load_purchases(write(tmp_path_factory.mktemp("sweep"), "sweep.yaml", SWEEP))
    return purchase.plan_tasks(pf)


def _same(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_shared_searches_equal_independent_searches(tasks):
    shared = dict(purchase._shared_searches(tasks))
    assert set(shared) == set(tasks)
    assert sum(f["plan"] is not None for f in shared.values()) >= 10  # most counts have a plan
    assert any(f["plan"] is None and "structural" in f["reason"] for f in shared.values())
    assert any(f["plan"] is None and "memory" in f["reason"] for f in shared.values())
    for key, sc in tasks.items():
        assert _same(shared[key], purchase.best_plan(sc)), key


def test_slices_and_first_chunk_do_not_change_the_plans(tasks, monkeypatch):
    """One node count per slice, and the bounded evaluation started from one plan per count, find the
    same plans as the default slices and first chunk."""
    default = dict(purchase._shared_searches(tasks))
    monkeypatch.setattr(purchase_search, "FIRST", 1)
    monkeypatch.setattr(purchase_search, "ROWS_HELD", 1)
    assert all(_same(found, default[key]) for key, found in purchase._shared_searches(tasks))


def test_empty_candidate_tables_match_the_solvers(tasks):
    from planner.search import solver

    empty = [sc for sc in tasks.values() if not len(solver.layouts(sc)["tp"])]
    assert empty  # 5, 7 and 11 nodes for the 27-layer model in equal stages
    for sc in empty:
        (mine, n, _), (theirs, m) = purchase_search._candidates(sc), solver.candidate_table(sc)
        assert n == m == 0 and {k: (v.dtype, v.shape) for k, v in mine.items()} == \
            {k: (v.dtype, v.shape) for k, v in theirs.items()}


def test_pieces_bound_the_total():
    assert list(purchase_search._pieces([3, 4, 10, 1, 1], 6)) == [[0], [1], [2], [3, 4]]
    assert list(purchase_search._pieces([], 6)) == []


def test_long_json_lists_print_one_entry_per_line(monkeypatch):
    from planner import cli

    monkeypatch.setattr(cli, "LONG_LIST", 2)
    obj = {"name": "x", "options": [{"a": 1, "b": [1, 2]}, {"a": 2, "b": []}, {"a": 3, "b": None}], "overall": {"c": 1}}
    text = cli._json_text(obj)
    assert json.loads(text) == obj
    assert '\n    {"a": 2, "b": []},\n' in text  # one compact entry per line
    assert cli._json_text({"short": [1, 2]}) == json.dumps({"short": [1, 2]}, indent=2)
    assert json.loads(cli._json_text({"options": [float("nan"), 1.0, float("inf")]})) == {"options": [None, 1.0, None]}


RANGES = """
name: batch ranges
clusters:
  - {name: h100-rent, node: hgx-h100, nodes: [1, 2, 3], cloud: {usd_per_gpu_hour: 3.0}}
workloads:
  - {name: range-8b, model: llama-3.1-8b, seq_len: 4096, global_batch: {min: 32, max: 200, step: 32}, tokens: 2.0e10}
  - {name: list-8b, model: llama-3.1-8b, seq_len: 4096, global_batch: [100, 120], tokens: 2.0e10}
  - {name: one-8b, model: llama-3.1-8b, seq_len: 4096, global_batch: 128, tokens: 2.0e10}
"""


def test_compare_and_its_report_choose_the_batch_inside_the_range(tmp_path):
    """compare with batch ranges: each option's batch is allowed, is the one its own solve chooses,
    and the table, the CSV and the HTML report state it (for workloads allowing several)."""
    from click.testing import CliRunner

    from planner.cli import main
    from planner.search.solver import solve

    path = write(tmp_path, "ranges.yaml", RANGES)
    runner = CliRunner()
    r = runner.invoke(main, ["compare", str(path), "--json", "--report", str(tmp_path / "c.html"),
                             "--csv", str(tmp_path / "c.csv")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["options"]
    html, csv = (tmp_path / "c.html").read_text(), (tmp_path / "c.csv").read_text()
    pf = load_purchases(path)
    allowed = {w.name: set(w.batches) for w in pf.workloads}
    assert allowed["range-8b"] == set(range(32, 201, 32))
    for row, (option, workload) in zip(rows, ((o, w) for o in purchase.options(pf) for w in pf.workloads)):
        plan = row["plan"]["plan"]
        assert plan["global_batch"] in allowed[row["workload"]]
        assert plan["global_batch"] == plan["dp"] * plan["mbs"] * plan["ga"]
        alone = solve(purchase.scenario(option, workload), objective="time", top=1)
        assert plan == alone["plans"][0]["plan"]
        if len(allowed[row["workload"]]) > 1:
            assert row["batch"]["chosen"] == plan["global_batch"] and f"{plan['global_batch']:,}" in row["batch"]["why"]
            assert f"ga{plan['ga']} batch{plan['global_batch']}" in html and f"batch{plan['global_batch']}" in csv
        else:
            assert row["batch"] is None
    table = runner.invoke(main, ["compare", str(path)], catch_exceptions=False, terminal_width=250).stdout
    assert all(f"batch{r['plan']['plan']['global_batch']}" in table for r in rows if r["batch"])


def test_compare_report_of_a_large_sweep_stays_small(tasks, tmp_path):
    """3,000 options of 30 cluster options: the chart's points are one image, only the front is labelled,
    colours are node types, the table holds the front and the fastest others (days and dollars made up:
    the report's size is under test, not the plans)."""
    from planner.report import charts
    from planner.report.compare_html import compare_report
    from planner.report.purchase import ROWS_PER_WORKLOAD

    clusters = "".join(f"  - {{name: c{i}, node: {'hgx-h100' if i % 2 else 'dgx-b200'}, nodes: {{min: 1, max: 100}}, "
                       f"cloud: {{usd_per_gpu_hour: {1 + i / 10}}}}}\n" for i in range(30))
    pf = load_purchases(write(tmp_path, "big.yaml", "name: big\nclusters:\n" + clusters + "workloads:\n"
                              "  - {name: w, model: llama-3.1-8b, seq_len: 4096, global_batch: 256, tokens: 2.0e10}\n"))
    found = purchase.best_plan(next(iter(tasks.values())))
    rows = []
    for i, option in enumerate(purchase.options(pf)):
        row = purchase.row(option, pf.workloads[0], found)
        rows.append({**row, "days": 1 + (i * 7919 % 3000) / 100, "cost_usd": 1e5 * (1 + (i * 104729 % 3000) / 1000)})
    purchase.flag_pareto(rows, pf.workloads)
    text = compare_report({"name": "big", "options": rows, "overall": [], "searches": 1, "workers": 1, "seconds": 1.0})
    plans_table = text[text.index('class="plans"'):]
    shown = plans_table[:plans_table.index("</table>")].count("<tr>") - 1  # less the header row
    assert len(rows) == 3000 > charts.LABELLED_POINTS and len(text) < 1_500_000 and text.count("<image") == 1
    assert shown <= max(ROWS_PER_WORKLOAD, sum(r["pareto"] for r in rows))
    assert f"{3000 - shown:,} more options" in text and "Colour: node type" in text


def test_refined_bound_chooses_the_plans_of_the_exact_bound(tasks, monkeypatch):
    """The shared searches start from the cheap one-clock bound and refine the groups they take
    (bound.search_bound): the chosen plans are those found with the exact two-clock bound everywhere."""
    from planner.search import bound, solver

    refined = []

    def counted(ctx, t, heads=None):
        lb, refine = bound.search_bound(ctx, t, heads)
        if refine is None:
            return lb, None
        refined.append(0)
        return lb, lambda rows: (refined.append(len(rows)), refine(rows))[1]

    monkeypatch.setattr(solver, "search_bound", counted)
    cheap = dict(purchase._shared_searches(tasks))
    assert sum(refined) > 0  # H100 and B200 have a sustained clock: the refine ran
    monkeypatch.setattr(solver, "search_bound", lambda c, t, heads=None: (bound.step_lower_bound(c, t, heads), None))
    exact = dict(purchase._shared_searches(tasks))
    assert sum(f["plan"] is not None for f in exact.values()) >= 10
    assert set(cheap) == set(exact)
    assert all(_same(cheap[key], exact[key]) for key in exact)


def test_shared_refine_gives_each_tables_exact_bound(tasks, monkeypatch):
    """The bounds of the node counts searched together: the cheap one below the exact two-clock bound
    of each table alone, and each table's refine (the pass's, at its offset) equal to it, row for row;
    no search falls back to evaluating every plan where the exact bound does not."""
    from planner.estimate.evaluate import Context
    from planner.search import bound, solver

    scenarios = [sc for (_, w), sc in tasks.items() if w == "dense-8b" and Context(sc).gpu.name == "h100-sxm-80gb"]
    assert Context(scenarios[0]).gpu.sustained_tensor_fraction  # a two-clock bound: the refine is used
    assert len(scenarios) >= 10
    ctx = Context(scenarios[0])
    tables = [purchase_search._candidates(sc)[0] for sc in scenarios]
    for t, (lb, refine, order) in zip(tables, purchase_search._lower_bounds(ctx, tables, 64)):
        if not len(lb):
            continue
        # the order handed to the search, partly sorted already, is the one it would make itself
        np.testing.assert_array_equal(order[2][:len(lb)], np.argsort(-(order[0][np.arange(len(lb))] / lb), kind="stable"))
        exact = bound.step_lower_bound(ctx, t)
        assert np.all(lb <= exact * (1 + 1e-12))
        rows = np.arange(len(lb))[::-1]
        np.testing.assert_allclose(refine(rows), exact[rows], rtol=1e-12)
    found = [p["best"] is None for p in purchase_search.prepare(scenarios)]
    monkeypatch.setattr(solver, "search_bound", lambda c, t, heads=None: (bound.step_lower_bound(c, t, heads), None))
    assert found == [p["best"] is None for p in purchase_search.prepare(scenarios)]
    assert not all(found)


def test_compare_report_says_why_the_batch_was_chosen(tmp_path):
    """Issue 14: the output states the chosen batch and why; the compare table and report named the batch
    of each option (plan column) but not the reason. Each workload allowing several batches states the
    reason for its fastest option, the text of that row's batch.why."""
    from click.testing import CliRunner

    from planner.cli import main

    path = write(tmp_path, "ranges.yaml", RANGES)
    r = CliRunner().invoke(main, ["compare", str(path), "--json", "--report", str(tmp_path / "c.html")],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    from html import escape

    html = (tmp_path / "c.html").read_text()
    rows = json.loads(r.stdout)["options"]
    table = CliRunner().invoke(main, ["compare", str(path)], catch_exceptions=False, terminal_width=250).stdout
    for name in ("range-8b", "list-8b"):
        fastest = min((o for o in rows if o["workload"] == name and o["days"] is not None), key=lambda o: o["days"])
        assert escape(fastest["batch"]["why"]) in html, name
        line = f"global batch of {name}, fastest option {fastest['cluster']}: {fastest['batch']['why']}"
        assert line in table.replace("\n", " "), name
    one = [o for o in rows if o["workload"] == "one-8b"]
    assert all(o["batch"] is None for o in one) and "global batch of one-8b" not in table


def test_compare_report_with_batch_ranges_reuses_the_search_result(tmp_path, monkeypatch):
    """Issue 14, "reuse the search's results instead of re-solving": the compare report of a file with
    batch ranges is built from compare's result alone (every search entry point refuses to run while it
    is drawn), and its days, dollars and chosen batches are that result's."""
    from planner.report.compare_html import compare_report
    from planner.report.console import _money
    from planner.report.html import days
    from planner.search import solver

    result = purchase.compare(load_purchases(write(tmp_path, "ranges.yaml", RANGES)))

    def refuse(*args, **kwargs):
        raise AssertionError("the report searched again")

    for module, name in ((purchase, "evaluate"), (purchase, "search_all"), (purchase_search, "search_group"),
                         (purchase_search, "prepare"), (solver, "solve")):
        monkeypatch.setattr(module, name, refuse)
    html = compare_report(result)
    fits = [r for r in result["options"] if r["days"] is not None]
    assert fits and any(r["batch"] for r in fits)
    for r in fits:
        assert days(r["days"]) in html and _money(r["cost_usd"]) in html
        if r["batch"]:  # a searched batch: the chosen one is in the plan column
            assert f"batch{r['batch']['chosen']}" in html and r["batch"]["chosen"] == r["plan"]["plan"]["global_batch"]


def test_compare_of_a_range_equals_its_batches_compared_one_by_one(tmp_path):
    """A workload's batch range in a compare (node counts searched together, planner.purchase_search)
    against each of its batches as a workload of its own in the same compare: every option's plan in
    the range is the plan of its chosen batch searched alone, and no batch alone is faster beyond the
    ranking's tie band (solver.TIE)."""
    from planner.search import solver

    batches = range(32, 201, 32)
    one = "  - {{name: {}, model: llama-3.1-8b, seq_len: 4096, global_batch: {}, tokens: 2.0e10}}\n"
    text = ("name: range against its batches\nclusters:\n"
            "  - {name: h100-rent, node: hgx-h100, nodes: [1, 2, 3], cloud: {usd_per_gpu_hour: 3.0}}\nworkloads:\n"
            + one.format("range", "{min: 32, max: 200, step: 32}") + "".join(one.format(f"b{b}", b) for b in batches))
    rows = purchase.evaluate(load_purchases(write(tmp_path, "r.yaml", text)), 1)["options"]
    for nodes in (1, 2, 3):
        mine = {r["workload"]: r for r in rows if r["nodes"] == nodes}
        ranged = mine.pop("range")
        chosen = ranged["plan"]["plan"]["global_batch"]
        assert chosen in batches
        assert ranged["plan"]["plan"] == mine[f"b{chosen}"]["plan"]["plan"]
        assert ranged["days"] == mine[f"b{chosen}"]["days"]
        assert all(ranged["days"] <= r["days"] * solver.TIE for r in mine.values() if r["days"] is not None)


def test_plans_out_of_memory_left_untimed_change_no_plan(tasks, monkeypatch):
    """The shared searches time only the plans not out of memory (evaluate_fitting): each option's plan is
    the one found timing every plan the searches take."""
    from planner.estimate.evaluate import evaluate_table

    default = dict(purchase._shared_searches(tasks))
    monkeypatch.setattr(purchase_search, "evaluate_fitting",
                        lambda ctx, t: (evaluate_table(ctx, t), np.arange(len(t["tp"]))))
    assert all(_same(found, default[key]) for key, found in purchase._shared_searches(tasks))


def test_evaluation_split_between_threads_gives_the_same_estimates(tasks, monkeypatch):
    """_drive's evaluations split between two threads (_evaluate): the same plans timed, the same numbers."""
    from planner.estimate import table as T
    from planner.estimate.evaluate import Context, evaluate_fitting
    from planner.search import solver

    monkeypatch.setattr(solver, "MEMORY_THREADS", 2)
    sc = next(sc for (_, w), sc in tasks.items() if w == "moe-16b" and sc.cluster.nodes == 8)
    ctx = Context(sc)
    t = purchase_search._candidates(sc)[0]
    t = T.take(t, np.arange(0, T.size(t), max(1, T.size(t) // 20_000)))
    assert T.size(t) >= 2 * solver.SPLIT_MIN
    (one, rows), (two, rows2) = evaluate_fitting(ctx, t), purchase_search._evaluate(ctx, t)
    assert np.array_equal(rows, rows2) and 0 < len(rows) < T.size(t)

    def same(a, b, path=""):
        if isinstance(a, dict):
            assert set(a) == set(b), path
            for k in a:
                same(a[k], b[k], f"{path}.{k}")
        else:
            assert np.array_equal(np.broadcast_to(a, (len(rows),)), np.broadcast_to(b, (len(rows),)), equal_nan=True), path

    same(one, two)
