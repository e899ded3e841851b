"""A serving plan from text (`--plan "engine=trtllm,weights=fp8,tp=2,..."`) and plan tables."""

from __future__ import annotations

import difflib

import numpy as np

from planner.errors import InputError
from planner.serve import engines as E
from planner.spec.serving import SERVE_PLAN_FIELDS

FIELDS = SERVE_PLAN_FIELDS + ("attn_dp", "prefill_replicas", "engine_version", "graph_padding", "moe_backend",
                              "recv_interval", "quick_reduce", "async_scheduling", "separate_prefill", "adp_balance",
                              "adp_wait_iters", "adp_timeout_iters", "disaggregated")
INT_FIELDS = ("tp", "pp", "ep", "replicas", "max_batch", "max_batched_tokens", "prefill_replicas", "recv_interval",
              "adp_wait_iters", "adp_timeout_iters")
# Largest count a plan may name: the serving spec's cap on token counts (planner.spec.serving, 2**24). A
# larger one describes no deployment, and past 2**63 numpy would hold it as a Python object.
PLAN_INT_MAX = 2**24
ENGINE_SETTING = {E.VLLM: "a vLLM", E.SGLANG: "an SGLang", E.TRTLLM: "a TensorRT-LLM"}  # "... setting"


def _choice(key: str, value: str, names: tuple) -> int:
    if value not in names:
        near = difflib.get_close_matches(value, names, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise InputError(f"'{value}' is not one of {', '.join(names)}{hint}", key=f"--plan {key}")
    return names.index(value)


def parse_serve_plan(text: str, sc) -> dict:
    """Plan table of one row from 'key=value,...'; keys left out take the engine's defaults."""
    given: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise InputError(f"expected key=value, got '{part}'", key="--plan")
        k, v = (x.strip() for x in part.split("=", 1))
        if k not in FIELDS:
            near = difflib.get_close_matches(k, FIELDS, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise InputError(f"unknown plan key '{k}' (expected one of {', '.join(FIELDS)}){hint}", key="--plan")
        if k in given:
            raise InputError(f"plan key '{k}' given twice", key="--plan")
        given[k] = v
    row: dict = {}
    row["engine"] = _choice("engine", given.get("engine", sc.search.engines[0]), E.ENGINE_NAMES)
    row["wq"] = _choice("weights", given.get("weights", "bf16"), E.WEIGHT_NAMES)
    row["kv"] = _choice("kv_cache", given.get("kv_cache", default_kv_cache(row["engine"], row["wq"])), E.KV_NAMES)
    for k in INT_FIELDS:
        if k in given:
            try:
                row[k] = int(given[k])
            except ValueError:
                raise InputError(f"{k} must be a whole number, got '{given[k]}'", key=f"--plan {k}") from None
            least = 0 if k in ("prefill_replicas", "adp_wait_iters", "adp_timeout_iters") else 1
            if row[k] < least:
                raise InputError(f"{k} must be at least {least}, got {row[k]}", key=f"--plan {k}")
            if row[k] > PLAN_INT_MAX:
                raise InputError(f"{k} must be at most {PLAN_INT_MAX:,}, got {given[k]}", key=f"--plan {k}")
    row["attn_dp"] = _flag(given, "attn_dp")
    row["engine_version"] = _engine_version(given.get("engine_version"), row["engine"])
    row["graph_padding"] = _flag(given, "graph_padding")
    if row["graph_padding"]:
        _engine_only(row, "graph_padding (CUDA graphs padded to captured batch sizes)", E.TRTLLM)
    row["async_scheduling"] = _flag(given, "async_scheduling")
    if row["async_scheduling"]:
        _engine_only(row, "async_scheduling (vLLM --async-scheduling: the next step scheduled while this one runs)", E.VLLM)
    row["separate_prefill"] = _flag(given, "separate_prefill")
    if row["separate_prefill"]:
        _engine_only(row, "separate_prefill (vLLM V0's scheduler without chunked prefill)", E.VLLM)
        if not row["engine_version"] < E.version_code(".".join(map(str, E.VLLM_V0_LAST_BEFORE))):
            raise InputError("separate_prefill is the scheduler of vLLM's V0 engine, removed in vLLM 0.11.0: give "
                             "the run's release as engine_version (below 0.11.0)", key="--plan separate_prefill")
    row["adp_balance"] = _flag(given, "adp_balance")
    if row["adp_balance"]:
        _engine_only(row, "adp_balance (TensorRT-LLM attention_dp_config.enable_balance)", E.TRTLLM)
        if not row["attn_dp"]:
            raise InputError("adp_balance balances attention-DP ranks: it needs attn_dp=true", key="--plan adp_balance")
    elif (row.get("adp_wait_iters", E.TRTLLM_ADP_WAIT_ITERS) != E.TRTLLM_ADP_WAIT_ITERS
          or row.get("adp_timeout_iters", E.TRTLLM_ADP_TIMEOUT_ITERS) != E.TRTLLM_ADP_TIMEOUT_ITERS):
        # the defaults are what a ranked plan's JSON carries with adp_balance false: accepted, so it pastes back
        raise InputError("adp_wait_iters / adp_timeout_iters set TensorRT-LLM's attention-DP balancing: give "
                         "adp_balance=true with them", key="--plan adp_balance")
    row.setdefault("adp_wait_iters", E.TRTLLM_ADP_WAIT_ITERS)
    row.setdefault("adp_timeout_iters", E.TRTLLM_ADP_TIMEOUT_ITERS)
    if row.get("recv_interval", 1) > 1 and row["engine"] == E.VLLM:  # vLLM V0's multi-step scheduling
        if not row["engine_version"] < E.version_code(".".join(map(str, E.VLLM_MULTI_STEP_LAST_BEFORE))):
            raise InputError("recv_interval on vLLM is the V0 engine's multi-step scheduling (--num-scheduler-steps), "
                             "removed in vLLM 0.10.1: give the run's release as engine_version (below 0.10.1)",
                             key="--plan recv_interval")
    elif row.get("recv_interval", 1) > 1:
        _engine_only(row, "recv_interval (decode steps between polls for new requests: --scheduler-recv-interval)", E.SGLANG)
    row["moe_backend"] = _choice("moe_backend", given.get("moe_backend", "default").lower(), E.MOE_BACKENDS)
    _check_moe_backend(row, sc)
    row["quick_reduce"] = _choice("quick_reduce", given.get("quick_reduce", "none").lower(), E.QUICK_REDUCE)
    gib = sc.cluster.node.gpu.memory_gib
    eng = np.array([row["engine"]])
    row.setdefault("tp", 1)
    row.setdefault("pp", 1)
    row.setdefault("ep", 1)
    row.setdefault("replicas", 1)
    row.setdefault("prefill_replicas", 0)
    if "disaggregated" in given and _flag(given, "disaggregated") != (row["prefill_replicas"] > 0):
        # the flag every JSON plan carries (prefill_replicas > 0): accepted when it agrees, so a plan pastes back
        raise InputError(f"disaggregated={given['disaggregated']} with prefill_replicas={row['prefill_replicas']}: a "
                         "plan is disaggregated exactly when it has prefill replicas", key="--plan disaggregated")
    row.setdefault("recv_interval", 1)
    row.setdefault("max_batch", int(E.default_max_batch(eng, gib)[0]))
    row.setdefault("max_batched_tokens", int(E.default_max_batched_tokens(eng, gib, sc.serving.offline, row["tp"],
                                                                          row["attn_dp"])[0]))
    _check_quick_reduce(row, sc)
    check_plan(row, sc)
    return {k: np.array([v]) for k, v in row.items()}


def _flag(given: dict, key: str) -> bool:
    """A true / false plan key (true, false, 1 or 0; false when left out)."""
    value = given.get(key, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise InputError(f"{key} must be true or false, got '{value}'", key=f"--plan {key}")
    return value in ("true", "1")


def _engine_only(row: dict, what: str, engine: int) -> None:
    """Exit 2 when a setting of one engine (`what`, its plan key first) is given to a plan of another."""
    if row["engine"] != engine:
        raise InputError(f"{what} is {ENGINE_SETTING[engine]} setting; the plan's engine is "
                         f"{E.ENGINE_NAMES[row['engine']]}", key=f"--plan {what.split()[0].split('=')[0]}")


def default_kv_cache(engine: int, wq: int) -> str:
    """The KV-cache format a plan that leaves `kv_cache` out gets: the engine's 'auto'. TensorRT-LLM's
    KvCacheConfig.dtype 'auto' takes the checkpoint's kv_cache_quant_algo (tensorrt_llm/llmapi/llm_args.py), and the
    FP8 / NVFP4 checkpoints it serves are NVIDIA ModelOpt exports whose hf_quant_config.json sets
    kv_cache_quant_algo FP8 (e.g. nvidia/Llama-3.3-70B-Instruct-FP8 and -FP4): fp8 there. vLLM's and SGLang's
    kv_cache_dtype 'auto' is the model's dtype: bf16 (as for TensorRT-LLM with other weights)."""
    if engine == E.TRTLLM and E.WEIGHT_NAMES[wq] in ("fp8", "nvfp4"):
        return "fp8"
    return "bf16"


def _check_moe_backend(row: dict, sc) -> None:
    """moe_backend=trtllm (TensorRT-LLM's TRTLLM-gen MoE kernels, engines.MOE_BACKENDS) needs TensorRT-LLM, an MoE
    model, weights the kernels take (engines.TRTLLM_GEN_MOE_WEIGHTS: TensorRT-LLM runs CUTLASS for the others) and a
    Blackwell data-centre GPU (SM100 family, compute capability 10.x: TRTLLMGenFusedMoE checks is_sm_100f)."""
    if not row["moe_backend"]:
        return
    gpu = sc.cluster.node.gpu
    _engine_only(row, "moe_backend=trtllm (TRTLLM-gen MoE kernels)", E.TRTLLM)
    if not sc.model.moe:
        raise InputError("moe_backend=trtllm needs a mixture-of-experts model", key="--plan moe_backend")
    weights = E.WEIGHT_NAMES[row["wq"]]
    if weights not in E.TRTLLM_GEN_MOE_WEIGHTS:
        raise InputError(f"moe_backend=trtllm (TRTLLM-gen MoE kernels) takes weights "
                         f"{', '.join(E.TRTLLM_GEN_MOE_WEIGHTS)}; with weights={weights} TensorRT-LLM runs its CUTLASS "
                         "MoE kernels instead: leave moe_backend out", key="--plan moe_backend")
    cc = gpu.compute_capability
    if (gpu.vendor or "nvidia").lower() != "nvidia" or cc is None or not 10.0 <= cc < 11.0:
        raise InputError(f"moe_backend=trtllm (TRTLLM-gen MoE kernels) runs on Blackwell data-centre GPUs only "
                         f"(compute capability 10.x), not {gpu.name} ({cc})", key="--plan moe_backend")


def _check_quick_reduce(row: dict, sc) -> None:
    """quick_reduce (engines.QUICK_REDUCE, other than none) needs vLLM or SGLang, a GPU whose kernels exist
    (gfx94x / gfx95x: engines.QUICK_REDUCE_GPUS) and a tensor-parallel group of engines.QUICK_REDUCE_WORLD_SIZES
    GPUs in one node (QuickAllReduce disables itself otherwise: quick_all_reduce.py)."""
    if not row["quick_reduce"]:
        return
    level = E.QUICK_REDUCE[row["quick_reduce"]]
    if row["engine"] not in E.QUICK_REDUCE_ENV:
        raise InputError(f"quick_reduce={level} (ROCm quantised all-reduce) is a vLLM or SGLang setting; the plan's "
                         f"engine is {E.ENGINE_NAMES[row['engine']]}", key="--plan quick_reduce")
    gpu = sc.cluster.node.gpu
    if (gpu.vendor or "").lower() != "amd" or not str(gpu.name).lower().startswith(E.QUICK_REDUCE_GPUS):
        raise InputError(f"quick_reduce={level} runs on AMD MI300 / MI350-series GPUs only (gfx94x / gfx95x), not "
                         f"{gpu.name}", key="--plan quick_reduce")
    if row["tp"] not in E.QUICK_REDUCE_WORLD_SIZES or row["tp"] > sc.cluster.node.gpus_per_node:
        raise InputError(f"quick_reduce={level} needs tp of {' / '.join(map(str, E.QUICK_REDUCE_WORLD_SIZES))} GPUs "
                         f"in one node, got tp={row['tp']}", key="--plan quick_reduce")


def _engine_version(text: str | None, engine: int) -> float:
    """engines.version_code of the plan's `engine_version` (a release such as 0.10.0); the pinned
    release (engines.PINNED_VERSION) when left out, 'pinned', or the pinned release's own label as a
    plan's JSON prints it (engines.version_of_text: TensorRT-LLM's is a source commit)."""
    if text is None or text.strip().lower() in ("", "pinned"):
        return E.PINNED_VERSION
    try:
        return E.version_of_text(engine, text.strip())
    except ValueError:
        raise InputError(f"engine_version must be a release number such as 0.10.0, got '{text}'",
                         key="--plan engine_version") from None


def check_plan(row: dict, sc) -> None:
    """Structural checks of one plan; InputError names the numbers that do not fit."""
    m, gpu = sc.model, sc.cluster.node.gpu
    name = E.WEIGHT_NAMES[row["wq"]]
    if E.compute_precision(name, gpu) is None:
        raise InputError(E.format_problem(row["engine"], name, "bf16", gpu), key="--plan weights")
    if not E.engine_supported(row["engine"], gpu):
        raise InputError(E.engine_problem(row["engine"], gpu), key="--plan engine")
    if E.format_problem(row["engine"], name, "bf16", gpu):
        raise InputError(E.format_problem(row["engine"], name, "bf16", gpu), key="--plan weights")
    if E.format_problem(row["engine"], name, E.KV_NAMES[row["kv"]], gpu):
        raise InputError(E.format_problem(row["engine"], name, E.KV_NAMES[row["kv"]], gpu), key="--plan kv_cache")
    if E.model_problem(name, m):
        raise InputError(E.model_problem(name, m), key="--plan weights")
    gpus = row["tp"] * row["pp"] * (row["replicas"] + row.get("prefill_replicas", 0))
    if gpus > sc.cluster.gpus:
        raise InputError(f"tp x pp x (replicas + prefill_replicas) = {gpus} GPUs, the cluster has {sc.cluster.gpus}", key="--plan")
    if row["pp"] > m.layers:
        raise InputError(f"pp ({row['pp']}) exceeds the model's {m.layers} layers", key="--plan pp")
    if m.heads % row["tp"] and not row["attn_dp"]:
        raise InputError(f"tp ({row['tp']}) must divide the {m.heads} attention heads", key="--plan tp")
    if not row["attn_dp"] and not E.kv_heads_split(m, row["tp"]):
        raise InputError(f"tp ({row['tp']}) must divide the {m.n_kv_heads} KV heads or be a multiple of them (the "
                         "engines split them or copy one per rank)", key="--plan tp")
    if row["ep"] > 1 and not m.moe:
        raise InputError("ep > 1 needs a mixture-of-experts model", key="--plan ep")
    if row["tp"] % row["ep"]:
        raise InputError(f"ep ({row['ep']}) must divide tp ({row['tp']}): experts split ep ways, each "
                         f"expert tp/ep ways", key="--plan ep")
    if m.moe and m.moe.experts % row["ep"]:
        raise InputError(f"ep ({row['ep']}) must divide the {m.moe.experts} experts", key="--plan ep")
    if row["attn_dp"] and not m.moe:
        raise InputError("attn_dp (attention data parallel) applies to mixture-of-experts models", key="--plan")
    if not E.vllm_ep_ok(row["engine"], row["tp"], row["ep"], row["attn_dp"]):
        raise InputError(f"vLLM's --enable-expert-parallel spreads the experts over all tp x dp GPUs of a replica: "
                         f"ep must be 1 or tp ({row['tp']}), and tp with attn_dp; got ep={row['ep']}", key="--plan ep")
    if not E.vllm_tokens_ok(row["engine"], row["max_batch"], row["tp"], row["attn_dp"], row["max_batched_tokens"]):
        seqs = int(E.seqs_per_rank(row["max_batch"], row["tp"], row["attn_dp"]))
        toks = int(E.seqs_per_rank(row["max_batched_tokens"], row["tp"], row["attn_dp"]))
        raise InputError(f"vLLM needs max_num_batched_tokens ({toks}, from max_batched_tokens) at least max_num_seqs "
                         f"({seqs}, from max_batch)", key="--plan max_batched_tokens")
