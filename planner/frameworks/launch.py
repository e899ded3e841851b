"""Launch files: a DeepSpeed hostfile, `deepspeed` and `torchrun` commands, a launch script and a
Slurm batch script, for N nodes x G GPUs per node.

Launcher flags are those of shared/reference/ecosystem.md section 4.4 (torch 2.13 `torchrun --help`,
DeepSpeed 0.19.8 `deepspeed --help`); hostfile lines are `host slots=G` (same section). Host names are
not known when planning: the hostfile lists `node-0 ... node-(N-1)` (one node: `localhost`) and the
Slurm script writes the real one from the allocation.
"""

from __future__ import annotations

import shlex

from planner.estimate.memory_terms_runtime import expandable_segments_on
from planner.frameworks.common import MASTER_PORT

SHEBANG = "#!/usr/bin/env bash"
# Slurm job names, host names: the characters every shell, scheduler and file system takes as they are.
SAFE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def comment_text(text: str) -> str:
    """`text` made safe for one comment line of a shell, TOML or YAML file: every character that is
    not printable (a newline would end the comment and start a command) is written as its Python
    escape (`\\n`, `\\x1b`, `\\u2028`)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def comment_lines(comment: list[str], mark: str = "#") -> list[str]:
    """Comment lines (`# text`, or a bare `#` for an empty line) with comment_text applied."""
    return [f"{mark} {comment_text(c)}" if c else mark for c in comment]


def safe_name(text: str, limit: int = 64) -> str:
    """`text` restricted to SAFE_NAME_CHARS (others become '-'), at most `limit` characters, never
    starting with '-' (it would read as an option)."""
    out = "".join(c if c in SAFE_NAME_CHARS else "-" for c in str(text))[:limit]
    return out if out and not out.startswith("-") else ("x" + out)[:limit]


def hostfile(nodes: int, per_node: int) -> str:
    """DeepSpeed hostfile (§4.4): one `host slots=G` line per node."""
    hosts = ["localhost"] if nodes == 1 else [f"node-{i}" for i in range(nodes)]
    return "".join(f"{h} slots={per_node}\n" for h in hosts)


def environment(fields: dict, runtime) -> dict[str, str]:
    """Environment variables the plan needs on every rank (`runtime`: the scenario's runtime section).
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True exactly where runtime.expandable_segments resolves
    to on for the plan's framework (memory_terms_runtime.expandable_segments_on, the rule the memory
    model's allocator slack reads), so the run holds what was estimated. Megatron-LM with tensor/context parallelism needs
    CUDA_DEVICE_MAX_CONNECTIONS=1 so communication kernels are issued in order with the GEMMs they
    overlap (Megatron-LM README; ecosystem.md 2.3 runs its parser with it), except under Megatron-FSDP,
    whose validate_args asserts CUDA_DEVICE_MAX_CONNECTIONS != 1 (it only warns about TP/CP). torchtitan with TP:
    TORCH_NCCL_AVOID_RECORD_STREAMS=1 (torchtitan troubleshooting notes). Megatron-LM with CUDA graphs
    (runtime.cuda_graph_impl) and expandable segments asserts NCCL_GRAPH_REGISTER=0 (arguments.py,
    "to avoid illegal memory access"); it is set with CUDA graphs either way, as the Megatron-Bridge
    CUDA-graph recipes do. runtime.nccl_min_ctas, where set, is exported as NCCL_MIN_CTAS, the setting whose
    SM share the data-parallel overlap was charged for (comm.nccl_sm_share)."""
    env = {}
    if expandable_segments_on(runtime.expandable_segments, fields["framework"]):
        env["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
    if fields["framework"] == "megatron" and runtime.cuda_graph_impl != "none":
        env["NCCL_GRAPH_REGISTER"] = "0"
    if fields["framework"] == "megatron" and (fields["tp"] > 1 or fields["cp"] > 1) and fields["zero"] != 3:
        env["CUDA_DEVICE_MAX_CONNECTIONS"] = "1"  # Megatron-FSDP (zero 3) asserts it is not 1
    if fields["framework"] == "torchtitan" and fields["tp"] > 1:
        env["TORCH_NCCL_AVOID_RECORD_STREAMS"] = "1"
    if runtime.nccl_min_ctas is not None:  # the CTA floor the SM-share term assumed (comm.nccl_sm_share)
        env["NCCL_MIN_CTAS"] = str(runtime.nccl_min_ctas)
    return env


def deepspeed_command(nodes: int, per_node: int, program: str) -> str:
    """`deepspeed` launcher (§4.4): starts per_node processes on each hostfile node (PDSH)."""
    return (f"deepspeed --hostfile hostfile --num_nodes {nodes} --num_gpus {per_node} "
            f"--master_port {MASTER_PORT} {program}")


def torchrun_command(nodes: int, per_node: int, program: str,
                     head: str = '"${MASTER_ADDR:?set MASTER_ADDR to the first node}"') -> str:
    """`torchrun` (§4.4): standalone on one node, else c10d rendezvous at the head node."""
    if nodes == 1:
        return f"torchrun --standalone --nnodes 1 --nproc-per-node {per_node} {program}"
    return (f"torchrun --nnodes {nodes} --nproc-per-node {per_node} --rdzv-backend c10d "
            f"--rdzv-endpoint {head}:{MASTER_PORT} --rdzv-id \"${{RDZV_ID:-planner}}\" {program}")


def _exports(env: dict[str, str]) -> list[str]:
    return [f"export {k}={shlex.quote(v)}" for k, v in env.items()]


def launch_script(comment: list[str], env: dict[str, str], command: str, setup: list[str] | None = None) -> str:
    """A bash launch script: runs from its own directory, sets the environment, then `command`."""
    lines = [SHEBANG, *comment_lines(comment), "set -euo pipefail",
             'cd "$(dirname "$0")"', *_exports(env), *(setup or []), f"exec {command}", ""]
    return "\n".join(lines)


def deepspeed_setup(env: dict[str, str]) -> list[str]:
    """The deepspeed launcher forwards to the other nodes only the variables listed in
    .deepspeed_env in the working directory (DeepSpeed 0.19.8 launcher/runner.py), one KEY=VALUE per
    line; its runner splits every line on '=', so with nothing to forward the file is emptied (printf
    without arguments would write a blank line, which it cannot read), not left from an earlier plan."""
    if not env:
        return [": > .deepspeed_env"]
    entries = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    return [f"printf '%s\\n' {entries} > .deepspeed_env"]


def slurm_script(job_name: str, nodes: int, per_node: int, env: dict[str, str], program: str,
                 comment: list[str], setup: list[str] | None = None, write_hostfile: bool = False) -> str:
    """Slurm batch script: one task per node, each running torchrun for the node's GPUs, with the
    rendezvous at the first node of the allocation; with write_hostfile it also writes the
    allocation's DeepSpeed hostfile. Submit it from the export directory (`sbatch slurm.sbatch`)."""
    head = '"${head}"'
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={safe_name(job_name)}",
        f"#SBATCH --nodes={nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={per_node}",
        "#SBATCH --exclusive",
        *comment_lines(comment),
        "set -euo pipefail",
        'cd "${SLURM_SUBMIT_DIR:-.}"',
        *_exports(env),
        'head="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        *([f'scontrol show hostnames "$SLURM_JOB_NODELIST" | sed "s/$/ slots={per_node}/" > hostfile']
          if write_hostfile else []),
        'export RDZV_ID="${SLURM_JOB_ID}"',
        *(setup or []),
        f"srun --nodes={nodes} --ntasks-per-node=1 {torchrun_command(nodes, per_node, program, head)}",
        "",
    ]
    return "\n".join(lines)
