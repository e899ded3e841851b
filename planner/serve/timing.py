"""Time of a serving engine step, throughput and latency, vectorised over a plan table.

One engine iteration (continuous batching with chunked prefill) carries `n_dec` decoding sequences
(one token each) and `n_pf` prefill tokens. Per GPU of a pipeline stage:
* weight matmuls: dense parts (attention projections, dense / shared MLP, LM head) as one roofline
  (in bf16 under an MoE-only scheme such as MXFP4: engines.dense_scheme),
  max(2 x tokens x parameters / tp / achievable FLOP/s, weight bytes / achievable HBM bandwidth);
  routed experts as one roofline per expert GEMM (expert_linear_s): only touched experts are read
  (1 - (1 - k/E)^N of them with N tokens, top-k of E) and each computes its rows padded to whole
  GEMM tiles. Achievable FLOP/s (rates(), the one place the serving efficiency is set) = dense peak
  of the plan's tensor-core format x the GPU's measured MAMF fraction (catalogs/gpus.yaml
  `matmul_efficiency`, ml-engineering) x SUSTAINED_FRACTION below;
  FP4 at the FP8 MAMF throughput (FP4_AT_FP8_THROUGHPUT: a stated choice; no FP4 MAMF is published).
* activations between kernels: every GEMM output written and read once in bf16, MoE dispatch /
  combine copies, fused residual-add + RMSNorm (activation_bytes_per_token), at HBM bandwidth.
* attention: decode reads each sequence's KV cache once per step (memory-bound, HBM) or is
  bound by its FLOPs (MLA's absorbed form); prefill attention is compute-bound, 2 x context x
  H x (d_qk + d_v) per token and layer under the causal mask, at the flash-attention fraction of
  MAMF (planner.estimate.compute.ATTN_FWD_OF_MAMF, Dao 2023).
* tensor parallelism: two all-reduces of tokens x hidden bf16 per layer on the real link
  (planner.estimate.comm); attention data parallelism instead exchanges the routed tokens with an
  all-to-all before and after each MoE layer; pipeline stages pass tokens x hidden with send/recv.
* pipeline parallelism: the batch is cut into pp micro-batches that keep every stage busy, so one
  iteration takes pp x (stage time of one micro-batch).
* a fixed engine overhead per iteration (scheduling, sampling, launch) named below.
"""

from __future__ import annotations

import numpy as np

from planner.estimate import comm
from planner.estimate.compute import ATTN_FWD_OF_MAMF, DEFAULT_MAMF, HBM_EFFICIENCY
from planner.serve import engines as E
from planner.serve.memory import ACT_BYTES, attn_tp, kv_bytes_per_token, seq_kv_bytes, stage_layers

# Host-side work per engine iteration that the GPU waits for (scheduler, sampler, detokeniser
# hand-off, kernel launches outside CUDA graphs). Assumed: vLLM's V1 blog (Jan 2025) and SGLang's
# overlap scheduler both describe reducing it to about a millisecond or less by overlapping the CPU
# with the previous GPU step; we take 1 ms for every engine.
STEP_OVERHEAD_S = 1.0e-3

# The fraction of the best-shape MAMF that serving GEMMs sustain in this roofline. FITTED, not
# measured: it is the value once fitted on the training calibration runs
# (shared/calibration/published_runs.yaml, 27 Megatron runs; mean error 6.7% at 0.90). The training
# model has since replaced it with GEMM time = arithmetic at MAMF + operand/output traffic + launch
# (planner.estimate.compute); the serving roofline keeps the fraction until it moves to the same
# form (its dense points are within about 7% with it, benchmarks/serving_accuracy.md).
SUSTAINED_FRACTION = 0.90


# FP4 (NVFP4 / MXFP4 on Blackwell tensor cores): no FP4 MAMF measurement is published (hardware
# facts list FP8 and BF16 MAMF only). CHOSEN, not measured: FP4 GEMMs are credited with the FP8
# MAMF *throughput* (the FP8 peak x its measured fraction), i.e. no speed-up over FP8 is claimed.
# Chosen against the 42 published dense FP4 points (benchmarks/serving_accuracy.md): crediting
# FP4 with FP8's fraction of the doubled FP4 peak predicts them 35% off on average (all too fast),
# this choice 12% (compute-bound rows such as MLPerf v4.1 B200 then come out 13-28% slow: the
# achieved FP4 rate lies in between; no per-shape NVFP4 GEMM measurement on B200 is published).
FP4_AT_FP8_THROUGHPUT = True


def rates(gpu, wq_names: tuple) -> tuple[np.ndarray, float, float]:
    """(achievable linear FLOP/s per weight scheme, attention FLOP/s, achievable HBM bytes/s): the one
    place the serving model sets GEMM efficiency (peak of the format x measured MAMF fraction x the
    SUSTAINED_FRACTION; FP4 per FP4_AT_FP8_THROUGHPUT)."""
    eff = gpu.matmul_efficiency
    e16 = (eff.bf16 or DEFAULT_MAMF) * SUSTAINED_FRACTION
    e8 = (eff.fp8 or eff.bf16 or DEFAULT_MAMF) * SUSTAINED_FRACTION
    peak = {"bf16": (gpu.tflops.bf16 or gpu.tflops.fp16 or 0.0) * e16,
            "fp16": (gpu.tflops.fp16 or 0.0) * e16,
            "fp8": (gpu.tflops.fp8 or 0.0) * e8,
            "fp4": ((gpu.tflops.fp8 if FP4_AT_FP8_THROUGHPUT else gpu.tflops.fp4) or 0.0) * e8,
            "int8_ampere": 2.0 * (gpu.tflops.bf16 or 0.0) * e16}
    lin = np.array([peak.get(E.compute_precision(n, gpu) or "bf16", 0.0) for n in wq_names]) * 1e12
    attn = (gpu.tflops.bf16 or gpu.tflops.fp16 or 0.0) * e16 * ATTN_FWD_OF_MAMF * 1e12
    return lin, attn, gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY


# Grouped expert GEMMs pad each expert's rows to whole output tiles ("tile quantization", NVIDIA
# Deep Learning Performance guide, Matrix Multiplication Background); CUTLASS / cuBLAS Hopper and
# Blackwell kernels tile 64-256 rows, 128 the common height (the training model's GEMM_TILE_ROWS).
GEMM_TILE_ROWS = 128


def padded_rows(n):
    """Token rows a GEMM computes: n rounded up to whole output tiles of GEMM_TILE_ROWS."""
    return np.ceil(np.asarray(n, dtype=float) / GEMM_TILE_ROWS) * GEMM_TILE_ROWS


def dense_linear_s(f, ls, n, n_dec, tp, ta, lin, bw, bpe):
    """Attention projections, dense / shared MLPs and the LM head of n tokens on one GPU: one
    roofline, max(2 x rows x params / lin, weight bytes / bw), rows = the step's tokens padded to
    whole GEMM tiles (padded_rows; the tile quantization the expert GEMMs already pay: MAMF is
    measured on tile-aligned shapes, and a decode step of 190 sequences computes 256 rows); the LM
    head only for decode tokens."""
    dp = tp / ta  # attention data parallelism: each rank's own n / tp tokens (1 under plain tp)
    rows, rows_dec = padded_rows(n / dp) * dp, padded_rows(n_dec / dp) * dp
    flops = 2.0 * rows * ls * (f.attn + f.dense_mlp + f.shared) / tp + 2.0 * rows_dec * f.vocab * f.hidden / ta
    w_read = ls * (f.attn + f.dense_mlp + f.shared) * bpe / ta + f.vocab * f.hidden * 2.0 / ta
    return np.maximum(flops / lin, w_read / bw)


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


def expert_linear_s(f, ls, n, tp, lin, bw, bpe, ep=1):
    """Routed experts of n tokens on one GPU, one roofline per expert GEMM (not per layer): with
    top-k of E experts, a share 1 - (1 - k/E)^n of them is touched (expected, uniform routing),
    each by r = n k / (E x touched) rows padded to GEMM_TILE_ROWS; an expert is read once and
    computed on its padded rows: touched x routed / tp x max(2 pad(r) x imbalance / lin, bytes / bw),
    imbalance = ep_load_imbalance (the busiest of ep expert-parallel ranks sets the time)."""
    if not f.experts:
        return 0.0
    touched = 1.0 - (1.0 - f.top_k / f.experts) ** n
    rows = n * f.top_k / (f.experts * np.maximum(touched, 1e-12))
    padded = np.ceil(rows / GEMM_TILE_ROWS) * GEMM_TILE_ROWS
    imb = np.where(np.asarray(ep) > 1, ep_load_imbalance(f, n, np.maximum(ep, 2)), 1.0)
    return ls * touched * f.routed / tp * np.maximum(2.0 * padded * imb / lin, bpe / bw)


def activation_bytes_per_token(f, tp, ta):
    """HBM bytes per token and layer of the tensors between kernels (bf16): every GEMM output is
    written once and read once by the next kernel (q/k/v, attention output, o_proj, gate/up, the
    SwiGLU product, the down projection of each routed copy), MoE dispatch and combine copy the
    hidden vector per routed copy (read + write), and two fused residual-add + RMSNorm kernels read
    the input and residual and write both (8 x hidden). TP ranks hold the whole residual stream."""
    qkv = f.attn_dim_prefill / 2 + f.kv_elems
    copies = max(f.top_k, 1)
    gemm_out = qkv / ta + f.hidden + 3.0 * f.ffn_per_token / tp + (copies - 1) * f.hidden / tp
    dispatch = 2.0 * copies * f.hidden / tp if f.experts else 0.0
    return ACT_BYTES * (2.0 * gemm_out + dispatch + 8.0 * f.hidden / np.where(ta == 1, tp, 1))


def comm_links(node, t) -> dict:
    """(latency s, seconds per byte) of each collective a serving step uses, per plan: the
    planner.estimate.comm costs are affine in the message size (latency + bytes / bandwidth on the
    slowest hop), so they are evaluated once per plan table instead of once per step size."""
    tp = t["tp"]
    big = 1e9

    def affine(fn, size, stride):
        a0 = fn(node, 0.0, size, stride)
        return a0, (fn(node, big, size, stride) - a0) / big

    return {"all_reduce": affine(comm.all_reduce_s, tp, 1), "all_to_all": affine(comm.all_to_all_s, tp, 1),
            "p2p": affine(comm.gather_s, 2, tp)}


def _cost(link, nbytes):
    return link[0] + nbytes * link[1]


def stage_s(f, t, lk, hw, n_dec, n_pf, ctx_dec, ctx_pf):
    """Seconds of one pipeline stage for a micro-batch of n_dec decode sequences (context ctx_dec)
    and n_pf prefill tokens (mean attended context ctx_pf), on one GPU (module doc)."""
    lin, attn_fps, bw = hw["lin"][t["wq"]], hw["attn"], hw["bw"]
    bpe = hw["bpe"][t["wq"]]
    ls = stage_layers(f, t["pp"])
    tp, ta = t["tp"], attn_tp(t)
    n = n_dec + n_pf
    gemm = dense_linear_s(f, ls, n, n_dec, tp, ta, hw["lin_dense"][t["wq"]], bw, hw["bpe_dense"][t["wq"]]) + expert_linear_s(f, ls, n, tp, lin, bw, bpe, t["ep"])
    elementwise = n * ls * activation_bytes_per_token(f, tp, ta) / bw
    full, sw = kv_bytes_per_token(f, t, hw["kvb"][t["kv"]])
    group = np.where(t["attn_dp"], tp, 1)
    kv_read = n_dec / group * seq_kv_bytes(f, full, sw, ctx_dec)
    ctx_d = np.minimum(ctx_dec, f.window) * (1 - f.full_layers / f.layers) + ctx_dec * f.full_layers / f.layers \
        if f.window else ctx_dec
    dec_flops = 2.0 * n_dec * ctx_d * f.attn_dim_decode * ls / tp
    pf_flops = 2.0 * n_pf * ctx_pf * f.attn_dim_prefill * ls / tp
    attention = np.maximum(kv_read / bw, dec_flops / attn_fps) + pf_flops / attn_fps
    act = n * f.hidden * ACT_BYTES
    tp_comm = 2.0 * ls * _cost(lk["all_reduce"], act)
    moe_share = f.moe_layers / f.layers
    a2a = 2.0 * ls * moe_share * _cost(lk["all_to_all"], act * max(f.top_k, 1) / tp)
    comm_s = np.where(t["attn_dp"], a2a, tp_comm)
    p2p = np.where(t["pp"] > 1, _cost(lk["p2p"], act * 2.0), 0.0)  # send/recv to the next stage
    return gemm + elementwise + attention + comm_s + p2p


def iteration_s(f, t, lk, hw, n_dec, n_pf, ctx_dec, ctx_pf):
    """One engine iteration: pp micro-batches through pp stages, plus the engine overhead
    (lk: comm_links of the table)."""
    pp = t["pp"]
    return pp * stage_s(f, t, lk, hw, n_dec / pp, n_pf / pp, ctx_dec, ctx_pf) + STEP_OVERHEAD_S


def mm1_wait_quantile(lam, mu, q: float):
    """q-quantile of the waiting time in an M/M/1 queue: P(W > t) = rho exp(-mu (1 - rho) t)
    (Kleinrock 1975, Vol. 1, Sec. 3.2); 0 when rho <= 1 - q; inf when unstable."""
    rho = lam / np.maximum(mu, 1e-30)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.log(np.maximum(rho, 1e-30) / (1 - q)) / (mu * (1 - rho))
    return np.where(rho >= 1, np.inf, np.where(rho <= 1 - q, 0.0, t))


def mm1_within(lam, mu, t):
    """P(W <= t) in M/M/1."""
    rho = lam / np.maximum(mu, 1e-30)
    return np.where(rho >= 1, 0.0, np.where(t < 0, 0.0, 1 - rho * np.exp(-mu * (1 - rho) * np.maximum(t, 0))))
