"""The attention rate of the model (tensor cores or softmax exponentials, whichever binds) against NVIDIA's
measured TensorRT-LLM context (prefill) attention, and the measured cost of sliding-window layers.

Data: benchmarks/context_attn_aic.csv, an extract of NVIDIA AIConfigurator's collected per-operation data
(github.com/ai-dynamo/aiconfigurator @095f58a5, Apache-2.0;
aic-core/src/aiconfigurator_core/systems/data/<gpu>/attention/trtllm/1.2.0rc5/context_attention_perf.parquet:
one context-attention layer, TensorRT-LLM PyTorch flow): 64 query heads, 8 KV heads (gpt-oss's shape), head
size 64 / 128, bf16 attention and KV cache, prompts of 1,024-16,384 tokens, full causal attention (window 0)
and gpt-oss's 128-token sliding window, batches 1-256. One row: GPU, version, window, head size, heads, KV
heads, batch, prompt length, measured milliseconds.

Rate: causal attention FLOPs (batch x 2 x isl^2 / 2 x heads x 2 x head size) / measured time, best over the
batches of a prompt length. The model's rate: planner.serve.timing's attention FLOP/s, or the exponential
bound (planner.estimate.compute_attention.exp_bound_fps via timing.attention_fps) where that is lower.
Sliding window: measured nanoseconds per (prompt token, query head), best over batches.

    python benchmarks/context_attn_check.py            # print and rewrite benchmarks/context_attn_results.md
    python benchmarks/context_attn_check.py --check    # print only
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner import catalog  # noqa: E402
from planner.serve import timing  # noqa: E402

DATA = ROOT / "benchmarks" / "context_attn_aic.csv"
REPORT = ROOT / "benchmarks" / "context_attn_results.md"
LENGTHS = (2048, 4096, 8192, 16384)


def rows() -> list[dict]:
    with DATA.open() as fh:
        return [{k: (v if k in ("gpu", "trtllm") else float(v)) for k, v in r.items()} for r in csv.DictReader(fh)]


def measured_rates(data: list[dict], gpu: str, head_dim: int) -> dict[int, float]:
    """{prompt length: best causal attention FLOP/s over the batches} for full attention."""
    out: dict[int, float] = {}
    for r in data:
        if r["gpu"] != gpu or r["head_dim"] != head_dim or r["window"] != 0:
            continue
        flops = r["batch"] * 2 * r["isl"] ** 2 / 2 * r["heads"] * 2 * r["head_dim"]
        out[int(r["isl"])] = max(out.get(int(r["isl"]), 0.0), flops / (r["latency_ms"] * 1e-3))
    return out


def model_rate(gpu_name: str, head_dim: int) -> tuple[float, float]:
    """(the model's prefill attention FLOP/s, the tensor-core rate alone) for 64 heads of head_dim."""
    gpu = catalog.gpu(gpu_name)
    attn = timing.rates(gpu, ("bf16",))[1]
    f = type("F", (), {"attn_dim_decode": 64 * 2 * head_dim, "attn_dim_prefill": 64 * 2 * head_dim, "heads": 64})
    return float(timing.attention_fps(f, attn, timing.exp_rate_per_flop(gpu))[1]), attn


def window_ns(data: list[dict], gpu: str) -> dict[int, float]:
    """{prompt length: best ns per (token, query head)} of the 128-token sliding-window layers."""
    out: dict[int, float] = {}
    for r in data:
        if r["gpu"] != gpu or r["window"] != 128:
            continue
        ns = r["latency_ms"] * 1e6 / (r["batch"] * r["isl"] * r["heads"])
        out[int(r["isl"])] = min(out.get(int(r["isl"]), float("inf")), ns)
    return out


def report(data: list[dict]) -> str:
    gpus = sorted({r["gpu"] for r in data})
    lines = ["# Context attention: model rate vs TensorRT-LLM's measured kernels", "",
             "Rerun: `python benchmarks/context_attn_check.py` (data and method in its docstring). TFLOP/s of causal "
             "attention, 64 query heads, 8 KV heads, bf16, TensorRT-LLM 1.2.0rc5 (AIConfigurator).", "",
             "| GPU | head size | " + " | ".join(f"measured {n // 1024}k" for n in LENGTHS)
             + " | model | tensor cores alone |", "|---|---:|" + "---:|" * (len(LENGTHS) + 2)]
    for g in gpus:
        for d in (64, 128):
            meas = measured_rates(data, g, d)
            if not meas:
                continue
            model, tc = model_rate(g, d)
            lines.append(f"| {g} | {d} | " + " | ".join(f"{meas.get(n, 0) / 1e12:,.0f}" for n in LENGTHS)
                         + f" | {model / 1e12:,.0f} | {tc / 1e12:,.0f} |")
    lines += ["", "Sliding-window (128) layers, measured ns per (prompt token, query head), head size 64:", "",
              "| GPU | " + " | ".join(f"{n // 1024}k" for n in LENGTHS) + " |", "|---|" + "---:|" * len(LENGTHS)]
    for g in gpus:
        w = window_ns(data, g)
        lines.append(f"| {g} | " + " | ".join(f"{w.get(n, 0):.3f}" for n in LENGTHS) + " |")
    lines += ["", "Reading: at head size 64 on B200 the measured rate is 0.66-0.69 of head size 128's, as the "
              "exponential bound predicts (16 exponentials per SM and clock, 512 BF16 FLOPs per exponential, 256 "
              "FLOPs per score); on Hopper the tensor cores bind at both sizes. The sliding-window layers cost a "
              "constant time per token, about 1,200 keys' worth at the attention rate rather than the window's "
              "128: not modelled (benchmarks/gptoss_results.md, 'Checked, not added')."]
    return "\n".join(lines)


def main() -> None:
    text = report(rows())
    print(text)
    if "--check" not in sys.argv:
        REPORT.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
