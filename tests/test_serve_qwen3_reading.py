"""How benchmarks/serving_accuracy.py reads the TensorRT-LLM performance overview's MoE columns: attention data
parallelism + EP over the column's GPUs (the page's MoE llm_options set enable_attention_dp; moe_attn_dp_assumed),
dense columns and single-GPU MoE columns without it."""

import copy

import yaml

from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving

from conftest import ROOT

V10_MOE = "trtllm10-h200-qwen3-235b-tp8-fp8-1k1k"


def _records():
    rows = yaml.safe_load((ROOT.parent / "shared" / "calibration" / "serving_runs.yaml").read_text())
    rows += yaml.safe_load((ROOT / "benchmarks" / "serving_runs.yaml").read_text())
    return {r["id"]: r for r in rows}


def _plan(r):
    import serving_accuracy as S

    r = copy.deepcopy(r)
    r["precision"]["native_weight_format"] = r["model"].get("native_weight_format")
    sc, plan, _ = S.point_scenario(r)
    return sc, plan


def test_v10_moe_tp8_column_runs_attention_dp_and_ep_over_its_gpus():
    r = _records()[V10_MOE]
    _, plan = _plan(r)
    assert "tp=8" in plan and "ep=8" in plan and "attn_dp=True" in plan


def test_dense_and_single_gpu_columns_keep_attention_tp():
    recs = _records()
    _, dense = _plan(recs["trtllm10-h200-llama31-405b-tp8-fp8-1k1k"])
    assert "attn_dp=False" in dense and "ep=1" in dense
    _, moe_tp1 = _plan(recs["trtllm-po-b200-qwen3-30b-tp1-fp4-1000-1000"])
    assert "attn_dp=False" in moe_tp1  # one GPU: nothing to split


def test_attention_dp_stops_duplicating_the_four_kv_heads_over_eight_ranks():
    """Qwen3-235B has 4 KV heads: attention TP 8 keeps each head on two ranks, attention DP keeps every head once
    per rank for that rank's own sequences, so the same 8 GPUs hold more sequences (replicated attention weights
    take part of the gain back)."""
    import serving_accuracy as S

    sc, plan = _plan(_records()[V10_MOE])
    common = "engine=trtllm,weights=fp8,kv_cache=fp8,tp=8,pp=1,ep=8,replicas=1,max_batch=8192,max_batched_tokens=16384"
    seqs = {}
    for dp in (True, False):
        est = estimate_serving(sc, parse_serve_plan(f"{common},attn_dp={dp}", sc))
        seqs[dp] = est["memory"]["max_concurrent_sequences"]
    assert seqs[True] > 1.5 * seqs[False]
    assert S.moe_attn_dp_assumed(_records()[V10_MOE], 8) and not S.moe_attn_dp_assumed(_records()[V10_MOE], 1)


def test_trtllm_bench_limits_of_an_attention_dp_run_are_sized_for_the_whole_group():
    """trtllm-bench at the performance overview's releases sized max_batch_size / max_num_tokens for all tp GPUs
    together and the engine applied them to every attention-DP rank: the DEP plan's per-rank limits equal the limits
    of the same run without attention DP, and each rank's own KV pool, not max_batch, sets the running batch."""
    recs = _records()
    r = recs["trtllm-po-h100-qwen3-235b-dep8-fp8-1000-1000"]
    sc, plan = _plan(r)
    assert "attn_dp=True" in plan
    fields = dict(kv.split("=") for kv in plan.split(","))
    tp_only = copy.deepcopy(r)
    tp_only["parallel"]["dp"] = None
    tp_only["source"] = dict(tp_only["source"], path="elsewhere")  # not a perf-overview MoE row: no attention DP
    tp_only["parallel"]["ep"] = 8
    _, plan_tp = _plan(tp_only)
    fields_tp = dict(kv.split("=") for kv in plan_tp.split(","))
    assert fields_tp["attn_dp"] == "False"
    assert int(fields["max_batch"]) == 8 * int(fields_tp["max_batch"])
    assert int(fields["max_batched_tokens"]) == 8 * int(fields_tp["max_batched_tokens"])
    est = estimate_serving(sc, parse_serve_plan(plan, sc))
    assert est["throughput"]["running_sequences_per_replica"] < int(fields["max_batch"])


def test_trtllm_bench_engine_counts_checkpoint_elements_at_the_quantisations_width():
    """The heuristic's engine size at the runs' releases: safetensors elements x BYTES_PER_ELEM. A packed NVFP4 byte
    holds two weights but counts as one element at 0.5 byte, so the engine comes out at about half of an NVFP4
    checkpoint (PR 13498: 'underestimated by ~2x'); a bf16 checkpoint is counted at its size."""
    import serving_accuracy as S

    sc, _ = _plan(_records()["trtllm-po-b200-llama33-70b-tp1-fp4-1000-1000"])
    checkpoint_gib = 40.0
    nvfp4 = S.trtllm_bench_engine_gib(sc, checkpoint_gib, "nvfp4")
    assert 0.4 * checkpoint_gib < nvfp4 < 0.5 * checkpoint_gib
    assert abs(S.trtllm_bench_engine_gib(sc, 2 * checkpoint_gib, "bf16") - 2 * checkpoint_gib) < 1e-9
    fp8 = S.trtllm_bench_engine_gib(sc, checkpoint_gib, "fp8")
    assert 0.9 * checkpoint_gib < fp8 < checkpoint_gib  # bf16 embeddings / LM head counted at one byte


def test_trtllm_bench_without_chunked_prefill_fits_a_whole_prompt_in_one_step():
    """trtllm-bench's get_settings (chunked prefill off, its default) raises max_num_tokens to the dataset's max ISL +
    max_batch_size, whether the heuristic (NVFP4 / FP8) or the LLM API defaults (MXFP4) set it: a 32k prompt is one
    step, not chunks of the heuristic's few thousand tokens; a short-prompt run keeps the heuristic's value."""
    recs = _records()
    for rid in ("trtllm-po-b200-qwen3-30b-tp1-fp4-1000-1000", "trtllm-po-b200-gptoss20b-tp1-fp4-1000-1000"):
        short = dict(kv.split("=") for kv in _plan(recs[rid])[1].split(","))
        r = copy.deepcopy(recs[rid])
        r["workload"] = dict(r["workload"], input_len=32768, output_len=1024)
        fields = dict(kv.split("=") for kv in _plan(r)[1].split(","))
        assert int(fields["max_batched_tokens"]) == 32768 + int(fields["max_batch"])
        assert int(short["max_batched_tokens"]) > 1000 + int(short["max_batch"])  # the floor does not bind
