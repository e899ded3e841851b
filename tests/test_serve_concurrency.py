"""At a fixed concurrency the serving search factors the table (planner.serve.concurrency) instead of
listing every replica count x prefill split; the ranked plans, their order and the counts must equal
those of the full listing."""

import copy
import json

import pytest
import yaml

from planner.serve import concurrency, search
from planner.spec.serving import load_serving_scenario

from test_serve_bisect import BASE as RATE_BASE, TINY, shared_variants

# the bisection test's scenario with a fixed concurrency instead of a request rate
BASE = copy.deepcopy(RATE_BASE)
del BASE["serving"]["requests_per_s"]
BASE["serving"]["concurrency"] = 300


def _variants():
    shared = shared_variants(BASE, "concurrency", 2000)
    no_slo = shared[-1][1]
    few = copy.deepcopy(BASE)  # fewer requests than GPUs: the replica count is capped by the concurrency
    few["serving"]["concurrency"] = 12
    few["serving"]["input_tokens"] = 512
    coloc = copy.deepcopy(BASE)
    coloc["search"]["disaggregated"] = [False]
    only_dis = copy.deepcopy(BASE)
    only_dis["search"]["disaggregated"] = [True]
    none = copy.deepcopy(BASE)
    none["serving"]["slo"] = {"ttft_ms_p90": 0.001}
    tight = copy.deepcopy(BASE)  # no plan meets TPOT: the explanation's minima come from the factored rows
    tight["serving"]["slo"] = {"ttft_ms_p90": 300, "tpot_ms_p90": 0.01}
    broke = copy.deepcopy(BASE)
    broke["budget"] = {"max_usd_per_hour": 1}
    huge = copy.deepcopy(BASE)  # no layout holds the weights
    huge["model"] = {**TINY, "layers": 400, "hidden": 16384, "heads": 128, "kv_heads": 8, "ffn_hidden": 65536}
    huge["cluster"]["nodes"] = 1
    feasible = shared + [("throughput", no_slo), ("cost", few), ("latency", coloc), ("cost", only_dis)]
    infeasible = [("cost", none), ("cost", tight), ("cost", broke), ("cost", huge)]
    return [(o, d, True) for o, d in feasible] + [(o, d, False) for o, d in infeasible]


@pytest.mark.parametrize("objective,data,any_plan", _variants())
def test_factored_concurrency_search_ranks_as_the_full_table(tmp_path, objective, data, any_plan, monkeypatch):
    monkeypatch.setattr(concurrency, "BLOCK_ROWS", 40)  # several blocks of groups, on two threads
    monkeypatch.setattr(concurrency, "THREADS", 2)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    sc = load_serving_scenario(path)
    full = search.solve_serving(sc, objective=objective, bisect=False)
    calls = []
    factored = concurrency.search
    monkeypatch.setattr(concurrency, "search", lambda *a, **k: calls.append(1) or factored(*a, **k))
    fast = search.solve_serving(sc, objective=objective)
    assert calls  # the factored search ran (else both sides would be the full listing)
    assert json.dumps(fast, sort_keys=True, default=str) == json.dumps(full, sort_keys=True, default=str)
    assert full["evaluated"] > (1000 if data["cluster"]["nodes"] > 1 else 100)  # every count and split was listed
    assert bool(fast["plans"]) == any_plan  # where none: the explanation was compared above


def test_row_count_formula():
    import numpy as np

    m = np.array([1, 3, 8])
    assert concurrency.count_rows(m, [1, 2, 4], True) == 12 + (0 + 2 + 7) + (0 + 1 + 6) + (0 + 0 + 4)
    assert concurrency.count_rows(m, [1], False) == 9


def test_disaggregated_only_at_concurrency_one_names_the_concurrency(tmp_path):
    """At concurrency 1 a plan has one instance, so no plan is disaggregated, on any number of GPUs; the
    explanation names the concurrency, not the GPU count (32 GPUs hold two instances)."""
    data = copy.deepcopy(BASE)
    data["serving"]["concurrency"] = 1
    data["search"]["disaggregated"] = [True]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    out = search.solve_serving(load_serving_scenario(path))
    assert not out["plans"] and out["evaluated"] == 0
    assert "concurrency 1" in out["infeasible"]["reasons"][0]
    assert "add false to search.disaggregated" in out["infeasible"]["fixes"][0]["change"]
