"""benchmarks/dsr1_decode_step_check.py: the measured MoE and MLA tables are read back exactly at their own entries
and interpolated between them."""

import csv

import pytest

import dsr1_decode_step_check as D  # noqa: E402


def test_moe_table_read_back_and_interpolated():
    rows = {int(r["tokens"]): float(r["latency_ms"]) for r in csv.DictReader(D.MOE.open())
            if r["gpu"] == "b200" and r["dtype"] == "nvfp4" and r["hidden"] == "7168" and r["experts"] == "256"
            and r["moe_tp"] == "1" and r["moe_ep"] == "4"}
    for t, v in rows.items():
        assert D.moe_layer_ms("b200", "nvfp4", 4, t) == pytest.approx(v)
    mid = D.moe_layer_ms("b200", "nvfp4", 4, 640)
    assert min(rows[256], rows[1024]) <= mid <= max(rows[256], rows[1024])
    assert D.moe_layer_ms("b200", "nvfp4", 4, 64) == pytest.approx(rows[256])  # held below the table


def test_mla_table_read_back_and_monotone():
    for r in csv.DictReader(D.MLA.open()):
        if r["gpu"] == "b200" and r["kv"] == "fp8":
            assert D.mla_layer_ms("b200", int(r["batch"]), int(r["kv_len"])) == pytest.approx(float(r["latency_ms"]))
    assert D.mla_layer_ms("b200", 64, 4096) < D.mla_layer_ms("b200", 96, 4096) < D.mla_layer_ms("b200", 256, 4096)
    assert D.mla_layer_ms("b200", 96, 4096) < D.mla_layer_ms("b200", 96, 5120) < D.mla_layer_ms("b200", 96, 8192)


def test_missing_rows_exit_cleanly():
    with pytest.raises(SystemExit):
        D.moe_layer_ms("b200", "nvfp4", 3, 256)
