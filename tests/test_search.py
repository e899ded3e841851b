"""Search: CP-SAT enumerates exactly the structurally valid layouts; results obey every rule."""

import itertools

import numpy as np
import pytest

from planner import solve
from planner.estimate import table
from planner.frameworks.rules import framework_problems
from planner.search.solver import INT_FIELDS, candidate_table, layouts
from planner.search.space import domains, structural_problems
from planner.spec import Plan

from test_memory import scenario


def brute_force_layouts(sc):
    dom = domains(sc)
    found = set()
    for combo in itertools.product(*(dom[k] for k in INT_FIELDS)):
        v = dict(zip(INT_FIELDS, combo))
        # etp = 1: the widest expert-parallel placement (ep may span tp x cp x dp); space.with_etp
        # then adds each layout's etp values (test_search_offers_folded_expert_parallelism).
        plan = Plan(framework="megatron", dp=v["dp"], tp=v["tp"], pp=v["pp"], cp=v["cp"], ep=v["ep"], etp=1,
                    vpp=v["vpp"], mbs=v["mbs"], ga=v["ga"], sp=False)
        problems = structural_problems(plan, sc)
        if v["vpp"] > 1 and (v["pp"] == 1 or v["ga"] % v["pp"]):
            problems.append("interleaving")
        if not problems:
            found.add(combo)
    return found


@pytest.mark.parametrize("kw", [
    dict(model="llama-3.1-8b", nodes=2, gb=64),
    dict(model="mixtral-8x7b", node="hgx-h100", nodes=2, gb=32),
    dict(model="qwen2.5-32b", nodes=3, gb=48),   # 24 GPUs: prime factor 3
])
def test_cp_sat_layouts_equal_brute_force(kw):
    sc = scenario(**kw)
    lay = layouts(sc)
    got = set(zip(*(lay[k].tolist() for k in INT_FIELDS)))
    assert got == brute_force_layouts(sc)
    assert len(got) > 0


def test_solve_32b_returns_valid_ranked_plans(scenario_32b):
    r = solve(scenario_32b, top=20)
    assert len(r["plans"]) >= 5 and r["feasible"] >= len(r["plans"])
    tps = [p["throughput"]["tokens_per_s"] for p in r["plans"]]
    from planner.search.rank import TIE, TIGHT_PENALTY

    assert tps[0] >= max(tps) / (TIE / TIGHT_PENALTY)  # ties within 1% go to the simpler plan
    for p in r["plans"]:
        plan = Plan.model_validate({k: v for k, v in p["plan"].items() if k != "global_batch"})
        assert plan.dp * plan.tp * plan.pp * plan.cp == 16
        assert plan.problems(scenario_32b) == []
        assert p["memory"]["verdict"] != "oom"
        # not oom: within the family's memory band of the capacity (its optimistic edge fits)
        assert p["memory"]["per_gpu_gib"] <= p["memory"]["oom_above_gib"]
        assert p["plan"]["global_batch"] == 512


def test_every_candidate_obeys_the_framework_rules(scenario_32b):
    t, considered = candidate_table(scenario_32b)
    assert considered > table.size(t) > 0
    rng = np.random.default_rng(0)
    for i in rng.choice(table.size(t), size=300, replace=False):
        row = table.row(t, int(i))
        assert framework_problems(row) == [], row


@pytest.mark.parametrize("kw", [
    dict(model="mixtral-8x7b", node="hgx-h100", nodes=2, gb=[32, 64]),
    dict(model="llama-3.1-8b", nodes=2, gb=64, runtime={"fp8_param_gather": True, "fp8_recipe": "current"}, node="hgx-h100",
         search={"fixed": {"offload": "cpu"}, "zero": [0, 1, 3]}),
])
def test_candidate_rows_equal_the_rules_on_the_full_product(kw):
    """_candidate_rows applies the rules to distinct layout projections x the choices they read and
    expands: the same rows, in the same order, as filtering the full product layouts x choices."""
    import itertools

    from planner.frameworks.rules import framework_mask
    from planner.search import solver
    from planner.search.space import with_etp

    sc = scenario(**kw)
    t, considered, layout = solver._candidate_rows(sc)
    lay = with_etp(sc, layouts(sc))
    so = sc.search
    cats = {"framework": [table.FRAMEWORKS.index(f) for f in so.frameworks],
            "precision": [table.PRECISIONS.index(p) for p in so.precision],
            "zero": list(so.zero), "offload": [table.OFFLOADS.index(o) for o in so.offload],
            "offload_params": [table.OFFLOADS.index(o) for o in so.offload_params],
            "recompute": [table.RECOMPUTES.index(r) for r in so.recompute]}
    for key, want in so.fixed.items():
        if key in cats:
            code = table.CATEGORICAL[key].index(want) if key in table.CATEGORICAL else int(want)
            cats[key] = [code]
    combos = np.array(list(itertools.product(*cats.values())))
    li, ci = (a.ravel() for a in np.meshgrid(np.arange(len(lay["tp"])), np.arange(len(combos)), indexing="ij"))
    full = {k: lay[k][li] for k in solver.COLUMNS} | {k: combos[ci, j] for j, k in enumerate(cats)}
    full["sp"] = solver._sp(full, so.fixed)
    ok = framework_mask(full, sc.model, sc.runtime) & (~full["sp"] | (sc.training.seq_len % full["tp"] == 0))
    assert considered == len(li) and 0 < ok.sum() < len(li)
    for k in full:
        assert np.array_equal(t[k], full[k][ok]), k
    assert np.array_equal(layout, li[ok])


def test_fixed_fields_and_search_lists_restrict_the_space(tmp_path):
    sc = scenario(nodes=2, gb=64, search={"fixed": {"tp": 4, "framework": "megatron"}, "precision": ["bf16"]})
    r = solve(sc, top=50)
    assert r["plans"]
    assert all(p["plan"]["tp"] == 4 and p["plan"]["framework"] == "megatron" and p["plan"]["precision"] == "bf16"
               for p in r["plans"])


def test_objectives_rank_by_their_key(scenario_32b):
    from planner.search.rank import TIE, TIGHT_PENALTY

    by_cost = solve(scenario_32b, objective="cost", top=10)["plans"]
    costs = [p["run"]["cost_usd"] for p in by_cost]
    # ties within 1% go to the simpler plan; a tight plan counts TIGHT_PENALTY worse
    assert costs[0] <= min(costs) * TIE / TIGHT_PENALTY


def test_budget_excludes_plans_and_nothing_fits_explains():
    sc = scenario(model="llama-3.1-70b", nodes=1, gb=64, budget={"max_days": 0.001})
    r = solve(sc)
    assert r["plans"] == [] and r["explanation"] and r["closest"] is not None
    too_big = scenario(model="llama-3.1-405b", node="hgx-a100-40gb", nodes=1, seq=8192, gb=8)
    r = solve(too_big)
    assert r["plans"] == [] and r["fits_memory"] == 0
    assert "over by" in r["explanation"][0] or "host" in r["explanation"][0]


def test_offload_scenario_only_fits_with_zero3_and_offload():
    from planner import load_scenario

    from conftest import ROOT

    r = solve(load_scenario(ROOT / "scenarios" / "70b_offload_1node.yaml"), top=1000)
    assert r["plans"]
    assert all(p["plan"]["zero"] == 3 and p["plan"]["offload"] != "none" for p in r["plans"])


@pytest.mark.parametrize("kw", [
    dict(model="llama-3.1-8b", nodes=2, gb=64),
    dict(model="mixtral-8x7b", node="hgx-h100", nodes=2, gb=32),
    dict(model="qwen2.5-32b", nodes=3, gb=48),
])
@pytest.mark.parametrize("objective", ["throughput", "cost"])
def test_solver_top_k_equals_exhaustive(kw, objective):
    sc = scenario(**kw)
    fast = solve(sc, objective=objective, top=15)
    slow = solve(sc, objective=objective, top=15, exhaustive=True)
    assert fast["considered"] == slow["considered"] and fast["feasible"] == slow["feasible"]
    assert [p["plan"] for p in fast["plans"]] == [p["plan"] for p in slow["plans"]]


def test_node_count_range_gives_a_pareto_front():
    from planner.search.rank import pareto_mask

    sc = scenario(model="llama-3.1-8b", nodes=[1, 2, 4], gb=64)
    r = solve(sc, top=5)
    assert r["gpus"] == [8, 16, 32] and r["pareto"]
    front = r["pareto"]
    # Along the front, more days always means less cost; nothing on it is dominated.
    for a, b in zip(front, front[1:]):
        assert a["days"] <= b["days"] and a["cost_usd"] > b["cost_usd"]
    days = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    cost = np.array([5.0, 4.0, 1.0, 4.5, 6.0])
    assert pareto_mask(days, cost).tolist() == [True, True, True, False, False]


def test_infeasible_explains_with_nearest_fixes():
    sc = scenario(model="qwen2.5-32b", node="dgx-h100", nodes=1, gb=64, search={"zero": [0], "tp": [1], "pp": [1]})
    r = solve(sc)
    assert r["plans"] == []
    assert "over by" in r["explanation"][0] and "largest term" in r["explanation"][0]
    changes = [f["change"] for f in r["closest"]["fixes"]]
    assert any(c.startswith("allow zero") for c in changes)
    limit = r["closest"]["memory"]["oom_above_gib"]  # the same GPU and family: the band's optimistic edge
    assert all(f["per_gpu_gib"] <= limit for f in r["closest"]["fixes"])


def test_best_plan_says_what_bounds_it(scenario_32b):
    b = solve(scenario_32b, top=1)["plans"][0]["bound_by"]
    assert b["term"] in ("compute", "tp_comm", "dp_comm", "pp_bubble", "ep_comm", "cp_comm", "offload", "optimizer")
    assert 0 < b["share"] <= 1


# --- Global batch as a search dimension; exact pruning (issue 14) ---

def _ranked(result):
    return [(p["plan"], p["throughput"]["tokens_per_s"], p["memory"]["per_gpu_gib"]) for p in result["plans"]]


@pytest.mark.parametrize("kw,batches", [
    (dict(model="llama-3.1-8b", nodes=2, seq=4096), [64, 96, 128]),
    (dict(model="mixtral-8x7b", node="hgx-h100", nodes=2, seq=4096), [32, 48, 64]),
])
def test_batch_list_ranks_as_each_batch_merged(kw, batches):
    """Searching several batches at once ranks exactly as solving each batch alone, merging the
    plans and ranking them with the same order (planner.search.rank.order)."""
    from planner.search.rank import order

    both = solve(scenario(**kw, gb=batches), top=30)
    # each batch alone to a deeper list: the tie rule (within 1%, simpler first) is not transitive, so
    # a plan its own batch ranks below 30th can still reach the merged top 30
    alone = [solve(scenario(**kw, gb=b), top=90) for b in batches]
    plans = [p for r in alone for p in r["plans"]]
    keys = {
        "tokens_per_s": np.array([p["throughput"]["tokens_per_s"] for p in plans]),
        "days": np.array([p["run"]["days"] for p in plans]),
        "cost_usd": np.array([np.nan if p["run"]["cost_usd"] is None else p["run"]["cost_usd"] for p in plans]),
        "verdict": np.array([("fits", "tight", "oom").index(p["memory"]["verdict"]) for p in plans]),
        "memory_total": np.array([p["memory"]["per_gpu_gib"] for p in plans]),
        **{k: np.array([p["plan"][k] if k not in ("offload", "offload_params") else
                        ("none", "cpu", "nvme").index(p["plan"][k]) for p in plans])
           for k in ("pp", "cp", "vpp", "ep", "offload", "offload_params")},
    }
    merged = [plans[i] for i in order(keys, "throughput")[:30]]
    assert [p["plan"] for p in both["plans"]] == [p["plan"] for p in merged]
    assert both["feasible"] == sum(r["feasible"] for r in alone)
    assert both["considered"] == sum(r["considered"] for r in alone)
    assert both["batch"]["chosen"] in batches and both["plans"][0]["plan"]["global_batch"] == both["batch"]["chosen"]
    assert str(both["batch"]["chosen"]) in both["batch"]["why"].replace(",", "")


def test_batch_range_picks_inside_the_range():
    r = solve(scenario(nodes=2, gb={"min": 32, "max": 128}), top=50)
    assert {p["plan"]["global_batch"] for p in r["plans"]} <= {32, 64, 96, 128}
    assert r["batch"]["allowed"] == [32, 64, 96, 128]


def test_tokens_per_step_means_batches_of_sequences():
    from planner.spec.scenario import Training

    tr = Training(seq_len=4096, tokens_per_step={"min": 2**21, "max": 2**23}, tokens=1e9)
    assert tr.batches == (512, 1024, 1536, 2048)
    assert Training(seq_len=8, global_batch={"min": 3, "max": 10, "step": 2}, tokens=1).batches == (3, 5, 7, 9)
    # a token step that is not a multiple of seq_len: the multiples of step // seq_len (122) in the range, as the
    # key's description says, not min + k x step (123, 245, ..., 855: odd batches few data-parallel sizes divide)
    tr = Training(seq_len=8192, tokens_per_step={"min": 1_000_000, "max": 8_000_000}, tokens=1e9)
    assert tr.batches == tuple(range(244, 977, 122))
    with pytest.raises(ValueError):
        Training(seq_len=8, global_batch=8, tokens_per_step={"min": 64, "max": 64}, tokens=1)
    with pytest.raises(ValueError):
        Training(seq_len=8, global_batch={"min": 10, "max": 3}, tokens=1)


@pytest.mark.parametrize("kw", [
    dict(model="llama-3.1-8b", nodes=4, gb=256),
    dict(model="mixtral-8x7b", node="hgx-h100", nodes=4, gb=[128, 256]),
    dict(model="qwen2.5-32b", nodes=2, gb=128, objective="cost"),
])
def test_pruned_search_ranks_as_evaluating_every_plan(kw):
    """The step-time bound only skips plans that cannot rank: the top plans and counts equal those of
    --exhaustive (brute-force layouts, every plan evaluated)."""
    sc = scenario(**kw)
    fast, full = solve(sc, top=40), solve(sc, top=40, exhaustive=True)
    assert fast["plans"] and [p["plan"] for p in fast["plans"]] == [p["plan"] for p in full["plans"]]
    for a, b in zip(fast["plans"], full["plans"]):
        assert a["throughput"] == b["throughput"] and a["memory"] == b["memory"] and a["time"] == b["time"]
    assert {k: fast[k] for k in ("considered", "valid", "fits_memory", "feasible")} == \
        {k: full[k] for k in ("considered", "valid", "fits_memory", "feasible")}


@pytest.mark.parametrize("kw", [dict(model="llama-3.1-70b", nodes=4, gb=256),
                                dict(model="mixtral-8x7b", node="hgx-h100", nodes=4, gb=256)])
def test_step_lower_bound_holds_for_every_plan(kw):
    """The bound the search prunes with is below the estimated step time of every valid plan."""
    from planner.estimate.evaluate import Context, evaluate_table
    from planner.search.bound import step_lower_bound

    sc = scenario(**kw)
    t, _ = candidate_table(sc)
    ctx = Context(sc)
    ev = evaluate_table(ctx, t)
    lb = step_lower_bound(ctx, t)
    assert np.all(lb > 0) and np.all(ev["step_s"] >= lb * (1 - 1e-12))
    # and it counts more than compute: the exposed TP/CP/EP/PP communication too (so few plans are
    # timed), at least the compute-only bound everywhere and above it where communication shows
    from planner.estimate import pipeline
    from planner.estimate.evaluate import first_last_stage_times

    stages = first_last_stage_times(ctx, t)
    busy = np.maximum(*(c["forward"] + c["backward"] + c["recompute"] for _, c, _ in stages.values()))
    compute_only = pipeline.pipeline_step_s(t, busy)
    assert np.all(lb >= compute_only * (1 - 1e-12)) and (lb > compute_only * (1 + 1e-6)).any()


def test_best_plan_without_counts_equals_the_counted_search():
    """Purchase comparisons skip the memory verdict of plans that cannot rank: same best plans."""
    sc = scenario(model="mixtral-8x7b", node="hgx-h100", nodes=2, gb=64)
    fast = solve(sc, objective="time", top=3, counts=False)
    full = solve(sc, objective="time", top=3, exhaustive=True)
    assert fast["plans"] == full["plans"] and fast["feasible"] is None and full["feasible"] > 3


@pytest.mark.parametrize("kw", [dict(model="llama-3.1-8b", nodes=2, gb={"min": 16, "max": 256}),
                                dict(model="mixtral-8x7b", node="hgx-h100", nodes=2, gb={"min": 8, "max": 128})])
def test_memory_verdict_shared_across_batches_equals_every_plan(kw):
    """With several batches the search evaluates memory once per plan the memory model tells apart
    (solver._ga_for_memory): the same fits/oom verdict as evaluating every plan."""
    from planner.estimate.evaluate import Context, evaluate_table
    from planner.search import solver

    sc = scenario(**kw)
    t, _ = candidate_table(sc)
    ctx = Context(sc)
    first, _ = solver._groups({**t, "ga": solver._ga_for_memory(t)}, solver._read_columns(solver._verdict, ctx))
    assert len(first) < 0.8 * table.size(t)  # the shared path is the one under test
    fits, peak = solver._fits_memory(ctx, t)
    ev = evaluate_table(ctx, t)
    assert np.array_equal(fits, ev["verdict"] < 2)
    # the peak rank found by the shared verdict pass is each fitting plan's own (evaluate_table reuses it)
    assert np.array_equal(peak[fits], ev["memory"]["stage"][fits])
    shared = evaluate_table(ctx, table.take(t, fits), peak[fits])
    for k, v in ev["memory"].items():
        assert np.array_equal(shared["memory"][k], np.asarray(v)[fits] if np.ndim(v) else v), k
    # the search's compact table groups the same plans in linear time (solver._shared_rows)
    small, _, layout = solver._candidate_rows(sc, compact=True)
    assert all(np.array_equal(small[k], t[k]) for k in t)
    found = solver._shared_rows(ctx, small, layout)
    assert found is not None
    f2, i2 = solver._groups({**t, "ga": solver._ga_for_memory(t)}, solver._read_columns(solver._verdict, ctx))
    assert np.array_equal(found[0][found[1]], f2[i2])
    fits2, peak2 = solver._fits_memory(ctx, small, layout)
    assert np.array_equal(fits2, fits) and np.array_equal(peak2, peak)


def test_memory_verdict_threads_give_the_serial_result(monkeypatch):
    """The verdict pass shares its chunks between threads: the same verdicts and peak ranks as one
    thread taking them in order (small chunks, so there are many)."""
    from planner.estimate.evaluate import Context
    from planner.search import solver

    sc = scenario(model="mixtral-8x7b", node="hgx-h100", nodes=2, gb=64)
    t, _, _ = solver._candidate_rows(sc, compact=True)
    ctx = Context(sc)
    monkeypatch.setattr(solver, "MEMORY_CHUNK", 997)
    runs = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(solver, "MEMORY_THREADS", threads)
        runs.append(solver._fits_memory_rows(ctx, t, None))
    assert table.size(t) > 8 * 997 and runs[0][0].any() and not runs[0][0].all()
    for fits, peak in runs[1:]:
        assert np.array_equal(fits, runs[0][0]) and np.array_equal(peak, runs[0][1])


@pytest.mark.parametrize("kind", ["distinct", "ties", "nan"])
def test_bound_order_sorted_by_blocks_equals_the_stable_sort(kind, monkeypatch):
    """order.ByBound (sorted a block at a time as the search reads it) gives the rows in the order of
    np.argsort(-ub, kind='stable'), ties in table order and NaN last, whatever the block size."""
    from planner.search.order import ByBound

    rng = np.random.default_rng(3)
    ub = rng.random(5000)
    if kind == "ties":
        ub = np.round(ub * 20) / 20
    if kind == "nan":
        ub[rng.random(5000) < 0.3], ub[0] = np.nan, np.inf
    ref = np.argsort(-ub, kind="stable")
    for block in (1, 7, 1000, 65536):
        monkeypatch.setattr(ByBound, "BLOCK", block)
        order = ByBound(ub)
        assert np.array_equal(np.concatenate([order[:3], order[3:50], order[50:]]), ref)
        assert ByBound(ub)[4999] == ref[-1] and len(order) == 5000


@pytest.mark.parametrize("kind", ["random", "ties", "nan", "strided", "on the stride", "sorted", "few numbers"])
def test_kth_largest_equals_the_full_partition(kind):
    """order.kth_largest (a cut from a strided sample, then a partition of the values above it) is the
    number the partition of every value gives, NaN not counted, whatever the values' pattern (a sample
    that misses the top falls back to the full partition)."""
    from planner.search.order import SAMPLE, kth_largest

    rng = np.random.default_rng(5)
    n = 40_000
    v = rng.random(n)
    if kind == "ties":
        v = np.round(v * 7) / 7
    elif kind == "nan":
        v[rng.random(n) < 0.4], v[:3] = np.nan, np.inf
    elif kind == "strided":  # the largest values all off the sample's stride
        v = np.where(np.arange(n) % SAMPLE == 0, 0.0, v)
    elif kind == "on the stride":  # the sample holds every large value: too few above its cut for large k
        v = np.where(np.arange(n) % SAMPLE == 0, 1.0 + v, 0.0)
    elif kind == "sorted":
        v = np.sort(v)
    elif kind == "few numbers":
        v[rng.random(n) < 0.99] = np.nan
    for k in (1, 2, 100, 999, 5000, 19_999):
        neg = -v
        neg.partition(k - 1)
        want = -neg[k - 1]
        got = kth_largest(v, k)
        assert (np.isnan(got) and np.isnan(want)) or got == want


def test_bound_order_from_layout_runs_equals_row_by_row():
    """solver.bound_order with the layout runs of the fitting plans (tokens per step once per run, read
    per run) gives the tokens, bounds and order it gives row by row, on a batch range (several ga)."""
    from planner.search import solver

    sc = scenario(model="mixtral-8x7b", node="hgx-h100", nodes=2, gb=[32, 64, 128])
    t, _, layout = solver._candidate_rows(sc, compact=True)
    rows = np.flatnonzero(np.random.default_rng(2).random(table.size(t)) < 0.6)
    pool, heads = solver._fitting_plans(t, rows, layout)
    assert 1 < len(heads) < len(rows) and len(set(pool["ga"].tolist())) > 2
    lb = np.random.default_rng(4).random(len(rows)) + 0.5
    want = solver.bound_order(pool, lb, 4096)
    got = solver.bound_order(pool, lb, 4096, heads)
    every = np.arange(len(rows))
    assert np.array_equal(got[0][every], want[0]) and np.array_equal(got[1], want[1])
    some = np.random.default_rng(6).choice(len(rows), 40)
    assert np.array_equal(got[0][some], want[0][some])
    assert np.array_equal(got[2][:len(rows)], want[2][:len(rows)])


@pytest.mark.parametrize("proj", [np.arange(12) // 3, np.arange(12) % 4, np.array([0, 0, 1, 1, 2, 2, 3, 3, 0, 1, 2, 3])])
def test_kept_choices_equal_the_wide_table(proj):
    """solver._kept: the rules' table taken to every choice without the wide table (keys the rules do
    not read last: blocks; otherwise the wide table), as np.nonzero(keep[:, proj])."""
    from planner.search import solver

    keep = np.random.default_rng(5).random((7, 4)) < 0.5
    for got, want in zip(solver._kept(keep, proj), np.nonzero(keep[:, proj])):
        assert np.array_equal(got, want)


def test_no_plan_because_no_searched_framework_builds_the_model_says_why():
    """DeepSeek-V3 with its MTP module (mtp_layers 1, as config.json declares it): neither torchtitan nor
    DeepSpeed builds it (rules.unbuildable); the explanation names each searched framework's reason
    rather than only the generic structural message."""
    from planner import catalog

    model = catalog.model("deepseek-v3").model_copy(update={"mtp_layers": 1}).model_dump(exclude_none=True)
    sc = scenario(model=model, node="dgx-b200", nodes=32, gb=2048, search={"frameworks": ["torchtitan", "deepspeed"]})
    r = solve(sc)
    assert r["plans"] == []
    text = " ".join(r["explanation"])
    assert "torchtitan cannot build" in text and "deepspeed cannot build" in text
    assert "multi-token-prediction" in text


@pytest.mark.parametrize("kw", [dict(model="llama-3.1-70b", nodes=4, gb={"min": 128, "max": 512}),
                                dict(model="mixtral-8x7b", node="hgx-h100", nodes=2, gb=64),
                                dict(model="llama-3.1-8b", node="dgx-a100-80gb", nodes=2, gb=64)])
def test_evaluate_fitting_times_only_the_plans_not_out_of_memory(kw):
    """evaluate_fitting (what the bounded searches evaluate) gives evaluate_table's numbers, every one,
    for the plans that fit or are tight, and leaves out exactly the plans out of memory; with each plan's
    peak rank given (the counted search) too."""
    from planner.estimate.evaluate import Context, evaluate_fitting, evaluate_table

    sc = scenario(**kw)
    t, _ = candidate_table(sc)
    ctx = Context(sc)
    full = evaluate_table(ctx, t)
    fits = np.flatnonzero(full["verdict"] < 2)
    assert 0 < len(fits) < table.size(t)  # both kinds of plans

    def same(a, b, rows, path=""):
        if isinstance(a, dict):
            assert set(a) == set(b), path
            for k in a:
                same(a[k], b[k], rows, f"{path}.{k}")
        else:
            assert np.array_equal(np.asarray(a)[rows] if np.ndim(a) else a, b, equal_nan=True), path

    for peak in (None, full["memory"]["stage"]):
        ev, rows = evaluate_fitting(ctx, t, peak)
        assert np.array_equal(rows, fits)
        same(full, ev, fits)


def test_bounded_search_skips_plans_left_untimed(monkeypatch):
    """The search without counts times only the plans not out of memory (evaluate_fitting): the same plans,
    times and memory as timing every plan it takes."""
    from planner.estimate.evaluate import evaluate_table
    from planner.search import solver

    sc = scenario(model="mixtral-8x7b", node="hgx-h100", nodes=2, gb={"min": 32, "max": 128})
    fitting = solve(sc, objective="time", top=3, counts=False)
    monkeypatch.setattr(solver, "evaluate_fitting",
                        lambda ctx, t, peak=None: (evaluate_table(ctx, t, peak), np.arange(table.size(t))))
    every = solve(sc, objective="time", top=3, counts=False)
    assert fitting["plans"] and fitting["plans"] == every["plans"]


def test_bounded_rows_refines_only_plans_its_first_bound_keeps():
    """bounded_rows keeps the plans an evaluation of every plan keeps (each plan whose tokens/s reaches the
    keep-th best score over the tie band), and refines only the plans of a chunk whose first bound reaches
    the threshold in force (the keep-th best score found so far over the tie band): the rest of the last
    chunk is not refined."""
    from planner.search import solver
    from planner.search.rank import TIE, TIGHT_PENALTY

    rng = np.random.default_rng(7)
    n, seq = 20_000, 4096
    t = {"dp": rng.choice([4, 8], n), "mbs": np.ones(n, dtype=np.int64), "ga": np.full(n, 4)}
    tokens = t["dp"] * t["mbs"] * t["ga"] * seq
    lb = rng.uniform(1.0, 3.0, n)
    exact = lb * rng.uniform(1.0, 1.5, n)  # the refined bound: loose enough that the search takes several chunks
    step = exact * rng.uniform(1.0, 1.1, n)
    verdict = rng.choice([0, 1, 2], n, p=[0.3, 0.2, 0.5])
    tps = tokens / step
    score = np.where(verdict < 2, tps * np.where(verdict == 1, TIGHT_PENALTY, 1.0), -np.inf)
    state = {"threshold": 0.0, "refined": 0}

    def refine(rows):
        assert np.all(tokens[rows] / lb[rows] >= state["threshold"] * (1 - 1e-9))
        state["refined"] += len(rows)
        return exact[rows]

    for keep in (1, 5):
        state.update(threshold=0.0, refined=0)
        search = solver.bounded_rows(t, lb.copy(), seq, keep, 64, refine)
        rows, seen = next(search), []
        try:
            while True:
                seen.append(rows)
                found = score[np.concatenate(seen)]
                if np.count_nonzero(found > -np.inf) >= keep:
                    state["threshold"] = np.sort(found)[-keep] / TIE
                ev = {"verdict": verdict[rows], "tokens_per_s": tps[rows], "step_s": step[rows]}
                rows = search.send((ev, np.arange(len(rows))))
        except StopIteration as done:
            found, _ = done.value
        threshold = np.sort(score)[-keep] / TIE
        assert np.array_equal(found, np.flatnonzero((verdict < 2) & (tps >= threshold * (1 - 1e-9))))
        assert len(seen) >= 3 and 0 < len(np.concatenate(seen)) <= state["refined"] < n
