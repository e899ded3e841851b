"""A model's context (max_seq_len = config.json max_position_embeddings): serving requests longer than it
are refused (vLLM and SGLang refuse such a --max-model-len / --context-length), launch files never ask
for more, a model without a known context is not checked, and training may exceed it (context extension)."""

import json

import pytest
import yaml
from click.testing import CliRunner

from planner import catalog, load_scenario
from planner.cli import main
from planner.frameworks import hf_config
from planner.serve import launch as L
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving
from planner.spec.hf import model_from_hf
from planner.spec.serving import load_serving_scenario

from conftest import HF, ROOT, write

runner = CliRunner()

SERVE = """
name: long prompts
model: {model}
cluster: {{node: dgx-h100, nodes: 2}}
serving: {{input_tokens: {inp}, output_tokens: {out}, requests_per_s: 0.05}}
search: {{engines: [vllm], weights: [fp8], kv_cache: [fp8]}}
"""

TINY = "{name: tiny, layers: 2, hidden: 256, heads: 4, ffn_hidden: 1024, vocab: 1000}"


def serve_file(tmp_path, model="llama-3.1-70b", inp="200000", out="512", name="s.yaml"):
    return write(tmp_path, name, SERVE.format(model=model, inp=inp, out=out))


@pytest.mark.parametrize("args", [[], ["--plan", "engine=vllm,weights=fp8,kv_cache=fp8,tp=8"]])
def test_a_request_beyond_the_context_is_refused(tmp_path, args):
    path = serve_file(tmp_path)
    r = runner.invoke(main, ["serve", str(path), *args])
    assert r.exit_code == 2, r.output
    assert str(path) in r.output and "serving.input_tokens" in r.output
    assert "131,072" in r.output and "llama-3.1-70b" in r.output and "200,512" in r.output
    assert "Traceback" not in r.output


def test_the_key_is_output_tokens_when_the_output_alone_is_too_long(tmp_path):
    path = serve_file(tmp_path, model="qwen3-8b", inp="100", out="50000")
    r = runner.invoke(main, ["serve", str(path)])
    assert r.exit_code == 2 and "serving.output_tokens" in r.output and "40,960" in r.output, r.output


def test_the_longest_count_of_each_form_is_checked(tmp_path):
    # a list: its largest count; {mean, p90}: its p90 (the mean alone fits)
    r = runner.invoke(main, ["serve", str(serve_file(tmp_path, inp="[[1000, 0.9], [131000, 0.1]]", out="100"))])
    assert r.exit_code == 2 and "131,100" in r.output, r.output
    r = runner.invoke(main, ["serve", str(serve_file(tmp_path, inp="{mean: 20000, p90: 140000}", out="100"))])
    assert r.exit_code == 2 and "140,100" in r.output, r.output


def test_compare_refuses_a_serving_workload_beyond_the_context(tmp_path):
    text = """
clusters:
  - {name: cloud, node: dgx-h100, nodes: [1], cloud: {usd_per_gpu_hour: 2.5}}
serving_workloads:
  - name: long-8b
    model: llama-3.1-8b
    serving: {input_tokens: 131000, output_tokens: 1000, requests_per_s: 0.1}
"""
    path = write(tmp_path, "p.yaml", text)
    r = runner.invoke(main, ["compare", str(path)])
    assert r.exit_code == 2, r.output
    assert str(path) in r.output and "serving_workloads.0.serving.input_tokens" in r.output and "131,072" in r.output


def test_launch_files_ask_for_no_more_than_the_context(tmp_path):
    # input + output exactly the context: accepted, and every engine's limit is the request length
    sc = load_serving_scenario(serve_file(tmp_path, inp="130000", out="1072"))
    limit = sc.model.max_seq_len
    assert L.max_len(sc) == limit == 131072
    for text, flag in (("engine=vllm,weights=fp8,kv_cache=fp8,tp=8", "--max-model-len"),
                       ("engine=sglang,weights=fp8,kv_cache=fp8,tp=8", "--context-length")):
        files = L.serving_files(sc, estimate_serving(sc, parse_serve_plan(text, sc)))
        words = files["serve.sh"].split()
        assert int(words[words.index(flag) + 1].strip("'")) <= limit
    files = L.serving_files(sc, estimate_serving(sc, parse_serve_plan("engine=trtllm,weights=fp8,kv_cache=fp8,tp=8",
                                                                       sc)))
    assert yaml.safe_load(files[L.TRT_YAML])["max_seq_len"] <= limit


def test_a_model_without_a_known_context_is_not_checked(tmp_path):
    sc = load_serving_scenario(serve_file(tmp_path, model=TINY, inp="1000000", out="1000"))
    assert sc.model.max_seq_len is None and L.max_len(sc) == 1_001_000


def test_training_beyond_the_context_is_context_extension_not_an_error(tmp_path):
    path = write(tmp_path, "t.yaml", "model: llama-3.1-8b\ncluster: {node: dgx-h100, nodes: 8}\n"
                                     "training: {seq_len: 262144, global_batch: 16, tokens: 1.0e9}\n")
    sc = load_scenario(path)
    assert sc.training.seq_len > sc.model.max_seq_len


def test_every_catalog_model_states_its_context_and_cites_it():
    for name in catalog.names("models"):
        m, entry = catalog.model(name), catalog.entry("models", name)
        assert m.max_seq_len, name
        assert str(m.max_seq_len) in entry["source"] or m.position == "learned", name


@pytest.mark.parametrize("path", sorted(HF.glob("*.json")), ids=lambda p: p.stem)
def test_config_json_context_is_read_and_written_back(path):
    cfg = json.loads(path.read_text())
    m = catalog.model(path.stem)
    text = cfg.get("text_config", cfg)  # Llama 4: the language model's keys
    assert model_from_hf(cfg)["max_seq_len"] == text["max_position_embeddings"] == m.max_seq_len
    if m.attention_chunk:  # no llama4 config.json is written (hf_config refuses chunked attention)
        return
    assert hf_config.hf_config(m)["max_position_embeddings"] == cfg["max_position_embeddings"]


def test_a_linear_rope_scaling_stretches_the_table():
    # SGLang get_context_length: a scaling without original_max_position_embeddings (not llama3)
    # multiplies max_position_embeddings by its factor
    cfg = json.loads((HF / "llama-3.1-8b.json").read_text())
    cfg.update(max_position_embeddings=4096, rope_scaling={"rope_type": "linear", "factor": 4.0})
    out = model_from_hf(cfg)
    assert out["max_seq_len"] == 16384
    del cfg["max_position_embeddings"]
    assert model_from_hf(cfg)["max_seq_len"] is None


def test_shipped_serving_scenarios_fit_their_model():
    for path in sorted((ROOT / "scenarios").glob("serve_*.yaml")):
        sc = load_serving_scenario(path)
        assert sc.model.max_seq_len is not None
