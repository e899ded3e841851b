"""TensorRT-LLM's two B200 MoE backends at decode token counts: how the MoE layer time grows with the tokens,
measured and as planner.serve.timing charges it with 128-row tiles (CUTLASS, moe_backend default) and with
TRTLLM-gen's row tile (moe_backend trtllm, timing.trtllm_gen_row_tile).

Data: NVIDIA AIConfigurator (github.com/ai-dynamo/aiconfigurator @095f58a5, Apache-2.0),
aic-core/src/aiconfigurator_core/systems/data/b200_sxm/moe/trtllm/1.2.0rc5/moe_perf.parquet: fused MoE layer
timings of TensorRT-LLM 1.2.0rc5 on B200, balanced routing, NVFP4 and block-FP8, 4 / 16 / 64 / 256 tokens; kernel_source
moe_torch_flow_cutlass (the CUTLASS backend) and moe_torch_flow_min_latency (AIConfigurator's collector sets
moe_backend "trtllm" for it: TRTLLMGenFusedMoE). The extract is benchmarks/trtllm_gen_moe_aic.csv.

Compared: the increment of the layer time between two token counts (model / measured, median over every shape,
tp and ep of the table), so the fixed per-layer launch time, which the serving model charges elsewhere
(timing.kernel_launch_s), drops out. Balanced routing touches min(n top_k, experts) experts, more than the
model's uniform router, so measured increments run above the model's by up to that share.

    python benchmarks/trtllm_gen_moe_check.py                        # print the table
    python benchmarks/trtllm_gen_moe_check.py --extract AIC_CHECKOUT  # rewrite the CSV from a checkout at 095f58a5
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import moe_kernel_check as M  # noqa: E402
from planner.serve import timing  # noqa: E402

DATA = ROOT / "benchmarks" / "trtllm_gen_moe_aic.csv"
FIELDS = ["backend", "dtype", "hidden", "expert_ffn", "top_k", "experts", "moe_tp", "moe_ep", "tokens", "latency_ms"]
SOURCES = {"moe_torch_flow_cutlass": "cutlass", "moe_torch_flow_min_latency": "trtllm"}
DTYPES = {"nvfp4": "nvfp4", "fp8_block": "fp8_block"}
SPANS = ((4, 16), (4, 64), (16, 64), (64, 256))


def extract(repo: Path) -> None:
    import aic_data

    d = aic_data.table(repo, "b200_sxm/moe/trtllm/1.2.0rc5/moe_perf.parquet")
    d = d[(d.distribution == "balanced") & d.moe_dtype.isin(list(DTYPES)) & d.kernel_source.isin(list(SOURCES))
          & d.num_tokens.isin(sorted({n for span in SPANS for n in span}))]
    rows = [{"backend": SOURCES[r.kernel_source], "dtype": r.moe_dtype, "hidden": int(r.hidden_size),
             "expert_ffn": int(r.inter_size), "top_k": int(r.topk), "experts": int(r.num_experts),
             "moe_tp": int(r.moe_tp_size), "moe_ep": int(r.moe_ep_size), "tokens": int(r.num_tokens),
             "latency_ms": float(r.latency)} for r in d.itertuples()]
    aic_data.write_csv(DATA, FIELDS, rows)


def layer_s(row: dict, trtllm_gen: bool) -> float:
    """moe_kernel_check.moe_layer_s with the expert rows padded to 128-row tiles or to TRTLLM-gen's tile (the
    serving model's own switch, timing.expert_linear_s trtllm_gen)."""
    return M.moe_layer_s(row, trtllm_gen=trtllm_gen)


def table() -> list[str]:
    with DATA.open() as fh:
        data = list(csv.DictReader(fh))
    groups: dict[tuple, dict[int, dict]] = {}
    for r in data:
        r["gpu"] = "b200"
        key = (r["backend"],) + tuple(r[k] for k in FIELDS[1:8])
        groups.setdefault(key, {})[int(r["tokens"])] = r
    lines = ["| backend | tokens | shapes | model / measured increment, 128-row tiles | TRTLLM-gen tiles |",
             "|---|---|---:|---:|---:|"]
    for backend in ("trtllm", "cutlass"):
        for lo, hi in SPANS:
            a, b = [], []
            for key, by_n in groups.items():
                if key[0] != backend or lo not in by_n or hi not in by_n:
                    continue
                meas = (float(by_n[hi]["latency_ms"]) - float(by_n[lo]["latency_ms"])) * 1e-3
                if meas <= 0:
                    continue
                a.append((layer_s(by_n[hi], False) - layer_s(by_n[lo], False)) / meas)
                b.append((layer_s(by_n[hi], True) - layer_s(by_n[lo], True)) / meas)
            lines.append(f"| {backend} | {lo} -> {hi} | {len(a)} | {np.median(a):.2f} | {np.median(b):.2f} |")
    return lines


def main(argv: list[str]) -> int:
    if argv[:1] == ["--extract"]:
        if len(argv) != 2:
            print(__doc__)
            return 2
        extract(Path(argv[1]))
    print("\n".join(table()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
