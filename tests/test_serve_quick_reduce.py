"""ROCm QuickReduce (plan key quick_reduce): vLLM / SGLang on MI300 / MI350-series GPUs all-reduce coded
messages (INT4: 1,152 B per 2,048 fp16 elements) from a minimum size on; SGLang only above its 16 MiB custom
all-reduce. The key reaches the engine's environment variable in the launch files, round-trips through the plan
text and is refused off ROCm, off vLLM / SGLang and for group sizes the kernels do not take."""

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from planner.cli import main
from planner.errors import InputError
from planner.serve import engines as E
from planner.serve import launch as L
from planner.serve import nccl_measured as NM
from planner.serve import timing
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving

from conftest import ROOT, serving_point

runner = CliRunner()
SERVE_70B = ROOT / "scenarios" / "serve_70b.yaml"
PREFILL_HEAVY = "inferencex-sglang-mi355x-dsr1-tp8-ep1-fp4-8192-1024-c64"
TP4 = "inferencex-sglang-mi355x-dsr1-tp4-ep1-fp4-1024-1024-c16"
MI300X = "inferencex-sglang-mi300x-dsr1-tp8-ep1-fp8-1024-1024-c16"
MIB = 2**20


def _links(node, engine, tp, level):
    t = {"engine": np.array([engine]), "tp": np.array([tp]), "quick_reduce": np.array([level])}
    return timing.comm_links(node, t, 7168, True)


def test_the_published_rows_name_the_level_their_launch_sets():
    for key in (PREFILL_HEAVY, TP4):  # dsr1_fp4_mi355x.sh exports ROCM_QUICK_REDUCE_QUANTIZATION=INT4
        assert "quick_reduce=int4" in serving_point(key)[1]
    assert "quick_reduce" not in serving_point(MI300X)[1]  # dsr1_fp8_mi300x.sh sets none
    # --num-continuous-decode-steps 4 is inert in SGLang 0.5.9: the AMD rows poll every step
    assert "recv_interval" not in serving_point(MI300X)[1] and "recv_interval" not in serving_point(TP4)[1]


def test_coded_bytes_above_each_engines_floor():
    sc, _, _ = serving_point(PREFILL_HEAVY)
    node = sc.cluster.node
    int4, int8 = E.QUICK_REDUCE.index("int4"), E.QUICK_REDUCE.index("int8")
    # time per unit of the link model's: the coded bytes (INT4: 1,152 B per 4,096 B of fp16), but no more gain than
    # AMD measured over RCCL at 1 GB on MI355X (4.14x TP2, 3.43x TP4, 1.52x TP8)
    ratio = {2: 1152 / 4096, 4: 1 / 3.43, 8: 1 / 1.52}
    for engine in (E.SGLANG, E.VLLM):
        for tp, r in ratio.items():
            none, q4 = _links(node, engine, tp, 0), _links(node, engine, tp, int4)
            a0, slope = none["all_reduce"][:2]
            for nbytes in (1 * MIB, 12 * MIB, 64 * MIB):
                plain = float(timing.tp_all_reduce_s(none, np.array([nbytes]))[0])
                coded = float(timing.tp_all_reduce_s(q4, np.array([nbytes]))[0])
                # vLLM tries QuickReduce first (INT4 from 1 MiB on 2 GPUs, 2 MiB on 4 / 8); SGLang its custom
                # all-reduce first, to 16 MiB on ROCm
                takes = nbytes >= (1 if tp == 2 else 2) * MIB if engine == E.VLLM else nbytes > 16 * MIB
                if takes:
                    assert coded == pytest.approx(a0 + nbytes * r * slope)
                else:
                    assert coded == plain
    # INT8 on 4 GPUs starts at 16 MiB (QuickAllReduce._QR_MIN_SIZE, fp16 kernels)
    floor = NM.quick_reduce_floor(node, np.array([E.VLLM] * 2), np.array([4, 4]), np.array([int8, 0]))
    assert floor[0] == 16 * MIB and np.isinf(floor[1])


def test_prefill_heavy_row_gains_and_decode_sized_steps_do_not_move():
    sc, plan, _ = serving_point(PREFILL_HEAVY)
    base = plan.replace(",quick_reduce=int4", "")
    none, int4 = (estimate_serving(sc, parse_serve_plan(p, sc)) for p in (base, plan))
    assert none["plan"]["quick_reduce"] == "none" and int4["plan"]["quick_reduce"] == "int4"
    # 7,373-token prompts: 106 MB all-reduces in the prefill steps go coded
    assert int4["throughput"]["output_tokens_per_s"] > 1.01 * none["throughput"]["output_tokens_per_s"]
    sc4, plan4, _ = serving_point(TP4)
    a, b = (estimate_serving(sc4, parse_serve_plan(p, sc4)) for p in (plan4.replace(",quick_reduce=int4", ""), plan4))
    assert a["latency"]["tpot_ms"] == b["latency"]["tpot_ms"]  # decode messages (<= 1 MB) stay on the custom kernel


def test_launch_files_export_the_engines_variable_quoted_and_the_plan_text_round_trips():
    sc, plan, _ = serving_point(PREFILL_HEAVY)
    r = estimate_serving(sc, parse_serve_plan(plan, sc))
    files = L.serving_files(sc, r)
    assert "\nexport ROCM_QUICK_REDUCE_QUANTIZATION=INT4\n" in files["serve.sh"]
    env = yaml.safe_load(files["k8s.yaml"].split("---\n")[0].split("\n", 2)[2])["spec"]["template"]["spec"]
    assert {"name": "ROCM_QUICK_REDUCE_QUANTIZATION", "value": "INT4"} in env["containers"][0]["env"]
    assert "ROCM_QUICK_REDUCE_QUANTIZATION=INT4" in files["README.txt"]
    text = L.plan_text(r["plan"])
    assert "quick_reduce=int4" in text
    again = estimate_serving(sc, parse_serve_plan(text, sc))
    assert again["throughput"] == r["throughput"] and again["plan"]["quick_reduce"] == "int4"
    vllm = plan.split(",engine_version")[0].replace("engine=sglang", "engine=vllm") + ",quick_reduce=int6"
    rv = estimate_serving(sc, parse_serve_plan(vllm, sc))
    assert "\nexport VLLM_ROCM_QUICK_REDUCE_QUANTIZATION=INT6\n" in L.serving_files(sc, rv)["serve.sh"]
    plain = estimate_serving(sc, parse_serve_plan(plan.replace(",quick_reduce=int4", ""), sc))
    assert "QUICK_REDUCE" not in L.serving_files(sc, plain)["serve.sh"]


def test_refused_off_rocm_off_vllm_sglang_and_for_other_group_sizes():
    sc, plan, _ = serving_point(PREFILL_HEAVY)
    trt = plan.split(",engine_version")[0].replace("engine=sglang", "engine=trtllm") + ",quick_reduce=int4"
    with pytest.raises(InputError, match="vLLM or SGLang"):
        parse_serve_plan(trt, sc)
    for bad in ("tp=1", "tp=6"):
        with pytest.raises(InputError, match="quick_reduce=int4 needs tp"):
            parse_serve_plan(plan.replace("tp=8", bad), sc)
    with pytest.raises(InputError, match="one of none, fp, int8, int6, int4"):
        parse_serve_plan(plan.replace("int4", "int5"), sc)
    node = sc.cluster.node
    gfx90a = node.model_copy(update={"gpu": node.gpu.model_copy(update={"name": "mi250x"})})
    old = sc.model_copy(update={"cluster": sc.cluster.model_copy(update={"node": gfx90a})})
    with pytest.raises(InputError, match="MI300 / MI350"):
        parse_serve_plan(plan, old)
    out = runner.invoke(main, ["serve", str(SERVE_70B), "--plan", "engine=sglang,tp=8,quick_reduce=int4"])
    assert out.exit_code == 2 and "quick_reduce" in out.output and "Traceback" not in out.output
    js = json.loads(runner.invoke(main, ["serve", str(SERVE_70B), "--plan", "engine=sglang,tp=8", "--json"]).stdout)
    assert js["plan"]["quick_reduce"] == "none"
