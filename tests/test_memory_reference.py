"""The memory model against independent numbers: Korthikanti et al. 2022 Figure 1, DeepSpeed's own
model-state estimators (ecosystem.md section 3), and the Megatron-LM distributed-optimizer table."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from planner.estimate import memory, table
from planner.estimate.evaluate import Context
from planner.estimate.memory_terms_activations import activation_parts
from planner.estimate.memory_terms_runtime import DS_PREFETCH_BUCKET_ELEMENTS, zero3_live_bytes
from planner.spec.load import resolve_scenario_dict
from planner.spec.scenario import Scenario

from conftest import ROOT

GIB = 2**30
RUNS = ROOT.parent / "shared" / "calibration" / "published_runs.yaml"

# Korthikanti et al. 2022 (arXiv:2205.05198), Figure 1, per-GPU GiB, as in the calibration entry
# `korthikanti2022-fig1-memory-analytical`: (params + optimizer, activations 'none', activations
# 'seqsel'); 'none' = TP only, no recompute; 'seqsel' = TP + SP + selective recompute.
FIG1 = {"megatron-22B": (45.5625, 59.25, 9.5625), "gpt3-175B": (45.5625, 66.84375, 12.3515625),
        "turing-530B": (31.640625, 114.0234375, 23.076171875), "megatron-1T": (32.958984375, 131.25, 26.5625)}
# Table 3 configurations: layers, hidden, heads, pp, vpp, micro-batch, global batch (tp = 8, dp = 1).
TABLE3 = {"megatron-22B": (48, 6144, 64, 1, 1, 4, 4), "gpt3-175B": (96, 12288, 96, 8, 3, 1, 64),
          "turing-530B": (105, 20480, 128, 35, 3, 1, 280), "megatron-1T": (128, 25600, 160, 64, 1, 1, 512)}


def build(model, node="dgx-a100-80gb", nodes=1, seq=2048, gb=8, **extra):
    data = {"model": model, "cluster": {"node": node, "nodes": nodes},
            "training": {"seq_len": seq, "global_batch": gb, "tokens": 1e9}, **extra}
    return Scenario.model_validate(resolve_scenario_dict(data, ROOT, None))


def plan(**fields):
    base = dict(framework="megatron", precision="bf16", dp=1, tp=1, pp=1, cp=1, ep=1, vpp=1, sp=False, zero=1,
                offload="none", offload_params="none", recompute="none", mbs=1, ga=1)
    return table.from_plans([{**base, **fields}])  # any layout: the framework rules are not applied


@pytest.mark.skipif(not RUNS.exists(), reason="shared/calibration is not next to the repository")
def test_fig1_values_are_the_calibration_entry():
    runs = {r["id"]: r for r in yaml.safe_load(Path(RUNS).read_text())}
    ref = runs["korthikanti2022-fig1-memory-analytical"]["reference_values_analytical_gib"]
    for name, (states, none, seqsel) in FIG1.items():
        assert ref[name]["none"] == {"params_plus_optimizer": states, "activations": none}
        assert ref[name]["seqsel"] == {"params_plus_optimizer": states, "activations": seqsel}


@pytest.mark.parametrize("name", list(FIG1))
@pytest.mark.parametrize("mode", ["none", "seqsel"])
def test_korthikanti_figure_1(name, mode):
    """Figure 1 plots the paper's Eq. 2 per layer (sbh(10 + 24/t + 5as/(ht)) TP only, sbh*34/t with SP
    and selective recompute) times the first stage's layer-micro-batches in flight
    (L(1 + (p-1)/(pv)) interleaved), and 18 bytes per parameter of 12h^2 L/(tp) transformer weights
    (bf16 weights, fp32 main_grad, fp32 master and Adam moments, no distributed optimizer). Ours
    reproduces both exactly from the tensors (activations.layers; states per parameter x the same
    weights). What the figure leaves out, ours adds as named parts: the first stage's embedding
    dropout mask per micro-batch in flight and, with pp = 1, the fp32 logits and loss (Korthikanti
    Sec. 4.3 calls both negligible); they add 0.2-3.4% to the activations (most for the 22B 'seqsel'
    case, whose activations are smallest). The embedding weights the figure also leaves out add
    1.5-8.7% to the model states of the first stage."""
    layers, h, heads, pp, vpp, mbs, gb = TABLE3[name]
    model = dict(name=name, layers=layers, hidden=h, heads=heads, ffn_hidden=4 * h, ffn_act="gelu", vocab=51200,
                 tie_embeddings=True, position="learned", max_seq_len=2048, norm="layernorm", linear_bias=True,
                 dropout=True)
    sc = build(model, nodes=pp, gb=gb, runtime={"flash_attention": False})
    ctx = Context(sc)
    rc, sp = ("none", False) if mode == "none" else ("selective", True)
    t = plan(tp=8, pp=pp, vpp=vpp, sp=sp, zero=0, recompute=rc, mbs=mbs, ga=gb // mbs)
    states_ref, none_ref, seqsel_ref = FIG1[name]
    acts_ref = none_ref if mode == "none" else seqsel_ref

    per_layer = memory.layer_activation_bytes(ctx, t, flash=False)
    parts = activation_parts(ctx, t, "first", per_layer, memory.stage_params(ctx, t, "first"))
    assert float(parts["activations.layers"][0]) / GIB == pytest.approx(acts_ref, rel=1e-9)
    total = float(sum(parts.values())[0]) / GIB
    extras = float((parts["activations.embedding"] + parts["activations.logits_loss"])[0]) / GIB
    assert total == pytest.approx(acts_ref + extras, rel=1e-12) and 0 < extras < 0.035 * acts_ref
    assert float(memory.memory(ctx, t)["activations"][0]) / GIB >= acts_ref  # last stage never larger here

    ms = memory.model_state_bytes(ctx, t, "first")
    per_param = float(((ms["weights"] + ms["gradients"] + ms["optimizer"]) / ms["local_params"])[0])
    assert per_param == 18.0
    assert per_param * 12 * h * h * layers / (8 * pp) / GIB == pytest.approx(states_ref, rel=1e-9)
    with_embedding = float((ms["weights"] + ms["gradients"] + ms["optimizer"])[0]) / GIB
    assert states_ref < with_embedding < 1.09 * states_ref


# DeepSpeed 0.19.8 estimators for Qwen2.5-32B on 2 nodes x 8 GPUs, raw bytes (ecosystem.md section 3).
P, L = 32_763_876_352, 778_567_680
DS_ZERO2 = {"none": 102_387_113_600, "cpu": 65_527_752_704}
DS_ZERO3_GPU = {"none": 39_973_631_616, "cpu": 7_209_755_264, "cpu+params": 3_114_270_720}
DS_ZERO3_CPU_ZERO_INIT = {"cpu": 393_166_516_224, "cpu+params": 442_312_330_752}


@pytest.fixture(scope="module")
def qwen32b():
    sc = build("qwen2.5-32b", node="dgx-h100", nodes=2, seq=4096, gb=512)
    assert Context(sc).stats.params_total == P
    return sc


def ds_plan(zero, offload="none", offload_params="none"):
    return plan(framework="deepspeed", dp=16, zero=zero, offload=offload, offload_params=offload_params,
                recompute="full", ga=32)


def test_deepspeed_zero2_estimator(qwen32b):
    """estimate_zero2_model_states_mem_needs: gpu = 2P + 18P/N without offload, 2P with CPU offload.
    Ours: 2-byte weights, a 2-byte gradient partition, 12 bytes of master weights and Adam moments
    per partitioned parameter, and the 4-byte fp32 gradient partition DeepSpeed creates for its step
    (which the estimator counts as a steady 4 bytes): exactly 2P + 18P/N. With CPU offload the
    gradient partition goes to pinned host memory: exactly 2P. Where ours differs it is more
    complete: the estimator's host figure, P x max(4N, 16) x 1.5, multiplies by the total GPU count
    (a quirk ecosystem.md notes: 96 bytes per parameter per node for N = 16) where DeepSpeed holds
    16 bytes per partitioned parameter plus a 16-bit gradient accumulation buffer; and the GPU
    figure leaves out activations, buckets (3.6 GB with overlap_comm at 2e8), NCCL and context,
    which ours counts in `activations` and `other`."""
    ctx = Context(qwen32b)
    ms = memory.model_state_bytes(ctx, ds_plan(2), "first")
    assert float((ms["weights"] + ms["gradients"] + ms["optimizer"] + ms["step_temp"])[0]) == DS_ZERO2["none"]
    ms = memory.model_state_bytes(ctx, ds_plan(2, "cpu"), "first")
    assert float((ms["weights"] + ms["gradients"] + ms["optimizer"])[0]) == DS_ZERO2["cpu"]
    assert float(ms["step_temp"][0]) == 0.0
    mem = memory.memory(ctx, ds_plan(2, "cpu"))
    assert float(mem["host.offloaded_states"][0]) == (16 + 2) * P / 2  # per node: 8 of the 16 GPUs


def test_deepspeed_zero3_estimator(qwen32b):
    """estimate_zero3_model_states_mem_needs: gpu = 4L + 18P/N (no offload), 4L + 2P/N (optimizer
    offload), 4L (both), L = the largest module (the tied embedding here). Ours: the largest module
    gathered plus its full gradient is the same 4L (plus the prefetch bucket, 5e7 elements x 2 bytes,
    and the norm weights ZeRO-3 keeps resident); with offload the weights or nothing stay on the GPU,
    so the offload rows agree exactly. Without offload ours keeps 2 + 2 + 12 bytes per partitioned
    parameter plus an fp32 gradient temporary of one optimizer sub-group (1e9 elements) at the step,
    where the estimator counts 4 steady bytes per parameter and leaves out the 16-bit gradient
    partition (DeepSpeed's `grad_partitions_flat_buffer`). Host, zero_init = 1: the estimator's
    16P/nodes (18 with parameters) x 1.5 buffer factor; ours 16 (18) bytes x P/nodes plus the 16-bit
    gradient partition buffer DeepSpeed keeps on the host, and no factor."""
    ctx = Context(qwen32b)
    t = ds_plan(3)
    live = float(zero3_live_bytes(ctx, t, memory.stage_params(ctx, t, "first"))[0])
    norms = 2 * float(memory.stage_params(ctx, t, "first")["norms"][0])
    assert live - 2 * DS_PREFETCH_BUCKET_ELEMENTS - norms == 4 * L
    ms = memory.model_state_bytes(ctx, t, "first")
    steady = float((ms["weights"] + ms["gradients"] + ms["optimizer"])[0])
    assert steady == 16 * P / 16 and float(ms["step_temp"][0]) == 4 * 1e9  # one sub-group of 1e9
    # Counting the fp32 gradients as the estimator does, ours is its figure plus our 16-bit partition.
    assert steady + 4 * P / 16 + 4 * L == DS_ZERO3_GPU["none"] + 2 * P / 16
    for off, par in (("cpu", "none"), ("cpu", "cpu")):
        t = ds_plan(3, off, par)
        ms = memory.model_state_bytes(ctx, t, "first")
        gathered = float(zero3_live_bytes(ctx, t, memory.stage_params(ctx, t, "first"))[0]) \
            - 2 * DS_PREFETCH_BUCKET_ELEMENTS - norms
        gpu = float((ms["weights"] + ms["gradients"] + ms["optimizer"])[0]) + gathered
        key = "cpu+params" if par == "cpu" else "cpu"
        assert gpu == DS_ZERO3_GPU[key]
        host = float(memory.memory(ctx, t)["host.offloaded_states"][0])
        assert host == DS_ZERO3_CPU_ZERO_INIT[key] / 1.5 + 2 * P / 2


@pytest.mark.parametrize("precision,without,with_d", [("bf16", 18, (6, 12)), ("fp16", 20, (4, 16)),
                                                      ("fp32", 16, (8, 8))])
def test_megatron_distributed_optimizer_table(precision, without, with_d):
    """Megatron-LM docs, "Distributed Optimizer": bytes per parameter without / with it, d = data-parallel
    size: 18 / 6 + 12/d (bf16 params, fp32 grads), 20 / 4 + 16/d (fp16), 16 / 8 + 8/d (fp32)."""
    sc = build("llama-3.1-8b", node="dgx-h100", nodes=8, seq=4096, gb=512)
    ctx = Context(sc)
    for zero, expected in ((0, without), (1, with_d[0] + with_d[1] / 64)):
        ms = memory.model_state_bytes(ctx, plan(precision=precision, dp=64, zero=zero, ga=8), "first")
        per_param = (ms["weights"] + ms["gradients"] + ms["optimizer"] + ms["step_temp"]) / ms["local_params"]
        assert float(per_param[0]) == pytest.approx(expected, rel=1e-12)


def test_zero_paper_figure_1():
    """Rajbhandari et al. 2020, Fig. 1: Psi = 7.5B, Nd = 64, K = 12: 120 / 31.4 / 16.6 / 1.9 GB, i.e.
    16, 4 + 12/64, 2 + 14/64 and 16/64 bytes per parameter (DeepSpeed steady states; the step's fp32
    gradient partition apart)."""
    sc = build("llama-3.1-8b", node="dgx-h100", nodes=8, seq=4096, gb=512)
    ctx = Context(sc)
    for zero, per_param, paper_gb in ((0, 16.0, 120), (1, 4 + 12 / 64, 31.4), (2, 2 + 14 / 64, 16.6),
                                      (3, 16 / 64, 1.9)):
        ms = memory.model_state_bytes(ctx, plan(framework="deepspeed", dp=64, zero=zero, ga=8), "first")
        total = ms["weights"] + ms["gradients"] + ms["optimizer"]
        assert float((total / ms["local_params"])[0]) == pytest.approx(per_param, rel=1e-12)
        assert 7.5e9 * per_param / 1e9 == pytest.approx(paper_gb, rel=0.02)
        assert np.all(ms["step_temp"] == 4 * ms["local_params"] / np.where(zero >= 1, 64, 1))
