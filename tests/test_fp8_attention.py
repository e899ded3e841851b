"""runtime.fp8_attention (Transformer Engine FP8 dot-product attention): where it is accepted, and its time
and memory worked by hand from the sources' figures (cuDNN-frontend's benchmark ms, TE's casts)."""

import pytest
from pydantic import ValidationError

from planner.errors import InputError
from planner.estimate import compute, compute_gemm
from planner.estimate.evaluate import Context
from planner.frameworks.rules import framework_problems
from planner.spec import parse_plan

from test_cli_exit import _planner
from test_memory import plan_table, scenario

PLAN_70B = dict(framework="megatron", precision="fp8", tp=4, pp=1, dp=8, cp=1, mbs=1, zero=1, recompute="none")


def _sc(model="llama-3.1-70b", node="dgx-h100", seq=8192, nodes=4, **runtime):
    return scenario(model=model, node=node, nodes=nodes, seq=seq, gb=64, runtime=runtime)


def test_refused_on_gpus_without_cudnn_fp8_attention():
    with pytest.raises(ValidationError, match=r"runtime\.fp8_attention: .*compute capability 9\.0, 10\.0 or 10\.3"):
        _sc(node="dgx-a100-80gb", fp8_attention=True)


def test_refused_with_fa2_or_unfused_attention_or_no_fp8_megatron_plan():
    for bad in ({"attention_kernel": "fa2"}, {"flash_attention": False}):
        with pytest.raises(ValidationError, match=r"runtime\.fp8_attention: needs Transformer Engine's fused"):
            _sc(fp8_attention=True, **bad)
    with pytest.raises(ValidationError, match=r"runtime\.fp8_attention: applies to Megatron fp8 plans only"):
        scenario(model="llama-3.1-8b", nodes=1, runtime={"fp8_attention": True}, search={"precision": ["bf16"]})


def test_bf16_and_torchtitan_plans_are_refused_by_the_rules():
    sc = _sc(fp8_attention=True)
    for text in ("framework=megatron,precision=bf16,tp=4,dp=8,mbs=1,zero=1",
                 "framework=torchtitan,precision=fp8,tp=4,dp=8,mbs=1"):
        with pytest.raises(InputError, match=r"runtime\.fp8_attention .* needs a Megatron plan with precision fp8"):
            parse_plan(text).resolved(sc)
    ok = parse_plan("framework=megatron,precision=fp8,tp=4,dp=8,mbs=1,zero=1").resolved(sc)
    assert not framework_problems(ok, sc)


def test_cli_names_the_key_and_exits_2(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("model: llama-3.1-8b\ncluster: {node: dgx-a100-80gb, nodes: 1}\n"
                 "training: {seq_len: 4096, global_batch: 64, tokens: 1.0e9}\nruntime: {fp8_attention: true}\n")
    r = _planner("estimate", f, "--plan", "framework=megatron,precision=fp8,tp=1,dp=8,mbs=1,zero=1")
    assert r.returncode == 2
    assert "runtime.fp8_attention" in r.stderr + r.stdout and "Traceback" not in r.stderr


@pytest.mark.parametrize("recipe,amax", [("delayed", 0.0), ("current", 2.0)])
def test_attention_seconds_worked_by_hand_on_h100(recipe, amax):
    """Llama 3.1 70B (64 query / 8 KV heads of 128), tp 4, one 8,192-token sequence, H100 (cc 9.0). cuDNN-frontend
    @3929da2 h200_919_only_cudnn llama3.1 at seq 8192: bf16 1.708 / 5.083 ms, fp8 1.141 / 6.392 ms (fwd / bwd).
    Casts per token: Q, K, V (64 + 8 + 8) x 128 / 4 = 2,560 elements, O and dO 64 x 128 / 4 = 2,048, 3 bytes each
    (read 2, write 1), plus a 2-byte amax read of each quantised tensor under current scaling."""
    off, on = _sc(fp8_recipe=recipe), _sc(fp8_recipe=recipe, fp8_attention=True)
    t = plan_table(off, **PLAN_70B)
    a, b = compute.layer_costs(Context(off), t), compute.layer_costs(Context(on), t)
    hbm = compute_gemm.peaks(off.cluster.node.gpu, t, recipe)[2]
    tokens = 8192
    fwd_cast = tokens * ((3 + amax) * 2560 + 3 * 2048) / hbm
    bwd_cast = tokens * ((3 + amax) * 2048 + 3 * 2560) / hbm
    assert b["attn_fwd"][0] == pytest.approx(a["attn_fwd"][0] * 1.141 / 1.708 + fwd_cast, rel=1e-9)
    assert b["attn_bwd"][0] == pytest.approx(a["attn_bwd"][0] * 6.392 / 5.083 + bwd_cast, rel=1e-9)
    assert b["dense_fwd"][0] == a["dense_fwd"][0]  # the linear layers do not change


def test_mxfp8_runs_cudnn_mxfp8_attention_with_both_copies_cast():
    """fp8_recipe mxfp8 on GB200 (TE >= 2.16 MXFP8 attention): cuDNN-frontend gb200 llama3.1 at seq 8192, bf16
    1.397 / 4.127 ms, mxfp8 1.156 / 4.272 ms; Q, K, V and dO cast with row- and column-wise copies and scales,
    2 + 2 x (1 + 1/32) bytes per element; O and dQ, dK, dV dequantised at 3."""
    off, on = _sc(node="gb200-nvl72", nodes=8, fp8_recipe="mxfp8"), _sc(node="gb200-nvl72", nodes=8,
                                                                       fp8_recipe="mxfp8", fp8_attention=True)
    t = plan_table(off, **PLAN_70B)
    a, b = compute.layer_costs(Context(off), t), compute.layer_costs(Context(on), t)
    hbm = compute_gemm.peaks(off.cluster.node.gpu, t, "mxfp8")[2]
    quant = 2 + 2 * (1 + 1 / 32)
    fwd_cast = 8192 * (quant * 2560 + 3 * 2048) / hbm
    bwd_cast = 8192 * (quant * 2048 + 3 * 2560) / hbm
    assert b["attn_fwd"][0] == pytest.approx(a["attn_fwd"][0] * 1.156 / 1.397 + fwd_cast, rel=1e-9)
    assert b["attn_bwd"][0] == pytest.approx(a["attn_bwd"][0] * 4.272 / 4.127 + bwd_cast, rel=1e-9)


def test_ratio_interpolates_in_log_sequence_and_holds_beyond_the_measured_lengths():
    """GB200 (cc 10.0), gb200 llama3.1 forward: 2k 0.097 / 0.125, 4k 0.305 / 0.391; at 2,896 (about 2^11.5)
    halfway between the two ratios; beyond 32k the 32k ratio 16.012 / 21.692."""
    from planner.catalog import gpu as catalog_gpu
    from planner.estimate.fp8_attention import fp8_time_ratios

    gpu = catalog_gpu("gb200")
    mid = (0.097 / 0.125 + 0.305 / 0.391) / 2
    fwd, bwd = fp8_time_ratios(gpu, [2 ** 11.5, 131072])
    assert fwd[0] == pytest.approx(mid, rel=1e-9)
    assert fwd[1] == pytest.approx(16.012 / 21.692) and bwd[1] == pytest.approx(52.155 / 71.756)


def test_memory_saves_half_of_q_k_v_unless_core_attention_is_recomputed():
    """TE saves Q, K, V as FP8 casts: Llama 3.1 8B (32 / 8 heads of 128), tp 1, mbs 1, 8,192 tokens, 32 layers:
    2 x (32 + 8 + 8) x 128 = 12,288 bf16 bytes per token and layer, half of it saved: 6,144 x 8,192 x 32 bytes."""
    def layers_gib(sc, recompute):
        from planner import estimate
        p = parse_plan(f"framework=megatron,precision=fp8,tp=1,dp=8,mbs=1,zero=1,recompute={recompute}").resolved(sc)
        return estimate(sc, p)["memory"]["parts_gib"]["activations"]["layers"]

    kw = dict(model="llama-3.1-8b", node="dgx-h100", nodes=1, seq=8192, gb=64)
    off, on = scenario(**kw), scenario(**kw, runtime={"fp8_attention": True})
    assert layers_gib(off, "none") - layers_gib(on, "none") == pytest.approx(6144 * 8192 * 32 / 2**30, abs=2e-3)
    assert layers_gib(on, "selective") == layers_gib(off, "selective")


def test_export_says_megatron_lm_has_no_flag_for_it():
    """Megatron-LM @d98e8a6 builds no CLI argument for TransformerConfig.fp8_dot_product_attention: the launch
    files cannot set it, and the README says so (and only when the key is on)."""
    from planner.export import build_files, plan_result

    text = "framework=megatron,precision=fp8,tp=4,dp=8,mbs=1,zero=1"
    for on in (True, False):
        sc = _sc(fp8_attention=on)
        files = build_files(sc, plan_result(sc, parse_plan(text).resolved(sc)))
        assert ("fp8_dot_product_attention=True" in files["README.txt"]) is on
        assert "dot-product" not in files["megatron_args.txt"]
