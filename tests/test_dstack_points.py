"""dstack's DeepSeek-R1 points run as launched (benchmarks/dstack_results.md): SGLang 0.4.3's
--enable-dp-attention is attention data parallel over all tp ranks with tensor-parallel MoE, and the attention-DP
plan differs from plain TP 8 where the physics says it must."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


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


def test_trtllm_pytorch_backend_releases_before_020_add_the_host_step_and_before_10_issue_eagerly(monkeypatch):
    """TensorRT-LLM 0.17-0.19: no overlap scheduler (GPU + host step); from 0.20 (release notes) max of the
    two. Before 1.0 no CUDA graphs: a stage is never shorter than its kernels issued one by one at the
    measured eager dispatch cost."""
    import numpy as np
    import pytest

    from planner import catalog
    from planner.estimate.host import HOST_LAUNCH_S
    from planner.serve import engines as E
    from planner.serve import timing
    from planner.serve.memory import model_facts

    v = E.version_code
    f = model_facts(catalog.model("llama-3.1-8b"))
    n = 4
    t = {"engine": np.full(n, E.TRTLLM), "attn_dp": np.zeros(n, bool), "tp": np.ones(n, int), "pp": np.ones(n, int),
         "engine_version": np.array([v("0.17.0"), v("0.19.0"), v("0.20.0"), E.PINNED_VERSION])}
    kernels = timing.stage_kernels(f, t, f.layers)
    assert kernels[0] == pytest.approx(f.layers * (f.gemms_per_layer + timing.LAYER_KERNELS))
    monkeypatch.setattr(timing, "stage_s", lambda *a: np.full(n, 3e-3))  # GPU step above the eager floor
    got = timing.iteration_s(f, t, None, None, 10.0, 0.0, 0.0, 0.0)
    assert got.tolist() == pytest.approx([3e-3 + timing.STEP_OVERHEAD_S] * 2 + [3e-3] * 2)
    monkeypatch.setattr(timing, "stage_s", lambda *a: np.full(n, 1e-4))  # a GPU step the host cannot keep up with
    got = timing.iteration_s(f, t, None, None, 10.0, 0.0, 0.0, 0.0)
    eager = kernels[0] * HOST_LAUNCH_S
    assert got.tolist() == pytest.approx([eager + timing.STEP_OVERHEAD_S] * 2 + [max(eager, timing.STEP_OVERHEAD_S),
                                                                                timing.STEP_OVERHEAD_S])
    assert E.decode_graphs(t["engine"], t["engine_version"]).tolist() == [False, False, False, True]
    assert E.decode_graphs(np.array([E.VLLM, E.SGLANG]), np.array([v("0.7.3"), v("0.4.3")])).all()


def test_each_point_runs_the_release_the_launch_readme_names():
    """engine_version of every dstack point is the release dstackai/benchmarks Deepseek-R1/README.md @209ca6f9 lists
    for that engine and GPU (sglang 0.4.3.post2 / 0.4.2.post4, vLLM 0.7.4.dev181 / 0.7.3.dev138, TensorRT-LLM
    0.17.post1.dev), cut to major.minor.patch; the dev builds fall between no two release thresholds of the model."""
    import serving_accuracy as S

    readme = {"dstack-sglang-h200": "0.4.3", "dstack-sglang-mi300x": "0.4.2", "dstack-vllm-h200": "0.7.4",
              "dstack-vllm-mi300x": "0.7.3", "dstack-trtllm-h200": "0.17"}
    for prefix, release in readme.items():
        pts = _points(prefix)
        assert len(pts) == 3
        for r in pts:
            _, plan, _ = S.point_scenario(r)
            assert f"engine_version={release}," in plan + ",", (r["id"], plan)
