"""ROCm vLLM 0.10 on 8x MI300X at TP8: the published decode step at every batch of the latency table against
the planner's, and what the gap would imply for the FP8 GEMMs if it were all GEMM time.

Data: the Latency Measurements table of ROCm/vllm docs/dev-docker/README.md at 040de12d (Llama 3.1 70B / 405B
FP8-KV, TP 8, batch 1-128, 128 or 2048 prompt tokens, 2048 output tokens; vLLM v0.10.0, benchmark_latency.py
of v0.8.5). Measured step = latency / 2048 (the prompts are prefix-cached after the warmup, benchmarks/
amd_serve_results.md). Model step = the planner's decode step (TPOT p50) for the same plan at that many
requests in flight: the point of benchmarks/serving_runs.yaml at batch 128 with its concurrency replaced.
Implied GEMM rate (if the whole extra were GEMM time): FLOPs 2 x weight bytes per GPU x batch (FP8: one byte
per parameter; the embedding table included, <2% over) over (weight bytes / (HBM peak x 0.8) + extra).

    python benchmarks/rocm_tp8_batch_check.py
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import serving_accuracy as S  # noqa: E402
from planner.estimate.compute_gemm import HBM_EFFICIENCY  # noqa: E402
from planner.serve.plan import parse_serve_plan  # noqa: E402
from planner.serve.search import estimate_serving  # noqa: E402

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
OUTPUT_TOKENS = 2048
# (model, prompt tokens): README latencies in seconds at BATCHES, and the batch-128 point used as the template.
LATENCY_S = {
    ("70b", 128): ((17.236, 18.057, 18.450, 19.677, 22.072, 24.932, 33.287, 46.484),
                   "rocm-vllm010-mi300x-llama31-70b-tp8-fp8-128-2048-bs128"),
    ("70b", 2048): ((17.500, 18.055, 18.858, 20.161, 22.347, 25.966, 35.324, 52.394),
                    "rocm-vllm010-mi300x-llama31-70b-tp8-fp8-2048-2048-bs128"),
    ("405b", 128): ((48.453, 49.268, 51.136, 54.226, 57.274, 68.901, 88.631, 117.027),
                    "rocm-vllm010-mi300x-llama31-405b-tp8-fp8-128-2048-bs128"),
    ("405b", 2048): ((48.362, 49.121, 52.347, 54.471, 57.841, 70.538, 91.452, 125.471),
                     "rocm-vllm010-mi300x-llama31-405b-tp8-fp8-2048-2048-bs128"),
}


def model_step(template: dict, batch: int) -> tuple[float, float, float]:
    """(decode step ms, weight GB per GPU, achievable HBM bytes/s) of the template point's plan at `batch`."""
    r = copy.deepcopy(template)
    r["workload"]["concurrency"] = batch
    r["precision"]["native_weight_format"] = r["model"].get("native_weight_format")
    sc, plan, _ = S.point_scenario(r)
    est = estimate_serving(sc, parse_serve_plan(plan, sc))
    hbm = sc.cluster.node.gpu.hbm_tb_s * 1e12 * HBM_EFFICIENCY
    return est["latency"]["tpot_ms"]["p50"], est["memory"]["weights_gib"] * 2 ** 30 / 1e9, hbm


def rows() -> list[tuple]:
    """(model, prompt, batch, measured ms, model ms, extra ms, implied GEMM TFLOP/s) for every table row."""
    points = {p["id"]: p for p in yaml.safe_load((ROOT / "benchmarks" / "serving_runs.yaml").read_text())}
    out = []
    for (model, prompt), (lat, pid) in LATENCY_S.items():
        for batch, seconds in zip(BATCHES, lat):
            meas = seconds / OUTPUT_TOKENS * 1e3
            mod, wgb, hbm = model_step(points[pid], batch)
            extra = meas - mod
            read_ms = wgb * 1e9 / hbm * 1e3
            rate = 2.0 * wgb * 1e9 * batch / ((read_ms + max(extra, 0.0)) * 1e-3) / 1e12
            out.append((model, prompt, batch, meas, mod, extra, rate))
    return out


def main() -> None:
    print("| model | prompt | batch | measured ms | model ms | extra ms | implied GEMM TFLOP/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    table = rows()
    for model, prompt, batch, meas, mod, extra, rate in table:
        print(f"| {model} | {prompt} | {batch} | {meas:.2f} | {mod:.2f} | {extra:+.2f} | {rate:.0f} |")
    print()
    for (model, prompt) in LATENCY_S:
        sel = [t for t in table if t[0] == model and t[1] == prompt]
        print(f"{model} {prompt}: batch 1 -> 2 measured {sel[1][3] - sel[0][3]:+.2f} ms, model {sel[1][4] - sel[0][4]:+.2f} ms")


if __name__ == "__main__":
    main()
