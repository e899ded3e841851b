"""benchmarks/gptoss_decomposition.py: the published step it derives agrees with the run's own
global batch and tokens/s, and its normalisations divide the same missing seconds."""

from pathlib import Path

import pytest
import yaml

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
import gptoss_decomposition as gd  # noqa: E402

RUN_ID = "mbridge26.04.01-b200-bf16-gpt-oss-120b-64gpu"


@pytest.fixture(scope="module")
def row():
    runs = yaml.safe_load((BENCH / "recipe_runs.yaml").read_text())
    run = next(r for r in runs if r["id"] == RUN_ID)
    return run, gd.decompose(run)


def test_published_step_from_the_runs_own_batch(row):
    run, d = row
    p, me = run["parallel"], run["measured"]
    tokens_per_gpu = p["global_batch_size"] * run["model"]["seq_length"] / run["hardware"]["num_gpus"]
    assert d["published_step"] == pytest.approx(tokens_per_gpu / me["tokens_per_sec_per_gpu"], rel=1e-4)


def test_normalisations_divide_the_missing_seconds_by_the_runs_own_layout(row):
    """The counts come from the run file, not from the script's own fields: global batch / (dp x mbs)
    micro-batches (the run's grad_accum_steps), layers / pp per GPU, mbs x seq / cp tokens each."""
    run, d = row
    p, seq = run["parallel"], run["model"]["seq_length"]
    ga = p["global_batch_size"] / (p["dp"] * p["micro_batch_size"])
    layers = run["model"]["layers"] / p["pp"]
    assert ga == p["grad_accum_steps"]
    missing = d["published_step"] - d["step"]
    assert d["ms_per_layer_mb"] * ga * layers / 1e3 == pytest.approx(missing)
    assert d["ns_per_token_layer"] * ga * p["micro_batch_size"] * seq / p["cp"] * layers / 1e9 == pytest.approx(missing)
    assert d["family"] == "gpt-oss-120b"


def test_spread_is_zero_for_constant_and_positive_otherwise():
    assert gd.spread([2.0, 2.0, 2.0]) == 0.0
    assert gd.spread([1.0, 3.0]) == pytest.approx(0.5)
