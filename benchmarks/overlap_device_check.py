"""How much does a GEMM slow down while a communication-like kernel shares the GPU? One-GPU proxy.

    python3 benchmarks/overlap_device_check.py --out overlap.json [--smoke]

Overlapped collectives (NCCL, Transformer Engine userbuffers, DeepEP) run as kernels of a few CTAs (one per
channel / SM budget: NCCL_MAX_NCHANNELS, TE's userbuffers SM count, DeepEP's num_sms) on another stream while the
GEMMs run. The planner charges TP_OVERLAP_CONTENTION (planner/estimate/comm.py, assumed 0.10) of the overlapped
communication time. This check times, on one GPU, bf16 GEMMs of transformer shapes looped on one stream while a
persistent Triton copy kernel of C CTAs (C = 8, 16, 32) loops on a second stream (it occupies C SMs and streams
HBM like a collective's reads and writes of its buffers; it does not move data over NVLink, so it is a proxy for
the SM and HBM share, not for the link), against each alone, all after a warm-up so the clock is power-capped.
Per (shape, C): GEMM seconds per call alone / shared, the copy's bytes per second alone / shared, and
    contention = (GEMM time shared - GEMM time alone) / (time the copy kernel ran next to the GEMMs)
which is the quantity the planner's constant stands for. Each measurement runs WINDOW_S seconds.
--smoke: only writes the result file with a note (no GPU or Triton needed; nothing is timed).
Status: prepared, NOT yet run on a device (2026-11-30: the device loan was paused before it ran); the Triton
kernel has not been compiled anywhere yet. TP_OVERLAP_CONTENTION stays assumed until it has.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memory_device_check as mdc  # noqa: E402  write_json

WINDOW_S = 1.0
SHAPES = [(16384, 4096, 6144), (4096, 8192, 14336), (16384, 14336, 4096), (4096, 2048, 8192)]
CTAS = (8, 16, 32)
COPY_BYTES = 1 << 30  # 1 GiB source buffer, well past the L2

try:
    import triton
    import triton.language as tl

    @triton.jit
    def _persistent_copy(src, dst, n, BLOCK: tl.constexpr, CTAS: tl.constexpr):
        pid = tl.program_id(0)
        for start in range(pid * BLOCK, n, CTAS * BLOCK):
            offs = start + tl.arange(0, BLOCK)
            mask = offs < n
            tl.store(dst + offs, tl.load(src + offs, mask=mask), mask=mask)
except Exception:  # noqa: BLE001  no Triton (smoke runs)
    triton = None


def copy_fn(src, dst, ctas):
    n = src.numel()
    return lambda: _persistent_copy[(ctas,)](src, dst, n, BLOCK=4096, CTAS=ctas, num_warps=8)


def loop_for(fn, seconds, stream):
    """Calls fn on `stream` until `seconds` of wall time have passed (synchronising every 8 calls); returns calls."""
    calls, end = 0, time.perf_counter() + seconds
    with torch.cuda.stream(stream):
        while time.perf_counter() < end:
            for _ in range(8):
                fn()
            calls += 8
            stream.synchronize()
    return calls


def queued(stream, fn, count):
    """Queue `count` calls of fn on stream between two timing events; returns (start, stop) events."""
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.cuda.stream(stream):
        start.record()
        for _ in range(count):
            fn()
        stop.record()
    return start, stop


def timed_window(gemm, copy, seconds):
    """GEMM and copy issued together from one host thread in rounds: each round queues G GEMMs on stream A and
    K copies on stream B (K chosen so both streams stay busy), then waits for both. Returns (gemm calls, gemm
    seconds per call, copy calls, copy seconds per call) with the GPU time of each stream's work measured by
    events at the ends of its rounds."""
    sa, sb = torch.cuda.Stream(), torch.cuda.Stream()
    ga, gb = [], []
    n_g = n_c = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        if gemm:
            ea0, ea1 = queued(sa, *gemm)
            n_g += gemm[1]
        if copy:
            eb0, eb1 = queued(sb, *copy)
            n_c += copy[1]
        torch.cuda.synchronize()
        if gemm:
            ga.append(ea0.elapsed_time(ea1) / 1e3)
        if copy:
            gb.append(eb0.elapsed_time(eb1) / 1e3)
    return n_g, (sum(ga) / n_g if n_g else None), n_c, (sum(gb) / n_c if n_c else None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.smoke and triton is not None
    res = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name() if cuda else "cpu",
           "window_s": WINDOW_S, "copy_bytes": COPY_BYTES, "rows": []}
    if not cuda:
        res["note"] = "smoke: no GPU or no Triton, nothing measured"
        mdc.write_json(args.out, res)
        print("smoke ok", flush=True)
        return 0
    bf = torch.bfloat16
    src = torch.empty(COPY_BYTES // 2, device="cuda", dtype=bf).normal_()
    dst = torch.empty_like(src)
    # warm up to the power-capped clock (the cap engages within ~50 ms: benchmarks/clock_device)
    a = torch.randn(8192, 8192, device="cuda", dtype=bf)
    loop_for(lambda: a @ a, 2.0, torch.cuda.current_stream())
    del a
    copies = {c: copy_fn(src, dst, c) for c in CTAS}
    for c in CTAS:  # compile each kernel (CTAS is a constexpr: one per C) before any timed window: the events
        copies[c]()  # of a window's first round would otherwise span the host's JIT compile
    torch.cuda.synchronize()
    copy_alone = {}
    for c in CTAS:
        _, _, n, t = timed_window(None, (copies[c], 4), WINDOW_S)
        copy_alone[c] = t
        res["rows"].append({"kind": "copy_alone", "ctas": c, "s_per_call": t, "gb_s": 2 * COPY_BYTES / t / 1e9})
        print(json.dumps(res["rows"][-1]), flush=True)
    for m, k, n in SHAPES:
        x, w = torch.randn(m, k, device="cuda", dtype=bf), torch.randn(k, n, device="cuda", dtype=bf)
        g = lambda: x @ w  # noqa: E731
        loop_for(g, 0.3, torch.cuda.current_stream())
        per_round = 8
        _, g_alone, _, _ = timed_window((g, per_round), None, WINDOW_S)
        row = {"kind": "gemm", "m": m, "k": k, "n": n, "gemm_alone_s": g_alone,
               "tflops_alone": 2 * m * k * n / g_alone / 1e12, "shared": []}
        for c in CTAS:
            # enough copies per round to cover the round's GEMMs alone
            k_c = max(1, round(per_round * g_alone / copy_alone[c]))
            ng, g_sh, nc, c_sh = timed_window((g, per_round), (copies[c], k_c), WINDOW_S)
            round_gemm = per_round * g_sh
            copy_busy = min(k_c * c_sh, round_gemm)  # copy time that ran next to the round's GEMMs
            row["shared"].append({"ctas": c, "copies_per_round": k_c, "gemm_shared_s": g_sh,
                                  "copy_shared_s": c_sh, "copy_alone_s": copy_alone[c],
                                  "gemm_slowdown": g_sh / g_alone,
                                  "contention": per_round * (g_sh - g_alone) / copy_busy if copy_busy else None})
        res["rows"].append(row)
        print(json.dumps(row), flush=True)
        mdc.write_json(args.out, res)
        del x, w
    mdc.write_json(args.out, res)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
