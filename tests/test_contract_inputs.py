"""Hand-made hostile inputs for the newer keys (serving search lists, sliding_window_pattern) and the
contract's file-writing rules: each gives exit 1 with the reason (valid but nothing to plan) or exit 2
naming the file and key, never a traceback or a plan that an engine would refuse."""

import copy
import json

import pytest
import yaml
from click.testing import CliRunner

from planner.cli import main

from conftest import CHAT_8B_WORKLOADS, ROOT, TINY, TINY_SERVE, TINY_TRAIN, write, write_yaml

runner = CliRunner()


def _serve(tmp_path, **search):
    p = write_yaml(tmp_path, {**TINY_SERVE, "search": {**TINY_SERVE["search"], **search}})
    return runner.invoke(main, ["serve", str(p), "--json"])


def test_serve_search_tp_must_divide_the_heads(tmp_path):
    # vLLM, SGLang and TensorRT-LLM refuse a tensor-parallel size that does not divide the attention
    # heads, and so does `serve --plan tp=3`; a search list is restricted by the same rule.
    r = _serve(tmp_path, tp=[2, 3])
    assert r.exit_code == 0, r.output
    assert {p["plan"]["tp"] for p in json.loads(r.stdout)["plans"]} == {2}
    r = _serve(tmp_path, tp=[3])
    assert r.exit_code == 1, r.output
    why = json.loads(r.stdout)["infeasible"]["reasons"]
    assert any("search.tp" in x and "8 attention heads" in x for x in why), why


def test_serve_empty_domains_are_explained(tmp_path):
    # pp above the layers, and a weight scheme the GPU cannot run: the reason names the key at fault
    # (it used to blame search.disaggregated for every empty table).
    r = _serve(tmp_path, pp=[8])
    assert r.exit_code == 1, r.output
    assert any("search.pp" in x for x in json.loads(r.stdout)["infeasible"]["reasons"])
    r = _serve(tmp_path, weights=["nvfp4"])  # no FP4 tensor cores on the H100
    assert r.exit_code == 1, r.output
    assert any("search.weights" in x for x in json.loads(r.stdout)["infeasible"]["reasons"])


def test_serve_dense_model_has_no_expert_parallel_plans(tmp_path):
    r = _serve(tmp_path, ep=[2])
    assert r.exit_code == 0, r.output
    assert {p["plan"]["ep"] for p in json.loads(r.stdout)["plans"]} == {1}


def _train_model(tmp_path, **model):
    p = write_yaml(tmp_path, {**TINY_TRAIN, "model": {**TINY, **model}}, "t.yaml")
    return p, runner.invoke(main, ["validate", str(p)])


def test_sliding_window_pattern_errors_name_the_pattern(tmp_path):
    p, r = _train_model(tmp_path, sliding_window=128, sliding_window_pattern=[True] * 5)
    assert r.exit_code == 2 and str(p) in r.output and "sliding_window_pattern has 5 entries" in r.output, r.output
    # 1/0 are not booleans: the pattern is true/false per layer (HF layer_types read as such)
    p, r = _train_model(tmp_path, sliding_window=128, sliding_window_pattern=[1, 0, 1, 0])
    assert r.exit_code == 2 and "sliding_window_pattern" in r.output and "boolean" in r.output, r.output
    p, r = _train_model(tmp_path, sliding_window=128, sliding_window_pattern=[True, False, True, False])
    assert r.exit_code == 0, r.output


PURCHASE = """
name: train and serve
clusters:
  - {name: cloud, node: dgx-h100, nodes: [1], cloud: {usd_per_gpu_hour: 2.5}}
workloads:
  - {name: train-8b, model: llama-3.1-8b, seq_len: 4096, global_batch: {min: 128, max: 256}, tokens: 1.0e10}
""" + CHAT_8B_WORKLOADS


def test_compare_csv_and_report_carry_serving_workloads(tmp_path):
    # PRODUCT.md: a compare file may hold serving workloads next to training ones; `--csv` writes one
    # line per option x workload and the report shows them (both used to drop the serving rows).
    p = tmp_path / "p.yaml"
    p.write_text(PURCHASE)
    csv_path, html = tmp_path / "rows.csv", tmp_path / "r.html"
    r = runner.invoke(main, ["compare", str(p), "--csv", str(csv_path), "--report", str(html), "--json"])
    assert r.exit_code == 0, r.output
    import csv

    rows = list(csv.DictReader(csv_path.open()))
    assert [(x["workload"], x["kind"]) for x in rows] == [("train-8b", "training"), ("chat-8b", "serving")]
    serving = json.loads(r.stdout)["serving"][0]
    assert float(rows[1]["usd_per_million_output_tokens"]) == serving["usd_per_million_output_tokens"]
    assert rows[1]["plan"].startswith("vllm fp8/fp8")
    assert 128 <= int(rows[0]["plan"].rsplit("batch", 1)[1]) <= 256  # the chosen batch, within the range
    text = html.read_text()
    assert "chat-8b" in text and "Serving workloads" in text and "train-8b" in text


def test_report_inside_emit_directory_is_refused_before_any_write(tmp_path):
    # solve/serve write the report first; the export then found the directory not empty and exited 2,
    # leaving the report behind. Refused up front now (with --force both are written).
    out = tmp_path / "out"
    out.mkdir()
    sc = write_yaml(tmp_path, {**TINY_TRAIN, "search": {"frameworks": ["megatron"], "precision": ["bf16"]}}, "t.yaml")
    for cmd, path in (("solve", sc), ("serve", write_yaml(tmp_path, TINY_SERVE))):
        r = runner.invoke(main, [cmd, str(path), "--top", "1", "--emit", str(out), "--report", str(out / "r.html")])
        assert r.exit_code == 2 and "--report is inside the --emit directory" in r.output, r.output
        assert list(out.iterdir()) == []
    r = runner.invoke(main, ["solve", str(sc), "--top", "1", "--emit", str(out), "--report", str(out / "r.html"),
                             "--force"])
    assert r.exit_code == 0 and (out / "r.html").is_file() and (out / "rank1").is_dir(), r.output


def test_model_command_reads_a_serving_scenario(tmp_path):
    # PRODUCT.md: `planner model (NAME | SCENARIO | config.json)`; a serving scenario is a scenario
    # (it used to exit 2, "plan it with planner serve").
    p = write_yaml(tmp_path, TINY_SERVE)
    r = runner.invoke(main, ["model", str(p), "--json"])
    assert r.exit_code == 0, r.output
    same = runner.invoke(main, ["model", str(write_yaml(tmp_path, TINY_TRAIN, "t.yaml")), "--json", "--seq-len", "1280"])
    a, b = json.loads(r.stdout), json.loads(same.stdout)
    assert a["params_total"] == b["params_total"] and isinstance(a["params_total"], int)
    assert a["flops_per_token"] == b["flops_per_token"]  # 1024 input + 256 output tokens: the mean context


def _search_fixed(tmp_path, fixed, training=None):
    data = {**TINY_TRAIN, "training": {**TINY_TRAIN["training"], **(training or {})},
            "search": {"frameworks": ["megatron"], "fixed": fixed}}
    p = write_yaml(tmp_path, data, "f.yaml")
    return p, runner.invoke(main, ["solve", str(p), "--json", "--top", "50"])


def test_search_fixed_pins_global_batch_among_the_allowed(tmp_path):
    # PRODUCT.md: `fixed` pins any plan field; global_batch is one (plans[].plan.global_batch).
    _, r = _search_fixed(tmp_path, {"global_batch": 64}, {"global_batch": {"min": 32, "max": 128}})
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert {p["plan"]["global_batch"] for p in d["plans"]} == {64} and d["batch"]["allowed"] == [64]
    p, r = _search_fixed(tmp_path, {"global_batch": 48}, {"global_batch": {"min": 32, "max": 128}})
    assert r.exit_code == 2 and str(p) in r.output and "search.fixed.global_batch" in r.output, r.output
    # a purchase workload's search.fixed too (it was a traceback: the pin was checked only when compare
    # built each option's scenario)
    w = {"name": "w", "model": TINY, "seq_len": 2048, "global_batch": {"min": 32, "max": 128}, "tokens": 1.0e9,
         "search": {"frameworks": ["megatron"], "fixed": {"global_batch": 48}}}
    pf = write_yaml(tmp_path, {"name": "p", "clusters": [{"name": "c", "node": "dgx-h100", "nodes": 1,
                                                     "cloud": {"usd_per_gpu_hour": 2}}], "workloads": [w]}, "p.yaml")
    r = runner.invoke(main, ["compare", str(pf)])
    assert r.exit_code == 2 and str(pf) in r.output and "workloads.0" in r.output and "global_batch" in r.output, r.output
    w["search"]["fixed"]["global_batch"] = 64
    pf = write_yaml(tmp_path, {"name": "p", "clusters": [{"name": "c", "node": "dgx-h100", "nodes": 1,
                                                     "cloud": {"usd_per_gpu_hour": 2}}], "workloads": [w]}, "p.yaml")
    r = runner.invoke(main, ["compare", str(pf), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["options"][0]["plan"]["plan"]["global_batch"] == 64, r.output


def test_search_fixed_precision_outside_the_default_list(tmp_path):
    # Other pinned fields may lie outside their search list (the pin wins); precision did not: fp16
    # (not in the default [bf16, fp8]) gave "no plan satisfies the structural constraints" on an H100.
    _, r = _search_fixed(tmp_path, {"precision": "fp16"})
    assert r.exit_code == 0, r.output
    assert {p["plan"]["precision"] for p in json.loads(r.stdout)["plans"]} == {"fp16"}


def test_cost_objective_needs_a_price(tmp_path):
    # Without a price every cost is unknown and the ranking was the tie rule's alone (simplest first):
    # a full-recompute plan at 18% MFU ranked first "by cost". Now exit 2 naming the key, as budget.max_usd.
    gpu = {"name": "g80", "memory_gib": 80, "hbm_tb_s": 3.35, "tflops": {"bf16": 989, "fp8": 1979}}  # no price
    node = {"gpu": gpu, "gpus_per_node": 8, "scaleup_gb_s": 450, "scaleout_gb_s": 50}
    data = {**TINY_TRAIN, "cluster": {"node": node, "nodes": 1}, "search": {"frameworks": ["megatron"]}}
    p = write_yaml(tmp_path, {**data, "objective": "cost"}, "c.yaml")
    r = runner.invoke(main, ["solve", str(p)])
    assert r.exit_code == 2 and str(p) in r.output and "objective" in r.output and "price" in r.output, r.output
    p = write_yaml(tmp_path, data, "t.yaml")
    r = runner.invoke(main, ["solve", str(p), "--objective", "cost"])
    assert r.exit_code == 2 and "--objective" in r.output, r.output
    priced = {**node, "price": {"cloud_usd_per_node_hour": 20}}
    p = write_yaml(tmp_path, {**data, "cluster": {"node": priced, "nodes": 1}, "objective": "cost"}, "p.yaml")
    r = runner.invoke(main, ["solve", str(p), "--json", "--top", "3"])
    assert r.exit_code == 0, r.output
    costs = [x["run"]["cost_usd"] for x in json.loads(r.stdout)["plans"]]
    assert all(c > 0 for c in costs)


def _set(data, path, value):
    d = data
    keys = path.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value
    return data


WINDOWED = {**TINY_TRAIN, "model": {**TINY, "sliding_window": 128}}
_BAD = [(TINY_SERVE, "serving.input_tokens", v, "input_tokens") for v in
        [0, -1, "x", True, 1e30, float("nan"), [], {"mean": 10}, {"mean": 10, "p90": 5}, [[0, 1]], [[10, -1]],
         [[10, 0]], [["a", 1]], [[10]], {"mean": 10, "p90": 20, "p50": 3}, [[10, 1, 2]]]]
_BAD += [(TINY_SERVE, "serving.output_tokens", v, "output_tokens") for v in [0, -1, "x", 1e30, float("inf")]]
_BAD += [(TINY_SERVE, "serving.requests_per_s", v, "requests_per_s") for v in [0, -5, float("nan"), "fast", 1e30, True]]
_BAD += [(TINY_SERVE, "serving.prefix_cache_hit", v, "prefix_cache_hit") for v in [1.0, -0.1, 2, "x", True, float("nan")]]
_BAD += [(TINY_SERVE, "serving.slo", v, "slo") for v in
         [{"ttft_ms_p90": 0}, {"ttft_ms_p90": -1}, {"tpot_ms": 40}, {"tpot_ms_p90": float("inf")}, {"ttft_ms_p90": "x"},
          "fast", [1]]]
_BAD += [(TINY_SERVE, "serving.offline", "yes", "serving"), (TINY_SERVE, "serving.concurrency", 8, "serving"),
         (TINY_SERVE, "serving.concurrency", 0, "concurrency"), (TINY_SERVE, "search.engines", ["tgi"], "engines"),
         (TINY_SERVE, "search.engines", [], "engines"), (TINY_SERVE, "search.weights", ["fp3"], "weights"),
         (TINY_SERVE, "search.kv_cache", ["int4"], "kv_cache"), (TINY_SERVE, "search.tp", [0], "tp"),
         (TINY_SERVE, "search.tp", [2 ** 41], "tp"), (TINY_SERVE, "search.max_batch", [0], "max_batch"),
         (TINY_SERVE, "search.disaggregated", ["maybe"], "disaggregated"),
         (TINY_SERVE, "training", TINY_TRAIN["training"], "training"), (TINY_SERVE, "budget.max_gpus", 0, "max_gpus"),
         (TINY_SERVE, "budget.max_usd_per_hour", -1, "max_usd_per_hour"), (TINY_SERVE, "runtime", {"compile": False}, "runtime")]
_BAD += [(TINY_TRAIN, "training.global_batch", v, "global_batch") for v in
         [{"min": 0, "max": 10}, {"min": 64, "max": 32}, {"min": 32, "max": 64, "step": 0}, {"min": 32, "max": 64, "step": -1},
          {"min": 32, "max": 2 ** 40}, {"min": 1, "max": 10 ** 7, "step": 1}, {"min": 32}, {"max": 64},
          {"min": 32, "max": 64, "stride": 2}, [], [0], [32, -1], ["x"], [True], "32-64", {"min": 32.5, "max": 64},
          {"min": "a", "max": 64}]]
_BAD += [(TINY_TRAIN, "training.tokens_per_step", v, "tokens_per_step") for v in [{"min": 0, "max": 10}, {"min": 1, "max": 100},
                                                                              65536]]
_BAD += [(TINY_TRAIN, "runtime.cuda_graph_scope", v, "cuda_graph_scope") for v in
         ["full_iteration", ["nonsense"], [1], ["attn", "attn"], None, ["full_iteration", "attn"]]]
_BAD += [(TINY_TRAIN, "runtime.cuda_graph_impl", "cupy", "cuda_graph_impl"),
         (TINY_TRAIN, "runtime", {"cuda_graph_impl": "local", "cuda_graph_scope": ["attn"]}, "cuda_graph_scope"),
         (TINY_TRAIN, "runtime", {"cuda_graph_impl": "transformer_engine", "cuda_graph_scope": ["full_iteration"]},
          "cuda_graph_scope"),
         (TINY_TRAIN, "runtime", {"cuda_graph_impl": "none", "cuda_graph_scope": ["attn"]}, "cuda_graph_scope")]
_BAD += [(TINY_TRAIN, "runtime.pipeline_layout", v, "pipeline_layout") for v in
         ["ttt", "Et*4|L(", "Et*99|L", "Et*4m|L", "E|t*2|t*2|L|x", "$(touch x)", "", "Et*-1|L", "Et*999999999999|L",
          "Et*4|Lm|m"]]
_BAD += [(TINY_TRAIN, "model.mtp_layers", v, "mtp_layers") for v in [-1, 1.5, "x", True]]
_BAD += [(WINDOWED, "model.sliding_window_pattern", v, "sliding_window_pattern") for v in
         [[True], [True] * 3, ["x"] * 4, [1, 0, 1, 0], "alternate", [True, False, True, None], [True] * 5]]
_BAD += [(TINY_TRAIN, "model.sliding_window_pattern", [True, False, True, False], "sliding_window_pattern")]
_BAD += [(TINY_TRAIN, "model.sliding_window", v, "sliding_window") for v in [0, -1, "x", 2 ** 50]]
_BAD += [(WINDOWED, "model.sliding_window_layers", v, "sliding_window_layers") for v in [9, 0]]
_BAD += [(TINY_TRAIN, "runtime." + k, v, k) for k, v in
         [("recompute_modules", ["everything"]), ("recompute_num_layers", 0), ("activation_offload_layers", -1),
          ("moe_load_imbalance", 0.5), ("moe_load_imbalance", float("inf")), ("expandable_segments", "yes please"),
          ("grad_reduce_dtype", "fp16"), ("fp8_recipe", "fp4"), ("attention_kernel", "fa4"), ("moe_dispatcher", "nccl"),
          ("flash_attention", "yes"), ("account_for_loss_in_pipeline_split", 2)]]


@pytest.mark.parametrize("base,path,value,key", _BAD, ids=[f"{p}={v!r:.30}" for _, p, v, _ in _BAD])
def test_hostile_values_of_the_newer_keys_exit_2_naming_file_and_key(tmp_path, base, path, value, key):
    p = write_yaml(tmp_path, _set(copy.deepcopy(base), path, value), "hostile.yaml")
    r = runner.invoke(main, ["validate", str(p)])
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
    assert "Traceback" not in r.output and str(p) in r.output and key in r.output, r.output


def test_compare_budget_with_serving_workloads_only(tmp_path):
    # A purchase file of serving workloads only, with a budget: the best mix (which places training
    # workloads) raised ValueError (max() of no bought option) with a traceback.
    only = PURCHASE.split("workloads:\n  - {name: train-8b")[0] + "serving_workloads:" + PURCHASE.split(
        "serving_workloads:")[1]
    p = tmp_path / "s.yaml"
    p.write_text("budget_usd: 1.0e6\n" + only)
    r = runner.invoke(main, ["compare", str(p), "--json"])
    assert r.exit_code == 0 and r.exception is None, r.output
    d = json.loads(r.stdout)
    assert d["best_mix"]["status"] == "no training workloads" and d["best_mix"]["bought"] == []
    assert len(d["serving"]) == 1 and d["serving"][0]["plan"] is not None


def _readme_blocks():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [b.split("```", 1)[0] for b in text.split("```yaml")[1:]]


def test_readme_yaml_examples_are_valid_inputs(tmp_path):
    # The README's scenario, purchase and serving examples are what users copy: each must validate as
    # written (the serving and serving_workloads fragments inside a minimal file).
    blocks = _readme_blocks()
    assert len(blocks) >= 4
    head = "name: s\nmodel: llama-3.1-8b\ncluster: {node: dgx-h100, nodes: 1}\n"
    purchase = "name: p\nclusters: [{name: c, node: dgx-h100, nodes: 1, cloud: {usd_per_gpu_hour: 2}}]\n"
    for i, block in enumerate(blocks):
        data = yaml.safe_load(block)
        text = block
        if "serving" in data and "model" not in data:
            text = head + block
        elif "serving_workloads" in data and "clusters" not in data:
            text = purchase + block
        p = tmp_path / f"b{i}.yaml"
        p.write_text(text)
        r = runner.invoke(main, ["validate", str(p)])
        assert r.exit_code == 0, (i, r.output)


def test_serving_hourly_budget_needs_a_price(tmp_path):
    # On hardware without a price every plan's hourly cost is unknown and the budget was silently
    # ignored; exit 2 naming the key, as training's budget.max_usd.
    p = write_yaml(tmp_path, {**TINY_SERVE, "cluster": {"node": "hgx-h20", "nodes": 1}, "budget": {"max_usd_per_hour": 100}})
    r = runner.invoke(main, ["serve", str(p)])
    assert r.exit_code == 2 and str(p) in r.output and "budget.max_usd_per_hour" in r.output, r.output
    p = write_yaml(tmp_path, {**TINY_SERVE, "budget": {"max_usd_per_hour": 100}})  # dgx-h100 has a price
    assert runner.invoke(main, ["serve", str(p), "--json"]).exit_code == 0


def test_serving_plan_line_counts_the_prefill_instances():
    # compare's table, CSV and report describe a serving plan in one line; a disaggregated plan's
    # prefill instances hold GPUs too (gpus_needed counts them), so the line names them.
    from planner.serve.purchase import describe_serving

    plan = {"engine": "vllm", "weights": "fp8", "kv_cache": "fp8", "tp": 2, "pp": 1, "replicas": 3}
    assert describe_serving({"plan": {**plan, "prefill_replicas": 0}}).endswith("x3")
    assert describe_serving({"plan": {**plan, "prefill_replicas": 2}}).endswith("x3 + 2 prefill")


def test_a_check_across_keys_names_its_key_once(tmp_path):
    """A check that spans blocks (a model validator) named the key only inside its message:
    'f.yaml: (top level): search.fixed.global_batch: ...', 'runtime: runtime.cuda_graph_scope: ...'."""
    base = ("model: llama-3.1-8b\ncluster: {node: dgx-h100, nodes: 1}\n"
            "training: {seq_len: 4096, global_batch: 64, tokens: 1.0e10}\n")
    for extra, key in (("search: {fixed: {global_batch: 65}}\n", "search.fixed.global_batch"),
                       ("runtime: {cuda_graph_scope: [attn]}\n", "runtime.cuda_graph_scope"),
                       ("runtime: {pipeline_layout: 'E|t*4|L'}\n", "runtime.pipeline_layout")):
        p = write(tmp_path, "f.yaml", base + extra)
        r = runner.invoke(main, ["validate", str(p)])
        assert r.exit_code == 2 and f"{p}: {key}: " in r.output, r.output
        assert "(top level)" not in r.output and r.output.count(key) == 1, r.output
