"""planner serve: serving spec errors, exact KV / weight bytes, search contract, --plan, infeasible."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from planner import catalog
from planner.cli import main
from planner.errors import InputError
from planner.serve import engines as E
from planner.serve.memory import kv_bytes_per_token, model_facts, weight_bytes

from conftest import ROOT, write

runner = CliRunner()
SERVE_70B = ROOT / "scenarios" / "serve_70b.yaml"


def run(*args):
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def _table(**kw):
    base = {"engine": 0, "wq": 0, "kv": 0, "tp": 1, "pp": 1, "ep": 1, "attn_dp": False, "replicas": 1,
            "max_batch": 256, "max_batched_tokens": 8192}
    base.update(kw)
    return {k: np.array([v]) for k, v in base.items()}


def test_kv_bytes_per_token_gqa_and_mla():
    # Llama-3.1-70B: 80 layers x (K+V) x 8 kv heads x 128 x 2 bytes = 327,680 B per token (bf16).
    f = model_facts(catalog.model("llama-3.1-70b"))
    full, sw = kv_bytes_per_token(f, _table(), 2.0)
    assert full[0] == 80 * 2 * 8 * 128 * 2 and sw[0] == 0
    # tp 16 cannot split 8 kv heads further: each rank keeps one head (same bytes as tp 8).
    assert kv_bytes_per_token(f, _table(tp=16), 2.0)[0][0] == kv_bytes_per_token(f, _table(tp=8), 2.0)[0][0]
    # DeepSeek-V3 MLA: 61 layers x (kv_lora_rank 512 + rope 64) x 2 bytes, not split by tp.
    f = model_facts(catalog.model("deepseek-v3"))
    assert kv_bytes_per_token(f, _table(tp=8), 2.0)[0][0] == 61 * (512 + 64) * 2


def test_weight_formats_with_block_scales():
    assert E.weight_bytes_per_element("nvfp4") == 0.5 + 1 / 16
    assert E.weight_bytes_per_element("mxfp4") == 0.5 + 1 / 32
    assert E.weight_bytes_per_element("int4-awq") == 0.5 + 2.5 / 128
    f = model_facts(catalog.model("llama-3.1-70b"))
    bf16 = weight_bytes(f, _table(), 2.0)[0]
    fp8 = weight_bytes(f, _table(), 1.0)[0]
    # 70.6B parameters; the 2 x 128256 x 8192 embedding + head stay bf16 under fp8.
    assert 140e9 < bf16 < 142e9
    assert fp8 - (bf16 / 2) == pytest.approx(128256 * 8192 * 2, rel=0.01)


def test_mxfp4_quantises_the_experts_only():
    # vLLM Mxfp4Config / TensorRT-LLM gpt-oss README: attention and other non-expert linears stay bf16.
    from planner.serve.search import estimate_serving
    from planner.serve.plan import parse_serve_plan
    from planner.spec.serving import load_serving_scenario

    sc = load_serving_scenario(SERVE_70B)  # dense: MXFP4 would leave every linear in bf16, so it is refused
    with pytest.raises(InputError, match="MoE experts only"):
        parse_serve_plan("engine=vllm,weights=mxfp4,tp=2", sc)
    sc = sc.model_copy(update={"model": catalog.model("qwen3-30b-a3b")})  # MoE: the experts in MXFP4
    w = {q: estimate_serving(sc, parse_serve_plan(f"engine=vllm,weights={q},tp=2", sc))["memory"]["weights_gib"]
         for q in ("bf16", "mxfp4", "int4-awq")}
    assert w["int4-awq"] < w["mxfp4"] < w["bf16"] / 3  # attention stays bf16 under mxfp4, not under int4-awq
    assert E.dense_scheme("mxfp4") == "bf16" and E.dense_scheme("nvfp4") == "nvfp4"


def test_search_contract_and_slo():
    r = run("serve", SERVE_70B, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["plans"] and out["evaluated"] >= out["feasible"] > 0
    for p in out["plans"]:
        q = p["plan"]
        assert set(q) >= {"engine", "weights", "kv_cache", "tp", "pp", "ep", "replicas", "max_batch"}
        assert q["tp"] * q["pp"] * (q["replicas"] + q.get("prefill_replicas", 0)) == p["gpus"] <= 64
        assert p["memory"]["verdict"] in ("fits", "tight") and p["memory"]["max_concurrent_sequences"] >= 1
        assert p["memory"]["per_gpu_gib"] <= p["memory"]["capacity_gib"]
        assert p["latency"]["ttft_ms"]["p90"] <= 800 and p["latency"]["tpot_ms"]["p90"] <= 40
        assert p["latency"]["tpot_ms"]["p50"] <= p["latency"]["tpot_ms"]["p90"]
        assert p["throughput"]["output_tokens_per_s"] == pytest.approx(40 * 512, rel=1e-6)
    costs = [p["cost"]["usd_per_million_output_tokens"] for p in out["plans"]]
    assert costs == sorted(costs)


def test_formats_with_the_same_numbers_show_once(tmp_path):
    """bf16 and fp16 store and compute alike: the search shows the first listed of each indistinguishable
    set of formats and names the others (same_numbers), whose own estimate (--plan) gives the same numbers;
    a format asked for alone is searched as before."""
    from planner.serve.launch import plan_text

    base = ("model: llama-3.1-8b\ncluster: {node: dgx-h100, nodes: 1}\n"
            "serving: {input_tokens: 1000, output_tokens: 200, requests_per_s: 5}\ntop: 3\n")
    both = write(tmp_path, "both.yaml", base + "search: {engines: [vllm], weights: [bf16, fp16], kv_cache: [bf16, fp16]}\n")
    out = json.loads(run("serve", both, "--json").stdout)
    assert len(out["plans"]) == 3
    layouts = [{k: v for k, v in p["plan"].items() if k not in ("weights", "kv_cache")} for p in out["plans"]]
    assert all(a != b for i, a in enumerate(layouts) for b in layouts[:i])  # no row repeats another's numbers
    for p in out["plans"]:
        assert (p["plan"]["weights"], p["plan"]["kv_cache"]) == ("bf16", "bf16")
        assert sorted((a["weights"], a["kv_cache"]) for a in p["same_numbers"]) == [
            ("bf16", "fp16"), ("fp16", "bf16"), ("fp16", "fp16")]
    first = out["plans"][0]
    twin = json.loads(run("serve", both, "--plan", plan_text({**first["plan"], "weights": "fp16", "kv_cache": "fp16"}),
                          "--json").stdout)
    assert {k: twin[k] for k in ("gpus", "memory", "latency", "throughput", "cost")} == \
        {k: first[k] for k in ("gpus", "memory", "latency", "throughput", "cost")}
    assert "same numbers with bf16/fp16, fp16/bf16, fp16/fp16" in run("serve", both).stdout
    alone = write(tmp_path, "alone.yaml", base + "search: {engines: [vllm], weights: [fp16], kv_cache: [fp16]}\n")
    out = json.loads(run("serve", alone, "--json").stdout)
    assert out["plans"] and all((p["plan"]["weights"], p["plan"]["kv_cache"]) == ("fp16", "fp16")
                                and "same_numbers" not in p for p in out["plans"])


def test_plan_estimate_and_fp8_kv_fits_more():
    base = "engine=trtllm,weights=fp8,tp=2,replicas=1,max_batch=512"
    a = json.loads(run("serve", SERVE_70B, "--plan", base + ",kv_cache=bf16", "--json").stdout)
    b = json.loads(run("serve", SERVE_70B, "--plan", base + ",kv_cache=fp8", "--json").stdout)
    assert a["plan"]["tp"] == 2 and a["plan"]["max_batched_tokens"] == 8192  # engine default
    assert b["memory"]["max_concurrent_sequences"] >= 2 * a["memory"]["max_concurrent_sequences"] - 1
    assert b["memory"]["kv_cache_gib"] == pytest.approx(a["memory"]["kv_cache_gib"], rel=0.01)


def test_kv_cache_left_out_takes_the_engines_auto():
    # TensorRT-LLM 'auto' = the ModelOpt checkpoint's kv_cache_quant_algo (FP8 for its FP8 / NVFP4 exports);
    # vLLM / SGLang 'auto' = the model dtype; a stated kv_cache wins.
    def kv(plan):
        return json.loads(run("serve", SERVE_70B, "--plan", plan, "--json").stdout)["plan"]["kv_cache"]

    assert kv("engine=trtllm,weights=fp8,tp=2") == "fp8"
    assert kv("engine=trtllm,weights=bf16,tp=2") == "bf16"
    assert kv("engine=vllm,weights=fp8,tp=2") == "bf16"
    assert kv("engine=sglang,weights=fp8,tp=2") == "bf16"
    assert kv("engine=trtllm,weights=fp8,kv_cache=bf16,tp=2") == "bf16"


def test_offline_throughput_grows_with_batch(tmp_path):
    p = write(tmp_path, "s.yaml", "model: llama-3.1-8b\ncluster: {node: hgx-h200, nodes: 1}\n"
              "serving: {input_tokens: 1000, output_tokens: 1000, offline: true}\n")
    tok = [json.loads(run("serve", p, "--plan", f"engine=vllm,max_batch={b}", "--json").stdout)
           ["throughput"]["output_tokens_per_s"] for b in (8, 64, 256)]
    assert tok[0] < tok[1] < tok[2]


def test_infeasible_names_the_weights(tmp_path):
    p = write(tmp_path, "s.yaml", "model: llama-3.1-405b\ncluster: {node: dgx-h100, nodes: 1}\n"
              "serving: {input_tokens: 1000, output_tokens: 200, offline: true}\n"
              "search: {weights: [bf16]}\n")
    r = run("serve", p)
    assert r.exit_code == 1
    assert "weights alone need" in r.stdout and "nearest fixes" in r.stdout


@pytest.mark.parametrize("text,key", [
    ("serving: {input_tokens: 10, output_tokens: 10}\n", "exactly one of"),
    ("serving: {input_tokens: 10, output_tokens: 10, offline: true, concurrency: 4}\n", "exactly one of"),
    ("training: {seq_len: 10, global_batch: 1, tokens: 1e6}\n", "serving"),
    ("serving: {input_tokens: 10, output_tokens: 10, offline: true}\n"
     "training: {seq_len: 10, global_batch: 1, tokens: 1e6}\n", "not both"),
    ("serving: {input_tokens: {mean: 100, p90: 50}, output_tokens: 10, offline: true}\n", "p90"),
])
def test_bad_serving_input_exits_2(tmp_path, text, key):
    p = write(tmp_path, "s.yaml", "model: llama-3.1-8b\ncluster: {node: hgx-h200, nodes: 1}\n" + text)
    r = runner.invoke(main, ["serve", str(p)])
    assert r.exit_code == 2 and key in r.output and "Traceback" not in r.output


def test_bad_plan_key_exits_2():
    r = runner.invoke(main, ["serve", str(SERVE_70B), "--plan", "engin=vllm"])
    assert r.exit_code == 2 and "did you mean 'engine'" in r.output


def test_solve_and_serve_point_to_each_other():
    r = run("solve", SERVE_70B)
    assert r.exit_code == 2 and "planner serve" in r.output
    r = run("serve", ROOT / "scenarios" / "70b_64gpu.yaml")
    assert r.exit_code == 2 and "planner solve" in r.output


def test_expert_gemm_reads_only_touched_experts_and_pads_rows():
    from planner.serve.timing import GEMM_TILE_ROWS, SUSTAINED_FRACTION, expert_linear_s, tile_k_efficiency

    f = model_facts(catalog.model("qwen3-235b-a22b"))
    bw, lin = 4e12, 1e15
    # One token touches top_k of E experts: it reads k/E of the routed weights (memory roof).
    one = expert_linear_s(f, 1, 1.0, 1, 10 * lin, bw, 1.0)
    assert one == pytest.approx(f.routed * f.top_k / f.experts / bw, rel=1e-9)
    # Many tokens: every expert is touched and each computes whole tiles of rows, the up projection
    # (reduction over hidden) and the down projection (reduction over the expert width) each at
    # its tile efficiency.
    n = 100_000.0
    rows = n * f.top_k / f.experts
    padded = np.ceil(rows / GEMM_TILE_ROWS) * GEMM_TILE_ROWS
    rate = lin / SUSTAINED_FRACTION
    slow = 2 / 3 / tile_k_efficiency(f.hidden, rate) + 1 / 3 / tile_k_efficiency(f.expert_ffn, rate)
    assert slow > 1.0
    assert expert_linear_s(f, 1, n, 1, lin, bw, 1.0) == pytest.approx(f.routed * 2 * padded * slow / lin, rel=1e-6)
    # Expert tensor parallelism shortens the down projection's reduction: tp 8 without EP is slower
    # per FLOP than tp 8 with EP 8 (whole experts), before the EP load imbalance.
    from planner.serve.timing import ep_rank_imbalance
    tp8 = expert_linear_s(f, 1, n, 8, lin, bw, 1.0, ep=1)
    ep8 = expert_linear_s(f, 1, n, 8, lin, bw, 1.0, ep=8) / ep_rank_imbalance(f, n, 8)
    assert tp8 > ep8


def test_busiest_ep_rank_follows_binomial_order_statistics():
    from planner.serve.timing import ep_load_imbalance, expected_max_std_normal, expert_linear_s

    # Harter (1961) tables: expected max of 2 / 8 / 32 standard normals = 0.564 / 1.424 / 2.070.
    assert expected_max_std_normal(np.array([1, 2, 8, 32])) == pytest.approx([0.0, 0.564, 1.424, 2.070], abs=0.03)
    f = model_facts(catalog.model("qwen3-235b-a22b"))
    # Monte Carlo of uniform top-k routing over 8 ranks (16 experts each): mean busiest / mean rank.
    rng = np.random.default_rng(0)
    n, ep = 64, 8
    ranks = np.stack([np.argsort(rng.random((n, f.experts)), axis=1)[:, :f.top_k] // (f.experts // ep)
                      for _ in range(300)])
    loads = np.stack([np.bincount(r.ravel(), minlength=ep) for r in ranks])
    assert ep_load_imbalance(f, n, ep) == pytest.approx(loads.max(1).mean() / loads.mean(), rel=0.05)
    # Compute-bound expert GEMMs under EP wait for the busiest rank; without EP they do not (expert
    # width left unknown so that the tile efficiency of the tp-split experts does not enter).
    import dataclasses
    f = dataclasses.replace(f, expert_ffn=0.0)
    lin, bw, big = 1e15, 4e12, 100_000.0
    slow = expert_linear_s(f, 1, big, 8, lin, bw, 1.0, ep=8, skew_alpha=0.0) \
        / expert_linear_s(f, 1, big, 8, lin, bw, 1.0, ep=1)
    assert 1.0 < slow == pytest.approx(ep_load_imbalance(f, big, 8))


def test_disaggregated_plan_separates_prefill_from_decode():
    from planner.serve.plan import parse_serve_plan
    from planner.serve.search import estimate_serving
    from planner.spec.serving import load_serving_scenario

    sc = load_serving_scenario(SERVE_70B)
    base = "engine=vllm,weights=fp8,kv_cache=fp8,tp=2,replicas=4"
    colo = estimate_serving(sc, parse_serve_plan(base, sc))
    dis1 = estimate_serving(sc, parse_serve_plan(base + ",prefill_replicas=1", sc))
    dis4 = estimate_serving(sc, parse_serve_plan(base + ",prefill_replicas=4", sc))
    assert dis1["plan"]["disaggregated"] and not colo["plan"]["disaggregated"]
    assert dis1["gpus"] == 2 * (4 + 1) and colo["gpus"] == 8
    # decode instances carry no prefill chunks: a shorter step than the colocated one at 40 req/s
    assert dis4["latency"]["tpot_ms"]["p50"] < colo["latency"]["tpot_ms"]["p50"]
    # the prefill pool bounds what the decode pool can emit: more prefill instances, more capacity
    assert dis4["throughput"]["capacity_output_tokens_per_s"] > dis1["throughput"]["capacity_output_tokens_per_s"]


def test_search_offers_disaggregated_plans():
    from planner.serve.search import candidate_table
    from planner.spec.serving import load_serving_scenario

    t = candidate_table(load_serving_scenario(SERVE_70B))
    dis = t["prefill_replicas"] > 0
    assert dis.any() and (~dis).any()
    assert (t["tp"] * t["pp"] * (t["replicas"] + t["prefill_replicas"]) <= 64).all()


def test_disaggregation_wins_for_long_prompts_under_a_tight_tpot(tmp_path):
    # 8,000-token prompts, 15 ms TPOT: colocated instances must keep prefill chunks out of the
    # decode steps with small batches; separate prefill instances let decode batch more.
    text = ("model: llama-3.1-70b\ncluster: {node: dgx-h100, nodes: 4}\n"
            "serving: {input_tokens: 8000, output_tokens: 256, requests_per_s: 8, "
            "slo: {ttft_ms_p90: 3000, tpot_ms_p90: TPOT}}\n"
            "search: {engines: [vllm], weights: [fp8], kv_cache: [fp8]}\n")
    tight = json.loads(run("serve", write(tmp_path, "a.yaml", text.replace("TPOT", "15")), "--json").stdout)
    loose = json.loads(run("serve", write(tmp_path, "b.yaml", text.replace("TPOT", "60")), "--json").stdout)
    assert tight["plans"][0]["plan"]["disaggregated"]
    assert not loose["plans"][0]["plan"]["disaggregated"]


def test_search_disaggregated_switch(tmp_path):
    from planner.serve.search import candidate_table
    from planner.spec.serving import load_serving_scenario

    base = SERVE_70B.read_text()
    only_colo = write(tmp_path, "a.yaml", base.replace("kv_cache: [bf16, fp8]", "kv_cache: [bf16, fp8]\n  disaggregated: [false]"))
    only_dis = write(tmp_path, "b.yaml", base.replace("kv_cache: [bf16, fp8]", "kv_cache: [bf16, fp8]\n  disaggregated: [true]"))
    assert (candidate_table(load_serving_scenario(only_colo))["prefill_replicas"] == 0).all()
    assert (candidate_table(load_serving_scenario(only_dis))["prefill_replicas"] > 0).all()


def test_rate_batch_solves_littles_law_on_every_stable_plan():
    """Under a request rate the running batch B of each stable plan is the fixed point
    B = rate x output x TPOT(B) of its own time model (bracketed Newton, evaluate._littles_law_batch)."""
    from planner.serve import evaluate as V
    from planner.serve.search import candidate_table
    from planner.spec.serving import load_serving_scenario

    sc = load_serving_scenario(SERVE_70B)
    t = candidate_table(sc)
    ev = V.evaluate(sc, t)
    ok = ev["stable"] & (ev["batch"] < ev["batch_cap"] - 1e-6)
    assert ok.sum() > 1000
    sub = {k: v[ok] for k, v in t.items()}
    ctx = V.Context(sc)
    ctx.links = V.timing.comm_links(ctx.node, sub, ctx.facts.hidden)
    rate = sc.serving.requests_per_s / sub["replicas"] * ctx.out_mean
    b = ev["batch"][ok]
    assert np.allclose(rate * V._iter(ctx, sub, b), b, rtol=1e-4)


def test_a_whole_prompt_at_small_batch_costs_its_prefill(tmp_path):
    """At concurrency 1 the engine prefills each 5,000-token prompt in one compute-bound step rather
    than hiding it under the decode's weight reads: the extra time per request of an uncached prompt
    over a (nearly) cached one is its extra prefill time (the cycle out / throughput grows by delta TTFT),
    and it lies in the request's TTFT, not again in its TPOT: the only request in flight has no other
    prompt between its tokens (evaluate.closed_loop_gaps; before, out x delta TPOT = delta TTFT counted it
    twice, and Little's law read 2 requests in flight)."""
    def est(hit):
        p = write(tmp_path, f"s{hit}.yaml", "model: llama-3.1-70b\ncluster: {node: dgx-h100, nodes: 1}\n"
                  f"serving: {{input_tokens: 5000, output_tokens: 500, concurrency: 1, prefix_cache_hit: {hit}}}\n")
        return json.loads(run("serve", p, "--plan", "engine=trtllm,weights=fp8,kv_cache=fp8,tp=2", "--json").stdout)

    cold, warm = est(0.0), est(0.99)
    d_ttft = cold["latency"]["ttft_ms"]["p50"] - warm["latency"]["ttft_ms"]["p50"]
    d_cycle = 500e3 * (1 / cold["throughput"]["output_tokens_per_s"] - 1 / warm["throughput"]["output_tokens_per_s"])
    assert d_ttft > 200
    assert d_cycle == pytest.approx(d_ttft, rel=0.05)
    assert cold["latency"]["tpot_ms"]["p50"] == pytest.approx(warm["latency"]["tpot_ms"]["p50"], rel=0.01)


def test_fixed_concurrency_prompts_queue_for_the_prefill(tmp_path):
    """With 50 users in a closed loop on one engine, finished requests return as new prompts at the
    completion rate and queue for the prefill (M/M/1, as under a request rate): the TTFT tail grows
    well above a lone user's, although every request holds a batch slot."""
    def est(c):
        p = write(tmp_path, f"c{c}.yaml", "model: llama-3.1-70b\ncluster: {node: dgx-h100, nodes: 1}\n"
                  f"serving: {{input_tokens: 5000, output_tokens: 500, concurrency: {c}}}\n")
        return json.loads(run("serve", p, "--plan", "engine=trtllm,weights=fp8,kv_cache=fp8,tp=2", "--json").stdout)

    one, many = est(1), est(50)
    assert many["throughput"]["running_sequences_per_replica"] == 50
    assert many["latency"]["ttft_ms"]["p90"] > 1.5 * one["latency"]["ttft_ms"]["p90"]
    assert many["latency"]["ttft_ms"]["p50"] <= many["latency"]["ttft_ms"]["p90"]


def test_lighter_weights_fix_says_how_many_gpus_it_still_needs(tmp_path):
    """405B at bf16 on 2 H100: fp8 halves the weights but 2 GPUs still cannot hold ~380 GiB, so the
    fix names the GPUs that scheme needs (ceil(weights / usable memory per GPU))."""
    p = write(tmp_path, "s.yaml", "model: llama-3.1-405b\ncluster: {node: dgx-h100, nodes: 1}\n"
              "budget: {max_gpus: 2}\nserving: {input_tokens: 1000, output_tokens: 200, offline: true}\n"
              "search: {weights: [bf16]}\n")
    r = run("serve", p, "--json")
    assert r.exit_code == 1
    fixes = [f["change"] for f in json.loads(r.stdout)["infeasible"]["fixes"]]
    fp8 = next(f for f in fixes if "weights fp8" in f)
    n = int(fp8.split("at least ")[1].split()[0])
    assert 5 <= n <= 6  # 405e9 x 1 byte + bf16 embeddings ~ 380 GiB over 0.9 x 79.6 GiB


def test_dense_gemms_compute_whole_tiles_of_rows():
    """Tile quantization of the dense GEMMs' token rows (timing.padded_rows, GEMM_TILE_ROWS = 128):
    in the compute-bound regime a step of 129 tokens costs what 256 cost, one of 128 less."""
    from planner.serve import timing as T

    sc_model = catalog.model("llama-3.1-70b")
    f = model_facts(sc_model)
    lin, bw, bpe = 1e15, 1e15, 1.0  # bandwidth so high that compute bounds every case
    one = np.array([1])

    def t(n):
        return float(T.dense_linear_s(f, f.layers, np.array([float(n)]), 0.0, one, one, lin, bw, bpe)[0])

    assert t(129) == pytest.approx(t(256)) and t(128) < t(129)
    assert t(256) == pytest.approx(2 * t(128))


def test_inline_node_without_scaleup_domain_serves(tmp_path):
    """scaleup_domain is optional (default gpus_per_node): the MNNVL check must not compare None."""
    node = "{name: x, gpu: h100-sxm-80gb, gpus_per_node: 8, scaleup_gb_s: 450}"
    p = write(tmp_path, "s.yaml", f"model: llama-3.1-8b\ncluster: {{node: {node}, nodes: 1}}\n"
              "serving: {input_tokens: 1000, output_tokens: 1000, offline: true}\n")
    out = json.loads(run("serve", p, "--plan", "engine=vllm,max_batch=8", "--json").stdout)
    assert out["throughput"]["output_tokens_per_s"] > 0


@pytest.mark.parametrize("plan", ["engine=vllm,max_batch=99999999999999999999",
                                  "engine=vllm,max_batched_tokens=99999999999999999999",
                                  "engine=trtllm,max_batch=16777217"])
def test_plan_integers_beyond_any_deployment_exit_2(plan):
    """A count past int64 once became a numpy object array and a TypeError deep in the latency model."""
    r = runner.invoke(main, ["serve", str(SERVE_70B), "--plan", plan])
    assert r.exit_code == 2, r.output
    assert "--plan max_batch" in r.output and "at most 16,777,216" in r.output


def test_plan_json_also_lists_the_plan_under_plans():
    """`serve --plan --json` reads like `serve --json` (plans[0]) and keeps the plan's keys at the top."""
    one = json.loads(run("serve", SERVE_70B, "--plan", "engine=trtllm,weights=fp8,tp=2", "--json").stdout)
    assert one["plans"] == [{k: v for k, v in one.items() if k not in ("plans", "scenario")}]
    assert one["plans"][0]["plan"]["engine"] == "trtllm" and one["scenario"]


def test_solve_of_a_file_with_both_blocks_says_not_both(tmp_path):
    """solve once said 'serving: unknown key ... did you mean training?' where serve and validate say
    what is wrong: a file holds one block or the other."""
    p = write(tmp_path, "s.yaml", "model: llama-3.1-8b\ncluster: {node: dgx-h100, nodes: 1}\n"
                                   "training: {seq_len: 4096, global_batch: 64, tokens: 1.0e10}\n"
                                   "serving: {input_tokens: 5, output_tokens: 512, offline: true}\n")
    for cmd in ("solve", "estimate", "serve", "validate"):
        args = [cmd, str(p)] + (["--plan", "tp=1"] if cmd == "estimate" else [])
        r = runner.invoke(main, args)
        assert r.exit_code == 2 and "not both" in r.output and "unknown key" not in r.output, (cmd, r.output)


def test_an_overloaded_plan_says_why_it_has_no_latency():
    """One replica under 40 requests/s: no TTFT exists (the queue grows); the table printed 'n/a ms'."""
    r = run("serve", SERVE_70B, "--plan", "engine=trtllm,weights=fp8,kv_cache=fp8,tp=2,replicas=1")
    assert r.exit_code == 0 and "n/a ms" not in r.output
    assert "unstable" in r.output and "output tokens/s" in r.output
    r = run("serve", SERVE_70B, "--plan", "engine=trtllm,weights=fp8,kv_cache=fp8,tp=2,replicas=12")
    assert r.exit_code == 0 and "unstable" not in r.output


def test_offline_search_fills_an_hourly_budget_not_the_cluster(tmp_path):
    """Offline, each plan took every GPU of the cluster (the cost per token does not depend on the
    replica count), so budget.max_usd_per_hour below the whole cluster's price left nothing, and the
    explanation named the whole cluster's price although one GPU of the same plan fits the budget."""
    from planner.serve.search import solve_serving
    from planner.spec.serving import load_serving_scenario

    text = ("model: llama-3.1-8b\ncluster: {node: dgx-h100, nodes: 1}\n"
            "serving: {input_tokens: 100, output_tokens: 100, offline: true}\n")
    price = load_serving_scenario(write(tmp_path, "a.yaml", text)).cluster.node.usd_per_gpu_hour
    whole = solve_serving(load_serving_scenario(write(tmp_path, "b.yaml", text)), top=3)
    budget = 3.5 * price  # three GPUs' worth
    r = solve_serving(load_serving_scenario(write(tmp_path, "c.yaml", text + f"budget: {{max_usd_per_hour: {budget}}}\n")),
                      top=3)
    assert r["plans"], r.get("infeasible")
    for p in r["plans"]:
        assert p["cost"]["usd_per_hour"] <= budget and p["gpus"] == 3 // (p["plan"]["tp"] * p["plan"]["pp"]) * \
            p["plan"]["tp"] * p["plan"]["pp"]
    # the cost per token of the best plan is the unbudgeted search's: same plan, fewer replicas
    best, free = r["plans"][0], whole["plans"][0]
    assert best["cost"]["usd_per_million_output_tokens"] == pytest.approx(free["cost"]["usd_per_million_output_tokens"],
                                                                         rel=1e-6)


def test_a_scenario_given_to_compare_and_a_purchase_file_given_to_solve_name_the_right_command(tmp_path):
    """Each was answered with a page of 'unknown key' lines; serve and solve already point to each other."""
    r = run("compare", ROOT / "scenarios" / "32b_16gpu.yaml")
    assert r.exit_code == 2 and "planner solve" in r.output and "unknown key" not in r.output, r.output
    r = run("compare", SERVE_70B)
    assert r.exit_code == 2 and "planner serve" in r.output and "unknown key" not in r.output, r.output
    for cmd in (["solve"], ["serve"], ["estimate", "--plan", "tp=1"], ["model"]):
        r = run(cmd[0], ROOT / "scenarios" / "purchases.yaml", *cmd[1:])
        assert r.exit_code == 2 and "planner compare" in r.output and "unknown key" not in r.output, (cmd, r.output)


def test_search_leaves_out_vllm_plans_that_plan_refuses(tmp_path):
    """vLLM refuses max_num_seqs above max_num_batched_tokens (SchedulerConfig._verify_args), and `--plan`
    exits 2 for it: the search must not rank such a plan when the scenario asks for a large max_batch."""
    from planner.serve.search import candidate_table
    from planner.spec.serving import load_serving_scenario

    p = write(tmp_path, "s.yaml", SERVE_70B.read_text().replace(
        "kv_cache: [bf16, fp8]", "kv_cache: [fp8]\n  max_batch: [256, 16384]"))
    t = candidate_table(load_serving_scenario(p))
    vllm = t["engine"] == E.VLLM
    assert (t["max_batch"][vllm] <= t["max_batched_tokens"][vllm]).all() and (t["max_batch"][vllm] == 256).any()
    assert (t["max_batch"][~vllm] == 16384).any()  # SGLang / TensorRT-LLM have no such check
    refused = runner.invoke(main, ["serve", str(p), "--plan", "engine=vllm,weights=fp8,kv_cache=fp8,tp=4,max_batch=16384"])
    assert refused.exit_code == 2 and "max_batched_tokens" in refused.output
    # what the search ranks, --plan accepts
    out = json.loads(run("serve", p, "--json").stdout)
    assert out["plans"] and all(q["plan"]["max_batch"] <= q["plan"]["max_batched_tokens"]
                                for q in out["plans"] if q["plan"]["engine"] == "vllm")


def test_only_vllm_plans_above_the_token_budget_are_explained(tmp_path):
    """A vLLM-only search whose every max_batch exceeds vLLM's token budget has no plan to evaluate: the
    explanation names that (it said a disaggregated search needed more GPUs) and the fix, exit 1."""
    p = write(tmp_path, "s.yaml", SERVE_70B.read_text().replace("engines: [vllm, sglang, trtllm]", "engines: [vllm]")
              .replace("kv_cache: [bf16, fp8]", "kv_cache: [fp8]\n  max_batch: [16384]"))
    r = runner.invoke(main, ["serve", str(p)])
    assert r.exit_code == 1, r.output
    assert "search.max_batch [16384]" in r.output and "8,192" in r.output and "disaggregated" not in r.output
