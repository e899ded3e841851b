"""Megatron's pipeline splits other than the planner's own: the embedding and the loss counted as
layers, or a custom layout string. Each gives the decoder layers of every virtual stage (chunk).

runtime.account_for_embedding_in_pipeline_split / account_for_loss_in_pipeline_split (Megatron
--account-for-embedding-in-pipeline-split / --account-for-loss-in-pipeline-split): the layer count
becomes N = layers + E + L (E, L = 1 when set), N must be divisible by pp and N/pp by vpp; every
chunk then holds N/(pp*vpp) units, the first chunk (rank 0, vp stage 0) one decoder layer fewer
for the embedding and the last (rank pp-1, vp stage vpp-1) one fewer for the loss, never below 0
(Megatron-LM megatron/core/transformer/transformer_block.py `get_num_layers_to_build`,
TransformerConfig.__post_init__ checks in transformer_config.py; arguments.py validate_args).
Example: Llama-3.1-405B's 126 layers with both flags on pp 16 x vpp 8: N = 128, one unit per chunk,
so rank 0's first chunk holds only the embedding and rank 15's last only the loss.

runtime.pipeline_layout (Megatron --pipeline-model-parallel-layout): the chunks as written
(planner/frameworks/megatron_layout.py parses and checks it); the plan's pp x vpp must be its
number of stages (Megatron sets vpp = stages / pp).

The embedding stays on the first rank and the loss on the last in every case (Megatron requires E
first and L last in a layout), so only the decoder layers per rank differ from the planner's split.

Multi-token-prediction modules (model.mtp_layers, Megatron --mtp-num-layers) sit on the last virtual
stage of the last rank unless a layout places them ('m'): Megatron-Core multi_token_prediction.py
`mtp_on_this_rank` / `get_mtp_num_layers_to_build` (rank_mtp).
"""

from __future__ import annotations

import functools

import numpy as np


def split_key(runtime) -> tuple | None:
    """What defines the split, hashable: None (the planner's own), ('layout', text) or
    ('account', embedding, loss); ('own', units) is the planner's own with MTP (own_mtp_key)."""
    if runtime.pipeline_layout is not None:
        return ("layout", runtime.pipeline_layout)
    e, lo = runtime.account_for_embedding_in_pipeline_split, runtime.account_for_loss_in_pipeline_split
    return ("account", bool(e), bool(lo)) if (e or lo) else None


def mtp_layer_units(m) -> float:
    """What the MTP modules add to the rank that holds them, in decoder layers of their kind: their
    weight-matmul FLOPs per token (planner.arch.mtp_matmul_flops_per_token: the module's transformer
    layer, eh_proj and one more pass through the output head; Megatron-LM training.py
    num_floating_point_operations counts the same) over one such layer's (planner.arch.layer_matmuls).
    DeepSeek-V3 (one MoE module): about 2.5 layers, the recipes' 'tmL' last stage against 't*4'."""
    from planner.arch import layer_matmuls, mtp_matmul_flops_per_token

    if not m.mtp_layers:
        return 0.0
    layer = sum(2.0 * x.k * x.n * x.per_token for x in layer_matmuls(m, m.mtp_moe))
    return round(mtp_matmul_flops_per_token(m) / layer, 6)


def own_mtp_key(scenario) -> tuple | None:
    """The planner's own split of a model with MTP modules as a split key ('own', units): the
    modules counted as mtp_layer_units decoder layers on the last chunk (common.chunk_layer_counts);
    None without MTP, with a Megatron split set, or where the search splits only evenly."""
    from planner.frameworks.common import own_split_units

    if split_key(scenario.runtime) is not None:
        return None
    units = own_split_units(scenario)
    return ("own", units) if units else None


def layout_stages(text: str) -> list[str]:
    from planner.frameworks.megatron_layout import parse_layout

    return parse_layout(text)


def split_problems(key, layers: int, pp: int, vpp: int, mtp_layers: int | None = None) -> list[str]:
    """Megatron's rules for the split `key` (split_key) on pp x vpp; [] when it builds. `mtp_layers`
    None: the layout's MTP count is not checked here (Scenario validation checks it against the model)."""
    if key is None or key[0] == "own":
        return []
    if key[0] == "layout":
        from planner.frameworks.megatron_layout import layout_problems

        if mtp_layers is None:
            try:
                mtp_layers = "".join(layout_stages(key[1])).count("m")
            except ValueError:
                mtp_layers = 0
        out = [f"runtime.pipeline_layout: {p}" for p in
               layout_problems({"pipeline_model_parallel_layout": key[1], "mtp_num_layers": mtp_layers}, layers, pp)]
        try:
            n = len(layout_stages(key[1]))
        except ValueError:
            return out
        if not out and n != pp * vpp:
            out.append(f"runtime.pipeline_layout has {n} virtual stages, the plan pp*vpp = {pp}*{vpp} = {pp * vpp} "
                       f"(Megatron sets vpp = stages / pp = {n // pp})")
        return out
    _, e, lo = key
    names = " and ".join(n for n, on in (("embedding", e), ("loss", lo)) if on)
    n = layers + e + lo
    if n % pp:
        return [f"runtime.account_for_{'embedding' if e else 'loss'}_in_pipeline_split: layers + {names} = {n} "
                f"not divisible by pp ({pp}) (Megatron transformer_block.get_num_layers_to_build)"]
    if (n // pp) % vpp:
        return [f"runtime.account_for_{'embedding' if e else 'loss'}_in_pipeline_split: {n // pp} layers per "
                f"pipeline rank (with the {names}) not divisible by vpp ({vpp})"]
    if n // (pp * vpp) < 1:
        return [f"runtime.account_for_*_in_pipeline_split: {n} units on {pp * vpp} virtual stages"]
    return []


@functools.lru_cache(maxsize=256)
def chunk_decoders(key, layers: int, pp: int, vpp: int) -> tuple[int, ...] | None:
    """Decoder layers of each of the pp*vpp chunks in chunk order (chunk = vp stage * pp + rank),
    or None where Megatron rejects the split (split_problems)."""
    if split_problems(key, layers, pp, vpp):
        return None
    if key[0] == "layout":
        return tuple(s.count("t") for s in layout_stages(key[1]))
    if key[0] == "own":
        from planner.frameworks.common import chunk_layer_counts

        return tuple(chunk_layer_counts(layers, pp, vpp, key[1]))
    _, e, lo = key
    unit = (layers + e + lo) // (pp * vpp)
    counts = [unit] * (pp * vpp)
    counts[0] -= e
    counts[-1] -= lo
    return tuple(counts) if min(counts) >= 0 else None


def valid_pairs_mask(key, layers: int, pp, vpp) -> np.ndarray:
    """Per plan: does Megatron build the split on its (pp, vpp)? (all True without a custom split;
    one check per distinct pair)."""
    pp, vpp = np.asarray(pp, dtype=np.int64), np.asarray(vpp, dtype=np.int64)
    if key is None or pp.size == 0:
        return np.ones(pp.shape, dtype=bool)
    code = pp * (int(vpp.max()) + 1) + vpp
    pairs, first, inverse = np.unique(code.ravel(), return_index=True, return_inverse=True)
    good = np.array([chunk_decoders(key, layers, int(pp.ravel()[i]), int(vpp.ravel()[i])) is not None
                     for i in first])
    return good[inverse].reshape(pp.shape)


def rank_mtp(key, mtp_layers: int, pp: int, vpp: int) -> np.ndarray:
    """MTP modules on each rank 0..pp-1: those a layout places ('m' in chunk c sits on rank c % pp),
    otherwise all of them on the last rank (Megatron-Core mtp_on_this_rank without a layout: the last
    pipeline stage)."""
    out = np.zeros(pp)
    if key is not None and key[0] == "layout":
        for c, stage in enumerate(layout_stages(key[1])):
            out[c % pp] += stage.count("m")
    else:
        out[pp - 1] = mtp_layers
    return out


def rank_layers(key, layers: int, dense_layers: int, pp: int, vpp: int,
                layer_step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(decoder layers, dense layers) of each rank 0..pp-1: rank r holds chunks r, r+pp, ...
    (Megatron's layout: stage i = vp stage * pp + rank); the model's first `dense_layers` decoder layers are
    dense (DeepSeek `first_k_dense_replace`) and, after them, all but every `layer_step`-th (Llama 4
    Maverick: every other layer; spec.model.dense_before). NaN where the split does not build."""
    from planner.spec.model import dense_before

    counts = chunk_decoders(key, layers, pp, vpp)
    if counts is None:
        return np.full(pp, np.nan), np.full(pp, np.nan)
    c = np.array(counts, dtype=float)
    ends = np.cumsum(np.array(counts, dtype=np.int64))
    dense = (dense_before(ends, dense_layers, layer_step)
             - dense_before(ends - np.array(counts, dtype=np.int64), dense_layers, layer_step)).astype(float)
    return c.reshape(vpp, pp).sum(axis=0), dense.reshape(vpp, pp).sum(axis=0)
