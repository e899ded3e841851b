"""DeepSeek-R1 attention-DP decode-heavy rows of the TensorRT-LLM performance overview: can a rank reach the published
rate at the batch trtllm-bench's heuristic gives it? NVIDIA's own measured kernel times against the step the published
rate implies, and the planner's decode step terms at the same batch.

A rank at b sequences and the published output rate R (tokens/s per GPU) must finish one decode step in b / R. NVIDIA
AIConfigurator's measured TensorRT-LLM tables (github.com/ai-dynamo/aiconfigurator @095f58a5, Apache-2.0; the extracts
benchmarks/moe_kernel_aic.csv and benchmarks/mla_decode_aic.csv, see moe_kernel_check.py / mla_decode_check.py) give
two of that step's parts: the fused MoE layer (CUTLASS backend, as the page's DeepSeek-R1 llm_options set; tokens
entering the layer = b x attention-DP ranks, interpolated linearly in tokens, held at the 256-token value below it,
where the CUTLASS layer time is flat) times the MoE layers, and the generation-MLA kernel (128 heads, FP8 KV;
bilinear in batch and KV length) times all layers at the mean context isl + osl / 2 of a fixed-length run. Their sum
is a lower bound of the step (dense GEMMs, all-gathers, norms and the host are left out). GB200 takes the B200 MLA
table (no GB200 MLA table in the extract; same Blackwell SM) and its own MoE table (1.3.0rc10).

Rows: the page's (NVIDIA/TensorRT-LLM docs/source/developer-guide/perf-overview.md @03e27c7d) DeepSeek-R1 1024/8192
rows with the per-rank max_batch_size benchmarks/serving_accuracy.py derives for them (trtllm_bench_limits), and the
per-rank batch the planner reaches when that limit is lifted (the KV pool binds).

    python benchmarks/dsr1_decode_step_check.py
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MOE = ROOT / "benchmarks" / "moe_kernel_aic.csv"
MLA = ROOT / "benchmarks" / "mla_decode_aic.csv"

# DeepSeek-R1 (public config.json): 61 layers, the first 3 dense, hidden 7168, 256 experts of width 2048, top-8
LAYERS, MOE_LAYERS = 61, 58
# (row, GPU in the MoE table, GPU in the MLA table, MoE format, attention-DP ranks = ep, isl, osl, published tok/s/GPU)
ROWS = [
    ("trtllm-po-b200-dsr1-dep4-fp4-1024-8192", "b200", "b200", "nvfp4", 4, 1024, 8192, 3862.0),
    ("trtllm-po-gb200-dsr1-dep4-fp4-1024-8192", "gb200", "b200", "nvfp4", 4, 1024, 8192, 4379.0),
    ("trtllm-po-h200-dsr1-dep8-fp8-1024-8192", "h200-sxm-141gb", "h200", "fp8_block", 8, 1024, 8192, 1218.0),
]


def moe_layer_ms(gpu: str, dtype: str, ep: int, tokens: float) -> float:
    """Measured CUTLASS MoE layer (DeepSeek shapes, moe_tp 1, moe_ep ep) at `tokens` entering it."""
    pts = sorted((float(r["tokens"]), float(r["latency_ms"])) for r in csv.DictReader(MOE.open())
                 if r["gpu"] == gpu and r["dtype"] == dtype and r["hidden"] == "7168" and r["expert_ffn"] == "2048"
                 and r["experts"] == "256" and r["top_k"] == "8" and r["moe_tp"] == "1" and int(r["moe_ep"]) == ep)
    if not pts:
        raise SystemExit(f"error: {MOE.name} has no {gpu} {dtype} ep{ep} DeepSeek MoE rows")
    t, ms = zip(*dict(pts).items())
    return float(np.interp(tokens, t, ms))


def mla_layer_ms(gpu: str, batch: float, kv_len: float) -> float:
    """Measured generation-MLA kernel (128 heads, FP8 KV), bilinear in batch and KV length."""
    rows = [r for r in csv.DictReader(MLA.open()) if r["gpu"] == gpu and r["kv"] == "fp8"]
    bs = sorted({int(r["batch"]) for r in rows})
    at = {(int(r["batch"]), int(r["kv_len"])): float(r["latency_ms"]) for r in rows}
    per_b = [float(np.interp(kv_len, *zip(*sorted((s, v) for (b, s), v in at.items() if b == bb))))
             for bb in bs]
    return float(np.interp(batch, bs, per_b))


def aic_lower_ms(moe_gpu, mla_gpu, dtype, ep, isl, osl, b) -> tuple[float, float]:
    ctx = isl + osl / 2
    return MOE_LAYERS * moe_layer_ms(moe_gpu, dtype, ep, b * ep), LAYERS * mla_layer_ms(mla_gpu, b, ctx)


def planner_terms(rid: str, lift: bool) -> dict:
    """The planner's per-rank batch and decode step terms (ms) for the row, at trtllm-bench's limit or without it."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import serve_moe_rows as R
    import serve_worst_points as W
    import serving_accuracy as SA

    orig = SA.trtllm_bench_limits
    if lift:  # the KV pool (planner memory model) binds instead of max_batch_size
        SA.trtllm_bench_limits = lambda *a: (lambda o: None if o is None else (4096, o[1]))(orig(*a))
    try:
        r = next(x for x in R.records() if x["id"] == rid)
        return W.breakdown(r)
    finally:
        SA.trtllm_bench_limits = orig


def main() -> int:
    print("| row | per-rank b | step the published rate needs (ms) | AIC MoE (ms) | AIC MLA (ms) | AIC lower bound "
          "(ms) | planner decode step (ms): MoE+route / attention / rest |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for rid, moe_gpu, mla_gpu, dtype, ep, isl, osl, rate in ROWS:
        for lift in (False, True):
            d = planner_terms(rid, lift)
            b = d["b"] / ep
            moe, mla = aic_lower_ms(moe_gpu, mla_gpu, dtype, ep, isl, osl, b)
            ms = d["ms"]
            pm = ms["expert_gemm"] + ms["moe_routing"]
            pa = ms["decode_attention"] + ms["decode_attention_fixed"]
            print(f"| {rid} ({'KV-bound' if lift else 'trtllm-bench limit'}) | {b:.0f} | {1e3 * b / rate:.1f} | "
                  f"{moe:.1f} | {mla:.1f} | {moe + mla:.1f} | {d['decode_ms']:.1f}: {pm:.1f} / {pa:.1f} / "
                  f"{d['decode_ms'] - pm - pa:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
