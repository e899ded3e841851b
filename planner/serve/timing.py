"""Time of a serving engine step, throughput and latency, vectorised over a plan table.

One engine iteration (continuous batching with chunked prefill) carries `n_dec` decoding sequences
(one token each) and `n_pf` prefill tokens. Per GPU of a pipeline stage:
* weight matmuls: dense parts (attention projections, dense / shared MLP, LM head) as one roofline
  (in bf16 under an MoE-only scheme such as MXFP4: engines.dense_scheme),
  max(2 x tokens x parameters / tp / achievable FLOP/s, weight bytes / achievable HBM bandwidth), MLA's
  query / latent-KV projections in bf16 where the scheme's checkpoints keep them so (engines.mla_proj_scheme);
  routed experts as one roofline per expert GEMM (expert_linear_s): only touched experts are read
  (1 - (1 - k/E)^N of them with N tokens, top-k of E) and each computes its rows padded to whole
  GEMM tiles. Achievable FLOP/s (rates(), the one place the serving efficiency is set) = dense peak
  of the plan's tensor-core format x the GPU's measured MAMF fraction (catalogs/gpus.yaml
  `matmul_efficiency`, ml-engineering) x SUSTAINED_FRACTION below;
  FP4 at the FP8 MAMF throughput, x the GPU's measured NVFP4 / FP8 GEMM ratio for dense GEMMs
  (planner.estimate.compute_gemm.fp4_gemm_over_fp8).
* activations between kernels: every GEMM output written and read once in bf16, MoE dispatch /
  combine copies, fused residual-add + RMSNorm (activation_bytes_per_token), at HBM bandwidth.
* attention: decode reads each sequence's KV cache once per step (memory-bound, HBM) or is
  bound by its FLOPs (MLA's absorbed form); prefill attention is compute-bound, 2 x context x
  H x (d_qk + d_v) per token and layer under the causal mask, at the flash-attention fraction of
  MAMF (planner.estimate.compute_attention.ATTN_FWD_OF_MAMF, Dao 2023), or of the softmax exponentials' rate where
  that binds (compute_attention.exp_bound_fps: head dimension 64 on B200), plus a fixed time per (prompt token,
  query head) (CONTEXT_ATTN_TOKEN_HEAD_S); decode attention adds a fixed time per
  (sequence, KV head) and layer (DECODE_ATTN_SEQ_KVHEAD_S); under attention data parallelism the step waits
  for the rank with the most KV (adp_attention_imbalance).
* weight-only 4-bit MoE layers (MXFP4 experts on Hopper) add a measured fixed time per layer
  (WEIGHT_ONLY_MOE_LAYER_S).
* vLLM's per-tensor FP8 dense GEMMs on MI300-series GPUs (gfx942) run hipBLASLt: rows padded to its 16-row tile and
  (read^p + math^p)^(1/p) in place of the max, p fitted to AMD's measured hipBLASLt FP8 timings
  (planner.serve.hipblaslt_fp8), for steps of two or more rows.
* SGLang 0.5.6-0.5.9 on MI300-series GPUs (gfx942) runs block-FP8 dense GEMMs through aiter's Triton kernel with its
  untuned 128 x 128 tile and no split-K: K / 128 sequential steps per GEMM at AMD's measured time per step, beyond
  the roofline (planner.serve.aiter_triton_gemm).
* tensor parallelism: two all-reduces of tokens x hidden bf16 per layer on the real link
  (planner.estimate.comm; NVIDIA's measured NCCL time at the message size where the engine runs NCCL and
  a table exists, and the measured time of the engine's own all-reduce kernel below that size:
  planner.serve.nccl_measured); attention data parallelism instead exchanges the routed tokens with an
  all-to-all before and after each MoE layer; pipeline stages pass tokens x hidden with send/recv.
* pipeline parallelism: the batch is cut into pp micro-batches that keep every stage busy, so one
  iteration takes pp x (stage time of one micro-batch).
* a fixed host step per iteration (scheduling, sampling) named below, added to the GPU step (vLLM before
  0.14, TensorRT-LLM before 0.20) or overlapped with it (SGLang's and TensorRT-LLM's overlap schedulers,
  vLLM's async scheduling: max of the two, overlaps_host_step);
  under TensorRT-LLM's an iteration is never shorter than its host work per running request (host_bound_s);
  a release that runs its steps without CUDA graphs (TensorRT-LLM before 1.0) is never faster than its
  host can issue the kernels (eager_issue_s).
"""

from __future__ import annotations

import numpy as np

from planner.estimate import comm
from planner.estimate.compute_moe import GEMM_TILE_ROWS
from planner.estimate.host import HOST_LAUNCH_S
from planner.estimate.compute_attention import ATTN_FWD_OF_MAMF, exp_bound_fps
from planner.estimate.compute_gemm import DEFAULT_MAMF, GEMM_LAUNCH_S, HBM_EFFICIENCY, fp4_gemm_over_fp8
from planner.estimate.topology import group
from planner.serve import aiter_triton_gemm as ATG
from planner.serve import engines as E
from planner.serve import hipblaslt_fp8 as HB
from planner.serve import nccl_measured as NM
from planner.serve.memory import ACT_BYTES, attn_tp, kv_bytes_per_token, seq_kv_bytes, stage_layers
from planner.serve.routing_skew import ROUTING_SKEW_ALPHA, skew_imbalance

# Host-side work per engine iteration (scheduler, input preparation, sampler hand-off, detokeniser). Assumed
# 1 ms for every engine (vLLM's V1 blog, Jan 2025, describes cutting it to about a millisecond). Whether the
# GPU waits for it is the engine's code path (overlaps_host_step): SGLang's overlap scheduler
# (disable_overlap_schedule False by default in sglang/srt/server_args.py since 0.4; "zero-overhead batch
# scheduler", SGLang v0.4 blog, Dec 2024) and TensorRT-LLM's (disable_overlap_scheduler False,
# tensorrt_llm/llmapi/llm_args.py; from 0.20, engines.trtllm_overlap_scheduler) prepare step n+1 on the
# host while the GPU runs step n, so a step takes max(GPU, host); vLLM's engine core runs schedule ->
# execute -> update in turn (vllm/v1/engine/core.py step)
# unless async scheduling is on: off by default in the vLLM releases of every published vLLM point here
# (0.4 - 0.10), so the GPU step and the host step add; on by default from vLLM 0.14 (the launch files' pin,
# 0.33, included), so plans at those releases overlap it too (engines.vllm_async_scheduling).
STEP_OVERHEAD_S = 1.0e-3

# The fraction of the best-shape MAMF that serving GEMMs sustain in this roofline. FITTED, not
# measured: it is the value once fitted on the training calibration runs
# (shared/calibration/published_runs.yaml, 27 Megatron runs; mean error 6.7% at 0.90). The training
# model has since replaced it with GEMM time = arithmetic at MAMF + operand/output traffic + launch
# (planner.estimate.compute); the serving roofline keeps the fraction until it moves to the same
# form (its dense points are within about 7% with it, benchmarks/serving_accuracy.md).
SUSTAINED_FRACTION = 0.90


# FP4 (NVFP4 / MXFP4 on Blackwell tensor cores): no FP4 MAMF is published (hardware facts list FP8 and
# BF16 MAMF only). Dense GEMMs (attention projections, dense / shared MLPs) get the GPU's FP8 MAMF throughput
# x the GPU's measured best-NVFP4 / best-FP8 GEMM rate (compute_gemm.fp4_gemm_over_fp8: catalogs/gpus.yaml
# `fp4_gemm_over_fp8`, e.g. B200 1.44 and GB200 1.50 from NVIDIA's TensorRT-LLM GEMM tables,
# benchmarks/fp4_gemm_check.py). Not the 2x of the peaks: block-scale loads and the FP4 epilogue cost
# tensor-core time (at the Llama-70B shapes the measured ratio is 1.5-1.65 for m >= 512). Grouped expert GEMMs
# keep the FP8 throughput: NVIDIA's measured NVFP4 MoE layer times (benchmarks/moe_kernel_check.py,
# TensorRT-LLM's CUTLASS MoE) already run 1.29x (B200) / 1.09x (GB200) the model at the FP8 rate and
# 1.44x / 1.25x with the dense ratio, so the grouped FP4 kernels show no such gain (their short reductions
# and few rows per expert are where the dense ratio is lowest).


def fp4_rate_tflops(gpu, e8: float, dense_gemm: bool = True) -> float:
    """Achievable FP4 GEMM TFLOP/s: the FP8 dense peak x its achievable fraction e8, x the GPU's measured
    NVFP4 / FP8 GEMM ratio (compute_gemm.fp4_gemm_over_fp8) for dense GEMMs (capped at the FP4 dense peak x e8),
    x 1 for grouped expert GEMMs; 0 on a GPU without FP4 tensor cores."""
    if not gpu.tflops.fp4:
        return 0.0
    gain = fp4_gemm_over_fp8(gpu) if dense_gemm else 1.0
    return min((gpu.tflops.fp8 or 0.0) * gain, gpu.tflops.fp4) * e8


def rates(gpu, wq_names: tuple, dense_gemm: bool = False) -> tuple[np.ndarray, float, float]:
    """(achievable linear FLOP/s per weight scheme, attention FLOP/s, achievable HBM bytes/s): the one
    place the serving model sets GEMM efficiency (peak of the format x measured MAMF fraction x the
    SUSTAINED_FRACTION; FP4 per fp4_rate_tflops: dense_gemm for the non-expert linears, else the grouped
    expert GEMMs)."""
    eff = gpu.matmul_efficiency
    e16 = (eff.bf16 or DEFAULT_MAMF) * SUSTAINED_FRACTION
    e8 = (eff.fp8 or eff.bf16 or DEFAULT_MAMF) * SUSTAINED_FRACTION
    peak = {"bf16": (gpu.tflops.bf16 or gpu.tflops.fp16 or 0.0) * e16,
            "fp16": (gpu.tflops.fp16 or 0.0) * e16,
            "fp8": (gpu.tflops.fp8 or 0.0) * e8,
            "fp4": fp4_rate_tflops(gpu, e8, dense_gemm),
            "int8_ampere": 2.0 * (gpu.tflops.bf16 or 0.0) * e16}
    lin = np.array([peak.get(E.compute_precision(n, gpu) or "bf16", 0.0) for n in wq_names]) * 1e12
    attn = (gpu.tflops.bf16 or gpu.tflops.fp16 or 0.0) * e16 * ATTN_FWD_OF_MAMF * 1e12
    return lin, attn, gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY


# Grouped expert GEMMs pad each expert's rows to whole output tiles of GEMM_TILE_ROWS (the training
# model's, planner.estimate.compute_moe: CUTLASS / cuBLAS Hopper and Blackwell kernels tile 64-256 rows,
# 128 the common height).

# Fixed work per GEMM output tile (pipeline fill, epilogue: convert and store the tile), written as the
# reduction length K0 whose main-loop time equals it: a GEMM of reduction length K then runs at
# K / (K + K0) of its best rate. Fitted on DeepGEMM's published normal-GEMM table (README at
# deepseek-ai/DeepGEMM @327ec92, H800 FP8, M = 4096): 775 / 1212 / 1168 / 1410 / 1520 TFLOPS at
# K = 512 / 1536 / 2048 / 7168 / 16384 follow P K / (K + 524) with P = 1569 TFLOP/s within 7%. The
# fixed time per tile is the same on a GPU whose matmul rate differs, so K0 scales with the rate
# (K0 = 524 x rate / 1569 TFLOP/s; the SM counts of Hopper and Blackwell parts, 132-148, are taken as
# equal). Applied to the routed-expert GEMMs, whose reduction is short (expert widths of 768-2048,
# split further by expert tensor parallelism), and checked on NVIDIA's measured TensorRT-LLM MoE layer
# times (AIConfigurator, benchmarks/moe_kernel_check.py, with MOE_PAIR_S below).
GEMM_K0_ELEMENTS = 524.0
GEMM_K0_AT_RATE = 1569e12

# Routing work per (token, chosen expert) pair that is neither a GEMM nor bandwidth: top-k selection,
# the sort that groups rows by expert, the scatter / gather index arithmetic of permute and
# finalize. Every expert-parallel rank runs it over all the tokens it receives (n x top_k pairs), so it
# does not shrink with EP. FITTED (to per-operation measurements, not to the published end-to-end runs):
# the value that best fits NVIDIA's per-layer TensorRT-LLM MoE
# timings (AIConfigurator data, H100 / H200 / B200 / GB200, FP8 / BF16 / NVFP4 / MXFP4, 32 to 512
# experts, 256 to 16,384 tokens) after the GEMM and traffic terms; mean error on those timings 31.2%
# before the tile efficiency, this term and the expert-TP traffic, 15.2% with them, in-sample: the same
# timings fit it (benchmarks/moe_kernel_check.py). Held out (benchmarks/fitted_holdout.md): fitted on any one
# GPU, TensorRT-LLM version or half of the layer shapes (2.0-3.2 ns) it scores the rest within 0.7 point of
# their own best value.
MOE_PAIR_S = 2.25e-9


# Kernels of a layer besides its weight GEMMs, as TensorRT-LLM's PyTorch layers (and vLLM's / SGLang's
# fused ones) run them: two fused residual-add + RMSNorm, the QKV preprocessing (RoPE and the KV-cache
# write), attention, the MLP activation; an MoE layer adds top-k routing, the permute and the
# finalize (unpermute + weighted sum). Each kernel also pays a launch-and-tail time; GEMM_LAUNCH_S (4 us)
# is the value measured on an H200 for mid-size GEMMs (planner.estimate.compute,
# benchmarks/gemm_device_results.md) and is charged to every kernel and collective of the step.
LAYER_KERNELS = 5
MOE_LAYER_KERNELS = 3


def stage_kernels(f, t, ls):
    """Kernels and collectives a stage launches per step: ls x (weight GEMMs + LAYER_KERNELS +
    MOE_LAYER_KERNELS for the MoE share + collectives: 2 all-reduces per layer under tensor parallelism, an
    all-gather and a reduce-scatter per MoE layer under attention data parallelism)."""
    moe = f.moe_layers / f.layers
    comms = np.where(t["attn_dp"], 2.0 * moe, np.where(t["tp"] > 1, 2.0, 0.0))
    return ls * (f.gemms_per_layer + LAYER_KERNELS + MOE_LAYER_KERNELS * moe + comms)


def kernel_launch_s(f, t, ls):
    """Launch-and-tail time of a stage's kernels: stage_kernels x GEMM_LAUNCH_S."""
    return stage_kernels(f, t, ls) * GEMM_LAUNCH_S


def eager_issue_s(f, t, ls):
    """Host time to issue a stage's kernels one at a time when the step runs without a CUDA graph:
    stage_kernels x HOST_LAUNCH_S (6.5 us, the measured eager dispatch + launch of one op on an H200 host,
    planner.estimate.host, benchmarks/host_device_results.md). The GPU cannot finish the step sooner; a floor,
    as the kernel count is the fused one (an eager model issuing more ops per layer waits longer)."""
    return stage_kernels(f, t, ls) * HOST_LAUNCH_S


# Weight-only 4-bit expert GEMMs on a GPU without 4-bit tensor cores (gpt-oss's MXFP4 experts on
# Hopper, TensorRT-LLM's Triton MoE path) convert every weight element to bf16 inside the main loop,
# once per output row tile (GEMM_TILE_ROWS rows), on the CUDA cores rather than the tensor cores:
# DEQUANT_FP32_OPS_PER_WEIGHT FP32-pipe operations per element (unpack, convert, scale) at the GPU's
# vector FP32 peak. FITTED to per-operation measurements: the value that fits AIConfigurator's
# TensorRT-LLM W4A16 MXFP4 MoE layer
# timings on H100 and H200 at 4,096-16,384 tokens (compute-bound; median measured / model 1.02 with it,
# 80 timings), which without it run 1.2-1.35x the bf16-rate model (benchmarks/moe_kernel_check.py).
# Charged to the routed experts only: that is the kernel measured (dense AWQ / GPTQ GEMMs run Marlin-
# style kernels that interleave the conversion with the weight loads; no measurement here). Held out
# (benchmarks/fitted_holdout.md): carries between H100 and H200 and between gpt-oss's two expert counts, but
# those share one chip (GH100) and one expert shape; it does NOT carry to Blackwell (GB200's W4A16 timings
# need about 4x the ops at its FP32 peak), so on any other GPU without 4-bit MMA (A100, MI300X) the
# scaling by the FP32 peak is an untested extrapolation. The peak is the unpacked one: the unpacking and
# conversions have no packed-FP32 form, so where the listed FP32 figure counts packed FP32 (gpu.fp32_packed: AMD
# CDNA3 / CDNA4, whose 163.4 / 157.3 TFLOP/s are twice the per-lane rate) they run at half of it (the InferenceX
# gpt-oss rows on MI300X / MI325X: benchmarks/inferencex2_results.md).
DEQUANT_FP32_OPS_PER_WEIGHT = 12.0


# Block-scaled FP8 expert GEMMs (fp8-block) on tensor cores that take no block scales (Hopper's WGMMA, CDNA3's
# MFMA): the FP8 MMA accumulates one 128-wide K block, then the CUDA cores scale the partial sums by the
# block's activation and weight scales and add them to FP32 accumulators (DeepGEMM README, "promotion"),
# once per output element and K block: (rows x N x K) / 128 operations, i.e. per weight element x rows
# received / 128, at the vector FP32 peak (the rows an expert really receives, not its padded tile:
# the measured fp8_block / fp8 ratio is 1.00-1.05 at 256 tokens, where experts get a few rows each).
# FITTED to per-operation measurements: the value whose median measured / model is 1 (0.99) on
# AIConfigurator's TensorRT-LLM
# 1.2.0rc5 fp8_block MoE layer timings (CUTLASS MoE backend, the one the DeepSeek-R1 performance-
# overview runs name) on H100 and H200 at 4,096-16,384 tokens, which run 1.4-2.5x the per-tensor fp8
# ones there; mean error over all 492 Hopper fp8_block timings 28% without, 16% with
# (benchmarks/moe_kernel_check.py). Tensor cores with block-scaled
# MMA (those with FP4: Blackwell tcgen05, whose fp8_block MoE timings on B200 run 0.94-1.07x the
# per-tensor ones at >= 2,048 tokens) apply the scales in the MMA: no term. Dense block-FP8 GEMMs overlap
# the promotion with the next block's MMA (DeepGEMM; AIConfigurator's H200 GEMM table: 0.99-1.03x
# per-tensor fp8), so the term is charged to the routed experts only, like DEQUANT_FP32_OPS_PER_WEIGHT.
# Held out (benchmarks/fitted_holdout.md): fitted on H100 it scores H200 and the reverse, and on half of the
# shapes the other half, within 0.7 point of their own best; one chip (GH100) only, so on CDNA3 (MI300X,
# FP8 MFMA without block scales) the scaling by the FP32 peak is an untested extrapolation.
BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT = 24.0


# Fixed time of a weight-only 4-bit MoE layer (MXFP4 / INT4 experts computed in bf16: the Triton matmul_ogs
# path that TensorRT-LLM, vLLM and SGLang run for gpt-oss on Hopper) beyond what expert_linear_s, moe_routing_s
# and the launch-and-tail of its kernels (expert up / down + MOE_LAYER_KERNELS) charge. MEASURED by NVIDIA and
# fitted to those per-operation timings, not to any serving point: AIConfigurator's MoE-layer tables (@095f58a5,
# balanced routing) at 1-8 tokens, tp x ep <= 8, for gpt-oss's expert shape (hidden = expert width 2880, top-4,
# 32 and 128 experts; the only W4A16 shapes collected), measured minus modelled: median 27 us over 504 timings
# (H100 / H200; TensorRT-LLM 1.2.0rc5 24 / 22 us, vLLM 0.18 71, 0.19 55, 0.24 17 / 16, SGLang 0.5.14 35 / 24),
# while the per-tensor bf16 and fp8 CUTLASS layers of the same tables sit at the model (0 / 7 us) and Blackwell's
# W4A8 MXFP4 layers below it (-6..-9 us): a cost of the weight-only path, e.g. H200 TensorRT-LLM, 128 experts,
# one token: 100 us for 53 MB of weights (tp 32: 24 us). benchmarks/moe_decode_check.py, moe_decode_results.md.
# Charged per MoE layer wherever the expert scheme is weight-only (timing.is_weight_only: no 4-bit tensor cores),
# on any GPU; measured on GH100 only, so on CDNA3 (MI300X / MI325X) it is an untested extrapolation.
WEIGHT_ONLY_MOE_LAYER_S = 27e-6


def weight_only_moe_fixed_s(f, ls, weight_only):
    """WEIGHT_ONLY_MOE_LAYER_S per MoE layer of the stage where the expert scheme is weight-only, else 0."""
    if not f.experts:
        return 0.0
    return np.where(np.asarray(weight_only), WEIGHT_ONLY_MOE_LAYER_S * ls * f.moe_layers / f.layers, 0.0)


def weight_only_row_tile(rows):
    """Row tile of the weight-only (Triton) MoE kernel: the power of two at or above the rows per
    expert, within 16..128 (triton_kernels matmul_ogs opt_flags on NVIDIA GPUs:
    block_m = max(16, min(next_power_of_2(tokens_per_expt), 128)))."""
    rows = np.maximum(np.asarray(rows, dtype=float), 1.0)
    return np.clip(2.0 ** np.ceil(np.log2(rows)), 16.0, float(GEMM_TILE_ROWS))


# TRTLLM-gen MoE tile choice (calculate_tile_tokens_dim, tensorrt_llm/_torch/custom_ops/trtllm_gen_custom_ops.py):
# the token count is capped at 4,096 after rounding up to a power of two, and the tile is at least 8 rows (at most
# max_tile_tokens_dim, 128 = GEMM_TILE_ROWS).
TRTLLM_GEN_MAX_TOKENS = 4096.0
TRTLLM_GEN_MIN_TILE = 8.0


def trtllm_gen_row_tile(f, n):
    """Row tile of TensorRT-LLM's TRTLLM-gen fused MoE kernels (moe_backend trtllm) for n tokens entering the
    layer: the tokens rounded up to a power of two (at most TRTLLM_GEN_MAX_TOKENS), tokens per expert = that x
    top_k // experts, rounded up to a power of two within TRTLLM_GEN_MIN_TILE..GEMM_TILE_ROWS
    (calculate_tile_tokens_dim, tensorrt_llm/_torch/custom_ops/trtllm_gen_custom_ops.py: tile_tokens_dim clamped to
    8..max_tile_tokens_dim, 128). A decode step of a few tokens per expert pays 8-row tiles, not the 128-row tiles
    of the CUTLASS grouped GEMMs (NVIDIA's AIConfigurator B200 TRTLLM-gen MoE timings: benchmarks/inferencex_results.md)."""
    n2 = np.minimum(2.0 ** np.ceil(np.log2(np.maximum(np.asarray(n, dtype=float), 1.0))), TRTLLM_GEN_MAX_TOKENS)
    per = np.maximum(np.floor(n2 * max(f.top_k, 1) / max(f.experts, 1)), 1.0)
    return np.clip(2.0 ** np.ceil(np.log2(per)), TRTLLM_GEN_MIN_TILE, float(GEMM_TILE_ROWS))


def dequant_s_per_weight(gpu, wq_names: tuple) -> np.ndarray:
    """Seconds of CUDA-core work per weight element and row tile of an expert GEMM, per weight scheme:
    DEQUANT_FP32_OPS_PER_WEIGHT / unpacked vector FP32 peak for weight-only 4-bit schemes (computed in bf16 /
    fp16), BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT / FP32 peak for fp8-block without block-scaled MMA, else 0."""
    fp32 = (gpu.tflops.fp32 or 0.0) * 1e12
    unpacked = fp32 / 2 if gpu.fp32_packed else fp32  # integer unpacking and conversions have no packed form
    out = []
    for n in wq_names:
        rate, ops = unpacked, (DEQUANT_FP32_OPS_PER_WEIGHT if is_weight_only(n, gpu) else 0.0)
        if n == "fp8-block" and E.compute_precision(n, gpu) == "fp8" and not gpu.tflops.fp4:
            rate, ops = fp32, BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT  # scale-and-add FMAs: packed FP32 applies
        out.append(ops / rate if rate > 0 else 0.0)
    return np.array(out)


def is_weight_only(scheme: str, gpu) -> bool:
    """Sub-byte weights computed in bf16 / fp16 (weight-only kernels: Triton MoE, Marlin)."""
    return E.compute_precision(scheme, gpu) in ("bf16", "fp16") and E.weight_bytes_per_element(scheme) < 1.0


def tile_k_efficiency(k, rate):
    """k / (k + K0), K0 = GEMM_K0_ELEMENTS x rate / GEMM_K0_AT_RATE: the share of a GEMM's time that is
    main loop when every output tile also pays a fixed cost (see GEMM_K0_ELEMENTS)."""
    k = np.maximum(np.asarray(k, dtype=float), 1.0)
    return k / (k + GEMM_K0_ELEMENTS * np.asarray(rate) / GEMM_K0_AT_RATE)


def padded_rows(n, tile=GEMM_TILE_ROWS):
    """Token rows a GEMM computes: n rounded up to whole output tiles of `tile` rows (GEMM_TILE_ROWS)."""
    return np.ceil(np.asarray(n, dtype=float) / tile) * tile


def dense_linear_s(f, ls, n, n_dec, tp, ta, lin, bw, bpe, lin_mla=None, bpe_mla=None, row_tile=GEMM_TILE_ROWS,
                   blend_p=None):
    """Attention projections, dense / shared MLPs and the LM head of n tokens on one GPU: one
    roofline, max(2 x rows x params / lin, weight bytes / bw), rows = the step's tokens padded to
    whole GEMM tiles (padded_rows; the tile quantization the expert GEMMs already pay: MAMF is
    measured on tile-aligned shapes, and a decode step of 190 sequences computes 256 rows); the LM
    head only for decode tokens. MLA's query / latent-KV projections (f.mla_proj) at their own rate and
    bytes per element (lin_mla, bpe_mla: engines.mla_proj_scheme) where given. row_tile / blend_p: the rows' tile
    and, instead of the max, (read^p + math^p)^(1/p) (hipBLASLt FP8 on gfx942: planner.serve.hipblaslt_fp8)."""
    dp = tp / ta  # attention data parallelism: each rank's own n / tp tokens (1 under plain tp)
    rows, rows_dec = padded_rows(n / dp, row_tile) * dp, padded_rows(n_dec / dp, row_tile) * dp
    top = np.maximum if blend_p is None else (lambda a, b: HB.blend(a, b, blend_p))
    flops = 2.0 * rows * ls * (f.attn + f.dense_mlp + f.shared) / tp + 2.0 * rows_dec * f.vocab * f.hidden / ta
    w_read = ls * (f.attn + f.dense_mlp + f.shared) * bpe / ta + f.vocab * f.hidden * 2.0 / ta
    if not f.mla_proj or lin_mla is None:
        return top(flops / lin, w_read / bw)
    mla_flops = 2.0 * rows * ls * f.mla_proj / tp
    compute = (flops - mla_flops) / lin + mla_flops / lin_mla
    w_read = w_read + ls * f.mla_proj * (bpe_mla - bpe) / ta
    return top(compute, w_read / bw)


def expected_max_std_normal(m):
    """Expected largest of m independent standard normal variables, Blom's (1958) approximation
    Phi^-1((m - 0.375) / (m + 0.25)) (within 0.03 of Harter's 1961 tables for m = 2..64); 0 for m = 1."""
    from statistics import NormalDist

    m = np.asarray(m, dtype=float)
    uniq = np.unique(m)  # a handful of ep values per plan table: one inverse CDF each
    vals = np.array([NormalDist().inv_cdf((v - 0.375) / (v + 0.25)) if v > 1 else 0.0 for v in uniq])
    return vals[np.searchsorted(uniq, m)]


def ep_load_imbalance(f, n, ep):
    """Busiest expert-parallel rank's routed rows over the mean rank's: with n tokens each routed to
    top-k of E experts uniformly, a rank holding E / ep experts receives X ~ Binomial(n k, 1 / ep)
    copies; the layer waits for the busiest of ep ranks (grouped GEMM, then the combine), and
    E[max] ~ mu + sigma x expected_max_std_normal(ep) with mu = n k / ep, sigma = sqrt(mu (1 - 1/ep))
    (order statistics of the normal approximation). Uniform routing is the optimistic case: trained
    routers are skewed (the reason for DeepSeek's EPLB), which this does not model."""
    mu = np.maximum(n * max(f.top_k, 1) / ep, 1e-9)
    return 1.0 + expected_max_std_normal(ep) * np.sqrt(mu * (1.0 - 1.0 / ep)) / mu


def ep_rank_imbalance(f, n, ep, skew_alpha=ROUTING_SKEW_ALPHA):
    """Busiest expert-parallel rank's routed copies over the mean rank's: the larger of the uniform
    router's sampling spread (ep_load_imbalance) and the skewed router's (routing_skew.skew_imbalance,
    skew_alpha 0: uniform only); 1 without EP."""
    ep = np.asarray(ep)
    e2 = np.maximum(ep, 2)
    return np.where(ep > 1, np.maximum(ep_load_imbalance(f, n, e2), skew_imbalance(f, n, e2, skew_alpha)), 1.0)


def expert_linear_s(f, ls, n, tp, lin, bw, bpe, ep=1, dequant=0.0, weight_only=None, skew_alpha=ROUTING_SKEW_ALPHA,
                    imbalance=None, trtllm_gen=False):
    """Routed experts of n tokens on one GPU, one roofline per expert GEMM (not per layer): with
    top-k of E experts, a share 1 - (1 - k/E)^n of them is touched (expected, uniform routing),
    each by r = n k / (E x touched) rows padded to GEMM_TILE_ROWS (weight-only schemes, run by the
    Triton MoE kernel, weight_only: to weight_only_row_tile; default: where dequant > 0; TensorRT-LLM's TRTLLM-gen
    kernels, trtllm_gen: to trtllm_gen_row_tile); an expert is read once and
    computed on its padded rows: touched x routed / tp x max(2 pad(r) x imbalance x slow / lin, bytes / bw),
    imbalance = ep_rank_imbalance (the busiest of ep expert-parallel ranks sets the time; a caller that
    already has it passes imbalance), slow =
    the up and down projections' share of the expert over their tile_k_efficiency (reduction hidden
    and expert width / (tp / ep), the expert tensor-parallel split) at the MAMF rate lin / SUSTAINED_FRACTION;
    weight-only and block-scaled FP8 schemes add dequant (dequant_s_per_weight) per weight element and
    row tile to the compute side."""
    if not f.experts:
        return 0.0
    touched = 1.0 - (1.0 - f.top_k / f.experts) ** n
    rows = n * f.top_k / (f.experts * np.maximum(touched, 1e-12))
    weight_only = np.asarray(dequant) > 0 if weight_only is None else np.asarray(weight_only)
    tile = np.where(weight_only, weight_only_row_tile(rows),
                    np.where(trtllm_gen, trtllm_gen_row_tile(f, n), GEMM_TILE_ROWS))
    padded = np.ceil(rows / tile) * tile
    imb = ep_rank_imbalance(f, n, ep, skew_alpha) if imbalance is None else imbalance
    slow = 1.0
    if f.expert_ffn:
        rate = np.asarray(lin) / SUSTAINED_FRACTION
        etp = np.maximum(np.asarray(tp) / np.maximum(ep, 1), 1.0)
        u = f.expert_up_share
        slow = u / tile_k_efficiency(f.hidden, rate) + (1 - u) / tile_k_efficiency(f.expert_ffn / etp, rate)
    # weight-only kernels convert each weight once per row tile; block-FP8 promotion runs per row received
    convert = dequant * np.where(weight_only, padded / tile, rows / GEMM_TILE_ROWS) * imb
    return ls * touched * f.routed / tp * np.maximum(2.0 * padded * imb * slow / lin + convert, bpe / bw)


def moe_routing_s(f, ls, n):
    """Routing work of n tokens on one GPU: MoE layers of the stage x n x top_k x MOE_PAIR_S."""
    if not f.experts:
        return 0.0
    return ls * f.moe_layers / f.layers * n * f.top_k * MOE_PAIR_S


def activation_bytes_per_token(f, tp, ta, ep=None, imbalance=1.0):
    """HBM bytes per token and layer of the tensors between kernels (bf16): every GEMM output is
    written once and read once by the next kernel (q/k/v, attention output, o_proj, gate/up, the
    SwiGLU product, the down projection of each routed copy), MoE dispatch and combine copy the
    hidden vector per routed copy (read + write), and two fused residual-add + RMSNorm kernels read
    the input and residual and write both (8 x hidden). TP ranks hold the whole residual stream.
    The routed copies are spread over the ep expert-parallel ranks (default: all tp ranks); expert
    tensor parallelism (tp / ep ways) splits their inner width but every such rank permutes, writes
    and combines the whole hidden vector of each copy it serves. The per-copy terms are those of the
    busiest EP rank: x imbalance (ep_rank_imbalance, 1 by default).""" 
    qkv = f.attn_dim_prefill / 2 + f.kv_elems
    copies = max(f.top_k, 1)
    ep = tp if ep is None else ep
    gemm_out = qkv / ta + f.hidden + (3.0 * f.ffn_per_token / tp + (copies - 1) * f.hidden / ep) * imbalance
    dispatch = 2.0 * copies * f.hidden / ep * imbalance if f.experts else 0.0
    return ACT_BYTES * (2.0 * gemm_out + dispatch + 8.0 * f.hidden / np.where(ta == 1, tp, 1))


def comm_links(node, t, hidden=None, moe: bool = False, measured: bool = True) -> dict:
    """(latency s, seconds per byte) of each collective a serving step uses, per plan: the
    planner.estimate.comm costs are affine in the message size (latency + bytes / bandwidth on the
    slowest hop), so they are evaluated once per plan table instead of once per step size. The TP
    all-reduce and the attention-DP all-gather / reduce-scatter also carry NVIDIA's measured NCCL times
    per plan (planner.serve.nccl_measured.measured_table, NaN where none applies) and the message size
    above which the plan's engine runs them in NCCL (all_reduce_nccl_floor at the model's hidden size;
    -inf: always, inf: never), used by _cost; the all-reduce also carries the engine's own kernel's measured
    times below that size (nccl_measured.custom_table; moe: the model has routed experts, which switches
    SGLang to FlashInfer's TensorRT-LLM kernel). "quick_reduce": per plan the message size from which the
    all-reduce runs QuickReduce and its bytes moved per fp16 byte (tp_all_reduce_s). measured False: no measured
    rows (the comm model only)."""
    tp = t["tp"]
    big = 1e9

    def affine(fn, size, stride):
        g = group(node, size, stride)
        a0 = fn(node, 0.0, g)
        return a0, (fn(node, big, g) - a0) / big

    engine = t["engine"]
    ar_floor = NM.all_reduce_nccl_floor(node, engine, tp, hidden)
    ag_floor = np.where(NM.gather_is_nccl(engine), -np.inf, np.inf)
    return {"all_reduce": affine(comm.all_reduce_s, tp, 1) + (NM.measured_table(node, "all_reduce", tp, measured), ar_floor,
                                                               NM.custom_table(node, engine, tp, moe, measured)),
            "quick_reduce": (NM.quick_reduce_floor(node, engine, tp, E.plan_quick_reduce(t)),
                             NM.quick_reduce_wire_ratio(E.plan_quick_reduce(t), tp)),
            "all_to_all": affine(comm.all_to_all_s, tp, 1), "p2p": affine(comm.gather_s, 2, tp),
            "gather": affine(comm.gather_s, tp, 1) + (NM.measured_table(node, "all_gather", tp, measured), ag_floor),
            "reduce_scatter": affine(comm.gather_s, tp, 1) + (NM.measured_table(node, "reduce_scatter", tp, measured), ag_floor)}


# Fixed time of the decode attention kernel per (sequence, KV head) and layer, besides its KV-cache read
# (one work unit of TensorRT-LLM's XQA / trtllm-gen generation kernels: load the queries, walk the block
# table, reduce and write the output). FITTED to per-operation measurements: NVIDIA's TensorRT-LLM
# generation-attention timings
# (AIConfigurator data, benchmarks/decode_attn_check.py: 8 query heads per KV head, batch 64-2,048,
# contexts 32-16,384) less the KV read at the model's bandwidth, fitted as launch + c x sequences x KV
# heads: with an FP8 KV cache c = 8.1-8.4 ns on H100 / H200 (TensorRT-LLM 1.2.0rc5, 1.3.0rc10, 1.3.0rc20)
# and B200 (1.2.0rc5), 6.2-7.8 ns for the 128-token sliding window. One value for every GPU, format and
# layer: 8 ns. Not separated (kernel- or version-specific): a bf16 KV cache on Hopper measures 28-31 ns
# in every version; B200 / GB200 with TensorRT-LLM 1.3.0rc10 measure 75-111 ns. Held out
# (benchmarks/fitted_holdout.md): across H100 / H200 / B200 and across shapes it carries (within 4.2 points
# of each part's own best); across KV format (bf16) and version (B200 1.2.0rc5 -> 1.3.0rc10: 84% vs 23%) it
# does not, and no per-GPU quantity explains that (one chip, 8 vs 80 ns in two versions): the planner
# charges this FP8-KV XQA figure to every engine and KV format, a stated limit.
DECODE_ATTN_SEQ_KVHEAD_S = 8e-9


# Context (prefill) attention's fixed time per (prompt token, query head) beside its FLOPs: query-tile set-up,
# softmax bookkeeping and the output write of the flash-attention kernel, which short prompts do not amortise
# (NVIDIA's TensorRT-LLM context-attention kernel runs 438 TFLOP/s at 1,024-token prompts and 1,116 at 16,384 on
# B200, head size 128; the flat-rate model alone is 38% off over the rows below). FITTED to per-operation
# measurements, not to any serving point: the value with the least mean absolute error of the per-token time over
# AIConfigurator's TensorRT-LLM 1.2.0rc5 context-attention tables (@095f58a5; B200, H100, H200; 3,744 rows:
# head size 64 / 128, 1-96 query heads, prompts 128-16,384, best over batch): 0.40 ns, 38.2% -> 10.5%; per GPU
# 0.33 (B200) / 0.43 (H200) / 0.44 ns (H100). Held out (benchmarks/context_attn_fixed_check.py,
# context_attn_fixed_results.md): fitted on any one GPU it scores the other two within 5 points of their own
# best. The same cost shows in the sliding-window layers (0.42 ns per token and head on B200,
# context_attn_results.md). Charged to every engine and GPU (measured on NVIDIA's kernels only: on AMD an
# untested extrapolation, as DECODE_ATTN_SEQ_KVHEAD_S).
CONTEXT_ATTN_TOKEN_HEAD_S = 0.40e-9


def context_attention_fixed_s(f, ls, n_pf, ta):
    """ls x prompt tokens of the step x query heads per GPU (heads / attention tp) x CONTEXT_ATTN_TOKEN_HEAD_S."""
    return ls * n_pf * f.heads / ta * CONTEXT_ATTN_TOKEN_HEAD_S


def decode_attention_fixed_s(f, ls, seqs, ta):
    """ls x decoding sequences on the GPU x KV heads per GPU (kv_split_max / attention tp, at least 1;
    MLA: one latent head) x DECODE_ATTN_SEQ_KVHEAD_S."""
    return ls * seqs * np.maximum(f.kv_split_max / ta, 1.0) * DECODE_ATTN_SEQ_KVHEAD_S


def tp_all_reduce_s(lk, nbytes):
    """Seconds of one TP all-reduce of nbytes: _cost of the all-reduce link, or where the plan runs QuickReduce at
    that size (comm_links "quick_reduce": nbytes at or above its floor) the comm model's latency + nbytes x ratio x
    seconds per byte: the two-shot kernel moves the ring's 2 (n - 1) / n share of the message, coded
    (nccl_measured.quick_reduce_wire_ratio: the coded bytes, bounded by AMD's measured speedup at the group size)."""
    link, (floor, ratio) = lk["all_reduce"], lk["quick_reduce"]
    return np.where(np.asarray(nbytes) >= floor, link[0] + nbytes * ratio * link[1], _cost(link, nbytes))


def _cost(link, nbytes):
    """Seconds of one collective of nbytes: the comm model's latency + bytes x seconds per byte, or, for a
    link that carries measured NCCL rows and a per-plan NCCL floor (comm_links), the measured time
    (nccl_measured.interp_s) where the plan's engine runs NCCL at that size and a table applies, and, for a
    link that also carries the engine's own all-reduce kernel's measured rows, their time at or below the
    floor (nccl_measured.interp_custom_s)."""
    model = link[0] + nbytes * link[1]
    if len(link) == 2:
        return model
    rows, floor = link[2], link[3]
    meas = NM.interp_s(rows, nbytes)
    nccl = np.asarray(nbytes) > floor
    out = np.where(nccl & ~np.isnan(meas), meas, model)
    if len(link) == 5:  # the engine's own all-reduce kernel, measured, at or below the NCCL floor
        own = NM.interp_custom_s(link[4], nbytes)
        out = np.where(~nccl & ~np.isnan(own), own, out)
    return out


# Activation bytes per element that TensorRT-LLM's MoE all-gather moves under attention data parallelism
# (CutlassFusedMoE.forward_chunk, NVIDIA/TensorRT-LLM 1.0-1.1, tensorrt_llm/_torch/modules/fused_moe/
# fused_moe_cutlass.py): per-tensor FP8 and NVFP4 layers quantise the hidden states before the gather
# (1 byte; 0.5 byte + one fp8 scale per 16 elements), block-scaled FP8 (DeepSeek) and the other schemes
# gather bf16. vLLM's and SGLang's gathers move bf16 hidden states (ACT_BYTES).
MOE_GATHER_BYTES = {"fp8": 1.0, "nvfp4": 0.5 + 1.0 / 16}
# Routing results gathered with them: top-k expert ids (int32) and weights (fp32) per token.
MOE_GATHER_ROUTE_BYTES = 8.0


def moe_gather_bytes(names: tuple) -> np.ndarray:
    """MOE_GATHER_BYTES per weight scheme (ACT_BYTES where the scheme gathers bf16)."""
    return np.array([MOE_GATHER_BYTES.get(n, ACT_BYTES) for n in names])


def attn_dp_moe_comm_s(f, t, lk, hw, n, ls):
    """MoE communication of a stage under attention data parallelism: TensorRT-LLM takes its all-to-all
    only with multi-node NVLink (MNNVL: an NVLink domain larger than the node, e.g. GB200 NVL72) and
    ep > top_k (select_alltoall_method_type: NotEnabled when moe_ep_size <= top_k; DeepEP only on request);
    (hw["mnnvl"]: the node's NVLink domain spans more GPUs than the node holds); otherwise it all-gathers
    every rank's tokens before each
    MoE layer (hidden states at moe_gather_bytes, plus MOE_GATHER_ROUTE_BYTES x top_k) and
    reduce-scatters the bf16 layer outputs after it; each is a ring over the tp ranks on the real link
    (planner.estimate.comm.gather_s: (tp - 1) / tp of the gathered size). vLLM's default all2all backend
    (allgather_reducescatter) and SGLang's DP attention gather and scatter the same way, in bf16.
    Per stage: ls x (MoE layers / layers) x (gather + reduce-scatter) of the step's n tokens."""
    k = max(f.top_k, 1)
    trt = t["engine"] == E.TRTLLM
    q = np.where(trt, hw["gather_bpe"][t["wq"]], ACT_BYTES)
    gather = n * (f.hidden * q + MOE_GATHER_ROUTE_BYTES * k)
    scatter = n * f.hidden * ACT_BYTES
    ag_rs = _cost(lk["gather"], gather) + _cost(lk["reduce_scatter"], scatter)
    if hw["mnnvl"]:  # MNNVL all-to-all of the routed copies, there and back
        a2a = 2.0 * _cost(lk["all_to_all"], n * f.hidden * ACT_BYTES * k / t["tp"])
        ag_rs = np.where(trt & (t["ep"] > k), a2a, ag_rs)
    return ls * f.moe_layers / f.layers * ag_rs


def exp_rate_per_flop(gpu) -> float:
    """Attention FLOP/s per FLOP-per-score at which the softmax exponentials bind, at the serving
    clock and flash-attention fraction (planner.estimate.compute_attention.exp_bound_fps, BF16_FLOPS_PER_EXP)."""
    return exp_bound_fps(gpu, 1.0) * SUSTAINED_FRACTION * ATTN_FWD_OF_MAMF


def attention_fps(f, attn_fps, exp_per_flop):
    """(decode, prefill) attention FLOP/s: the tensor-core rate, or the exponential units' where they
    bind (2 x attention dimension / heads FLOPs per score and exponential: head dimension 64 on B200)."""
    return (np.minimum(attn_fps, exp_per_flop * 2.0 * f.attn_dim_decode / f.heads),
            np.minimum(attn_fps, exp_per_flop * 2.0 * f.attn_dim_prefill / f.heads))


def adp_attention_imbalance(t, n_dec, ctx_cv):
    """Slowest attention-data-parallel rank's decode attention over the mean rank's. Each rank attends over its
    own sequences, whose KV lengths differ, and every MoE layer exchanges the ranks' tokens (all-gather or
    all-to-all), so each layer waits for the rank with the most KV to read. The ranks hold equal counts (the
    engines assign new requests to the least-loaded rank; CUDA-graph padding evens them further), n = n_dec /
    ranks each, so a rank's summed context has relative spread ctx_cv / sqrt(n) (ctx_cv: one running sequence's,
    evaluate.running_context_cv), and the busiest of the ranks is expected_max_std_normal(ranks) spreads above
    the mean (order statistics of the normal approximation, as ep_load_imbalance). 1 without attention DP.
    APPROXIMATION: n counts the padded batch where the caller pads it (dummies add no spread: slightly low)."""
    ranks = np.where(t["attn_dp"], t["tp"], 1)
    if not np.any(ranks > 1) or not ctx_cv:
        return 1.0
    per = np.maximum(np.asarray(n_dec, dtype=float) / ranks, 1.0)
    return np.where(ranks > 1, 1.0 + expected_max_std_normal(ranks) * ctx_cv / np.sqrt(per), 1.0)


def stage_terms(f, t, lk, hw, n_dec, n_pf, ctx_dec, ctx_pf) -> dict:
    """Seconds of each term of one pipeline stage for a micro-batch of n_dec decode sequences (context
    ctx_dec) and n_pf prefill tokens (mean attended context ctx_pf), on one GPU (module doc); stage_s sums
    them (benchmarks/serve_worst_points.py prints them)."""
    lin, attn_fps, bw = hw["lin"][t["wq"]], hw["attn"], hw["bw"]
    bpe = hw["bpe"][t["wq"]]
    ls = stage_layers(f, t["pp"])
    tp, ta = t["tp"], attn_tp(t)
    n = n_dec + n_pf
    imb = ep_rank_imbalance(f, n, t["ep"]) if f.experts else 1.0
    linears = (f, ls, n, n_dec, tp, ta, hw["lin_dense"][t["wq"]], bw, hw["bpe_dense"][t["wq"]], hw["lin_mla"][t["wq"]],
               hw["bpe_mla"][t["wq"]])
    dense = dense_linear_s(*linears)
    if ATG.gfx942(hw["gpu_name"]):
        hb = HB.applies(t, hw["gpu_name"], n / (tp / ta))  # vLLM's per-tensor FP8 GEMMs through hipBLASLt
        if hb.any():
            dense = np.where(hb, dense_linear_s(*linears, row_tile=HB.ROW_TILE, blend_p=HB.BLEND_P), dense)
        on = ATG.applies(t, hw["gpu_name"])  # SGLang's default-tile Triton block-FP8 GEMMs (aiter_triton_gemm)
        dense = dense + ATG.default_tile_excess_s(f, ls, n / (tp / ta), tp, ta, hw["lin_dense"][t["wq"]], bw,
                                                  hw["bpe_dense"][t["wq"]], ATG.GFX942_CUS[hw["gpu_name"]], on)
    experts = expert_linear_s(f, ls, n, tp, lin, bw, bpe, t["ep"], hw["dequant"][t["wq"]], hw["weight_only"][t["wq"]],
                              imbalance=imb, trtllm_gen=E.plan_trtllm_gen_moe(t))
    elementwise = n * ls * activation_bytes_per_token(f, tp, ta, t["ep"], imb) / bw
    full, sw = kv_bytes_per_token(f, t, hw["kvb"][t["kv"]])
    group = np.where(t["attn_dp"], tp, 1)
    kv_read = n_dec / group * seq_kv_bytes(f, full, sw, ctx_dec)
    ctx_d = np.minimum(ctx_dec, f.window) * (1 - f.full_layers / f.layers) + ctx_dec * f.full_layers / f.layers \
        if f.window else ctx_dec
    dec_flops = 2.0 * n_dec * ctx_d * f.attn_dim_decode * ls / tp
    pf_flops = 2.0 * n_pf * ctx_pf * f.attn_dim_prefill * ls / tp
    dec_fps, pf_fps = attention_fps(f, attn_fps, hw["exp_per_flop"])
    decode_attn = np.maximum(kv_read / bw, dec_flops / dec_fps)
    decode_attn = decode_attn * adp_attention_imbalance(t, n_dec, hw["ctx_cv"])
    act = n * f.hidden * ACT_BYTES
    tp_comm = 2.0 * ls * tp_all_reduce_s(lk, act)
    dp_comm = attn_dp_moe_comm_s(f, t, lk, hw, n, ls) if f.moe_layers else 0.0  # dense: no MoE exchange
    comm_s = np.where(t["attn_dp"], dp_comm, tp_comm)
    p2p = np.where(t["pp"] > 1, _cost(lk["p2p"], act * 2.0), 0.0)  # send/recv to the next stage
    return {"dense_gemm": dense, "expert_gemm": experts, "moe_routing": moe_routing_s(f, ls, n),
            "elementwise": elementwise, "decode_attention": decode_attn,
            "prefill_attention": pf_flops / pf_fps + context_attention_fixed_s(f, ls, n_pf, attn_tp(t)),
            "decode_attention_fixed": decode_attention_fixed_s(f, ls, n_dec / group, attn_tp(t)),
            "collectives": comm_s + p2p, "kernel_launch": kernel_launch_s(f, t, ls),
            "weight_only_moe": weight_only_moe_fixed_s(f, ls, hw["weight_only"][t["wq"]])}


def stage_s(f, t, lk, hw, n_dec, n_pf, ctx_dec, ctx_pf):
    """Seconds of one pipeline stage: the sum of stage_terms, left to right in their order."""
    return sum(stage_terms(f, t, lk, hw, n_dec, n_pf, ctx_dec, ctx_pf).values())


# Host time of TensorRT-LLM's sampler per running request and iteration. MEASURED by NVIDIA: TorchSampler
# host overhead 11.3 ms per iteration at batch 1,000 (L40S server, ASSUMED an x86 host: the PR names the GPU
# only; Llama-3.2-1B, logprobs=0; NVIDIA/TensorRT-LLM PR 11983). Only the sampler: the scheduler and request
# bookkeeping add more (PR 10273: 45 ms per iteration at 1,536 requests per rank on GB200's Grace host, as
# quoted in the previous round's report, not re-read here) but no per-request figure
# of the whole host step is published for an x86 host, so the sampler figure is used as the lower bound
# for every host. TensorRT-LLM's overlap scheduler (disable_overlap_scheduler False by default,
# tensorrt_llm/llmapi/llm_args.py) prepares step n+1 on the host while the GPU runs step n, so the step
# takes max(GPU, host) (host_bound_s).
HOST_S_PER_REQUEST = 11.3e-6


def host_bound_s(t, n_dec):
    """Host time per iteration the overlapped GPU step cannot go below: HOST_S_PER_REQUEST x running
    requests per rank (n_dec / tp under attention data parallelism, where each rank schedules and
    samples its own requests; every rank of a tensor-parallel group handles all of them); TensorRT-LLM
    only (the measured sampler)."""
    per_rank = n_dec / np.where(t["attn_dp"], t["tp"], 1)
    return np.where(t["engine"] == E.TRTLLM, HOST_S_PER_REQUEST * per_rank, 0.0)


def overlaps_host_step(engine, version=E.PINNED_VERSION, pp=1, async_flag=False) -> np.ndarray:
    """Engines whose scheduler prepares the next step while the GPU runs this one (STEP_OVERHEAD_S):
    SGLang; TensorRT-LLM from 0.20 (engines.trtllm_overlap_scheduler: not the 0.17 PyTorch backend of the
    dstack rows); vLLM at releases that schedule asynchronously by default (engines.vllm_async_scheduling:
    from 0.14, the pinned 0.33 included; not the 0.4-0.10 releases of the published vLLM points), and at an
    earlier release launched with --async-scheduling (async_flag: engines.plan_async_scheduling)."""
    engine = np.asarray(engine)
    return (((engine == E.TRTLLM) & E.trtllm_overlap_scheduler(version)) | (engine == E.SGLANG)
            | ((engine == E.VLLM) & E.vllm_async_scheduling(version, pp, async_flag)))


def _step_s(f, t, lk, hw, stage_dec, stage_pf, ctx_dec, ctx_pf, micro_batches, host_dec):
    """micro_batches x one stage's time for a micro-batch of stage_dec decoding sequences and stage_pf prefill
    tokens (lk: comm_links of the table; no shorter than eager_issue_s where the release runs its steps
    without CUDA graphs, engines.decode_graphs), with the host step max(STEP_OVERHEAD_S, host_bound_s of
    host_dec running requests): max(GPU, host) where the engine overlaps them (overlaps_host_step), else
    GPU + host."""
    pp = t["pp"]
    version = E.plan_engine_version(t)
    stage = stage_s(f, t, lk, hw, stage_dec, stage_pf, ctx_dec, ctx_pf)
    graphs = E.decode_graphs(t["engine"], version, E.plan_graph_padding(t))
    eager = 0.0 if graphs.all() else np.where(graphs, 0.0, eager_issue_s(f, t, stage_layers(f, pp)))
    gpu = micro_batches * np.maximum(stage, eager)
    host = np.maximum(STEP_OVERHEAD_S, host_bound_s(t, host_dec))
    overlap = overlaps_host_step(t["engine"], version, pp, E.plan_async_scheduling(t))
    return np.where(overlap, np.maximum(gpu, host), gpu + host)


def iteration_s(f, t, lk, hw, n_dec, n_pf, ctx_dec, ctx_pf):
    """One engine iteration: pp micro-batches (n_dec / pp decodes and n_pf / pp prefill tokens each)
    through pp stages, and the iteration's host step (_step_s)."""
    pp = t["pp"]
    return _step_s(f, t, lk, hw, n_dec / pp, n_pf / pp, ctx_dec, ctx_pf, pp, n_dec)


def micro_batch_s(f, t, lk, hw, n_dec, n_pf, ctx_dec, ctx_pf):
    """Seconds one pipeline stage holds one micro-batch of n_dec decode sequences and n_pf prefill tokens,
    with the micro-batch's host step (_step_s; each micro-batch is a batch of its own to the scheduler: vLLM V1
    schedules one per entry of its batch queue, max_concurrent_batches = pp, vllm/v1/engine/core.py
    step_with_batch_queue). With pp = 1 it equals iteration_s (one micro-batch is the whole iteration)."""
    return _step_s(f, t, lk, hw, n_dec, n_pf, ctx_dec, ctx_pf, 1, n_dec)


def mg1_wait_quantile(lam, es, es2, q: float):
    """q-quantile of the waiting time in an M/G/1 queue (Poisson arrivals lam, FCFS, service S with mean es
    and second moment es2). The mean is exact, Pollaczek-Khinchine: Wq = lam E[S^2] / (2 (1 - rho)),
    rho = lam E[S] (Kleinrock 1975, Vol. 1, ch. 5), half of M/M/1's for a fixed service time; so is
    P(W > 0) = rho (one server, Poisson arrivals see time averages). The distribution is approximated by
    the exponential tail with that atom and that mean, P(W > t) = rho exp(-(rho / Wq) t): the form
    P(W > t) ~ alpha exp(-eta t) of Abate, Choudhury & Whitt, "Exponential approximations for tail
    probabilities in queues, I: waiting times", Oper. Res. 43(5), 1995, with alpha / eta = E[W] as they
    propose but eta from the exact atom instead of the asymptotic decay rate. It is exact for exponential
    service (the M/M/1 tail rho exp(-mu (1 - rho) t), Kleinrock 1975, Vol. 1, Sec. 3.2), and as rho -> 1 its rate rho / Wq -> 2 (1 - rho) E[S] / E[S^2], Kingman's
    heavy-traffic exponential limit (Kingman 1961). t_q = ln(rho / (1 - q)) / eta (mg1_tail); 0 when
    rho <= 1 - q; inf when unstable (rho >= 1)."""
    rho, eta = mg1_tail(lam, es, es2)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.log(np.maximum(rho, 1e-30) / (1 - q)) / eta
    return np.where(rho >= 1, np.inf, np.where(rho <= 1 - q, 0.0, t))


def mg1_within(lam, es, es2, t):
    """P(W <= t) in M/G/1 with mg1_wait_quantile's tail, 1 - rho exp(-eta t); 0 when unstable."""
    rho, eta = mg1_tail(lam, es, es2)
    with np.errstate(invalid="ignore", over="ignore"):
        decay = eta * np.maximum(t, 0)
    return np.where(rho >= 1, 0.0, np.where(t < 0, 0.0, 1 - rho * np.exp(-decay)))


def mg1_tail(lam, es, es2):
    """(rho, eta) of mg1_wait_quantile's tail P(W > t) = rho exp(-eta t): rho = lam E[S] and the decay rate
    eta = rho / Wq = 2 (1 - rho) E[S] / E[S^2] (0 when unstable)."""
    lam, es, es2 = (np.asarray(x, dtype=float) for x in (lam, es, es2))
    rho = lam * es
    return rho, 2.0 * np.maximum(1.0 - rho, 0.0) * es / np.maximum(es2, 1e-300)
