"""The v1.0-era Qwen3-235B-A22B columns of the TensorRT-LLM performance overview under the two readings of the
page's MoE llm_options: with attention DP (serving_accuracy.moe_attn_dp_assumed, the reading the points use) and
without it (attention TP over the 8 GPUs, experts EP 8).

Source: NVIDIA/TensorRT-LLM docs/source/performance/perf-overview.md @00f37686 (the revision of the calibration
point trtllm10-h200-qwen3-235b-tp8-fp8-1k1k): "Qwen3-235B-A22B" table, columns B200 TP8 (FP4), H200 TP8 (FP8),
H100 TP8 (FP8), Total Output Throughput (tokens/s) of the 8 GPUs; requests per ISL/OSL row from the page's
$num_requests table. A row is the calibration point's record with the row's lengths, request count and value; the
B200 / H100 columns take the hardware (and for B200 the FP4 precision) of the same model's performance-overview
records in benchmarks/serving_runs.yaml, on 8 GPUs. Only the 1000/1000 H200 row is a point of
benchmarks/serving_accuracy.py; the other 26 rows check that the reading carries.

    python benchmarks/qwen3_v10_check.py      # print the table (markdown) and the mean errors
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import serving_accuracy as SA  # noqa: E402

POINT = "trtllm10-h200-qwen3-235b-tp8-fp8-1k1k"
# $num_requests per (ISL, OSL), perf-overview.md @00f37686
REQUESTS = {(128, 128): 30000, (128, 2048): 3000, (128, 4096): 1500, (1000, 2000): 1500, (2048, 128): 3000,
            (2048, 2048): 1500, (5000, 500): 1500, (1000, 1000): 3000, (500, 2000): 3000, (20000, 2000): 1000}
# column -> {(ISL, OSL): total output tokens/s of 8 GPUs}, the page's Qwen3-235B-A22B table (blank cells left out)
TABLE = {
    "b200-tp8-fp4": {(128, 128): 63362, (128, 2048): 66057, (128, 4096): 39496, (500, 2000): 57117,
                     (1000, 1000): 42391, (1000, 2000): 34105, (2048, 128): 7329, (2048, 2048): 26854,
                     (5000, 500): 8190, (20000, 2000): 4453},
    "h200-tp8-fp8": {(128, 128): 30429, (128, 2048): 42821, (128, 4096): 26852, (500, 2000): 28026,
                     (1000, 1000): 23789, (1000, 2000): 22061, (2048, 128): 3331, (2048, 2048): 16672,
                     (5000, 500): 3623, (20000, 2000): 1876},
    "h100-tp8-fp8": {(128, 2048): 19658, (128, 4096): 12447, (500, 2000): 18351, (1000, 1000): 14898,
                     (1000, 2000): 15136, (2048, 2048): 9924, (5000, 500): 3225},
}
# hardware / precision of each column from the same model's records (serving_runs.yaml)
HARDWARE_FROM = {"b200-tp8-fp4": "trtllm-po-b200-qwen3-235b-dep4-fp4-1000-1000",
                 "h100-tp8-fp8": "trtllm-po-h100-qwen3-235b-dep8-fp8-1000-1000"}


def records() -> list[dict]:
    runs = {r["id"]: r for r in SA.points()}
    base = runs[POINT]
    out = []
    for col, rows in TABLE.items():
        for (isl, osl), total in rows.items():
            r = copy.deepcopy(base)
            if col in HARDWARE_FROM:
                src = runs[HARDWARE_FROM[col]]
                r["hardware"] = dict(src["hardware"], num_gpus=8)
                if "fp4" in col:
                    r["precision"] = copy.deepcopy(src["precision"])
            r["id"] = f"trtllm10-{col}-qwen3-235b-{isl}-{osl}"
            r["workload"] = dict(r["workload"], input_len=isl, output_len=osl, num_requests=REQUESTS[(isl, osl)])
            r["measured"] = {"output_tokens_per_sec_total": total}
            out.append(r)
    return out


def predict(r: dict) -> float:
    from planner.serve.plan import parse_serve_plan

    sc, plan, _ = SA.point_scenario(r)
    return SA.predicted(r, sc, SA.estimate_serving(sc, parse_serve_plan(plan, sc)))


def evaluate() -> list[tuple[str, float, float, float]]:
    """(row id, measured, predicted with attention DP, predicted without) per row."""
    out = []
    assumed = SA.moe_attn_dp_assumed
    for r in records():
        with_dp = predict(copy.deepcopy(r))
        SA.moe_attn_dp_assumed = lambda rec, tp: False
        try:
            without = predict(copy.deepcopy(r))
        finally:
            SA.moe_attn_dp_assumed = assumed
        out.append((r["id"], float(r["measured"]["output_tokens_per_sec_total"]), with_dp, without))
    return out


def main() -> int:
    res = evaluate()
    print("| row | measured | attention DP + EP 8 | error | attention TP 8 + EP 8 | error |")
    print("|---|---:|---:|---:|---:|---:|")
    for rid, m, a, b in res:
        print(f"| {rid} | {m:,.0f} | {a:,.0f} | {100 * (a / m - 1):+.1f}% | {b:,.0f} | {100 * (b / m - 1):+.1f}% |")
    for col in TABLE:
        sub = [x for x in res if f"-{col}-" in x[0]]
        ea = [abs(a / m - 1) for _, m, a, _ in sub]
        eb = [abs(b / m - 1) for _, m, _, b in sub]
        sa = [a / m - 1 for _, m, a, _ in sub]
        sb = [b / m - 1 for _, m, _, b in sub]
        print(f"{col}: {len(sub)} rows; mean abs / signed error with attention DP {100 * sum(ea) / len(sub):.1f}% / "
              f"{100 * sum(sa) / len(sub):+.1f}%, without {100 * sum(eb) / len(sub):.1f}% / {100 * sum(sb) / len(sub):+.1f}%")
    ea = [abs(a / m - 1) for _, m, a, _ in res]
    eb = [abs(b / m - 1) for _, m, _, b in res]
    print(f"all {len(res)} rows: mean abs error with attention DP {100 * sum(ea) / len(res):.1f}%, "
          f"without {100 * sum(eb) / len(res):.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
