"""Regressions found by the sixth acceptance audit (docs/acceptance_check.md): each test fails on the code
before its fix. Expected parameter counts are written out from the config's shapes (transformers'
modeling_<family>.py layers), not taken from the planner."""

import json

import pytest
from click.testing import CliRunner

from planner.cli import main

from conftest import write_yaml

runner = CliRunner()

# a small config every dense family reads: 4 layers, hidden 1024, 16 heads of 64, 4 KV heads, MLP 2816
H, LAYERS, HEADS, KV, FFN, VOCAB = 1024, 4, 16, 4, 2816, 32000
SMALL = {"hidden_size": H, "intermediate_size": FFN, "num_attention_heads": HEADS, "num_hidden_layers": LAYERS,
         "num_key_value_heads": KV, "vocab_size": VOCAB, "max_position_embeddings": 4096,
         "tie_word_embeddings": False}


def _count(tmp_path, cfg: dict, name: str = "config.json"):
    p = tmp_path / name
    p.write_text(json.dumps(cfg))
    return runner.invoke(main, ["model", str(p), "--json"]), p


def _plain(head_dim: int) -> int:
    """Untied embeddings + per layer q, k, v, o, the gated MLP and two RMSNorms + the final norm."""
    attn = H * HEADS * head_dim + 2 * H * KV * head_dim + HEADS * head_dim * H
    return 2 * VOCAB * H + LAYERS * (attn + 3 * H * FFN + 2 * H) + H


def test_attention_bias_puts_a_bias_on_o_proj_and_mlp_bias_on_the_mlp(tmp_path):
    """attention_bias was read as biases on q/k/v only, mlp_bias was ignored, and a Mistral file's
    attention_bias (which MistralAttention ignores: bias=False) added q/k/v biases. transformers' Llama /
    Granite / OLMo / Qwen3 / Gemma attention biases q_proj, k_proj, v_proj and o_proj; Llama's and Granite's
    mlp_bias gate_proj, up_proj and down_proj."""
    qkv_o = LAYERS * ((HEADS + 2 * KV) * 64 + H)
    mlp = LAYERS * (2 * FFN + H)
    for mt in ("llama", "granite"):
        r, _ = _count(tmp_path, {"model_type": mt, **SMALL, "attention_bias": True})
        assert r.exit_code == 0 and json.loads(r.stdout)["params_total"] == _plain(64) + qkv_o, (mt, r.output)
        r, _ = _count(tmp_path, {"model_type": mt, **SMALL, "attention_bias": True, "mlp_bias": True})
        assert r.exit_code == 0 and json.loads(r.stdout)["params_total"] == _plain(64) + qkv_o + mlp, (mt, r.output)
        r, _ = _count(tmp_path, {"model_type": mt, **SMALL, "mlp_bias": True})  # not modelled: refused, not dropped
        assert r.exit_code == 2 and "mlp_bias" in r.output and "Traceback" not in r.output, r.output
    r, _ = _count(tmp_path, {"model_type": "mistral", **SMALL, "attention_bias": True})
    assert r.exit_code == 0 and json.loads(r.stdout)["params_total"] == _plain(64), r.output


def test_a_config_without_head_dim_takes_its_config_class_default(tmp_path):
    """Qwen3Config defaults head_dim to 128 and GemmaConfig to 256 (configuration_qwen3.py, configuration_gemma.py);
    a file without the key was read at hidden / heads (64 here) like Llama's."""
    r, _ = _count(tmp_path, {"model_type": "qwen3", **SMALL})
    qk_norm = LAYERS * 2 * 128
    assert r.exit_code == 0 and json.loads(r.stdout)["params_total"] == _plain(128) + qk_norm, r.output
    r, _ = _count(tmp_path, {"model_type": "gemma", **SMALL, "hidden_act": "gelu"})
    assert r.exit_code == 0 and json.loads(r.stdout)["params_total"] == _plain(256), r.output
    r, _ = _count(tmp_path, {"model_type": "llama", **SMALL})
    assert r.exit_code == 0 and json.loads(r.stdout)["params_total"] == _plain(64), r.output


def test_attention_biases_export_to_a_config_that_reads_back_and_megatron_refuses_them(tmp_path):
    """The DeepSpeed export's config.json of a model with q/k/v/o biases (HF attention_bias) is a Llama with
    attention_bias true and mlp_bias false (not a Qwen2, which has no o_proj bias) and reads back to the same
    count; Megatron-LM, which biases every linear layer or q/k/v alone, is refused naming the reason."""
    r, cfg = _count(tmp_path, {"model_type": "llama", **SMALL, "attention_bias": True})
    total = json.loads(r.stdout)["params_total"]
    scen = write_yaml(tmp_path, {"name": "b", "model": {"hf_config": str(cfg)}, "cluster": {"node": "dgx-h100", "nodes": 1},
                                 "training": {"seq_len": 1024, "global_batch": 8, "tokens": 1.0e6}})
    out = tmp_path / "ds"
    r = runner.invoke(main, ["export", str(scen), "--plan", "framework=deepspeed,zero=1", "-o", str(out)])
    assert r.exit_code == 0, r.output
    written = json.loads((out / "config.json").read_text())
    assert (written["model_type"], written["attention_bias"], written["mlp_bias"]) == ("llama", True, False)
    r = runner.invoke(main, ["model", str(out / "config.json"), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["params_total"] == total, r.output
    r = runner.invoke(main, ["estimate", str(scen), "--plan", "framework=megatron,zero=1"])
    assert r.exit_code == 2 and "attention output projection" in r.output, r.output


def test_an_offload_plan_oom_on_the_host_says_why(tmp_path):
    """An offload plan on a node whose host memory is unknown is oom (no offload can be shown to fit) while its
    GPU memory fits: `estimate` printed 'memory/GPU: 2.1 of 40.0 GiB (oom, headroom 37.9 ...)' with no reason,
    and `solve`'s explanation said '... GiB per node of None'."""
    data = {"name": "h", "model": "llama-2-7b",
            "cluster": {"node": {"gpu": "a100-sxm-40gb", "gpus_per_node": 1, "scaleup_gb_s": 300}, "nodes": 1},
            "training": {"seq_len": 1024, "global_batch": 8, "tokens": 1.0e6}}
    scen = write_yaml(tmp_path, data)
    r = runner.invoke(main, ["estimate", str(scen), "--plan", "framework=deepspeed,zero=3,offload=cpu,mbs=1"])
    assert "oom" in r.output and "host memory" in r.output and "unknown" in r.output, r.output
    data["search"] = {"offload": ["cpu"], "zero": [3]}
    r = runner.invoke(main, ["solve", str(write_yaml(tmp_path, data))])
    assert r.exit_code == 1 and "None" not in r.output and "host_memory_gib" in r.output, r.output


def test_a_closed_loop_request_does_not_wait_for_its_own_prompt_between_its_tokens(tmp_path):
    """At a fixed concurrency the mean iteration carries the steady prompt work of every running request's
    successor, and its time was reported as TPOT: at one request in flight its own prompt, already in its
    TTFT, was charged again between its tokens (a Qwen2.5-7B-1M shape on one GB300, 1M-token prompt: TPOT 185 ms,
    now 6.2 ms), so requests/s x (TTFT + (output - 1) x TPOT) read up to 2 requests in flight for 1.
    The gaps now carry the other requests' prompts only (Little's law holds); the throughput is unchanged."""
    def est(conc):
        data = {"name": "c", "model": "llama-3.1-70b", "cluster": {"node": "dgx-h100", "nodes": 1},
                "serving": {"input_tokens": 32768, "output_tokens": 256, "concurrency": conc}}
        r = runner.invoke(main, ["serve", str(write_yaml(tmp_path, data)), "--plan",
                                 "engine=vllm,weights=fp8,kv_cache=fp8,tp=8,max_batch=64", "--json"])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["plans"][0]

    for conc in (1, 4):
        p = est(conc)
        lat, out_s = p["latency"], p["throughput"]["output_tokens_per_s"]
        cycle = lat["ttft_ms"]["p50"] / 1e3 + 255 * lat["tpot_ms"]["p50"] / 1e3
        assert out_s / 256 * cycle == pytest.approx(conc, rel=0.03), (conc, lat, out_s)


def test_an_hf_config_that_is_not_a_path_says_so(tmp_path):
    """`hf_config: [a, b]` said "file not found: ['a', 'b']" (the list's text taken as a path); an empty
    string looked for config.json in the scenario's own folder."""
    for bad in (["a", "b"], 12, "", None, {"path": "x"}):
        data = {"name": "h", "model": {"hf_config": bad}, "cluster": {"node": "dgx-h100", "nodes": 1},
                "training": {"seq_len": 1024, "global_batch": 8, "tokens": 1.0e6}}
        r = runner.invoke(main, ["solve", str(write_yaml(tmp_path, data))])
        assert r.exit_code == 2 and "model.hf_config" in r.output and "as text" in r.output, (bad, r.output)


def test_fewer_requests_than_replicas_leave_replicas_idle(tmp_path):
    """`serve --plan` with more colocated replicas than requests in flight ran each replica at b = C / replicas
    < 1 request, its prompt work spread over that fraction: one request on 4 replicas (70B, 32k-token prompts)
    came to 46.8 output tokens/s against 30.0 for one request on one replica, Little's law reading 1.5 requests
    in flight. Now C replicas run one request each and the rest idle: the same output as one replica, at 4x
    the GPUs."""
    def est(replicas):
        data = {"name": "c", "model": "llama-3.1-70b", "cluster": {"node": "dgx-h100", "nodes": 1},
                "serving": {"input_tokens": 32768, "output_tokens": 256, "concurrency": 1}}
        r = runner.invoke(main, ["serve", str(write_yaml(tmp_path, data)), "--plan",
                                 f"engine=vllm,weights=fp8,kv_cache=fp8,tp=2,replicas={replicas},max_batch=64", "--json"])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["plans"][0]

    one, four = est(1), est(4)
    assert four["throughput"]["output_tokens_per_s"] == pytest.approx(one["throughput"]["output_tokens_per_s"], rel=0.02)
    lat = four["latency"]
    cycle = lat["ttft_ms"]["p50"] / 1e3 + 255 * lat["tpot_ms"]["p50"] / 1e3
    assert four["throughput"]["output_tokens_per_s"] / 256 * cycle == pytest.approx(1, rel=0.03)


def test_a_ranked_serving_plans_json_pastes_back_into_plan(tmp_path):
    """Every JSON `plan` of `serve` carries `disaggregated` (prefill_replicas > 0), which `--plan` refused as an
    unknown key, so the plan did not paste back key for key; it is accepted when it agrees, exit 2 otherwise."""
    data = {"name": "c", "model": "llama-3.1-8b", "cluster": {"node": "dgx-h100", "nodes": 1},
            "serving": {"input_tokens": 1024, "output_tokens": 256, "concurrency": 8},
            "search": {"engines": ["vllm"], "weights": ["fp8"], "kv_cache": ["fp8"]}, "top": 2}
    scen = str(write_yaml(tmp_path, data))
    r = runner.invoke(main, ["serve", scen, "--json"])
    assert r.exit_code == 0, r.output
    for p in json.loads(r.stdout)["plans"]:
        text = ",".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in p["plan"].items())
        q = runner.invoke(main, ["serve", scen, "--plan", text, "--json"])
        assert q.exit_code == 0, q.output
        assert json.loads(q.stdout)["plans"][0]["throughput"] == p["throughput"]
    r = runner.invoke(main, ["serve", scen, "--plan", "engine=vllm,weights=fp8,disaggregated=true"])
    assert r.exit_code == 2 and "prefill_replicas" in r.output, r.output


def test_a_config_json_or_deepspeed_config_given_as_a_scenario_says_what_it_is(tmp_path):
    """`planner solve config.json` (or serve, compare, validate) listed every key of a Hugging Face config.json as
    an unknown scenario key (21 lines for Phi-4's), and a ds_config.json that `export` wrote likewise."""
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "llama", **SMALL}))
    ds = tmp_path / "ds_config.json"
    ds.write_text(json.dumps({"train_batch_size": 8, "train_micro_batch_size_per_gpu": 1, "zero_optimization": {}}))
    for cmd in ("solve", "serve", "compare", "validate"):
        r = runner.invoke(main, [cmd, str(cfg)])
        assert r.exit_code == 2 and "Hugging Face config.json" in r.output and "unknown key" not in r.output, r.output
        r = runner.invoke(main, [cmd, str(ds)])
        assert r.exit_code == 2 and "DeepSpeed config" in r.output and "unknown key" not in r.output, r.output


def test_serving_tp_must_split_or_copy_the_kv_heads(tmp_path):
    """Phi-4 (40 heads, 10 KV heads) was offered and estimated at tp 4 and 8, which vLLM's and SGLang's
    QKVParallelLinear and TensorRT-LLM's duplicate_kv_weight refuse (10 KV heads neither split 4 or 8 ways nor
    copied evenly): the search leaves such tp out, `--plan` exits 2 naming tp."""
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "phi3", "hidden_size": 5120, "intermediate_size": 17920,
                               "num_attention_heads": 40, "num_hidden_layers": 40, "num_key_value_heads": 10,
                               "vocab_size": 100352, "max_position_embeddings": 16384, "pad_token_id": 0}))
    data = {"name": "p", "model": {"hf_config": str(cfg)}, "cluster": {"node": "dgx-h100", "nodes": 1},
            "serving": {"input_tokens": 1024, "output_tokens": 256, "requests_per_s": 5},
            "search": {"engines": ["vllm"], "weights": ["bf16"]}, "top": 50}
    scen = str(write_yaml(tmp_path, data))
    r = runner.invoke(main, ["serve", scen, "--json"])
    assert r.exit_code == 0, r.output
    assert {p["plan"]["tp"] for p in json.loads(r.stdout)["plans"]} <= {1, 2}
    r = runner.invoke(main, ["serve", scen, "--plan", "engine=vllm,weights=bf16,tp=4"])
    assert r.exit_code == 2 and "--plan tp" in r.output and "KV heads" in r.output, r.output
    r = runner.invoke(main, ["serve", scen, "--plan", "engine=vllm,weights=bf16,tp=2"])
    assert r.exit_code == 0, r.output
