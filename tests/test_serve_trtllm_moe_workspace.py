"""TensorRT-LLM's CUTLASS MoE buffers at the KV-sizing forward (memory.trtllm_moe_workspace_bytes): every rank steps
its own max_num_tokens, the MoE layer of an attention-DP rank runs all ranks' gathered tokens, and the op's output and
workspace (FusedMoeRunner.runMoe, CutlassMoeFCRunner::getWorkspaceDeviceBufferSizes) are live at the peak from which
TensorRT-LLM sizes its KV pool."""

import numpy as np

from planner.serve import engines as E
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
DENSE = MOE.replace("qwen3-30b-a3b", "llama-3.1-8b")


def _table(**kw):
    return {k: np.array([v]) for k, v in kw.items()}


def _facts(tmp_path, text=MOE):
    sc = load_serving_scenario(write(tmp_path, "s.yaml", text))
    return sc, M.model_facts(sc.model)


def test_an_attention_dp_rank_runs_the_gathered_tokens_of_every_rank():
    """DEP8 with a replica budget of 8 x 2,048 tokens: each rank steps 2,048 and its MoE layer runs all 16,384;
    without attention DP every rank runs the step's own 2,048 tokens."""
    dep8 = _table(tp=8, attn_dp=True, max_batched_tokens=8 * 2048)
    tp8 = _table(tp=8, attn_dp=False, max_batched_tokens=2048)
    assert M.trtllm_moe_rows(dep8)[0] == 8 * 2048
    assert M.trtllm_moe_rows(tp8)[0] == 2048


def test_buffer_sizes_follow_the_cutlass_runner(tmp_path):
    """Qwen3-30B-A3B (hidden 2,048, expert width 768, top-8) on one GPU at 1,000 tokens: 8,000 expanded rows; the
    largest buffers are the bf16 fc2 result (inputs overlap, 8,000 x 2,048 x 2 B) and the bf16 GEMM outputs (max of
    the gated fc1 output 2 x 768 and fc2's 2,048 columns: 8,000 x 2,048 x 2 B), 24 B of index maps and scales per
    expanded row, and per token the gathered input and the output at 2 B x 2,048 each plus 8 B of expert id and
    scale per choice (numbers from the C++ buffer definitions, worked by hand)."""
    _, f = _facts(tmp_path)
    t = _table(tp=1, ep=1, attn_dp=False, engine=E.TRTLLM, max_batched_tokens=1000)
    by_hand = 8000 * (24 + 2 * 2048 + 2 * 2048) + 1000 * (2 * 2 * 2048 + 8 * 8)
    assert M.trtllm_moe_workspace_bytes(f, t)[0] == by_hand


def test_expert_tensor_parallelism_splits_the_width_not_the_rows(tmp_path):
    """TP8 with EP1 splits each expert's 768 columns eight ways (moe_tp 8), which shrinks only the buffers whose
    width is the expert's; EP8 keeps whole experts. Neither changes the expanded rows."""
    _, f = _facts(tmp_path)
    base = dict(tp=8, attn_dp=False, engine=E.TRTLLM, max_batched_tokens=4096)
    ep1 = M.trtllm_moe_workspace_bytes(f, _table(ep=1, **base))[0]
    ep8 = M.trtllm_moe_workspace_bytes(f, _table(ep=8, **base))[0]
    assert ep1 <= ep8
    # with hidden >= 2 x width both ways, only the rows count: the same bytes
    assert ep1 == ep8 == M.trtllm_moe_workspace_bytes(f, _table(**{**base, "tp": 1, "ep": 1}))[0]
    # Mixtral-8x7B's experts (14,336 wide, hidden 4,096) are wider than the hidden size: the split shrinks them
    _, wide = _facts(tmp_path, MOE.replace("qwen3-30b-a3b", "mixtral-8x7b"))
    ep1 = M.trtllm_moe_workspace_bytes(wide, _table(ep=1, **base))[0]
    ep8 = M.trtllm_moe_workspace_bytes(wide, _table(ep=8, **base))[0]
    rows = 2 * 4096  # top-2 expanded rows
    assert ep8 - ep1 == rows * (2 * (14336 - 4096) + 2 * (2 * 14336 - 4096))


def test_only_tensorrt_llm_cutlass_moe_plans_are_charged(tmp_path):
    _, f = _facts(tmp_path)
    base = dict(tp=4, ep=4, attn_dp=True, max_batched_tokens=4 * 2048)
    assert M.trtllm_moe_workspace_bytes(f, _table(engine=E.TRTLLM, **base))[0] > 0
    for eng in (E.VLLM, E.SGLANG):
        assert M.trtllm_moe_workspace_bytes(f, _table(engine=eng, **base))[0] == 0
    gen = _table(engine=E.TRTLLM, moe_backend=E.MOE_BACKENDS.index("trtllm"), **base)
    assert M.trtllm_moe_workspace_bytes(f, gen)[0] == 0  # TRTLLM-gen kernels: their own buffers, not charged
    _, dense = _facts(tmp_path, DENSE)
    assert M.trtllm_moe_workspace_bytes(dense, _table(engine=E.TRTLLM, **base))[0] == 0


def test_a_dep_rank_charges_the_gathered_moe_buffers_instead_of_its_own_mlp_rows(tmp_path):
    """The same DEP4 plan on TensorRT-LLM and vLLM: TensorRT-LLM's workspace replaces the rank's own MLP activations
    (4,096 tokens x 3 x the top-8 width in bf16) by the MoE buffers of the four ranks' gathered 16,384 tokens."""
    sc, f = _facts(tmp_path)
    plan = "weights=bf16,tp=4,ep=4,attn_dp=true,max_batch=1024,max_batched_tokens=16384"
    trt = estimate_serving(sc, parse_serve_plan(f"engine=trtllm,{plan}", sc))["memory"]
    vll = estimate_serving(sc, parse_serve_plan(f"engine=vllm,{plan}", sc))["memory"]
    moe = M.trtllm_moe_workspace_bytes(f, _table(tp=4, ep=4, attn_dp=True, engine=E.TRTLLM,
                                                 max_batched_tokens=16384))[0]
    own_mlp = 4096 * 2 * 3 * f.ffn_per_token
    assert moe > 1024 ** 3 > own_mlp  # 16,384 gathered rows x top-8: over a GiB per rank
    assert abs(trt["workspace_gib"] - (vll["workspace_gib"] + (moe - own_mlp) / E.GIB)) < 0.01
