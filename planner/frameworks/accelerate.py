"""Hugging Face Accelerate config (`accelerate launch --config_file accelerate.yaml`) for DeepSpeed
plans: it points at the exported ds_config.json.

Keys: shared/reference/ecosystem.md section 4.3 (accelerate src/accelerate/commands/config/
config_args.py). With `deepspeed_config_file` Accelerate refuses the keys that the DeepSpeed file
already sets (mixed_precision, gradient_accumulation_steps, gradient_clipping, zero_stage,
offload_*_device, zero3_save_16bit_model: DeepSpeedPlugin._deepspeed_config_checks), so they are
left out here.
"""

from __future__ import annotations

import yaml

from planner.frameworks.common import MASTER_PORT, plan_fields

# Keys Accelerate rejects next to deepspeed_config_file (see the module docstring).
CONFLICTING_KEYS = frozenset({"mixed_precision", "gradient_accumulation_steps", "gradient_clipping", "zero_stage",
                              "offload_optimizer_device", "offload_param_device", "offload_optimizer_nvme_path",
                              "offload_param_nvme_path", "zero3_save_16bit_model"})


def accelerate_config(plan, nodes: int, per_node: int, ds_config_file: str = "ds_config.json") -> dict:
    """Accelerate config for a DeepSpeed plan on nodes x per_node GPUs (num_processes is the total,
    §4.3). Multi-node runs use the `standard` launcher (torchrun on each node, started by the user or
    Slurm) with the rendezvous on the machine-rank-0 node, named node-0 as in the exported hostfile."""
    f = plan_fields(plan)
    ds = {"deepspeed_config_file": ds_config_file, "zero3_init_flag": f["zero"] == 3}
    if nodes > 1:
        ds["deepspeed_multinode_launcher"] = "standard"
    return {"compute_environment": "LOCAL_MACHINE", "distributed_type": "DEEPSPEED", "deepspeed_config": ds,
            "machine_rank": 0, "main_process_ip": None if nodes == 1 else "node-0",
            "main_process_port": MASTER_PORT, "num_machines": nodes, "num_processes": nodes * per_node,
            "rdzv_backend": "static", "same_network": True, "use_cpu": False}


def config_problems(cfg: dict) -> list[str]:
    """Accelerate's own refusals (§4.3): keys that clash with deepspeed_config_file, and the
    process count (the total over machines) against the machine count."""
    out = []
    ds = cfg.get("deepspeed_config", {})
    if "deepspeed_config_file" in ds:
        out += [f"'{k}' clashes with deepspeed_config_file" for k in sorted(CONFLICTING_KEYS & (set(cfg) | set(ds)))]
    if cfg["num_processes"] % cfg["num_machines"]:
        out.append(f"num_processes {cfg['num_processes']} is not a multiple of num_machines {cfg['num_machines']}")
    return out


def to_yaml(cfg: dict, comments: list[str] | None = None) -> str:
    """YAML text with leading comment lines."""
    from planner.frameworks.launch import comment_lines

    head = "".join(f"{c}\n" for c in comment_lines(comments or []))
    return head + yaml.safe_dump(cfg, sort_keys=False)
