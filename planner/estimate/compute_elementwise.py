"""Bytes of the memory-bound elementwise kernels in the compute model: RMSNorm, rotary and the
gated activation, eager (one kernel per PyTorch op) or fused, and Megatron's unfused RoPE fallback
for YaRN models whose concentration factor is not 1. Sources beside each constant."""

from __future__ import annotations

from planner.estimate.table import MEG, TT

# Eager PyTorch (torchtitan without torch.compile) runs each elementwise op as its own kernel, each
# reading and writing the whole tensor. Bytes per element, from the op sequence in torchtitan's
# Llama model (torchtitan/models/llama/model.py, norms.py at 9dec370):
#   RMSNorm: x.float() 2+4, pow 4+4, mean 4, x*rsqrt 4+4, type_as 4+2, *weight 2+2 = 36 (fused: 2+2);
#     measured on an H200 it takes as long as 48 bytes at the model's HBM rate (its fp32 reduction
#     kernel runs below streaming speed: benchmarks/gemm_device_results.md), the value used;
#   rotary: float() 2+4, complex multiply 4+4, type_as 4+2 = 20 per q/k element (fused: 2+2);
#   SwiGLU: silu 2+2, multiply 2+2+2 = 10 per FFN element (fused: 2+2+2 = 6; measured: 9.3).
EAGER_RMSNORM_BYTES, FUSED_NORM_BYTES = 48.0, 4.0
EAGER_ROPE_BYTES, FUSED_ROPE_BYTES = 20.0, 4.0
EAGER_SWIGLU_BYTES, FUSED_SWIGLU_BYTES = 10.0, 6.0


# Megatron-Core applies RoPE through Transformer Engine's fused kernel only when the YaRN concentration
# factor (mscale) is 1; otherwise it falls back to its unfused PyTorch RoPE (rope_utils.py
# apply_rotary_pos_emb: "mscale=... is not supported by TE's fused RoPE. Using unfused
# implementation.", at 92c8482e). _apply_rotary_pos_emb_bshd per q/k element: t * cos (2 + 2),
# rotate_half's negation of one half and cat (1 + 1, 2 + 2), the product with sin (2 + 2), the sum
# (4 + 2), the final cat with the (empty) pass-through part (2 + 2) = 24 bytes forward; backward the
# two products' gradients (4 + 4), the negation's (2), the halves' gradient cat (4) and the sum of the
# two paths (6) = 20; as forward-equivalent bytes (the time model doubles forward for backward):
# (24 + 20) / 3. Kernels: 6 forward and 5 backward for each of q and k, 2 of them already counted
# as the fused kernel's.
MEGATRON_UNFUSED_ROPE_BYTES = (24.0 + 20.0) / 3
MEGATRON_UNFUSED_ROPE_EXTRA_KERNELS = 2 * (6 + 5) - 2


def yarn_concentration(m) -> float:
    """YaRN's attention concentration factor (transformers _compute_yarn_parameters, Megatron-Core
    _yarn_get_concentration_factor): get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
    when both are given, else get_mscale(factor); get_mscale(s, k) = 0.1 k ln(s) + 1 for s > 1.
    1 for other rotary scalings (gpt-oss: factor 32 -> 1.347; DeepSeek-V3: mscale = mscale_all_dim -> 1)."""
    import math

    rs = m.rope_scaling
    if rs is None or rs.type != "yarn" or rs.factor <= 1:
        return 1.0

    def get(k):
        return 0.1 * k * math.log(rs.factor) + 1.0
    if rs.mscale is not None and rs.mscale_all_dim is not None:
        return get(rs.mscale) / get(rs.mscale_all_dim)
    return get(1.0)


def megatron_unfused_rope(ctx, t):
    """True on Megatron rows whose model's YaRN concentration is not 1 (MEGATRON_UNFUSED_ROPE_BYTES)."""
    return (t["framework"] == MEG) & (abs(yarn_concentration(ctx.model) - 1.0) > 1e-9) & (ctx.model.position == "rope")


def eager_mask(ctx, t):
    """True where elementwise ops run unfused: torchtitan without `runtime.compile` (Megatron runs
    Transformer Engine's fused kernels; DeepSpeed is left as fused, not calibrated)."""
    return (t["framework"] == TT) & (not ctx.scenario.runtime.compile)

