"""Input messages left by the second acceptance audit (docs/acceptance_check.md, last section): errors
found in a Hugging Face config.json name that file and its own keys; a model's counts are numbers, not text."""

import json

import pytest
from click.testing import CliRunner

from planner.cli import main

from conftest import HF, write

runner = CliRunner()


def _hf(tmp_path, base="llama-3.1-8b.json", **change):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({**json.loads((HF / base).read_text()), **change}))
    return p


@pytest.mark.parametrize("base,change,key,words", [
    ("llama-3.1-8b.json", {"num_key_value_heads": 7}, "num_key_value_heads",
     ["num_attention_heads (32)", "num_key_value_heads (7)"]),
    ("llama-3.1-8b.json", {"num_hidden_layers": -3}, "num_hidden_layers", ["greater than or equal to 1"]),
    ("mixtral-8x7b.json", {"num_experts_per_tok": 9}, "moe", ["num_experts_per_tok (9)", "num_local_experts (8)"]),
    ("deepseek-v3.json", {"first_k_dense_replace": 99}, "first_k_dense_replace", ["first_k_dense_replace (99)",
                                                                                   "num_hidden_layers (61)"]),
])
def test_hf_config_errors_name_the_file_and_the_hf_keys(tmp_path, base, change, key, words):
    p = _hf(tmp_path, base, **change)
    r = runner.invoke(main, ["model", str(p)])
    assert r.exit_code == 2 and r.exception is None or isinstance(r.exception, SystemExit), r.output
    assert f"{p}: {key}: " in r.output, r.output
    assert all(w in r.output for w in words), r.output
    assert "(top level)" not in r.output and "kv_heads" not in r.output.replace("num_key_value_heads", "")


def test_hf_config_error_through_a_scenario_names_the_config(tmp_path):
    cfg = _hf(tmp_path, num_key_value_heads=7)
    s = write(tmp_path, "s.yaml", "model: {hf_config: config.json}\ncluster: {node: dgx-h100, nodes: 1}\n"
              "training: {seq_len: 4096, global_batch: 64, tokens: 1.0e9}\n")
    r = runner.invoke(main, ["validate", str(s)])
    assert r.exit_code == 2 and f"{cfg}: num_key_value_heads: " in r.output, r.output


def test_inline_model_cross_key_error_has_a_key_path(tmp_path):
    s = write(tmp_path, "s.yaml", "model: {name: m, layers: 2, hidden: 256, heads: 8, kv_heads: 3, ffn_hidden: 512, "
              "vocab: 1000}\ncluster: {node: dgx-h100, nodes: 1}\n"
              "training: {seq_len: 4096, global_batch: 64, tokens: 1.0e9}\n")
    r = runner.invoke(main, ["validate", str(s)])
    assert r.exit_code == 2 and "model.kv_heads: heads (8) must be a multiple of kv_heads (3)" in r.output, r.output


@pytest.mark.parametrize("field", ["layers", "heads", "hidden", "vocab"])
def test_a_quoted_model_count_is_refused(tmp_path, field):
    model = {"name": "m", "layers": 2, "hidden": 256, "heads": 8, "ffn_hidden": 512, "vocab": 1000}
    text = ", ".join(f'{k}: "{v}"' if k == field else f"{k}: {v}" for k, v in model.items())
    s = write(tmp_path, "s.yaml", f"model: {{{text}}}\ncluster: {{node: dgx-h100, nodes: 1}}\n"
              "training: {seq_len: 4096, global_batch: 64, tokens: 1.0e9}\n")
    r = runner.invoke(main, ["validate", str(s)])
    assert r.exit_code == 2 and f"model.{field}: expected a whole number, not the text" in r.output, r.output


def test_a_string_count_in_a_config_json_is_refused(tmp_path):
    r = runner.invoke(main, ["model", str(_hf(tmp_path, num_hidden_layers="32"))])
    assert r.exit_code == 2 and "num_hidden_layers: expected a whole number" in r.output, r.output


@pytest.mark.parametrize("tokens,words", [
    ("[{tokens: 2048, share: 0.5}, {tokens: 512, share: 0.5}]", ["[tokens, share] pairs", "[2048, 0.5]"]),
    ("[2048, 512]", ["[tokens, share] pairs", "item 0 is 2048"]),
    ("[[1, 2, 3]]", ["[tokens, share] pairs"]),
    ("[]", ["[tokens, share] pairs is empty"]),
])
def test_token_list_items_that_are_not_pairs_say_what_is_expected(tmp_path, tokens, words):
    s = write(tmp_path, "s.yaml", "model: llama-3.1-8b\ncluster: {node: dgx-h100, nodes: 1}\n"
              f"serving: {{input_tokens: {tokens}, output_tokens: 256, requests_per_s: 2}}\n")
    r = runner.invoke(main, ["validate", str(s)])
    assert r.exit_code == 2 and "serving.input_tokens: " in r.output, r.output
    assert all(w in r.output for w in words) and "valid tuple" not in r.output, r.output
    assert "{mean, p90}" in r.output or "empty" in r.output


def test_shipped_hf_scenario_is_self_contained(tmp_path):
    """scenarios/ copied anywhere still plans hf_config_mixtral.yaml (its config.json lies beside it); the
    copy stays byte-identical to the test fixture, the single source of the published counts."""
    import shutil

    from conftest import ROOT

    assert (ROOT / "scenarios/hf/mixtral-8x7b.json").read_bytes() == (HF / "mixtral-8x7b.json").read_bytes()
    copy = tmp_path / "scenarios"
    shutil.copytree(ROOT / "scenarios", copy)
    r = runner.invoke(main, ["validate", str(copy / "hf_config_mixtral.yaml")])
    assert r.exit_code == 0 and "model mixtral-8x7b" in r.output, r.output
