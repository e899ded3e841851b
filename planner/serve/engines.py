"""Engine defaults and weight / KV-cache number formats, each named once with its source.

Engines (defaults as the engines' own argument code sets them):
* vLLM: `gpu_memory_utilization` 0.9 of the device memory holds everything (weights, activation
  peak of the profile run, CUDA graphs, KV cache) (vllm/engine/arg_utils.py, EngineArgs).
  Batch defaults from `EngineArgs.get_batch_defaults`: devices with >= 70 GiB that are not A100:
  max_num_seqs 1024 and max_num_batched_tokens 8192 for `vllm serve` (16384 for the offline `LLM`
  class); other devices 256 and 2048 (8192 offline). KV blocks are allocated on demand (paged).
* SGLang: `mem_fraction_static` is the share of device memory for weights + KV pool; default by
  tensor-parallel size: 0.88 (tp 1), 0.87 (tp >= 2), 0.85 (tp >= 4), 0.81 (tp >= 8), 0.79 (tp >= 16)
  (python/sglang/srt/server_args.py, ServerArgs.__post_init__); `chunked_prefill_size` 8192;
  max_running_requests follows from the KV pool (we cap it at the plan's max_batch).
* TensorRT-LLM: `KvCacheConfig.free_gpu_memory_fraction` 0.9 of the memory left free after
  weights and activations (tensorrt_llm/llmapi/llm_args.py); `max_batch_size` 2048 and
  `max_num_tokens` 8192 (BuildConfig defaults); the default capacity scheduler policy
  GUARANTEED_NO_EVICT reserves a sequence's whole length (input + output) when it is admitted.

Number formats (bytes per weight element, scales included):
* fp8 (ModelOpt / compressed-tensors per-tensor): 1 byte + one fp32 scale per matrix (negligible).
* fp8-block (block-scaled FP8, DeepSeek-V3 / R1 checkpoints: `weight_block_size: [128, 128]` in their
  quantization_config, one fp32 `weight_scale_inv` per 128 x 128 weight block; activations quantised
  per 1 x 128 group when the layer runs): 1 + 4 / 128^2 bytes. Runs on the FP8 tensor cores; the
  dense GEMMs at the FP8 rate (DeepGEMM README: block-scaled normal GEMMs up to 1,550 TFLOPS on
  H800, 775-1,520 at M = 4,096 in the @327ec92 table timing.GEMM_K0_ELEMENTS cites; AIConfigurator's TensorRT-LLM 1.2.0rc5 H200 GEMM table: fp8_block within 0.99-1.03x of
  per-tensor fp8 at 1,024-8,192 rows), the grouped expert GEMMs per timing.BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT.
* int8 (SmoothQuant W8A8, per-output-channel fp32 scale): 1 + 4 / k bytes (k = input width).
* nvfp4: 4-bit E2M1 + one FP8 E4M3 scale per 16 elements + one fp32 per-tensor scale:
  0.5 + 1/16 bytes (NVIDIA NVFP4, TensorRT Model Optimizer docs).
* mxfp4 (OCP Microscaling v1.0): 4-bit E2M1 + one E8M0 scale per 32 elements: 0.5 + 1/32 bytes.
* int4-awq / int4-gptq (group size 128): 4-bit weights + fp16 scale + 4-bit zero point per group
  of 128: 0.5 + 2.5/128 bytes (AutoAWQ / GPTQ default group size 128).
Quantised formats apply to the linear layers of the transformer blocks; the embedding, the LM
head, the MoE router and the norms stay in bf16 (ModelOpt's default exclusions `*lm_head*`,
`*router*`). MXFP4 is an MoE-only scheme (MOE_ONLY_SCHEMES): only the routed experts are MXFP4, the
attention, dense and shared-expert linears stay bf16 and run at the bf16 rate (vLLM
model_executor/layers/quantization/mxfp4.py: Mxfp4Config returns UnquantizedLinearMethod for every
LinearBase and the MXFP4 method for FusedMoE; TensorRT-LLM examples/models/core/gpt_oss/README.md:
"MoE weights quantized with mxfp4. All the other weights are in bf16").
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

ENGINE_NAMES = ("vllm", "sglang", "trtllm")
VLLM, SGLANG, TRTLLM = 0, 1, 2

WEIGHT_NAMES = ("bf16", "fp16", "fp8", "int8", "nvfp4", "mxfp4", "int4-awq", "int4-gptq", "fp8-block")
KV_NAMES = ("bf16", "fp16", "fp8")
KV_BYTES = np.array([2.0, 2.0, 1.0])
FP8_BLOCK = 128  # weight block edge and activation group of fp8-block (DeepSeek-V3 config.json weight_block_size)

GIB = 2.0 ** 30
LARGE_DEVICE_GIB = 70.0  # vLLM's threshold for its large batch defaults (get_batch_defaults)


def weight_bytes_per_element(scheme: str, k: int = 4096) -> float:
    """Bytes per weight element of a linear layer in `scheme`, block scales included (module doc)."""
    return {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0 + 4.0 / k, "fp8-block": 1.0 + 4.0 / FP8_BLOCK ** 2,
            "nvfp4": 0.5 + 1.0 / 16, "mxfp4": 0.5 + 1.0 / 32,
            "int4-awq": 0.5 + 2.5 / 128, "int4-gptq": 0.5 + 2.5 / 128}[scheme]


MOE_ONLY_SCHEMES = ("mxfp4",)


def dense_scheme(scheme: str) -> str:
    """Format of the non-expert linear layers (attention, dense / shared MLP) under `scheme`: bf16
    for MoE-only schemes (module doc), else the scheme itself."""
    return "bf16" if scheme in MOE_ONLY_SCHEMES else scheme


# Schemes whose checkpoints keep MLA's query / latent-KV projections (q_a, q_b, kv_a, kv_b; not o_proj) in bf16.
# NVFP4 on an MLA model is NVIDIA ModelOpt's DeepSeek recipe (NVIDIA/TensorRT-Model-Optimizer
# examples/deepseek/ptq.py: quant_cfg "*attn*" disabled unless mla_quant is given, the output projection "wo"
# only with --enable_wo_quant; quantize_to_nvfp4.py dequantises the FP8 source to bf16 and stores the
# excluded layers so), the recipe of NVIDIA's published DeepSeek-R1 FP4 checkpoints: the MLPerf Inference v5.1
# submission's hf_quant_config.json (mlcommons/inference_results_v5.1 @965182b0
# closed/NVIDIA/code/deepseek-r1/tensorrt/hf_quant_config.json) excludes self_attn.fused_a, q_proj, q_b_proj and
# kv_b_proj of all 61 layers and quantises o_proj (nvidia/DeepSeek-R1-FP4-v2, README in the same directory).
MLA_BF16_SCHEMES = ("nvfp4",)


def mla_proj_scheme(scheme: str) -> str:
    """Format of MLA's query / latent-KV projections under `scheme` (MLA_BF16_SCHEMES: bf16), else the
    non-expert linears' (dense_scheme)."""
    return "bf16" if scheme in MLA_BF16_SCHEMES else dense_scheme(scheme)


def compute_precision(scheme: str, gpu) -> str | None:
    """Tensor-core format the linear layers run in, or None when the GPU cannot run the scheme.
    W8A8 fp8 / int8 run on 8-bit tensor cores (INT8 dense TOPS = FP8 dense TFLOPS on Hopper,
    Blackwell and MI300: hardware_facts.yaml int8_tops; 2 x BF16 on Ampere); nvfp4 needs FP4 tensor
    cores (Blackwell); mxfp4 uses them when present, else runs weight-only (dequantised to bf16,
    as vLLM's Marlin / Triton MoE kernels do for gpt-oss on Hopper); int4 AWQ/GPTQ are weight-only."""
    peaks = gpu.tflops
    if scheme in ("bf16", "fp16"):
        return "bf16" if peaks.bf16 else ("fp16" if peaks.fp16 else None)
    if scheme in ("fp8", "fp8-block"):
        return "fp8" if peaks.fp8 else ("bf16" if peaks.bf16 else None)  # fp8 weight-only (Marlin) on Ampere
    if scheme == "int8":
        return "fp8" if peaks.fp8 else ("int8_ampere" if peaks.bf16 else None)
    if scheme == "nvfp4":  # NVIDIA's format (E4M3 scale per 16 values): NVIDIA FP4 tensor cores only
        return "fp4" if peaks.fp4 and is_nvidia(gpu) else None
    if scheme == "mxfp4":
        return "fp4" if peaks.fp4 else ("bf16" if peaks.bf16 else None)
    return "bf16" if peaks.bf16 else None  # int4 weight-only


# TensorRT-LLM's precisions by architecture (TensorRT-LLM support matrix, docs reference/support-matrix, 0.18:
# "Ampere (SM80, SM86) - FP32, FP16, BF16, INT8, INT4"; FP8 from Ada (SM89) / Hopper (SM90) on, NVFP4 on
# Blackwell). A GPU without FP8 tensor cores in the catalog (Ampere) is given only these weight schemes and
# a bf16 / fp16 KV cache; vLLM and SGLang run fp8 weights there weight-only (Marlin, compute_precision).
TRTLLM_NO_FP8_WEIGHTS = ("bf16", "fp16", "int8", "int4-awq", "int4-gptq")
TRTLLM_NO_FP8_KV = ("bf16", "fp16")


def format_problem(engine: int, scheme: str, kv: str, gpu) -> str | None:
    """Why `engine` cannot run weights `scheme` with a `kv` KV cache on `gpu` (None when it can):
    no tensor-core path for the scheme (compute_precision), an engine that does not run on the vendor
    (engine_supported), or TensorRT-LLM's FP8 / MXFP4 on a GPU without FP8 tensor cores
    (TRTLLM_NO_FP8_WEIGHTS / TRTLLM_NO_FP8_KV, its support matrix)."""
    if compute_precision(scheme, gpu) is None:
        if scheme == "nvfp4" and gpu.tflops.fp4:
            return (f"{gpu.name} cannot run weights=nvfp4: NVFP4 (an E4M3 scale per 16 values) is NVIDIA's format for "
                    f"Blackwell tensor cores; this GPU's FP4 units take OCP MX scales (weights=mxfp4)")
        return f"{gpu.name} cannot run weights={scheme} (no tensor-core support in the catalog)"
    if not engine_supported(engine, gpu):
        return engine_problem(engine, gpu)
    if engine == TRTLLM and not gpu.tflops.fp8:
        if scheme not in TRTLLM_NO_FP8_WEIGHTS:
            return (f"TensorRT-LLM runs weights={scheme} only on GPUs with FP8 tensor cores (Ada, Hopper, "
                    f"Blackwell; its support matrix), not on {gpu.name}")
        if kv not in TRTLLM_NO_FP8_KV:
            return (f"TensorRT-LLM keeps an {kv} KV cache only on GPUs with FP8 tensor cores (Ada, Hopper, "
                    f"Blackwell; its support matrix), not on {gpu.name}")
    return None


def weight_only_note(scheme: str, gpu) -> str | None:
    """A line that says so where `scheme` (fp8 / fp8-block / mxfp4) runs weight-only on `gpu` (no FP8 / FP4
    tensor cores: compute_precision falls back to bf16), else None."""
    native = {"fp8": "FP8", "fp8-block": "FP8", "mxfp4": "FP4"}.get(scheme)
    if native is None or compute_precision(scheme, gpu) not in ("bf16", "fp16"):
        return None
    return (f"{scheme} weights on {gpu.name} (no {native} tensor cores) run weight-only: dequantised to bf16 inside "
            f"the GEMM (weight-only kernels: Marlin, Triton MoE), so {scheme}'s memory at the bf16 GEMM rate")


def is_nvidia(gpu) -> bool:
    return _vendor(gpu) == "nvidia"


def _vendor(gpu) -> str:
    """The GPU's vendor, lower case (NVIDIA where the catalog leaves it out)."""
    return (gpu.vendor or "nvidia").lower()


# Vendors whose GPUs run each engine's pinned release (the one the launch files name). TensorRT-LLM: NVIDIA only.
# vLLM and SGLang: CUDA and ROCm builds. Intel Gaudi runs vLLM only through Intel's out-of-tree "vLLM Hardware
# Plugin for Intel Gaudi" (vllm-project/vllm-gaudi, its own releases and Gaudi software stack; HabanaAI/vllm-fork
# before it), and SGLang there only as an early HPU device option (sgl-project/sglang PR 2357: the offline example
# on one or two Gaudi 2; the HPU attention backend and graphs, PR 5252, closed unmerged): neither is the engine
# and flags the launch files pin, so Gaudi plans are not offered.
ENGINE_VENDORS = {VLLM: ("nvidia", "amd"), SGLANG: ("nvidia", "amd"), TRTLLM: ("nvidia",)}


# Oldest NVIDIA architecture TensorRT-LLM runs on: Ampere, compute capability 8.0 (its "Supported Hardware" page lists
# Blackwell, Hopper, Ada Lovelace and Ampere; the 0.18 support matrix Ampere SM80 / SM86 as the oldest). Volta (V100,
# 7.0) and Turing (7.5) are not offered TensorRT-LLM plans; vLLM and SGLang keep them.
TRTLLM_MIN_COMPUTE_CAPABILITY = 8.0


def engine_supported(engine: int, gpu) -> bool:
    """Whether the engine's pinned release runs on the GPU's vendor (ENGINE_VENDORS) and, for TensorRT-LLM, its
    architecture (TRTLLM_MIN_COMPUTE_CAPABILITY, where the catalog gives the compute capability)."""
    if _vendor(gpu) not in ENGINE_VENDORS[engine]:
        return False
    cc = gpu.compute_capability
    return not (engine == TRTLLM and cc is not None and cc < TRTLLM_MIN_COMPUTE_CAPABILITY)


def engine_problem(engine: int, gpu) -> str | None:
    """Why `engine` is not offered on `gpu` (ENGINE_VENDORS), or None."""
    if engine_supported(engine, gpu):
        return None
    name = ENGINE_NAMES[engine]
    if _vendor(gpu) == "intel" and engine == VLLM:
        return (f"vllm does not run on {gpu.name} as pinned (Intel Gaudi runs vLLM only through Intel's vllm-gaudi "
                "plugin, its own releases, not the one the launch files name)")
    if _vendor(gpu) == "intel" and engine == SGLANG:
        return f"sglang does not run on {gpu.name} as pinned (SGLang has only an early HPU port for Intel Gaudi)"
    if _vendor(gpu) in ENGINE_VENDORS[engine]:  # the architecture: TensorRT-LLM before Ampere
        return (f"{name} does not run on {gpu.name} (compute capability {gpu.compute_capability:g}; TensorRT-LLM runs "
                f"on Ampere and newer, {TRTLLM_MIN_COMPUTE_CAPABILITY:g}+)")
    vendors = " and ".join({"nvidia": "NVIDIA", "amd": "AMD"}[v] for v in ENGINE_VENDORS[engine])
    return f"{name} does not run on {gpu.name} (its pinned release runs on {vendors} GPUs)"


def model_problem(scheme: str, model) -> str | None:
    """Why weights `scheme` mean nothing for `model`: an MoE-only scheme (MOE_ONLY_SCHEMES: mxfp4 quantises
    the routed experts only) on a model without experts would be the bf16 plan under another name."""
    if scheme in MOE_ONLY_SCHEMES and model.moe is None:
        return (f"weights={scheme} quantises MoE experts only (attention and dense layers stay bf16); "
                f"{model.name} has no experts, so it is the bf16 plan: use weights=bf16")
    return None


def vllm_ep_ok(engine, tp, ep, attn_dp=False) -> np.ndarray:
    """vLLM's --enable-expert-parallel takes every GPU of the replica's MoE layers as one expert group
    (vllm/model_executor/layers/fused_moe/config.py FusedMoEParallelConfig: ep_size = tp_size x dp_size),
    so a vLLM plan has ep 1 or ep = tp (the GPUs of its tensor- or attention-data-parallel group), and ep = tp
    with attention data parallel; the other engines set ep on its own (SGLang --ep-size, TensorRT-LLM
    moe_expert_parallel_size)."""
    ep, tp = np.asarray(ep), np.asarray(tp)
    return (np.asarray(engine) != VLLM) | (ep == tp) | ((ep == 1) & ~np.asarray(attn_dp, dtype=bool))


def seqs_per_rank(max_batch, tp, attn_dp):
    """A rank's share of a replica's budget: max_batch (running sequences) or max_batched_tokens (tokens a step)
    are the replica's (evaluate times the replica's step of b sequences within max_batched_tokens), so each rank of
    an attention-data-parallel replica gets ceil(value / tp), the value itself without attention DP. vLLM (one
    scheduler per data-parallel rank: --max-num-seqs, --max-num-batched-tokens) and TensorRT-LLM (one executor per
    rank: max_batch_size, max_num_tokens) are told the share (launch); SGLang is told the replica's value and
    divides it itself (server_args: chunked_prefill_size // dp_size)."""
    mb = np.asarray(max_batch)
    return np.where(np.asarray(attn_dp, dtype=bool), -(-mb // np.asarray(tp)), mb)


def vllm_tokens_ok(engine, max_batch, tp, attn_dp, max_batched_tokens) -> np.ndarray:
    """vLLM refuses to start when --max-num-batched-tokens is below --max-num-seqs (each running sequence
    takes at least one token of a step: vllm/config/scheduler.py SchedulerConfig._verify_args, "max_num_batched_tokens
    must be greater than or equal to max_num_seqs"); both are the rank's share (seqs_per_rank). The other
    engines: no such check."""
    return (np.asarray(engine) != VLLM) | (seqs_per_rank(max_batched_tokens, tp, attn_dp)
                                           >= seqs_per_rank(max_batch, tp, attn_dp))


def default_max_batch(engine: np.ndarray, gpu_gib: float) -> np.ndarray:
    """Max running sequences by default (module doc): vLLM 1024 / 256, SGLang from the KV pool
    (no cap: we use TensorRT-LLM's 2048 as the search ceiling), TensorRT-LLM 2048."""
    vllm = 1024 if gpu_gib >= LARGE_DEVICE_GIB else 256
    return np.where(engine == VLLM, vllm, 2048)


def default_max_batched_tokens(engine: np.ndarray, gpu_gib: float, offline: bool, tp=1, attn_dp=False) -> np.ndarray:
    """Tokens per step of a replica by default (module doc). Under attention DP, vLLM (one engine core per
    data-parallel rank, each with its own --max-num-batched-tokens) and TensorRT-LLM (one executor per rank, each
    with its own max_num_tokens; trtllm-bench likewise gives every rank the limit it derives) give each rank the
    default, so the replica's budget is tp times it; SGLang divides its chunked_prefill_size over the attention-DP
    ranks (server_args: chunked_prefill_size // dp_size), so its replica keeps the default."""
    engine = np.asarray(engine)
    if gpu_gib >= LARGE_DEVICE_GIB:
        vllm = 16384 if offline else 8192
    else:
        vllm = 8192 if offline else 2048
    per_rank = np.where(engine == VLLM, vllm, 8192)
    ranks = np.where(np.asarray(attn_dp, dtype=bool) & (engine != SGLANG), tp, 1)
    return per_rank * ranks


# Engine releases. A plan runs the release its launch files pin (planner/serve/engine_flags/*.json: vLLM
# 0.33.0, SGLang 0.5.23, TensorRT-LLM at a source commit) unless it names an older one with the plan key
# `engine_version` (published measurements of older releases). Versions are compared as numbers
# (version_code); the pinned release is PINNED_VERSION, newer than any release named.
PINNED_VERSION = np.inf

# vLLM's async scheduling (the engine core schedules step n+1 while the GPU runs step n) is on by default
# from vLLM 0.14.0 (release notes: "Async scheduling is now enabled by default", PR 27614; SchedulerConfig
# async_scheduling None -> True in VllmConfig.__post_init__ unless an incompatible option is set), except
# with pipeline parallelism at 0.14 (same notes: "Excludes ... pipeline parallel"); async scheduling with
# pipeline parallelism came in PR 32359 (January 2026, after 0.14.0), ASSUMED default-on from 0.15.0 (the
# later vllm/config/vllm.py default resolution has no pipeline-parallel exclusion). Before 0.14 it was
# off unless --async-scheduling was passed (vllm/config/scheduler.py: async_scheduling False).
VLLM_ASYNC_DEFAULT_FROM = (0, 14, 0)
VLLM_ASYNC_PP_DEFAULT_FROM = (0, 15, 0)


def version_code(text: str) -> float:
    """A release as one comparable number: the leading 'major.minor.patch' digits of e.g. 'v0.10.0',
    'V0.10.0', '0.7.4.dev181' or '0.4.3+rocm614' as major x 1e6 + minor x 1e3 + patch; ValueError when none."""
    m = re.match(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"'{text}' is not a release number such as 0.10.0")
    major, minor, patch = (int(g or 0) for g in m.groups())
    return major * 1e6 + minor * 1e3 + patch


def _code(v: tuple) -> float:
    return v[0] * 1e6 + v[1] * 1e3 + v[2]


def vllm_async_scheduling(version, pp, flag=False) -> np.ndarray:
    """Whether vLLM at this release (version_code; PINNED_VERSION for the pinned one) schedules
    asynchronously: by default from VLLM_ASYNC_DEFAULT_FROM with pp = 1, from VLLM_ASYNC_PP_DEFAULT_FROM
    with pipeline parallelism (constants above); at an earlier release where the launch passes
    --async-scheduling (`flag`: plan_async_scheduling), without pipeline parallelism only (the releases
    before VLLM_ASYNC_PP_DEFAULT_FROM run it with pp = 1 only: the 0.14 notes' exclusion above)."""
    version, pp = np.asarray(version, dtype=float), np.asarray(pp)
    flag = np.asarray(flag, dtype=bool)
    return np.where(pp > 1, version >= _code(VLLM_ASYNC_PP_DEFAULT_FROM),
                    (version >= _code(VLLM_ASYNC_DEFAULT_FROM)) | flag)


# TensorRT-LLM's PyTorch backend (0.17 on; every published TensorRT-LLM row that names a release):
# * overlap scheduler: off by default through 0.19 (PyTorchConfig `enable_overlap_scheduler: bool = False`,
#   tensorrt_llm/_torch/pyexecutor/config.py of 0.17-0.19; the 0.18.2 PyTorch quick start's
#   `--enable_overlap_scheduler` defaults to False), on by default from 0.20.0 (docs/source/release-notes.md,
#   Release 0.20.0, API changes: "[Breaking Change]: Enable scheduling overlap by default", PR 4174, which
#   renamed the field to `disable_overlap_scheduler`);
# * CUDA graphs for generation-only steps: off by default before 1.0 (PyTorchConfig `use_cuda_graph: bool =
#   False`), on from 1.0 (PR 5480 "Enable cuda graph by default", merged 2025-07-14, after the 0.21.0 release:
#   the first release with it is ASSUMED to be 1.0.0 from that date). Without graphs the Python host issues
#   every kernel of the step (timing.eager_issue_s).
TRTLLM_OVERLAP_DEFAULT_FROM = (0, 20, 0)
TRTLLM_CUDA_GRAPH_DEFAULT_FROM = (1, 0, 0)


def trtllm_overlap_scheduler(version) -> np.ndarray:
    """Whether TensorRT-LLM at this release (version_code; PINNED_VERSION for the pinned one) overlaps its
    host step with the GPU step by default: from TRTLLM_OVERLAP_DEFAULT_FROM (constants above)."""
    return np.asarray(version, dtype=float) >= _code(TRTLLM_OVERLAP_DEFAULT_FROM)


def decode_graphs(engine, version, padding=False) -> np.ndarray:
    """Whether generation-only steps replay CUDA graphs: vLLM and SGLang in every release here
    (vLLM enforce_eager False, SGLang disable_cuda_graph False); TensorRT-LLM by default from
    TRTLLM_CUDA_GRAPH_DEFAULT_FROM (constants above), and at any release where the plan configures padded
    graphs (`padding`: plan_graph_padding; its cuda_graph_config captures them)."""
    engine, version = np.asarray(engine), np.asarray(version, dtype=float)
    return (engine != TRTLLM) | (version >= _code(TRTLLM_CUDA_GRAPH_DEFAULT_FROM)) | np.asarray(padding, dtype=bool)


def version_text(engine: int, code: float) -> str:
    """A release code as text: 'major.minor.patch', or the pinned release's own label
    (planner/serve/engine_flags/<engine>.json `version`)."""
    if np.isfinite(code):
        c = int(code)
        return f"{c // 1000000}.{c // 1000 % 1000}.{c % 1000}"
    return _pinned_label(ENGINE_NAMES[engine])


@lru_cache(maxsize=None)
def _pinned_label(engine: str) -> str:
    from planner.serve.launch import engine_flags  # launch imports this module
    return str(engine_flags(engine)["version"])


def version_of_text(engine: int, text: str | None) -> float:
    """Inverse of version_text: PINNED_VERSION for None or the pinned release's label, else version_code."""
    if text is None or text == _pinned_label(ENGINE_NAMES[engine]):
        return PINNED_VERSION
    return version_code(text)


def _column(t: dict, key: str, default) -> np.ndarray:
    """The plan table's column `key`, or `default` on every row where the table has none (search tables and
    plans that leave the key out)."""
    return np.asarray(t[key]) if key in t else np.full(np.shape(t["engine"]), default)


def plan_engine_version(t: dict) -> np.ndarray:
    """The plan table's engine release codes (column `engine_version`; PINNED_VERSION where the table
    has none: search tables and plans that name no release)."""
    return _column(t, "engine_version", PINNED_VERSION)


# TensorRT-LLM's CUDA graphs (PyTorch backend): a step with no prompt tokens replays a captured graph;
# with cuda_graph_config.enable_padding (default False, tensorrt_llm/llmapi/llm_args.py CudaGraphConfig: "batches
# are rounded up to the nearest cuda_graph_batch_size") the batch is padded with dummy generation requests
# (one KV token each) to the smallest captured size at or above it (CUDAGraphRunner.pad_batch /
# _round_up_batch_size, tensorrt_llm/_torch/pyexecutor); a batch above the largest size runs without a graph.
# Steps that carry prompt tokens never run a graph (ScheduledRequests.can_run_cuda_graph: no context
# requests). The captured sizes are those of the performance overview's llm_options (both revisions,
# docs perf-overview.md @00f37686 and @03e27c7d), written to the plan's config when it pads (launch.py).
TRTLLM_GRAPH_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048, 4096, 8192)


def graph_batch_sizes(max_batch_per_rank: int) -> list[int]:
    """The captured sizes a padding plan's config lists: TRTLLM_GRAPH_BATCH_SIZES up to the rank's
    max_batch_size, and that size itself (ASSUMED: no graph is captured above the engine's batch limit)."""
    sizes = [s for s in TRTLLM_GRAPH_BATCH_SIZES if s < max_batch_per_rank]
    return sizes + [int(max_batch_per_rank)]


def graph_padded_batch(b, ranks, padding, max_batch) -> np.ndarray:
    """Sequences a generation-only step computes: b, or where the plan pads its CUDA graphs (padding), each
    of the ranks' b / ranks rounded up to the next of its graph_batch_sizes (TRTLLM_GRAPH_BATCH_SIZES, at
    most the rank's max_batch_size ceil(max_batch / ranks), as launch._per_rank writes it; a batch above the
    table's largest size pads to that max_batch_size, which graph_batch_sizes captures too) x ranks
    (attention data parallelism: every rank pads its own batch)."""
    b = np.asarray(b, dtype=float)
    per = b / ranks
    cap = np.maximum(np.ceil(np.asarray(max_batch, dtype=float) / ranks), per)
    sizes = np.array(TRTLLM_GRAPH_BATCH_SIZES, dtype=float)
    idx = np.searchsorted(sizes, per - 1e-9)
    up = np.minimum(np.where(idx < len(sizes), sizes[np.minimum(idx, len(sizes) - 1)], cap), cap)
    return np.where(padding, np.maximum(up, per) * ranks, b)


# TensorRT-LLM's MoE backend (MoeConfig.backend of the PyTorch flow, tensorrt_llm/llmapi/llm_args.py): the plan
# key moe_backend is `default` (the backend TensorRT-LLM picks when the YAML names none; the serving model times it
# with CUTLASS-like grouped GEMMs of GEMM_TILE_ROWS-row tiles) or `trtllm`, the TRTLLM-gen fused MoE kernels
# (TRTLLMGenFusedMoE), which run on Blackwell data-centre GPUs only (SM100 family: compute capability 10.x), take
# only some weight schemes (TRTLLM_GEN_MOE_WEIGHTS) and pad each expert's rows to a small power-of-two tile
# (timing.trtllm_gen_row_tile). NOT mapped:
# SGLang's --moe-runner-backend flashinfer_trtllm (FlashInfer's build of the same kernels): with the small tile
# SGLang's B200 DeepSeek-R1 rows come out 5-23% fast (benchmarks/inferencex_results.md), so the SGLang plans keep
# the 128-row timing, which those rows fit, and the difference stays an open gap.
MOE_BACKENDS = ("default", "trtllm")
# Weight schemes whose MoE layers TensorRT-LLM builds as TRTLLMGenFusedMoE when moe_config.backend is TRTLLM:
# fp8_block_scales, nvfp4 and the mxfp4 variants (w4a16_mxfp4, w4a8_mxfp4_*); any other scheme logs a warning and
# runs CutlassFusedMoE instead (get_moe_cls, tensorrt_llm/_torch/modules/fused_moe/create_moe.py). Later releases
# add a bf16 path through FlashInfer (NVIDIA/TensorRT-LLM PR 13689, 2026-05), which resolve_moe_cls still
# downgraded to CUTLASS for unquantised checkpoints (PR 15861, open 2026-07): bf16 is left out here.
TRTLLM_GEN_MOE_WEIGHTS = ("fp8-block", "nvfp4", "mxfp4")


def plan_trtllm_gen_moe(t: dict) -> np.ndarray:
    """Whether the plan table's rows run TensorRT-LLM's TRTLLM-gen MoE kernels (column `moe_backend` =
    MOE_BACKENDS index 1; False where the table has none: search tables and plans that leave it out)."""
    return _column(t, "moe_backend", MOE_BACKENDS.index("default")) == MOE_BACKENDS.index("trtllm")


def plan_graph_padding(t: dict) -> np.ndarray:
    """The plan table's `graph_padding` column (False where the table has none: search tables and plans
    that leave it out, TensorRT-LLM's default)."""
    return _column(t, "graph_padding", False)


def plan_async_scheduling(t: dict) -> np.ndarray:
    """The plan table's `async_scheduling` column: vLLM launched with --async-scheduling (SchedulerConfig
    async_scheduling; the flag exists from vLLM 0.10, EngineArgs accepts it with the mp / uni /
    external_launcher executors, i.e. every single-node launch), so the engine core schedules step n+1 while
    the GPU runs step n at a release where it is not yet the default (vllm_async_scheduling). False where the
    table has none: search tables and plans that leave it out (the pinned release schedules asynchronously
    by default anyway)."""
    return _column(t, "async_scheduling", False)


# vLLM's V0 engine (VLLM_USE_V1=0; removed from vLLM 0.11.0, PR 25033 "[V0 Deprecation] Remove LLMEngine") runs,
# with chunked prefill off, the default scheduler (vllm/core/scheduler.py Scheduler._schedule_default): "Don't
# schedule decodes if prefills are scheduled", so a step carries waiting prompts (up to max_num_batched_tokens) or
# the running decodes, never both. Plan key `separate_prefill` (published runs of those releases: AMD's MLPerf
# v5.1 harness sets VLLM_USE_V1 0 and enable_chunked_prefill False).
VLLM_V0_LAST_BEFORE = (0, 11, 0)
# V0's multi-step scheduling (--num-scheduler-steps; plan key recv_interval on vLLM, plan_recv_interval) went before
# the rest of V0: vllm-project/vllm PR 22138 "[V0 Deprecation] Remove multi-step scheduling" (merged 2025-08,
# between 0.10.0 and 0.10.1; PR 22779 then dropped its arguments). AMD's MLPerf v5.1 harness runs 0.9.0.2.
VLLM_MULTI_STEP_LAST_BEFORE = (0, 10, 1)


def plan_separate_prefill(t: dict) -> np.ndarray:
    """The plan table's `separate_prefill` column (False where the table has none: every engine mixes a step's
    prompt chunk with its decodes, VLLM_V0_LAST_BEFORE above for the exception)."""
    return _column(t, "separate_prefill", False)


def plan_recv_interval(t: dict) -> np.ndarray:
    """Decode steps between the scheduler's polls for new requests (plan key `recv_interval`; 1, every step,
    where the table has none: every engine's default). SGLang's --scheduler-recv-interval k
    (managers/scheduler_recv_skipper.py: a decode step adds 1 to a counter, a prefill step 1000, and the
    scheduler receives new requests only when the counter reaches k) holds a new request for up to k decode
    steps before its prefill can start. Not --num-continuous-decode-steps: SGLang 0.5.x parses it but no
    scheduler loop reads it (the loop that ran k decode steps back to back went with the overlap scheduler,
    sgl-project/sglang PR 2095; PR 23131, 2026-04, proposed restoring it), so it changes nothing. vLLM's V0 engine
    with multi-step scheduling (--num-scheduler-steps k, releases before 0.10.1, plan.py checks engine_version) does
    the same: LLMEngine.step calls the scheduler only when the running batch has no remaining steps
    (vllm/engine/llm_engine.py, "Skip the scheduler if there are any remaining steps in the seq groups"), so a new
    request waits for the rest of the k-step decode run."""
    return _column(t, "recv_interval", 1)


# Quantised all-reduce of vLLM and SGLang on ROCm ("QuickReduce", plan key quick_reduce): the level named by the
# engine's environment variable (QUICK_REDUCE_ENV; values FP, INT8, INT6, INT4 or NONE, the default: vllm/envs.py
# VLLM_ROCM_QUICK_REDUCE_QUANTIZATION, sglang/srt/distributed/device_communicators/quick_all_reduce.py
# ROCM_QUICK_REDUCE_QUANTIZATION). The kernels run on gfx94x / gfx95x only (qr_rocm_arch_available: MI300 and MI350
# series: catalog GPU names starting with QUICK_REDUCE_GPUS) and on groups of QUICK_REDUCE_WORLD_SIZES GPUs in one node; which messages take it and
# how many bytes they move: nccl_measured.quick_reduce_floor / QUICK_REDUCE_WIRE_BYTES.
QUICK_REDUCE = ("none", "fp", "int8", "int6", "int4")
QUICK_REDUCE_ENV = {VLLM: "VLLM_ROCM_QUICK_REDUCE_QUANTIZATION", SGLANG: "ROCM_QUICK_REDUCE_QUANTIZATION"}
QUICK_REDUCE_GPUS = ("mi300", "mi325", "mi350", "mi355")
QUICK_REDUCE_WORLD_SIZES = (2, 4, 8)


def plan_quick_reduce(t: dict) -> np.ndarray:
    """The plan table's QuickReduce level (column `quick_reduce`, an index into QUICK_REDUCE; 0, none, where the
    table has none: search tables and plans that leave it out, the engines' default)."""
    return _column(t, "quick_reduce", 0)


# TensorRT-LLM's attention-DP balancing (PyTorch backend, TorchLlmArgs.attention_dp_config: AttentionDpConfig
# enable_balance False by default, timeout_iters 50, batching_wait_iters 10; tensorrt_llm/llmapi/llm_args.py). With it
# on, PyExecutor._balance_adp_requests (tensorrt_llm/_torch/pyexecutor/py_executor.py) schedules no new prompt
# (context request) on any attention-DP rank until every rank has one: each step that some rank lacks one counts
# towards timeout_iters, after which the waiting prompts go anyway; once every rank has one it holds them
# batching_wait_iters more steps, then releases them together (so that the ranks' context steps line up). Plan keys
# adp_balance (true / false), adp_wait_iters, adp_timeout_iters (MLPerf v5.1 NVIDIA DeepSeek-R1 Server: 3 / 9,
# closed/NVIDIA/configs/B200-SXM-180GBx8/Server/deepseek-r1.py; the harness writes them as attention_dp_config,
# closed/NVIDIA/code/llmlib/config.py). The wait it adds: evaluate.adp_release_cycle.
TRTLLM_ADP_WAIT_ITERS = 10
TRTLLM_ADP_TIMEOUT_ITERS = 50


def plan_adp_balance(t: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(balancing on, batching_wait_iters, timeout_iters) of the plan table (off, and TensorRT-LLM's defaults, where
    the table has no such column: search tables and plans that leave the keys out)."""
    return (_column(t, "adp_balance", False), _column(t, "adp_wait_iters", TRTLLM_ADP_WAIT_ITERS),
            _column(t, "adp_timeout_iters", TRTLLM_ADP_TIMEOUT_ITERS))


def sglang_mem_fraction(tp: np.ndarray) -> np.ndarray:
    """SGLang's default mem_fraction_static by tensor-parallel size (module doc)."""
    return np.select([tp >= 16, tp >= 8, tp >= 4, tp >= 2], [0.79, 0.81, 0.85, 0.87], 0.88)


VLLM_GPU_MEMORY_UTILIZATION = 0.9
TRTLLM_FREE_GPU_MEMORY_FRACTION = 0.9


def kv_heads_split(m, tp: int) -> bool:
    """Whether tp ranks can hold the model's KV heads: each rank a share (kv_heads divisible by tp) or one head
    copied tp / kv_heads times (tp divisible by kv_heads): vLLM's and SGLang's QKVParallelLinear (`divide` in
    its num_kv_heads / num_kv_head_replicas) and TensorRT-LLM's duplicate_kv_weight assert one of the two
    (Phi-4's 10 KV heads: tp 1, 2, 5 or 10). MLA shares one latent per token: no KV heads to split."""
    kv = m.n_kv_heads
    return bool(m.mla) or kv % tp == 0 or tp % kv == 0
