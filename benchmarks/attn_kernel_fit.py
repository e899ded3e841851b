"""Fit of the Hopper-native attention kernel's form on NVIDIA's measured cuDNN SDPA timings.

Data: benchmarks/cudnn_sdpa_measured.csv, the full causal rows (Llama 3.1: 64 / 8 heads of 128, 2k-32k
tokens) of H200 and GB200, the GPUs whose matmul rate (MAMF) is measured; GB300's is transferred from
GB200 (catalogs/gpus.yaml), so its rows are shown, not fitted. Form (planner.estimate.compute_attention):
time = (attention_tiles(s) + K0 x query tiles) x tile FLOPs x heads x batch / (eta x bound), bound =
min(MAMF rate, exponential rate) as attention_rates computes it; eta per pass (forward, backward), K0
shared. eta is the geometric-mean ratio for a given K0; K0 minimises the rms relative error on a 0.05 grid.

Run: python benchmarks/attn_kernel_fit.py (prints the fitted constants and every row's residual)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from planner.catalog import node as catalog_node  # noqa: E402
from planner.estimate import compute_attention as A  # noqa: E402
from window_attn_check import NODES, measured_rows  # noqa: E402

FITTED = ("h200", "gb200")


def bound_fps(name: str, head_dim: int, bwd: bool) -> float:
    """min(bf16 MAMF rate, exponential rate) of the GPU for the pass, as attention_rates takes it."""
    g = catalog_node(NODES[name]).gpu  # the CSV's GPU label -> its node, as window_attn_check reads it
    mamf = g.peak_tflops("bf16") * 1e12 * g.matmul_efficiency.bf16
    per_score = 2.0 * 2 * head_dim * (A.FLASH_BWD_FLOPS_RATIO if bwd else 1.0)
    return min(mamf, A.exp_bound_fps(g, per_score))


def unit_time_ms(r: dict, k0: float) -> float:
    """The form's time at eta = 1, milliseconds."""
    bwd = r["pass"] == "bwd"
    tiles = A.attention_tiles(r["seq"]) + k0 * -(-r["seq"] // A.ATTN_TILE_Q)
    flops = tiles * A.ATTN_TILE_Q * A.ATTN_TILE_K * 4 * r["head_dim"] * (A.FLASH_BWD_FLOPS_RATIO if bwd else 1.0)
    return flops * r["q_heads"] * r["batch"] / bound_fps(r["gpu"], r["head_dim"], bwd) * 1e3


def fit(rows: list[dict], k0: float) -> tuple[dict, float]:
    """eta per pass over the fitted GPUs' rows and the rms relative error there."""
    eta, errs = {}, []
    for p in ("fwd", "bwd"):
        sel = [r for r in rows if r["pass"] == p and r["gpu"] in FITTED]
        eta[p] = float(np.exp(np.mean([np.log(unit_time_ms(r, k0) / r["time_ms"]) for r in sel])))
        errs += [unit_time_ms(r, k0) / eta[p] / r["time_ms"] - 1 for r in sel]
    return eta, float(np.sqrt(np.mean(np.square(errs))))


def main() -> int:
    rows = [r for r in measured_rows() if r["window"] is None]
    k0 = min(np.arange(0.0, 8.0, 0.05), key=lambda k: fit(rows, k)[1])
    eta, rms = fit(rows, k0)
    _, rms0 = fit(rows, 0.0)
    print(f"K0 = {k0:.2f} key tiles per query tile; eta fwd = {eta['fwd']:.3f}, bwd = {eta['bwd']:.3f}; "
          f"rms {100 * rms:.1f}% over {sum(r['gpu'] in FITTED for r in rows)} rows (K0 = 0: {100 * rms0:.1f}%)")
    for r in rows:
        model = unit_time_ms(r, k0) / eta[r["pass"]]
        tag = "fit" if r["gpu"] in FITTED else "shown"
        print(f"{r['gpu']:6s} {r['seq']:6d} {r['pass']} measured {r['time_ms']:8.3f} ms  form {model:8.3f} ms  "
              f"{100 * (model / r['time_ms'] - 1):+6.1f}%  ({tag})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
