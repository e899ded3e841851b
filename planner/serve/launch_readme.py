"""README.txt of a serving export: the plan, its estimates, the checkpoint it needs, and what every
emitted flag or YAML key does (meanings from the engines' own help texts at the pinned versions)."""

from __future__ import annotations

from planner.serve import launch as L

MEANING = {
    # vLLM 0.33.0 (`vllm serve --help`)
    "--tensor-parallel-size": "GPUs one model copy is split over, layer by layer (tensor parallelism)",
    "--pipeline-parallel-size": "pipeline stages: consecutive layer groups on different GPUs",
    "--data-parallel-size": "attention data parallelism: engine copies that share the experts (MoE)",
    "--enable-expert-parallel": "spread MoE experts over the GPUs instead of slicing each expert",
    "--max-num-seqs": "most sequences running at once (the plan's max_batch)",
    "--max-num-batched-tokens": "most tokens per engine step (chunked-prefill budget)",
    "--gpu-memory-utilization": "share of GPU memory vLLM may use in all (weights, activations, KV cache)",
    "--kv-cache-dtype": "number format of the KV cache",
    "--quantization": "weight quantisation method",
    "--dtype": "activation / unquantised weight format",
    "--max-model-len": "longest request (input + output tokens) accepted",
    "--enable-prefix-caching": "reuse the KV cache of shared prompt prefixes",
    "--nnodes": "nodes one replica spans", "--node-rank": "this node's index within the replica",
    "--master-addr": "address of the replica's first node", "--master-port": "its rendezvous port",
    "--headless": "worker node without an API server (vLLM, node rank > 0)",
    "--kv-transfer-config": "KV-cache transfer between prefill and decode instances (NixlConnector)",
    # SGLang 0.5.23 (`python -m sglang.launch_server --help`)
    "--model-path": "checkpoint (path or Hugging Face id)",
    "--tp-size": "tensor-parallel GPUs of one model copy", "--pp-size": "pipeline stages",
    "--ep-size": "expert-parallel size of the MoE layers", "--attn-dp-size": "attention data-parallel ranks",
    "--mem-fraction-static": "share of GPU memory for weights + KV pool (the rest: activations, CUDA graphs)",
    "--max-running-requests": "most requests running at once (the plan's max_batch)",
    "--chunked-prefill-size": "most prefill tokens per step (chunked prefill)",
    "--context-length": "longest request (input + output tokens) accepted",
    "--dist-init-addr": "host:port of the replica's first node",
    "--disaggregation-mode": "this instance only prefills or only decodes (disaggregated plan)",
    "--disaggregation-transfer-backend": "library that moves the KV cache between instances",
    # TensorRT-LLM trtllm-serve and its LLM-API YAML
    "--backend": "TensorRT-LLM runtime (pytorch: no engine build step)",
    "--extra_llm_api_options": "YAML of LLM-API arguments; overrides the command line",
    "tensor_parallel_size": "tensor-parallel GPUs of one model copy", "pipeline_parallel_size": "pipeline stages",
    "moe_expert_parallel_size": "expert-parallel size of the MoE layers",
    "enable_attention_dp": "attention data parallelism (MoE)",
    "max_batch_size": "most requests scheduled at once (per attention-DP rank)",
    "max_num_tokens": "most tokens per engine step", "max_seq_len": "longest request (input + output)",
    "enable_chunked_prefill": "split long prompts over steps of max_num_tokens",
    "dtype": "model / activation format",
    "kv_cache_config.free_gpu_memory_fraction": "share of the memory left after weights and buffers "
                                                "that the KV cache takes",
    "kv_cache_config.dtype": "number format of the KV cache",
    "kv_cache_config.enable_block_reuse": "reuse KV blocks of shared prompt prefixes",
    "cuda_graph_config.enable_padding": "pad a generation-only batch with dummy requests to the next captured "
                                        "CUDA-graph size",
    "cuda_graph_config.batch_sizes": "batch sizes whose CUDA graphs are captured",
    "moe_config.backend": "MoE kernels: TRTLLM = the TRTLLM-gen fused MoE kernels of Blackwell (small row tiles at decode)",
    "attention_dp_config.enable_balance": "hold new prompts until every attention-DP rank has one, then release "
                                          "them together",
    "attention_dp_config.batching_wait_iters": "steps the prompts are held once every rank has one",
    "attention_dp_config.timeout_iters": "steps after which held prompts go even if some rank has none",
    "cache_transceiver_config.backend": "library that moves the KV cache between context and generation "
                                        "instances (disaggregated plan)",
}


def _keys(args: list, cfg: dict | None) -> list[str]:
    keys = [a for a in args if isinstance(a, str) and a.startswith("--") and a in MEANING]
    for k, v in (cfg or {}).items():
        keys += [f"{k}.{s}" for s in v] if isinstance(v, dict) else [k]
    return list(dict.fromkeys(keys))


FILE_NOTES = {
    "serve.sh": "starts one replica's server on this node: MODEL=<checkpoint> ./serve.sh",
    "serve-prefill.sh": "starts one prefill instance (disaggregated plan) on this node",
    "serve-decode.sh": "starts one decode instance (disaggregated plan) on this node",
    "slurm.sbatch": "Slurm job array, one task per replica: MODEL=<checkpoint> sbatch slurm.sbatch",
    "k8s.yaml": "Kubernetes: Deployment (or LeaderWorkerSet for multi-node replicas) + Service",
    "plan.json": "the planner's estimate of this plan (planner serve --json object)",
    L.TRT_YAML: "TensorRT-LLM LLM-API options (trtllm-serve --extra_llm_api_options)",
}


def readme(scenario, result: dict, args: list, cfg: dict | None, nodes: int, per_node: int,
           names: list[str]) -> str:
    plan, mem, lat, th, cost = (result[k] for k in ("plan", "memory", "latency", "throughput", "cost"))
    ver = L.engine_flags(plan["engine"])["version"]
    usd = cost.get("usd_per_million_output_tokens")
    lines = [
        f"Serving files written by planner for: {scenario.name}",
        "",
        "Plan (paste into: planner serve SCENARIO --plan \"...\"):",
        f"  {L.plan_text(plan)}",
        f"Engine: {plan['engine']} {ver}; {plan['replicas']} replica(s) of {plan['tp'] * plan['pp']} GPU(s) "
        f"({nodes} node(s) x {per_node} {scenario.cluster.node.gpu.name} each)",
        f"Checkpoint (MODEL): {scenario.model.name} as {L.QUANT[plan['weights']][2]}",
        "",
        "Estimates (planner's model):",
        f"  memory per GPU   {mem['per_gpu_gib']} GiB ({mem['verdict']}); KV cache {mem['kv_cache_gib']} GiB, "
        f"{mem['max_concurrent_sequences']} sequences fit",
        f"  TTFT p50/p90/p99 {lat['ttft_ms']['p50']} / {lat['ttft_ms']['p90']} / {lat['ttft_ms'].get('p99')} ms",
        f"  TPOT p50/p90/p99 {lat['tpot_ms']['p50']} / {lat['tpot_ms']['p90']} / {lat['tpot_ms'].get('p99')} ms",
        f"  throughput       {th['output_tokens_per_s']} output tokens/s "
        f"({th['output_tokens_per_s_per_gpu']} per GPU)",
        f"  cost             {'unknown (no price)' if usd is None else f'${usd} per million output tokens'}",
        "",
        "Files:",
        *(f"  {n:<20} {FILE_NOTES[n]}" for n in names if n in FILE_NOTES),
    ]
    if "k8s.yaml" not in names:
        lines.append("  (no k8s.yaml: a TensorRT-LLM replica over several nodes needs an MPI launcher; "
                     "use slurm.sbatch)")
    if plan.get("prefill_replicas"):
        lines += ["", f"Disaggregated: {plan['prefill_replicas']} prefill and {plan['replicas']} decode instances; "
                  "the router that sends each request to a prefill, then a decode instance is not emitted (vLLM: "
                  "its disaggregated-serving proxy example; SGLang: sglang-router with --pd-disaggregation; "
                  "TensorRT-LLM: trtllm-serve disaggregated -c <config naming the instances>)."]
    lines += ["", "Keys (the engine's own meaning):"]
    lines += [f"  {k:<42} {MEANING[k]}" for k in _keys(args, cfg)]
    lines += [f"  {k}={v:<{max(41 - len(k), 0)}} environment (serve.sh, k8s.yaml): ROCm quantised all-reduce level "
              "(QuickReduce) for all-reduces from its minimum size on" for k, v in L.engine_env(plan)]
    lines += ["", "Every flag and value above exists in the pinned engine version (checked against the flag list "
              "extracted from its argument parser). Memory fractions are the ones the estimate assumed."]
    if nodes > 1:
        lines.append("Multi-node replica: set NODE_RANK (0..nodes-1) and HEAD_ADDR (first node) on each node; "
                     + ("slurm.sbatch and the LeaderWorkerSet do it for you." if "k8s.yaml" in names
                        else "slurm.sbatch does it for you."))
    return "\n".join(lines) + "\n"
