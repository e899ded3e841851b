"""Memory of one serving GPU, exact per component and per engine, vectorised over a plan table.

Per GPU of the most loaded pipeline stage (ceil(layers / pp) layers; the embedding and the LM head
on the first and last stage, both counted, which is exact for pp = 1):
* weights: linear layers at the plan's format (engines.weight_bytes_per_element, block scales
  included), embedding / LM head / router / norms in bf16; attention and dense MLP split by the
  attention tensor-parallel size (tp, or 1 under attention data parallelism), routed experts by tp
  (expert parallel x expert tensor parallel = tp);
* KV cache per token: MHA/GQA 2 x kv_heads x head_dim per layer (kv heads split by tp, replicated
  once tp exceeds them); MLA the compressed latent kv_lora_rank + qk_rope_head_dim per layer (not
  split by tp: every rank keeps it, DeepSeek-V2 paper Sec. 2.1); sliding-window layers hold at most
  `window` tokens of a sequence;
* workspace: activations of the largest step (max_batched_tokens tokens: residual, q/k/v and
  output, MLP gate/up/activation in bf16) plus fp32 logits of max_batch sequences for sampling;
  under attention DP a rank's share of both (workspace_bytes); on TensorRT-LLM the MLP part is at least
  the CUTLASS MoE op's buffers for the rows its MoE layer runs, under attention DP all ranks' tokens
  (trtllm_moe_workspace_bytes);
* CUDA graphs and the CUDA context / NCCL / cuBLAS buffers (named below);
* the KV pool is what the engine's reserve leaves (engines module doc).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.arch import attention_params, layer_matmuls, model_stats
from planner.serve import engines as E
from planner.serve.aiter_triton_gemm import block_gemm_shapes

# Memory the engines keep outside weights, activations and KV. Assumed, not measured here:
# vLLM's start-up log reports CUDA-graph capture taking about 0.5-1.5 GiB ("Graph capturing
# finished ... took X GiB") for 8B-70B models; the CUDA context with NCCL and cuBLAS workspaces
# takes about 0.5-1 GiB per process (nvidia-smi of an idle torch process with NCCL initialised).
CUDA_GRAPH_GIB = 1.0
CUDA_CONTEXT_GIB = 0.75
ACT_BYTES = 2.0  # bf16 activations


@dataclass(frozen=True)
class ModelFacts:
    """Per-layer parameter and KV counts the serving model needs (from planner.arch, exact)."""

    layers: int
    moe_layers: int
    hidden: int
    vocab: int
    heads: int
    attn: float           # linear attention parameters per layer
    dense_mlp: float      # per layer, averaged over layers (dense layers only)
    shared: float         # shared-expert parameters per layer, averaged
    routed: float         # all routed-expert parameters per layer, averaged
    router_norms: float   # bf16 router + norms per layer, averaged
    embed: float
    head: float           # LM head parameters (0 when tied to the embedding)
    experts: int
    top_k: int
    kv_elems: int         # KV elements per token per layer (before the tp split)
    kv_split_max: int     # the most ways tp can split the KV (kv heads; 1 for MLA)
    full_layers: int      # layers attending to the whole sequence
    window: int           # sliding window length (0 = none)
    attn_dim_prefill: float  # H x (d_qk + d_v): attention FLOPs per token pair / 2
    attn_dim_decode: float   # MLA decodes in the absorbed form: H x (2 kv_lora_rank + rope)
    ffn_per_token: float  # MLP width one token passes through (top_k experts + shared, or dense)
    expert_ffn: float = 0.0       # width of one routed expert (0 = dense model)
    expert_up_share: float = 2 / 3  # share of an expert's parameters in its up (gate + up) projection
    gemms_per_layer: float = 4.0  # weight GEMM launches per layer (grouped expert GEMMs count once), averaged
    mla_proj: float = 0.0  # MLA's query / latent-KV projections per layer (in attn; o_proj not included)
    block_gemms: tuple = ()  # dense GEMMs SGLang runs as block-FP8 linears (aiter_triton_gemm.block_gemm_shapes)


def model_facts(m) -> ModelFacts:
    st = model_stats(m)
    L = m.layers
    attn = float(attention_params(m))
    dense_mlp = st.dense_mlp_per_layer * st.dense_layers / L
    routed = st.routed_experts_per_moe_layer * st.moe_layers / L
    shared = st.shared_experts_per_moe_layer * st.moe_layers / L
    router_norms = st.router_per_moe_layer * st.moe_layers / L + st.norms_per_layer
    mla_proj = 0.0
    if m.mla:
        # everything attention_params counts but the output projection (heads x v_head_dim x hidden)
        mla_proj = attn - float(m.heads * m.mla.v_head_dim * m.hidden)
        kv_elems, kv_split = m.mla.kv_lora_rank + m.mla.qk_rope_head_dim, 1
        dec = m.heads * (2 * m.mla.kv_lora_rank + m.mla.qk_rope_head_dim)
        pre = m.heads * (m.mla.qk_nope_head_dim + m.mla.qk_rope_head_dim + m.mla.v_head_dim)
    else:
        kv_elems, kv_split = 2 * m.n_kv_heads * m.d_head, m.n_kv_heads
        dec = pre = m.heads * 2 * m.d_head
    window = getattr(m, "sliding_window", None) or 0
    sw_layers = (getattr(m, "sliding_window_layers", None) or (L if window else 0)) if window else 0
    if m.moe:
        ffn_tok = m.moe.top_k * m.moe.expert_ffn_hidden + m.moe.shared_ffn
        ffn_tok = max(ffn_tok, m.ffn_hidden if st.dense_layers else 0)
    else:
        ffn_tok = m.ffn_hidden
    return ModelFacts(
        layers=L, moe_layers=st.moe_layers, hidden=m.hidden, vocab=m.vocab, heads=m.heads, attn=attn,
        dense_mlp=dense_mlp, shared=shared, routed=routed, router_norms=router_norms,
        embed=float(st.embedding), head=float(st.lm_head), experts=st.experts,
        top_k=st.top_k, kv_elems=kv_elems, kv_split_max=kv_split, full_layers=L - sw_layers,
        window=window, attn_dim_prefill=float(pre), attn_dim_decode=float(dec), ffn_per_token=float(ffn_tok),
        expert_ffn=float(m.moe.expert_ffn_hidden) if m.moe else 0.0,
        expert_up_share=2 / 3 if m.ffn_act == "swiglu" else 1 / 2,
        gemms_per_layer=(st.moe_layers * len(layer_matmuls(m, True)) + st.dense_layers * len(layer_matmuls(m, False))) / L,
        mla_proj=mla_proj, block_gemms=block_gemm_shapes(m))


def stage_layers(f: ModelFacts, pp):
    return np.ceil(f.layers / pp)


def attn_tp(t):
    """Tensor-parallel size of attention: 1 under attention data parallelism."""
    return np.where(t["attn_dp"], 1, t["tp"])


def weight_bytes(f: ModelFacts, t, bpe, bpe_dense=None, bpe_mla=None) -> np.ndarray:
    """Weights on one GPU of the most loaded stage (module doc); bpe_dense: bytes per element of the
    non-expert linears when the scheme quantises the experts only (engines.dense_scheme), else bpe; bpe_mla:
    of MLA's query / latent-KV projections (f.mla_proj) where the scheme leaves them unquantised
    (engines.mla_proj_scheme), else bpe_dense."""
    ls = stage_layers(f, t["pp"])
    ta = attn_tp(t)
    bpe_dense = bpe if bpe_dense is None else bpe_dense
    linear = ls * ((f.attn + f.dense_mlp + f.shared) * bpe_dense / ta + f.routed * bpe / t["tp"])
    if f.mla_proj and bpe_mla is not None:
        linear = linear + ls * f.mla_proj * (bpe_mla - bpe_dense) / ta
    bf16 = ls * f.router_norms * 2.0 + (f.embed + f.head) * 2.0 / ta
    return linear + bf16


def kv_bytes_per_token(f: ModelFacts, t, kv_bytes) -> tuple[np.ndarray, np.ndarray]:
    """(full-attention, sliding-window) KV bytes per token on one GPU of a stage."""
    ls = stage_layers(f, t["pp"])
    split = np.minimum(attn_tp(t), f.kv_split_max)
    per_layer = f.kv_elems * kv_bytes / split
    share_full = f.full_layers / f.layers
    return ls * share_full * per_layer, ls * (1 - share_full) * per_layer


def seq_kv_bytes(f: ModelFacts, per_full, per_sw, tokens) -> np.ndarray:
    """KV bytes of one sequence holding `tokens` tokens."""
    sw = np.minimum(tokens, f.window) if f.window else 0.0
    return per_full * tokens + per_sw * sw


def workspace_bytes(f: ModelFacts, t) -> np.ndarray:
    """Activation peak of the largest step plus sampling logits (module doc), of ONE rank. max_batch and
    max_batched_tokens are the replica's (evaluate: b and the step's token budget are the replica's;
    launch._per_rank and SGLang's own division give each attention-DP rank its share): under attention DP a
    rank samples its own ceil(max_batch / tp) sequences (engines.seqs_per_rank: vLLM --max-num-seqs,
    TensorRT-LLM max_batch_size, SGLang --max-running-requests / dp) and steps its share ceil(max_batched_tokens
    / tp) of the tokens (SGLang server_args: chunked_prefill_size // dp_size)."""
    ta = attn_tp(t)
    tokens = E.seqs_per_rank(t["max_batched_tokens"], t["tp"], t["attn_dp"])
    mlp = tokens * ACT_BYTES * 3 * f.ffn_per_token / ta
    logits = 4.0 * E.seqs_per_rank(t["max_batch"], t["tp"], t["attn_dp"]) * f.vocab / ta
    return tokens * ACT_BYTES * 4 * f.hidden + np.maximum(mlp, trtllm_moe_workspace_bytes(f, t)) + logits


def trtllm_moe_rows(t) -> np.ndarray:
    """Token rows one rank's TensorRT-LLM MoE layer runs in the KV-sizing forward: every rank steps its own
    max_num_tokens (KvCacheCreator._create_dummy_context_requests repeats the dummy requests tp_size times under
    attention DP, tensorrt_llm/_torch/pyexecutor/_util.py), and under attention DP the MoE gathers all ranks'
    tokens (CutlassFusedMoE.forward_chunk: allgather of the quantised input, expert ids and scales, num_rows =
    sum(all_rank_num_tokens); moe_max_num_tokens defaults to max_num_tokens x world size, so no chunking;
    tensorrt_llm/_torch/modules/fused_moe/fused_moe_cutlass.py)."""
    own = E.seqs_per_rank(t["max_batched_tokens"], t["tp"], t["attn_dp"])
    return np.where(t["attn_dp"], own * t["tp"], own)


def trtllm_moe_workspace_bytes(f: ModelFacts, t) -> np.ndarray:
    """Memory TensorRT-LLM's CUTLASS MoE op holds on one rank at the KV-sizing forward's peak (0 for dense models,
    other engines and the TRTLLM-gen backend). TensorRT-LLM sizes its KV pool from the peak torch allocation of that
    forward (allocated_bytes.all.peak, KvCacheCreator), and FusedMoeRunner.runMoe (cpp/tensorrt_llm/thop/moeOp.cpp)
    allocates, per call, a bf16 output of num_rows x hidden and one workspace of
    CutlassMoeFCRunner::getWorkspaceDeviceBufferSizes (cpp/tensorrt_llm/kernels/cutlass_kernels/moe_gemm/
    moe_kernels.cu) for E = top_k x num_rows expanded rows, the routed expert width I split by moe_tp = tp / ep:
    four int32 index maps, fp32 permuted scales and the int32 src_to_dest map (24 B per expanded row); the
    overlapped GEMM inputs max(permuted input, fc1 result, bf16 fc2 result) = E x 2 x max(hidden, I); the overlapped
    GEMM outputs max(bf16 gated fc1 output 2I, bf16 fc2 result) = E x 2 x max(2 I, hidden). Beside them the gathered
    input, expert ids and scales (num_rows x hidden, charged at 2 B: an upper bound for FP8 / NVFP4 inputs) stay
    alive. The FP8-block-scale path's own GEMM workspace and NVFP4's activation scale factors are not added
    (a few percent of the term)."""
    if not f.expert_ffn:
        return np.zeros(np.shape(t["tp"]))
    rows = trtllm_moe_rows(t).astype(float)
    inter = f.expert_ffn / np.maximum(np.asarray(t["tp"]) // np.maximum(np.asarray(t["ep"]), 1), 1)
    e = f.top_k * rows
    ws = e * (24 + ACT_BYTES * np.maximum(f.hidden, inter) + ACT_BYTES * np.maximum(2 * inter, f.hidden))
    ws = ws + rows * (2 * ACT_BYTES * f.hidden + 8 * f.top_k)
    on = (np.asarray(t["engine"]) == E.TRTLLM) & ~E.plan_trtllm_gen_moe(t)
    return np.where(on, ws, 0.0)


def kv_pool_bytes(t, cap_bytes: float, weights, work) -> np.ndarray:
    """KV pool per GPU after the engine's reserve (engines module doc)."""
    other = work + (CUDA_GRAPH_GIB + CUDA_CONTEXT_GIB) * E.GIB
    vllm = E.VLLM_GPU_MEMORY_UTILIZATION * cap_bytes - weights - other
    sgl = E.sglang_mem_fraction(t["tp"] * t["pp"]) * cap_bytes - weights
    sgl = np.where(cap_bytes - E.sglang_mem_fraction(t["tp"] * t["pp"]) * cap_bytes >= other, sgl, -1.0)
    trt = E.TRTLLM_FREE_GPU_MEMORY_FRACTION * (cap_bytes - weights - other)
    pool = np.select([t["engine"] == E.VLLM, t["engine"] == E.SGLANG], [vllm, sgl], trt)
    return np.maximum(pool, 0.0)


def memory_table(f: ModelFacts, t, cap_bytes: float, bpe, kvb, in_mean, out_mean, in_p90, out_p90,
                 bpe_dense=None, bpe_mla=None) -> dict:
    """Everything memory says about each plan: bytes per component, KV pool, sequences that fit
    (per replica), and the verdict. out_mean: the output length of a sequence in flight (the caller's
    length-biased mean, evaluate.Context.out_running)."""
    w = weight_bytes(f, t, bpe, bpe_dense, bpe_mla)
    work = workspace_bytes(f, t)
    pool = kv_pool_bytes(t, cap_bytes, w, work)
    full, sw = kv_bytes_per_token(f, t, kvb)
    full_len = seq_kv_bytes(f, full, sw, in_mean + out_mean)
    p90_len = seq_kv_bytes(f, full, sw, in_p90 + out_p90)
    # Running sequences hold on average input + output/2 tokens when blocks are allocated on demand
    # (vLLM, SGLang); TensorRT-LLM's GUARANTEED_NO_EVICT reserves the whole length at admission.
    occupied = np.where(t["engine"] == E.TRTLLM, full_len, seq_kv_bytes(f, full, sw, in_mean + out_mean / 2))
    group = np.where(t["attn_dp"], t["tp"], 1)  # attention-DP ranks each hold their own sequences
    seqs_full = np.floor(pool / full_len) * group
    seqs_running = np.floor(pool / occupied) * group
    other = work + (CUDA_GRAPH_GIB + CUDA_CONTEXT_GIB) * E.GIB
    per_gpu = w + pool + other
    oom = (pool < p90_len) | (w + other > cap_bytes)
    verdict = np.where(oom, 2, np.where(seqs_full < t["max_batch"], 1, 0))
    return {"weights": w, "workspace": work, "other": other, "kv_pool": pool, "per_gpu": per_gpu,
            "seqs_full": seqs_full, "seqs_running": seqs_running, "verdict": verdict}


VERDICTS = ("fits", "tight", "oom")
