"""Does a training step settle at the power-limited clock? Step times and SM clock over a sustained run.

    python3 benchmarks/clock_device_check.py --out clock.json [--smoke]

The planner slows the tensor-core rate of GPUs with a measured `sustained_tensor_fraction` (catalogs/gpus.yaml;
compute_gemm.sustained_clock) by the share of the step the GPU computes. That fraction was measured on a GEMM loop
(benchmarks/host_device_results.md); benchmarks/step_device_results.md found short runs of real steps (7 steps)
running near the burst clock. This check runs each load back to back for a fixed time and samples the GPU through
NVML every SAMPLE_S in a thread: SM clock, power draw, and the clock-event reasons (SW power cap, HW slowdown):
  gemm        a bf16 8192^3 matmul, looped (the reference: the measured 0.825 of burst)
  step-*      the 8-layer Llama-shaped step of benchmarks/memory_device_check.py (Megatron mixed-precision layout,
              eager, recompute none) at (mbs 1, s 4096) and (mbs 2, s 8192), looped
Per load: the time of every unit (CUDA events), and the samples. The comparison takes the first units (cool, burst
clock) against the settled ones (the last third of the run).
  shapes      (--sections shapes) every GEMM shape of benchmarks/gemm_device_check.py, bf16 and FP8: after
              IDLE_S of idle, the median of the first calls (cold: burst clock), then after HEAT_S of the same
              shape looped, the median of SHAPE_CALLS calls (sustained), with the SM clock at both moments
--smoke: tiny sizes on the CPU, no NVML (exercises the code paths).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memory_device_check as mdc  # noqa: E402

SAMPLE_S = 0.05
IDLE_S, HEAT_S, SHAPE_CALLS = 1.5, 2.0, 20
RUN_S = {"gemm": 20.0, "step-mbs1-s4096": 25.0, "step-mbs2-s8192": 30.0}
SMOKE_RUN_S = 1.0


class Sampler(threading.Thread):
    """NVML samples (time, SM MHz, power W, SW power cap active, HW slowdown active) every SAMPLE_S."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples, self.stop, self.nvml = [], threading.Event(), None
        self.t0 = time.perf_counter()
        try:
            import pynvml
            pynvml.nvmlInit()
            self.nvml, self.h = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception as e:  # noqa: BLE001  no NVML (smoke runs): no samples
            self.error = f"{type(e).__name__}: {e}"

    def run(self):
        if self.nvml is None:
            return self.run_smi()
        n, t0 = self.nvml, self.t0
        reasons = getattr(n, "nvmlDeviceGetCurrentClocksEventReasons", None) or n.nvmlDeviceGetCurrentClocksThrottleReasons
        while not self.stop.is_set():
            try:
                r = reasons(self.h)
                self.samples.append((round(time.perf_counter() - t0, 3),
                                     n.nvmlDeviceGetClockInfo(self.h, n.NVML_CLOCK_SM),
                                     round(n.nvmlDeviceGetPowerUsage(self.h) / 1e3, 1),
                                     int(bool(r & 0x4)), int(bool(r & 0x8))))  # SW power cap, HW slowdown
            except Exception:  # noqa: BLE001
                pass
            time.sleep(SAMPLE_S)


    def run_smi(self):
        """Fallback without NVML's Python binding: nvidia-smi every 10 x SAMPLE_S."""
        import subprocess
        q = "clocks.sm,power.draw,clocks_event_reasons.sw_power_cap,clocks_event_reasons.hw_slowdown"
        while not self.stop.is_set():
            try:
                o = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader,nounits"],
                                   capture_output=True, text=True, timeout=5).stdout.split(",")
                self.samples.append((round(time.perf_counter() - self.t0, 3), int(o[0]), float(o[1]),
                                     int("Active" in o[2]), int("Active" in o[3])))
            except Exception:  # noqa: BLE001  no nvidia-smi (smoke runs): no samples
                return
            time.sleep(10 * SAMPLE_S)


def loop(fn, seconds: float, cuda: bool):
    """Runs fn back to back for `seconds`; returns the per-call times (CUDA events on a GPU)."""
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        if cuda:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) / 1e3)
        else:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return times


def timed_calls(fn, n: int, cuda: bool) -> list:
    """Seconds of each of n back-to-back calls (one CUDA event between calls)."""
    if not cuda:
        out = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
        return out
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(n + 1)]
    ev[0].record()
    for i in range(n):
        fn()
        ev[i + 1].record()
    torch.cuda.synchronize()
    return [a.elapsed_time(b) / 1e3 for a, b in zip(ev, ev[1:])]


def shapes_section(res: dict, sampler, cuda: bool, smoke: bool):
    """Cold and sustained rate of each gemm_device_check shape, bf16 and FP8 (torch._scaled_mm, bf16 out)."""
    import gemm_device_check as gdc
    dev, bf, f8 = ("cuda" if cuda else "cpu"), torch.bfloat16, torch.float8_e4m3fn
    rows = res.setdefault("shapes", [])
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    for prec in ("bf16", "fp8"):
        for m, k, n in gdc.SHAPES:
            if smoke:
                m, k, n = max(m // 64, 16), max(k // 64, 16), max(n // 64, 16)
            r = {"prec": prec, "m": m, "k": k, "n": n}
            try:
                if prec == "bf16":
                    x, w = torch.randn(m, k, device=dev, dtype=bf), torch.randn(k, n, device=dev, dtype=bf)
                    fn = lambda: x @ w  # noqa: E731
                else:
                    if smoke:
                        continue
                    one = torch.ones((), device=dev)
                    x, w = torch.randn(m, k, device=dev).to(f8), torch.randn(n, k, device=dev).to(f8)
                    fn = lambda: torch._scaled_mm(x, w.t(), one, one, out_dtype=bf)  # noqa: E731
                fn()
                if cuda:
                    torch.cuda.synchronize()
                time.sleep(0 if smoke else IDLE_S)
                r["cold_mhz"] = sampler.samples[-1][1] if sampler.samples else None
                cold = timed_calls(fn, 8, cuda)
                end = time.perf_counter() + (0.05 if smoke else HEAT_S)
                while time.perf_counter() < end:
                    for _ in range(10):
                        fn()
                    if cuda:
                        torch.cuda.synchronize()
                r["hot_mhz"] = sampler.samples[-1][1] if sampler.samples else None
                hot = timed_calls(fn, SHAPE_CALLS, cuda)
                flops = 2.0 * m * k * n
                r.update(cold_s=cold, cold_tflops=flops / med(cold[:5]) / 1e12, hot_tflops=flops / med(hot) / 1e12)
            except Exception as e:  # noqa: BLE001  keep the other shapes
                r["error"] = f"{type(e).__name__}: {e}"[:300]
            rows.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "cold_s"}), flush=True)


def summary(times, samples):
    n = len(times)
    third = times[2 * n // 3:] or times
    med = lambda v: sorted(v)[len(v) // 2] if v else None  # noqa: E731
    settled = samples[2 * len(samples) // 3:] if samples else []
    return {"units": n, "first_s": times[:3], "settled_median_s": med(third),
            "first_over_settled": (min(times[:3]) / med(third)) if n >= 3 else None,
            "settled_sm_mhz_median": med([s[1] for s in settled]),
            "settled_power_w_median": med([s[2] for s in settled]),
            "settled_power_cap_share": (sum(s[3] for s in settled) / len(settled)) if settled else None,
            "max_sm_mhz": max((s[1] for s in samples), default=None)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--sections", default="loads", help="loads, shapes or loads,shapes")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.smoke
    dev = "cuda" if cuda else "cpu"
    if args.smoke:
        mdc.MODEL, mdc.FFN = dict(layers=2, hidden=256, heads=4, head_dim=64, vocab=1000), {"swiglu": 512}
    sampler = Sampler()
    sampler.start()
    res = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name() if cuda else "cpu",
           "sample_s": SAMPLE_S, "nvml_error": getattr(sampler, "error", None), "loads": {}}

    def record(name, fn, seconds):
        start = time.perf_counter() - sampler.t0
        try:
            times = loop(fn, seconds, cuda)
        except Exception as e:  # noqa: BLE001  keep the other loads
            res["loads"][name] = {"error": f"{type(e).__name__}: {e}"[:400]}
            return
        samples = [s for s in sampler.samples if s[0] >= start]
        res["loads"][name] = {"times_s": [round(t, 6) for t in times], "samples": samples,
                              **summary(times, samples)}
        print(name, json.dumps({k: v for k, v in res["loads"][name].items() if k not in ("times_s", "samples")}),
              flush=True)
        mdc.write_json(args.out, res)
        time.sleep(0 if args.smoke else 3.0)  # let the board cool a little between loads

    if "shapes" in args.sections.split(","):
        shapes_section(res, sampler, cuda, args.smoke)
        mdc.write_json(args.out, res)
    if "loads" not in args.sections.split(","):
        sampler.stop.set()
        print("done", flush=True)
        return 0
    size = 256 if args.smoke else 8192
    a = torch.randn(size, size, device=dev, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=dev, dtype=torch.bfloat16)
    record("gemm", lambda: torch.mm(a, b), SMOKE_RUN_S if args.smoke else RUN_S["gemm"])
    del a, b

    model, params, master, opt = mdc.megatron_model("swiglu", "none", dev)

    for mbs, seq in ((1, 64), (2, 32)) if args.smoke else ((1, 4096), (2, 8192)):
        tokens = torch.randint(0, mdc.MODEL["vocab"], (mbs, seq), device=dev)
        targets = torch.randint(0, mdc.MODEL["vocab"], (mbs, seq), device=dev)

        def step():
            loss = model(tokens, targets)
            loss.backward()
            mdc.optimizer_step(params, master, opt)

        name = f"step-mbs{mbs}-s{seq}" if not args.smoke else f"step-mbs{mbs}-s{4096 * mbs}"
        record(name, step, SMOKE_RUN_S if args.smoke else RUN_S[name])
        del tokens, targets
    sampler.stop.set()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
