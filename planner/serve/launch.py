"""Launch files of a serving plan (`planner serve ... --emit DIR`): the engine's server command
(and TensorRT-LLM's YAML), a Kubernetes manifest and a Slurm array script for the replicas, the
plan as JSON and a README naming what every key does.

Pinned engine versions (each emitted flag and value is checked against the list extracted from that
version's own argument parser, planner/serve/engine_flags/*.json; tests/test_serve_emit.py):
* vLLM 0.33.0 (`vllm serve`), SGLang 0.5.23 (`python -m sglang.launch_server`): lists written by
  benchmarks/engine_flags_extract.py from the PyPI wheels' parsers;
* TensorRT-LLM `trtllm-serve` at source commit 00209af149e7 with its `--extra_llm_api_options` YAML
  (list transcribed from tensorrt_llm/commands/serve.py and llmapi/llm_args.py).

One server per replica: replicas are independent copies behind the user's load balancer (the
Kubernetes Service, or any HTTP balancer in front of the Slurm tasks). A replica wider than a node
(tp x pp GPUs > GPUs per node) spans nodes: vLLM `--nnodes/--node-rank/--master-addr` (rank > 0
`--headless`), SGLang `--nnodes/--node-rank/--dist-init-addr`, TensorRT-LLM one MPI rank per GPU
through `trtllm-llmapi-launch` under srun; on Kubernetes a LeaderWorkerSet.

Memory fractions are the ones the plan's memory model assumed (planner.serve.engines), so the engine
sizes its KV cache as the estimate did. Every value reaching a shell line is shlex-quoted; YAML is
written by yaml.safe_dump; a value a flag list does not allow is refused (InputError), never written.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from functools import lru_cache
from pathlib import Path

import yaml

from planner import jsonout
from planner.errors import InputError
from planner.serve import engines as E

FLAGS_DIR = Path(__file__).resolve().parent / "engine_flags"
PORT = 8000
MASTER_PORT = 29500  # rendezvous port of multi-node replicas (vLLM master, SGLang dist-init)
TRT_YAML = "trtllm_config.yaml"
# Every file name an export may write (others in the directory are left alone).
LAUNCH_NAMES = frozenset({"serve.sh", "serve-prefill.sh", "serve-decode.sh", "slurm.sbatch", "k8s.yaml",
                          "plan.json", "README.txt", TRT_YAML})
IMAGES = {"vllm": "vllm/vllm-openai:v0.33.0", "sglang": "lmsysorg/sglang:v0.5.23",
          "trtllm": "nvcr.io/nvidia/tensorrt-llm/release:latest"}

# Weight scheme -> (vLLM --quantization, SGLang --quantization, checkpoint the scheme needs).
# Only fp8 (and fp8-block for vLLM, whose online `fp8_per_block` method makes 128 x 128 weight blocks and
# 1 x 128 activation groups) names a method: the engines quantise a BF16 checkpoint when they load it. Every
# other scheme needs a checkpoint already in that format, whose quantization_config the engines read
# (vLLM 0.33 config/model.py refuses a --quantization that differs from the checkpoint's method, and
# picks the Marlin kernels for AWQ / GPTQ by itself); TensorRT-LLM reads every scheme from the
# checkpoint (ModelOpt hf_quant_config.json).
QUANT = {
    "bf16": (None, None, "the original BF16 checkpoint"),
    "fp16": (None, None, "the original checkpoint (run in FP16)"),
    "fp8": ("fp8", "fp8", "the BF16 checkpoint, quantised to FP8 when loaded (vLLM / SGLang; for an FP8 "
                          "checkpoint drop --quantization: the engine reads the method from it)"),
    "fp8-block": ("fp8_per_block", None, "a block-scaled FP8 checkpoint (128 x 128 weight blocks, e.g. "
                  "deepseek-ai/DeepSeek-V3 / R1), whose quantization_config SGLang and TensorRT-LLM read; vLLM "
                  "quantises a BF16 checkpoint so when loaded (--quantization fp8_per_block; for a block-FP8 "
                  "checkpoint drop it: vLLM reads the method, fp8 with weight_block_size, from it)"),
    "int8": (None, None, "a W8A8 INT8 checkpoint (e.g. llm-compressor / SmoothQuant)"),
    "nvfp4": (None, None, "an NVFP4 checkpoint (NVIDIA TensorRT Model Optimizer)"),
    "mxfp4": (None, None, "an MXFP4 checkpoint (e.g. gpt-oss)"),
    "int4-awq": (None, None, "an AWQ 4-bit checkpoint (group size 128)"),
    "int4-gptq": (None, None, "a GPTQ 4-bit checkpoint (group size 128)"),
}
DTYPE = {"bf16": "bfloat16", "fp16": "float16"}
# KV-cache scheme -> value of each engine's KV dtype key (SGLang has no float16 choice: its "auto"
# follows the model dtype, 2 bytes like bf16).
KV_DTYPE = {"vllm": {"bf16": "bfloat16", "fp16": "float16", "fp8": "fp8"},
            "sglang": {"bf16": "bfloat16", "fp16": "auto", "fp8": "fp8_e4m3"},
            "trtllm": {"bf16": "auto", "fp16": "auto", "fp8": "fp8"}}


class Env:
    """A value known only at launch time: `${NAME:-default}` in bash, `$(K8S)` on Kubernetes."""

    def __init__(self, name: str, default: str | None = None, k8s: str | None = None, k8s_suffix: str = ""):
        self.name, self.default, self.k8s, self.k8s_suffix = name, default, k8s or name, k8s_suffix

    def bash(self) -> str:
        return f'"${{{self.name}:-{self.default}}}"' if self.default is not None else \
            f'"${{{self.name}:?set {self.name}}}"'


MODEL = Env("MODEL")
NODE_RANK = Env("NODE_RANK", "0", k8s="LWS_WORKER_INDEX")
HEAD = Env("HEAD_ADDR", "127.0.0.1", k8s="LWS_LEADER_ADDRESS")


@lru_cache(maxsize=None)
def engine_flags(engine: str) -> dict:
    """The committed flag list of the pinned engine version (module doc)."""
    return json.loads((FLAGS_DIR / f"{engine}.json").read_text(encoding="utf-8"))


def safe_name(text: str, limit: int = 63) -> str:
    """A DNS-1123 label (Kubernetes names, Slurm job names, file names): lower-case letters,
    digits and '-', starting and ending with a letter or digit."""
    s = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return s or "planner"


def layout(scenario, plan: dict) -> tuple[int, int, int]:
    """(GPUs of one replica, nodes of one replica, GPUs used per node of it)."""
    gpus = plan["tp"] * plan["pp"]
    per_node = scenario.cluster.node.gpus_per_node
    nodes = math.ceil(gpus / per_node)
    if gpus % nodes:
        raise InputError(f"a replica of {gpus} GPUs cannot be spread evenly over {nodes} nodes of "
                         f"{per_node} GPUs", key="plan")
    return gpus, nodes, gpus // nodes


def max_len(scenario) -> int | None:
    """Longest request (input + output tokens) when the traffic names a maximum (a fixed count or a
    list of points); None for {mean, p90} (no maximum known: the engine's default, the model's
    context length, is kept). Never above the model's context: a longer request is refused when the
    scenario is read (planner.spec.serving.check_positions)."""
    total = 0
    for v in (scenario.serving.input_tokens, scenario.serving.output_tokens):
        if isinstance(v, int):
            total += v
        elif isinstance(v, list):
            total += max(t for t, _ in v)
        else:
            return None
    return total


def _per_rank(plan: dict, key: str = "max_batch") -> int:
    """An attention-DP rank's share of the replica's max_batch (or max_batched_tokens): vLLM and TensorRT-LLM
    limit each rank (engines.seqs_per_rank)."""
    return int(E.seqs_per_rank(plan[key], plan["tp"], plan["attn_dp"]))


def vllm_args(scenario, plan: dict, nodes: int) -> list:
    """`vllm serve` arguments (vLLM 0.33.0, vllm/engine/arg_utils.py)."""
    q, _, _ = QUANT[plan["weights"]]
    if not E.vllm_ep_ok(E.VLLM, plan["tp"], plan["ep"], plan["attn_dp"]):
        raise InputError(f"vLLM's --enable-expert-parallel spreads experts over all tp x dp GPUs; "
                         f"ep={plan['ep']} with tp={plan['tp']} cannot be expressed", key="plan ep")
    if plan["attn_dp"] and nodes > 1:
        raise InputError("a vLLM attention-data-parallel replica over several nodes is not emitted (vLLM's "
                         "multi-node data-parallel launch numbers each node's ranks); keep the replica within "
                         "one node or use SGLang / TensorRT-LLM", key="plan attn_dp")
    if plan.get("separate_prefill"):
        raise InputError("separate_prefill is vLLM's V0 scheduler, which the pinned vLLM no longer has (V0 removed in "
                         "0.11.0); drop it to emit the launch", key="plan separate_prefill")
    if plan.get("recv_interval", 1) > 1:
        raise InputError("recv_interval on vLLM is V0's multi-step scheduling (--num-scheduler-steps), which the pinned "
                         "vLLM no longer has (removed in 0.10.1); drop it to emit the launch", key="plan recv_interval")
    tp, dp = (1, plan["tp"]) if plan["attn_dp"] else (plan["tp"], 1)
    a = ["vllm", "serve", MODEL, "--host", "0.0.0.0", "--port", str(PORT),
         "--tensor-parallel-size", str(tp), "--pipeline-parallel-size", str(plan["pp"])]
    a += ["--data-parallel-size", str(dp)] if dp > 1 else []
    a += ["--enable-expert-parallel"] if plan["ep"] > 1 else []
    a += ["--max-num-seqs", str(_per_rank(plan)), "--max-num-batched-tokens",
          str(_per_rank(plan, "max_batched_tokens")),
          "--gpu-memory-utilization", str(E.VLLM_GPU_MEMORY_UTILIZATION),
          "--kv-cache-dtype", KV_DTYPE["vllm"][plan["kv_cache"]]]
    a += ["--quantization", q] if q else []
    a += ["--dtype", DTYPE[plan["weights"]]] if plan["weights"] in DTYPE else []
    a += ["--max-model-len", str(max_len(scenario))] if max_len(scenario) else []
    a += ["--enable-prefix-caching"] if scenario.serving.prefix_cache_hit > 0 else []
    a += ["--async-scheduling"] if plan.get("async_scheduling") else []  # the pinned release's default; kept as asked
    if nodes > 1:
        a += ["--nnodes", str(nodes), "--node-rank", NODE_RANK, "--master-addr", HEAD,
              "--master-port", str(MASTER_PORT)]
    return a


def sglang_args(scenario, plan: dict, nodes: int) -> list:
    """`python -m sglang.launch_server` arguments (SGLang 0.5.23, sglang/srt/server_args.py).
    --max-running-requests is the replica's total (SGLang divides it over attention-DP ranks)."""
    _, q, _ = QUANT[plan["weights"]]
    a = ["python3", "-m", "sglang.launch_server", "--model-path", MODEL, "--host", "0.0.0.0",
         "--port", str(PORT), "--tp-size", str(plan["tp"]), "--pp-size", str(plan["pp"])]
    a += ["--ep-size", str(plan["ep"])] if plan["ep"] > 1 else []
    a += ["--attn-dp-size", str(plan["tp"])] if plan["attn_dp"] else []
    frac = float(E.sglang_mem_fraction(plan["tp"] * plan["pp"]))
    a += ["--mem-fraction-static", str(frac), "--max-running-requests", str(plan["max_batch"]),
          "--chunked-prefill-size", str(plan["max_batched_tokens"]),
          "--kv-cache-dtype", KV_DTYPE["sglang"][plan["kv_cache"]]]
    a += ["--quantization", q] if q else []
    a += ["--dtype", DTYPE[plan["weights"]]] if plan["weights"] in DTYPE else []
    a += ["--context-length", str(max_len(scenario))] if max_len(scenario) else []
    a += ["--scheduler-recv-interval", str(plan["recv_interval"])] if plan.get("recv_interval", 1) > 1 else []
    if nodes > 1:
        a += ["--nnodes", str(nodes), "--node-rank", NODE_RANK,
              "--dist-init-addr", Env("DIST_INIT", f"127.0.0.1:{MASTER_PORT}", k8s="LWS_LEADER_ADDRESS",
                                    k8s_suffix=f":{MASTER_PORT}")]
    return a


def trtllm_config(scenario, plan: dict) -> dict:
    """The `--extra_llm_api_options` YAML (BaseLlmArgs / KvCacheConfig fields of llm_args.py)."""
    cfg = {"tensor_parallel_size": plan["tp"], "pipeline_parallel_size": plan["pp"]}
    if scenario.model.moe:
        cfg["moe_expert_parallel_size"] = plan["ep"]
    if plan["attn_dp"]:
        cfg["enable_attention_dp"] = True
    cfg["max_batch_size"] = _per_rank(plan)
    cfg["max_num_tokens"] = _per_rank(plan, "max_batched_tokens")
    if max_len(scenario):
        cfg["max_seq_len"] = max_len(scenario)
    cfg["enable_chunked_prefill"] = True
    if plan["weights"] in DTYPE:
        cfg["dtype"] = DTYPE[plan["weights"]]
    cfg["kv_cache_config"] = {"free_gpu_memory_fraction": E.TRTLLM_FREE_GPU_MEMORY_FRACTION,
                              "dtype": KV_DTYPE["trtllm"][plan["kv_cache"]],
                              "enable_block_reuse": scenario.serving.prefix_cache_hit > 0}
    if plan.get("graph_padding"):  # the captured sizes the estimate pads to (engines.graph_batch_sizes)
        cfg["cuda_graph_config"] = {"enable_padding": True, "batch_sizes": E.graph_batch_sizes(_per_rank(plan))}
    if plan.get("moe_backend") == "trtllm":  # the TRTLLM-gen MoE kernels the estimate times (timing.trtllm_gen_row_tile)
        cfg["moe_config"] = {"backend": "TRTLLM"}
    if plan.get("adp_balance"):  # the attention-DP balancing whose prompt hold the estimate adds (evaluate.schedule_wait)
        cfg["attention_dp_config"] = {"enable_balance": True, "batching_wait_iters": plan["adp_wait_iters"],
                                      "timeout_iters": plan["adp_timeout_iters"]}
    return cfg


def trtllm_args(config_path: str) -> list:
    """`trtllm-serve` arguments; every setting of the plan is in the YAML, which overrides them."""
    return ["trtllm-serve", MODEL, "--backend", "pytorch", "--host", "0.0.0.0", "--port", str(PORT),
            "--extra_llm_api_options", config_path]


def check_args(engine: str, args: list) -> None:
    """Refuse a flag the pinned engine version does not have, or a value outside its choices."""
    opts = engine_flags(engine)["options"]
    first = next(i for i, a in enumerate(args) if isinstance(a, str) and a.startswith("--"))
    for i, tok in enumerate(args[first:], start=first):  # before it: the program and the model
        if isinstance(tok, str) and tok.startswith("-"):
            if tok not in opts:
                raise InputError(f"{engine} {engine_flags(engine)['version']} has no flag {tok}", key="plan")
            nxt = args[i + 1] if i + 1 < len(args) else None
            if opts[tok] and isinstance(nxt, str) and nxt not in opts[tok]:
                raise InputError(f"{engine} {tok} does not accept '{nxt}' (one of {', '.join(opts[tok])})",
                                 key="plan")


def check_trtllm_config(cfg: dict) -> None:
    """Refuse a YAML key (or value) that TensorRT-LLM's LLM arguments do not have."""
    data = engine_flags("trtllm")
    for key, value in cfg.items():
        if key not in data["yaml_keys"][""]:
            raise InputError(f"TensorRT-LLM has no LLM argument {key}", key="plan")
        if isinstance(value, dict):
            for sub, v in value.items():
                if sub not in data["yaml_keys"].get(key, []):
                    raise InputError(f"TensorRT-LLM {key} has no field {sub}", key="plan")
                allowed = data["yaml_values"].get(f"{key}.{sub}")
                if allowed and v not in allowed:
                    raise InputError(f"TensorRT-LLM {key}.{sub} does not accept '{v}'", key="plan")
        elif key in data["yaml_values"] and value not in data["yaml_values"][key]:
            raise InputError(f"TensorRT-LLM {key} does not accept '{value}'", key="plan")


def bash_words(args: list) -> str:
    """One shell command line: literals shlex-quoted, launch-time values as quoted expansions."""
    return " ".join(a.bash() if isinstance(a, Env) else shlex.quote(a) for a in args)


def k8s_words(args: list) -> list[str]:
    """Container command for Kubernetes: launch-time values as $(VAR) (expanded by the kubelet)."""
    out = []
    for a in args:
        if isinstance(a, Env):
            out.append(f"$({a.k8s}){a.k8s_suffix}")
        else:
            out.append(a.replace("$", "$$"))  # a literal $ must not be read as $(VAR)
    return out


NIXL_VLLM = json.dumps({"kv_connector": "NixlConnector", "kv_role": "kv_both"}, separators=(",", ":"))


def role_args(engine: str, role: str | None) -> list:
    """Flags of one pool of a disaggregated plan (prefill or decode instances), KV cache over NIXL:
    vLLM `--kv-transfer-config` with its NixlConnector (vllm/config/kv_transfer.py, role kv_both on
    both pools); SGLang `--disaggregation-mode prefill|decode` with `--disaggregation-transfer-backend
    nixl`; TensorRT-LLM: `cache_transceiver_config` in the YAML (trtllm_config)."""
    if role is None or engine == "trtllm":
        return []
    if engine == "vllm":
        return ["--kv-transfer-config", NIXL_VLLM]
    return ["--disaggregation-mode", role, "--disaggregation-transfer-backend", "nixl"]


def server_args(scenario, result: dict, config_path: str, role: str | None = None) -> tuple[list, dict | None]:
    """(server command words, TensorRT-LLM YAML or None) of one replica (of the prefill or decode
    pool when `role` is given), checked against the pinned engine's flags."""
    plan = result["plan"]
    for key, known in (("weights", QUANT), ("kv_cache", KV_DTYPE["vllm"])):
        if plan.get(key) not in known:
            raise InputError(f"'{plan.get(key)}' is not one of {', '.join(known)}", key=f"plan {key}")
    _, nodes, _ = layout(scenario, plan)
    engine = plan["engine"]
    cfg = None
    if engine == "vllm":
        args = vllm_args(scenario, plan, nodes)
    elif engine == "sglang":
        args = sglang_args(scenario, plan, nodes)
    elif engine == "trtllm":
        cfg = trtllm_config(scenario, plan)
        if plan.get("prefill_replicas"):
            cfg["cache_transceiver_config"] = {"backend": "NIXL"}
        check_trtllm_config(cfg)
        args = trtllm_args(config_path)
    else:
        raise InputError(f"unknown engine '{engine}' (expected vllm, sglang or trtllm)", key="plan engine")
    args = args + role_args(engine, role)
    check_args(engine, args)
    return args, cfg


def serve_script(scenario, plan: dict, args: list, nodes: int, role: str | None = None) -> str:
    """serve.sh: starts this replica's server on this node (set NODE_RANK and HEAD_ADDR on every
    node of a multi-node replica)."""
    count = plan["prefill_replicas"] if role == "prefill" else plan["replicas"]
    what = f"{role} instance" if role else "replica"
    lines = ["#!/usr/bin/env bash", f"# {plan_text(plan)}",
             f"# One {plan['engine']} server = one {what} of {plan['tp'] * plan['pp']} GPU(s); "
             f"start {count} of them" + (" behind a load balancer." if not role else
                                         " behind the disaggregation router (README.txt)."),
             "# MODEL: checkpoint path or Hugging Face id (see README.txt for the format it needs).",
             "set -euo pipefail", 'cd "$(dirname "$0")"']
    lines += [f"export {k}={shlex.quote(v)}" for k, v in engine_env(plan)]
    if plan["engine"] == "trtllm" and nodes > 1:
        lines.append("# Multi-node TensorRT-LLM: run under srun / mpirun with one task per GPU.")
        args = ["trtllm-llmapi-launch", *args]
    if nodes > 1 and plan["engine"] == "vllm":
        lines.append(f'if [ {NODE_RANK.bash()} != 0 ]; then set -- --headless; else set --; fi')
        return "\n".join(lines + [f"exec {bash_words(args)} \"$@\"", ""])
    return "\n".join(lines + [f"exec {bash_words(args)}", ""])


def slurm_script(scenario, plan: dict, nodes: int, per_node: int) -> str:
    """slurm.sbatch: a job array, one task per replica, each on `nodes` nodes."""
    name = safe_name(f"serve-{scenario.name}")
    per_task = per_node if plan["engine"] == "trtllm" and nodes > 1 else 1
    prefill = plan.get("prefill_replicas", 0)
    lines = ["#!/bin/bash", f"#SBATCH --job-name={name}", f"#SBATCH --array=0-{prefill + plan['replicas'] - 1}",
             f"#SBATCH --nodes={nodes}", f"#SBATCH --ntasks-per-node={per_task}",
             f"#SBATCH --gpus-per-node={per_node}",
             "# One array task per replica; put a load balancer in front of the tasks' port "
             f"{PORT}.", "set -euo pipefail", 'cd "${SLURM_SUBMIT_DIR:-.}"',
             ': "${MODEL:?export MODEL=<checkpoint> before sbatch}"',
             'export HEAD_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"']
    if plan["engine"] == "sglang" and nodes > 1:
        lines.append(f'export DIST_INIT="${{HEAD_ADDR}}:{MASTER_PORT}"')
    script = "./serve.sh"
    if prefill:  # array tasks 0 .. prefill-1 run prefill instances, the rest decode instances
        lines.append(f'if [ "$SLURM_ARRAY_TASK_ID" -lt {prefill} ]; then SCRIPT=./serve-prefill.sh; '
                     'else SCRIPT=./serve-decode.sh; fi')
        script = '"$SCRIPT"'
    if per_task > 1:
        lines.append(f"srun --mpi=pmix {script}")
    else:
        lines.append(f"srun --ntasks-per-node=1 bash -c 'NODE_RANK=$SLURM_NODEID exec \"$0\"' {script}")
    return "\n".join(lines + [""])


def engine_env(plan: dict) -> list[tuple[str, str]]:
    """Environment variables the engine reads for the plan: the QuickReduce level (engines.QUICK_REDUCE_ENV, the
    engine's name for it, upper case as the engines' choices are) where the plan sets one."""
    level = plan.get("quick_reduce", "none")
    if level == "none":
        return []
    return [(E.QUICK_REDUCE_ENV[E.ENGINE_NAMES.index(plan["engine"])], level.upper())]


def _container(plan: dict, name: str, args: list, per_node: int, trt: bool) -> dict:
    c = {"name": name, "image": IMAGES[plan["engine"]], "command": k8s_words(args),
         "env": [{"name": "MODEL", "value": "REPLACE-with-checkpoint-path-or-hf-id"}]
                + [{"name": k, "value": v} for k, v in engine_env(plan)],
         "ports": [{"containerPort": PORT}],
         "resources": {"limits": {"nvidia.com/gpu": per_node}},
         "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}]}
    if trt:
        c["volumeMounts"].append({"name": "config", "mountPath": "/config"})
    return c


def _pod(plan: dict, name: str, args: list, per_node: int, trt: bool) -> dict:
    vols = [{"name": "shm", "emptyDir": {"medium": "Memory"}}]
    if trt:
        vols.append({"name": "config", "configMap": {"name": f"{name}-config"}})
    return {"metadata": {"labels": {"app": name}},
            "spec": {"containers": [_container(plan, name, args, per_node, trt)], "volumes": vols}}


def k8s_manifest(scenario, plan: dict, args: list, cfg: dict | None, nodes: int, per_node: int,
                 role: str | None = None) -> str:
    """k8s.yaml: a Deployment (replica on one node) or a LeaderWorkerSet (replica over nodes), a
    Service in front, and for TensorRT-LLM the YAML as a ConfigMap; one set per pool of a
    disaggregated plan."""
    name = safe_name(f"{plan['engine']}-{scenario.name}", 44) + (f"-{role}" if role else "")
    replicas = plan["prefill_replicas"] if role == "prefill" else plan["replicas"]
    trt = cfg is not None
    docs = []
    if trt:
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-config"},
                     "data": {TRT_YAML: yaml.safe_dump(cfg, sort_keys=False)}})
    if nodes == 1:
        docs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                     "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                              "template": _pod(plan, name, args, per_node, trt)}})
    else:
        leader = _pod(plan, name, args, per_node, trt)
        worker_args = [*args, "--headless"] if plan["engine"] == "vllm" else args
        worker = _pod(plan, name, worker_args, per_node, trt)
        docs.append({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                     "metadata": {"name": name},
                     "spec": {"replicas": replicas,
                              "leaderWorkerTemplate": {"size": nodes, "leaderTemplate": leader,
                                                       "workerTemplate": worker}}})
    docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                 "spec": {"selector": {"app": name}, "ports": [{"port": PORT, "targetPort": PORT}]}})
    return yaml.safe_dump_all(docs, sort_keys=False)


def plan_text(plan: dict) -> str:
    """The plan as `planner serve --plan` text."""
    keys = ("engine", "weights", "kv_cache", "tp", "pp", "ep", "replicas", "max_batch", "max_batched_tokens")
    text = ",".join(f"{k}={plan[k]}" for k in keys if k in plan)
    text += ",attn_dp=true" if plan.get("attn_dp") else ""
    text += ",moe_backend=trtllm" if plan.get("moe_backend") == "trtllm" else ""
    text += f",recv_interval={plan['recv_interval']}" if plan.get("recv_interval", 1) > 1 else ""
    text += f",quick_reduce={plan['quick_reduce']}" if plan.get("quick_reduce", "none") != "none" else ""
    text += ",graph_padding=true" if plan.get("graph_padding") else ""
    text += ",async_scheduling=true" if plan.get("async_scheduling") else ""
    text += ",separate_prefill=true" if plan.get("separate_prefill") else ""
    if plan.get("adp_balance"):
        text += f",adp_balance=true,adp_wait_iters={plan['adp_wait_iters']},adp_timeout_iters={plan['adp_timeout_iters']}"
    version = plan.get("engine_version")
    if version and plan.get("engine") in E.ENGINE_NAMES and math.isfinite(
            E.version_of_text(E.ENGINE_NAMES.index(plan["engine"]), version)):
        text += f",engine_version={version}"  # a release other than the pinned one the estimate ran
    return text + (f",prefill_replicas={plan['prefill_replicas']}" if plan.get("prefill_replicas") else "")


def serving_files(scenario, result: dict) -> dict[str, str]:
    """{file name: text} for one serving result (the JSON object of `planner serve`). Raises
    InputError, before anything is written, for a plan the pinned engine cannot express."""
    from planner.serve.launch_readme import readme

    plan = result["plan"]
    _, nodes, per_node = layout(scenario, plan)
    roles = ["prefill", "decode"] if plan.get("prefill_replicas") else [None]
    files, manifests, every_args = {}, [], []
    for role in roles:
        args, cfg = server_args(scenario, result, TRT_YAML, role)
        every_args += args
        files["serve.sh" if role is None else f"serve-{role}.sh"] = serve_script(scenario, plan, args, nodes, role)
        if not (cfg is not None and nodes > 1):  # multi-node TensorRT-LLM needs an MPI launcher (README)
            k8s_args = trtllm_args(f"/config/{TRT_YAML}") if cfg is not None else args
            manifests.append(k8s_manifest(scenario, plan, k8s_args, cfg, nodes, per_node, role))
    files["slurm.sbatch"] = slurm_script(scenario, plan, nodes, per_node)
    files["plan.json"] = jsonout.dumps(result, indent=2) + "\n"
    if manifests:
        files["k8s.yaml"] = (f"# {plan_text(plan)}\n# Set MODEL (env) to the checkpoint; images are the engines' "
                             "public repositories: check the tag.\n" + "---\n".join(manifests))
    if cfg is not None:
        files[TRT_YAML] = f"# trtllm-serve --extra_llm_api_options {TRT_YAML}\n" + yaml.safe_dump(cfg, sort_keys=False)
    files["README.txt"] = readme(scenario, result, every_args, cfg, nodes, per_node, sorted(files))
    return files
