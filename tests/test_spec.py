"""Validated inputs: every bad input names the file, the key and what was expected."""

import json

import pytest

from planner.errors import InputError
from planner.spec import load_scenario, parse_plan

from conftest import ROOT, write

GOOD = """
name: t
model: llama-3.1-8b
cluster: {node: dgx-h100, nodes: 1}
training: {seq_len: 4096, global_batch: 64, tokens: 1.0e9}
"""


def load_text(tmp_path, text):
    return load_scenario(write(tmp_path, "s.yaml", text))


def error_of(tmp_path, text) -> InputError:
    with pytest.raises(InputError) as info:
        load_text(tmp_path, text)
    return info.value


def test_good_scenario_and_yaml11_numbers(tmp_path):
    sc = load_text(tmp_path, GOOD)
    assert sc.training.tokens == 1e9  # "1.0e9" is a string to PyYAML
    assert sc.cluster.gpus == 8
    sc = load_text(tmp_path, GOOD.replace("seq_len: 4096", "seq_len: 4.096e3"))
    assert sc.training.seq_len == 4096


def test_unknown_key_suggests_the_closest(tmp_path):
    e = error_of(tmp_path, GOOD.replace("seq_len", "seq_lenght"))
    assert e.key == "training.seq_lenght"
    assert "did you mean 'seq_len'" in e.message
    assert e.file.endswith("s.yaml")


def test_unknown_top_level_key(tmp_path):
    e = error_of(tmp_path, GOOD + "objectiv: cost\n")
    assert e.key == "objectiv" and "did you mean 'objective'" in e.message


def test_unknown_key_in_inline_model(tmp_path):
    text = GOOD.replace("model: llama-3.1-8b", "model: {name: x, layers: 2, hidden: 64, heads: 4, ffn_hiden: 128, vocab: 100}")
    e = error_of(tmp_path, text)
    assert e.key == "model.ffn_hiden" and "ffn_hidden" in e.message


def test_unknown_catalog_names(tmp_path):
    e = error_of(tmp_path, GOOD.replace("dgx-h100", "dgx-h10"))
    assert e.key == "cluster.node" and "dgx-h100" in e.message
    e = error_of(tmp_path, GOOD.replace("llama-3.1-8b", "llama-3.1-8"))
    assert e.key == "model" and "llama-3.1-8b" in e.message


def test_wrong_types_and_ranges(tmp_path):
    e = error_of(tmp_path, GOOD.replace("nodes: 1", "nodes: two"))
    assert e.key == "cluster.nodes"
    e = error_of(tmp_path, GOOD.replace("global_batch: 64", "global_batch: -4"))
    assert e.key == "training.global_batch"
    e = error_of(tmp_path, GOOD.replace("seq_len: 4096", "seq_len: 1e40"))
    assert e.key == "training.seq_len"
    e = error_of(tmp_path, GOOD.replace("tokens: 1.0e9", "tokens: .inf"))
    assert e.key == "training.tokens"


def test_missing_key(tmp_path):
    e = error_of(tmp_path, GOOD.replace("global_batch: 64, ", ""))
    assert e.key == "training.global_batch" and "missing" in e.message


def test_malformed_yaml_and_missing_file(tmp_path):
    e = error_of(tmp_path, "name: [unclosed\n")
    assert "malformed YAML" in e.message and "line" in e.message
    with pytest.raises(InputError, match="not found"):
        load_scenario(tmp_path / "nope.yaml")
    e = error_of(tmp_path, "")
    assert "mapping" in e.message


def test_impossible_model_shape(tmp_path):
    text = GOOD.replace("model: llama-3.1-8b", "model: {layers: 2, hidden: 64, heads: 4, kv_heads: 3, ffn_hidden: 128, vocab: 100}")
    e = error_of(tmp_path, text)
    assert e.key == "model.kv_heads" and "multiple of kv_heads" in e.message


def test_hf_config_model(tmp_path):
    src = ROOT / "tests" / "fixtures" / "hf" / "qwen3-30b-a3b.json"
    sc = load_text(tmp_path, GOOD.replace("model: llama-3.1-8b", f"model: {{hf_config: {src}}}"))
    assert sc.model.moe.experts == 128 and sc.model.head_dim == 128
    e = error_of(tmp_path, GOOD.replace("model: llama-3.1-8b", "model: {hf_config: missing.json}"))
    assert e.key == "model.hf_config"


def test_fixed_plan_fields_are_checked(tmp_path):
    e = error_of(tmp_path, GOOD + "search: {fixed: {tpp: 2}}\n")
    assert "did you mean 'tp'" in e.message
    e = error_of(tmp_path, GOOD + "search: {fixed: {recompute: some}}\n")
    assert e.key.startswith("search")


def test_parse_plan():
    p = parse_plan("tp=8, pp=2, zero=1, mbs=2, recompute=full, sp=true, precision=fp8")
    assert (p.tp, p.pp, p.zero, p.mbs, p.recompute, p.sp, p.precision) == (8, 2, 1, 2, "full", True, "fp8")
    with pytest.raises(InputError, match="did you mean 'tp'"):
        parse_plan("tpp=8")
    with pytest.raises(InputError):
        parse_plan("zero=5")
    with pytest.raises(InputError, match="key=value"):
        parse_plan("tp8")


def test_plan_layout_errors_print_the_numbers(scenario_32b):
    with pytest.raises(InputError, match=r"dp\*tp\*pp\*cp = 4\*8\*1\*1 = 32"):
        parse_plan("dp=4,tp=8").resolved(scenario_32b)
    with pytest.raises(InputError, match="heads"):
        parse_plan("tp=16").resolved(scenario_32b)
    with pytest.raises(InputError, match="pipeline parallelism needs ZeRO <= 1"):
        parse_plan("framework=deepspeed,pp=2,zero=2").resolved(scenario_32b)


def test_hf_string_boolean_is_refused_not_read_as_true(tmp_path):
    cfg = json.loads((ROOT / "tests" / "fixtures" / "hf" / "qwen3-30b-a3b.json").read_text())
    cfg["tie_word_embeddings"] = "false"
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    e = error_of(tmp_path, GOOD.replace("model: llama-3.1-8b", "model: {hf_config: cfg.json}"))
    assert "tie_word_embeddings" in (e.key or "") + e.message and "true or false" in e.message
    cfg["tie_word_embeddings"] = False
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    assert load_text(tmp_path, GOOD.replace("model: llama-3.1-8b", "model: {hf_config: cfg.json}")).model.tie_embeddings is False


@pytest.mark.parametrize("value", ["compile: 'yes'", "keep_fp8_transpose_cache: 1", "recompute_num_layers: true",
                                   "activation_offload_layers: yes"])
def test_runtime_switches_and_counts_take_their_own_type(tmp_path, value):
    e = error_of(tmp_path, GOOD + f"runtime: {{{value}}}\n")
    assert e.key.startswith("runtime.")


def test_hf_expert_groups_must_be_a_whole_number(tmp_path):
    cfg = {"model_type": "deepseek_v3", "num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4,
           "intermediate_size": 512, "vocab_size": 1000, "n_routed_experts": 8, "num_experts_per_tok": 2,
           "moe_intermediate_size": 64, "kv_lora_rank": 32, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8,
           "v_head_dim": 16, "topk_method": "noaux_tc", "n_group": "4", "topk_group": 2}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    e = error_of(tmp_path, GOOD.replace("model: llama-3.1-8b", "model: {hf_config: cfg.json}"))
    assert "n_group" in (e.key or "") + e.message


def test_path_with_a_nul_character_is_exit_2_not_a_crash(tmp_path):
    e = error_of(tmp_path, GOOD.replace("model: llama-3.1-8b", 'model: {hf_config: "a\\0b.json"}'))
    assert e.key == "model.hf_config" and "NUL" in e.message


def test_mesh_links_cannot_exceed_the_peers_of_a_domain(tmp_path):
    """comm.mesh_share takes k - 1 of L links for a group of k: a full mesh of 8 GPUs has at most 7."""
    node = "{name: m, gpu: mi300x, gpus_per_node: 8, scaleup_gb_s: 448, scaleup_mesh_links: %d}"
    e = error_of(tmp_path, GOOD.replace("node: dgx-h100", "node: " + node % 8))
    assert e.key.startswith("cluster.node") and "scaleup_mesh_links (8)" in e.message
    assert load_text(tmp_path, GOOD.replace("node: dgx-h100", "node: " + node % 7)).cluster.node.scaleup_mesh_links == 7


INLINE_MOE = """
name: t
model: {name: tiny-moe, layers: 4, hidden: 1024, heads: 16, ffn_hidden: 2816, vocab: 32000,
        moe: {experts: 16, top_k: 8, expert_ffn_hidden: 512, groups: 8, group_topk: GT}}
cluster: {node: hgx-h100, nodes: 2}
training: {seq_len: 2048, global_batch: 64, tokens: 1.0e9}
"""


def test_group_limited_routing_needs_top_k_experts_in_the_kept_groups(tmp_path):
    """16 experts in 8 groups of 2: keeping 2 groups leaves 4 experts for a top-8 router (Megatron-Core's
    group_limited_topk would fail); keeping 4 leaves exactly 8."""
    e = error_of(tmp_path, INLINE_MOE.replace("GT", "2"))
    assert e.key == "model.moe" and "top_k (8)" in e.message and "group_topk (2)" in e.message
    assert load_text(tmp_path, INLINE_MOE.replace("GT", "4")).model.moe.group_topk == 4
