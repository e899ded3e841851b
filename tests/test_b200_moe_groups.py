"""benchmarks/b200_moe_groups.py: the groups it says leave a node are the ones whose ranks sit on several 8-GPU
nodes (checked by rank arithmetic here), its NIC-bound seconds are the step terms of those groups, and its two
growth factors hold the missing time by construction."""

import pytest
import yaml

from conftest import ROOT


def _runs():
    return {r["id"]: r for r in yaml.safe_load((ROOT / "benchmarks" / "recipe_runs.yaml").read_text())}


def _module():
    import b200_moe_groups

    return b200_moe_groups


def test_dgx_b200_deepseek_pp16_keeps_ep_on_the_board_and_sends_pp_over_the_nics():
    mod = _module()
    run = _runs()["mbridge26.04-b200-fp8mx-dsv3-256gpu"]  # tp1 cp1 dp16 pp16 ep8, 256 GPUs on 8-GPU nodes
    d = mod.analyse(run)
    g = d["groups"]
    # rank order TP, CP, DP, PP (tp = cp = 1): EP = ranks 0..7, PP = ranks 0, 16, 32, ..., DP = ranks 0..15
    node = lambda rank: rank // 8  # noqa: E731
    assert {node(r) for r in range(8)} == {0} and g["EP"] == (8, 8, False)
    assert len({node(16 * i) for i in range(16)}) == 16 and g["PP"][0] == 16 and g["PP"][2]
    assert len({node(r) for r in range(16)}) == 2 and g["DP"] == (16, 8, True)
    assert g["EDP"][0] == 2 and g["EDP"][2]  # expert data parallel: ranks 0 and 8, two nodes
    # NIC-bound seconds are the step's pp + dp terms (EP does not cross), and the factor holds the missing time
    import calibration_runs

    _, _, _, r, _ = calibration_runs.estimated(run)
    terms = r["time"]["breakdown_s"]
    assert d["nic_s"] == pytest.approx(terms["pp_comm"] + terms["dp_comm"])
    assert d["nic_x"] * d["nic_s"] == pytest.approx(d["nic_s"] + d["missing"])
    assert d["missing"] == pytest.approx(d["published_step"] - d["step"])
    # balanced routing: 8 ranks x 4,096 tokens x top-8 over 256 experts = 1,024 rows for each of 32 local experts
    assert d["local_experts"] == 32 and d["rows_per_expert"] == pytest.approx(1024)
    assert (d["gpu_ms"] + d["missing_layer_ms"]) == pytest.approx(d["host_x"] * d["host_ms"])


def test_single_node_row_has_no_nic_bound_term():
    d = _module().analyse(_runs()["mbridge26.04-b200-fp8mx-qwen3-30b-8gpu"])  # 8 GPUs, ep8 dp8
    assert not any(crosses for _, _, crosses in d["groups"].values())
    assert d["nic_s"] == 0 and d["nic_x"] is None


def test_render_marks_known_regressions_and_leaves_them_out_of_the_means():
    mod = _module()
    runs = _runs()
    data = [mod.analyse(runs[i]) for i in ("mbridge26.02-b200-fp8mx-qwen3-30b-8gpu",
                                           "mbridge26.04-b200-fp8mx-qwen3-30b-8gpu")]
    text = mod.render(data, {"mbridge26.02-b200-fp8mx-qwen3-30b-8gpu"})
    assert "| mbridge26.02-b200-fp8mx-qwen3-30b-8gpu* |" in text
    summary = [line for line in text.splitlines() if line.startswith("| Qwen3-30B-A3B | dgx-b200 |")]
    assert len(summary) == 1 and f"{100 * data[1]['error']:+.1f}%" in summary[0] and "| 1 |" in summary[0]
