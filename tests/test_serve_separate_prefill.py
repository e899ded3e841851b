"""vLLM V0's default scheduler (plan key separate_prefill; engines.plan_separate_prefill): with chunked prefill off
a step carries waiting prompts or the running decodes, never both ("Don't schedule decodes if prefills are
scheduled", vllm/core/scheduler.py _schedule_default), so every decode step is a whole decode step and the prompts
take steps of their own: per decode step, b x input / output prompt tokens in steps of up to max_batched_tokens."""

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from planner.cli import main
from planner.serve import evaluate as V
from planner.serve import launch as L
from planner.serve import timing
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving

from conftest import ROOT

runner = CliRunner()
SERVE_70B = ROOT / "scenarios" / "serve_70b.yaml"
BASE = "engine=vllm,weights=fp8,kv_cache=fp8,tp=1,replicas=1,max_batch=512,max_batched_tokens=16384,engine_version=0.9.0"


def _scenario(tmp_path):
    data = yaml.safe_load(SERVE_70B.read_text())
    data["serving"] = {"input_tokens": 2000, "output_tokens": 250, "offline": True}
    data["cluster"] = {"node": "mi325x-8", "nodes": 1}
    path = tmp_path / "sc.yaml"
    path.write_text(yaml.safe_dump(data))
    from planner.spec.serving import load_serving_scenario

    return load_serving_scenario(path), path


def test_prompt_steps_apart_cost_a_whole_decode_step_each(tmp_path):
    sc, _ = _scenario(tmp_path)
    mixed = parse_serve_plan(BASE, sc)
    apart = parse_serve_plan(BASE + ",separate_prefill=true", sc)
    b = 300.0
    ctx = V.Context(sc)
    ctx.links = timing.comm_links(ctx.node, apart, ctx.facts.hidden, bool(ctx.facts.experts))
    t_apart = V._iter(ctx, apart, np.array([b]))[0]
    # by hand: one decode step of b sequences, plus b x 2000 / 250 = 2400 prompt tokens per decode step, in steps
    # of 2,400 tokens (above one prompt, below the budget) that carry no decodes
    decode = timing.iteration_s(ctx.facts, apart, ctx.links, ctx.hw, np.array([b]), 0.0, ctx.ctx_dec, 0.0)[0]
    prompts = timing.iteration_s(ctx.facts, apart, ctx.links, ctx.hw, 0.0, np.array([2400.0]), 0.0, 1000.0)[0]
    assert t_apart == pytest.approx(decode + prompts, rel=1e-6)
    # mixing the prompt chunk into the decode step reads the weights once for both: never slower
    assert V._iter(ctx, mixed, np.array([b]))[0] < t_apart
    r_mixed, r_apart = (estimate_serving(sc, p) for p in (mixed, apart))
    assert r_apart["throughput"]["output_tokens_per_s"] < r_mixed["throughput"]["output_tokens_per_s"]
    assert r_apart["plan"]["separate_prefill"] is True and r_mixed["plan"]["separate_prefill"] is False
    assert "separate_prefill=true" in L.plan_text(r_apart["plan"])


def test_separate_prefill_needs_vllm_before_0_11_and_is_not_emitted(tmp_path):
    sc, path = _scenario(tmp_path)
    out = runner.invoke(main, ["serve", str(path), "--plan", "engine=sglang,separate_prefill=true"])
    assert out.exit_code == 2 and "vLLM setting" in out.output
    out = runner.invoke(main, ["serve", str(path), "--plan", "engine=vllm,separate_prefill=true"])
    assert out.exit_code == 2 and "removed in vLLM 0.11.0" in out.output
    out = runner.invoke(main, ["serve", str(path), "--plan", "engine=vllm,separate_prefill=true,engine_version=0.11.0"])
    assert out.exit_code == 2 and "engine_version" in out.output
    js = json.loads(runner.invoke(main, ["serve", str(path), "--plan", BASE + ",separate_prefill=true", "--json"]).stdout)
    assert js["plan"]["separate_prefill"] is True
    out = runner.invoke(main, ["serve", str(path), "--plan", BASE + ",separate_prefill=true",
                               "--emit", str(tmp_path / "out")])
    assert out.exit_code == 2 and "V0" in out.output
    assert not (tmp_path / "out").exists()
