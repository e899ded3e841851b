"""Sliding-window attention in training: the keys a query attends (model FLOPs), the score tiles a
flash-attention kernel visits (time), the context-parallel exchange Transformer Engine allows, exports."""

import numpy as np
import pytest

from planner.arch import attention_flops_per_token, window_context
from planner.catalog import model as catalog_model
from planner.estimate import compute, compute_attention
from planner.estimate.evaluate import Context
from planner.errors import InputError
from planner.frameworks import megatron
from planner.frameworks.rules import MEG_SWA_CP_P2P, framework_problems
from planner.spec import parse_plan

from test_memory import raw_table, scenario


@pytest.mark.parametrize("s,w", [(4096, 128), (8192, 128), (1000, 37), (300, 512)])
def test_window_context_is_the_mean_of_min_position_window(s, w):
    """Query i (0-based) attends min(i + 1, w) keys; with w >= s the full causal convention s / 2."""
    brute = np.minimum(np.arange(1, s + 1), w).mean() if w < s else s / 2
    assert window_context(s, w) == pytest.approx(brute)


@pytest.mark.parametrize("s,w", [(4096, 128), (4096, 300), (1000, 37), (777, 4096)])
def test_attention_tiles_count_the_tiles_a_masked_cell_falls_in(s, w):
    """Every (query tile, key tile) pair holding at least one unmasked score, counted cell by cell."""
    q, k = np.arange(s)[:, None], np.arange(s)[None, :]
    visible = (k <= q) & (k > q - w)
    bq, bk = compute_attention.ATTN_TILE_Q, compute_attention.ATTN_TILE_K
    pairs = {(i // bq, j // bk) for i, j in zip(*np.nonzero(visible))}
    assert compute_attention.attention_tiles(s, w) == len(pairs)
    full = {(i // bq, j // bk) for i, j in zip(*np.nonzero(k <= q))}
    assert compute_attention.attention_tiles(s) == len(full)


def test_gpt_oss_attention_time_and_model_flops_shrink_with_the_window():
    """gpt-oss-120b at s = 4,096: 18 of 36 layers visit 63 of 528 tiles, so the kernel does
    (18 + 18 x 63/528) / 36 of the full-causal work; model FLOPs count 126.0 keys instead of 2,048
    on those layers."""
    sc = scenario(model="gpt-oss-120b", node="dgx-h100", nodes=8)
    full = scenario(model=catalog_model("gpt-oss-120b").model_dump() | {"sliding_window": None,
                                                                         "sliding_window_layers": None},
                    node="dgx-h100", nodes=8)
    t = raw_table(ep=8, dp=8)
    ratio = (18 + 18 * 63 / 528) / 36
    a, b = compute.layer_costs(Context(sc), t), compute.layer_costs(Context(full), t)
    assert a["attn_fwd"][0] == pytest.approx(ratio * b["attn_fwd"][0])
    assert a["attn_bwd"][0] == pytest.approx(ratio * b["attn_bwd"][0])
    m = sc.model
    per_key = 2.0 * 64 * 128
    assert attention_flops_per_token(m, 4096) == pytest.approx(per_key * (18 * 2048 + 18 * (128 - 128 * 127 / 8192)))
    assert Context(sc).model_flops_per_token < Context(full).model_flops_per_token


def test_window_as_long_as_the_sequence_changes_nothing():
    """Mistral-7B v0.1's 4,096-token window at s = 4,096 masks nothing beyond the causal mask."""
    sc = scenario(model="mistral-7b", nodes=1)
    assert compute_attention.window_work_ratio(sc.model, 4096) == 1.0
    assert compute_attention.window_work_ratio(sc.model, 16384) < 0.5


def test_megatron_cp_with_a_window_runs_all_gather_and_refuses_p2p():
    """Transformer Engine runs sliding-window attention under CP only with a2a or all_gather."""
    text = "framework=megatron,precision=bf16,tp=1,ep=8,cp=2,dp=4,zero=1,mbs=1,recompute=selective"
    sc = scenario(model="gpt-oss-120b", node="dgx-h100", nodes=1)
    plan = parse_plan(text).resolved(sc)
    assert "--cp-comm-type all_gather" in megatron.megatron_args(sc, plan)
    assert MEG_SWA_CP_P2P not in framework_problems(plan, sc)
    p2p = scenario(model="gpt-oss-120b", node="dgx-h100", nodes=1, runtime={"cp_comm": "p2p"})
    with pytest.raises(InputError, match="Transformer Engine refuses p2p"):
        parse_plan(text).resolved(p2p)
    llama = scenario(model="llama-3.1-8b", node="dgx-h100", nodes=1, runtime={"cp_comm": "p2p"})
    dense = "framework=megatron,precision=bf16,tp=1,cp=2,dp=4,zero=1,mbs=1,recompute=selective"
    assert MEG_SWA_CP_P2P not in framework_problems(parse_plan(dense).resolved(llama), llama)


def test_qwen2_window_from_max_window_layers_and_a_five_to_one_interleave():
    """Qwen2Config: with use_sliding_window, layers i >= max_window_layers attend within the window;
    a 5:1 interleave (full every sixth layer) exports as Megatron's integer skip frequency 6."""
    import json
    from pathlib import Path

    from planner.spec.hf import model_from_hf
    from planner.spec.model import ModelSpec, window_pattern

    cfg = json.loads((Path(__file__).parent / "fixtures/hf/qwen2.5-32b.json").read_text())
    cfg.update(use_sliding_window=True, sliding_window=4096, max_window_layers=60)
    m = ModelSpec.model_validate(model_from_hf(cfg, name="q"))
    assert window_pattern(m) == [i >= 60 for i in range(64)] and m.sliding_window_layers == 4
    assert "--window-attn-skip-freq [" + ",".join(["0"] * 60 + ["1"] * 4) + "]" in megatron.architecture_args(m)
    off = ModelSpec.model_validate(model_from_hf({**cfg, "use_sliding_window": False}, name="q"))
    assert off.sliding_window is None
    # without max_window_layers transformers' default applies: windowed from layer 28 on
    cfg.pop("max_window_layers")
    dflt = ModelSpec.model_validate(model_from_hf(cfg, name="q"))
    assert window_pattern(dflt) == [i >= 28 for i in range(64)] and dflt.sliding_window_layers == 36
    five = m.model_copy(update={"sliding_window_pattern": [(i + 1) % 6 != 0 for i in range(64)],
                                "sliding_window_layers": 64 - 10})
    assert "--window-attn-skip-freq 6" in megatron.architecture_args(five)


def test_a_pattern_that_disagrees_with_its_count_is_bad_input():
    from planner.spec.model import ModelSpec

    base = catalog_model("gpt-oss-20b").model_dump()
    with pytest.raises(ValueError, match="not the pattern's count"):
        ModelSpec.model_validate(base | {"sliding_window_pattern": [True] * 24, "sliding_window_layers": 12})
    with pytest.raises(ValueError, match="one per layer"):
        ModelSpec.model_validate(base | {"sliding_window_pattern": [True] * 3, "sliding_window_layers": None})


def test_each_pipeline_stage_pays_for_its_own_windowed_layers():
    """gpt-oss-120b on pp 4: rank 0 holds layers 0-8 (5 windowed, 4 full), the last rank 27-35 (4
    windowed, 5 full); with vpp 3 rank 0 holds 0-2, 12-14, 24-26 (6 windowed of 9)."""
    from planner.estimate.evaluate import rank_stage_time
    from planner.estimate import comm
    from planner.estimate.memory_terms_stage import stage_window_layers

    sc = scenario(model="gpt-oss-120b", node="dgx-h100", nodes=8)
    ctx = Context(sc)
    t = raw_table(pp=4, ep=8, dp=2)
    assert (stage_window_layers(ctx, t, "first")[0], stage_window_layers(ctx, t, "last")[0]) == (5, 4)
    assert stage_window_layers(ctx, raw_table(pp=4, vpp=3, ep=8, dp=2), "first")[0] == 6
    unit = compute.layer_costs(ctx, t)
    full_f, sw_f = unit["attn_full_fwd"], unit["attn_window_fwd"]
    assert sw_f[0] == pytest.approx(63 / 528 * full_f[0])
    c = rank_stage_time(ctx, t, unit, comm.layer_comm(ctx, t, unit["attn_fwd"], unit["attn_bwd"]), "first", "first")[1]
    assert c["attention_fwd"][0] == pytest.approx(4 * full_f[0] + 5 * sw_f[0])


def test_a_window_whose_pattern_marks_no_layer_is_bad_input():
    """sliding_window with a sliding_window_pattern of no windowed layer: the count would default to every
    layer (arch.window_layers) while the pattern and the exports say none; refused, not estimated both ways."""
    from planner.spec.model import ModelSpec

    base = catalog_model("gpt-oss-20b").model_dump()
    with pytest.raises(ValueError, match="marks no windowed layer"):
        ModelSpec.model_validate(base | {"sliding_window_pattern": [False] * 24, "sliding_window_layers": None})
    off = ModelSpec.model_validate(base | {"sliding_window": None, "sliding_window_layers": None,
                                           "sliding_window_pattern": [False] * 24})
    assert off.sliding_window is None


def test_mtp_layers_attend_in_full_on_the_stage_as_in_the_model_flops():
    """A windowed model with MTP modules: attention_flops_per_token counts the MTP layers as full
    attention, so the last stage (which holds them) counts only its decoder layers as windowed."""
    from planner.estimate.memory_terms_stage import stage_window_layers

    spec = catalog_model("mistral-7b").model_dump() | {"mtp_layers": 1}
    sc = scenario(model=spec, node="dgx-h100", nodes=1, seq=8192)
    ctx = Context(sc)
    m = ctx.model
    assert stage_window_layers(ctx, raw_table(pp=1, dp=8), "last")[0] == m.layers
    # every decoder layer is windowed and the MTP layer is not: the two stages' windowed layers add up to
    # the decoder layers (the planner's own split gives the MTP rank fewer of them)
    last = stage_window_layers(ctx, raw_table(pp=2, dp=4), "last")[0]
    first = stage_window_layers(ctx, raw_table(pp=2, dp=4), "first")[0]
    assert last + first == m.layers and last <= first
    per_key = 2.0 * m.heads * 2 * m.hidden / m.heads
    assert attention_flops_per_token(m, 8192) == pytest.approx(
        per_key * (m.layers * window_context(8192, m.sliding_window) + 1 * 8192 / 2))


def test_qwen_window_on_the_last_layers_exports_and_reads_back():
    """Qwen2/Qwen3 config.json windows the layers i >= max_window_layers (use_sliding_window): a model
    windowed from layer 60 on exports those keys and reads back the same; another pattern is refused."""
    import json
    from pathlib import Path

    from planner.frameworks.hf_config import hf_config
    from planner.spec.hf import model_from_hf
    from planner.spec.model import ModelSpec, window_pattern

    cfg = json.loads((Path(__file__).parent / "fixtures/hf/qwen2.5-32b.json").read_text())
    cfg.update(use_sliding_window=True, sliding_window=4096, max_window_layers=60)
    m = ModelSpec.model_validate(model_from_hf(cfg, name="q"))
    out = hf_config(m)
    assert (out["model_type"], out["use_sliding_window"], out["sliding_window"], out["max_window_layers"]) == \
        ("qwen2", True, 4096, 60)
    back = ModelSpec.model_validate(model_from_hf(json.loads(json.dumps(out)), name="q"))
    assert window_pattern(back) == window_pattern(m) and back.sliding_window == 4096
    every = m.model_copy(update={"sliding_window_pattern": None, "sliding_window_layers": None})
    assert hf_config(every)["max_window_layers"] == 0
    odd = m.model_copy(update={"sliding_window_pattern": [i < 4 for i in range(64)]})
    with pytest.raises(InputError, match="from max_window_layers on"):
        hf_config(odd)
