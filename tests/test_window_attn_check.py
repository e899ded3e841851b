"""benchmarks/window_attn_check.py: the training attention model against NVIDIA's measured cuDNN SDPA
(cudnn-frontend benchmark results, benchmarks/cudnn_sdpa_measured.csv)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

import window_attn_check as W  # noqa: E402


@pytest.fixture(scope="module")
def rows():
    return W.compared()


def test_windowed_kernel_cost_is_linear_in_the_sequence(rows):
    """The premise of the planner's windowed-layer cost (score tiles visited, not the full causal
    triangle): cuDNN's 128-key sliding-window kernel takes the same time per token and head from 2k to
    16k tokens (within 10%), where a kernel that skipped no tile would grow 8x."""
    for gpu in ("gb200", "gb300"):
        for p in ("fwd", "bwd"):
            per = [r["time_ms"] / (r["batch"] * r["seq"] * r["q_heads"]) for r in rows
                   if r["gpu"] == gpu and r["window"] == 128 and r["pass"] == p and r["seq"] <= 16384]
            assert len(per) == 4
            assert max(per) / min(per) < 1.10


def test_full_causal_attention_within_35_percent_of_cudnn_from_4k(rows):
    """Full causal Llama-3.1 attention (64 / 8 heads of 128) on GB200 and H200, 4k-32k tokens: the
    planner's forward and backward layer times stay within 35% of the measured cuDNN kernel."""
    full = [r for r in rows if r["window"] is None and r["gpu"] in ("gb200", "h200") and r["seq"] >= 4096]
    assert len(full) == 16
    for r in full:
        assert abs(r["error"]) < 0.35, r


def test_model_time_grows_with_the_row_shape():
    """Twice the batch is twice the model's time, for a windowed and a full layer alike."""
    base = {"gpu": "gb200", "batch": 1, "seq": 8192, "q_heads": 64, "kv_heads": 8, "head_dim": 64}
    for window in (128, None):
        one = W.layer_times_ms({**base, "window": window})
        two = W.layer_times_ms({**base, "batch": 2, "window": window})
        assert two["fwd"] == pytest.approx(2 * one["fwd"], rel=1e-6)
        assert two["bwd"] == pytest.approx(2 * one["bwd"], rel=1e-6)
