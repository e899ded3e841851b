"""GB300 (Blackwell Ultra) in the catalogs and NVFP4 training (runtime.fp8_recipe nvfp4), against the
numbers of their sources (catalogs/gpus.yaml and nodes.yaml `source`, planner/estimate/compute.py)."""

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from planner.cli import main

from conftest import ROOT, write
from test_memory import raw_table, scenario

runner = CliRunner()


def test_gb300_peaks_memory_and_tray_from_the_rack_figures():
    """GB300 NVL72 per rack, dense: FP4 1,080 PF, FP8 360 PF, BF16 180 PF, HBM 576 TB/s, 72 GPUs; the
    full-GPU MIG profile 7g.278gb = 284672 MiB; one ConnectX-8 800 Gb/s per GPU; 4 GPUs per tray, an
    NVLink 5 domain of 72 at 900 GB/s one way. Blackwell Ultra raises dense FP4 1.5x over GB200 and
    keeps its BF16/FP8."""
    from planner.catalog import gpu, node

    g, gb200 = gpu("gb300"), gpu("gb200")
    assert (g.tflops.fp4, g.tflops.fp8, g.tflops.bf16) == pytest.approx((1080e3 / 72, 360e3 / 72, 180e3 / 72))
    assert g.hbm_tb_s == pytest.approx(576 / 72)
    assert g.memory_gib == pytest.approx(284672 / 1024)
    assert g.compute_capability == pytest.approx(10.3)
    assert g.tflops.fp4 == pytest.approx(1.5 * gb200.tflops.fp4)
    assert (g.tflops.bf16, g.tflops.fp8) == (gb200.tflops.bf16, gb200.tflops.fp8)
    assert g.sustained_tensor_fraction is None  # measured for the B200 die only
    n = node("gb300-nvl72")
    assert (n.gpus_per_node, n.domain, n.scaleup_gb_s, n.scaleout_gb_s) == (4, 72, 900, 800 / 8)
    assert n.host_memory_gib == pytest.approx(17e12 / 18 / 2**30, abs=0.1)


@pytest.mark.parametrize("node_name", ["dgx-h100", "dgx-a100-80gb", "mi300x-8"])
def test_nvfp4_is_bad_input_without_fp4_tensor_cores(tmp_path, node_name):
    """NVFP4 needs an NVIDIA GPU of compute capability >= 10.0 with an FP4 peak: exit 2, naming the key."""
    sc = write(tmp_path, "s.yaml", f"model: llama-3.1-8b\ncluster: {{node: {node_name}, nodes: 1}}\n"
               "training: {seq_len: 4096, global_batch: 64, tokens: 1e9}\nruntime: {fp8_recipe: nvfp4}\n")
    r = runner.invoke(main, ["estimate", str(sc), "--plan", "framework=megatron,precision=fp8,tp=1"])
    assert r.exit_code == 2
    assert "runtime.fp8_recipe: nvfp4 needs" in r.output and "Traceback" not in r.output
    for ok in ("dgx-b200", "gb300-nvl72"):
        assert scenario(node=ok, nodes=1, runtime={"fp8_recipe": "nvfp4"}).runtime.fp8_recipe == "nvfp4"


def test_nvfp4_bytes_and_gemm_rate():
    """Hand-worked from TE: an NVFP4 operand is 0.5 byte + one E4M3 scale per 16 elements; quantising a
    bf16 element reads it for the amax (2) and again for the RHT cast (2), writing row- and column-wise
    NVFP4 (2 x 0.5625) = 5.125 bytes. GEMMs at 6.812 / 3.764 of the FP8 rate (TE GEMM profiling tutorial,
    B300 pre-quantised), never above the dense FP4 peak at the same MAMF fraction."""
    from planner.catalog import gpu
    from planner.estimate import compute_gemm, compute_quant

    g = gpu("gb300")
    assert compute_quant.NVFP4_OPERAND_BYTES == pytest.approx(0.5625)
    assert compute_quant.fp8_cast_bytes(g, "nvfp4") == pytest.approx(5.125)
    assert compute_quant.fp8_weight_cast_bytes(g, "nvfp4") == pytest.approx(5.125)
    t = raw_table(precision="fp8")
    eff8 = g.matmul_efficiency.fp8
    rate = float(compute_gemm.peaks(g, t, "nvfp4")[0][0])
    assert g.fp4_gemm_over_fp8 == pytest.approx(6.812 / 3.764, rel=1e-3)  # the catalog's B300 measurement
    assert rate == pytest.approx(5000e12 * eff8 * g.fp4_gemm_over_fp8)
    assert rate / float(compute_gemm.peaks(g, t, "current")[0][0]) == pytest.approx(g.fp4_gemm_over_fp8)
    # a GPU whose FP4 peak equals its FP8 peak gains nothing beyond that peak
    flat = g.model_copy(update={"tflops": g.tflops.model_copy(update={"fp4": 5000.0})})
    assert float(compute_gemm.peaks(flat, t, "nvfp4")[0][0]) == pytest.approx(5000e12 * eff8)


def _estimate(sc, plan):
    from planner.estimate.evaluate import estimate
    from planner.spec import parse_plan

    return estimate(sc, parse_plan(plan).resolved(sc))


def test_nvfp4_is_faster_and_smaller_than_mxfp8_on_the_same_plan():
    """Same Llama-3.1-70B plan on 64 GB300: NVFP4 steps faster than MXFP8 (GEMM rate), by less than the
    GEMM ratio (attention, norms, output layer stay bf16), and holds less (1.125 vs 2.0625 bytes of
    quantised weight copies per GEMM weight); MFU's precision figure is taken against the FP4 peak."""
    plan = "framework=megatron,precision=fp8,tp=1,pp=4,vpp=5,mbs=1,zero=1,recompute=none"
    r = {}
    for recipe in ("mxfp8", "nvfp4"):
        sc = scenario(model="llama-3.1-70b", node="gb300-nvl72", nodes=16, seq=8192, gb=256,
                      runtime={"fp8_recipe": recipe})
        r[recipe] = _estimate(sc, plan)
    speed = r["nvfp4"]["throughput"]["tokens_per_s"] / r["mxfp8"]["throughput"]["tokens_per_s"]
    assert 1.0 < speed < (6.812 / 3.764) * (7.161 / 6.812)
    copies = {k: v["memory"]["parts_gib"]["weights"]["fp8_weight_copies"] for k, v in r.items()}
    assert copies["nvfp4"] / copies["mxfp8"] == pytest.approx(1.125 / (2 + 2 / 32), rel=1e-3)
    assert r["nvfp4"]["throughput"]["mfu_precision_basis"] == "fp4"
    th = r["nvfp4"]["throughput"]
    assert th["mfu_precision_peak"] == pytest.approx(th["model_tflops_per_gpu"] / 15000, rel=1e-3)


def test_nvfp4_saves_quantised_linear_inputs():
    """Megatron fp8 layers save their linear inputs quantised: 1 byte per element with FP8, 0.5625 with
    NVFP4, so a dense layer's stored activations shrink by (1 - 0.5625) x (norm outputs 2h/sp + MLP
    input f/tp + the out-projection's quantised copy of the attention output, heads x d_v / tp) per token."""
    from planner.estimate import memory
    from planner.estimate.evaluate import Context

    t = raw_table(precision="fp8", tp=2, sp=True)
    acts = {}
    for recipe in ("current", "nvfp4"):
        sc = scenario(model="llama-3.1-8b", node="gb300-nvl72", nodes=1, seq=4096, gb=8, runtime={"fp8_recipe": recipe})
        acts[recipe] = float(memory.layer_activation_bytes(Context(sc), t)["dense"]["none"][0])
    h, f, heads, d, tp, tokens = 4096, 14336, 32, 128, 2, 4096
    saved = (1 - 0.5625) * (2 * h / tp + f / tp + heads * d / tp) * tokens
    assert acts["current"] - acts["nvfp4"] == pytest.approx(saved, rel=1e-9)


def test_megatron_export_writes_the_fp4_flags():
    """nvfp4 -> --fp4-format e2m1 --fp4-recipe nvfp4 on a bf16 model, never with --fp8-format (Megatron-LM
    validate_args: mutually exclusive), and --fp4-param-gather with runtime.fp8_param_gather. --fp4-format
    is in the Megatron-LM parser table of the shared reference (ecosystem.md 4.1)."""
    from planner.frameworks import megatron
    from planner.spec import parse_plan

    plan = "framework=megatron,precision=fp8,tp=1,pp=1,mbs=1,zero=1"
    for gather in (False, True):
        sc = scenario(node="gb300-nvl72", nodes=2, seq=4096, gb=64,
                      runtime={"fp8_recipe": "nvfp4", "fp8_param_gather": gather})
        args = megatron.megatron_args(sc, parse_plan(plan).resolved(sc))
        assert {"--bf16", "--fp4-format e2m1", "--fp4-recipe nvfp4"} <= set(args)
        assert not any(a.startswith("--fp8-") for a in args)
        assert ("--fp4-param-gather" in args) == gather
    table = (ROOT.parent / "shared" / "reference" / "ecosystem.md")
    if table.exists():
        text = table.read_text()
        assert "`--fp4-format` | None \\| e2m1 (mutually exclusive with fp8)" in text
    both = megatron.parse_args(args + ["--fp8-format hybrid"])
    assert any("--fp4-format and --fp8-format" in p for p in megatron.args_problems(both, 8))


def test_quantised_parameter_gather_is_exported_where_megatron_runs_it():
    """runtime.fp8_param_gather reaches --fp8-param-gather (FP8 recipes); Megatron-LM validate_args accepts
    it only with the distributed optimizer or an FSDP, so a ZeRO-0 plan with it is refused (the plan
    rule, before any estimate or export; the export's own check stays)."""
    from planner.errors import InputError
    from planner.frameworks import megatron
    from planner.spec import parse_plan

    sc = scenario(node="gb300-nvl72", nodes=2, seq=4096, gb=64,
                  runtime={"fp8_recipe": "current", "fp8_param_gather": True})
    args = megatron.megatron_args(sc, parse_plan("framework=megatron,precision=fp8,zero=1,mbs=1").resolved(sc))
    assert "--fp8-param-gather" in args and "--use-distributed-optimizer" in args
    with pytest.raises(InputError, match=r"runtime.fp8_param_gather \(--fp8-param-gather\) needs the distributed"):
        parse_plan("framework=megatron,precision=fp8,zero=0,mbs=1").resolved(sc)
    zero0 = megatron.parse_args([a for a in args if a != "--use-distributed-optimizer"])
    assert any("--fp8-param-gather needs --use-distributed-optimizer" in p for p in megatron.args_problems(zero0, 8))


def test_torchtitan_refuses_to_export_nvfp4():
    """torchtitan v0.2.2 has no NVFP4 converter: the plan is refused, and the export refuses it too."""
    from planner.errors import InputError
    from planner.frameworks import torchtitan
    from planner.spec import parse_plan

    sc = scenario(node="gb300-nvl72", nodes=2, seq=4096, gb=64, runtime={"fp8_recipe": "nvfp4"})
    plan = parse_plan("framework=torchtitan,precision=fp8,zero=3")
    with pytest.raises(InputError, match="torchtitan v0.2.2 has no NVFP4 training"):
        plan.resolved(sc)
    with pytest.raises(InputError, match="runtime.fp8_recipe nvfp4: torchtitan v0.2.2 has no NVFP4"):
        torchtitan.torchtitan_config(sc, plan.model_copy(update={"dp": 8, "ga": 8, "sp": False, "etp": 1}))


def _recipe_row(rid):
    runs = yaml.safe_load((ROOT / "benchmarks" / "recipe_runs.yaml").read_text())
    return next(r for r in runs if r["id"] == rid)


@pytest.mark.parametrize("rid", ["mbridge25.11-gb300-fp8cs-llama3-8b-8gpu", "mbridge26.02-gb300-nvfp4-llama3-70b-64gpu"])
def test_planner_estimate_runs_a_gb300_and_an_nvfp4_recipe(tmp_path, rid):
    """The published GB300 / NVFP4 recipe rows through `planner estimate` as a user would write them:
    the run's node, model, batch, runtime and plan; it fits and reports tokens/s."""
    import calibration_runs

    row = _recipe_row(rid)
    sc, plan, label, _ = calibration_runs.build(row)
    assert label == "gb300-nvl72"
    rt = {k: v for k, v in sc.runtime.model_dump().items() if v != type(sc.runtime)().model_dump()[k]}
    text = yaml.safe_dump({"model": sc.model.model_dump(exclude_none=True), "cluster": {"node": "gb300-nvl72",
                           "nodes": sc.cluster.nodes}, "training": {"seq_len": sc.training.seq_len,
                           "global_batch": sc.training.global_batch, "tokens": 1e9}, "runtime": rt})
    path = write(tmp_path, "row.yaml", text)
    p = plan.model_dump()
    plan_text = ",".join(f"{k}={v}" for k, v in p.items() if v is not None and k in
                         ("framework", "precision", "dp", "tp", "pp", "cp", "ep", "vpp", "zero", "recompute", "mbs", "ga"))
    r = runner.invoke(main, ["estimate", str(path), "--plan", plan_text, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    out = out["plans"][0] if "plans" in out else out
    assert out["memory"]["verdict"] in ("fits", "tight")
    assert out["throughput"]["tokens_per_s_per_gpu"] > 0
    if "nvfp4" in rid:
        assert out["throughput"]["mfu_precision_basis"] == "fp4"
        assert np.isfinite(out["throughput"]["mfu_precision_peak"])
        assert out["plan"]["precision"] == "fp8"  # the contract's precision; the table shows nvfp4
        text = runner.invoke(main, ["estimate", str(path), "--plan", plan_text]).output
        assert " nvfp4 " in text and "of the dense FP4 peak" in text


def test_nvfp4_is_not_offered_to_torchtitan(tmp_path):
    """NVFP4 is Transformer Engine's recipe (run by Megatron-LM): a torchtitan fp8 plan under
    fp8_recipe nvfp4 is bad input (exit 2, names the rule), and the search offers none."""
    from planner.frameworks.rules import TT, FP8
    from planner.search.solver import candidate_table

    path = write(tmp_path, "s.yaml", "model: llama-3.1-8b\ncluster: {node: gb300-nvl72, nodes: 2}\n"
                 "training: {seq_len: 4096, global_batch: 256, tokens: 1e9}\nruntime: {fp8_recipe: nvfp4}\n")
    r = runner.invoke(main, ["estimate", str(path), "--plan",
                             "framework=torchtitan,precision=fp8,tp=1,pp=1,dp=8,zero=3,mbs=1,recompute=none"])
    assert r.exit_code == 2 and "NVFP4" in r.output and "Traceback" not in r.output
    from planner.spec import load_scenario

    t = candidate_table(load_scenario(path))[0]
    assert not np.any((t["framework"] == TT) & (t["precision"] == FP8))
    assert np.any(t["precision"] == FP8)  # megatron's fp8 (NVFP4) plans stay


def test_training_and_serving_read_one_measured_fp4_ratio_per_gpu():
    """The NVFP4 / FP8 GEMM gain is the GPU's measured catalog value in both models (GB200 1.50 from
    NVIDIA's GEMM tables, not the B300 tutorial's 1.81), and the default only where none was measured."""
    from planner.catalog import gpu
    from planner.estimate import compute_gemm, compute_quant
    from planner.serve import timing

    g = gpu("gb200")
    t = raw_table(precision="fp8")
    train = float(compute_gemm.peaks(g, t, "nvfp4")[0][0]) / float(compute_gemm.peaks(g, t, "current")[0][0])
    serve = timing.fp4_rate_tflops(g, 0.7) / (g.tflops.fp8 * 0.7)
    assert train == pytest.approx(g.fp4_gemm_over_fp8) and serve == pytest.approx(g.fp4_gemm_over_fp8)
    assert g.fp4_gemm_over_fp8 != gpu("gb300").fp4_gemm_over_fp8
    unmeasured = g.model_copy(update={"fp4_gemm_over_fp8": None})
    assert compute_gemm.fp4_gemm_over_fp8(unmeasured) == compute_quant.FP4_GEMM_OVER_FP8_DEFAULT
