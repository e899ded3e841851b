"""The output layer (LM head and loss) and the multi-token prediction (MTP) modules in the compute
model: the stage that holds the loss runs the head once per prediction depth, and each MTP module
adds its projection and norms outside its transformer layer (which counts among the stage's layers)."""

from __future__ import annotations

from planner.estimate.compute_gemm import gemm_s
from planner.estimate.compute_quant import gemm_operand_bytes

# Loss bytes per logit: the bf16 logits read (2), fp32 written (4) and read again (4).
LOSS_BYTES_PER_LOGIT = 2.0 + 4.0 + 4.0


def output_layer_fwd_s(ctx, t, tokens, half_fps, hbm):
    """Forward seconds of the LM head and loss on the stage that holds them (bf16 even in FP8
    recipes; the embedding lookup is negligible): (1 + mtp_layers) x (gemm_s(tokens, h, vocab / tp) +
    tokens x LOSS_BYTES_PER_LOGIT x vocab / tp / HBM rate). Each MTP module runs the shared output
    layer and the loss once more on the stage that holds the loss (Megatron-Core process_mtp_loss,
    called in GPTModel._postprocess where post_process is set)."""
    return (1 + ctx.model.mtp_layers) * (
        gemm_s(tokens, ctx.model.hidden, ctx.model.vocab / t["tp"], half_fps, hbm)
        + tokens * LOSS_BYTES_PER_LOGIT * ctx.model.vocab / t["tp"] / hbm)


# Elementwise bytes per token and hidden unit of one MTP module outside its transformer layer, forward:
# enorm and hnorm each read h and write h (bf16: 2 + 2 bytes each), the concatenation reads 2h and writes 2h
# (4 + 4), and its own final norm reads h and writes h (2 + 2): 4 + 4 + 8 + 4 = 20 bytes (Megatron-Core
# MultiTokenPredictionLayer._concat_embeddings and _postprocess).
MTP_ELEMENTWISE_BYTES_PER_HIDDEN = 20.0


def mtp_extra_fwd_s(ctx, t, tokens, linear_fps, hbm):
    """Forward seconds of one MTP module outside its transformer layer on the stage that holds it:
    eh_proj, a column-parallel (tokens x 2h) @ (2h x h/tp) GEMM run in the FP8 context, and the norms
    and concatenation (MTP_ELEMENTWISE_BYTES_PER_HIDDEN). Backward is twice the forward as for the
    layers (stage_compute)."""
    h = ctx.model.hidden
    elem = gemm_operand_bytes(ctx, t)
    return gemm_s(tokens, 2 * h, h / t["tp"], linear_fps, hbm, elem) \
        + tokens * MTP_ELEMENTWISE_BYTES_PER_HIDDEN * h / hbm

