"""The memory peak found from the candidate ranks (planner.estimate.memory_ranks) equals the one found by
evaluating every pipeline rank: every part, the total and the rank, on random plans of several models."""

import numpy as np
import pytest

from planner.estimate import memory, memory_ranks, table
from planner.estimate.evaluate import Context

from test_memory import MOE, scenario


def random_table(rng, n: int, layers: int) -> dict:
    """n random plans, framework rules not applied (the memory model takes any layout)."""
    pp = rng.choice([1, 2, 3, 4, 5, 7, 8, 12, 16, 30, 32], n)
    pp = np.minimum(pp, layers)
    vpp = np.where(rng.random(n) < 0.4, rng.choice([2, 3, 4], n), 1)
    vpp = np.where((pp > 1) & (pp * vpp <= layers), vpp, 1)
    tp = rng.choice([1, 2, 4, 8], n)
    t = {
        "framework": rng.integers(0, len(table.FRAMEWORKS), n),
        "precision": rng.choice([1, 2, 3], n),
        "offload": rng.choice([0, 0, 0, 1, 2], n),
        "offload_params": rng.choice([0, 0, 0, 1], n),
        "recompute": rng.integers(0, 3, n),
        "dp": rng.choice([1, 2, 4, 8, 64, 1024], n), "tp": tp, "pp": pp, "cp": rng.choice([1, 2], n),
        "ep": rng.choice([1, 2, 8], n), "vpp": vpp, "zero": rng.integers(0, 4, n),
        "mbs": rng.choice([1, 2, 4], n), "ga": rng.choice([1, 2, 3, 5, 8, 16, 64, 1000], n),
        "sp": rng.random(n) < 0.5,
    }
    t["etp"] = np.where(rng.random(n) < 0.5, 1, tp)
    return {k: np.asarray(v, dtype=bool if k == "sp" else np.int64) for k, v in t.items()}


CASES = [("deepseek-v3", 256, 4096, {}), ("llama-3.1-8b", 8, 4096, {}), (MOE, 1, 2048, {}),
         ("mixtral-8x7b", 8, 4096, {}), ("llama-3.1-8b", 8, 4096, {"runtime": {"activation_offload_layers": 3}})]


@pytest.mark.parametrize("model,nodes,seq,extra", CASES)
def test_candidate_ranks_give_the_every_rank_peak(model, nodes, seq, extra):
    ctx = Context(scenario(model=model, nodes=nodes, seq=seq, **extra))
    t = random_table(np.random.default_rng(7), 3000, ctx.model.layers)
    fast, full = memory.memory(ctx, t), memory.memory(Context(ctx.scenario, all_ranks=True), t)
    assert set(fast) == set(full)
    for k in full:
        assert np.array_equal(fast[k], full[k]), k
    assert (full["stage"] > 0).any() and (full["stage"] < t["pp"] - 1).any()  # middle peaks occur


def test_level_step_temporary_is_scanned_rank_by_rank():
    """DeepSpeed ZeRO-1 with a step temporary above the last ranks' transients only: the class of
    middle ranks rises to a level, and the peak is the lowest rank of that level (found by the
    rank-by-rank scan of memory_ranks.level_beyond's plans), not the class's highest rank."""
    ctx = Context(scenario(model="deepseek-v3", nodes=256, seq=4096))
    rng = np.random.default_rng(11)
    t = random_table(rng, 20000, ctx.model.layers)
    ranks, ends = memory_ranks.candidate_ranks(ctx, t)
    per_layer = memory.layer_activation_bytes(ctx, t)
    totals = np.full(ranks.shape, np.nan)
    for j in range(ranks.shape[1]):
        rows = np.nonzero(ranks[:, j] >= 0)[0]
        totals[rows, j] = memory.stage_memory(ctx, memory._rows(t, rows), ranks[rows, j],
                                              memory._rows(per_layer, rows))["total"]
    level = memory_ranks.level_beyond(totals, ends)
    assert level.any()
    sub = memory._rows(t, np.nonzero(level)[0])
    fast = memory.memory(ctx, sub)
    full = memory.memory(Context(ctx.scenario, all_ranks=True), sub)
    assert np.array_equal(fast["stage"], full["stage"]) and np.array_equal(fast["total"], full["total"])


def test_rank_classes_group_equal_stages():
    """DeepSeek-V3 (61 layers, the first 3 dense) on 16 ranks: 4 layers on ranks 0-12, 3 on 13-15;
    rank 0 holds the dense layers and the embedding, rank 15 the output layer."""
    ctx = Context(scenario(model="deepseek-v3", nodes=256))
    assert memory_ranks.rank_classes(ctx, 16, 1) == [(0, 0), (1, 12), (13, 14), (15, 15)]
    assert memory_ranks.rank_classes(ctx, 1, 1) == [(0, 0)]


@pytest.mark.parametrize("extra", [{}, {"runtime": {"activation_offload_layers": 2}}])
def test_verdict_only_memory_gives_the_same_verdict_figures(extra):
    """memory(verdict_only=True) keeps, while scanning the ranks, only what the verdict reads: the
    same total, peak rank, host RAM and NVMe per node as the full evaluation (offloaded activations
    included)."""
    ctx = Context(scenario(model="deepseek-v3", nodes=256, **extra))
    t = random_table(np.random.default_rng(3), 3000, ctx.model.layers)
    slim, full = memory.memory(ctx, t, verdict_only=True), memory.memory(ctx, t)
    for k in ("total", "stage", "host_per_node", "nvme_per_node"):
        assert np.array_equal(slim[k], full[k]), k
    assert (full["host_per_node"] > full["host.process_base"]).any()  # offloaded states counted


def test_stage_layers_table_equals_the_direct_formula():
    """Long plan tables read stage_layers from a (pp, vpp, rank) table: the same numbers as the
    formula row by row, for every stage kind."""
    from planner.estimate import memory_terms_stage as S

    ctx = Context(scenario(model="deepseek-v3", nodes=256))
    t = random_table(np.random.default_rng(5), 3 * S.LOOKUP_ROWS, ctx.model.layers)
    ranks = np.random.default_rng(6).integers(0, 40, len(t["pp"]))
    for stage in ("first", "last", ranks):
        fast = S.stage_layers(ctx, t, stage)
        slow = S._stage_layers_rows(ctx, t, S.pipeline_rank(t, stage))
        assert all(np.array_equal(a, b) for a, b in zip(fast, slow))


@pytest.mark.parametrize("model,nodes,seq,extra", CASES[:3])
@pytest.mark.parametrize("pairs", [1 << 16, 64])
def test_every_rank_stage_equals_the_rank_by_rank_scan(model, nodes, seq, extra, pairs, monkeypatch):
    """memory.every_rank_stage (every (plan, rank) pair in one evaluation, in halves past FLAT_PAIRS
    pairs) gives the rank-by-rank scan's total, rank and parts, ties to the lower rank."""
    monkeypatch.setattr(memory, "FLAT_PAIRS", pairs)
    ctx = Context(scenario(model=model, nodes=nodes, seq=seq, **extra))
    t = random_table(np.random.default_rng(5), 600, ctx.model.layers)
    per_layer = memory.layer_activation_bytes(ctx, t)
    keep = ("total", "other.fragmentation", "local_params")
    for k in (keep, None):
        full = memory.most_loaded_stage(ctx, t, per_layer, all_ranks=True, keep=k)
        flat = memory.every_rank_stage(ctx, t, per_layer, keep=k)
        assert set(flat) >= set(k or ()) | {"total", "stage"}
        for key in k or full:
            assert np.array_equal(np.broadcast_to(flat[key], (600,)), np.broadcast_to(full[key], (600,))), key
    assert (full["stage"] > 0).any() and (full["stage"] < t["pp"] - 1).any()
