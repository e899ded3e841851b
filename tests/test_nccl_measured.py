"""Serving collectives: NVIDIA's measured NCCL times at the message size, where each engine runs NCCL."""

import csv
from pathlib import Path

import numpy as np
import pytest

from planner import catalog
from planner.serve import engines as E
from planner.serve import nccl_measured as NM
from planner.serve import timing as T

CSV = Path(__file__).resolve().parent.parent / "catalogs" / "nccl_measured.csv"


def _row(gpu, op, g):
    rows = [r for r in csv.DictReader(CSV.open()) if (r["gpu"], r["op"], int(r["gpus"])) == (gpu, op, g)]
    return {int(r["bytes"]): float(r["latency_ms"]) * 1e-3 for r in rows}


CUSTOM = Path(__file__).resolve().parent.parent / "catalogs" / "custom_allreduce_measured.csv"


def _custom(gpu, engine, g):
    rows = [r for r in csv.DictReader(CUSTOM.open()) if (r["gpu"], r["engine"], int(r["gpus"])) == (gpu, engine, g)]
    return {int(r["bytes"]): float(r["latency_ms"]) * 1e-3 for r in rows}


def test_engines_own_all_reduce_below_the_floor():
    """Below its NCCL floor each engine's TP all-reduce takes its own kernel's measured time (vLLM / SGLang custom
    all-reduce, TensorRT-LLM's allreduce op); SGLang on an MoE model takes TensorRT-LLM's kernel (FlashInfer's
    all-reduce fusion); no table (MI300X board): the comm model."""
    node = catalog.node("hgx-h200")
    t = {"tp": np.array([8, 8, 8]), "engine": np.array([E.VLLM, E.SGLANG, E.TRTLLM])}
    b = 2 ** 18  # 256 KiB: a decode step's all-reduce, below every floor
    for moe, sg in ((False, "sglang"), (True, "trtllm")):
        c = T._cost(T.comm_links(node, t, 8192, moe)["all_reduce"], b)
        want = [_custom("h200", e, 8)[b] for e in ("vllm", sg, "trtllm")]
        assert np.allclose(c, want, rtol=0, atol=1e-12), (moe, c, want)
    # a small message costs less than the comm model's 10 us latency on H200 (one-shot kernels)
    lk = T.comm_links(node, t, 8192)
    assert (T._cost(lk["all_reduce"], 4096.0) < lk["all_reduce"][0]).all()
    mi = catalog.node("mi300x-8")
    lk = T.comm_links(mi, t, 8192)
    assert np.allclose(T._cost(lk["all_reduce"], b), lk["all_reduce"][0] + b * lk["all_reduce"][1])


def test_time_at_a_size_is_the_table():
    node = catalog.node("dgx-h100")
    meas = _row("h100", "all_gather", 8)
    rows = NM.measured_table(node, "all_gather", [8])
    for b, s in meas.items():
        assert abs(NM.interp_s(rows, b)[0] - s) <= 1e-12
    # between two measured sizes: between their times; bus bandwidth at 64 MiB as the table gives it
    mid = NM.interp_s(rows, 48 * NM.MIB)[0]
    assert meas[2 ** 25] < mid < meas[2 ** 26]
    busbw = 7 / 8 * 2 ** 26 / NM.interp_s(rows, 2 ** 26)[0]
    assert abs(busbw - 7 / 8 * 2 ** 26 / meas[2 ** 26]) < 1.0


def test_no_table_keeps_the_comm_model():
    for name, g in (("dgx-a100-80gb", 8), ("mi300x-8", 4), ("mi355x-8", 8), ("dgx-h100", 3), ("gb200-nvl72", 8)):
        assert np.isnan(NM.measured_table(catalog.node(name), "all_reduce", [g])).all(), name
    node = catalog.node("dgx-a100-80gb")
    t = {"tp": np.array([8]), "engine": np.array([E.TRTLLM])}
    lk = T.comm_links(node, t)
    b = 64e6
    assert abs(T._cost(lk["all_reduce"], b)[0] - (lk["all_reduce"][0] + b * lk["all_reduce"][1])[0]) < 1e-15


def test_b300_board_takes_b200_nccl_table_only():
    """HGX B300 (NVLink 5 through NVLink 5 switches, as DGX B200) takes DGX B200's NCCL tables (transfer);
    GB300 NVL72 takes its own (measured on an NVL72 rack), and the engines' own all-reduce kernels do not
    transfer."""
    b300 = NM.measured_table(catalog.node("hgx-b300"), "alltoall", [8])
    b200 = NM.measured_table(catalog.node("dgx-b200"), "alltoall", [8])
    assert not np.isnan(b300).any() and np.array_equal(b300, b200)
    gb300 = NM.measured_table(catalog.node("gb300-nvl72"), "alltoall", [4])[0]
    assert np.allclose(gb300, [_row("gb300", "alltoall", 4)[int(b)] for b in NM.GRID], rtol=0, atol=1e-12)
    assert NM.nccl_system(catalog.node("hgx-b300")) == "b200"
    assert "b300" not in NM.SYSTEMS  # custom all-reduce tables stay per GPU


def test_engine_nccl_floors():
    h100, b200 = catalog.node("dgx-h100"), catalog.node("dgx-b200")
    eng = np.array([E.TRTLLM, E.TRTLLM, E.VLLM, E.VLLM, E.SGLANG])
    tp = np.array([2, 8, 8, 2, 8])
    # TensorRT-LLM workspace bound 16 MB (2 ranks) / 8 MB; vLLM symm-mem bound (Hopper 64 MiB at 8 ranks,
    # Blackwell 8 MiB at 2 ranks); SGLang custom all-reduce 8 MiB
    assert NM.all_reduce_nccl_floor(h100, eng, tp).tolist() == [16e6, 8e6, 64 * 2 ** 20, 64 * 2 ** 20, 8 * 2 ** 20]
    assert NM.all_reduce_nccl_floor(b200, eng, tp).tolist() == [16e6, 8e6, 128 * 2 ** 20, 8 * 2 ** 20, 8 * 2 ** 20]
    assert NM.gather_is_nccl(np.array([E.TRTLLM, E.VLLM, E.SGLANG])).tolist() == [True, True, False]


def test_cost_switches_to_the_table_above_the_floor():
    node = catalog.node("dgx-h100")
    t = {"tp": np.array([2, 2]), "engine": np.array([E.TRTLLM, E.SGLANG])}
    lk = T.comm_links(node, t)
    ar, ag = lk["all_reduce"], lk["gather"]
    model = lambda link, b: link[0] + b * link[1]  # noqa: E731
    below, above = 15e6, 32 * 2 ** 20
    c = T._cost(ar, below)  # TensorRT-LLM's own kernels below 16 MB (measured); SGLang is in NCCL above 8 MiB
    own = _custom("h100", "trtllm", 2)
    lo, hi = 2 ** 23, 2 ** 24
    assert abs(c[0] - (own[lo] + (below - lo) * (own[hi] - own[lo]) / (hi - lo))) < 1e-12
    assert abs(c[1] - NM.interp_s(ar[2][1:], below)[0]) < 1e-15
    meas = _row("h100", "all_reduce", 2)[2 ** 25]
    assert np.allclose(T._cost(ar, above), meas)
    # the all-gather: measured for TensorRT-LLM at any size, the comm model for SGLang
    g = T._cost(ag, np.array([above, above]))
    assert abs(g[0] - _row("h100", "all_gather", 2)[2 ** 25]) < 1e-12 and abs(g[1] - model(ag, above)[1]) < 1e-15
    # NCCL at 32 MiB on 2 H100 is slower than the comm model's large-message rate (benchmarks/collective_results.md)
    assert g[0] > 1.3 * g[1]


def test_switch_off_is_the_comm_model():
    node = catalog.node("dgx-b200")
    t = {"tp": np.array([4]), "engine": np.array([E.TRTLLM])}
    lk = T.comm_links(node, t, measured=False)
    assert np.isnan(lk["gather"][2]).all() and not np.isnan(T.comm_links(node, t)["gather"][2]).all()
    assert np.allclose(T._cost(lk["gather"], 64e6), lk["gather"][0] + 64e6 * lk["gather"][1])


def test_trtllm_lookup_table_nccl_cells():
    h100, b200 = catalog.node("dgx-h100"), catalog.node("dgx-b200")
    trt = np.array([E.TRTLLM] * 3)
    tp = np.array([2, 4, 8])
    # hidden 8192, fused all-reduce + RMSNorm: Hopper TP8 from 64 tokens (1 MB), else the workspace bound
    f = NM.all_reduce_nccl_floor(h100, trt, tp, 8192)
    assert f[2] == 64 * 8192 * 2 - 1 and f[0] == 16e6 and f[1] == 8e6
    assert NM.all_reduce_nccl_floor(b200, trt, tp, 8192).tolist() == [16e6, 8e6, 8e6]
    # hidden 16384 (Llama-405B) lies outside the table: NCCL at every size
    assert (NM.all_reduce_nccl_floor(b200, trt, tp, 16384) == 0).all()
    # other engines ignore the hidden size
    assert NM.all_reduce_nccl_floor(h100, np.array([E.VLLM]), np.array([8]), 16384)[0] == 64 * 2 ** 20


def test_below_the_table_the_link_model_stays():
    """Under the smallest measured size the measured line is not extended toward 0 bytes (the time
    flattens to the collective's latency there): interp_s gives NaN, so the caller keeps the link model."""
    rows = NM.measured_table(catalog.node("dgx-h100"), "all_reduce", [2])
    assert np.isnan(NM.interp_s(rows, NM.GRID[0] / 16)[0])
    assert np.isfinite(NM.interp_s(rows, NM.GRID[0])[0])


def test_custom_tables_take_the_lower_non_decreasing_envelope():
    """TensorRT-LLM's all-reduce on 2 H100 measures 9.9 us at 16 KB and 3.4 us at 32 KB (its kernel choice
    switches): the table gives 16 KB the 32 KB time, each size the least time measured at it or above."""
    import csv
    import io

    from planner.catalog import catalog_file_text
    from planner.serve.nccl_measured import CUSTOM_GRID, custom_tables

    raw: dict = {}
    for r in csv.DictReader(io.StringIO(catalog_file_text("custom_allreduce_measured.csv")[0])):
        raw.setdefault((r["gpu"], r["engine"], int(r["gpus"])), {})[int(r["bytes"])] = float(r["latency_ms"]) * 1e-3
    tabs = custom_tables()
    row, measured = tabs[("h100", "trtllm", 2)], raw[("h100", "trtllm", 2)]
    at = list(CUSTOM_GRID).index(16384)
    assert measured[16384] > 2.5 * measured[32768]  # the dip is in the data
    assert row[at] == pytest.approx(measured[32768]) and row[at + 1] == pytest.approx(measured[32768])
    for key, row in tabs.items():
        times = np.array([raw[key][int(b)] for b in CUSTOM_GRID])
        assert np.all(np.diff(row) >= 0) and np.all(row <= times)
        assert row.tolist() == pytest.approx([times[i:].min() for i in range(len(times))])


def test_nvl72_racks_take_their_own_measured_tables():
    """GB200 NVL72: NVIDIA measured NCCL on 2 and 4 GPUs of the rack, so a TP4 all-reduce takes that time
    (TensorRT-LLM runs NCCL at every size for hidden 16,384, Llama-3.1-405B); 8 GPUs (not measured) and a
    GB200 GPU on another fabric keep the comm model."""
    node = catalog.node("gb200-nvl72")
    meas = _row("gb200", "all_reduce", 4)
    t = {"tp": np.array([4, 8]), "engine": np.array([E.TRTLLM, E.TRTLLM])}
    lk = T.comm_links(node, t, 16384)
    b = 2.0 ** 25
    cost = T._cost(lk["all_reduce"], b)
    assert abs(cost[0] - meas[int(b)]) < 1e-12
    model8 = lk["all_reduce"][0][1] + b * lk["all_reduce"][1][1]
    assert abs(cost[1] - model8) < 1e-15
    # the measured 32 MiB all-reduce on 4 GB200s is slower than the link model's (NVLink 5 spec x efficiency)
    model4 = lk["all_reduce"][0][0] + b * lk["all_reduce"][1][0]
    assert cost[0] > 1.2 * model4
    assert NM.nccl_system(node) == "gb200" and NM.MEASURED_DOMAIN["gb200"] == node.scaleup_domain
    board = type("Node", (), {"gpu": node.gpu, "gpus_per_node": 8, "scaleup_domain": 8})()
    assert np.isnan(NM.measured_table(board, "all_reduce", [4])).all()
