"""Serving accuracy: `planner serve --plan` against published, externally measured output tokens/s.

Reads the shared calibration points (../shared/calibration/serving_runs.yaml) and this project's
own points (benchmarks/serving_runs.yaml), estimates each published deployment exactly as printed
(engine, weights / KV format, tp / pp / ep, attention DP, instances, lengths; a fixed concurrency or
a request rate where the source ran one), and writes the error per point, the mean absolute error
and, where the source prints them, measured vs predicted TTFT / TPOT to benchmarks/serving_accuracy.md.

    python benchmarks/serving_accuracy.py            # print the table and rewrite the report
    python benchmarks/serving_accuracy.py --check    # print only
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner import catalog  # noqa: E402
from planner.serve.search import estimate_serving  # noqa: E402
from planner.spec.load import validate_model  # noqa: E402
from planner.spec.serving import ServingScenario, token_stats  # noqa: E402

SOURCES = [ROOT.parent / "shared" / "calibration" / "serving_runs.yaml", ROOT / "benchmarks" / "serving_runs.yaml"]
REPORT = ROOT / "benchmarks" / "serving_accuracy.md"

# Catalog node of each GPU named by the sources (the node only adds the link rates).
NODES = (("GB300", "gb300-nvl72"), ("GB200", "gb200-nvl72"), ("B200", "dgx-b200"), ("H200", "hgx-h200"), ("H100", "dgx-h100"),
         ("MI300X", "mi300x-8"), ("MI325X", "mi325x-8"), ("MI355X", "mi355x-8"))
# MLPerf llama2-70b (OpenOrca, 24,576 samples): the result summaries print output tokens per
# sample (derived.mean_output_tokens_per_sample) but not the input length. Mean input length of the
# dataset file the harnesses feed (open_orca_gpt4_tokenized_llama.sampled_24576.pkl, tok_input_length):
# 222.3 tokens (max 1,021), per-sample counts in openshift-psap/performance-dashboard @67033bae
# mlperf-data/summaries/llama2-70b-99.csv; for the points that state no input length (300 was ASSUMED before).
MLPERF_LLAMA2_INPUT_MEAN = 222.3
# ... and the shape of its output lengths (means of 20 equal-count bins of the reference outputs, tok_output_length,
# same file and summary), for those points too (output_tokens: scaled to the point's own mean output).
MLPERF_LLAMA2_OUTPUT_BINS = (8, 22, 39, 58, 75, 92, 112, 134, 158, 179, 200, 220, 242, 265, 290, 318, 359, 414, 501, 692)
# ... and of its inputs (the same 20 equal-count bins of tok_input_length, same summary, input_length column; mean of
# the bins 222.3): the harness feeds the dataset's own prompts, so these are not scaled.
MLPERF_LLAMA2_INPUT_BINS = (64, 80, 90, 98, 106, 113, 120, 128, 136, 146, 159, 176, 197, 219, 249, 288, 347, 452, 570, 710)

# trtllm-bench throughput runs are finite: all requests are queued at once and, with fixed lengths
# (token-norm-dist, stdev 0), admitted requests finish together, so the run is a sequence of
# "waves" of at most the batch that fits, the last one partial. Requests per run: the point's own
# workload.num_requests, else the TensorRT-LLM performance overview's dataset table
# (docs/source/developer-guide/perf-overview.md, "Preparing a Dataset": ISL/OSL 1024/1024 -> 3000,
# 8192/1024 and 1024/8192 -> 1500, 32768/1024 and 1024/32768 -> 1000). ASSUMED: the page's
# 1000/1000 rows use the 1024/1024 count (the table lists no 1000/1000 row).
PERF_OVERVIEW_REQUESTS = {(1024, 1024): 3000, (1000, 1000): 3000, (8192, 1024): 1500, (1024, 8192): 1500,
                          (32768, 1024): 1000, (1024, 32768): 1000}


# vLLM's prefix cache hands out whole KV blocks and always recomputes a prompt's last token (V1 KVCacheManager:
# the longest cache hit is taken over num_tokens - 1 tokens, in whole blocks); block_size 16 is vLLM's default
# (CacheConfig). Used for points whose benchmark reruns the same prompts (workload.repeated_prompts:
# benchmark_latency.py draws its dummy prompts once for the warmup and all timed iterations).
VLLM_BLOCK_SIZE = 16


def repeated_prompt_hit(input_len: int, block: int = VLLM_BLOCK_SIZE) -> float:
    """Share of a rerun prompt served from the prefix cache: block x floor((input - 1) / block) / input
    (128 tokens -> 112 cached, 0.875; 2048 -> 2032, 0.992)."""
    return block * ((int(input_len) - 1) // block) / float(input_len)


# Id prefixes of the vLLM / SGLang / AMD points (benchmarks/serve_wide_results.md), reported as their own row.
WIDE_PREFIXES = ("rocm-vllm", "mlperf50-", "dstack-", "inferencex-")


def node_name(gpu_text: str) -> str:
    for key, node in NODES:
        if key in gpu_text.upper().replace(" ", ""):
            return node
    raise KeyError(gpu_text)


def model_dict(m: dict) -> dict:
    out = {"name": m["name"], "layers": m["layers"], "hidden": m["hidden_size"], "heads": m["attention_heads"],
           "kv_heads": m["kv_heads"], "head_dim": m.get("head_dim"), "vocab": m["vocab_size"],
           "ffn_hidden": m.get("ffn_hidden_size") or m["moe"]["expert_ffn_hidden_size"]}
    if m.get("moe"):
        mo = m["moe"]
        out["moe"] = {"experts": mo["num_experts"], "top_k": mo["top_k"],
                      "expert_ffn_hidden": mo["expert_ffn_hidden_size"], "shared_experts": mo.get("shared_experts") or 0,
                      "dense_layers": mo.get("dense_layers") or 0, "layer_step": mo.get("layer_step") or 1}
    if m.get("mla"):
        a = m["mla"]
        out["mla"] = {k: a[k] for k in ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
                                        "v_head_dim") if k in a}
    if m.get("attention_chunk"):  # Llama 4's chunked local attention (catalogs/models.yaml llama-4-*)
        out["attention_chunk"], out["attention_chunk_layers"] = m["attention_chunk"], m.get("attention_chunk_layers")
    if "sliding" in str(m.get("attention_type", "")):
        out["sliding_window"] = int(str(m["attention_type"]).split("(")[1].split(")")[0])
        out["sliding_window_layers"] = m["layers"] // 2  # "alternating sliding-window/full"
    return {k: v for k, v in out.items() if v is not None}


def weights_scheme(p: dict, gpu_text: str) -> tuple[str, str]:
    """(weights, kv_cache) from the printed precision. FP8 / FP4 checkpoints of NVIDIA (ModelOpt)
    and MLPerf runs keep the KV cache in FP8 (ModelOpt kv_cache_quant_algo FP8; MLPerf NVIDIA
    llama2-70b runs TensorRT FP8 with an FP8 KV cache); stated KV formats win."""
    label = " ".join(str(p.get(k) or "") for k in ("label", "weights")).upper()
    kv = str(p.get("kv_cache") or "").upper()
    native = str(p.get("native_weight_format") or "")
    if "MXFP4" in label or "MXFP4" in native.upper():
        w = "mxfp4"
    elif "FP4" in label:
        w = "nvfp4"
    elif "FP8" in label and "BLOCK" in label:
        w = "fp8-block"  # block-scaled FP8 checkpoints (DeepSeek-V3 / R1: 128 x 128 weight blocks)
    elif "FP8" in label:
        w = "fp8"
    elif "B200" in gpu_text.upper() and not label.strip():
        w = "nvfp4"  # MLPerf v4.1 B200 preview: NVIDIA's first FP4 submission (NVIDIA blog, Aug 2024)
    else:
        w = "bf16"
    kv_name = "fp8" if ("FP8" in kv or (not kv and w in ("fp8", "fp8-block", "nvfp4"))) else "bf16"
    return w, kv_name


def point_scenario(r: dict, rate: float | None = None) -> tuple[ServingScenario, str, float]:
    """The published deployment as a scenario and a --plan string; server points get the stated
    latency bounds as the SLO and `rate` (requests/s) as the traffic."""
    hw, par, wl = r["hardware"], r["parallel"], r["workload"]
    node = node_name(hw["gpu"])
    inst = par.get("instances") or 1
    tp, pp = par.get("tp") or 1, par.get("pp") or 1
    gpus = hw["num_gpus"]
    per_node = catalog.node(node).gpus_per_node
    nodes = max(1, -(-gpus // per_node))
    # workload.*_len_mean: the mean of a length distribution the source samples around the printed length
    out_len = wl.get("output_len_mean") or wl.get("output_len") or r.get("derived", {}).get("mean_output_tokens_per_sample")
    in_len = wl.get("input_len_mean") or wl.get("input_len") or MLPERF_LLAMA2_INPUT_MEAN
    if not (wl.get("input_len_mean") or wl.get("input_len")) and not wl.get("output_len_bins"):
        # an MLPerf llama2-70b point (above)
        wl = dict(wl, output_len_bins=MLPERF_LLAMA2_OUTPUT_BINS, input_len_bins=MLPERF_LLAMA2_INPUT_BINS)
    serving = {"input_tokens": input_tokens(wl, in_len), "output_tokens": output_tokens(wl, out_len)}
    if wl.get("repeated_prompts"):
        serving["prefix_cache_hit"] = round(repeated_prompt_hit(int(round(in_len))), 4)
    server = "server" in wl["kind"]
    if server and rate:
        serving["requests_per_s"] = rate
        lim = wl.get("latency_constraints") or {}
        q = latency_percentile(lim)
        serving["slo"] = {f"{k}_{q}": lim[k] for k in ("ttft_ms", "tpot_ms") if lim.get(k)}
    elif wl.get("concurrency"):
        serving["concurrency"] = wl["concurrency"]
    else:
        serving["offline"] = True
    data = {"name": r["id"], "model": model_dict(r["model"]),
            "cluster": {"node": catalog.node_entry(node), "nodes": nodes}, "serving": serving}
    data["cluster"]["node"]["gpu"] = gpu = catalog.gpu_entry(data["cluster"]["node"]["gpu"])
    if "rocm 6.1" in str(r.get("framework", "")).lower().replace("rocm6", "rocm 6"):
        # The run's own stack: MI300X bf16 MAMF is ~450 TFLOP/s with ROCm 6.1 vs 668 with ROCm 6.3
        # (hardware_facts.yaml, MI300X mamf_note), so the catalog's ROCm 6.3 fraction is replaced.
        gpu["matmul_efficiency"] = {"bf16": round(450 / gpu["tflops"]["bf16"], 3), "fp8": None}
    sc = validate_model(ServingScenario, data, file=r["id"])
    engine = engine_of(r)
    w, kv = weights_scheme(r["precision"], hw["gpu"])
    ep = par.get("ep") or moe_ep_assumed(r, tp)
    attn_dp = bool(par.get("dp") and par["dp"] > 1) or moe_attn_dp_assumed(r, tp)
    plan = f"engine={engine},weights={w},kv_cache={kv},tp={tp},pp={pp},ep={ep},replicas={inst},attn_dp={attn_dp}"
    version = engine_version_of(r, engine)
    if version:
        plan += f",engine_version={version}"
    if engine == "trtllm" and "cuda graphs with padding" in str(r.get("framework", "")).lower():
        plan += ",graph_padding=true"  # the page's llm_options: cuda_graph_config enable_padding (engines.py)
    if engine == "trtllm" and "moe backend trtllm" in str(r.get("framework", "")).lower():
        plan += ",moe_backend=trtllm"  # the launch YAML's moe_config backend TRTLLM (TRTLLM-gen MoE kernels)
    if engine == "vllm" and "--async-scheduling" in str(r.get("framework", "")):
        plan += ",async_scheduling=true"  # the launch's --async-scheduling (engines.plan_async_scheduling)
    fw = str(r.get("framework", ""))
    if engine == "vllm" and "VLLM_USE_V1 0" in fw and "enable_chunked_prefill False" in fw:
        plan += ",separate_prefill=true"  # vLLM V0's default scheduler: prompt steps and decode steps apart (engines.py)
    qr = re.search(r"ROCM_QUICK_REDUCE_QUANTIZATION=(\w+)", str(r.get("framework", "")))
    if qr and engine in ("vllm", "sglang"):
        plan += f",quick_reduce={qr.group(1).lower()}"  # the launch's QuickReduce level (engines.QUICK_REDUCE)
    if par.get("adp_balance") and engine == "trtllm" and attn_dp:  # attention_dp_config (engines.plan_adp_balance)
        plan += (f",adp_balance=true,adp_wait_iters={par['adp_balance']['wait_iters']}"
                 f",adp_timeout_iters={par['adp_balance']['timeout_iters']}")
    steps = re.search(r"num_scheduler_steps (\d+)", fw)
    if engine == "vllm" and "VLLM_USE_V1 0" in fw and steps and int(steps.group(1)) > 1:
        # AMD's harness_llm on vLLM V0 with multi-step scheduling: new requests wait out the k-step run (engines.py)
        plan += f",recv_interval={steps.group(1)}"
    elif (par.get("decode_steps_per_poll") or 1) > 1:
        plan += f",recv_interval={par['decode_steps_per_poll']}"  # the launch's scheduler poll interval (engines.py)
    ranks = tp if attn_dp else 1  # TensorRT-LLM limits are per attention-DP rank
    for key, name in (("max_batch_size_per_rank", "max_batch"), ("max_num_tokens_per_rank", "max_batched_tokens")):
        if par.get(key):
            limit = par[key] * ranks
            if name == "max_batch" and engine == "vllm":
                limit = min(limit, mlperf_decode_target(fw))
            plan += f",{name}={limit}"
    if not any(par.get(k) for k in ("max_batch_size_per_rank", "max_num_tokens_per_rank")):
        limits = trtllm_bench_limits(r, sc, plan, w, kv, tp, pp)
        if limits:
            plan += f",max_batch={limits[0] * ranks},max_batched_tokens={limits[1] * ranks}"
    measured = r["measured"].get("output_tokens_per_sec_total") or r["derived"]["output_tokens_per_sec_total"]
    return sc, plan, float(measured)


# AMD's MLPerf vLLM build (closed/AMD/setup/vllm_patches of mlcommons/inference_results_v5.1 @ 965182b0, applied on
# ROCm/vllm 0610_rc2 for llama2-70b, llama2_patch_files_gfx942.txt): scheduler-change-to-have-prefill-and-decode-reach-go
# .patch adds to vLLM V0's Scheduler (vllm/core/scheduler.py), when VLLM_LLAMA2_MLPERF_SCHED is 1: _schedule_running
# stops taking running sequences into the decode batch at _get_target_decode_batch() (MAX_TARGET_DECODE_BATCH once
# MAX_TARGET or more run; patch lines 27-39, 49-55), and _schedule_default admits no prompt while MAX_TARGET or more
# run (lines 64-72). So no step decodes more than MAX_TARGET sequences: the planner's max_batch (the most sequences
# decoding at once) is min(max_num_seqs, MAX_TARGET). Off (env unset) the patch changes nothing; MAX_TARGET unset is
# its envs.py default, 1536 (lines 97-123).
MLPERF_DECODE_TARGET_DEFAULT = 1536


def mlperf_decode_target(framework: str) -> float:
    """The decode-batch ceiling of AMD's MLPerf vLLM V0 scheduler patch where the run's framework text sets
    VLLM_LLAMA2_MLPERF_SCHED 1 on the V0 engine (VLLM_USE_V1 0: the V1 engine never reads it); inf otherwise."""
    if "VLLM_USE_V1 0" not in framework or "VLLM_LLAMA2_MLPERF_SCHED 1" not in framework:
        return float("inf")
    m = re.search(r"VLLM_LLAMA2_MLPERF_MAX_TARGET_DECODE_BATCH (\d+)", framework)
    return int(m.group(1)) if m else MLPERF_DECODE_TARGET_DEFAULT


def latency_percentile(lim: dict) -> str:
    """The percentile a point's latency bounds are stated at ('p90' / 'p99'): the point's
    latency_constraints.percentile (90 / 99), else p99 where its statistic note states p99 bounds (MLPerf
    Server and Interactive: loadgen checks the 99th percentile of TTFT and TPOT), else p90."""
    pct = lim.get("percentile")
    if pct is None:
        pct = 99 if "p99" in str(lim.get("statistic") or "") else 90
    if pct not in (90, 99):
        raise ValueError(f"latency_constraints.percentile: expected 90 or 99, got {pct!r}")
    return f"p{pct}"


def output_tokens(wl: dict, mean: float):
    """The point's output tokens for the scenario: the mean, or where the point states the shape of its
    output-length distribution (workload.output_len_bins: the means of equal-count bins of the dataset's
    lengths) those bins scaled to the run's mean, as equal-share [tokens, share] pairs, so that the planner
    sees the spread of the lengths (planner.spec.serving.length_biased_mean)."""
    bins = wl.get("output_len_bins")
    if not bins:
        return int(round(mean))
    scale = mean / (sum(bins) / len(bins))
    return [[max(1, int(round(b * scale))), 1.0] for b in bins]


def input_tokens(wl: dict, mean: float):
    """The point's input tokens for the scenario: the mean, or where the point states the shape of its
    input-length distribution (workload.input_len_bins: the means of equal-count bins of the dataset's input
    lengths, the prompts the harness feeds) those bins as equal-share [tokens, share] pairs, unscaled."""
    bins = wl.get("input_len_bins")
    if not bins:
        return int(round(mean))
    return [[int(b), 1.0] for b in bins]


def engine_of(r: dict) -> str:
    """Serving engine of a point: the engine the framework text names first (the text names the serving
    stack first, a client such as SGLang's bench_serving.py after it); TensorRT-LLM when it names none
    (NVIDIA NIM and MLPerf harness texts)."""
    text = str(r.get("framework", "")).lower()
    found = [(text.find(k), e) for k, e in (("tensorrt-llm", "trtllm"), ("trtllm", "trtllm"), ("vllm", "vllm"),
                                            ("sglang", "sglang")) if k in text]
    return min(found)[1] if found else "trtllm"


ENGINE_TEXT = {"vllm": "vllm", "sglang": "sglang", "trtllm": "tensorrt-llm"}


def engine_version_of(r: dict, engine: str) -> str | None:
    """The engine release the framework text names right after the engine (e.g. 'vLLM v0.10.0',
    'vLLM 0.7.4.dev181', 'SGLang 0.5.9'), as major.minor.patch; None when it names none (the TensorRT-LLM
    performance overview, NIM and MLPerf texts: plans run the pinned release)."""
    m = re.search(re.escape(ENGINE_TEXT[engine]) + r"\s+v?(\d+\.\d+(?:\.\d+)?)", str(r.get("framework", "")).lower())
    return m.group(1) if m else None


def moe_ep_assumed(r: dict, tp: int) -> int:
    """Expert parallel size when the point does not print it. ASSUMED: an MoE row of the TensorRT-LLM
    performance overview ran with EP over its tensor-parallel GPUs, because the page's MoE command
    passes `--ep $ep_size` (the dense command does not) and its later revision labels the MoE columns
    with their EP size (DEP4 = attention DP 4 + EP 4); the v1.0-era "TP8" MoE columns are read as
    attention DP 8 + EP 8 (moe_attn_dp_assumed). With EP 1 (expert tensor parallelism, TensorRT-LLM's Mapping
    default) the one such calibration point came out 38% slow (report)."""
    return tp if perf_overview_moe(r) else 1


def perf_overview_moe(r: dict) -> bool:
    """An MoE row of the TensorRT-LLM performance overview (perf-overview.md, either revision)."""
    return r["model"].get("type") == "moe" and "perf-overview" in str((r.get("source") or {}).get("path", ""))


def moe_attn_dp_assumed(r: dict, tp: int) -> bool:
    """Attention data parallelism when the point does not print it. ASSUMED: an MoE row of the TensorRT-LLM
    performance overview with tp > 1 ran with attention DP (DEP = attention DP + EP over the tp GPUs), because
    the page's MoE llm_options set `enable_attention_dp: true` in both stored revisions. @03e27c7d prints it at
    the top level (Qwen3 MoE / Llama 4 Maverick, DeepSeek-R1, GPT-OSS) and labels those columns DEPn. @00f37686
    (v1.0 era, columns labelled "TP8") prints it indented under `cuda_graph_config`; TensorRT-LLM's
    CudaGraphConfig is a pydantic StrictBaseModel (extra = "forbid", tensorrt_llm/llmapi/llm_args.py), so a file
    as printed would not load, and the runs must have used the key where it belongs. The tables agree: per GPU
    the v1.0 Qwen3-235B "TP8" 1000/1000 rows (H100 14,898 / 8 = 1,862, H200 23,789 / 8 = 2,974 tokens/s) sit
    with the later DEP columns (H100 DEP8 1,932, H200 DEP4 3,288). Read without attention DP (attention TP 8
    over 4 KV heads: every KV head twice) the H200 v1.0 row came out 33% slow, with it +4%; the page's 27 v1.0
    Qwen3-235B rows 27.4% vs 11.9% (Qwen3 MoE round, benchmarks/qwen3_serve_results.md; today's figures:
    benchmarks/qwen3_v10_check.py)."""
    return tp > 1 and perf_overview_moe(r)


# trtllm-bench throughput picks max_batch_size / max_num_tokens itself when the run does not set them
# (the perf overview's llm_options set neither): calc_engine_setting, finetune_setting (NVIDIA/TensorRT-LLM
# tensorrt_llm/bench/build/tuning.py, later tensorrt_llm/bench/tuning/heuristics.py @0b42ceaf) for the quantisations it
# tunes (FP8, FP8 block scales, NVFP4, unquantised); others (MXFP4) keep the LLM API defaults
# 2048 / 8192 (get_benchmark_engine_settings). KV fraction: the page's "--kv_cache_free_gpu_mem_fraction
# 0.95" (perf-overview.md). Device memory = the catalog's driver-reported GiB; the engine size = the
# planner's weights of the whole model (tp x its weights per GPU without attention DP), as the heuristic counted it
# at the runs' releases: the checkpoint's safetensors element count x BYTES_PER_ELEM of its quantisation
# (trtllm_bench_engine_gib), which counts a packed NVFP4 byte (two weights) or an FP8 scale as one element at 0.5
# byte and every bf16 tensor (embeddings, LM head, norms, router) as one element at the format's width: about half
# the NVFP4 checkpoint, the "NVFP4 engine size underestimated by ~2x" that PR 13498 fixed along with attention DP.
# Attention DP: the heuristic at the runs' releases takes no attention-DP argument: it sizes the KV cache of all
# tp x pp GPUs together (KV heads padded to tp) and the engine applies the resulting max_batch_size and
# max_num_tokens to every attention-DP rank (max_batch_size is a per-rank limit: the PyTorch executor's capacity
# scheduler takes max_batch_size x pp, each rank runs its own executor, TensorRT-LLM v1.1.0rc5
# _torch/pyexecutor/_util.py). NVIDIA/TensorRT-LLM PR 13498 (merged 2026-04-27, "attention DP batch size in
# trtllm-bench") made it one rank's memory and engine / tp (@0b42ceaf); both stored performance-overview revisions
# predate it (@03e27c7d carries the page text the 1.2 release docs, 2026-03, already reworded). Per rank, a limit
# sized for the whole group leaves the rank's own KV pool to bind, so the batch then rests on the workspace the
# model charges an attention-DP rank (memory.workspace_bytes; caveat in benchmarks/qwen3_serve_results.md).
TRTLLM_BENCH_TUNED = ("fp8", "fp8-block", "nvfp4", "bf16", "fp16")
TRTLLM_BENCH_BYTES_PER_ELEM = {"fp8": 1.0, "fp8-block": 1.0, "nvfp4": 0.5, "bf16": 2.0, "fp16": 2.0}  # BYTES_PER_ELEM
TRTLLM_BENCH_KV_FRACTION = 0.95
TRTLLM_LLM_API_DEFAULTS = (2048, 8192)  # TorchLlmArgs max_batch_size / max_num_tokens defaults


def trtllm_bench_finetune(requests: float, isl: int, osl: int, pp: int) -> tuple[int, int]:
    """finetune_setting: bs = min(requests, 4096) / pp rounded up to 32 (min 64) below 256, to 128
    below 1024, else to 256; tokens = min(bs_raw x (1 + isl/osl), 32768) rounded up to 256 (min 2048)
    below 4096, to 512 below 8192, else to 1024."""
    import math

    raw_bs = min(requests, 4096) / pp
    raw_tok = min(raw_bs * (1 + isl / osl), 32768)
    if raw_bs < 256:
        bs = max(64, 32 * math.ceil(raw_bs / 32))
    elif raw_bs < 1024:
        bs = 128 * math.ceil(raw_bs / 128)
    else:
        bs = 256 * math.ceil(raw_bs / 256)
    if raw_tok < 4096:
        tok = max(2048, 256 * math.ceil(raw_tok / 256))
    elif raw_tok < 8192:
        tok = 512 * math.ceil(raw_tok / 512)
    else:
        tok = 1024 * math.ceil(raw_tok / 1024)
    return bs, tok


def trtllm_bench_engine_gib(sc, weights_gib: float, w: str) -> float:
    """The heuristic's engine size (see above) from the planner's whole-model weights (GiB) at scheme w: the tensors
    kept in bf16 (embeddings, LM head, norms, router) are one element per two bytes, the quantised linears one element
    per byte (FP8 weights; NVFP4 packed pairs and their FP8 scales; bf16 / fp16 checkpoints: two bytes), and the
    element count is weighed at TRTLLM_BENCH_BYTES_PER_ELEM of w."""
    from planner.serve.memory import model_facts

    f = model_facts(sc.model)
    bf16_elems = (f.embed + f.head + f.layers * f.router_norms) / 2 ** 30
    linear_bytes = max(weights_gib - 2.0 * bf16_elems, 0.0)
    storage = 2.0 if w in ("bf16", "fp16") else 1.0
    return TRTLLM_BENCH_BYTES_PER_ELEM[w] * (linear_bytes / storage + bf16_elems)


def trtllm_bench_limits(r, sc, plan, w, kv, tp, pp) -> tuple[int, int] | None:
    """(max_batch_size, max_num_tokens) per rank that trtllm-bench throughput derives (see above):
    KV requests = (memory x GPUs - engine) x 0.95 / (bytes per token x (isl + osl)), bytes per token
    2 x layers x max(tp, kv_heads) x head_dim x KV bytes (MLA too: the heuristic then had no MLA branch); with or without attention DP the whole group's memory and engine (see above: the caller applies the
    result to every attention-DP rank); max_num_tokens then at least ISL + max_batch_size
    (trtllm_bench_prefill_floor). None when not a trtllm-bench run."""
    from planner.serve.plan import parse_serve_plan

    if "trtllm-bench" not in str(r.get("framework", "")) or "concurrency" in str(r["workload"].get("kind")):
        return None
    m, wl = r["model"], r["workload"]
    isl, osl = int(wl["input_len"]), int(wl["output_len"])
    if w not in TRTLLM_BENCH_TUNED:
        return trtllm_bench_prefill_floor(TRTLLM_LLM_API_DEFAULTS, isl)  # per rank under attention DP, as the tuned
    kvb = 1.0 if kv == "fp8" else 2.0
    # The heuristic at the runs' releases has no MLA branch (tensorrt_llm/bench/build/tuning.py calc_engine_setting,
    # every stored revision: 2 x num_attention_layers x max(tp, num_key_value_heads) x head_size x KV bytes; the
    # MLA latent size came only with tensorrt_llm/bench/tuning/heuristics.py, @0b42ceaf). Its ModelConfig
    # (bench/build/dataclasses.py) takes head_size from the config's head_dim, else hidden_size // num_attention_heads;
    # a DeepSeek-V3/R1 config.json states no head_dim, so MLA models count 128 KV heads x 56 per layer.
    hd = m["hidden_size"] // m["attention_heads"] if m.get("mla") else \
        (m.get("head_dim") or m["hidden_size"] // m["attention_heads"])
    per_tok = 2 * m["layers"] * max(tp, m["kv_heads"]) * hd * kvb
    mem = sc.cluster.node.gpu.memory_gib
    tp_plan = plan.replace("attn_dp=True", "attn_dp=False")  # the engine: the whole model once, split over tp
    w_gpu = estimate_serving(sc, parse_serve_plan(tp_plan, sc))["memory"]["weights_gib"]
    engine = trtllm_bench_engine_gib(sc, tp * pp * w_gpu, w)
    free = (tp * pp * mem - engine) * TRTLLM_BENCH_KV_FRACTION
    return trtllm_bench_prefill_floor(trtllm_bench_finetune(free * 2 ** 30 / (per_tok * (isl + osl)), isl, osl, pp), isl)


def trtllm_bench_prefill_floor(limits: tuple[int, int], max_isl: int) -> tuple[int, int]:
    """get_settings (tensorrt_llm/bench/benchmark/utils/general.py, PR 5625, merged 2025-06-30, before both
    performance-overview revisions): with chunked prefill off (trtllm-bench's --enable_chunked_prefill default False;
    no page llm_options enables it) max_num_tokens = max(the heuristic's or the LLM API default's value, the
    dataset's max ISL + max_batch_size), so a whole prompt fits one step (the fixed-length datasets: max ISL = ISL)."""
    bs, tok = limits
    return bs, max(tok, max_isl + bs)


def run_requests(r: dict) -> int | None:
    """Requests in the published finite run (PERF_OVERVIEW_REQUESTS), None when not stated."""
    wl = r["workload"]
    if wl.get("num_requests"):
        return int(wl["num_requests"])
    if "perf-overview" in str((r.get("source") or {}).get("path", "")) and "throughput" in wl["kind"]:
        return PERF_OVERVIEW_REQUESTS.get((wl.get("input_len"), wl.get("output_len")))
    return None


def finite_run_throughput(r: dict, est: dict) -> float:
    """Output tokens/s of a finite fixed-length run of run_requests(r) requests: waves of the plan's
    running batch b per replica, the last one partial; each wave of w requests takes
    w x output / (the plan's tokens/s per replica at concurrency w), from the same time model."""
    from planner.serve.plan import parse_serve_plan

    n, b = run_requests(r), est["throughput"]["running_sequences_per_replica"]
    reps = est["plan"]["replicas"]
    if not n or not b:
        return est["throughput"]["output_tokens_per_s"]
    per_rep, out = n / reps, est["_out_mean"]
    full, rest = divmod(per_rep, b)
    secs = full * b * out / (est["throughput"]["output_tokens_per_s"] / reps)
    if rest >= 1:
        # the last wave over all replicas as a whole number of requests (n need not split evenly over them)
        r2 = dict(r, workload=dict(r["workload"], concurrency=max(1, int(round(rest * reps)))))
        sc2, plan2, _ = point_scenario(r2)
        part = estimate_serving(sc2, parse_serve_plan(plan2, sc2))["throughput"]["output_tokens_per_s"] / reps
        secs += rest * out / part
    return per_rep * out * reps / secs


def server_capacity(r: dict) -> float:
    """Output tokens/s at the highest request rate the plan serves stably within the source's
    latency bounds, checked at the percentile the source states them (latency_percentile: p99 for MLPerf)
    (bisection on the rate). This, not the published rate itself, is what is compared: a
    stable plan meets any feasible rate by construction."""
    from planner.serve.plan import parse_serve_plan

    def ok(rate):
        sc, plan, _ = point_scenario(r, rate)
        est = estimate_serving(sc, parse_serve_plan(plan, sc))
        return est["latency"]["stable"] and est["latency"]["meets_slo"], sc

    lo, hi = 0.0, r["workload"]["request_rate"]
    while ok(hi)[0] and hi < 1e6:
        lo, hi = hi, 2 * hi
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid)[0] else (lo, mid)
    sc = ok(lo)[1] if lo > 0 else point_scenario(r, r["workload"]["request_rate"])[0]
    return lo * token_stats(sc.serving.output_tokens)[0]


def measured_latency(m: dict, key: str) -> float | None:
    """A published latency in ms: a number (concurrency points: the source's average) or, for MLPerf
    Server, the p50 of its {mean, p50, p99} record."""
    v = m.get(key)
    return v.get("p50") if isinstance(v, dict) else v


def latency_pair(r: dict, est: dict) -> dict | None:
    """Measured and predicted TTFT / TPOT (ms) of a point that publishes them: concurrency points at
    their concurrency (predicted p50), MLPerf Server points at the published request rate (predicted
    p50 vs the summary's p50)."""
    from planner.serve.plan import parse_serve_plan

    ttft, tpot = measured_latency(r["measured"], "ttft_ms"), measured_latency(r["measured"], "tpot_ms")
    ttft = r["measured"].get("ttft_ms_median") or ttft  # like with like: the planner's p50 vs a published median
    if ttft is None and tpot is None:
        return None
    if "server" in r["workload"]["kind"]:
        sc, plan, _ = point_scenario(r, r["workload"]["request_rate"])
        est = estimate_serving(sc, parse_serve_plan(plan, sc))
    lat = est["latency"]
    return {"ttft": (ttft, lat["ttft_ms"]["p50"]), "tpot": (tpot, lat["tpot_ms"]["p50"])}


def points() -> list[dict]:
    """Every point record of SOURCES (those present), in order, as written."""
    out = []
    for src in SOURCES:
        if src.exists():
            out += yaml.safe_load(src.read_text()) or []
    return out


def predicted(r: dict, sc, est: dict) -> float:
    """The output tokens/s point r is compared at (report header): a Server point's capacity within its latency
    bounds (server_capacity), an offline run's over its finite waves (finite_run_throughput), a concurrency point's
    rate as estimated (est: estimate_serving of the point's scenario sc and plan)."""
    if "server" in r["workload"]["kind"]:
        return server_capacity(r)
    if not r["workload"].get("concurrency"):
        est["_out_mean"] = token_stats(sc.serving.output_tokens)[0]
        return finite_run_throughput(r, est)
    return est["throughput"]["output_tokens_per_s"]


def run() -> list[dict]:
    from planner.serve.plan import parse_serve_plan

    rows = []
    for src in SOURCES:
        if not src.exists():
            continue
        for r in yaml.safe_load(src.read_text()) or []:
            r["precision"]["native_weight_format"] = r["model"].get("native_weight_format")
            sc, plan, measured = point_scenario(r)
            est = estimate_serving(sc, parse_serve_plan(plan, sc))
            pred = predicted(r, sc, est)
            fits = est["memory"]["verdict"] != "oom"
            rows.append({"id": r["id"], "kind": r["model"]["type"], "plan": plan, "measured": measured,
                         "engine": engine_of(r), "vendor": "AMD" if node_name(r["hardware"]["gpu"]).startswith("mi") else "NVIDIA",
                         "predicted": pred, "error": (pred - measured) / measured, "fits": fits,
                         "source": src.parent.name, "latency": latency_pair(r, est),
                         "ttft_median": bool(r["measured"].get("ttft_ms_median")),
                         "kind_text": r["workload"]["kind"], "lengths": (r["workload"].get("input_len"),
                                                                         r["workload"].get("output_len"))})
    return rows


def family(r: dict) -> str:
    """Error groups: MoE, dense at 4-bit (Blackwell FP4) and other dense points."""
    if r["kind"] == "moe":
        return "MoE"
    return "dense FP4" if ("nvfp4" in r["plan"] or "mxfp4" in r["plan"]) else "dense FP8/BF16"


def _mae(rows) -> str:
    return f"{100 * np.mean([abs(r['error']) for r in rows]):.1f}% ({len(rows)})" if rows else "n/a"


def regime(r: dict) -> str | None:
    """Dense fixed-length points by what bounds them: decode-heavy (output >= 4 x input: weight and KV
    reads at HBM bandwidth), prefill-heavy (input >= 4 x output: compute-bound GEMMs), else mixed."""
    i, o = r.get("lengths") or (None, None)
    if r["kind"] == "moe" or not i or not o:
        return None
    return "decode-heavy" if o >= 4 * i else "prefill-heavy" if i >= 4 * o else "mixed"


def regime_lines(rows: list[dict]) -> list[str]:
    """Mean absolute and signed error of the dense fixed-length points by regime and format: all points,
    then by GPU vendor (the AMD rows are vLLM 0.10 MI300X TP8 and sit far from the NVIDIA ones)."""
    out = ["", "Dense fixed-length points by regime (mean absolute / mean signed error, points):", "",
           "| regime | FP8/BF16 | FP4 | FP8/BF16 NVIDIA | FP8/BF16 AMD |", "|---|---:|---:|---:|---:|"]

    def cell(g, fam, vendor=None):
        sel = [r["error"] for r in rows if regime(r) == g and family(r) == fam and vendor in (None, r["vendor"])]
        return f"{100 * np.mean(np.abs(sel)):.1f}% / {100 * np.mean(sel):+.1f}% ({len(sel)})" if sel else "n/a"

    for g in ("decode-heavy", "mixed", "prefill-heavy"):
        cells = [cell(g, "dense FP8/BF16"), cell(g, "dense FP4"), cell(g, "dense FP8/BF16", "NVIDIA"),
                 cell(g, "dense FP8/BF16", "AMD")]
        out.append(f"| {g} | " + " | ".join(cells) + " |")
    return out


def _pct(pair) -> str:
    meas, pred = pair
    if meas is None or pred is None:
        return "n/a"
    return f"{meas:,.1f} / {pred:,.1f} ({100 * (pred - meas) / meas:+.0f}%)"


def latency_lines(rows: list[dict]) -> list[str]:
    """Table of the points that publish latency: measured / predicted TTFT and TPOT (ms)."""
    lat = [r for r in rows if r.get("latency")]
    if not lat:
        return []
    out = ["", "Latency-bounded points: output tokens/s above; here TTFT and TPOT in ms, measured / predicted "
           "(concurrency points: the source's averages vs the planner's p50 at that concurrency, or the source's median "
           "where the point records it ('median': InferenceX rows publish mean, median and p99; the mean carries the "
           "benchmark's first wave, all requests sent at once into an idle server); MLPerf Server: "
           "the summary's p50 vs the planner's p50 at the published request rate).", "",
           "| point | TTFT ms measured / predicted | TPOT ms measured / predicted |", "|---|---:|---:|"]
    out += [f"| {r['id']} | {_pct(r['latency']['ttft'])}{' median' if r['ttft_median'] else ''} | "
            f"{_pct(r['latency']['tpot'])} |" for r in lat]
    conc = [r for r in lat if "server" not in r["kind_text"]]
    tp = [abs(p - m) / m for m, p in (r["latency"]["tpot"] for r in conc) if m and p is not None]
    tf = [abs(p - m) / m for m, p in (r["latency"]["ttft"] for r in conc) if m and p is not None]
    out += ["", f"Concurrency points: mean absolute error of TPOT {100 * np.mean(tp):.1f}%, of TTFT "
            f"{100 * np.mean(tf):.1f}% ({len(conc)} points); their output tokens/s {_mae(conc)}. MLPerf Server "
            "rows are shown, not averaged: NVIDIA and AMD run them close to saturation (mean latency x rate = "
            "hundreds of sequences in flight per instance), where the batch and so the latency are set by how far "
            "the rate is below capacity; a capacity off by 10% moves them several-fold."]
    return out


def report(rows: list[dict]) -> str:
    errs = np.array([abs(r["error"]) for r in rows])
    lines = ["# Serving accuracy (planner serve --plan vs published output tokens/s)", "",
             "Rerun: `python benchmarks/serving_accuracy.py`. Points: ../shared/calibration/serving_runs.yaml "
             "(calibration) and benchmarks/serving_runs.yaml (added here: TensorRT-LLM performance overview rows of two revisions and blogs; NVIDIA NIM benchmarking tables at fixed concurrency, with TTFT / ITL; "
             "vLLM / SGLang / AMD points: ROCm vLLM 0.10 MI300X throughput and latency tables, MLPerf v5.0 MI325X llama2-70b, dstack's "
             "DeepSeek-R1 runs of SGLang / vLLM / TensorRT-LLM on 8x H200 and 8x MI300X, SemiAnalysis InferenceX DeepSeek-R1 FP8 / FP4 rows of "
             "SGLang 0.5.9 on B200 / H200 / MI300X / MI355X and TensorRT-LLM 1.2.0rc6 on B200; benchmarks/serve_wide_results.md, "
             "benchmarks/inferencex_results.md). "
             "Output tokens/s of the whole published deployment. Offline points: the plan's throughput at the "
             "batch that fits, over the published finite run (trtllm-bench: waves of that batch, the last one partial; "
             "requests per run from the point or the performance overview's dataset table, 1000/1000 taken as 3000). Server points (MLPerf Server): the output rate at the highest request rate the plan "
             "serves stably within the source's TTFT / TPOT bounds (checked at the percentile the source states: p99 for MLPerf, latency_constraints.percentile), not the "
             "published rate, which any stable plan meets by construction. Concurrency points: the plan's output rate "
             "with that many requests in flight (closed loop).", "",
             f"MLPerf llama2-70b input length {MLPERF_LLAMA2_INPUT_MEAN} tokens where a point states none (the mean of the "
             "dataset file's per-sample counts; not printed by the result summaries).", "",
             "| point | plan | measured | predicted | error | fits |", "|---|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['id']} | `{r['plan']}` | {r['measured']:,.0f} | {r['predicted']:,.0f} | "
                     f"{100 * r['error']:+.1f}% | {'yes' if r['fits'] else 'NO'} |")
    fams = ("dense FP8/BF16", "dense FP4", "MoE")
    lines += ["", f"Mean absolute error: {100 * errs.mean():.1f}% over {len(rows)} points; worst "
              f"{100 * errs.max():.1f}%; predicted not to fit: {sum(not r['fits'] for r in rows)}.", "",
              "| group | mean abs error (points) |", "|---|---:|"]
    lines += [f"| {f} | {_mae([r for r in rows if family(r) == f])} |" for f in fams]
    lines += [f"| source {src} | {_mae([r for r in rows if r['source'] == src])} |"
              for src in sorted({r["source"] for r in rows})]
    wide = [r for r in rows if r["id"].startswith(WIDE_PREFIXES)]
    if wide:
        lines += [f"| points of earlier rounds | {_mae([r for r in rows if r not in wide])} |",
                  f"| vLLM / SGLang / AMD points (serve_wide_results.md) | {_mae(wide)} |"]
    v51 = [r for r in rows if r["id"].startswith("mlperf51-")]
    if v51:
        lines += [f"| MLPerf Inference v5.1 points (mlperf_inference_results.md) | {_mae(v51)} |",
                  f"| MLPerf Inference v5.1 Offline points | {_mae([r for r in v51 if 'offline' in r['kind_text']])} |"]
    lines += [f"| engine {e} | {_mae([r for r in rows if r['engine'] == e])} |"
              for e in ("trtllm", "vllm", "sglang") if any(r["engine"] == e for r in rows)]
    lines += [f"| GPU vendor {v} | {_mae([r for r in rows if r['vendor'] == v])} |"
              for v in ("NVIDIA", "AMD") if any(r["vendor"] == v for r in rows)]
    lines += regime_lines(rows)
    lines += latency_lines(rows)
    bias = {f: np.mean([r["error"] for r in rows if family(r) == f]) for f in fams
            if any(family(r) == f for r in rows)}
    lines += ["", "Mean signed error by group (positive = predicted too fast): "
              + ", ".join(f"{f} {100 * b:+.1f}%" for f, b in bias.items()) + ".", "",
              "MoE terms (per-point movement of this round: benchmarks/serving_moe_changes.md). Checked on NVIDIA's "
              "measured TensorRT-LLM MoE layer timings (AIConfigurator data extract, benchmarks/moe_kernel_check.py: "
              "31.2% -> 15.2% mean error over 2,992 layer timings on H100/H200/B200/GB200; 33.0% -> 15.8% over 3,562 with "
              "the fp8_block timings added in round 2): a fixed time per GEMM output "
              "tile (expert GEMMs at K/(K+K0), K0 from DeepGEMM's published GEMM table, scaled by the GPU's rate), "
              "routing work per (token, expert) pair, expert-TP ranks moving the whole hidden vector of each routed copy, "
              "and for weight-only 4-bit experts (gpt-oss MXFP4 on Hopper, TensorRT-LLM's Triton MoE path) the "
              "dequantisation of every weight element per row tile on the CUDA cores (fitted to AIConfigurator's Hopper "
              "W4A16 timings) and the Triton kernel's own row tile (16-128 rows by rows per expert, not 128). "
              "Also added: a 4 us launch-and-tail time per kernel and collective (the H200-measured GEMM_LAUNCH_S). "
              "Performance-overview MoE columns are read as EP = TP (ASSUMED, moe_ep_assumed: the page's MoE command "
              "passes --ep; the Qwen3-235B TP8 point is -38% with EP 1 and +22% with attention DP as well). Earlier "
              "checks kept: the finite trtllm-bench run (waves), the busiest expert-parallel rank (binomial order "
              "statistics), trtllm-bench's own batch limits, MXFP4 as an experts-only scheme, the MoE model facts.", "",
              "Block-scaled FP8 (weights=fp8-block; benchmarks/serving_moe_changes.md, round 2): DeepSeek-V3 / R1 "
              "checkpoints (128 x 128 weight blocks with one fp32 scale each, 1 x 128 activation groups) run their dense "
              "GEMMs at the FP8 rate (AIConfigurator's H200 GEMM table: block within 0.99-1.03x of per-tensor) and, on "
              "tensor cores without block-scaled MMA (Hopper), their expert GEMMs pay the CUDA-core promotion per output "
              "element and K block (timing.BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT, fitted on AIConfigurator's TensorRT-LLM "
              "fp8_block MoE timings: Hopper 28% -> 16% mean error over 492 timings). The two DeepSeek-R1 H200 points use "
              "it (the performance overview's FP8 model is deepseek-ai/DeepSeek-R1-0528, the blog's the R1 checkpoint): "
              "+68.2 / +58.5% -> +27.6 / +37.2%; no other point moves. Host time per running request "
              "(timing.HOST_S_PER_REQUEST: TensorRT-LLM's sampler, 11.3 ms per iteration at batch 1,000 on an x86 host, "
              "PR 11983) bounds the overlapped step (max of GPU and host): one point moves (B200 gpt-oss-20b +30.4 -> "
              "+30.3%). PR 10273's Grace figure (45 ms per iteration at 1,536 requests per rank on GB200, 29 us per "
              "request for the whole host step) is not used: it is not the same quantity as the x86 sampler figure, and "
              "applied to every host it turns B200 gpt-oss-20b from +30% to -37% (GB200 gpt-oss-120b +64 -> +26%).", "",
              "Decode attention per (sequence, KV head): a fixed 8 ns per layer besides the KV read "
              "(timing.DECODE_ATTN_SEQ_KVHEAD_S, fitted on AIConfigurator's TensorRT-LLM generation-attention timings "
              "with an FP8 KV cache: 8.1-8.4 ns on H100 / H200 in three versions and on B200 1.2.0rc5, "
              "benchmarks/decode_attn_check.py). It moved 128 points: all 134 12.6% -> 12.6%, MoE 38.3 -> 34.5% "
              "(Blackwell gpt-oss +38 / +64 / +30 -> +28 / +48 / +18%), dense FP8/BF16 7.2 -> 7.5% and FP4 11.3 -> "
              "12.4% (their mean signed error -0.9 -> -2.1% and -9.4 -> -11.0%: the dense FP4 rows were already "
              "slow under the stated FP4-at-FP8-throughput choice; 8B rows at 128-token prompts move most, e.g. "
              "H200 128/128 +16.6 -> +9.3%). Not separated: bf16 KV on Hopper (28-31 ns in every version) and "
              "TensorRT-LLM 1.3.0rc10 on B200 / GB200 (75-111 ns).", "",
              "Known gap, MoE still predicted too fast. gpt-oss on Hopper (+48..+73%): charging the Hopper bf16-KV "
              "figure (28-31 ns) to the sliding-window layers moves these rows by only 4-6 points, so decode "
              "attention does not explain them. Per-op check (benchmarks/step_ops_check.py, "
              "benchmarks/step_ops_results.md): one step of the H200 gpt-oss-20b 1000/1000 point at 2,048 sequences "
              "against NVIDIA's measured TensorRT-LLM 1.2.0rc5 H200 per-op tables (AIConfigurator): bf16 GEMMs incl. "
              "LM head 10.6 vs 10.4 ms, MoE layers 45.7 vs 48.8, generation attention 24.5 vs 24.4 (extrapolated to "
              "batch 2,048), context attention 0.8 vs 2.5; 81.6 vs 86.0 ms where a table exists, 89 ms in all (90 before the host step was overlapped), "
              "against the 148 ms the published rate needs (H200 gpt-oss-120b TP1 at 932 sequences: 68.9 vs 60.3 ms "
              "where a table exists, the model's MoE 14% slower than measured, 74 ms in all against 136 ms). A smaller running batch (1,268 if the sliding-window "
              "layers kept whole sequences) changes the prediction by -11% only: the step costs per token. The "
              "missing ~55 ms is outside the measured kernels (host or scheduling, not found). Blackwell "
              "single-GPU MoE at 1,500-2,000 running requests (+18..+48%): the whole host step per request on x86 "
              "(above). Checked, not added: "
              "sliding-window FLOPs in prefill attention (TensorRT-LLM's measured sliding-window context attention "
              "costs 38-80% of full attention, not the FLOP share; the 32k-prompt gpt-oss rows would go from within "
              "10% to +16..+32%); attention-DP stragglers (Poisson prompt arrivals per rank, TensorRT-LLM tech blog 10): "
              "fixed-length trtllm-bench runs admit prompts on all ranks in step, and the term made the 8k/32k-prompt "
              "rows of the same tables 18-49% slow.", ""]
    lines += dense_notes()
    lines += qwen3_notes()
    lines += moe_round3_notes()
    lines += collective_size_notes()
    lines += engine_path_notes()
    lines += graph_padding_notes()
    lines += rccl_notes()
    lines += decode_heavy_notes()
    lines += inferencex_notes()
    lines += ttft_notes()
    lines += amdlaunch_notes()
    lines += closed_loop_notes()
    lines += mlperf51_notes()
    lines += mg1_notes()
    return "\n".join(lines)


def qwen3_notes() -> list[str]:
    """The performance overview's MoE columns: attention DP (moe_attn_dp_assumed) and trtllm-bench's batch limits at
    the runs' releases (trtllm_bench_limits)."""
    return ["", "Qwen3 MoE round (benchmarks/qwen3_serve_results.md), three readings of the TensorRT-LLM performance "
            "overview. (1) Its v1.0-era MoE columns (\"TP8\") ran attention DP + EP over the 8 GPUs "
            "(moe_attn_dp_assumed): the page's MoE llm_options set enable_attention_dp, printed under cuda_graph_config, "
            "where TensorRT-LLM's CudaGraphConfig (extra = \"forbid\") would reject it; the later revision prints it at "
            "the top level and labels the same model's columns DEP. (2) trtllm-bench's heuristic batch limits at the "
            "runs' releases ignore attention DP (whole group's memory; applied to every rank): attention-DP sizing came "
            "with NVIDIA/TensorRT-LLM PR 13498 (2026-04), after both revisions (trtllm_bench_limits). Moved: H200 "
            "Qwen3-235B TP8 1000/1000 -33.2 -> +4.0%, H100 DEP8 +24.4 -> +6.9%, H200 DEP4 +15.9 -> +1.6%, B200 DEP4 "
            "+8.8 -> +7.3%, H200 DeepSeek-R1 DEP8 +2.2 -> -11.9% (257 sequences per rank pad to the 384 CUDA graph); all "
            "points 23.1 -> 23.0%, without dstack 14.4 -> 14.3%. (3) The heuristic's engine size at those releases: "
            "safetensors elements x bytes of the quantisation, about half of an NVFP4 checkpoint (trtllm_bench_engine_gib, "
            "the same PR's other fix): 25 points, dense FP4 6.3 -> 5.7%, all points 23.0 -> 22.9%. The page's 27 v1.0 "
            "Qwen3-235B rows "
            "read without / with attention DP 27.4 -> 11.9% in this round (benchmarks/qwen3_v10_check.py prints today's "
            "figures); the later page's 70 other MoE rows 18.4 -> 18.0%. Caveat: (2)'s gain rests on memory.workspace_bytes charging every attention-DP rank the group's logits and tokens; charged per rank (not committed) it goes (H100 Qwen3 DEP8 +6.9 -> +21.1%). Open: "
            "Qwen3 on Hopper at 1024/8192 (+25 / +27%, 10-11 ms a step), Qwen3-30B TP1 1000/1000 (+31%; GB200 slower "
            "than B200 only where every step carries prompt tokens: host-bound eager steps, not modelled)."]


def mg1_notes() -> list[str]:
    """The prefill queue under a request rate as M/G/1 (evaluate.prompt_service_moments, timing.mg1_wait_quantile)."""
    return ["", "M/G/1 round (prefill queue under a request rate): the wait was M/M/1 (exponential service); a prompt's "
            "service is the busy engine's step time for its tokens, known from its length, so it is now M/G/1: the "
            "Pollaczek-Khinchine mean lam E[S^2] / (2 (1 - rho)) with E[S], E[S^2] over the input lengths (S quadratic in "
            "the length through prefill attention), and the exponential tail rho exp(-(rho / Wq) t) with the exact "
            "P(wait) = rho and mean (Abate, Choudhury & Whitt 1995). Every MLPerf point feeds one input length (the "
            "dataset mean), so its wait halves. Moved: B200 llama3.1-405b Server -19.0 -> -4.6% (TTFT p50 at the "
            "published rate 4,683 -> 2,830 ms; measured 1,357), llama2-70b Interactive +37.8 -> +41.1%, llama3.1-8b "
            "Server +23.5 -> +23.7%; all points 23.2 -> 23.1%. The 405B queue is still too long: at 1.9 requests/s "
            "the planner's prefill server is 87% busy (0.91 s per 9.4k-token prompt); the published mean TTFT, "
            "1,626 ms, puts it near 60% under the same service time, so the busy prefill step, not the queue "
            "discipline, is the open term. With the datasets' input shapes (per-sample counts, same source as the "
            "means: cs^2 0.19 for 405B, 0.60 for llama2) instead of the mean, 405B would be -11.2% (TTFT p50 3,618 ms), "
            "llama2 Interactive +38.5%; not adopted here."]


def mlperf51_notes() -> list[str]:
    """MLPerf Inference v5.1 round (benchmarks/mlperf_inference_results.md)."""
    return ["MLPerf Inference v5.1 round (benchmarks/mlperf_inference_results.md): 23 closed-division points (NVIDIA, HPE, "
            "Nebius TensorRT-LLM on B200 / GB200 / H200; AMD vLLM 0.9 on MI300X / MI325X; llama2-70b, llama3.1-405b / 8b, "
            "mixtral-8x7b, deepseek-r1; Offline, Server, Interactive), each with its submitter's tp / pp / ep / attention DP, "
            "instances and batch / token limits, and its dataset's input mean and output-length shape (per-sample token "
            "counts of the MLCommons dataset files). Added terms: (1) a sequence in flight holds input + E[o^2] / (2 E[o]) "
            "tokens where the output count is a distribution (length-biased output; DeepSeek-R1's reasoning outputs have a "
            "coefficient of variation 1.25, so twice the naive mean context): new rows 22.9 -> 18.4% (DeepSeek-R1 B200 "
            "offline +38.1 -> +8.1%); (2) plan key separate_prefill, vLLM V0's scheduler with chunked prefill off (prompt "
            "steps without decodes), set by the six AMD rows: 18.4 -> 17.2% (the 22 rows the terms were worked on; a 23rd, "
            "GB200 x4 llama3.1-405b Offline, added after them: -2.1%). The MLPerf llama2-70b points that state no "
            "input length take the dataset's mean, 222.3 tokens, not the 300 ASSUMED before, and its output shape. "
            "Open: MLPerf Server capacity is bound in the runs by the TTFT p99 bound (8B, DeepSeek-R1, MI300X: p99 TTFT "
            "1.7-1.9 s of 2 s at p50 0.5-0.9 s), while the planner's TTFT under a rate is 10-100 ms: harness batching "
            "(AMD: VLLM_LLAMA2_MLPERF_MIN_REQUIRE_PREFILL_QUERY 8) and attention-DP balancing waits the model lacks; at the "
            "measured operating point the planner's TPOT is 0.95-1.39x off (DeepSeek-R1 B200 1.39, llama2 Interactive 1.30).",
            "", "mlperfsrv round (benchmarks/mlperf_inference_results.md, 'p99 and the Server runs'): latency at p99 (TTFT: "
            "the p99 input, scheduling and queue waits; TPOT: the batch spread and the prompt chunks among a request's own "
            "steps), slo keys ttft_ms_p99 / tpot_ms_p99, and Server points checked at the percentile their source states "
            "(MLPerf p99): Interactive +38.3 -> +31.9%, B200 llama3.1-405b Server -11.4 -> -39.6% (its planner TTFT tail, "
            "p99 24 s at the published rate against 5.1 s measured, now binds at the 6 s bound), the other Server rows "
            "within 0.2 point (at the planner's capacity they are stability-bound, below both p99 bounds). TensorRT-LLM's "
            "attention-DP balancing (plan keys adp_balance / adp_wait_iters / adp_timeout_iters, the DeepSeek-R1 rows' "
            "3 / 9 and 10 / 500 / 50) holds prompts for the release cycle: DeepSeek-R1 Server TTFT p50 at the published "
            "rate 54 -> 192 ms (measured 686), capacity unchanged (TPOT-bound).", ""]


def inferencex_notes() -> list[str]:
    """InferenceX round (benchmarks/inferencex_results.md): 41 more DeepSeek-R1 rows, the TRTLLM-gen MoE kernels."""
    return ["", "InferenceX round (benchmarks/inferencex_results.md): 41 more DeepSeek-R1-0528 rows of the InferenceX API "
            "snapshot (the stored fixtures hold DeepSeek-R1 only: no gpt-oss or Llama rows), each with its run URL and "
            "its launch script's settings at the run date: SGLang 0.5.9 on 8 x H200 (FP8, TP8, bf16 KV), TensorRT-LLM "
            "1.2.0rc6.post2 on 4 x B200 (NVFP4, TP4 with expert TP, FP8 KV, moe_config backend TRTLLM), SGLang 0.5.9 "
            "on 8 x B200 (NVFP4, TP8 EP8; FP8 TP8 at 4-8 requests), on 8 x MI355X (MXFP4, TP8) and on 8 x MI300X (FP8, TP8), "
            "4-128 requests in flight. Added term: "
            "TensorRT-LLM's TRTLLM-gen fused MoE kernels (plan key moe_backend=trtllm, YAML moe_config.backend TRTLLM; "
            "Blackwell only) pad each expert's rows to a power-of-two tile of 8-128 rows by the tokens per expert "
            "(timing.trtllm_gen_row_tile, calculate_tile_tokens_dim in "
            "tensorrt_llm/_torch/custom_ops/trtllm_gen_custom_ops.py), not to 128-row CUTLASS tiles; checked on "
            "AIConfigurator's B200 TensorRT-LLM 1.2.0rc5 MoE timings (benchmarks/trtllm_gen_moe_check.py: the layer "
            "time's growth from 4 to 16 tokens is 1.53x the measured TRTLLM-gen one with 128-row tiles, 0.83x with its "
            "own tiles; for the CUTLASS backend 0.73x with 128-row tiles). Only the 9 TensorRT-LLM B200 rows set that "
            "backend, so only they move: 18.8% -> 3.4% (signed -18.8 -> -0.7%, TPOT -1..+12% off); no other point "
            "moves (the performance-overview rows name CUTLASS). Not mapped: SGLang's --moe-runner-backend "
            "flashinfer_trtllm, which every SGLang B200 row's script passes (FlashInfer's build of the same kernels): "
            "with the small tile those 22 rows come out 5-23% fast (the 9 TP8 EP8 rows, added after the term and so "
            "held out, 4.1% -> 17.4%; SGLang's measured step is about 1-1.5 ms longer than the model's at 8-128 "
            "requests, e.g. TPOT 9.0 vs 7.9 ms against TensorRT-LLM on the same GPU at 4 requests), so they keep the "
            "128-row timing, which they fit (4.1-7.1% per cell), and the SGLang step cost stays an open gap. The SGLang "
            "rows on H200 and MI355X stay 1-26% slow at 16-64 requests; SGLang on 8 x MI300X is 49-166% too fast (a "
            "fixed 12-17 ms per decode step at 4-64 requests the model lacks; the vLLM 0.10 MI300X TP8 rows miss time too, "
            "growing with the batch there); TTFT was "
            "predicted 63-92% low in every InferenceX cell (not in the error above): see the TTFT round below."]


def ttft_notes() -> list[str]:
    """Scheduling wait and the published TTFT statistic (benchmarks/ttft_results.md, ttft round)."""
    return ["", "TTFT round (benchmarks/ttft_results.md: every point before / after): (1) InferenceX rows publish "
            "mean, median and p99 TTFT; the mean carries the benchmark's first wave (10 x C prompts, the first C sent "
            "at once into an idle server: p99 ~ C prefills), so 43 of the 59 points now carry the same row's median "
            "(measured.ttft_ms_median), compared with the planner's p50. (2) A new request waits for the scheduler: "
            "the engines schedule between steps, and SGLang's --scheduler-recv-interval k (plan key recv_interval; "
            "InferenceX's B200 launches 10 / 30) takes new requests only every k decode steps: TTFT p50 / p90 add "
            "0.5 / 0.9 x k steps (evaluate.schedule_wait; the AMD launches' --num-continuous-decode-steps 4, counted "
            "here in that round, is inert in SGLang 0.5.9: amdlaunch round). Concurrency points' TTFT 78.1 -> 48.0% (InferenceX 78.5 -> 38.4%, NIM 20.1 -> "
            "18.6%); output tokens/s and TPOT do not move. Open: ~80-100 ms at 1k-token prompts of DeepSeek-R1 at "
            "k = 1 (TensorRT-LLM B200, SGLang H200) that 8k prompts do not show."]


def amdlaunch_notes() -> list[str]:
    """The InferenceX AMD launch settings (benchmarks/amd_serve_results.md, amdlaunch round)."""
    return ["", "amdlaunch round (benchmarks/amd_serve_results.md): (1) ROCm QuickReduce, plan key quick_reduce "
            "(none / fp / int8 / int6 / int4; vLLM VLLM_ROCM_QUICK_REDUCE_QUANTIZATION, SGLang "
            "ROCM_QUICK_REDUCE_QUANTIZATION; MI300 / MI350 series, TP 2 / 4 / 8): a two-shot all-reduce of coded "
            "elements (INT4: 1,152 B per 2,048 fp16 values incl. scales, quick_reduce_impl.cuh), from 1-16 MiB by "
            "level and group size (QuickAllReduce._QR_MIN_SIZE); SGLang tries its custom all-reduce first (to 16 MiB on "
            "ROCm), so only prefill messages above 16 MiB go coded, timed as the comm model's latency + coded bytes, "
            "with no more gain than AMD measured over RCCL on MI355X (4.14 / 3.43 / 1.52x at TP 2 / 4 / 8, 1 GB). The "
            "7 MI355X rows set INT4 (dsr1_fp4_mi355x.sh): one moves, TP8 8k/1k c64 -1.2 -> +2.3% (TPOT +7 -> +3%); the "
            "1k/1k TP4 rows' decode messages (<= 0.9 MB) never reach it, so their 8-23% slowness stays. (2) "
            "--num-continuous-decode-steps 4 (every AMD InferenceX launch) is parsed but read by no scheduler loop in "
            "SGLang 0.5.9 (the multi-step loop left with the overlap scheduler, sgl-project/sglang PR 2095; PR 23131, "
            "2026-04, proposed restoring it): no per-step cost is divided and no request waits for a poll, so the 16 "
            "AMD rows lose recv_interval=4; their predicted TTFT p50 drops 16-84 ms (now 32-72% below the published medians), output tokens/s "
            "and TPOT do not move. (3) Catalog MI300X / MI355X peaks, HBM and xGMI links agree with AMD's figures; "
            "the MI300X gap stays unexplained."]


def closed_loop_notes() -> list[str]:
    """The prefill queue at a fixed concurrency (evaluate.closed_loop_wait_quantile, ttftq round)."""
    return ["", "ttftq round (closed-loop prefill queue): at a fixed concurrency the wait for the prompts ahead was the "
            "open-loop M/M/1 wait at the loop's completion rate, which charged a queue with nobody else present (C = 1, "
            "8k prompts and 128 outputs: p90 580 ms against a 290 ms prefill) and passed an hour near saturation; it is now "
            "the finite-source M/M/1//K queue (Kleinrock vol. 1 Sec. 3.9) of the K = B requests running per replica: "
            "an arrival sees the (K - 1)-source state (arrival theorem), P(wait) = 1 - Erlang-B(K - 1, mu Z), "
            "exact mean, exponential tail; no wait at C = 1, the M/M/1 wait as K grows. Of the reported p50s only NIM "
            "70B 5000/500 moves: c50 698 -> 621 ms (-16 -> -26%), c100 6,852 -> 6,735 ms (-14 -> -16%); concurrency "
            "TTFT 51.9 -> 52.0%. 26 more points move only at p90 (not published; 0.1-199 ms lower). Output tokens/s "
            "and TPOT do not move."]


def rccl_notes() -> list[str]:
    """AMD's measured RCCL all-reduce on 8 x MI300X (benchmarks/amd_serve_results.md, mi300ar round)."""
    return ["RCCL on 8 x MI300X (benchmarks/amd_serve_results.md, `python benchmarks/rocm_tp8_allreduce_check.py`): where "
            "an engine leaves its custom all-reduce for RCCL on an 8-GPU MI300X board (vLLM above 8 MiB; SGLang above "
            "16 MiB on ROCm) the TP all-reduce takes AMD's measured rccl-tests time at the message size "
            "(catalogs/rccl_measured.csv: ROCm blog 'Understanding RCCL Bandwidth and xGMI Performance on AMD Instinct "
            "MI300X', RCCL 2.22.3, 1-128 MiB; MI325X boards take it, same xGMI mesh). RCCL there runs at 0.58-0.95x the "
            "link model's rate (1-128 MiB). 10 points move, all MI300X, all closer: the four ROCm vLLM 0.10 offline rows "
            "(25-52 MB decode messages) 6-16 points, dstack's six DeepSeek-R1 rows 1-4 points. The latency rows "
            "(2-4 MiB messages, vLLM's custom all-reduce, no 8-GPU table) do not move.", ""]


def decode_heavy_notes() -> list[str]:
    """What the dense decode-heavy round checked and changed (benchmarks/decode_heavy_results.md)."""
    return ["", "Dense decode-heavy points (benchmarks/decode_heavy_results.md, decode_heavy_check.py). Split by vendor "
            "the decode-heavy FP8/BF16 gap is AMD's: before this round NVIDIA 5.9% / -2.2% signed (19 points), AMD "
            "47.7% / +47.7% (12, vLLM 0.10 MI300X TP8). NVIDIA FP4 9.9% / +9.1% (12) came mostly from GB200: its "
            "NVLink all-reduce ran on the comm model (NVLink 5 spec x efficiency) while B200's took NVIDIA's measured "
            "NCCL table; AIConfigurator also holds measured GB200 and GB300 NVL72 NCCL tables (2.29.2, 2 and 4 GPUs), "
            "now in catalogs/nccl_measured.csv (planner.serve.nccl_measured.MEASURED_DOMAIN; a 32 MiB all-reduce on "
            "4 GB200s: 123 us measured, 84 us before). Only the ten GB200 Llama-3.1-405B TP4 rows move (hidden 16,384: "
            "TensorRT-LLM runs NCCL at every size): 128/2048 +16.9 -> +2.7%, 128/4096 +15.9 -> -9.5%, 500/2000 +23.1 "
            "-> +11.1%, 1000/2000 +27.0 -> +10.2%, 2048/2048 +11.5 -> -0.9%, 1000/1000 +7.5 -> +2.6%, 20000/2000 "
            "+4.6 -> +0.2%, 128/128 +2.2 -> -0.4%, 2048/128 +0.8 -> -1.5%, 5000/500 +0.7 -> -2.9%; all 183 points "
            "26.5 -> 26.1%, the 134 of earlier rounds 8.9 -> 8.4%, dense FP4 6.4 -> 4.8%, NVIDIA decode-heavy FP4 "
            "9.9% / +9.1% -> 7.2% / +4.8%; training reports unchanged. Checked against NVIDIA's per-op tables, not "
            "changed: decode attention at batch >= 256 and context 2,048 (FP8 KV, head 128) is 1.18-1.45x the "
            "measured TensorRT-LLM 1.2.0rc5 kernel on H100 / H200 / B200 (the model is slower there, not faster); "
            "dense FP8 / NVFP4 GEMMs run faster in the model than in TensorRT-LLM's measured GEMM tables at every row "
            "count (0.36-0.78x the measured time; bf16 0.81-1.13x), 6-28% more so at decode rows (512-1,024) than at "
            "prefill rows (4,096-8,192), yet NVIDIA FP8 decode-heavy and prefill-heavy rows carry the same signed "
            "error (-2.2 / -2.9%), so no rate change was made; every decode-heavy NVIDIA point is KV-limited in the "
            "model, and the engine's 32-token blocks add at most 1.1% KV per sequence while the overview's "
            "free_gpu_memory_fraction 0.95 ('in many cases') would make them faster, not slower (mean signed "
            "+0.5 -> +2.8% over the 31 points); "
            "TensorRT-LLM's sampler host time per running request (timing.HOST_S_PER_REQUEST) is at most 29% of the "
            "GPU step at these points (H200 Llama-3.1-8B at 877 requests), so it never binds.", ""]


def graph_padding_notes() -> list[str]:
    """CUDA-graph padding round (serveb): what moved, by group and point."""
    return ["", "CUDA-graph padding (TensorRT-LLM, plan key graph_padding; engines.graph_padded_batch): a step "
            "without prompt tokens replays a captured CUDA graph, and with cuda_graph_config.enable_padding (the "
            "performance overview's llm_options in both revisions, captured sizes 1, 2, 4, ..., 256, 384, 512, 1024, "
            "2048, 4096, 8192) TensorRT-LLM pads it with one-token dummy requests to the next captured size "
            "(CUDAGraphRunner.pad_batch); steps that carry prompt tokens run without a graph "
            "(ScheduledRequests.can_run_cuda_graph). Applied to the points whose framework text names padding (the "
            "perf-overview rows, 119); NIM, MLPerf, the DeepSeek blog and every vLLM / SGLang point keep "
            "unpadded steps. All points 28.3 -> 27.7%; earlier rounds' 134 points 9.7 -> 8.9%; calibration "
            "12.4 -> 12.3%; dense FP8/BF16 13.2 -> 12.8% (decode-heavy signed +19.3 -> +17.6%), dense FP4 8.1 -> 6.4% "
            "(decode-heavy +13.3 -> +9.1%); MoE 71.6 -> 71.4%. 88 points move, 54 closer, 34 further: most "
            "H200 Llama-3.1-405B TP8 1000/2000 +13.5 -> +2.0%, GB200 405B TP4 500/2000 +31.7 -> +23.1%, B200 405B "
            "TP4 1000/2000 +19.2 -> +10.8%; least H100 Llama-3.3-70B TP2 1000/1000 -5.5 -> -9.1%, GB200 70B TP1 "
            "128/2048 -0.7 -> -4.1%, H200 8B 1000/2000 and 128/2048 -0.0 -> -3.2 / -3.1%. gpt-oss on Hopper moves "
            "0.1-3.8 points (its 1000/1000 steps nearly all carry a prompt, so they run without graphs).", ""]


def engine_path_notes() -> list[str]:
    """Engine code paths round (every point by commit: benchmarks/serve_engine_paths.md) and the held-out check
    of the fitted per-operation constants (benchmarks/fitted_holdout.md)."""
    return ["", "Engine code paths (benchmarks/serve_engine_paths.md: every point at each commit). (1) Host step: "
            "SGLang's overlap scheduler (disable_overlap_schedule False by default) and TensorRT-LLM's "
            "(disable_overlap_scheduler False) prepare the next step on the host while the GPU runs this one, so a "
            "step takes max(GPU, host), not GPU + 1 ms; vLLM adds the host step (no async scheduling in 0.7-0.10, "
            "the releases of every vLLM point; vLLM turns it on by default from 0.14, so plans at the launch files' pin "
            "(0.33) overlap it too: the plan key engine_version, from the point's framework text, keeps the published "
            "vLLM rows at their own releases, engines.vllm_async_scheduling; no point moves). (2) TP all-reduce below the NCCL floor: the engine's own kernel at the message "
            "size, NVIDIA's measured AIConfigurator custom_allreduce tables (catalogs/custom_allreduce_measured.csv: "
            "SGLang 0.5.9 and vLLM 0.14 / 0.19 custom all-reduce in CUDA graphs, TensorRT-LLM 1.2.0rc5's allreduce op; "
            "H100 / H200 / B200 boards; 4-8 us at decode sizes against the comm model's 10 us latency); SGLang on an "
            "MoE model runs FlashInfer's all-reduce fusion (TensorRT-LLM's kernel; SGLang enables it by itself for "
            "DeepSeek-V3 / Qwen3-MoE / gpt-oss / GLM-MoE on sm 9.x / 10.x, and the InferenceX launches pass "
            "--enable-flashinfer-allreduce-fusion), whose table it takes; SGLang's own custom all-reduce on B200 "
            "at 8 GPUs is 2.5x slower at 256 KB-2 MB. (3) Point definitions: the InferenceX B200 FP8 and MI355X "
            "DeepSeek-R1 rows ran an FP8 KV cache (--kv-cache-dtype fp8_e4m3 in the launch scripts at the run dates), "
            "not the bf16 taken before. The measured all-reduce curves are used as their lower non-decreasing envelope "
            "(they dip where a kernel choice switches, e.g. TensorRT-LLM on 2 H100: 9.9 us at 16 KB, 3.4 us at 32 KB; "
            "this moves the NIM 1- and 5-user rows +0.6 -> +6.4% and +0.9 -> +3.4%). Group means (mean abs error) "
            "before -> after: all 27.8 -> 28.3%; earlier rounds' 134 points 9.5 -> 9.7%; dense FP8/BF16 13.8 -> "
            "13.2%, dense FP4 7.1 -> 8.1% (B200 / GB200 TensorRT-LLM rows that were already fast lose their 1 ms "
            "host step), MoE 69.5 -> 71.6%; MoE without the dstack rows 20.8 -> 18.1%; InferenceX SGLang "
            "DeepSeek-R1 14.7 -> 7.4% (mean signed -14.7 -> -5.8%); dstack DeepSeek-R1 186.5 -> 200.0% (these "
            "early-2025 engines were already 2-5x slower than the model; hiding the host step moves them further); "
            "ROCm vLLM 0.10 MI300X TP8 52.6% unchanged (no AMD table; vLLM serial as before); all but the dstack "
            "rows 13.6 -> 13.0%; 161 of 183 points moved, 75 closer.",
            "", "Checked, not adopted: the TensorRT-LLM-gen MoE row tile (power of two of the rows per expert, "
            "8-64/128, flashinfer calculate_tile_tokens_dim) for SGLang's flashinfer_trtllm MoE on Blackwell: every "
            "InferenceX row turned 7-21% fast, and NVIDIA's CUTLASS MoE timings at 256 tokens already run slower than "
            "the model with 128-row tiles (moe_kernel_check: B200 -17% signed at <= 16 rows per expert). vLLM "
            "overlapped as well: the ROCm vLLM 0.10 batch-1 rows go from +2 / +12% to +16 / +18% (vLLM 0.10 ran "
            "serially). Not modelled in that round: the MI355X rows' ROCM_QUICK_REDUCE_QUANTIZATION=INT4 and "
            "--num-continuous-decode-steps 4 (both settled in the amdlaunch round below).",
            "", "Fitted per-operation constants held out (benchmarks/fitted_holdout.md): MOE_PAIR_S fitted on one GPU, "
            "version or half of the shapes scores the rest within 0.7 point of their own best; "
            "BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT and DEQUANT_FP32_OPS_PER_WEIGHT carry between H100 and H200 (one chip) "
            "and between shape halves, and DEQUANT does not carry to Blackwell (GB200's W4A16 timings need ~49 ops "
            "against 12); DECODE_ATTN_SEQ_KVHEAD_S carries across H100 / H200 / B200 and shapes for the FP8-KV "
            "kernels but not to a bf16 KV cache (30 ns) or TensorRT-LLM 1.3.0rc10 on Blackwell (75-111 ns): stated "
            "limits in timing.py, no catalog quantity replaces them."]


def moe_round3_notes() -> list[str]:
    """MoE round 3 (router skew, attention-DP collectives): what changed and what was checked
    (every point and row by commit: benchmarks/serve_moe_results.md)."""
    return ["MoE round 3 (benchmarks/serve_moe_results.md: every point and 70 other rows of the same MoE columns "
            "by commit). (1) The busiest EP rank under a skewed router (planner/serve/routing_skew.py): expert loads "
            "drawn from AIConfigurator's power law (alpha 1.01 for every model, ASSUMED: the smaller of its two "
            "latency-matched estimates), expected busiest-rank share from a fixed-seed draw; it scales the expert "
            "GEMMs' compute and the busiest rank's own routed-copy traffic. Checked on AIConfigurator's skewed-routing "
            "TensorRT-LLM MoE layer timings (benchmarks/moe_kernel_check.py: EP 2-8 rows 19.9% -> 18.2% mean error, "
            "median skewed / balanced measured 1.10, model 1.08). (2) Attention-DP MoE layers all-gather the tokens "
            "(TensorRT-LLM quantises FP8 / NVFP4 first) and reduce-scatter the bf16 outputs: TensorRT-LLM's "
            "all-to-all needs MNNVL and ep > top_k (select_alltoall_method_type), vLLM's default all2all backend "
            "is allgather_reducescatter. Points: MoE 34.0 -> 27.7 (1) -> 29.7 (2) -> 28.4% (busiest rank's copies); "
            "other rows of the same columns 20.5 -> 18.5%; dense points do not move. Checked, not adopted: a "
            "per-expert roofline over the skewed loads (hot experts compute-bound, cold ones read-bound; MoE points "
            "29.7 -> 31.3%, the layer check 18.2 -> 18.6%); alpha 1.2 (AIConfigurator's other estimate: MoE points "
            "27.7 -> 25.4% at step 1; not taken, it would be chosen by the points); FlashMLA's compute-bound rate for "
            "absorbed-MLA decode (benchmarks/mla_decode_check.py: the model's MLA decode is 0.7-0.8x the measured "
            "TensorRT-LLM kernel at 1k KV and 1.2-1.5x at 8-16k on Hopper, up to 2.3x on B200 FP8 KV; the FlashMLA "
            "rate fixes long contexts but not short ones and moved every DeepSeek-R1 row 5-27 points faster). "
            "Known gap: NCCL at serving message sizes (1-128 MB) runs 1.2-2.3x slower than the comm model's "
            "large-message link rate (benchmarks/collective_check.py against AIConfigurator's measured NCCL "
            "tables), which the attention-DP all-gather / reduce-scatter pay; not corrected (no mid-size rate in "
            "the node catalog), so DEP points stay fast (H100 Qwen3-235B DEP8 +30%).", ""]


def collective_size_notes() -> list[str]:
    """The collectives at their message size (benchmarks/collective_size_results.md)."""
    return ["Collectives at the message size (benchmarks/collective_size_results.md: every point before / after): "
            "where the engine runs NCCL on an H100 / H200 / B200 8-GPU board, the step takes NVIDIA's measured NCCL "
            "time at the message size (AIConfigurator's collected tables, catalogs/nccl_measured.csv, 1-128 MiB, "
            "interpolated; planner/serve/nccl_measured.py) instead of latency + size / (NVLink spec x efficiency): the TP "
            "all-reduce where each engine leaves its own kernels (TensorRT-LLM AUTO @005b299b: above its one-/two-shot "
            "workspace, 16 MB at 2 ranks, 8 MB above, or where its hand-tuned lookup table picks NCCL for the fused "
            "all-reduce + RMSNorm: Hopper TP8 from 64-256 tokens, every size for hidden > 8192 such as Llama-405B; vLLM: "
            "above its symmetric-memory all-reduce, 32-128 MiB; SGLang: above its 8 MiB custom all-reduce) and the "
            "attention-DP all-gather / reduce-scatter (TensorRT-LLM, vLLM). Mid-size NCCL runs at 0.6-0.8x the comm "
            "model's rate (2-GPU groups, B200), about 1.0x for 8-GPU all-reduce at 64 MiB. All points 28.7 -> 27.7%, "
            "dense 12.5 -> 11.6%, MoE 70.4 -> 69.5%, calibration 13.0 -> 12.6%; 77 of 183 move, 43 closer. Signed moves "
            "(points): TensorRT-LLM attention-DP rows -1.8..-8.2 (H100 Qwen3-235B DEP8 +30.2 -> +22.0%), B200 TP4 "
            "-3.3..-13.3, H100 / H200 TP2 -0.2..-3.9 (MLPerf H100 offline -8.1 -> -11.5%), H100 / H200 TP8 -15.2..+6.9 "
            "(H100 405B 128/4096 +30.1 -> +14.9%; 8-GPU NCCL all-reduce beats the model at 32-128 MiB, so prefill-heavy "
            "rows get faster), SGLang TP4 / TP8 -0.1..-1.5; vLLM rows do not move. Version caveat: TensorRT-LLM's AUTO "
            "rule changed (v1.0, PR 5432: NCCL above 128 tokens; then the lookup table; later an autotuner); the 1.0 rule, "
            "checked, gives 27.9% (the H100 70B TP2 rows 2-5 points slower). The engines' own all-reduce kernels below "
            "the bounds (comm model in that round) are measured tables since the engine code paths round below. Not "
            "modelled: NCCL_SYMMETRIC vs plain NCCL, SGLang's DP-attention gather, GPUs and "
            "group sizes without a table. Training (planner.estimate) is unchanged.", ""]


def dense_notes() -> list[str]:
    """What was checked on the dense points (FP4 on Blackwell, small-batch decode)."""
    return ["Dense FP4 on Blackwell (benchmarks/serve_wide_results.md): dense FP4 GEMMs run at the FP8 MAMF throughput x "
            "1.45 (timing.FP4_OVER_FP8_ACHIEVED), the ratio of the fastest NVFP4 to the fastest FP8 GEMM in NVIDIA's measured "
            "TensorRT-LLM GEMM tables (AIConfigurator; B200 1.446 / 1.435, GB200 1.502; benchmarks/fp4_gemm_check.py); "
            "grouped expert GEMMs keep the FP8 throughput (NVIDIA's NVFP4 MoE layer times show no such gain, "
            "benchmarks/moe_kernel_check.py unchanged). It replaced FP4-at-FP8-throughput: the 134 earlier points 12.7 -> "
            "11.4%, dense FP4 12.8 -> 8.5% (prefill-heavy -16.5 -> +0.6% signed, mixed -11.6 -> +7.4%, decode-heavy -4.4 -> "
            "+13.0%); MLPerf v4.1 B200 -32.1 -> -12.1%, Llama-3.3-70B TP1 NVFP4 128/128 -23.0 / -26.1 -> +1.5 / -2.7% "
            "(B200 / GB200). Exposed: the 405B TP4 decode-heavy FP4 rows (+16..+31%) join the FP8 405B decode-heavy rows "
            "(H100 TP8 128/4096 +30%): a large-batch long-context decode cost the model lacks.", "",
            "vLLM / SGLang / AMD (serve_wide_results.md): MLPerf AMD at TP1 x 8 within 9% (MI325X v5.0 -8.1 / +0.9%). "
            "MI300X / MI325X FP8 GEMMs run at AMD's measured max-achievable FP8 rate (ROCm blog 'Measuring "
            "Max-Achievable FLOPs - Part 2', hipblaslt-bench: 1273 / 1519 TF, matmul_efficiency.fp8 0.487 / 0.581; "
            "the BF16 MAMF fraction was used before): 16 AMD points move, 26.7 -> 26.5% over all 183 "
            "(benchmarks/serve_worst_points.md). "
            "vLLM 0.10 on 8x MI300X at TP8 +49..+86% offline and +2% (batch 1) .. +86% (batch 128); the latency-table "
            "rows rerun the same prompts, now modelled as prefix-cached (amd_serve_results.md), which turns the 2048/2048 "
            "rows from +36 / +15% to +75 / +74%, like the 128/2048 rows at the same batch: the unexplained time per decode "
            "step grows with the batch (70B 0.2 -> 10.5 ms, 405B 2.6 -> 25.6 ms from 1 to 128 sequences) and not with "
            "the context; a TP8 cost of skinny FP8 GEMMs and mid-size all-reduces on MI300X that no AMD per-shape "
            "hipBLASLt or TP8 all-reduce table found here sets; not fitted. Collectives on the switchless xGMI mesh now "
            "use the k - 1 links of a k-GPU group (only TP < 8 moves: the MI355X TP4 rows by 1-2 points). "
            "DeepSeek-R1 on the engines of Feb-Mar 2025 (dstack, benchmarks/dstack_results.md): +89..+470% on every "
            "engine and vendor (TPOT at 4 requests 25.7-55.1 ms measured vs 9.9-14.3 predicted, flat from 4 to 8 "
            "requests: a fixed per-step cost of those releases' kernels or host, not fitted); the SGLang 0.4.3 H200 "
            "rows now run as launched, attention data parallel 8 with tensor-parallel MoE (--enable-dp-attention, dp = "
            "tp before SGLang PR 4390): +378 / +151 / +158% -> +240 / +143 / +190%; TensorRT-LLM's PyTorch backend "
            "adds its host step before 0.20 and issues kernels eagerly before 1.0 (engines.trtllm_overlap_scheduler, "
            "decode_graphs; release notes 0.20.0, PR 5480): the 0.17 dstack rows +470 / +153 / +172% -> +418 / +144 / "
            "+166%; no other point moves. The same model on SGLang 0.5.9 (InferenceX, 2026, B200 / MI355X at 4-64 requests) is "
            "predicted 5-25% too slow (14.1% over 18 points).", "",
            "Dense regimes (table above; 93 more rows of the v1.0 performance overview added here). In the model: the "
            "dense GEMMs compute whole 128-row tiles of tokens (timing.padded_rows, the tile quantization the expert "
            "GEMMs already paid; MAMF is a tile-aligned measurement): decode steps of a few hundred sequences sit at "
            "the weight-read / compute ridge, where a step of 190 sequences computes 256 rows. It moved the 134 points "
            "from 19.2 to 17.4% (dense FP8/BF16 10.3 -> 8.4%, FP4 13.6 -> 11.6%, MoE 68.5 -> 67.8%; decode-heavy "
            "signed +15.8 -> +9.5%); 75 of the performance-overview rows moved, 47 closer, 28 further; MLPerf "
            "offline H100 / H200 -0.3 / -0.8 -> -4.6 / -5.0%, MI300X -11.3 -> -15.4%, server points closer. Still "
            "open: decode-heavy rows stay ~9% fast (405B TP8 on H100 at 128/4096 +48%), FP4 prefill-heavy rows 13% "
            "slow. Checked, not applied (no measurement to cite): an achieved HBM bandwidth of 72% of peak instead "
            "of the assumed 80% (planner.estimate.compute_gemm.HBM_EFFICIENCY) gives 16.5% over the 134 points "
            "(decode-heavy +4%, prefill-heavy FP8 -4%), but hardware_notes.md records no achievable-HBM figure; FP4 "
            "at its doubled peak turns FP4 prefill-heavy rows 16-30% fast.", "",
            "Small-batch decode: at 1 and 5 users the NIM points' output rate is predicted 16% / 12% too fast "
            "(inter-token 16.7 vs 18.6 ms at one user: weight reads at 80% of HBM peak, 160 all-reduces at 10 us, "
            "1 ms host step). Candidates are per-kernel gaps inside CUDA graphs (~10 kernels per layer) and GEMV "
            "bandwidth below 80% of peak; neither has a published figure we could cite, so none was added.", "",
            "Softmax exponentials (benchmarks/gptoss_results.md): attention runs at the flash-attention fraction of "
            "the tensor cores' rate or of the special-function units' exponential rate, whichever binds "
            "(planner.estimate.compute_attention.exp_bound_fps: 16 exponentials per SM and clock, 512 dense BF16 FLOPs per "
            "exponential on B200 / GB200 against 256 FLOPs per score at head dimension 64). Only gpt-oss on "
            "Blackwell moves, by under a point (its context attention is a small part of a step): B200 120b "
            "+26.3 -> +25.7%, GB200 120b +48.4 -> +47.7%, B200 20b +16.0 -> +15.3%. gpt-oss on Hopper is "
            "unchanged (tensor cores bind at head dimension 64 there) and stays +48..+73%: see the per-op check "
            "above and benchmarks/gptoss_results.md for what was checked.", ""]


def main() -> None:
    rows = run()
    text = report(rows)
    print(text)
    if "--check" not in sys.argv:
        REPORT.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
