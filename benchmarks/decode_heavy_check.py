"""Dense decode-heavy serving points (output >= 4 x input) on NVIDIA GPUs: the serving model's decode-step terms
against NVIDIA's measured per-operation tables, and the KV-capacity and host-step limits at their batch.

Checks (benchmarks/decode_heavy_results.md reads them):
1. Decode attention at large batch x long context: model (KV bytes at planner.estimate.compute_gemm.HBM_EFFICIENCY
   x peak + timing.DECODE_ATTN_SEQ_KVHEAD_S per (sequence, KV head) + one kernel launch, GEMM_LAUNCH_S) over the
   measured TensorRT-LLM generation attention (benchmarks/decode_attn_aic.csv), full attention, by GPU, version,
   KV format, head size, batch and context.
2. Dense GEMMs at decode rows: model (timing.dense_linear_s's roofline for one GEMM: max(2 x padded rows x n x k
   / achievable rate, weights / achievable HBM) + GEMM_LAUNCH_S, rates from timing.rates) over NVIDIA's measured
   TensorRT-LLM GEMMs (benchmarks/gemm_decode_aic.csv: AIConfigurator @095f58a5,
   systems/data/<gpu>/gemm/trtllm/<version>/gemm_perf.parquet; H100 / H200 / B200 1.2.0rc5, GB200 1.3.0rc10;
   bfloat16, fp8 (per-tensor) and nvfp4; n, k in 2,048-16,384, the Llama 8B-405B projections at TP 1-8;
   m = 128-8,192 rows). Median ratio over the shapes per GPU, format and m.
3. KV capacity: the running batch the model gives each dense decode-heavy NVIDIA point (TensorRT-LLM reserves
   input + output at admission, GUARANTEED_NO_EVICT, memory.memory_table), the same with the 32-token KV
   blocks rounded up per sequence (TensorRT-LLM KvCacheConfig tokens_per_block default 32), and the predicted
   throughput with free_gpu_memory_fraction 0.95, which the performance overview says it uses "in many cases"
   (perf-overview.md, NVIDIA/TensorRT-LLM @00f37686) instead of the model's 0.90 default.
4. Host: timing.host_bound_s (TensorRT-LLM sampler, HOST_S_PER_REQUEST per running request) against the GPU
   decode step at each point's running batch (benchmarks/serve_worst_points.breakdown).

    python benchmarks/decode_heavy_check.py                       # print and rewrite benchmarks/decode_heavy_tables.md
    python benchmarks/decode_heavy_check.py --check               # print only
    python benchmarks/decode_heavy_check.py --extract CHECKOUT    # rebuild gemm_decode_aic.csv first
                                                                  # (CHECKOUT: an aiconfigurator git checkout)
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import aic_data  # noqa: E402
from planner import catalog  # noqa: E402
from planner.estimate.compute_gemm import GEMM_LAUNCH_S, HBM_EFFICIENCY  # noqa: E402
from planner.serve import engines as E  # noqa: E402
from planner.serve import timing  # noqa: E402

ATTN = ROOT / "benchmarks" / "decode_attn_aic.csv"
GEMM = ROOT / "benchmarks" / "gemm_decode_aic.csv"
REPORT = ROOT / "benchmarks" / "decode_heavy_tables.md"
GEMM_TABLES = {"h100-sxm-80gb": "h100_sxm/gemm/trtllm/1.2.0rc5", "h200-sxm-141gb": "h200_sxm/gemm/trtllm/1.2.0rc5",
               "b200": "b200_sxm/gemm/trtllm/1.2.0rc5", "gb200": "gb200/gemm/trtllm/1.3.0rc10"}
GEMM_DTYPES = {"bfloat16": "bf16", "fp8": "fp8", "nvfp4": "nvfp4"}  # AIConfigurator gemm_dtype -> weight scheme
GEMM_NK = (2048, 4096, 8192, 16384)
GEMM_M = (128, 256, 512, 1024, 2048, 4096, 8192)
KV_BLOCK_TOKENS = 32  # TensorRT-LLM KvCacheConfig.tokens_per_block default
PERF_OVERVIEW_FREE_FRACTION = 0.95


def extract(repo: Path) -> None:
    """gemm_decode_aic.csv from an aiconfigurator checkout: gpu, dtype, m, n, k, latency_ms."""
    out = []
    for gpu, rel in GEMM_TABLES.items():
        df = aic_data.table(repo, f"{rel}/gemm_perf.parquet")
        df = df[df["gemm_dtype"].isin(list(GEMM_DTYPES)) & df["m"].isin(GEMM_M) & df["n"].isin(GEMM_NK)
                & df["k"].isin(GEMM_NK)]
        for r in df.groupby(["gemm_dtype", "m", "n", "k"])["latency"].mean().reset_index().itertuples():
            out.append({"gpu": gpu, "dtype": r.gemm_dtype, "m": int(r.m), "n": int(r.n), "k": int(r.k),
                        "latency_ms": f"{r.latency:.6g}"})
    aic_data.write_csv(GEMM, ["gpu", "dtype", "m", "n", "k", "latency_ms"], out)


def attention_ratios(min_batch: int = 256) -> dict:
    """{(gpu, version, kv, head size, batch, context): [model / measured per KV-head count]}, full attention."""
    out = defaultdict(list)
    for r in csv.DictReader(ATTN.open()):
        b, ctx = int(r["batch"]), int(r["context"])
        if r["window"] != "0" or b < min_batch:
            continue
        gpu = catalog.gpu(r["gpu"])
        bw = gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY
        units = b * float(r["kv_heads"])
        kv = units * ctx * 2 * float(r["head_dim"]) * (1.0 if r["kv_dtype"] == "fp8" else 2.0)
        model = GEMM_LAUNCH_S + kv / bw + units * timing.DECODE_ATTN_SEQ_KVHEAD_S
        out[(r["gpu"], r["trtllm"], r["kv_dtype"], int(r["head_dim"]), b, ctx)].append(
            model / (float(r["latency_ms"]) * 1e-3))
    return out


@lru_cache(maxsize=None)
def _gemm_rates(gpu_name: str, scheme: str) -> tuple[float, float]:
    """(achievable dense GEMM FLOP/s, achievable HBM bytes/s) of the scheme on the GPU (timing.rates)."""
    lin, _, bw = timing.rates(catalog.gpu(gpu_name), (scheme,), dense_gemm=True)
    return float(lin[0]), float(bw)


def gemm_model_s(gpu, dtype: str, m, n, k):
    """One dense GEMM as the serving model charges it (timing.dense_linear_s for a single GEMM)."""
    scheme = GEMM_DTYPES[dtype]
    lin, bw = _gemm_rates(gpu.name, scheme)
    bpe = E.weight_bytes_per_element(scheme)
    return np.maximum(2.0 * timing.padded_rows(m) * n * k / lin, n * k * bpe / bw) + GEMM_LAUNCH_S


def gemm_ratios() -> dict:
    """{(gpu, dtype): {m: [model / measured over the (n, k) shapes]}}."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for r in csv.DictReader(GEMM.open()):
        m, n, k = int(r["m"]), int(r["n"]), int(r["k"])
        model = float(gemm_model_s(catalog.gpu(r["gpu"]), r["dtype"], m, n, k))
        out[(r["gpu"], r["dtype"])][m].append(model / (float(r["latency_ms"]) * 1e-3))
    return out


def block_rounded(tokens: float, block: int = KV_BLOCK_TOKENS) -> float:
    """Tokens a sequence's KV blocks hold: tokens rounded up to whole blocks."""
    return float(np.ceil(tokens / block) * block)


def decode_heavy_points() -> list[tuple[dict, dict]]:
    """(accuracy row, point) of the dense fixed-length decode-heavy points on NVIDIA GPUs."""
    import serving_accuracy as S
    import serve_worst_points as W

    pts = {p["id"]: p for p in W.points()}
    return [(r, pts[r["id"]]) for r in S.run() if S.regime(r) == "decode-heavy" and r["vendor"] == "NVIDIA"]


def predicted_with_free_fraction(point: dict, fraction: float) -> float:
    """The point's predicted output tokens/s (as serving_accuracy computes it) with TensorRT-LLM's
    free_gpu_memory_fraction set to `fraction` (the model constant is restored afterwards)."""
    import serving_accuracy as S
    from planner.serve.plan import parse_serve_plan
    from planner.serve.search import estimate_serving

    old = E.TRTLLM_FREE_GPU_MEMORY_FRACTION
    E.TRTLLM_FREE_GPU_MEMORY_FRACTION = fraction
    try:
        sc, plan, _ = S.point_scenario(point)
        est = estimate_serving(sc, parse_serve_plan(plan, sc))
        est["_out_mean"] = float(point["workload"]["output_len"])
        return S.finite_run_throughput(point, est)
    finally:
        E.TRTLLM_FREE_GPU_MEMORY_FRACTION = old


def _med(v) -> str:
    return f"{np.median(v):.2f}"


def attention_lines() -> list[str]:
    rat = attention_ratios()
    lines = ["## 1. Decode attention, batch >= 256 (model / measured; < 1: the model is faster)", "",
             "| GPU | TensorRT-LLM | KV | head | batch | context 32 | 256 | 2,048 | 16,384 |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    keys = sorted({k[:5] for k in rat})
    for key in keys:
        cells = [_med(rat[key + (c,)]) if rat.get(key + (c,)) else "-" for c in (32, 256, 2048, 16384)]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4]} | " + " | ".join(cells) + " |")
    return lines


def gemm_lines() -> list[str]:
    rat = gemm_ratios()
    lines = ["## 2. Dense GEMMs (model / measured, median over n, k in 2,048-16,384; < 1: the model is faster)", "",
             "| GPU | format | " + " | ".join(f"m {m}" for m in GEMM_M) + " | m 512-1024 over m 4096-8192 |",
             "|---|---|" + "---:|" * (len(GEMM_M) + 1)]
    for (gpu, dt), by_m in sorted(rat.items()):
        dec = np.median(by_m[512] + by_m[1024])
        pf = np.median(by_m[4096] + by_m[8192])
        lines.append(f"| {gpu} | {dt} | " + " | ".join(_med(by_m[m]) if by_m.get(m) else "-" for m in GEMM_M)
                     + f" | {dec / pf:.2f} |")
    return lines


def capacity_lines(points) -> list[str]:
    import serve_worst_points as W

    lines = ["## 3-4. KV capacity and host step at the running batch (dense decode-heavy NVIDIA points)", "",
             "| point | error | running batch | KV-limited | block rounding | error at free fraction 0.95 | "
             "host bound / GPU decode step (ms) |", "|---|---:|---:|---|---:|---:|---:|"]
    for r, p in points:
        d = W.breakdown(p)
        i, o = (float(x) for x in r["lengths"])
        grow = block_rounded(i + o) / (i + o)
        hi = predicted_with_free_fraction(p, PERF_OVERVIEW_FREE_FRACTION)
        host = float(timing.HOST_S_PER_REQUEST * d["b"]) * 1e3  # timing.host_bound_s at the running batch
        gpu_ms = d["decode_ms"]
        lines.append(f"| {r['id']} | {100 * r['error']:+.1f}% | {d['b']:.0f} | "
                     f"{'yes' if d['regime'] == 'KV-limited' else 'no'} | +{100 * (grow - 1):.1f}% KV | "
                     f"{100 * (hi - r['measured']) / r['measured']:+.1f}% | {host:.1f} / {gpu_ms:.1f} |")
    return lines


def main(argv: list[str]) -> int:
    if argv[:1] == ["--extract"]:
        if len(argv) < 2:
            print("error: --extract needs the path of an aiconfigurator git checkout", file=sys.stderr)
            return 2
        extract(Path(argv[1]))
    lines = ["# Dense decode-heavy points: per-op checks (generated by benchmarks/decode_heavy_check.py)", ""]
    lines += attention_lines() + [""] + gemm_lines() + [""] + capacity_lines(decode_heavy_points()) + [""]
    text = "\n".join(lines)
    print(text)
    if "--check" not in argv:
        aic_data.write_atomic(REPORT, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
