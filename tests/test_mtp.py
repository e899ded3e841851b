"""Multi-token prediction (model.mtp_layers): parameters against DeepSeek's published counts, model FLOPs
against the Megatron-Bridge performance tables, where the module sits in the pipeline and what it
adds there, Megatron's layout rules for 'm', and the exports."""

import json

import numpy as np
import pytest

from planner import catalog
from planner.arch import flops_per_token, model_stats, mtp_checkpoint_params
from planner.errors import InputError
from planner.estimate import compute, memory, table
from planner.estimate.evaluate import Context, estimate, first_last_stage_times
from planner.estimate.memory_terms_stage import stage_mtp, stage_params
from planner.estimate import pipeline_split
from planner.frameworks import common, megatron, rules
from planner.frameworks.megatron_layout import layout_problems, pipeline_layout
from planner.spec import Plan
from planner.spec.hf import model_from_hf
from planner.spec.model import ModelSpec

from conftest import HF
from test_memory import scenario

DSV3 = catalog.model("deepseek-v3")
DSV3_MTP = DSV3.model_copy(update={"mtp_layers": 1})
# The Megatron-Bridge recipes' layout for DeepSeek-V3 on 16 virtual stages (recipes/deepseek/deepseek_v3.py
# set_deepseek_v3_pipeline_model_parallel_layout, (16, 1) and (4, 4), at tag v0.3.0)
RECIPE_LAYOUT = "Et*4|(t*4|)*14tmL"


def mtp_scenario(model=DSV3_MTP, nodes=32, plain_split=False, **runtime):
    """`plain_split`: search.uneven_pipeline false, so the planner keeps the plain split (the module's
    own terms alone) instead of setting the module against the last stage's layers."""
    extra = {"runtime": runtime} if runtime else {}
    extra.update({"search": {"uneven_pipeline": False}} if plain_split else {})
    return scenario(model=model.model_dump(exclude_none=True), node="dgx-b200", nodes=nodes, gb=2048, **extra)


def test_main_model_count_is_unchanged_and_the_module_matches_deepseeks_card():
    """DeepSeek-V3 README_WEIGHTS.md: main model 671B; MTP module "11.5B unique parameters (excluding the
    shared 0.9B Embedding and 0.9B output Head)"; README: "The total size of DeepSeek-V3 models on Hugging
    Face is 685B, which includes 671B of the Main Model weights and 14B of the MTP Module weights" (a
    rounded figure: the safetensors total also holds the FP8 block scales, about one per 128 x 128 weights)."""
    st, main = model_stats(DSV3_MTP), model_stats(DSV3)
    assert main.params_total == 671_026_404_352
    assert st.params_total - st.components["mtp"] == main.params_total
    assert st.components["mtp"] == pytest.approx(11.5e9, rel=0.01)
    assert mtp_checkpoint_params(DSV3_MTP) - st.components["mtp"] == pytest.approx(2 * 0.9e9, rel=0.05)
    assert mtp_checkpoint_params(DSV3_MTP) == pytest.approx(14e9, abs=0.6e9)
    assert main.params_total + mtp_checkpoint_params(DSV3_MTP) == pytest.approx(685e9, abs=0.6e9)


def test_mtp_flops_match_megatron_bridge_model_flops():
    """Model TFLOP/s per GPU / tokens/s per GPU of the Megatron-Bridge tables (docs/performance-summary.md
    at v0.3.0): 25.11 rows "DeepSeekV3 (w/o MTP)" (GB300 BF16 961/3848, FP8-MX 1088/4357; GB200 BF16
    782/3139, FP8-MX 1003/4018) against the 26.02 rows, which train one MTP module (GB300 1199/4612,
    GB200 1028/3955, B200 699/2689). Megatron counts causal attention (flops_per_token causal=True)."""
    without = np.mean([961 / 3848, 1088 / 4357, 782 / 3139, 1003 / 4018]) * 1e12
    with_mtp = np.mean([1199 / 4612, 1028 / 3955, 699 / 2689]) * 1e12
    ours0 = flops_per_token(DSV3, 4096)["training"]
    ours1 = flops_per_token(DSV3_MTP, 4096)["training"]
    assert ours1 - ours0 == pytest.approx(with_mtp - without, rel=0.05)
    assert ours1 == pytest.approx(with_mtp, rel=0.01)


def test_module_and_embedding_copy_sit_on_the_last_rank():
    """Without a layout Megatron builds the MTP module on the last pipeline stage (mtp_on_this_rank),
    with its own embedding copy there (GPTModel: pre_process or mtp_process); other ranks unchanged
    (under the plain split: the planner's own moves decoder layers off the module's rank)."""
    ctx0, ctx1 = Context(mtp_scenario(model=DSV3)), Context(mtp_scenario(plain_split=True))
    t = table.from_plans([Plan(framework="megatron", precision="bf16", dp=16, tp=1, pp=16, ep=8, mbs=1, ga=8,
                               zero=1)])
    st = ctx1.stats
    for r in range(16):
        a, b = stage_params(ctx0, t, np.array([r])), stage_params(ctx1, t, np.array([r]))
        extra = (b["non_expert"] + b["expert"] - a["non_expert"] - a["expert"])[0]
        assert extra == (st.components["mtp"] + st.embedding if r == 15 else 0)
    one = table.from_plans([Plan(framework="megatron", precision="bf16", dp=256, tp=1, pp=1, ep=8, mbs=1, ga=8,
                                 zero=1)])
    a, b = stage_params(ctx0, one, "last"), stage_params(ctx1, one, "last")
    assert (b["non_expert"] + b["expert"] - a["non_expert"] - a["expert"])[0] == st.components["mtp"]


def test_layout_places_the_module_where_m_is():
    """'m' in virtual stage c sits on rank c % pp; the recipe layout puts it on the last rank; the
    Megatron rules on 'm' (pipeline_parallel_layer_layout.validate_layer_layout)."""
    t = table.from_plans([Plan(framework="megatron", precision="bf16", dp=64, tp=1, pp=4, vpp=4, ep=64, mbs=1,
                               ga=32, zero=1)])
    ctx = Context(mtp_scenario(nodes=32, pipeline_layout=RECIPE_LAYOUT))
    assert [float(stage_mtp(ctx, t, np.array([r]))[0]) for r in range(4)] == [0, 0, 0, 1]
    standalone = "Et*4|(t*4|)*13t*5|mL"  # MTP alone in the last virtual stage of the last rank
    assert layout_problems({"pipeline_model_parallel_layout": standalone, "mtp_num_layers": 1}, 61, 4) == []
    bad = layout_problems({"pipeline_model_parallel_layout": "Et*4|(t*4|)*13mt*5|L", "mtp_num_layers": 1}, 61, 4)
    assert any("before the MTP layers" in p for p in bad)
    early = "Et*30|t*31m" + "|" * 14 + "L"  # 'm' in stage 1 of 16: rank 1's first virtual stage, not its last
    assert any("last virtual stage" in p for p in
               layout_problems({"pipeline_model_parallel_layout": early, "mtp_num_layers": 1}, 61, 4))


def test_scenario_layout_must_hold_the_models_mtp_layers():
    mtp_scenario(pipeline_layout=RECIPE_LAYOUT)  # validates
    with pytest.raises(Exception, match="model.mtp_layers is 0"):
        mtp_scenario(model=DSV3, pipeline_layout=RECIPE_LAYOUT)


def test_last_stage_runs_one_more_layer_eh_proj_and_head():
    """The last stage's forward gains one MoE layer (attention and its dispatcher wait included), eh_proj
    with the norms, and one more output layer + loss; the first stage's time does not change (the same
    split: plain_split)."""
    plan = Plan(framework="megatron", precision="bf16", dp=16, tp=1, pp=16, ep=8, mbs=1, ga=128, zero=1)
    t = table.from_plans([plan])
    ctx0, ctx1 = Context(mtp_scenario(model=DSV3)), Context(mtp_scenario(plain_split=True))
    s0, s1 = first_last_stage_times(ctx0, t), first_last_stage_times(ctx1, t)
    assert float(s1["first"][0][0]) == pytest.approx(float(s0["first"][0][0]), rel=1e-12)
    u0, u1 = compute.layer_costs(ctx0, t), compute.layer_costs(ctx1, t)
    expected = u1["moe_fwd"] + u1["moe_sync"] + u1["attn_fwd"] + u1["mtp_extra"] + u0["head"]
    grew = s1["last"][1]["forward"] - s0["last"][1]["forward"]
    assert float(grew[0]) == pytest.approx(float(np.asarray(expected).ravel()[0]), rel=1e-6)
    assert float(np.asarray(u1["head"]).ravel()[0]) == pytest.approx(2 * float(np.asarray(u0["head"]).ravel()[0]))
    r0, r1 = estimate(mtp_scenario(model=DSV3), plan), estimate(mtp_scenario(), plan)
    assert r1["throughput"]["tokens_per_s_per_gpu"] < r0["throughput"]["tokens_per_s_per_gpu"]
    # model FLOPs count the module (Megatron's num_floating_point_operations does)
    ratio = r1["throughput"]["model_tflops_per_gpu"] / r1["throughput"]["tokens_per_s_per_gpu"]
    assert ratio * 1e12 == pytest.approx(flops_per_token(DSV3_MTP, 4096)["training"], rel=1e-3)


def test_logits_kept_once_per_head():
    plan = Plan(framework="megatron", precision="bf16", dp=16, tp=1, pp=16, ep=8, mbs=1, ga=128, zero=1)
    t = table.from_plans([plan])
    m0 = memory.memory(Context(mtp_scenario(model=DSV3)), t, peak=np.array([15]))
    m1 = memory.memory(Context(mtp_scenario()), t, peak=np.array([15]))
    assert float(m1["activations.logits_loss"][0]) == pytest.approx(2 * float(m0["activations.logits_loss"][0]))


def test_hf_reader_and_override(tmp_path):
    cfg = json.loads((HF / "deepseek-v3.json").read_text())
    assert ModelSpec.model_validate(model_from_hf(cfg)).mtp_layers == 1
    with pytest.raises(InputError, match="num_nextn_predict_layers"):
        model_from_hf({**cfg, "num_nextn_predict_layers": -1})
    from planner.spec.load import resolve_model

    out = resolve_model({"hf_config": str(HF / "deepseek-v3.json"), "mtp_layers": 0}, tmp_path)
    assert out["mtp_layers"] == 0
    with pytest.raises(InputError, match="unexpected keys"):
        resolve_model({"hf_config": str(HF / "deepseek-v3.json"), "layers": 3}, tmp_path)


def test_exports():
    """Megatron: --mtp-num-layers, and the planner's uneven layout carries 'm' before 'L'; torchtitan
    (DeepSeekV3ModelArgs has no MTP) and DeepSpeed (transformers builds none) cannot run it."""
    sc = mtp_scenario()
    plan = Plan(framework="megatron", precision="bf16", dp=16, tp=1, pp=16, ep=8, mbs=1, ga=128, zero=1).resolved(sc)
    args = megatron.megatron_args(sc, plan)
    assert "--mtp-num-layers 1" in args
    assert megatron.args_problems(megatron.parse_args(args), 256) == []
    layout = pipeline_layout(61, 4, 1, 1)
    assert layout.endswith("mL") and layout_problems({"pipeline_model_parallel_layout": layout,
                                                      "mtp_num_layers": 1}, 61, 4) == []
    bad = rules.unbuildable(DSV3_MTP)
    assert set(bad) == {rules.DS, rules.TT}
    assert rules.unbuildable(DSV3) == {}


def test_reported_peak_is_the_maximum_over_ranks_with_a_standalone_mtp_stage():
    """The candidate-rank scan (memory_ranks) sees the rank holding the module: the vectorised peak equals
    the maximum of the ranks evaluated one by one."""
    from test_memory_stages import one_by_one

    ctx = Context(mtp_scenario(nodes=32, pipeline_layout="Et*4|(t*4|)*13t*5|mL"))
    plan = dict(framework="megatron", precision="fp8", dp=64, tp=1, pp=4, cp=1, ep=64, vpp=4, sp=False, zero=1,
                offload="none", offload_params="none", recompute="selective", mbs=1, ga=32)
    totals = one_by_one(ctx, plan)
    mem = memory.memory(ctx, table.from_plans([plan]))
    assert float(mem["total"][0]) == pytest.approx(max(totals), rel=1e-12)


def _heaviest(counts, units):
    """The heaviest chunk in decoder-layer equivalents, the MTP units on the last."""
    return max(max(counts[:-1], default=0), counts[-1] + units)


@pytest.mark.parametrize("layers", [27, 61, 64, 94])
@pytest.mark.parametrize("units", [0.4, 1.0, 2.758818, 5.0])
def test_own_split_moves_layers_off_the_mtp_chunk_only_when_that_lowers_the_heaviest(layers, units):
    """common.chunk_layer_counts with the MTP units on the last chunk: every layer placed once; fewer
    decoder layers on the last chunk than the plain split only where that lowers the heaviest chunk,
    otherwise the plain split itself."""
    for pp, vpp in ((2, 1), (4, 1), (4, 2), (8, 1), (16, 1), (4, 4)):
        if pp * vpp > layers:
            continue
        plain = common.chunk_layer_counts(layers, pp, vpp)
        own = common.chunk_layer_counts(layers, pp, vpp, units)
        assert sum(own) == layers and len(own) == pp * vpp and min(own) >= 0
        assert _heaviest(own, units) <= _heaviest(plain, units)
        if own[-1] < plain[-1]:
            assert _heaviest(own, units) < _heaviest(plain, units)
        else:
            assert own == plain


def test_own_split_of_deepseek_v3_with_mtp_is_the_recipe_layout_and_lowers_the_slowest_stage():
    """DeepSeek-V3 + one MTP module (about 2.76 MoE-layer equivalents: layer, eh_proj, one more output
    head) on pp 16: the planner's split leaves one decoder layer with the module, the Megatron-Bridge
    recipes' layout (set_deepseek_v3_pipeline_model_parallel_layout); its slowest stage is faster than
    under the plain split (3 layers + module), and the export writes that layout."""
    assert pipeline_split.mtp_layer_units(DSV3_MTP) == pytest.approx(2.76, abs=0.01)
    plan = Plan(framework="megatron", precision="bf16", dp=16, tp=1, pp=16, ep=8, mbs=1, ga=128, zero=1)
    t = table.from_plans([plan])
    own, plain = Context(mtp_scenario()), Context(mtp_scenario(plain_split=True))
    assert [float(memory.stage_layers(own, t, np.array([r]))[0][0]) for r in (0, 14, 15)] == [4, 4, 2]
    assert float(memory.stage_layers(plain, t, "last")[0][0]) == 4
    slowest = [max(float(v[0][0]) for v in first_last_stage_times(c, t).values()) for c in (own, plain)]
    assert slowest[0] < slowest[1]
    args = megatron.megatron_args(mtp_scenario(), plan.resolved(mtp_scenario()))
    assert f"--pipeline-model-parallel-layout {RECIPE_LAYOUT}" in args
