"""The ranking says what it does: strict order by the objective, marks where the tie band or the
tight penalty departs from it, and a plan table that fits a 100-column terminal."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from planner import load_scenario
from planner.report import console as C
from planner.search.rank import order, preferred
from planner.search.solver import solve
from conftest import ROOT


def random_keys(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"tokens_per_s": rng.uniform(100, 103, n), "days": rng.uniform(1, 1.03, n),
            "cost_usd": rng.uniform(100, 103, n), "verdict": rng.integers(0, 2, n), "pp": rng.integers(1, 4, n),
            "vpp": np.ones(n, int), "cp": rng.integers(1, 3, n), "ep": np.ones(n, int), "offload": np.zeros(n, int),
            "offload_params": np.zeros(n, int), "memory_total": rng.uniform(1, 2, n)}


RAW = {"throughput": lambda k: k["tokens_per_s"], "time": lambda k: 1 / k["days"], "cost": lambda k: 1 / k["cost_usd"]}


@pytest.mark.parametrize("objective", ["throughput", "time", "cost"])
def test_strict_is_the_objective_alone_and_marks_say_when_the_default_departs(objective):
    keys = random_keys(300, seed=len(objective))
    raw = RAW[objective](keys)
    strict = order(keys, objective, strict=True)
    assert np.all(np.diff(raw[strict]) <= 0)
    assert preferred(keys, objective, strict, 50) == [None] * 50
    ranked = order(keys, objective)
    marks = preferred(keys, objective, ranked, 50)
    for p, why in enumerate(marks):
        better_below = raw[ranked[p + 1:]].max() > raw[ranked[p]] * (1 + 1e-12)
        assert (why is not None) == better_below
    assert any(marks)  # with 1-3% spreads the band and the penalty do act


def test_solve_strict_ranks_by_cost_and_default_marks_its_departures():
    sc = load_scenario(ROOT / "scenarios" / "32b_16gpu.yaml")
    strict = solve(sc, objective="cost", top=10, strict=True)
    costs = [p["run"]["cost_usd"] for p in strict["plans"]]
    assert costs == sorted(costs) and strict["ranking"]["strict"] is True
    default = solve(sc, objective="cost", top=10)
    shown = default["plans"]
    for i, p in enumerate(shown):
        cheaper_below = any(q["run"]["cost_usd"] < p["run"]["cost_usd"] * (1 - 1e-9) for q in shown[i + 1:])
        if cheaper_below:
            assert p["preferred"] in ("tie", "tight", "tight+tie")
    assert set(default["ranking"]["reasons"]) == {"tie", "tight"}


def wide_row(i: int) -> dict:
    """A plan row with the widest values the table can meet."""
    plan = {"framework": "torchtitan", "precision": "bf16", "dp": 1024, "tp": 8, "pp": 16, "vpp": 4, "cp": 16,
            "ep": 64, "sp": True, "zero": 3, "offload": "nvme", "offload_params": "nvme", "recompute": "selective",
            "mbs": 16, "ga": 1024}
    return {"plan": plan, "memory": {"per_gpu_gib": 139.9, "verdict": "tight"}, "time": {"step_s": 1234.56},
            "throughput": {"mfu": 0.555, "tokens_per_s_per_gpu": 1234.0}, "run": {"days": 1234.5, "cost_usd": 1.234e9},
            "preferred": "tight+tie" if i % 2 else None}


def test_plan_table_fits_100_columns_without_cutting_a_cell():
    rows = [wide_row(i) for i in range(1, 11)]
    con = Console(width=100, record=True, color_system=None)
    with con.capture() as cap:
        con.print(C.plans_table(rows, "title"))
    text = cap.get()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 100
    for cell in ("torchtitan", "sel", "o:nvme", "p:nvme", "16x1024", "139.9 tight", "1234.56", "55.5%",
                 "1234.5", "$1,234.0M", "9*"):
        assert cell in text
    assert "pp16x4" in text and "ep64" in text  # the layout may fold onto a second line, never be cut


def test_typical_rows_take_one_line_at_100_columns():
    sc = load_scenario(ROOT / "scenarios" / "405b_16k.yaml")
    result = solve(sc, objective="cost", top=10)
    con = Console(width=100, record=True, color_system=None)
    with con.capture() as cap:
        con.print(C.plans_table(result["plans"], "t"))
    lines = [line for line in cap.get().splitlines() if line.strip()]
    assert len(lines) == 3 + len(result["plans"])  # title, header, rule, one line per plan


def test_cli_strict_flag_reaches_the_ranking(tmp_path):
    import json

    from click.testing import CliRunner

    from planner.cli import main

    path = str(ROOT / "scenarios" / "32b_16gpu.yaml")
    r = CliRunner().invoke(main, ["solve", path, "--objective", "cost", "--strict", "--json", "--top", "5"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    costs = [p["run"]["cost_usd"] for p in out["plans"]]
    assert out["ranking"]["strict"] and costs == sorted(costs) and "points" not in out
    r = CliRunner().invoke(main, ["export", path, "--rank", "1", "--strict", "-o", str(tmp_path / "x")])
    assert r.exit_code == 0, r.output
