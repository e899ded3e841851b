"""At a fixed concurrency the serving search factors the table (planner.serve.concurrency) instead of
listing every replica count x prefill split; the ranked plans, their order and the counts must equal
those of the full listing."""

import copy
import json

import numpy as np
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


# Little's law on the closed loop (evaluate.disagg_closed_loop): the C requests in flight are either on the
# prefill side (queue, prefill, KV move: X x TTFT of them) or decoding (X x (output - 1) x TPOT).
H20_72B = {"name": "qwen2.5-72b at concurrency 32", "model": "qwen2.5-72b", "cluster": {"node": "hgx-h20", "nodes": 1},
           "serving": {"input_tokens": 2048, "output_tokens": 512, "concurrency": 32},
           "search": {"engines": ["vllm", "trtllm"], "weights": ["bf16", "fp8"], "kv_cache": ["fp8"]}}


def _scenario(tmp_path, data):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_serving_scenario(path)


def _cycle_count(ev, sc):
    """X x (mean TTFT + (output - 1) x TPOT): the requests in flight Little's law counts."""
    out = ev["ctx"].out_mean
    with np.errstate(invalid="ignore"):  # plans that cannot serve: 0 x inf
        return ev["out_tok_s"] / out * (ev["ttft"]["mean"] + (out - 1) * ev["tpot"]["p50"])


@pytest.mark.parametrize("data", [H20_72B, BASE], ids=["qwen72b-h20", "tiny-h100"])
def test_every_plan_at_a_fixed_concurrency_obeys_littles_law(tmp_path, data):
    """Every plan of the listing (the ranked ones among them): disaggregated ones to the fixed point's tolerance;
    colocated ones fold each prompt's prefill into the mean iteration, so their cycle is output x TPOT (+ the
    wait for a batch slot) and X (TTFT + (output - 1) TPOT) counts the prompt's own prefill once more: above C
    by at most X x (TTFT - TPOT)."""
    from planner.serve import evaluate as V

    sc = _scenario(tmp_path, data)
    t = search.candidate_table(sc)
    ev = V.evaluate(sc, t)
    conc = sc.serving.concurrency
    ok = ev["out_tok_s"] > 0
    dis = t["prefill_replicas"] > 0
    n = _cycle_count(ev, sc)
    assert (ok & dis).sum() > 100 and (ok & ~dis).sum() > 100
    assert n[ok & dis] == pytest.approx(conc, rel=1e-6)
    co = ok & ~dis
    x = ev["out_tok_s"][co] / ev["ctx"].out_mean
    assert (n[co] >= conc * (1 - 1e-9)).all()
    assert (n[co] <= conc + x * (ev["ttft"]["mean"][co] - ev["tpot"]["p50"][co]) + 1e-6 * conc).all()
    # the decode pool of a disaggregated plan holds only the decoding share of C, and TPOT is timed at it
    b, reps = ev["batch"][ok & dis], t["replicas"][ok & dis]
    x = ev["out_tok_s"][ok & dis] / ev["ctx"].out_mean
    assert b * reps == pytest.approx(x * (ev["ctx"].out_mean - 1) * ev["tpot"]["p50"][ok & dis], rel=1e-6)
    assert (b * reps < conc).all()
    plans = search.solve_serving(sc)["plans"]
    assert plans


def test_qwen72b_on_two_h20_disaggregated_at_concurrency_32(tmp_path):
    """The audit's case: 1 prefill + 1 decode instance, 32 clients, 2,048 / 512 tokens. It counted every request
    as decoding (303.7 output tokens/s, while 32 / (TTFT p50 + 511 x TPOT) x 512 = 277). Now the clients are
    split by the cycle, so the rate is at most the audit's bound with the p50 TTFT (the mean wait is at least
    the median) and equals it with the mean TTFT."""
    from planner.serve import evaluate as V
    from planner.serve.plan import parse_serve_plan

    sc = _scenario(tmp_path, H20_72B)
    t = parse_serve_plan("engine=trtllm,weights=fp8,kv_cache=fp8,tp=1,replicas=1,prefill_replicas=1", sc)
    ev = V.evaluate(sc, t)
    out = 512
    tok_s, tpot = ev["out_tok_s"][0], ev["tpot"]["p50"][0]
    assert tok_s <= 32 * out / (ev["ttft"]["p50"][0] + (out - 1) * tpot) * (1 + 1e-9)
    assert tok_s == pytest.approx(32 * out / (ev["ttft"]["mean"][0] + (out - 1) * tpot), rel=1e-6)
    assert 1 < ev["batch"][0] < 32  # some of the 32 wait for the single prefill instance


def test_a_prefill_bound_disaggregated_plan_queues_its_clients_at_the_prefill_pool(tmp_path):
    """8,000-token prompts, 64 output tokens, 256 clients, one prefill instance for three decode instances: the
    prefill pool sets the rate (its capacity), nearly every client waits for it, and the decode pool runs
    nearly empty (short TPOT); Little's law holds on the whole cycle."""
    from planner.serve import evaluate as V
    from planner.serve.plan import parse_serve_plan

    data = {"name": "prefill-bound", "model": "llama-3.1-70b", "cluster": {"node": "dgx-h100", "nodes": 1},
            "serving": {"input_tokens": 8000, "output_tokens": 64, "concurrency": 256},
            "search": {"engines": ["vllm"], "weights": ["fp8"], "kv_cache": ["fp8"]}}
    sc = _scenario(tmp_path, data)
    plan = "engine=vllm,weights=fp8,kv_cache=fp8,tp=2,replicas=3"
    ev = V.evaluate(sc, parse_serve_plan(plan + ",prefill_replicas=1", sc))
    full = V.evaluate(sc, parse_serve_plan(plan + ",prefill_replicas=1,max_batch=1", sc))  # decode steps of one
    assert ev["out_tok_s"][0] == pytest.approx(ev["capacity_tok_s"][0], rel=0.01)
    assert _cycle_count(ev, sc)[0] == pytest.approx(256, rel=1e-6)
    x = ev["out_tok_s"][0] / 64
    assert x * ev["ttft"]["mean"][0] > 0.95 * 256  # the queue at the prefill pool holds nearly every client
    assert ev["batch"][0] * 3 < 0.05 * 256
    assert ev["tpot"]["p50"][0] < 1.2 * full["tpot"]["p50"][0]  # TPOT near that of a one-sequence step
