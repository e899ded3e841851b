"""The MoE columns of the TensorRT-LLM performance overview at their other ISL/OSL rows (and the GB200 columns),
estimated exactly as benchmarks/serving_accuracy.py estimates its points: a check that a change to the MoE
terms generalises beyond the one row per column that benchmarks/serving_runs.yaml holds.

Source: NVIDIA/TensorRT-LLM docs/source/developer-guide/perf-overview.md @03e27c7d (the revision the
serving_runs.yaml perf-overview points cite): output tokens/s per GPU, trtllm-bench throughput with
fixed-length synthetic prompts, requests per row as the page's table states. A row here is the same column's
serving_runs.yaml record with the row's lengths and published value; the GB200 DEP4 / TP1 columns of
DeepSeek-R1, Qwen3-235B and Qwen3-30B reuse the B200 column's record on the GB200 NVL72 hardware block of the
GB200 gpt-oss-120b point (same checkpoints and llm_options per the page); Llama 4 Maverick's three DEP columns have
their own 1000/1000 records. Left out: the RTX 6000 Pro tables (no such node in the catalog).

    python benchmarks/serve_moe_rows.py            # print the table
    python benchmarks/serve_moe_rows.py --json F   # also write {row id: [measured, predicted, error]} to F
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import serving_accuracy as SA  # noqa: E402

# column record id (serving_runs.yaml) -> {(isl, osl): published tokens/s per GPU}, rows other than the record's own
ROWS = {
    "trtllm-po-b200-dsr1-dep4-fp4-1000-1000": {(1024, 1024): 6430, (1024, 8192): 3862, (1024, 32768): 1451,
                                               (8192, 1024): 1168},
    "trtllm-po-h200-dsr1-dep8-fp8-1000-1000": {(1024, 1024): 1620, (1024, 8192): 1218, (1024, 32768): 438},
    "trtllm-po-b200-qwen3-235b-dep4-fp4-1000-1000": {(1024, 1024): 5756, (1024, 8192): 3389, (1024, 32768): 1255,
                                                     (8192, 1024): 1410, (32768, 1024): 319},
    "trtllm-po-h200-qwen3-235b-dep4-fp8-1000-1000": {(1024, 1024): 3268, (1024, 8192): 1417, (8192, 1024): 627,
                                                     (32768, 1024): 134},
    "trtllm-po-h100-qwen3-235b-dep8-fp8-1000-1000": {(1024, 1024): 1935, (1024, 8192): 873},
    "trtllm-po-b200-qwen3-30b-tp1-fp4-1000-1000": {(1024, 1024): 26611, (1024, 8192): 13497, (1024, 32768): 4494,
                                                   (8192, 1024): 5735, (32768, 1024): 1265},
    "trtllm-po-b200-gptoss120b-dep2-fp4-1000-1000": {(1024, 1024): 25870, (1024, 8192): 17289, (1024, 32768): 6279,
                                                     (8192, 1024): 6111, (32768, 1024): 1392},
    "trtllm-po-gb200-gptoss120b-tp1-fp4-1000-1000": {(1024, 1024): 26609, (1024, 8192): 14800,
                                                     (1024, 32768): 5556, (8192, 1024): 6835, (32768, 1024): 1645},
    "trtllm-po-h200-gptoss120b-tp1-fp8-1000-1000": {(1024, 1024): 6798, (1024, 8192): 3543, (8192, 1024): 1828,
                                                    (32768, 1024): 519},
    "trtllm-po-h100-gptoss120b-dep4-fp8-8192-1024": {(1000, 1000): 4685, (1024, 1024): 4715, (1024, 32768): 1177,
                                                     (32768, 1024): 333},
    "trtllm-po-b200-gptoss20b-tp1-fp4-1000-1000": {(1024, 1024): 53491, (1024, 8192): 34702, (1024, 32768): 14589,
                                                   (8192, 1024): 11904, (32768, 1024): 2645},
    "trtllm-po-h200-gptoss20b-tp1-fp8-1000-1000": {(1024, 1024): 13890, (1024, 8192): 12743, (8192, 1024): 4015,
                                                   (32768, 1024): 915},
    "trtllm-po-h100-gptoss20b-tp1-fp8-1000-1000": {(1024, 1024): 11403, (1024, 8192): 8617, (8192, 1024): 3366,
                                                   (32768, 1024): 785},
    "trtllm-po-b200-llama4-maverick-dep4-fp4-1000-1000": {(1024, 1024): 11227, (1024, 8192): 5174,
                                                          (1024, 32768): 2204, (8192, 1024): 3279, (32768, 1024): 859},
    "trtllm-po-gb200-llama4-maverick-dep4-fp4-1000-1000": {(1024, 1024): 11905, (1024, 8192): 5508,
                                                           (1024, 32768): 2300, (8192, 1024): 3444, (32768, 1024): 963},
    "trtllm-po-h200-llama4-maverick-dep8-fp8-1000-1000": {(1024, 1024): 4180, (1024, 8192): 1157, (1024, 32768): 679,
                                                          (8192, 1024): 1276},
}
# GB200 columns built from the B200 column's record: {B200 record: {(isl, osl): tokens/s per GPU}}
GB200_ROWS = {
    "trtllm-po-b200-dsr1-dep4-fp4-1000-1000": {(1000, 1000): 6939, (1024, 1024): 6924, (1024, 8192): 4379,
                                               (1024, 32768): 1465, (8192, 1024): 1192},
    "trtllm-po-b200-qwen3-235b-dep4-fp4-1000-1000": {(1000, 1000): 6172, (1024, 1024): 5862, (1024, 8192): 3423,
                                                     (8192, 1024): 1464, (32768, 1024): 333},
    "trtllm-po-b200-qwen3-30b-tp1-fp4-1000-1000": {(1000, 1000): 22856, (1024, 1024): 22201, (1024, 8192): 14272,
                                                   (1024, 32768): 4925, (8192, 1024): 6201, (32768, 1024): 1380},
}
GB200_HARDWARE_FROM = "trtllm-po-gb200-gptoss120b-tp1-fp4-1000-1000"


def _variant(r: dict, isl: int, osl: int, per_gpu: float, hardware: dict | None = None) -> dict:
    v = copy.deepcopy(r)
    if hardware is not None:
        v["hardware"] = dict(hardware, num_gpus=r["hardware"]["num_gpus"])
        v["id"] = r["id"].replace("-b200-", "-gb200-")
    v["id"] = v["id"].rsplit("-", 2)[0] + f"-{isl}-{osl}"
    v["workload"] = dict(r["workload"], input_len=isl, output_len=osl)
    v["measured"] = {"output_tokens_per_sec_per_gpu": per_gpu}
    v["derived"] = {"output_tokens_per_sec_total": per_gpu * v["hardware"]["num_gpus"]}
    return v


def records() -> list[dict]:
    runs = {r["id"]: r for r in yaml.safe_load((ROOT / "benchmarks" / "serving_runs.yaml").read_text())}
    out = []
    for rid, rows in ROWS.items():
        out += [_variant(runs[rid], i, o, v) for (i, o), v in rows.items()]
    hw = runs[GB200_HARDWARE_FROM]["hardware"]
    for rid, rows in GB200_ROWS.items():
        out += [_variant(runs[rid], i, o, v, hw) for (i, o), v in rows.items()]
    return out


def evaluate() -> dict:
    from planner.serve.plan import parse_serve_plan

    res = {}
    for r in records():
        r["precision"]["native_weight_format"] = r["model"].get("native_weight_format")
        sc, plan, measured = SA.point_scenario(r)
        est = SA.estimate_serving(sc, parse_serve_plan(plan, sc))
        est["_out_mean"] = SA.token_stats(sc.serving.output_tokens)[0]
        pred = SA.finite_run_throughput(r, est)
        res[r["id"]] = [measured, pred, (pred - measured) / measured]
    return res


def main(argv: list[str]) -> int:
    res = evaluate()
    for k, (m, p, e) in res.items():
        print(f"{k:60s} {m:10,.0f} {p:10,.0f} {100 * e:+6.1f}%")
    mae = sum(abs(e) for _, _, e in res.values()) / len(res)
    print(f"mean abs error over {len(res)} rows: {100 * mae:.1f}%")
    if argv[:1] == ["--json"]:
        Path(argv[1]).write_text(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
