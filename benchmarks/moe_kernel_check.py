"""The serving model's MoE-layer time against NVIDIA's measured TensorRT-LLM MoE layer timings.

Data: benchmarks/moe_kernel_aic.csv, an extract of NVIDIA AIConfigurator's collected per-operation
data (github.com/ai-dynamo/aiconfigurator @095f58a5, Apache-2.0;
aic-core/src/aiconfigurator_core/systems/data/<gpu>/moe/trtllm/<version>/moe_perf.parquet: the
fused MoE layer of TensorRT-LLM's PyTorch flow, CUTLASS backend, balanced routing), for
TensorRT-LLM 1.2.0rc5 (H100, H200, B200) and 1.3.0rc10 (GB200), 256 to 16,384 tokens, tensor x
expert parallel up to 8. One row: GPU, format, hidden, expert width, top-k, experts, MoE tp, MoE ep,
tokens entering the layer (on every rank), measured milliseconds.

Model: planner.serve.timing for one MoE layer of those shapes: expert_linear_s (touched experts,
tile-padded rows, tile_k_efficiency) + moe_routing_s + the MoE share of activation_bytes_per_token
at HBM bandwidth. "Before" is the model before these terms: no tile efficiency, no routing work,
and the routed copies' hidden-wide traffic split over all tp ranks (not only the ep ones).

    python benchmarks/moe_kernel_check.py           # print and rewrite benchmarks/moe_kernel_results.md
    python benchmarks/moe_kernel_check.py --check   # print only
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner import catalog  # noqa: E402
from planner.serve import engines as E  # noqa: E402
from planner.serve import timing  # noqa: E402
from planner.serve.memory import ModelFacts  # noqa: E402

DATA = ROOT / "benchmarks" / "moe_kernel_aic.csv"
REPORT = ROOT / "benchmarks" / "moe_kernel_results.md"
SCHEME = {"bfloat16": "bf16", "fp8": "fp8", "fp8_block": "fp8-block", "nvfp4": "nvfp4", "w4a8_mxfp4_mxfp8": "mxfp4", "w4a16_mxfp4": "mxfp4"}


def layer_facts(h: int, i: int, k: int, e: int) -> ModelFacts:
    """One gated MoE layer (3 matrices per expert), nothing else."""
    return ModelFacts(layers=1, moe_layers=1, hidden=h, vocab=1, heads=1, attn=0.0, dense_mlp=0.0, shared=0.0,
                      routed=3.0 * h * i * e, router_norms=0.0, embed=0.0, head=0.0, experts=e, top_k=k,
                      kv_elems=0, kv_split_max=1, full_layers=1, window=0, attn_dim_prefill=0.0,
                      attn_dim_decode=0.0, ffn_per_token=float(k * i), expert_ffn=float(i))


def moe_layer_s(row: dict, new: bool = True, skew_alpha: float = 0.0, trtllm_gen: bool = False) -> float:
    """Seconds of one MoE layer on one GPU as planner.serve.timing charges it (skew_alpha: the router skew
    of planner.serve.routing_skew; 0 for AIConfigurator's balanced rows; trtllm_gen: TensorRT-LLM's TRTLLM-gen
    kernels, expert rows padded to timing.trtllm_gen_row_tile)."""
    gpu = catalog.gpu(row["gpu"])
    scheme = SCHEME[row["dtype"]]
    lin, _, bw = timing.rates(gpu, (scheme,))
    f = layer_facts(int(row["hidden"]), int(row["expert_ffn"]), int(row["top_k"]), int(row["experts"]))
    if not new:
        f = dataclasses.replace(f, expert_ffn=0.0)
    tp, ep, n = int(row["moe_tp"]) * int(row["moe_ep"]), int(row["moe_ep"]), float(row["tokens"])
    bpe = E.weight_bytes_per_element(scheme, f.hidden)
    deq = timing.dequant_s_per_weight(gpu, (scheme,))[0] if new else 0.0
    wo = timing.is_weight_only(scheme, gpu) and new
    gemm = float(np.atleast_1d(timing.expert_linear_s(f, 1, n, tp, lin[0], bw, bpe, np.array([ep]), deq, wo,
                                                          skew_alpha=skew_alpha, trtllm_gen=trtllm_gen))[0])
    none = dataclasses.replace(f, ffn_per_token=0.0, experts=0, top_k=0)
    ta = np.array([tp])
    e = np.array([ep if new else tp])  # before this round the copies' traffic was split over all tp ranks
    imb = timing.ep_rank_imbalance(f, n, e, skew_alpha) if new else 1.0
    moe_bytes = float((timing.activation_bytes_per_token(f, ta, ta, e, imb)
                       - timing.activation_bytes_per_token(none, ta, ta, e))[0])
    routing = timing.moe_routing_s(f, 1, n) if new else 0.0
    return gemm + routing + n * moe_bytes / bw


def rows() -> list[dict]:
    with DATA.open() as fh:
        return list(csv.DictReader(fh))


def summary(data: list[dict]) -> list[tuple[str, int, float, float, float]]:
    """(group, points, mean abs error before, after, median measured / model after) per GPU x format."""
    groups: dict[str, list] = {}
    for r in data:
        meas = float(r["latency_ms"]) * 1e-3
        groups.setdefault(f"{r['gpu']} {r['dtype']}", []).append((meas / moe_layer_s(r, False), meas / moe_layer_s(r)))
    out = []
    for g, v in sorted(groups.items()):
        a = np.array(v)
        out.append((g, len(a), float(np.mean(np.abs(1 / a[:, 0] - 1))), float(np.mean(np.abs(1 / a[:, 1] - 1))),
                    float(np.median(a[:, 1]))))
    return out


def in_scope(r: dict) -> bool:
    """Paths TensorRT-LLM runs: on Blackwell gpt-oss's MXFP4 experts run as W4A8 (MXFP8 activations), so
    the W4A16 MXFP4 timings of B200 / GB200 are reported but kept out of the totals."""
    return not (r["dtype"] == "w4a16_mxfp4" and r["gpu"] in ("b200", "gb200"))


def report(data: list[dict]) -> str:
    s = summary(data)
    scoped = [r for r in data if in_scope(r)]
    err = lambda new: np.mean([abs(moe_layer_s(r, new) / (float(r["latency_ms"]) * 1e-3) - 1) for r in scoped])  # noqa: E731
    lines = ["# MoE layer time: serving model vs NVIDIA's measured TensorRT-LLM MoE layers", "",
             "Rerun: `python benchmarks/moe_kernel_check.py` (module docstring: data and model). "
             "Error = model / measured - 1; before = without tile efficiency, routing work and the expert-TP "
             "traffic of the routed copies.", "",
             f"All points but Blackwell W4A16 MXFP4 ({len(scoped)}): mean abs error {100 * err(False):.1f}% before, "
             f"{100 * err(True):.1f}% after.", "",
             "| GPU, format | points | mean abs error before | after | median measured / model after |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {g} | {n} | {100 * b:.1f}% | {100 * a:.1f}% | {m:.2f} |" for g, n, b, a, m in s]
    lines += ["", "W4A16 MXFP4 (gpt-oss experts on Hopper: MXFP4 weights, bf16 activations, TensorRT-LLM's Triton "
              "MoE path) gets the dequantisation term (timing.DEQUANT_FP32_OPS_PER_WEIGHT, fitted to these Hopper "
              "points at 4,096 tokens and more) and the Triton kernel's row tile (timing.weight_only_row_tile). "
              "Blackwell W4A16 is a path TensorRT-LLM does not use for gpt-oss (W4A8: MXFP8 activations).",
              "", "fp8_block (block-scaled FP8, 128 x 128 weight blocks, 1 x 128 activation groups; DeepSeek-V3 / R1 "
              "checkpoints; rows extracted from the same AIConfigurator files, moe_dtype fp8_block, at the shapes of "
              "the fp8 rows) gets the CUDA-core promotion per output element and K block on Hopper "
              "(timing.BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT, fitted to the Hopper points at 4,096 tokens and more); "
              "B200 takes the scales in its block-scaled MMA and gets no term (its fp8_block timings run "
              "1.2-1.3x the per-tensor fp8 ones below 1,024 tokens and 0.94-1.07x above 2,048: not modelled)."]
    return "\n".join(lines)


SKEW_DATA = ROOT / "benchmarks" / "moe_skew_aic.csv"


def skew_lines() -> list[str]:
    """The same layers under AIConfigurator's skewed routing (benchmarks/moe_skew_aic.csv, extracted by
    benchmarks/moe_skew_extract.py): model with a uniform router vs with planner.serve.routing_skew."""
    if not SKEW_DATA.exists():
        return []
    data = [r for r in csv.DictReader(SKEW_DATA.open()) if in_scope(r)]
    base = {tuple(r[k] for k in ("gpu", "trtllm", "dtype", "hidden", "expert_ffn", "top_k", "experts", "moe_tp",
                                 "moe_ep", "tokens")): float(r["latency_ms"]) for r in rows()}
    lines = ["", "## Skewed routing (router load imbalance, planner/serve/routing_skew.py)", "",
             "AIConfigurator times the same layers with the experts' loads drawn from a power law "
             "(distribution power_law_1.01 / power_law_1.2; the EP rank with the most routed copies is timed). "
             "Model: expert_linear_s with skew_alpha 0 (uniform router: binomial spread only) and with the "
             "row's alpha; the planner uses alpha = routing_skew.ROUTING_SKEW_ALPHA for every model. "
             "Mean abs error of model / measured - 1; ratio = measured skewed / measured balanced (same shape) "
             "against the model's ratio, medians.", "",
             "| rows | points | uniform router | skew model, row's alpha | skew model, planner's alpha "
             "| measured ratio | model ratio |", "|---|---:|---:|---:|---:|---:|---:|"]
    from planner.serve.routing_skew import ROUTING_SKEW_ALPHA
    for dist in ("power_law_1.01", "power_law_1.2"):
        alpha = float(dist.rsplit("_", 1)[1])
        for label, keep in (("EP 1", lambda r: r["moe_ep"] == "1"), ("EP 2-8", lambda r: 1 < int(r["moe_ep"]) <= 8),
                            ("EP > 8", lambda r: int(r["moe_ep"]) > 8)):
            sel = [r for r in data if r["distribution"] == dist and keep(r)]
            if not sel:
                continue
            meas = np.array([float(r["latency_ms"]) * 1e-3 for r in sel])
            uni = np.array([moe_layer_s(r, True, 0.0) for r in sel])
            own = np.array([moe_layer_s(r, True, alpha) for r in sel])
            ours = np.array([moe_layer_s(r, True, ROUTING_SKEW_ALPHA) for r in sel])
            bal = np.array([base.get(tuple(r[k] for k in ("gpu", "trtllm", "dtype", "hidden", "expert_ffn", "top_k",
                                                          "experts", "moe_tp", "moe_ep", "tokens")), np.nan) * 1e-3
                            for r in sel])
            ok = np.isfinite(bal)
            err = lambda m: 100 * float(np.mean(np.abs(m / meas - 1)))  # noqa: E731
            lines.append(f"| {dist}, {label} | {len(sel)} | {err(uni):.1f}% | {err(own):.1f}% | {err(ours):.1f}% | "
                         f"{np.median(meas[ok] / bal[ok]):.2f} | {np.median(own[ok] / uni[ok]):.2f} |")
    return lines


def main() -> None:
    text = report(rows()) + "\n".join([""] + skew_lines())
    print(text)
    if "--check" not in sys.argv:
        REPORT.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
