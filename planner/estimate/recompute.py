"""Megatron-Core selective recompute by module (`--recompute-granularity selective
--recompute-modules ...`, Megatron-Core >= 0.12; scenario `runtime.recompute_modules`).

Megatron-Core transformer_config.py `recompute_modules`: "core_attn" (the default), "moe_act",
"layernorm", "mla_up_proj", "mlp", "moe", "shared_experts". "moe_act", "layernorm" and "mla_up_proj"
discard a module's output after its consumer ran and recompute it in backward; "core_attn", "mlp",
"moe" and "shared_experts" checkpoint the module (its input kept, everything inside recomputed).
Only Megatron plans with recompute = selective use them; other frameworks and modes ignore them.
"""

from __future__ import annotations

DEFAULT_MODULES = ("core_attn",)

# Forward matmuls each checkpointed module runs again (names of planner.arch.layer_matmuls).
MODULE_MATMULS = {
    "mlp": ("mlp_up", "mlp_down"),
    "moe": ("router", "expert_up", "expert_down", "shared_up", "shared_down"),
    "shared_experts": ("shared_up", "shared_down"),
    "mla_up_proj": ("q_up", "kv_up"),
}


def recompute_modules(ctx) -> frozenset:
    """The modules Megatron's selective recompute covers (scenario `runtime.recompute_modules`;
    default ["core_attn"], Megatron-Core TransformerConfig.__post_init__)."""
    mods = ctx.scenario.runtime.recompute_modules
    return frozenset(DEFAULT_MODULES if mods is None else mods)


def recomputed_matmul_names(ctx, moe_layer: bool) -> set:
    """Names of the forward matmuls of one layer that selective recompute runs again: the dense MLP
    ('mlp', dense layers only), the whole MoE block ('moe': router, routed and shared experts), the
    shared experts alone ('shared_experts') and MLA's up-projections ('mla_up_proj')."""
    mods = recompute_modules(ctx)
    names: set = set()
    for mod, mats in MODULE_MATMULS.items():
        if mod in mods and not (mod == "mlp" and moe_layer) and not (mod in ("moe", "shared_experts") and not moe_layer):
            names.update(mats)
    return names


def recomputed_matmul_share(ctx, moe_layer: bool, expert: bool) -> float:
    """Share of one layer's forward matmul FLOPs (routed experts, or everything else) that
    selective recompute runs again; recompute seconds = share x that part's forward seconds."""
    from planner.arch import layer_matmuls

    names = recomputed_matmul_names(ctx, moe_layer)
    mats = [x for x in layer_matmuls(ctx.model, moe_layer) if x.name.startswith("expert") == expert]
    total = sum(x.k * x.n * x.per_token for x in mats)
    redo = sum(x.k * x.n * x.per_token for x in mats if x.name in names)
    return redo / total if total else 0.0


def recomputed_flops_per_token(ctx) -> float:
    """Forward FLOPs per token that Megatron's selective recompute adds: core attention when
    'core_attn' is listed, plus the recomputed modules' matmuls of every layer (the MTP modules' layers
    included: they are transformer layers of the same config)."""
    from planner.arch import attention_flops_per_token, layer_matmuls

    st = ctx.stats
    total = attention_flops_per_token(ctx.model, ctx.seq_len) if "core_attn" in recompute_modules(ctx) else 0.0
    mtp_dense, mtp_moe = (0, st.mtp_layers) if st.mtp_moe else (st.mtp_layers, 0)
    for moe_layer, count in ((False, st.dense_layers + mtp_dense), (True, st.moe_layers + mtp_moe)):
        if count:
            names = recomputed_matmul_names(ctx, moe_layer)
            total += count * sum(2.0 * x.k * x.n * x.per_token for x in layer_matmuls(ctx.model, moe_layer)
                                 if x.name in names)
    return total


def full_recompute_share(ctx, t):
    """Share of a stage's layers that full recompute checkpoints and recomputes (per plan). Megatron's
    block method (scenario `runtime.recompute_num_layers` = N; Megatron-Core recompute.py, method
    'block') checkpoints layers 0..N-1 of each TransformerBlock, i.e. of each pipeline chunk of
    layers / (pp x vpp) layers: min(N, chunk) / chunk. Unset (the uniform method, one layer per
    checkpoint, and every other framework's full checkpointing): 1."""
    import numpy as np

    n = ctx.scenario.runtime.recompute_num_layers
    ones = np.ones(len(t["pp"]))
    if n is None:
        return ones
    chunk = ctx.model.layers / (t["pp"] * t["vpp"])
    from planner.estimate.table import MEG

    return np.where(t["framework"] == MEG, np.minimum(n, chunk) / chunk, ones)
