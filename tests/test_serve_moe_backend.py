"""TensorRT-LLM's TRTLLM-gen MoE backend (plan key moe_backend=trtllm): decode steps of a few tokens per expert pad
the expert rows to small tiles instead of 128-row CUTLASS tiles; large batches are unchanged; the key reaches the
emitted YAML and is refused off Blackwell, off TensorRT-LLM and for dense models."""

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from planner.cli import main
from planner.errors import InputError
from planner.serve import launch as L
from planner.serve import timing
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving

from conftest import ROOT, serving_point

runner = CliRunner()
SERVE_70B = ROOT / "scenarios" / "serve_70b.yaml"
POINT = "inferencex-trtllm-b200-dsr1-tp4-ep1-fp4-1024-1024-c16"


def test_the_published_trtllm_rows_name_the_backend_their_launch_file_sets():
    _, plan, _ = serving_point(POINT)
    assert "moe_backend=trtllm" in plan
    _, sglang_plan, _ = serving_point("inferencex-sglang-b200-dsr1-tp4-ep4-fp4-1024-1024-c16")
    assert "moe_backend" not in sglang_plan  # SGLang's flashinfer_trtllm runner is not mapped (engines.MOE_BACKENDS)


def test_small_tiles_at_decode_and_none_at_large_batches():
    sc, plan, _ = serving_point(POINT)
    base = plan.replace(",moe_backend=trtllm", "")
    default, gen = (estimate_serving(sc, parse_serve_plan(p, sc)) for p in (base, base + ",moe_backend=trtllm"))
    assert default["plan"]["moe_backend"] == "default" and gen["plan"]["moe_backend"] == "trtllm"
    assert gen["latency"]["tpot_ms"]["p50"] < 0.9 * default["latency"]["tpot_ms"]["p50"]
    # the tile reaches the 128 rows of the CUTLASS model once the tokens per expert do
    facts = type("F", (), {"top_k": 8, "experts": 256})()
    tiles = timing.trtllm_gen_row_tile(facts, np.array([1.0, 16.0, 300.0, 4096.0, 20000.0]))
    assert tiles[0] == tiles[1] == 8.0 and tiles[3] == tiles[4] == timing.GEMM_TILE_ROWS and 8.0 < tiles[2] < 128.0


def test_backend_reaches_the_yaml_and_is_refused_where_the_kernels_do_not_run():
    sc, plan, _ = serving_point(POINT)
    r = estimate_serving(sc, parse_serve_plan(plan, sc))
    cfg = yaml.safe_load(L.serving_files(sc, r)[L.TRT_YAML].split("\n", 1)[1])
    assert cfg["moe_config"] == {"backend": "TRTLLM"}
    L.check_trtllm_config(cfg)  # the key and value exist in the pinned flag list
    sglang = plan.replace("engine=trtllm", "engine=sglang").replace(",graph_padding=true", "").split(",engine_version")[0]
    with pytest.raises(InputError, match="TensorRT-LLM setting"):
        parse_serve_plan(sglang + ",moe_backend=trtllm", sc)
    h200, h200_plan, _ = serving_point("inferencex-sglang-h200-dsr1-tp8-ep1-fp8-1024-1024-c16")
    with pytest.raises(InputError, match="Blackwell"):
        parse_serve_plan(h200_plan.replace("engine=sglang", "engine=trtllm").split(",engine_version")[0]
                         + ",moe_backend=trtllm", h200)
    out = runner.invoke(main, ["serve", str(SERVE_70B), "--plan", "engine=trtllm,tp=2,moe_backend=trtllm"])
    assert out.exit_code == 2 and "moe_backend" in out.output
    plain = json.loads(runner.invoke(main, ["serve", str(SERVE_70B), "--plan", "engine=trtllm,tp=2",
                                            "--json"]).stdout)
    assert plain["plan"]["moe_backend"] == "default"


def test_backend_refused_for_weights_the_kernels_do_not_take_and_off_sm100():
    """TensorRT-LLM builds TRTLLMGenFusedMoE only for fp8-block / nvfp4 / mxfp4 weights (other schemes run CUTLASS:
    create_moe.py get_moe_cls) and only on the SM100 family (compute capability 10.x): an FP4-capable GPU of another
    compute capability (an SM120 part) is refused too."""
    sc, plan, _ = serving_point(POINT)
    assert "weights=nvfp4" in plan
    parse_serve_plan(plan, sc)  # accepted as published
    for w in ("bf16", "fp8", "int4-awq"):
        with pytest.raises(InputError, match=f"weights={w}"):
            parse_serve_plan(plan.replace("weights=nvfp4", f"weights={w}"), sc)
    node = sc.cluster.node
    gpu = node.gpu.model_copy(update={"compute_capability": 12.0})
    sm120 = sc.model_copy(update={"cluster": sc.cluster.model_copy(update={"node": node.model_copy(update={"gpu": gpu})})})
    assert sm120.cluster.node.gpu.tflops.fp4 and sm120.cluster.node.gpu.compute_capability == 12.0
    with pytest.raises(InputError, match="compute capability 10"):
        parse_serve_plan(plan, sm120)
