"""TensorRT-LLM CUDA-graph padding (plan key graph_padding): generation-only steps compute the batch rounded up
to the captured size; the key reaches the emitted YAML; it is refused for other engines."""

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from planner.cli import main
from planner.serve import engines as E
from planner.serve import launch as L
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving
from planner.spec.serving import load_serving_scenario

from conftest import ROOT

runner = CliRunner()
SERVE_70B = ROOT / "scenarios" / "serve_70b.yaml"


def test_padded_batch_rounds_up_to_the_captured_size():
    b = np.array([300.0, 384.0, 520.0, 520.0, 2000.0, 9000.0])
    got = E.graph_padded_batch(b, np.ones(6), np.array([True, True, True, False, True, True]),
                               np.array([2048, 2048, 700, 2048, 2048, 9000]))
    # 520 under a 700-sequence limit pads to the limit, not to 1024; 9000 at its limit is a captured size itself
    assert got.tolist() == [384.0, 384.0, 700.0, 520.0, 2048.0, 9000.0]
    # attention data parallelism: each of 4 ranks pads its own 130 sequences to 256
    assert E.graph_padded_batch(520.0, 4, True, 4096).tolist() == 1024.0
    assert E.graph_batch_sizes(700) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 700]


def _est(plan):
    sc = load_serving_scenario(SERVE_70B)
    return estimate_serving(sc, parse_serve_plan(plan, sc))


def test_padding_slows_generation_steps_between_captured_sizes():
    base = "engine=trtllm,weights=fp8,kv_cache=fp8,tp=2,replicas=1,max_batch=300"
    plain, padded = _est(base), _est(base + ",graph_padding=true")
    assert padded["plan"]["graph_padding"] and not plain["plan"]["graph_padding"]
    assert padded["latency"]["tpot_ms"]["p50"] > plain["latency"]["tpot_ms"]["p50"]
    # on a captured size there is nothing to pad
    on = "engine=trtllm,weights=fp8,kv_cache=fp8,tp=2,replicas=1,max_batch=256"
    assert _est(on + ",graph_padding=true")["throughput"]["output_tokens_per_s"] == pytest.approx(
        _est(on)["throughput"]["output_tokens_per_s"], rel=0.02)


def test_graph_padding_reaches_the_trtllm_yaml_and_is_refused_elsewhere():
    sc = load_serving_scenario(SERVE_70B)
    r = _est("engine=trtllm,weights=fp8,kv_cache=fp8,tp=2,replicas=1,max_batch=700,graph_padding=true")
    cfg = yaml.safe_load(L.serving_files(sc, r)[L.TRT_YAML].split("\n", 1)[1])
    assert cfg["cuda_graph_config"] == {"enable_padding": True, "batch_sizes": E.graph_batch_sizes(700)}
    L.check_trtllm_config(cfg)  # the key exists in the pinned flag list
    out = runner.invoke(main, ["serve", str(SERVE_70B), "--plan", "engine=vllm,graph_padding=true"])
    assert out.exit_code == 2 and "TensorRT-LLM setting" in out.output
    plain = json.loads(runner.invoke(main, ["serve", str(SERVE_70B), "--plan", "engine=trtllm,tp=2",
                                            "--json"]).stdout)
    assert plain["plan"]["graph_padding"] is False


def test_published_points_carry_their_engine_release_and_graph_padding():
    """serving_accuracy.point_scenario: the perf-overview rows pad their CUDA graphs (their llm_options), the
    ROCm vLLM 0.10 rows name their release (serial host step), NIM rows neither."""
    import serving_accuracy as S

    rows = {r["id"]: r for r in yaml.safe_load((ROOT / "benchmarks" / "serving_runs.yaml").read_text())}
    plans = {}
    for key in ("trtllm10po-h200-llama31-405b-tp8-fp8-128-4096", "rocm-vllm010-mi300x-llama31-70b-tp8-fp8-128-2048",
                "nim18-h100x2-llama33-70b-tp2-fp8-5000-500-c1"):
        r = rows[key]
        r["precision"]["native_weight_format"] = r["model"].get("native_weight_format")
        plans[key] = S.point_scenario(r)[1]
    assert "graph_padding=true" in plans["trtllm10po-h200-llama31-405b-tp8-fp8-128-4096"]
    vllm = plans["rocm-vllm010-mi300x-llama31-70b-tp8-fp8-128-2048"]
    assert "engine_version=0.10.0" in vllm and "graph_padding" not in vllm
    nim = plans["nim18-h100x2-llama33-70b-tp2-fp8-5000-500-c1"]
    assert "graph_padding" not in nim and "engine_version" not in nim


def test_padding_cap_is_the_launch_files_per_rank_limit():
    """Under attention data parallelism the launch file sets each rank's max_batch_size to ceil(max_batch / tp)
    (launch._per_rank) and captures graph_batch_sizes of it; a rank's batch pads to the smallest of those sizes."""
    for plan, per in (({"max_batch": 100, "tp": 8, "attn_dp": True}, 9.0),  # sizes [1, 2, 4, 8, 13]
                      ({"max_batch": 9000, "tp": 1, "attn_dp": False}, 8500.0)):  # [..., 8192, 9000]
        ranks = plan["tp"] if plan["attn_dp"] else 1
        sizes = E.graph_batch_sizes(L._per_rank(plan))
        want = min(s for s in sizes if s >= per) * ranks
        assert E.graph_padded_batch(per * ranks, ranks, True, plan["max_batch"]).tolist() == want


@pytest.mark.parametrize("engine", ["trtllm", "vllm"])
def test_engine_version_of_a_plans_json_reads_back(engine):
    """The engine_version a plan's JSON prints (the pinned release's label: TensorRT-LLM's is a source commit)
    is accepted by --plan and gives the same estimate."""
    plan = f"engine={engine},weights=fp8,kv_cache=fp8,tp=2,replicas=1"
    first = json.loads(runner.invoke(main, ["serve", str(SERVE_70B), "--plan", plan, "--json"]).stdout)
    again = runner.invoke(main, ["serve", str(SERVE_70B), "--plan",
                                 plan + f",engine_version={first['plan']['engine_version']}", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == first


def test_padded_graphs_at_a_release_before_graphs_by_default_skip_the_eager_floor(tmp_path):
    """TensorRT-LLM before 1.0 runs without CUDA graphs by default (a step no faster than its kernels issued one
    by one); a plan that configures padded graphs (graph_padding, the launch file's cuda_graph_config) replays
    them, so its generation steps are not held to that floor and are faster than the same plan without padding
    where the floor binds (an 8B model on 8 GPUs at batch 1, where padding adds nothing: 1 is a captured size)."""
    data = yaml.safe_load(SERVE_70B.read_text())
    data["model"] = "llama-3.1-8b"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    sc = load_serving_scenario(path)
    base = "engine=trtllm,weights=fp8,kv_cache=fp8,tp=8,replicas=1,max_batch=1,engine_version=0.19.0"
    eager, graphs = (estimate_serving(sc, parse_serve_plan(p, sc)) for p in (base, base + ",graph_padding=true"))
    assert graphs["latency"]["tpot_ms"]["p50"] < eager["latency"]["tpot_ms"]["p50"]


def test_release_text_forms():
    """engines.version_code reads a release as the engines and their release pages print it."""
    want = E.version_code("0.10.0")
    assert [E.version_code(x) for x in ("v0.10.0", "V0.10.0", " 0.10.0", "0.10.0rc1", "0.10.0+rocm614")] == [want] * 5
    assert E.version_code("0.10") == want and E.version_code("0.9.2") < want < E.version_code("1.0.0")
    with pytest.raises(ValueError):
        E.version_code("latest")
