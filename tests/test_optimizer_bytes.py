"""The optimizer step's HBM passes per framework and layout (planner.estimate.optimizer_bytes): what is
sharded and what is not, which frameworks copy and zero, the gradient cast and the FP8 parameter cast."""

import numpy as np
import pytest

from planner.estimate import memory, optimizer_bytes as ob, table
from planner.estimate.evaluate import Context
from planner.spec.load import resolve_scenario_dict
from planner.spec.scenario import Scenario

from conftest import ROOT

# Bytes per parameter of each pass, counted from the kernels' reads and writes (not the module's constants):
ADAMW = 28.0        # fused AdamW: fp32 master read + write, fp32 grad read, two fp32 states read + written
COPY_TO_16 = 6.0    # fp32 master read (4) -> bf16 parameter written (2)
GRAD_CAST = 6.0     # bf16 gradient read (2) -> fp32 written (4)


def ctx(runtime=None):
    data = {"model": "llama-3.1-8b", "cluster": {"node": "dgx-h100", "nodes": 2},
            "training": {"seq_len": 4096, "global_batch": 256, "tokens": 1e9}, "runtime": runtime or {}}
    return Context(Scenario.model_validate(resolve_scenario_dict(data, ROOT, None)))


def row(framework="megatron", zero=0, dp=1, precision="bf16"):
    return dict(framework=framework, precision=precision, dp=dp, tp=2, pp=1, cp=1, ep=1, vpp=1, sp=True, zero=zero,
                offload="none", offload_params="none", recompute="none", mbs=1, ga=8)


def per_param(c, rows):
    """(bytes, local params, shard params) per row."""
    t = table.from_plans(rows)
    mem = memory.memory(c, t)
    shard = np.where(t["zero"] >= 1, mem["partition_params"], mem["local_params"])
    return ob.optimizer_hbm_bytes(c, t, mem), mem["local_params"], shard


def test_distributed_optimizer_shards_adam_and_copy_but_not_the_grad_buffer_zeroing():
    """Megatron with the distributed optimizer over dp 8: the Adam and copy passes shrink 8x, the
    zero_grad_buffer pass over the whole local buffer does not; the difference is exactly that."""
    b, local, shard = per_param(ctx(), [row(zero=0, dp=8), row(zero=1, dp=8)])
    assert shard[1] == pytest.approx(local[1] / 8)
    per_shard = ADAMW + COPY_TO_16
    assert b[0] - b[1] == pytest.approx((local[0] - shard[1]) * per_shard)
    assert b[1] > shard[1] * per_shard  # the zeroing of the local buffer remains


def test_frameworks_differ_by_their_passes():
    """Same layout (dp 8, optimizer sharded): torchtitan runs the fused AdamW alone, DeepSpeed ZeRO-1 adds
    the gradient cast and the 16-bit copy, Megatron the copy and the zeroing of its whole fp32 buffer."""
    b, local, shard = per_param(ctx(), [row("torchtitan", 1, 8), row("deepspeed", 1, 8), row("megatron", 1, 8)])
    assert b[0] == pytest.approx(shard[0] * ADAMW)
    assert b[1] - b[0] == pytest.approx(shard[1] * (GRAD_CAST + COPY_TO_16))
    assert b[2] - b[0] == pytest.approx(shard[2] * COPY_TO_16 + local[2] * 4.0)


def test_bf16_grad_buffer_halves_the_zeroing_and_adds_the_cast():
    """grad_reduce_dtype bf16 (NeMo recipes): zeroing 2 B per local parameter instead of 4, and the
    `.float()` cast of the shard's gradients (read 2, write 4) appears."""
    (b32, local, shard) = per_param(ctx({"grad_reduce_dtype": "fp32"}), [row(zero=1, dp=8)])
    (b16, _, _) = per_param(ctx({"grad_reduce_dtype": "bf16"}), [row(zero=1, dp=8)])
    assert b16[0] - b32[0] == pytest.approx(shard[0] * GRAD_CAST - local[0] * 2.0)


def test_megatron_fsdp_has_no_zeroing_pass():
    b, local, shard = per_param(ctx(), [row("megatron", 3, 8)])
    # compute-dtype main grads (cast), Adam, copy; nothing over the local parameters
    assert b[0] == pytest.approx(shard[0] * (GRAD_CAST + ADAMW + COPY_TO_16))


@pytest.mark.parametrize("recipe, extra", [("delayed", 0.0), ("current", 4.0)])
def test_fp8_param_gather_casts_to_one_byte(recipe, extra):
    """--fp8-param-gather: the master shard is cast to FP8 (read 4, write 1) instead of copied to bf16
    (read 4, write 2); current scaling reads the master once more for its amax."""
    rt = {"fp8_param_gather": True, "fp8_recipe": recipe}
    (bq, _, shard) = per_param(ctx(rt), [row(zero=1, dp=8, precision="fp8")])
    (b16, _, _) = per_param(ctx({"fp8_recipe": recipe}), [row(zero=1, dp=8, precision="fp8")])
    assert bq[0] - b16[0] == pytest.approx(shard[0] * (5.0 + extra - COPY_TO_16))


def test_sgd_moves_fewer_bytes_than_adam():
    assert ob.optimizer_kernel_bytes("sgd") < ob.optimizer_kernel_bytes("adamw") == ADAMW
