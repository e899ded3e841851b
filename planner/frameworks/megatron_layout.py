"""Megatron-Core's `--pipeline-model-parallel-layout` for uneven pipeline splits: writing the layout
string of the planner's split, reading one back, and Megatron's rules on it.

Source: Megatron-LM megatron/core/transformer/pipeline_parallel_layer_layout.py
(`PipelineParallelLayerLayout.parse_str_to_list`, `__init__`, `validate_layer_layout`), the argument
check in megatron/training/arguments.py `validate_args` ("Uneven virtual pipeline parallelism") and
docs/api-guide/pipeline_parallel_layout.md. The flag first shipped in Megatron-Core 0.13.0
(CHANGELOG.md: "Flexible Asymmetric Virtual Pipeline Parallelism with Custom Pipeline Layout
(--pipeline-model-parallel-layout)"); 0.13.0's parser already reads the string syntax below.

Syntax: the pp x vpp virtual stages, separated by '|', in chunk order (stage i = vpp_rank * pp +
pp_rank, so pipeline rank r runs stages r, r+pp, ...); in each, 'E' the embedding, 't' a transformer
(decoder) layer, 'm' a multi-token-prediction layer, 'L' the loss (final norm, output layer and loss).
'x*n' repeats one symbol, '(...)*n' a group; commas are cosmetic. Megatron requires exactly one E,
first, and one L, last, and as many t as --num-layers; with the layout, validate_args skips the
num_layers % pp check, and the layout excludes --num-layers-per-virtual-pipeline-stage,
--num-virtual-stages-per-pipeline-rank, --decoder-first/last-pipeline-num-layers and
--account-for-embedding/loss-in-pipeline-split (the vpp size is the stage count / pp).
"""

from __future__ import annotations

import re

from planner.frameworks import common

MIN_MCORE_VERSION = "0.13.0"
SYMBOLS = {"E": "embedding", "t": "decoder", "m": "mtp", "L": "loss"}
# Megatron's two unrolling patterns, applied in this order (parse_str_to_list).
_GROUP = re.compile(r"\(([^)]+)\)\*(\d+)")
_REPEAT = re.compile(r"(.)\*(\d+)")
# Input guard, not a physical figure: an unrolled layout longer than this many symbols is refused
# before it is built (a mistyped '*99999999999' would otherwise exhaust memory).
MAX_UNROLLED = 1_000_000
# Arguments Megatron refuses together with a layout (arguments.py and TransformerConfig.__post_init__).
CLASHES = ("num_layers_per_virtual_pipeline_stage", "num_virtual_stages_per_pipeline_rank",
           "decoder_first_pipeline_num_layers", "decoder_last_pipeline_num_layers",
           "account_for_embedding_in_pipeline_split", "account_for_loss_in_pipeline_split")


def _decoders(n: int) -> str:
    return "" if n == 0 else "t" if n == 1 else f"t*{n}"


def pipeline_layout(layers: int, pp: int, vpp: int = 1, mtp_layers: int = 0, mtp_units: float = 0.0) -> str:
    """The layout string of the planner's split (common.chunk_layer_counts, the MTP modules counted
    as `mtp_units` decoder layers on the last chunk): the embedding on the first virtual stage, the
    MTP layers and the loss on the last (where Megatron puts MTP without a layout: 'm' after every
    't', in the last stage of its rank), runs of equal stages written as '(...|)*n'.
    Example: 126 layers on pp 16 -> 'Et*8|(t*8|)*13t*7|t*7L'."""
    tokens = [_decoders(n) for n in common.chunk_layer_counts(layers, pp, vpp, mtp_units if mtp_layers else 0.0)]
    tokens[0] = "E" + tokens[0]
    tokens[-1] += "m" * mtp_layers + "L"
    out, i = [], 0
    while i < len(tokens):
        j = i
        while j + 1 < len(tokens) and tokens[j + 1] == tokens[i]:
            j += 1
        repeats = j - i + 1 - (j == len(tokens) - 1)  # the last stage has no '|' after it
        if repeats >= 2:
            out.append(f"({tokens[i]}|)*{repeats}")
        else:
            out.append(f"{tokens[i]}|" * repeats)
        if j == len(tokens) - 1:
            out.append(tokens[j])
        i = j + 1
    return "".join(out)


def parse_layout(text: str) -> list[str]:
    """The virtual stages of a layout string, each as its symbols ('Ettt', 'tt', 'ttL', ...), the way
    Megatron's parse_str_to_list unrolls it. Raises ValueError for a symbol Megatron does not know
    or a layout that unrolls past MAX_UNROLLED symbols."""
    s = text.replace(",", "")
    for pattern in (_GROUP, _REPEAT):
        matches = list(pattern.finditer(s))
        size = len(s) + sum(len(m.group(1)) * int(m.group(2)) - len(m.group(0)) for m in matches)
        if size > MAX_UNROLLED:
            raise ValueError(f"pipeline layout {text!r} unrolls to {size:,} symbols (more than "
                             f"{MAX_UNROLLED:,}; check the '*n' repeat counts)")
        s = pattern.sub(lambda m: m.group(1) * int(m.group(2)), s)
    stages = s.split("|")
    unknown = sorted(set("".join(stages)) - set(SYMBOLS))
    if unknown:
        raise ValueError(f"pipeline layout {text!r} has symbols {', '.join(unknown)} "
                         f"(Megatron knows {', '.join(SYMBOLS)})")
    return stages


def layout_counts(text: str) -> list[int]:
    """Transformer layers of each virtual stage of a layout string, in chunk order."""
    return [stage.count("t") for stage in parse_layout(text)]


def layout_problems(a: dict, layers: int, pp: int | None) -> list[str]:
    """Megatron's rules on parsed arguments that carry pipeline_model_parallel_layout: the stages are
    a multiple of pp (interleaving, more than one per rank, needs pp > 1; not checked for pp None,
    a layout given before any plan), one embedding first, one loss last, every one of the num_layers
    transformer layers exactly once, MTP layers as --mtp-num-layers says, and none of the
    pipeline-split arguments the layout replaces."""
    text = str(a["pipeline_model_parallel_layout"])
    out = [f"--{name.replace('_', '-')} cannot be combined with --pipeline-model-parallel-layout"
           for name in CLASHES if a.get(name) not in (None, False)]
    try:
        stages = parse_layout(text)
    except ValueError as exc:
        return out + [str(exc)]
    if pp is not None and len(stages) % pp:
        out.append(f"the layout's {len(stages)} virtual stages are not a multiple of pp ({pp})")
    elif pp == 1 and len(stages) > 1:
        out.append("a layout of several virtual stages (interleaving) needs pp > 1")
    flat = "".join(stages)
    if flat.count("E") != 1 or not flat.startswith("E"):
        out.append("the layout must start with the embedding (E) and hold it once")
    if flat.count("L") != 1 or not flat.endswith("L"):
        out.append("the layout must end with the loss (L) and hold it once")
    if flat.count("t") != layers:
        out.append(f"the layout places {flat.count('t')} transformer layers, num_layers is {layers}")
    if flat.count("m") != (a.get("mtp_num_layers") or 0):
        out.append(f"the layout places {flat.count('m')} MTP layers, --mtp-num-layers is "
                   f"{a.get('mtp_num_layers') or 0}")
    return out + _mtp_problems(stages, pp)


def _mtp_problems(stages: list[str], pp: int | None) -> list[str]:
    """Megatron's placement rules for 'm' (PipelineParallelLayerLayout.validate_layer_layout): no
    decoder layer after an MTP layer, all MTP layers in one virtual stage, and that stage the last
    virtual stage of its rank (checked when pp > 1 divides the stages; not for pp None)."""
    flat = "".join(stages)
    if "m" not in flat:
        return []
    out = []
    if "t" in flat[flat.index("m"):]:
        out.append("decoder layers (t) must all come before the MTP layers (m)")
    holding = [i for i, s in enumerate(stages) if "m" in s]
    if len(holding) > 1:
        out.append("all MTP layers (m) must be in one virtual stage")
    elif pp is not None and pp > 1 and len(stages) % pp == 0 and holding[0] < len(stages) - pp:
        out.append(f"the MTP layers (m) must be in the last virtual stage of their rank (stage {holding[0]} of "
                   f"{len(stages)} with pp {pp} is not)")
    return out


def readme_notes(scenario, fields: dict) -> list[str]:
    """README lines for a Megatron plan with an uneven split: the flag, its syntax and the version."""
    layout = pipeline_layout(scenario.model.layers, fields["pp"], fields["vpp"], scenario.model.mtp_layers,
                             common.own_split_units(scenario))
    return [f"  megatron_args.txt sets this split as --pipeline-model-parallel-layout {layout}",
            "  (virtual stages in chunk order separated by '|'; E embedding, t transformer layer, m MTP layer,",
            "  L loss;",
            "  (...)*n repeats). It needs Megatron-Core >= " + MIN_MCORE_VERSION + " (Megatron-LM with",
            "  megatron/core/transformer/pipeline_parallel_layer_layout.py); older releases reject the flag."]
