"""Absorbed-MLA decode attention (DeepSeek-V3 / R1 shapes): the serving model against NVIDIA's measured
TensorRT-LLM generation-MLA kernel timings.

Data: benchmarks/mla_decode_aic.csv, an extract (--extract AICONFIGURATOR_CHECKOUT, a git checkout at 095f58a5)
of NVIDIA AIConfigurator's collected data (github.com/ai-dynamo/aiconfigurator, Apache-2.0;
aic-core/src/aiconfigurator_core/systems/data/<gpu>/mla/trtllm/1.2.0rc5/generation_mla_perf.parquet): one
layer's MLA generation kernel, 128 query heads (attention DP / TP 1), batch 64-1,024, KV length 1,024-16,384,
bf16 and FP8 KV cache, H100 / H200 / B200. Columns gpu, kv, batch, kv_len, latency_ms.

Model (planner.serve.timing.stage_s, one layer): max(KV read / HBM, 2 x batch x kv_len x heads x (2 x 512 +
64) / attention FLOP/s) + batch x DECODE_ATTN_SEQ_KVHEAD_S, the attention rate being the flash-attention
fraction of the bf16 MAMF (timing.rates). Alternative shown, not used: FlashMLA's published compute-bound
rate (660 TFLOP/s of 989.4 on H800 SXM5, deepseek-ai/FlashMLA README) at the peak of the KV format on
Blackwell (the measured B200 FP8-KV rate exceeds the bf16 peak).

    python benchmarks/mla_decode_check.py                     # print and rewrite benchmarks/mla_decode_results.md
    python benchmarks/mla_decode_check.py --extract CHECKOUT  # rebuild the csv first
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aic_data  # noqa: E402  (benchmarks/aic_data.py)
from planner import catalog  # noqa: E402
from planner.serve import timing as T  # noqa: E402
from planner.serve.memory import model_facts  # noqa: E402

DATA = ROOT / "benchmarks" / "mla_decode_aic.csv"
REPORT = ROOT / "benchmarks" / "mla_decode_results.md"
GPUS = {"h100": ("h100_sxm", "h100-sxm-80gb"), "h200": ("h200_sxm", "h200-sxm-141gb"), "b200": ("b200_sxm", "b200")}
FLASHMLA_OF_PEAK = 660.0 / 989.4


def extract(repo: Path) -> None:
    out = []
    for gpu, (d, _) in GPUS.items():
        df = aic_data.table(repo, f"{d}/mla/trtllm/1.2.0rc5/generation_mla_perf.parquet")
        df = df[(df["num_heads"] == 128) & df["batch_size"].isin([64, 256, 1024]) & (df["step"] >= 1023)]
        for (kv, b, s), lat in df.groupby(["kv_cache_dtype", "batch_size", "step"])["latency"].mean().items():
            out.append({"gpu": gpu, "kv": "fp8" if kv == "fp8" else "bf16", "batch": int(b), "kv_len": int(s) + 1,
                        "latency_ms": f"{lat:.6g}"})
    aic_data.write_csv(DATA, ["gpu", "kv", "batch", "kv_len", "latency_ms"], out)


def model_ms(gpu, f, kv: str, b: float, s: float, flashmla: bool = False) -> float:
    _, attn, bw = T.rates(gpu, ("bf16",))
    kvb = 1.0 if kv == "fp8" else 2.0
    if flashmla:
        peak = gpu.tflops.fp8 if (kv == "fp8" and gpu.tflops.fp4) else gpu.tflops.bf16
        attn = peak * 1e12 * FLASHMLA_OF_PEAK
    read = b * s * f.kv_elems * kvb / bw
    flops = 2.0 * b * s * f.attn_dim_decode / attn
    return 1e3 * (max(read, flops) + b * T.DECODE_ATTN_SEQ_KVHEAD_S)


def report() -> str:
    f = model_facts(catalog.model("deepseek-v3"))
    rows = list(csv.DictReader(DATA.open()))
    lines = ["# MLA decode attention: model vs NVIDIA's measured TensorRT-LLM generation-MLA kernel", "",
             "Rerun: `python benchmarks/mla_decode_check.py` (module docstring). Ratio = model / measured time of one "
             "layer (128 heads), median over batch 64 / 256 / 1,024.", "",
             "| GPU | KV | KV length | measured ms (batch 1,024) | model / measured | FlashMLA-rate alternative / measured |",
             "|---|---|---:|---:|---:|---:|"]
    for gpu_name, (_, cat) in GPUS.items():
        gpu = catalog.gpu(cat)
        for kv in ("fp8", "bf16"):
            for s in sorted({int(r["kv_len"]) for r in rows}):
                sel = [r for r in rows if r["gpu"] == gpu_name and r["kv"] == kv and int(r["kv_len"]) == s]
                if not sel:
                    continue
                meas = np.array([float(r["latency_ms"]) for r in sel])
                mod = np.array([model_ms(gpu, f, kv, int(r["batch"]), s) for r in sel])
                alt = np.array([model_ms(gpu, f, kv, int(r["batch"]), s, True) for r in sel])
                big = [float(r["latency_ms"]) for r in sel if int(r["batch"]) == 1024]
                lines.append(f"| {gpu_name} | {kv} | {s:,} | {big[0] if big else float('nan'):.3f} | "
                             f"{np.median(mod / meas):.2f} | {np.median(alt / meas):.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--extract"]:
        if len(argv) != 2:
            print(f"usage: python {Path(__file__).name} [--extract AICONFIGURATOR_CHECKOUT]", file=sys.stderr)
            return 2
        extract(Path(argv[1]))
    text = report()
    print(text)
    aic_data.write_atomic(REPORT, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
