"""Context (prefill) attention: the fixed time per (prompt token, query head) beside the FLOPs
(planner.serve.timing.CONTEXT_ATTN_TOKEN_HEAD_S), fitted to NVIDIA's measured TensorRT-LLM kernels and held out
across GPUs.

Data: benchmarks/context_attn_fixed_aic.csv, an extract of NVIDIA AIConfigurator's collected per-operation data
(github.com/ai-dynamo/aiconfigurator @095f58a5, Apache-2.0; aic-core/src/aiconfigurator_core/systems/data/
<gpu>/attention/trtllm/1.2.0rc5/context_attention_perf.parquet for b200_sxm, h200_sxm, h100_sxm): one
context-attention layer of the TensorRT-LLM PyTorch flow, full causal attention (window 0), bf16 attention and KV
cache, head size 64 / 128, 1-96 query heads, prompts of 128-16,384 tokens; per (GPU, head size, prompt length,
heads, KV heads) the fastest time per prompt token over the measured batches (1-256). Columns gpu, trtllm,
head_dim, isl, heads, kv_heads, batch, seconds_per_token.

Model per prompt token: causal FLOPs 2 x (isl / 2) x heads x 2 x head size at the serving model's attention rate
(planner.serve.timing: tensor cores or softmax exponentials, whichever binds) + c x heads. c is the value with the
least mean absolute relative error over the rows (golden-section search); held out: fitted on one GPU, scored on
the other two.

    python benchmarks/context_attn_fixed_check.py            # print and rewrite benchmarks/context_attn_fixed_results.md
    python benchmarks/context_attn_fixed_check.py --check    # print only
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import aic_data  # noqa: E402
from planner import catalog  # noqa: E402
from planner.serve import timing  # noqa: E402

DATA = ROOT / "benchmarks" / "context_attn_fixed_aic.csv"
REPORT = ROOT / "benchmarks" / "context_attn_fixed_results.md"


def rows() -> list[dict]:
    return aic_data.read_csv(DATA, text=("gpu", "trtllm"))


def flops_s(r: dict) -> float:
    """The model's FLOP time per prompt token (no fixed term)."""
    gpu = catalog.gpu(r["gpu"])
    _, attn, _ = timing.rates(gpu, ("bf16",))
    rate = min(attn, timing.exp_rate_per_flop(gpu) * 2.0 * 2.0 * r["head_dim"])  # attention_fps: 2 (d_qk + d_v)
    return 2.0 * (r["isl"] / 2.0) * r["heads"] * 2.0 * r["head_dim"] / rate


def mae(data: list[dict], c: float) -> float:
    return float(np.mean([abs((flops_s(r) + c * r["heads"]) / r["seconds_per_token"] - 1.0) for r in data]))


def fit(data: list[dict], lo: float = 0.0, hi: float = 2e-9) -> float:
    """c (seconds) with the least mean abs relative error: golden-section search on [lo, hi]."""
    g = (5 ** 0.5 - 1) / 2
    a, b = lo, hi
    for _ in range(60):
        c1, c2 = b - g * (b - a), a + g * (b - a)
        if mae(data, c1) <= mae(data, c2):
            b = c2
        else:
            a = c1
    return (a + b) / 2


def report(data: list[dict]) -> str:
    gpus = sorted({r["gpu"] for r in data})
    c_all = fit(data)
    out = ["# Context attention: fixed time per (prompt token, query head)", "",
           "Rerun: `python benchmarks/context_attn_fixed_check.py` (data and method in its docstring). "
           f"Planner value: timing.CONTEXT_ATTN_TOKEN_HEAD_S = {timing.CONTEXT_ATTN_TOKEN_HEAD_S * 1e9:.2f} ns.", "",
           "| fitted on | c (ns) | rows | " + " | ".join(f"MAE {g}" for g in gpus) + " | MAE without the term |",
           "|---|---:|---:|" + "---:|" * len(gpus) + "---:|"]
    for name, part in [("all", data)] + [(g, [r for r in data if r["gpu"] == g]) for g in gpus]:
        c = c_all if name == "all" else fit(part)
        cells = " | ".join(f"{100 * mae([r for r in data if r['gpu'] == g], c):.1f}%" for g in gpus)
        out.append(f"| {name} | {c * 1e9:.3f} | {len(part)} | {cells} | {100 * mae(part, 0.0):.1f}% |")
    out += ["", "By prompt length (all GPUs, the planner's value): mean abs error without / with the term:", "",
            "| prompt tokens | rows | without | with |", "|---:|---:|---:|---:|"]
    for isl in sorted({r["isl"] for r in data}):
        part = [r for r in data if r["isl"] == isl]
        out.append(f"| {isl:,.0f} | {len(part)} | {100 * mae(part, 0.0):.1f}% | "
                   f"{100 * mae(part, timing.CONTEXT_ATTN_TOKEN_HEAD_S):.1f}% |")
    return "\n".join(out) + "\n"


def main() -> None:
    text = report(rows())
    print(text)
    if "--check" not in sys.argv:
        REPORT.write_text(text)


if __name__ == "__main__":
    main()
