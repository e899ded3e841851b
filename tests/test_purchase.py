"""`planner compare`: purchase files, costs by the stated formula, Pareto flags, the budgeted best mix
(against brute force), sensitivity, CSV output and bad input."""

import itertools
import json

import pytest
from click.testing import CliRunner

from planner.cli import main
from planner.errors import InputError
from planner.purchase import evaluate, parse_vary, pareto_flags, sensitivity
from planner.purchase_mix import best_mix
from planner.spec.purchase import load_purchases

from conftest import ROOT, write

runner = CliRunner()
SHIPPED = ROOT / "scenarios" / "purchases.yaml"

# Small file: one rented and one owned option at 1 and 2 nodes, two small dense workloads. Every
# number is explicit so that the tests below can recompute the dollars by hand.
SMALL = """
name: small
clusters:
  - name: h100-rent
    node: hgx-h100
    nodes: [1, 2]
    cloud: {usd_per_gpu_hour: 3.0}
  - name: b200-buy
    node: dgx-b200
    nodes: [1, 2]
    owned: {capex_usd_per_node: 400000, power_kw: 14.0, pue: 1.5, usd_per_kwh: 0.1, amortisation_years: 4,
            overhead_usd_per_node_year: 10000}
workloads:
  - {name: small-8b, model: llama-3.1-8b, seq_len: 4096, global_batch: 256, tokens: 2.0e10, weight: 2}
  - {name: small-7b, model: qwen2.5-7b, seq_len: 4096, global_batch: 256, tokens: 1.0e10}
"""
CLOUD = {"h100-rent": 3.0}
OWNED = {"b200-buy": dict(capex=400000, kw=14.0, pue=1.5, kwh=0.1, years=4, overhead=10000)}
GPUS_PER_NODE = 8


def run(*args):
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def shipped():
    r = run("compare", SHIPPED, "--json", "--vary", "price=±20%", "--vary", "utilisation=-10%")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = write(tmp_path_factory.mktemp("small"), "small.yaml", SMALL)
    pf = load_purchases(path)
    return path, pf, evaluate(pf, workers=1)


def hand_cost(option: str, nodes: int, days: float) -> float:
    """The README formula, written out again."""
    if option in CLOUD:
        return nodes * GPUS_PER_NODE * 24 * days * CLOUD[option]
    o = OWNED[option]
    return nodes * (days / 365 * (o["capex"] / o["years"] + o["overhead"]) + o["kw"] * o["pue"] * 24 * days * o["kwh"])


def test_shipped_file_every_row_has_plan_or_reason(shipped):
    pf = load_purchases(SHIPPED)
    assert len(pf.clusters) >= 5 and len(pf.workloads) >= 3
    assert len(shipped["options"]) == sum(len(c.node_counts) for c in pf.clusters) * len(pf.workloads)
    for r in shipped["options"]:
        assert {"cluster", "workload", "plan", "days", "cost_usd", "pareto"} <= set(r)
        if r["plan"] is None:
            assert r["reason"] and r["days"] is None and r["cost_usd"] is None and r["pareto"] is False
        else:
            assert r["days"] > 0 and r["cost_usd"] > 0 and r["mfu"] == r["plan"]["throughput"]["mfu"] > 0
            assert r["days"] == r["plan"]["run"]["days"]
            assert r["plan"]["run"]["cost_usd"] == r["cost_usd"]
    mix = shipped["best_mix"]  # the file's budget_usd
    assert mix["status"] == "optimal" and mix["cost_usd"] <= mix["budget_usd"] == pf.budget_usd
    assert set(mix["nodes"]) == {c.name for c in pf.clusters}
    assert shipped["sensitivity"] and all({"vary", "change", "cluster", "changes"} <= set(e)
                                           for e in shipped["sensitivity"])


@pytest.mark.parametrize("cluster,workload,formula", [
    ("h100-cloud x8", "dense-70b", lambda d: 8 * 8 * 24 * d * 2.99),
    ("h200-cloud x4", "moe-8x7b", lambda d: 4 * 8 * 24 * d * 7.912),
    ("b200-owned x4", "dense-8b", lambda d: 4 * (d / 365 * 379273 / 5 + 14.3 * 1.58 * 24 * d * 0.0806)),
    ("a100-owned x16", "dense-70b", lambda d: 16 * (d / 365 * 300000 / 5 + 6.5 * 1.58 * 24 * d * 0.0806)),
])
def test_shipped_costs_follow_the_formula(shipped, cluster, workload, formula):
    r = next(r for r in shipped["options"] if r["cluster"] == cluster and r["workload"] == workload)
    assert r["cost_usd"] == pytest.approx(formula(r["days"]), abs=0.01)
    assert r["tokens_per_usd"] == pytest.approx(load_purchases(SHIPPED).workloads[
        [w.name for w in load_purchases(SHIPPED).workloads].index(workload)].tokens / r["cost_usd"], rel=1e-6)


def dominated(p, others):
    return any(q[0] <= p[0] and q[1] <= p[1] and (q[0] < p[0] or q[1] < p[1]) for q in others)


def test_shipped_pareto_flags(shipped):
    workloads = {r["workload"] for r in shipped["options"]}
    for w in workloads:
        mine = [r for r in shipped["options"] if r["workload"] == w and r["plan"]]
        points = [(r["days"], r["cost_usd"]) for r in mine]
        assert any(r["pareto"] for r in mine)
        for r in mine:
            assert r["pareto"] == (not dominated((r["days"], r["cost_usd"]), points)), r["cluster"]
    runs_all = [o for o in shipped["overall"] if o["runs_all"]]
    points = [(o["weighted_days"], o["weighted_cost_usd"]) for o in runs_all]
    for o in runs_all:
        assert o["pareto"] == (not dominated((o["weighted_days"], o["weighted_cost_usd"]), points))


def test_pareto_flags_ties_and_missing():
    pts = [(1.0, 5.0), (2.0, 4.0), (2.0, 4.0), (3.0, 4.0), None, (0.5, 9.0), (1.0, 6.0)]
    assert pareto_flags(pts) == [True, True, True, False, False, True, False]
    assert pareto_flags([None, None]) == [False, False]


def test_small_costs_use_explicit_terms(small):
    _, _, result = small
    for r in result["options"]:
        assert r["plan"] is not None, r["reason"]
        assert r["cost_usd"] == pytest.approx(hand_cost(r["option"], r["nodes"], r["days"]), abs=0.01)
        if r["pricing"] == "owned":
            assert set(r["cost_breakdown_usd"]) == {"capex", "overhead", "energy"}


def brute_force(pf, rows, budget):
    """Every purchase (0 or one listed count per option) x every assignment: the least weighted days
    within the budget, and the same restricted to single-type purchases."""
    by = {(r["workload"], r["option"], r["nodes"]): r for r in rows if r["plan"]}
    choices = [[0] + c.node_counts for c in pf.clusters]
    best, best_single = None, None
    for counts in itertools.product(*choices):
        bought = [(c.name, n) for c, n in zip(pf.clusters, counts) if n]
        fixed = sum(n * OWNED[c]["capex"] for c, n in bought if c in OWNED)
        for assign in itertools.product(bought, repeat=len(pf.workloads)):
            if set(assign) != set(bought) or any((w.name, c, n) not in by for w, (c, n) in zip(pf.workloads, assign)):
                continue
            money, wdays = fixed, 0.0
            for w, (c, n) in zip(pf.workloads, assign):
                d = by[(w.name, c, n)]["days"]
                wdays += w.weight * d
                money += hand_cost(c, n, d) - (n * d / 365 * OWNED[c]["capex"] / OWNED[c]["years"] if c in OWNED else 0)
            if money <= budget:
                best = wdays if best is None else min(best, wdays)
                if len(bought) == 1:
                    best_single = wdays if best_single is None else min(best_single, wdays)
    return best, best_single


@pytest.mark.parametrize("budget", [2.0e4, 4.5e5, 9.0e5, 5.0e6])
def test_best_mix_within_budget_and_optimal(small, budget):
    _, pf, result = small
    mix = best_mix(pf, result["options"], budget)
    best, best_single = brute_force(pf, result["options"], budget)
    if best is None:
        assert mix["status"] == "infeasible" and mix["reason"]
        return
    assert mix["status"] == "optimal"
    assert mix["cost_usd"] <= budget and mix["budget_left_usd"] == pytest.approx(budget - mix["cost_usd"], abs=0.01)
    # the money, recomputed from the chosen rows: capex of what was bought + running costs
    spent = sum(b["nodes"] * OWNED[b["option"]]["capex"] for b in mix["bought"] if b["pricing"] == "owned")
    spent += sum(a["cost_usd"] for a in mix["assignments"])
    assert spent == pytest.approx(mix["cost_usd"], abs=0.05) and spent <= budget + 0.05
    assert mix["weighted_days"] == pytest.approx(best, abs=1e-3)
    if best_single is not None:
        assert mix["weighted_days"] <= best_single + 1e-3
        assert mix["best_single"]["weighted_days"] == pytest.approx(best_single, abs=1e-3)
    assert {a["workload"] for a in mix["assignments"]} == {w.name for w in pf.workloads}
    assert sum(1 for n in mix["nodes"].values() if n) == len(mix["bought"])


def test_best_mix_too_small_budget_says_why(small):
    _, pf, result = small
    mix = best_mix(pf, result["options"], 10.0)
    assert mix["status"] == "infeasible" and "over the budget" in mix["reason"] and mix["cost_usd"] is None


def test_deadline_excludes_slow_options(tmp_path):
    text = SMALL.replace("weight: 2}", "weight: 2, deadline_days: 1.0e-3}")
    pf = load_purchases(write(tmp_path, "p.yaml", text))
    result = evaluate(pf, workers=1)
    assert all(r["meets_deadline"] is False for r in result["options"] if r["workload"] == "small-8b")
    mix = best_mix(pf, result["options"], 1e7)
    assert mix["status"] == "infeasible" and "small-8b" in mix["reason"]


def test_sensitivity_detects_a_flip(tmp_path):
    text = """
clusters:
  - {name: cheap, node: hgx-h100, nodes: 1, cloud: {usd_per_gpu_hour: 1.0}}
  - {name: dear, node: dgx-h100, nodes: 1, cloud: {usd_per_gpu_hour: 1.1}}
workloads:
  - {name: w, model: llama-3.1-8b, seq_len: 4096, global_batch: 256, tokens: 1.0e9}
"""
    pf = load_purchases(write(tmp_path, "p.yaml", text))
    result = evaluate(pf, workers=1)
    assert result["searches"] == 1  # same hardware, different price: one search
    out = {(e["cluster"], e["change"]): e["changes"] for e in sensitivity(pf, result["options"], parse_vary(["price=±20%"]))}
    assert out[("dear", -0.2)][0]["cheapest"] == ["cheap x1", "dear x1"]
    assert out[("cheap", 0.2)][0]["cheapest"] == ["cheap x1", "dear x1"]
    assert out[("cheap", -0.2)] == [] and out[("dear", 0.2)] == []
    assert sensitivity(pf, result["options"], parse_vary(["power=10%"])) == []  # cloud prices include power


@pytest.mark.parametrize("text,expected", [
    ("price=±20%", ("price", (-0.2, 0.2))), ("power=+-10%", ("power", (-0.1, 0.1))),
    ("utilization=-15%", ("utilisation", (-0.15,))), ("price=+5%", ("price", (0.05,))),
    ("price=20%", ("price", (-0.2, 0.2))),
])
def test_parse_vary(text, expected):
    got = parse_vary([text])[0]
    assert got[0] == expected[0] and got[1] == pytest.approx(expected[1])


@pytest.mark.parametrize("text", ["price", "price=20", "speed=±20%", "utilisation=-100%", "price=0%"])
def test_parse_vary_rejects(text):
    with pytest.raises(InputError):
        parse_vary([text])


def test_no_fit_gets_a_reason(tmp_path):
    text = """
clusters:
  - {name: small-a100, node: hgx-a100-40gb, nodes: 1, owned: {}}
workloads:
  - {name: huge, model: llama-3.1-405b, seq_len: 4096, global_batch: 8, tokens: 1.0e9,
     search: {offload: [none], offload_params: [none]}}
"""
    r = run("compare", write(tmp_path, "p.yaml", text), "--json")
    assert r.exit_code == 1
    row = json.loads(r.stdout)["options"][0]
    assert row["plan"] is None and row["days"] is None and row["pareto"] is False and row["reason"]


def test_csv_is_written_once_without_force(small, tmp_path):
    path, _, _ = small
    out = tmp_path / "rows.csv"
    r = run("compare", path, "--csv", out, "--workers", "1", "--budget", "5e6")
    assert r.exit_code == 0, r.output
    assert "best mix" in r.stdout and "Pareto" in r.stdout
    lines = out.read_text().splitlines()
    assert lines[0].startswith("cluster,option,node") and len(lines) == 1 + 8
    before = out.read_text()
    r = run("compare", path, "--csv", out)
    assert r.exit_code == 2 and "--force" in r.stderr and out.read_text() == before
    assert run("compare", path, "--csv", out, "--force", "--workers", "1").exit_code == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rows.csv")]  # no temporary left


def test_validate_accepts_purchase_files():
    r = run("validate", SHIPPED)
    assert r.exit_code == 0 and "valid purchase file" in r.stdout


GOOD_CLUSTER = "{name: a, node: hgx-h100, nodes: [1, 2], cloud: {usd_per_gpu_hour: 2}}"
GOOD_WORKLOAD = "{name: w, model: llama-3.1-8b, seq_len: 4096, global_batch: 256, tokens: 1.0e9}"


@pytest.mark.parametrize("clusters,workloads,key", [
    ("[{name: a, node: hgx-h100, nodes: 1, cloud: {usd_per_gpu_hr: 2}}]", f"[{GOOD_WORKLOAD}]",
     "clusters.0.cloud.usd_per_gpu_hr"),
    ("[{name: a, node: hgx-h10, nodes: 1, cloud: {}}]", f"[{GOOD_WORKLOAD}]", "clusters.0.node"),
    ("[{name: a, node: hgx-h100, nodes: 1}]", f"[{GOOD_WORKLOAD}]", "clusters.0"),
    ("[{name: a, node: hgx-h100, nodes: 1, cloud: {}, owned: {}}]", f"[{GOOD_WORKLOAD}]", "clusters.0"),
    ("[{name: a, node: hgx-h200, nodes: 1, owned: {}}]", f"[{GOOD_WORKLOAD}]", "clusters.0"),  # no power_kw
    ("[{name: a, node: mi300x-8, nodes: [1, 2], cloud: {}}]", f"[{GOOD_WORKLOAD}]", "clusters.0"),  # no scale-out
    ("[{name: a, node: hgx-h100, nodes: 0, cloud: {}}]", f"[{GOOD_WORKLOAD}]", "clusters.0.nodes"),
    ("[{name: a, node: dgx-h100, nodes: 1, owned: {pue: 0.5}}]", f"[{GOOD_WORKLOAD}]", "clusters.0.owned.pue"),
    (f"[{GOOD_CLUSTER}]", "[{name: w, model: llama-3.1-8, seq_len: 4096, global_batch: 256, tokens: 1e9}]",
     "workloads.0.model"),
    (f"[{GOOD_CLUSTER}]", "[{name: w, model: llama-3.1-8b, seq_len: 4096, global_batch: 256}]",
     "workloads.0.tokens"),
    (f"[{GOOD_CLUSTER}]", f"[{GOOD_WORKLOAD}, {GOOD_WORKLOAD}]", "(top level)"),
    (f"[{GOOD_CLUSTER}]", "[]", "workloads"),
])
def test_bad_purchase_files_exit_2_naming_the_key(tmp_path, clusters, workloads, key):
    p = write(tmp_path, "bad.yaml", f"clusters: {clusters}\nworkloads: {workloads}\n")
    for command in ("compare", "validate"):
        r = run(command, p)
        assert r.exit_code == 2, r.output
        assert str(p) in r.stderr and f"{key}:" in r.stderr and "Traceback" not in r.stderr


def test_bad_vary_and_budget_exit_2(small):
    path, _, _ = small
    r = run("compare", path, "--vary", "speed=10%")
    assert r.exit_code == 2 and "--vary" in r.stderr
    assert run("compare", path, "--budget", "-5").exit_code == 2


def test_csv_names_cannot_become_spreadsheet_formulas(tmp_path):
    """A name that starts with = + - @ is a formula to a spreadsheet opening the CSV (OWASP 'CSV
    injection'); such text cells are written with a leading apostrophe, numbers as they are."""
    import csv

    text = SMALL.replace("name: h100-rent", "name: '=HYPERLINK(\"http://x\",\"y\")'") \
                .replace("name: small-7b", "name: '@SUM(1,2)'").replace("name: b200-buy", "name: '-b200'")
    path = write(tmp_path, "p.yaml", text)
    out = tmp_path / "rows.csv"
    assert run("compare", path, "--csv", out, "--workers", "1").exit_code == 0
    rows = list(csv.DictReader(out.open()))
    cells = [r[c] for r in rows for c in ("cluster", "option", "workload")]
    assert not [c for c in cells if c[:1] in "=+-@"], cells
    assert {r["option"] for r in rows} == {"'=HYPERLINK(\"http://x\",\"y\")", "'-b200"}
    assert {r["workload"] for r in rows} == {"small-8b", "'@SUM(1,2)"}
    assert all(float(r["days"]) > 0 for r in rows if r["days"])


def test_csv_and_report_on_one_path_fail_before_any_work(small, tmp_path):
    """compare --csv X --report X wrote the CSV, then failed on the report ('file exists'), after the
    whole comparison; with --force the report replaced the CSV."""
    path, _, _ = small
    same = tmp_path / "out.txt"
    for extra in ([], ["--force"]):
        r = run("compare", path, "--csv", same, "--report", same, *extra)
        assert r.exit_code == 2 and "same path" in r.stderr and not same.exists(), r.output
