"""MI355X MXFP4 MoE layer times of DeepSeek-R1 (AMD's tuned aiter fused-MoE kernels) against the planner's expert
term, at the TP4 / TP8 shapes of the InferenceX SGLang 0.5.9 MI355X rows.

Data: benchmarks/aiter_fmoe_mxfp4_mi355x_dsr1.csv, the rows of ROCm/aiter aiter/configs/model_configs/
dsv3_fp4_tuned_fmoe.csv @aa220405 (2026-08-05; the file exists from 2026-03-01, after the InferenceX run of
2026-02-27, so these are later tunings of the kernels that run used) with cu_num 256 (MI355X), model_dim 7168,
inter_dim 512 (TP4) / 256 (TP8), 257 experts, top-9 (SGLang's fused shared expert: 256 routed + 1 shared, top-8 + 1),
MXFP4 weights and activations (per_1x32): the tuner's time of stage 1 (gate+up), stage 2 (down) and the whole layer
in microseconds, and its row tile block_m, for 1-512 tokens.

Model: one MoE layer of the same plan (timing.expert_linear_s with one layer, the routed experts of tp ranks) plus the
shared expert as the planner times it (in the dense term: its bf16 weights, timing.dense_linear_s rows); the same with
the routed experts' weight read alone (no compute side: what any row tile would give at the model's HBM rate); the
implied read rate is the touched experts' MXFP4 bytes (routed share 1 - (1 - k/E)^n, shared always) / the measured time.

    python benchmarks/aiter_moe_check.py
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import serving_accuracy as S  # noqa: E402
from planner.serve import timing  # noqa: E402
from planner.serve.evaluate import Context  # noqa: E402
from planner.serve.plan import parse_serve_plan  # noqa: E402

TABLE = ROOT / "benchmarks" / "aiter_fmoe_mxfp4_mi355x_dsr1.csv"
POINTS = {512: "inferencex-sglang-mi355x-dsr1-tp4-ep1-fp4-1024-1024-c16",
          256: "inferencex-sglang-mi355x-dsr1-tp8-ep1-fp4-1024-8192-c64"}


def measured() -> dict:
    """{inter_dim: [(tokens, block_m, us)]} from TABLE."""
    out: dict = {}
    with TABLE.open() as fh:
        for r in csv.DictReader(fh):
            out.setdefault(int(r["inter_dim"]), []).append((int(r["tokens"]), int(r["block_m"]), float(r["us"])))
    return out


def model_layer_us(point: str, tokens: np.ndarray) -> tuple:
    """(routed expert us, shared expert us, routed experts' weight read alone us (any row tile), expert MXFP4 bytes
    per expert and rank, tp) of one MoE layer."""
    rows = {r["id"]: r for r in yaml.safe_load((ROOT / "benchmarks" / "serving_runs.yaml").read_text())}
    r = rows[point]
    r["precision"]["native_weight_format"] = r["model"].get("native_weight_format")
    sc, plan, _ = S.point_scenario(r)
    t = parse_serve_plan(plan, sc)
    ctx = Context(sc)
    f, hw, wq, tp = ctx.facts, ctx.hw, int(t["wq"][0]), int(t["tp"][0])
    per_layer = f.layers / f.moe_layers  # facts average the routed / shared parameters over all layers
    routed = timing.expert_linear_s(f, per_layer, tokens, tp, hw["lin"][wq], hw["bw"], hw["bpe"][wq], 1,
                                    hw["dequant"][wq], hw["weight_only"][wq], imbalance=1.0)
    touched = 1.0 - (1.0 - f.top_k / f.experts) ** tokens  # expert_linear_s's read side alone
    read = touched * f.routed * per_layer / tp * hw["bpe"][wq] / hw["bw"]
    shared_params = f.shared * per_layer / tp
    rows_ = timing.padded_rows(tokens)
    shared = np.maximum(2.0 * rows_ * shared_params / hw["lin_dense"][wq],
                        shared_params * hw["bpe_dense"][wq] / hw["bw"])
    expert_bytes = f.routed * per_layer / f.experts / tp * hw["bpe"][wq]
    return routed * 1e6, shared * 1e6, read * 1e6, float(expert_bytes), tp


def main() -> None:
    data = measured()
    print("| TP | tokens | aiter block_m | aiter us | model routed + shared us | model / aiter | model read alone / "
          "aiter | implied read TB/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for inter, point in POINTS.items():
        rows = [x for x in data[inter] if x[0] <= 128]
        tokens = np.array([x[0] for x in rows], dtype=float)
        routed, shared, read, eb, tp = model_layer_us(point, tokens)
        for (n, bm, us), ro, sh, rd in zip(rows, routed, shared, read):
            touched = 256 * (1 - (1 - 8 / 256) ** n) + 1  # routed experts touched + the fused shared expert
            rate = touched * eb / (us * 1e-6) / 1e12
            print(f"| {tp} | {n} | {bm} | {us:.1f} | {ro:.1f} + {sh:.1f} | {(ro + sh) / us:.2f} | "
                  f"{(rd + sh) / us:.2f} | {rate:.2f} |")


if __name__ == "__main__":
    main()
