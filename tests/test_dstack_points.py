"""dstack's DeepSeek-R1 points run as launched (benchmarks/dstack_results.md): SGLang 0.4.3's
--enable-dp-attention is attention data parallel over all tp ranks with tensor-parallel MoE, and the attention-DP
plan differs from plain TP 8 where the physics says it must."""

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def _points(prefix):
    rows = yaml.safe_load((ROOT / "benchmarks" / "serving_runs.yaml").read_text())
    return [r for r in rows if r["id"].startswith(prefix)]


def test_dp_attention_launches_are_attention_dp_with_tensor_parallel_moe():
    import serving_accuracy as S

    pts = _points("dstack-sglang-h200")
    assert len(pts) == 3
    for r in pts:
        assert "--enable-dp-attention" in r["parallel"]["parallel_label"]
        _, plan, _ = S.point_scenario(r)
        assert "attn_dp=True" in plan and "ep=1," in plan and "tp=8," in plan
    for r in _points("dstack-sglang-mi300x") + _points("dstack-vllm"):
        _, plan, _ = S.point_scenario(r)
        assert "attn_dp=False" in plan  # launched without DP attention


def test_attention_dp_reads_replicated_attention_weights_at_small_batch():
    """At 4 requests every rank of the attention-DP plan reads all attention weights (slower than TP 8); at 128
    each rank reads only its own sequences' MLA cache (faster)."""
    import serving_accuracy as S
    from planner.serve.plan import parse_serve_plan

    for r in _points("dstack-sglang-h200"):
        sc, plan, _ = S.point_scenario(r)
        dp = S.estimate_serving(sc, parse_serve_plan(plan, sc))["throughput"]["output_tokens_per_s"]
        tp_plan = plan.replace("attn_dp=True", "attn_dp=False")
        tp = S.estimate_serving(sc, parse_serve_plan(tp_plan, sc))["throughput"]["output_tokens_per_s"]
        c = r["workload"]["concurrency"]
        assert (dp < tp) if c == 4 else (dp > tp) if c == 128 else True
