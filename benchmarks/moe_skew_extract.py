"""Extract AIConfigurator's skewed-routing MoE layer timings at the shapes of benchmarks/moe_kernel_aic.csv.

Source: NVIDIA AIConfigurator (github.com/ai-dynamo/aiconfigurator @095f58a5, Apache-2.0),
aic-core/src/aiconfigurator_core/systems/data/<gpu>/moe/trtllm/<version>/moe_perf.parquet, whose rows carry
a `distribution` column: balanced (the rows of moe_kernel_aic.csv), power_law_1.01 and power_law_1.2 (router
skew, planner/serve/routing_skew.py). Writes benchmarks/moe_skew_aic.csv: the moe_kernel_aic.csv columns plus
`distribution`, for every (GPU, version, format, shape, tp, ep, tokens) row of moe_kernel_aic.csv.

    python benchmarks/moe_skew_extract.py AICONFIGURATOR_CHECKOUT   # a git checkout at 095f58a5
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import aic_data  # benchmarks/aic_data.py

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "benchmarks" / "moe_kernel_aic.csv"
OUT = ROOT / "benchmarks" / "moe_skew_aic.csv"
DIRS = {"b200": "b200_sxm", "gb200": "gb200", "h100-sxm-80gb": "h100_sxm", "h200-sxm-141gb": "h200_sxm"}
KEYS = ("hidden", "expert_ffn", "top_k", "experts", "moe_tp", "moe_ep", "tokens")
COLS = ("hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size", "moe_ep_size", "num_tokens")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    repo = Path(argv[0])
    want = list(csv.DictReader(SRC.open()))
    out = []
    for (gpu, ver), _ in {(r["gpu"], r["trtllm"]): 0 for r in want}.items():
        df = aic_data.table(repo, f"{DIRS[gpu]}/moe/trtllm/{ver}/moe_perf.parquet")
        df = df[df["distribution"].str.startswith("power_law")]
        index = {}
        for rec in df.itertuples(index=False):
            key = (rec.moe_dtype, *(int(getattr(rec, c)) for c in COLS), rec.distribution)
            index.setdefault(key, []).append(float(rec.latency))
        for r in want:
            if (r["gpu"], r["trtllm"]) != (gpu, ver):
                continue
            for dist in ("power_law_1.01", "power_law_1.2"):
                lat = index.get((r["dtype"], *(int(r[k]) for k in KEYS), dist))
                if lat:
                    out.append({**{k: r[k] for k in ("gpu", "trtllm", "dtype", *KEYS)}, "distribution": dist,
                                "latency_ms": f"{sum(lat) / len(lat):.6g}"})
    aic_data.write_csv(OUT, ["gpu", "trtllm", "dtype", *KEYS, "distribution", "latency_ms"], out)
    print(f"{len(out)} rows -> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
