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
    if fields.get("etp") is None and fields.get("tp") is not None:
        fields["etp"] = fields["tp"]  # a plan object without etp: experts split like tp (Megatron's default)
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


def chunk_layer_counts(layers: int, pp: int, vpp: int = 1, last_units: float = 0.0) -> list[int]:
    """Transformer layers of each of the pp x vpp model chunks, in model order: chunk c holds
    base + (1 if c < extra else 0) layers, base = layers // (pp*vpp), extra = layers % (pp*vpp) (the
    first chunks take the remainder). This is the split the memory model evaluates
    (planner/estimate/memory_terms_stage.py `_chunk_layers`, `stage_layers`) and every exporter writes.

    `last_units` > 0 (the MTP modules on the last chunk, in decoder-layer equivalents:
    pipeline_split.mtp_layer_units): the last chunk keeps k decoder layers, the others split the
    remaining layers - k as above, with k in 0..base minimising the heaviest chunk
    max(k + last_units, ceil((layers - k) / (chunks - 1))), ties to the largest k."""
    if pp < 1 or vpp < 1:
        raise ValueError(f"pp ({pp}) and vpp ({vpp}) must be at least 1")
    chunks = pp * vpp
    base, extra = divmod(layers, chunks)
    if last_units <= 0 or chunks == 1:
        return [base + (1 if c < extra else 0) for c in range(chunks)]
    k = min(range(base, -1, -1), key=lambda n: max(n + last_units, -(-(layers - n) // (chunks - 1))))
    return chunk_layer_counts(layers - k, chunks - 1) + [k]


def own_split_units(scenario) -> float:
    """The decoder-layer equivalents the planner's own split sets against the last chunk: those of
    the model's MTP modules (pipeline_split.mtp_layer_units) where the search may split unevenly
    (search.uneven_pipeline), else 0 (the plain split)."""
    from planner.estimate.pipeline_split import mtp_layer_units

    if not scenario.model.mtp_layers or not scenario.search.uneven_pipeline:
        return 0.0
    return mtp_layer_units(scenario.model)


def own_chunk_counts(scenario, pp: int, vpp: int = 1) -> list[int]:
    """chunk_layer_counts of the planner's own split for the scenario's model (own_split_units)."""
    return chunk_layer_counts(scenario.model.layers, pp, vpp, own_split_units(scenario))


def rank_chunks(rank: int, pp: int, vpp: int) -> list[int]:
    """Chunks of pipeline rank `rank`: rank, rank+pp, ..., rank+(vpp-1)*pp (Megatron's interleaved
    assignment, Narayanan et al. 2021 Sec. 2.2.2; torchtitan's "loop" stage order)."""
    return [rank + v * pp for v in range(vpp)]


def rank_layer_counts(layers: int, pp: int, vpp: int = 1) -> list[int]:
    """Transformer layers held by each pipeline rank (the sum of its chunks), length pp."""
    counts = chunk_layer_counts(layers, pp, vpp)
    return [sum(counts[c] for c in rank_chunks(r, pp, vpp)) for r in range(pp)]


def uneven_split(scenario, fields: dict) -> bool:
    """True when the planner's own split (own_chunk_counts) does not give pp x vpp equal chunks."""
    if scenario.model.mtp_layers:
        return len(set(own_chunk_counts(scenario, fields["pp"], fields["vpp"]))) > 1
    return scenario.model.layers % (fields["pp"] * fields["vpp"]) != 0


def layers_per_stage(scenario, fields: dict) -> int:
    """Transformer layers on every (virtual) pipeline stage of an even split: layers / (pp x vpp).
    An uneven split has no single count: this raises, and callers use chunk_layer_counts."""
    if uneven_split(scenario, fields):
        raise InputError(f"{scenario.model.layers} layers do not split evenly over pp x vpp = "
                         f"{fields['pp']} x {fields['vpp']} chunks (use chunk_layer_counts)", key="plan")
    return scenario.model.layers // (fields["pp"] * fields["vpp"])


def _runs(values: list[int]) -> list[tuple[int, int, int]]:
    """(first index, last index, value) of each run of equal consecutive values."""
    out: list[tuple[int, int, int]] = []
    for i, v in enumerate(values):
        if out and out[-1][2] == v:
            out[-1] = (out[-1][0], i, v)
        else:
            out.append((i, i, v))
    return out


def _span(noun: str, first: int, last: int) -> str:
    """'stage 3' or 'stages 0-13'."""
    return f"{noun} {first}" if first == last else f"{noun}s {first}-{last}"


def split_lines(layers: int, pp: int, vpp: int = 1, counts: list[int] | None = None) -> list[str]:
    """README lines stating an uneven split: the layers of every chunk (with the model layers it
    holds) and, with interleaving, of every pipeline rank. `counts`: the chunks' layers when not
    chunk_layer_counts' plain split (the MTP modules set against the last chunk)."""
    chunks, extra = pp * vpp, layers % (pp * vpp)
    unit = "stage" if vpp == 1 else "chunk"
    lines = [f"Pipeline split (uneven): {layers} layers over {chunks} {unit}s (pp {pp} x vpp {vpp}); "
             + (f"the first {extra} {unit}s hold one layer more" if counts is None else
                f"the last {unit} holds the MTP module(s) and fewer layers")]
    counts = chunk_layer_counts(layers, pp, vpp) if counts is None else counts
    start = 0
    for first, last, n in _runs(counts):
        size = n * (last - first + 1)
        held = f"layers {start}-{start + size - 1}" if size else "no layers"
        lines.append(f"  {_span(unit, first, last):<14} {n} layers each ({held})")
        start += size
    if vpp > 1:
        terms = ["r"] + [f"r+{v * pp}" for v in range(1, vpp)]
        terms = terms if vpp <= 3 else [terms[0], terms[1], "...", terms[-1]]
        lines.append(f"  pipeline rank r runs chunks {', '.join(terms)}:")
        per_rank = [[counts[c] for c in rank_chunks(r, pp, vpp)] for r in range(pp)]
        for first, last, _ in _runs([tuple(p) for p in per_rank]):
            parts = per_rank[first]
            lines.append(f"  {_span('rank', first, last):<14} {' + '.join(map(str, parts))} = {sum(parts)} layers")
    return lines
