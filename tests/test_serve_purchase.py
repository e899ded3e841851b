"""planner compare with serving workloads: the serve search on each option, priced with the
option's pricing for the hours a year the traffic runs."""

import json
import math

from click.testing import CliRunner

from planner.cli import main
from planner.purchase import compare
from planner.spec.purchase import load_purchases

from conftest import write

runner = CliRunner()
FILE = """
name: train in spring, serve all year
clusters:
  - {name: cloud, node: dgx-h100, nodes: [1, 2], cloud: {usd_per_gpu_hour: 2.5}}
  - {name: owned, node: dgx-h100, nodes: [2], owned: {capex_usd_per_node: 300000, power_kw: 10, pue: 1.5,
                                                       usd_per_kwh: 0.1, amortisation_years: 5}}
workloads:
  - {name: train-8b, model: llama-3.1-8b, seq_len: 4096, global_batch: 256, tokens: 1.0e10}
serving_workloads:
  - name: chat-8b
    model: llama-3.1-8b
    serving: {input_tokens: 1024, output_tokens: 256, requests_per_s: 20, slo: {tpot_ms_p90: 50}}
    search: {engines: [vllm], weights: [bf16, fp8], kv_cache: [fp8]}
    hours_per_year: 4000
"""


def test_serving_workloads_are_priced_per_option(tmp_path):
    pf = load_purchases(write(tmp_path, "p.yaml", FILE))
    res = compare(pf, workers=1)
    assert [r["workload"] for r in res["options"]] == ["train-8b"] * 3  # training rows unchanged
    rows = res["serving"]
    assert len(rows) == 3 and all(r["kind"] == "serving" for r in rows)
    for r in rows:
        assert r["plan"] is not None and r["gpus_needed"] <= r["gpus"]
        assert r["plan"]["latency"]["tpot_ms"]["p90"] <= 50
        g, h = r["gpus_needed"], 4000.0
        if r["pricing"] == "cloud":
            assert math.isclose(r["cost_per_year_usd"], g * h * 2.5, rel_tol=1e-6)
        else:
            n = math.ceil(g / 8)
            want = n * (h / 8760 * 300000 / 5 + 10 * 1.5 * h * 0.1)
            assert math.isclose(r["cost_per_year_usd"], want, rel_tol=1e-6)
        tokens = r["output_tokens_per_s"] * 3600 * h
        assert math.isclose(r["usd_per_million_output_tokens"], r["cost_per_year_usd"] / tokens * 1e6, rel_tol=1e-3)
    # the same plan needs the same GPUs on 1 or 2 cloud nodes: the same cost; both on the front
    cloud = [r for r in rows if r["pricing"] == "cloud"]
    assert cloud[0]["gpus_needed"] == cloud[1]["gpus_needed"]
    assert any(r["pareto"] for r in rows)


def test_serving_only_file_and_errors(tmp_path):
    only = FILE.split("workloads:\n  - {name: train-8b")[0] + "serving_workloads:" + FILE.split("serving_workloads:")[1]
    r = runner.invoke(main, ["compare", str(write(tmp_path, "s.yaml", only)), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["options"] == [] and len(data["serving"]) == 3
    none = FILE.split("workloads:\n  - {name: train-8b")[0]
    r = runner.invoke(main, ["compare", str(write(tmp_path, "n.yaml", none))])
    assert r.exit_code == 2 and "serving_workloads" in r.output
    dup = FILE.replace("name: chat-8b", "name: train-8b")
    r = runner.invoke(main, ["compare", str(write(tmp_path, "d.yaml", dup))])
    assert r.exit_code == 2 and "train-8b" in r.output
    bad = FILE.replace("hours_per_year: 4000", "hours_per_year: 9000")
    r = runner.invoke(main, ["compare", str(write(tmp_path, "b.yaml", bad))])
    assert r.exit_code == 2 and "hours_per_year" in r.output


def test_serving_workload_longer_than_a_learned_position_table_is_refused(tmp_path):
    long = FILE.replace("model: llama-3.1-8b\n    serving: {input_tokens: 1024",
                        "model: gpt3-175b\n    serving: {input_tokens: 4096")
    r = runner.invoke(main, ["compare", str(write(tmp_path, "l.yaml", long))])
    assert r.exit_code == 2 and "serving_workloads" in r.output and "input + output tokens" in r.output, r.output
