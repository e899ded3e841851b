"""The time model against step timings measured on one H200 (benchmarks/step_device/h200.json, written by
benchmarks/step_device_check.py; compared as benchmarks/step_device_compare.py describes). Bounds sit
just above today's worst errors (benchmarks/step_device_results.md), so a change that moves a term away
from the measurement fails here."""

import json

import pytest

from conftest import ROOT

import step_device_compare as cmp  # noqa: E402

DATA = json.loads((ROOT / "benchmarks" / "step_device" / "h200.json").read_text())
TRAIN = [r for r in DATA["train"]["runs"] if "step_s" in r]
MOE = [r for r in DATA["moe"]["runs"] if r.get("grouped_s")]
DECODE = [r for r in DATA["serve"]["runs"] if r["kind"] == "decode" and "time_s" in r]


def test_measurements_are_there():
    assert len(TRAIN) == 6 and len(MOE) == 28 and len(DECODE) >= 20


@pytest.mark.parametrize("run", TRAIN, ids=[f"{r['recompute']}-{r['mbs']}x{r['seq']}" for r in TRAIN])
def test_training_step_time_and_peak_memory(run):
    """Whole step within 20% (worst today +18%, full recompute at 2 x 8192); the optimizer (the Megatron
    plan's passes, the measured layout) within 15% (today -10..-12%: the per-tensor kernels run below
    0.8 of HBM peak); peak allocated memory within 1%."""
    p = cmp.train_predicted(DATA["train"]["model"], DATA["train"]["ffn"], run)
    assert p["step"] == pytest.approx(run["step_s"], rel=0.20)
    assert p["optimizer"] == pytest.approx(run["optimizer_s"], rel=0.15)
    assert cmp.memory_predicted(DATA["train"], run) == pytest.approx(run["peak_allocated"] / 2**30, rel=0.01)


def test_serving_expert_model_on_grouped_gemms():
    """serve.timing.expert_linear_s against the measured grouped up + down of each (model, EP, tokens):
    every one within 20% (worst today +18%), mean absolute error below 10%."""
    pairs = {}
    for r in MOE:
        pairs.setdefault((r["model"], r["ep"], r["tokens"]), []).append(r["grouped_s"])
    errs = [cmp.moe_serve_predicted(name, tokens, ep) / sum(g) - 1 for (name, ep, tokens), g in pairs.items()]
    assert len(errs) == 14
    assert max(abs(e) for e in errs) < 0.20
    assert sum(abs(e) for e in errs) / len(errs) < 0.10


def test_serving_decode_without_attention():
    """The decode step's GEMMs, elementwise work and launches (stage_s less attention) against the
    CUDA-graph step without attention: bf16 batches 1-64 within 6%, every batch and format within 20%."""
    for r in DECODE:
        if r["part"] != "no_attn":
            continue
        p = cmp.serve_predicted(r["weights"], r["batch"], 0.0, r["ctx"], 0.0)
        model = p["gemm"] + p["elementwise"] + p["launch"]
        bound = 0.06 if r["weights"] == "bf16" and r["batch"] <= 64 else 0.20
        assert model == pytest.approx(r["time_s"], rel=bound), (r["weights"], r["batch"])
