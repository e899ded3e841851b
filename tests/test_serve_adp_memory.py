"""Attention data parallelism: max_batch and max_batched_tokens are the replica's budgets (evaluate steps the
replica's b sequences within max_batched_tokens); each attention-DP rank is told, and allocates for, its share."""

import numpy as np
import yaml

from planner.serve import engines as E
from planner.serve import launch as L
from planner.serve import memory as M
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving
from planner.spec.serving import load_serving_scenario

from conftest import write

MOE = """
name: moe
model: qwen3-30b-a3b
cluster: {node: dgx-h100, nodes: 1}
serving: {input_tokens: 1024, output_tokens: 256, requests_per_s: 10}
"""


def _table(**kw):
    """A one-row plan table; vLLM (no TensorRT-LLM MoE buffers) and ep 1 unless given."""
    return {k: np.array([v]) for k, v in {"engine": E.VLLM, "ep": 1, **kw}.items()}


def test_an_attention_dp_rank_allocates_the_workspace_of_its_share(tmp_path):
    """A rank of a DEP8 replica with budgets 8 B / 8 T holds the activations and logits of a one-GPU instance
    told B / T (both attention-unsplit); without attention DP the replica's budgets are every rank's."""
    sc = load_serving_scenario(write(tmp_path, "moe.yaml", MOE))
    f = M.model_facts(sc.model)
    dep8 = M.workspace_bytes(f, _table(tp=8, attn_dp=True, max_batch=8 * 256, max_batched_tokens=8 * 2048))
    one = M.workspace_bytes(f, _table(tp=1, attn_dp=False, max_batch=256, max_batched_tokens=2048))
    assert dep8[0] == one[0]
    tp8 = M.workspace_bytes(f, _table(tp=8, attn_dp=False, max_batch=256, max_batched_tokens=2048))
    assert tp8[0] < one[0]  # tensor parallel splits the MLP rows and the logits' vocabulary, not the tokens


def test_launch_tells_each_engine_the_rank_share_of_both_budgets(tmp_path):
    sc = load_serving_scenario(write(tmp_path, "moe.yaml", MOE))
    plan = "weights=bf16,tp=8,ep=8,attn_dp=true,max_batch=512,max_batched_tokens=8192"
    r = estimate_serving(sc, parse_serve_plan(f"engine=trtllm,{plan}", sc))
    cfg = yaml.safe_load(L.serving_files(sc, r)[L.TRT_YAML])
    assert (cfg["max_batch_size"], cfg["max_num_tokens"]) == (64, 1024)
    r = estimate_serving(sc, parse_serve_plan(f"engine=vllm,{plan}", sc))
    words = L.serving_files(sc, r)["serve.sh"].split()
    assert words[words.index("--max-num-seqs") + 1] == "64"
    assert words[words.index("--max-num-batched-tokens") + 1] == "1024"
    r = estimate_serving(sc, parse_serve_plan(f"engine=sglang,{plan}", sc))
    words = L.serving_files(sc, r)["serve.sh"].split()  # SGLang divides the replica's values over the ranks itself
    assert words[words.index("--max-running-requests") + 1] == "512"
    assert words[words.index("--chunked-prefill-size") + 1] == "8192"


def test_vllm_token_check_compares_the_rank_shares():
    """vLLM checks max_num_batched_tokens >= max_num_seqs per rank: the shares of the replica's budgets."""
    ok = E.vllm_tokens_ok(E.VLLM, np.array([1024, 2048]), 8, True, 1024)
    assert ok.tolist() == [True, False]


def test_the_default_token_budget_gives_each_rank_its_engine_default(tmp_path):
    """vLLM and TensorRT-LLM give every attention-DP rank its own default token budget (one engine core / executor
    per rank), so a replica of 8 ranks steps 8 x 8,192 tokens; SGLang divides its chunked_prefill_size over the ranks,
    so its replica keeps 8,192. Without attention DP the default is the replica's."""
    eng = np.array([E.TRTLLM, E.VLLM, E.SGLANG])
    assert E.default_max_batched_tokens(eng, 80, False, 8, True).tolist() == [8 * 8192, 8 * 8192, 8192]
    assert E.default_max_batched_tokens(eng, 80, False, 8, False).tolist() == [8192, 8192, 8192]
    sc = load_serving_scenario(write(tmp_path, "moe.yaml", MOE))
    r = estimate_serving(sc, parse_serve_plan("engine=trtllm,weights=bf16,tp=8,ep=8,attn_dp=true,max_batch=512", sc))
    cfg = yaml.safe_load(L.serving_files(sc, r)[L.TRT_YAML])
    assert cfg["max_num_tokens"] == 8192  # the engine's own default, as a rank left unset would run


def test_an_empty_vllm_search_names_the_rank_budget_under_attention_dp(tmp_path):
    """A vLLM search whose max_batch exceeds even the attention-DP replica's budget (8 ranks x 8,192 tokens) says
    that budget and each rank's max_num_batched_tokens, not the replica's total as vLLM's flag."""
    from planner.serve.explain import _no_layout
    from planner.serve.search import max_gpus

    text = MOE + "search: {engines: [vllm], max_batch: [70000]}\n"
    sc = load_serving_scenario(write(tmp_path, "moe.yaml", text))
    out = _no_layout(sc, max_gpus(sc))
    assert "65,536 a replica: 8 attention-DP ranks x its max_num_batched_tokens 8,192" in out["reasons"][0]
    assert "at most 65,536" in out["fixes"][0]["change"]
