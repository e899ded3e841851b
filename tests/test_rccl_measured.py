"""Serving collectives on AMD boards: AMD's measured RCCL all-reduce on 8 x MI300X (catalogs/rccl_measured.csv),
used where the engine leaves its custom all-reduce for RCCL."""

import csv
from pathlib import Path

import numpy as np

from planner import catalog
from planner.serve import engines as E
from planner.serve import nccl_measured as NM
from planner.serve import timing as T

CSV = Path(__file__).resolve().parent.parent / "catalogs" / "rccl_measured.csv"
MIB = 2 ** 20


def _rows():
    return {int(r["bytes"]): float(r["latency_ms"]) * 1e-3 for r in csv.DictReader(CSV.open())
            if (r["gpu"], r["op"], int(r["gpus"])) == ("mi300x", "all_reduce", 8)}


def test_reader_gives_the_published_rows_on_the_mesh_board():
    meas = _rows()
    assert sorted(meas) == [int(b) for b in NM.GRID]
    for name in ("mi300x-8", "mi325x-8"):  # MI325X: same UBB xGMI board, transferred
        rows = NM.measured_table(catalog.node(name), "all_reduce", [8])
        assert np.array_equal(rows[0], [meas[int(b)] for b in NM.GRID]), name
        for b, s in meas.items():
            assert abs(NM.interp_s(rows, b)[0] - s) < 1e-15
    # group sizes not measured, other ops, the faster MI355X mesh, and an MI300X node that is not the 7-link mesh
    mi = catalog.node("mi300x-8")
    assert np.isnan(NM.measured_table(mi, "all_reduce", [2, 4])).all()
    assert np.isnan(NM.measured_table(mi, "all_gather", [8])).all()
    assert np.isnan(NM.measured_table(catalog.node("mi355x-8"), "all_reduce", [8])).all()
    switched = mi.model_copy(update={"scaleup_mesh_links": None})
    assert np.isnan(NM.measured_table(switched, "all_reduce", [8])).all()


def test_vllm_tp8_on_mi300x_runs_rccl_only_above_its_custom_all_reduce():
    """vLLM's TP8 all-reduce on 8 MI300X: its custom all-reduce (no published 8-GPU table: the link model) up to
    8 MiB, RCCL's measured time above (the offline rows' 52 MB decode messages)."""
    mi = catalog.node("mi300x-8")
    t = {"tp": np.array([8]), "engine": np.array([E.VLLM])}
    ar = T.comm_links(mi, t, 8192)["all_reduce"]
    model = lambda b: ar[0] + b * ar[1]  # noqa: E731
    assert NM.all_reduce_nccl_floor(mi, t["engine"], t["tp"], 8192)[0] == 8 * MIB
    small = 2 * MIB  # 128 sequences x 8192 x 2 B: a latency row's decode message
    assert np.allclose(T._cost(ar, small), model(small), rtol=0, atol=1e-15)
    big = 3200 * 8192 * 2.0
    meas = _rows()
    lo, hi = 32 * MIB, 64 * MIB
    want = meas[lo] + (big - lo) * (meas[hi] - meas[lo]) / (hi - lo)
    assert abs(T._cost(ar, big)[0] - want) < 1e-12
    assert T._cost(ar, big)[0] > 1.1 * model(big)[0]  # RCCL at 52 MB is slower than the link model


def test_sglang_on_rocm_keeps_its_custom_all_reduce_to_16_mib():
    """SGLang's custom all-reduce stops at 8 MiB on CUDA, 16 MiB on ROCm: a 12 MiB message on 8 MI300X stays in
    the custom kernel (link model), a 24 MiB one takes RCCL's measured time."""
    mi, h100 = catalog.node("mi300x-8"), catalog.node("dgx-h100")
    eng, tp = np.array([E.SGLANG]), np.array([8])
    assert NM.all_reduce_nccl_floor(mi, eng, tp)[0] == 16 * MIB
    assert NM.all_reduce_nccl_floor(h100, eng, tp)[0] == 8 * MIB
    ar = T.comm_links(mi, {"tp": tp, "engine": eng}, 7168)["all_reduce"]
    b = 12 * MIB
    assert np.allclose(T._cost(ar, b), ar[0] + b * ar[1], rtol=0, atol=1e-15)
    b = 24 * MIB
    assert abs(T._cost(ar, b)[0] - NM.interp_s(ar[2], b)[0]) < 1e-15 and not np.isnan(ar[2]).any()
