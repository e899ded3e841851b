"""What every exporter needs from a plan: its fields, its text form, the node layout, and the
training schedule (steps, warmup, optimizer hyper-parameters) shared by the framework files.

The plan is the contract's plan object (`solve(...)["plans"][i]["plan"]`) or a resolved
`planner.spec.Plan`; both become the same plain dict here.
"""

from __future__ import annotations

import math

from planner.errors import InputError
from planner.spec.plan import FIELDS

# Optimizer and schedule defaults of the Llama 2 recipe (Touvron et al. 2023, arXiv:2307.09288,
# Sec. 2.2): AdamW beta1 0.9, beta2 0.95, eps 1e-5, weight decay 0.1, gradient clipping 1.0,
# 2000 warmup steps, cosine decay to 10% of the peak rate. The planner does not choose the
# learning rate: 3e-4 is the paper's value for its 7B/13B models; tune it for the model.
LR = 3e-4
MIN_LR_RATIO = 0.1
BETAS = (0.9, 0.95)
EPS = 1e-5
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
WARMUP_STEPS = 2000
# Short runs: warm up over at most 5% of the steps (assumption, so warmup never exceeds the run).
WARMUP_MAX_FRACTION = 0.05
MASTER_PORT = 29500


def plan_fields(plan) -> dict:
    """The plan's fields as a plain dict (every key of planner.spec.plan.FIELDS and global_batch).
    Accepts a resolved Plan or the contract's plan dict; dp, ga and sp must be known."""
    fields = plan.as_dict() if hasattr(plan, "as_dict") else dict(plan)
    missing = [k for k in FIELDS if fields.get(k) is None]
    if missing:
        raise InputError(f"the plan lacks {', '.join(missing)} (resolve it against the scenario first)",
                         key="plan")
    fields["global_batch"] = fields["dp"] * fields["mbs"] * fields["ga"]
    return fields


def plan_text(fields: dict) -> str:
    """The plan as `planner estimate --plan` text: every field, so parsing it gives the same plan."""
    def fmt(v):
        return str(v).lower() if isinstance(v, bool) else str(v)
    return ",".join(f"{k}={fmt(fields[k])}" for k in FIELDS)


def gpus(fields: dict) -> int:
    """World size of the plan: dp x tp x pp x cp (expert parallelism is carved from dp x cp)."""
    return fields["dp"] * fields["tp"] * fields["pp"] * fields["cp"]


def node_layout(scenario, fields: dict) -> tuple[int, int]:
    """(nodes, GPUs per node) that host the plan's world on the scenario's node type: as few nodes
    as hold it, every node running the same number of processes (launchers start one per GPU)."""
    world, per_node = gpus(fields), scenario.cluster.node.gpus_per_node
    nodes = math.ceil(world / per_node)
    if world % nodes:
        raise InputError(f"{world} GPUs cannot be spread evenly over {nodes} nodes of {per_node} GPUs",
                         key="plan")
    return nodes, world // nodes


def train_steps(scenario, fields: dict) -> int:
    """Optimizer steps to train the scenario's tokens: tokens / (global batch x sequence length)."""
    tokens_per_step = fields["global_batch"] * scenario.training.seq_len
    return max(1, math.ceil(scenario.training.tokens / tokens_per_step))


def warmup_steps(total_steps: int) -> int:
    """Warmup length: the recipe's 2000 steps, capped at 5% of a short run (at least one step)."""
    return max(1, min(WARMUP_STEPS, int(total_steps * WARMUP_MAX_FRACTION)))


def layers_per_stage(scenario, fields: dict) -> int:
    """Transformer layers on one (virtual) pipeline stage: layers / (pp x vpp); the search only
    offers even splits (planner/search/space.py)."""
    return scenario.model.layers // (fields["pp"] * fields["vpp"])
