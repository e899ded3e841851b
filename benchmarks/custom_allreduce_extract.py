"""Extract the engines' own all-reduce timings from NVIDIA AIConfigurator's collected data into
catalogs/custom_allreduce_measured.csv (read by planner.serve.nccl_measured).

Source: github.com/ai-dynamo/aiconfigurator @095f58a5 (Apache-2.0), aic-core/src/aiconfigurator_core/systems/
data/<system>/comm/<engine>/<version>/custom_allreduce_perf.parquet: the engine's all-reduce op (SGLang's and
vLLM's custom all-reduce, TensorRT-LLM's allreduce op) on 2 / 4 / 8 GPUs of one 8-GPU NVSwitch board, bf16,
128 to 536,870,912 elements (message_size counts elements: the 8-GPU time at 2^26 elements equals the NCCL
table's at 2^27 bytes). SGLang and vLLM are timed eagerly and inside a CUDA graph; the graph rows are kept
(decode steps run in CUDA graphs in all three engines). One version per engine and system: the oldest in the
data (SGLang 0.5.9, TensorRT-LLM 1.2.0rc5, vLLM 0.14.0 / 0.19.0 on B200).

    python benchmarks/custom_allreduce_extract.py AICONFIGURATOR_CHECKOUT
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import aic_data  # noqa: E402

OUT = ROOT / "catalogs" / "custom_allreduce_measured.csv"
SYSTEMS = {"h100": "h100_sxm", "h200": "h200_sxm", "b200": "b200_sxm"}
VERSIONS = {"sglang": {"h100": "0.5.9", "h200": "0.5.9", "b200": "0.5.9"},
            "trtllm": {"h100": "1.2.0rc5", "h200": "1.2.0rc5", "b200": "1.2.0rc5"},
            "vllm": {"h100": "0.14.0", "h200": "0.14.0", "b200": "0.19.0"}}
BF16_BYTES = 2


def main(repo: Path) -> None:
    rows = []
    for engine, per_gpu in VERSIONS.items():
        for gpu, version in per_gpu.items():
            df = aic_data.table(repo, f"{SYSTEMS[gpu]}/comm/{engine}/{version}/custom_allreduce_perf.parquet")
            df = df[(df["allreduce_dtype"] == "bfloat16") & ~df["kernel_source"].str.contains("eager")]
            for r in df.sort_values(["num_gpus", "message_size"]).itertuples():
                rows.append({"gpu": gpu, "engine": engine, "version": version, "gpus": int(r.num_gpus),
                             "bytes": int(r.message_size) * BF16_BYTES, "latency_ms": f"{float(r.latency):.6g}"})
    aic_data.write_csv(OUT, ["gpu", "engine", "version", "gpus", "bytes", "latency_ms"], rows)
    print(f"{len(rows)} rows -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
