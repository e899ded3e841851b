"""Device check: host (CPU) cost of eager PyTorch work and sustained matmul throughput.

    python benchmarks/host_device_check.py OUT_DIR

Measures on the GPU machine, each as wall time over many repetitions where the GPU work per op is
tiny (so the wall time is the host's):
  * one eager elementwise op without autograd (dispatch + cudaLaunchKernel);
  * one elementwise op with autograd, forward and backward;
  * one small matmul (cuBLAS) forward and backward through F.linear with autograd;
  * a device-to-host copy of a scalar that the host waits for (the sync in an all-to-all dispatcher);
and a sustained bf16 GEMM (8192^3) for SUSTAIN_S seconds: TFLOP/s in the first and the last second,
SM clock and power read from nvidia-smi before and at the end. Writes host_device.json.
"""
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

SUSTAIN_S = float(os.environ.get("SUSTAIN_S", "45"))


def per_op(fn, n):
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n


def smi():
    q = "clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu"
    try:
        return subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as e:  # noqa: BLE001
        return repr(e)


def main(out):
    dev = torch.device("cuda")
    r = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0)}
    try:
        import transformer_engine  # noqa: F401
        r["transformer_engine"] = transformer_engine.__version__
    except Exception as e:  # noqa: BLE001
        r["transformer_engine"] = None
    x = torch.randn(1024, device=dev)
    r["eager_op_s"] = per_op(lambda: x.add_(1.0), 20000)

    a = torch.randn(1024, device=dev, requires_grad=True)

    def chain():
        y = a
        for _ in range(20):
            y = y * 1.001
        y.sum().backward()
    # 20 muls + sum forward, their backward ops, plus the backward of sum
    r["autograd_elementwise_fwd_bwd_s_per_op"] = per_op(chain, 500) / 21

    w = torch.randn(64, 64, device=dev, requires_grad=True)
    xi = torch.randn(128, 64, device=dev, requires_grad=True)

    def lin():
        F.linear(xi, w).sum().backward()
    r["linear_fwd_bwd_s"] = per_op(lin, 3000)

    experts = [torch.randn(64, 64, device=dev, requires_grad=True) for _ in range(16)]
    rows = torch.randn(16 * 32, 64, device=dev, requires_grad=True)

    def grouped():
        outs = [F.linear(c, e) for c, e in zip(rows.split(32), experts)]
        torch.cat(outs).sum().backward()
    r["per_expert_linear_fwd_bwd_s"] = per_op(grouped, 500) / 16

    s = torch.zeros((), device=dev)
    r["d2h_sync_s"] = per_op(lambda: s.add_(1).item(), 5000)

    # sustained matmul
    n = 8192
    A = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    B = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    flops = 2 * n ** 3
    r["smi_before"] = smi()
    t_start = time.perf_counter()
    seconds = []
    while time.perf_counter() - t_start < SUSTAIN_S:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        k = 0
        while time.perf_counter() - t0 < 1.0:
            for _ in range(10):
                A @ B
            k += 10
            torch.cuda.synchronize()
        seconds.append(k * flops / (time.perf_counter() - t0) / 1e12)
        if len(seconds) == int(SUSTAIN_S) - 2:
            r["smi_under_load"] = smi()
    r["sustained_bf16_tflops_per_second"] = [round(v, 1) for v in seconds]
    r["smi_after"] = smi()
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "host_device.json"), "w") as f:
        json.dump(r, f, indent=1)
    print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
