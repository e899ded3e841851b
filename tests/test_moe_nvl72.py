"""benchmarks/moe_nvl72_decomposition.py reads the model consistently: its step terms add up to the step, the
published step is the row's global batch tokens over its published tokens/s (all GPUs), and its per-layer EP
term times the MoE layers and micro-batches of a stage is the step's EP time (a row without EP overlap)."""


import pytest
import yaml

from conftest import ROOT


def _decomposition():
    import moe_nvl72_decomposition

    return moe_nvl72_decomposition


def test_nvl72_row_decomposes_into_its_step():
    dec = _decomposition()
    runs = {r["id"]: r for r in yaml.safe_load((ROOT / "benchmarks" / "recipe_runs.yaml").read_text())}
    run = runs["mbridge26.04-gb300-fp8mx-qwen3-235b-256gpu"]  # pp4 vpp12 ep32 mbs2 ga64, 94 MoE layers, HybridEP
    assert dec.wanted(run)
    d = dec.decompose(run)
    assert sum(d["terms"].values()) == pytest.approx(d["step"], rel=1e-6)
    # the published step from the row itself: global batch tokens / (published tokens/s per GPU x GPUs)
    published = run["parallel"]["global_batch_tokens"] / (run["measured"]["tokens_per_sec_per_gpu"]
                                                        * run["hardware"]["num_gpus"])
    assert d["published_step"] == pytest.approx(published, rel=1e-6)
    assert d["error"] == pytest.approx(published / d["step"] - 1, rel=1e-6)
    assert d["layer"]["EP a2a"] * 1e-3 * 64 * 94 / 4 == pytest.approx(d["terms"]["ep_comm"], rel=0.03)
    assert d["dispatcher"] == "hybridep" and 0.1 < d["layer"]["EP a2a"] / sum(
        v for k, v in d["layer"].items() if k != "host") < 0.4
    assert "| mbridge26.04-gb300-fp8mx-qwen3-235b-256gpu |" in dec.render([d])
