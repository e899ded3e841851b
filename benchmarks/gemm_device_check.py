"""Matmul, attention and elementwise timings on one GPU, to check the planner's time model.

    python benchmarks/gemm_device_check.py > benchmarks/gemm_device/<gpu>.json

bf16 GEMM TFLOP/s for transformer shapes (m tokens x k -> n: Llama-3 8B/70B projections after their
tensor-parallel split, Qwen3-30B-A3B attention and expert shapes) and MAMF's best H100 shape; causal
scaled_dot_product_attention TFLOP/s (1 x 32 heads x 128, forward and backward) with PyTorch's
FlashAttention-2 and cuDNN backends; bytes per element that an eager (torchtitan-style) RMSNorm, a
fused one, a compiled one, SiLU x mul and a copy take at the GPU's peak HBM rate (`HBM_TB_S`).
FP8 (e4m3) GEMMs through torch._scaled_mm with bf16 output on the same shapes ("f8mm..."), and per-tensor
current-scaling quantisation (amax, scale, cast) eager and compiled ("q_..."): a second, equally
step of main() (run in the same session as a second script; keys merged into one JSON).
Each timing: 3 warm-up calls, then the mean of 20 between CUDA events.
"""

import json

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HBM_TB_S = 4.8  # H200
SHAPES = [(2048, 13312, 2048), (8192, 8192, 8192), (4096, 8192, 2560), (4096, 2048, 8192), (4096, 8192, 14336),
          (4096, 7168, 8192), (16384, 4096, 6144), (16384, 4096, 28672), (16384, 14336, 4096), (8192, 2048, 5120),
          (4096, 2048, 1536), (4096, 768, 2048), (512, 2048, 1536), (512, 768, 2048)]


def timed(f, n=20):
    for _ in range(3):
        f()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(n):
        f()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / n / 1e3


def main():
    dev, bf = "cuda", torch.bfloat16
    out = {}
    for m, k, n in SHAPES:
        x, w = torch.randn(m, k, device=dev, dtype=bf), torch.randn(k, n, device=dev, dtype=bf)
        out[f"mm{m}x{k}x{n}"] = 2 * m * k * n / timed(lambda: x @ w) / 1e12
    for s in (2048, 8192):
        q, kk, v = [torch.randn(1, 32, s, 128, device=dev, dtype=bf, requires_grad=True) for _ in range(3)]
        flops = 4 * s * s * 32 * 128 / 2
        for name, backend in (("fa", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
            with sdpa_kernel(backend):
                g = torch.randn_like(F.scaled_dot_product_attention(q, kk, v, is_causal=True))
                f = lambda: F.scaled_dot_product_attention(q, kk, v, is_causal=True)  # noqa: E731
                t_fwd = timed(f)
                t_bwd = timed(lambda: torch.autograd.grad(f(), (q, kk, v), g)) - t_fwd
                out[f"{name}{s}_fwd"], out[f"{name}{s}_bwd"] = flops / t_fwd / 1e12, 2.5 * flops / t_bwd / 1e12
    f8, one = torch.float8_e4m3fn, torch.ones((), device=dev)
    for m, k, n in SHAPES[:12]:
        x, w = torch.randn(m, k, device=dev).to(f8), torch.randn(n, k, device=dev).to(f8)
        out[f"f8mm{m}x{k}x{n}"] = 2 * m * k * n / timed(
            lambda: torch._scaled_mm(x, w.t(), one, one, out_dtype=bf)) / 1e12
    x = torch.randn(16384, 4096, device=dev, dtype=bf)

    def quantise(x):
        scale = 448 / x.abs().max().float()
        return (x.float() * scale).to(f8), scale

    quantise_c = torch.compile(quantise)
    for name, f in (("q_eager", lambda: quantise(x)), ("q_compiled", lambda: quantise_c(x))):
        out[name + "_B_per_elem_at_hbm_peak"] = timed(f) * HBM_TB_S * 1e12 / x.numel()
    wt = torch.ones(4096, device=dev, dtype=bf)

    def rmsnorm(x):
        y = x.float()
        return (y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + 1e-6)).type_as(x) * wt

    compiled = torch.compile(rmsnorm)
    for name, f in (("rms_eager", lambda: rmsnorm(x)), ("rms_F", lambda: F.rms_norm(x, (4096,), wt)),
                    ("rms_compiled", lambda: compiled(x)), ("silu_mul", lambda: F.silu(x) * x),
                    ("copy", lambda: x.clone())):
        out[name + "_B_per_elem_at_hbm_peak"] = timed(f) * HBM_TB_S * 1e12 / x.numel()
    out["torch"] = torch.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
