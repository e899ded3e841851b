"""Held-out check of the four per-operation FITTED constants of planner.serve.timing.

Each constant was fitted once on an extract of NVIDIA AIConfigurator's measured TensorRT-LLM per-operation
timings (benchmarks/*_aic.csv; see benchmarks/moe_kernel_check.py and benchmarks/decode_attn_check.py for
the data and the model of one operation). Here each is refitted on one part of its timings and scored on
the rest, with the same model and the other constants at their committed values:

* MOE_PAIR_S (routing work per token x chosen expert): fitted on every in-scope MoE layer timing
  (benchmarks/moe_kernel_aic.csv, as moe_kernel_check.in_scope) by the least mean absolute error.
* DEQUANT_FP32_OPS_PER_WEIGHT (W4A16 MXFP4 experts on Hopper) and BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT
  (fp8_block experts on Hopper): fitted as committed, the value whose median measured / model is 1 on the
  rows of 4,096 tokens and more of their format (both formats are timed on H100 and H200 only).
* DECODE_ATTN_SEQ_KVHEAD_S (generation attention per sequence and KV head): fitted on
  benchmarks/decode_attn_aic.csv with the planner's form, measured = GEMM_LAUNCH_S + KV bytes / achievable
  HBM bandwidth + c x batch x KV heads, by the least mean absolute error.

Splits: by GPU (fit on one, score on the others), by TensorRT-LLM version where there are several, by
shape (the distinct layer shapes sorted and dealt alternately into halves A and B: fit on one half, score
the other), and for the decode constant by KV-cache format. Errors are mean |model / measured - 1| over
every row of the scored part (all token counts), with the value fitted on the training part
(held-out), on the scored part itself (its own best value) and the committed value.

    python benchmarks/fitted_holdout.py            # print and rewrite benchmarks/fitted_holdout.md
    python benchmarks/fitted_holdout.py --check    # print only
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import moe_kernel_check as MK  # noqa: E402
from planner import catalog  # noqa: E402
from planner.atomic import write_atomic  # noqa: E402
from planner.estimate.compute_gemm import GEMM_LAUNCH_S, HBM_EFFICIENCY  # noqa: E402
from planner.serve import engines as E  # noqa: E402
from planner.serve import timing  # noqa: E402

REPORT = ROOT / "benchmarks" / "fitted_holdout.md"
DECODE_DATA = ROOT / "benchmarks" / "decode_attn_aic.csv"
SHAPE_MOE = ("hidden", "expert_ffn", "top_k", "experts")
SHAPE_ATTN = ("head_dim", "heads", "kv_heads")


def moe_curves(data: list[dict], name: str, grid: np.ndarray) -> np.ndarray:
    """Model seconds of each MoE row (rows) at each value of the constant `name` (columns): the committed
    model (moe_kernel_check.moe_layer_s) with that term replaced. MOE_PAIR_S enters linearly; the two
    CUDA-core terms enter the expert roofline's compute side (timing.expert_linear_s)."""
    out = np.empty((len(data), len(grid)))
    for i, r in enumerate(data):
        base = MK.moe_layer_s(r)
        n, k = float(r["tokens"]), int(r["top_k"])
        if name == "MOE_PAIR_S":
            out[i] = base - n * k * timing.MOE_PAIR_S + n * k * grid
            continue
        gpu = catalog.gpu(r["gpu"])
        scheme = MK.SCHEME[r["dtype"]]
        lin, _, bw = timing.rates(gpu, (scheme,))
        f = MK.layer_facts(int(r["hidden"]), int(r["expert_ffn"]), k, int(r["experts"]))
        tp, ep = int(r["moe_tp"]) * int(r["moe_ep"]), np.array([int(r["moe_ep"])])
        bpe = E.weight_bytes_per_element(scheme, f.hidden)
        wo = timing.is_weight_only(scheme, gpu)
        now = timing.dequant_s_per_weight(gpu, (scheme,))[0]
        fp32 = gpu.tflops.fp32 * 1e12
        gemm = lambda d: np.asarray(timing.expert_linear_s(f, 1, n, tp, lin[0], bw, bpe, ep, d, wo,
                                                                  skew_alpha=0.0))  # noqa: E731
        out[i] = base - float(np.atleast_1d(gemm(now))[0]) + gemm(grid / fp32)
    return out


def decode_curves(data: list[dict], grid: np.ndarray) -> np.ndarray:
    """Model seconds of each generation-attention row at each per-(sequence, KV head) time in grid: the
    planner's form GEMM_LAUNCH_S + KV read at HBM_EFFICIENCY x peak bandwidth + c x batch x KV heads."""
    out = np.empty((len(data), len(grid)))
    for i, r in enumerate(data):
        bw = catalog.gpu(r["gpu"]).hbm_tb_s * 1e12 * HBM_EFFICIENCY
        win, ctx = int(r["window"]), float(r["context"])
        ctx = min(ctx, win) if win else ctx
        units = float(r["batch"]) * float(r["kv_heads"])
        kvb = 1.0 if r["kv_dtype"] == "fp8" else 2.0
        out[i] = GEMM_LAUNCH_S + units * ctx * 2 * float(r["head_dim"]) * kvb / bw + units * grid
    return out


def err(model: np.ndarray, meas: np.ndarray) -> np.ndarray:
    """Mean |model / measured - 1| over rows, per grid column."""
    return np.mean(np.abs(model / meas[:, None] - 1), axis=0)


class Constant:
    """One fitted constant: its rows, their model curves over a grid of values, and its fit rule."""

    def __init__(self, name, data, curves, grid, committed, fit_rule, unit, scale):
        self.name, self.data, self.curves, self.grid = name, data, curves, grid
        self.committed, self.fit_rule, self.unit, self.scale = committed, fit_rule, unit, scale
        self.meas = np.array([float(r["latency_ms"]) * 1e-3 for r in data])
        self.at_committed = int(np.argmin(np.abs(grid - committed)))

    def fit(self, mask: np.ndarray) -> int:
        """Grid index of the value fitted on the rows in mask, by the constant's rule."""
        c, m = self.curves[mask], self.meas[mask]
        if self.fit_rule == "median":  # median measured / model = 1 on the rows of 4,096 tokens and more
            big = np.array([float(r["tokens"]) >= 4096 for r in self.data])[mask]
            ratio = np.median(m[big, None] / c[big], axis=0)
            return int(np.argmin(np.abs(ratio - 1)))
        return int(np.argmin(err(c, m)))

    def score(self, mask: np.ndarray, j: int) -> float:
        return float(err(self.curves[mask][:, [j]], self.meas[mask])[0])

    def split_row(self, label: str, train: np.ndarray, test: np.ndarray) -> str:
        """Markdown row: fitted value on train, in-sample error, held-out error, test's own best, committed."""
        j, own = self.fit(train), self.fit(test)
        v = lambda i: f"{self.grid[i] * self.scale:.3g}"  # noqa: E731
        return (f"| {label} | {int(train.sum())} / {int(test.sum())} | {v(j)} | {100 * self.score(train, j):.1f}% | "
                f"{100 * self.score(test, j):.1f}% | {v(own)}: {100 * self.score(test, own):.1f}% | "
                f"{100 * self.score(test, self.at_committed):.1f}% |")


def halves(data: list[dict], keys: tuple) -> np.ndarray:
    """True for rows whose shape falls in half A: distinct shapes sorted, dealt alternately A, B, A, ..."""
    shapes = sorted({tuple(int(r[k]) for k in keys) for r in data})
    a = set(shapes[0::2])
    return np.array([tuple(int(r[k]) for k in keys) in a for r in data])


def splits(c: Constant, by: list[str]) -> list[str]:
    """Rows of the table for one constant: in-sample fit on all rows, then every split in `by`."""
    everything = np.ones(len(c.data), bool)
    j = c.fit(everything)
    lines = [f"### {c.name} (committed {c.committed * c.scale:.3g} {c.unit})", "",
             f"All {len(c.data)} rows, in-sample: fitted {c.grid[j] * c.scale:.3g} {c.unit}, mean abs error "
             f"{100 * c.score(everything, j):.1f}% (committed value: "
             f"{100 * c.score(everything, c.at_committed):.1f}%).",
             "", f"| fit on -> score on | rows fit / scored | fitted ({c.unit}) | in-sample error | held-out error | "
             "scored part's own best: its error | committed value's error on scored part |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    col = {"gpu": "gpu", "version": "trtllm", "kv": "kv_dtype"}
    for kind in by:
        if kind == "shape":
            a = halves(c.data, SHAPE_ATTN if c.name == "DECODE_ATTN_SEQ_KVHEAD_S" else SHAPE_MOE)
            lines += [c.split_row("shape half A -> B", a, ~a), c.split_row("shape half B -> A", ~a, a)]
            continue
        vals = sorted({r[col[kind]] for r in c.data})
        for v in vals:
            m = np.array([r[col[kind]] == v for r in c.data])
            lines.append(c.split_row(f"{kind} {v} -> other {kind}s", m, ~m))
    return lines + [""]


def constants() -> list[Constant]:
    moe = [r for r in MK.rows() if MK.in_scope(r)]
    hopper = ("h100-sxm-80gb", "h200-sxm-141gb")
    w4 = [r for r in moe if r["dtype"] == "w4a16_mxfp4" and r["gpu"] in hopper]
    blk = [r for r in moe if r["dtype"] == "fp8_block" and r["gpu"] in hopper]
    with DECODE_DATA.open() as fh:
        dec = list(csv.DictReader(fh))
    g_pair = np.geomspace(0.25e-9, 20e-9, 161)
    g_ops = np.geomspace(1.0, 100.0, 161)
    g_dec = np.geomspace(1e-9, 200e-9, 241)
    return [Constant("MOE_PAIR_S", moe, moe_curves(moe, "MOE_PAIR_S", g_pair), g_pair, timing.MOE_PAIR_S, "min",
                     "ns", 1e9),
            Constant("DEQUANT_FP32_OPS_PER_WEIGHT", w4, moe_curves(w4, "ops", g_ops), g_ops,
                     timing.DEQUANT_FP32_OPS_PER_WEIGHT, "median", "FP32 ops", 1.0),
            Constant("BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT", blk, moe_curves(blk, "ops", g_ops), g_ops,
                     timing.BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT, "median", "FP32 ops", 1.0),
            Constant("DECODE_ATTN_SEQ_KVHEAD_S", dec, decode_curves(dec, g_dec), g_dec,
                     timing.DECODE_ATTN_SEQ_KVHEAD_S, "min", "ns", 1e9)]


def subset(c: Constant, keep) -> Constant:
    """The constant restricted to the rows for which keep(row) holds."""
    mask = np.array([bool(keep(r)) for r in c.data])
    return Constant(c.name, [r for r, k in zip(c.data, mask) if k], c.curves[mask], c.grid, c.committed,
                    c.fit_rule, c.unit, c.scale)


def blackwell_w4a16_lines() -> list[str]:
    """DEQUANT_FP32_OPS_PER_WEIGHT across architectures: GB200's W4A16 MXFP4 timings (a path the planner does not
    charge, TensorRT-LLM runs W4A8 there; out of moe_kernel_check's totals) modelled as on Hopper (bf16 MMA rate,
    the Triton row tile, ops per weight at GB200's vector FP32 peak): the ops value whose median measured /
    model is 1 at 4,096 tokens and more, and the error at the committed value."""
    data = [r for r in MK.rows() if r["dtype"] == "w4a16_mxfp4" and r["gpu"] == "gb200"]
    if not data:
        return []
    grid = np.geomspace(1.0, 100.0, 161)
    meas = np.array([float(r["latency_ms"]) * 1e-3 for r in data])
    curves = np.empty((len(data), len(grid)))
    for i, r in enumerate(data):
        gpu = catalog.gpu(r["gpu"])
        f = MK.layer_facts(int(r["hidden"]), int(r["expert_ffn"]), int(r["top_k"]), int(r["experts"]))
        n, tp, ep = float(r["tokens"]), int(r["moe_tp"]) * int(r["moe_ep"]), np.array([int(r["moe_ep"])])
        bpe = E.weight_bytes_per_element("mxfp4", f.hidden)
        gemm = lambda lin, d, wo: np.asarray(timing.expert_linear_s(  # noqa: E731
            f, 1, n, tp, lin, bw, bpe, ep, d, wo, skew_alpha=0.0))
        lin16, _, bw = timing.rates(gpu, ("bf16",))
        lin4, _, _ = timing.rates(gpu, ("mxfp4",))
        now = float(np.atleast_1d(gemm(lin4[0], 0.0, False))[0])  # the committed model: FP4 MMA, no conversion
        curves[i] = MK.moe_layer_s(r) - now + gemm(lin16[0], grid / (gpu.tflops.fp32 * 1e12), True)
    big = np.array([float(r["tokens"]) >= 4096 for r in data])
    j = int(np.argmin(np.abs(np.median(meas[big, None] / curves[big], axis=0) - 1)))
    k = int(np.argmin(np.abs(grid - timing.DEQUANT_FP32_OPS_PER_WEIGHT)))
    e = err(curves, meas)
    return [f"Across architectures (GB200, {len(data)} W4A16 MXFP4 timings of TensorRT-LLM 1.3.0rc10, modelled as "
            f"on Hopper): the Hopper value ({timing.DEQUANT_FP32_OPS_PER_WEIGHT:g} ops at GB200's vector FP32 peak) "
            f"scores {100 * e[k]:.1f}%; GB200's own fit is {grid[j]:.3g} ops ({100 * e[j]:.1f}%). The constant does "
            "not carry from Hopper to Blackwell: per converted weight GB200's kernel takes several times the "
            "Hopper time at a higher FP32 peak, so its cost is not set by the FP32 rate alone (another kernel "
            "schedule, not identified here). The planner charges the term only on GPUs without 4-bit tensor "
            "cores, where it rests on GH100 timings alone (H100 and H200 share the chip and the FP32 peak, so "
            "the GPU split above tests memory, not the compute scaling).", ""]


CONCLUSIONS = [
    "## What carries and what does not", "",
    "* MOE_PAIR_S carries: fitted on any one GPU (or TensorRT-LLM version, or half of the shapes) it scores the "
    "others within 0.7 point of their own best value (fitted values 2.0-3.2 ns against the committed 2.25). "
    "Kept as it is.",
    "* DEQUANT_FP32_OPS_PER_WEIGHT carries between H100 and H200 and between gpt-oss's two expert counts, but "
    "that is one chip (GH100, one FP32 peak) and one expert shape: it does not carry to Blackwell (GB200's "
    "W4A16 timings need about four times the ops at its FP32 peak, above). The planner charges it only where "
    "4-bit weights meet tensor cores without 4-bit MMA; on any such GPU other than Hopper (A100, MI300X) it is an "
    "extrapolation by the FP32 peak that no timing here checks.",
    "* BLOCK_FP8_PROMOTE_OPS_PER_WEIGHT carries between H100 and H200 and between halves of the shapes (held-out "
    "within 0.7 point of the scored part's own best); again one chip. Applied to CDNA3 (MI300X: FP8 MFMA without "
    "block scales) it is an extrapolation by the FP32 peak.",
    "* DECODE_ATTN_SEQ_KVHEAD_S carries across GPUs (H100, H200, B200) and shapes for the FP8-KV kernels of "
    "TensorRT-LLM 1.2.0rc5 / 1.3.0rc20 (fitted 5.7-9.1 ns per GPU; held-out within 4.2 points of the scored "
    "part's own best). It "
    "does not carry to a bf16 KV cache (Hopper's bf16 kernel costs about 30 ns per unit in every version: the "
    "FP8-fitted value scores the bf16 rows at 57.7% against their own 44.7%) nor to the Blackwell kernels of "
    "1.3.0rc10 (75-111 ns). Those are other kernels, not a per-GPU quantity (the same chip gives 8 and 80 ns "
    "in two versions), so no catalog figure replaces the constant; the planner's decode attention is "
    "TensorRT-LLM's FP8-KV XQA kernel's cost for every engine and KV format, a stated limit.", ""]


def report() -> str:
    pair, deq, blk, dec = constants()
    lines = ["# Held-out check of the fitted per-operation constants (planner/serve/timing.py)", "",
             "Rerun: `python benchmarks/fitted_holdout.py` (module docstring: data, fit rules, splits). Errors are "
             "mean |model / measured - 1| over every row of a part. In-sample = the part the value was fitted on; "
             "held-out = the other part with that value; the last two columns show how far the held-out value "
             "is from the scored part's own best value and from the committed constant.", ""]
    lines += splits(pair, ["gpu", "version", "shape"])
    lines += splits(deq, ["gpu", "shape"]) + blackwell_w4a16_lines()
    lines += splits(blk, ["gpu", "shape"])
    lines += splits(dec, ["kv"])
    lines += ["FP8 KV cache only, by TensorRT-LLM version:", ""]
    lines += splits(subset(dec, lambda r: r["kv_dtype"] == "fp8"), ["version"])[2:]
    lines += ["FP8 KV cache on B200 only (one chip, two versions):", ""]
    lines += splits(subset(dec, lambda r: r["kv_dtype"] == "fp8" and r["gpu"] == "b200"), ["version"])[2:]
    lines += ["FP8 KV cache, TensorRT-LLM 1.2.0rc5 and 1.3.0rc20 (the kernels the committed value was read from), "
              "by GPU and shape:", ""]
    lines += splits(subset(dec, lambda r: r["kv_dtype"] == "fp8" and r["trtllm"] != "1.3.0rc10"), ["gpu", "shape"])[2:]
    lines += CONCLUSIONS
    return "\n".join(lines)


def main() -> None:
    text = report()
    print(text)
    if "--check" not in sys.argv:
        write_atomic(REPORT, text + "\n")


if __name__ == "__main__":
    main()
