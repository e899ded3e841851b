"""The SMs NCCL's CTAs hold while an overlapped data-parallel collective runs
(planner.estimate.comm.nccl_sm_share): the compute beside the hidden traffic slows by that share."""

import pytest

from planner.catalog import gpu as catalog_gpu
from planner.estimate import comm, memory
from planner.estimate.evaluate import Context

from test_memory import plan_table, scenario


def _rt(sc, **kw):
    return sc.model_copy(update={"runtime": sc.runtime.model_copy(update=kw)})


def test_share_is_the_ctas_over_the_sms():
    sc = scenario(model="llama-3.1-8b", node="dgx-h100", nodes=2, seq=8192, gb=64)
    sms = catalog_gpu("h100-sxm-80gb").sm_count
    assert comm.nccl_sm_share(Context(_rt(sc, nccl_min_ctas=16))) == pytest.approx(16 / sms)
    assert comm.nccl_sm_share(Context(sc)) == 0.0  # NCCL picks the count from the topology: not modelled
    assert comm.nccl_sm_share(Context(_rt(sc, nccl_min_ctas=4 * sms))) == 1.0  # at most every SM


def test_hidden_traffic_costs_the_share_exposed_traffic_does_not():
    """Windows far longer than any traffic: DeepSpeed's ZeRO-1 hides all of it, so what shows is exactly the
    share of the hidden seconds; without overlap everything is exposed already and nothing is added."""
    sc = scenario(model="llama-3.1-8b", node="dgx-h100", nodes=2, seq=8192, gb=64)
    t = plan_table(sc, framework="deepspeed", mbs=1, zero=1, recompute="none")
    out = {}
    for ctas in (None, 16):
        s = _rt(sc, nccl_min_ctas=ctas)
        ctx = Context(s)
        out[ctas] = comm.dp_comm(ctx, t, memory.memory(ctx, t), 1e3, 1e3)
    assert out[None]["dp_comm"][0] == 0.0
    share = comm.nccl_sm_share(Context(_rt(sc, nccl_min_ctas=16)))
    assert out[16]["dp_comm"][0] == pytest.approx(share * out[16]["dp_total"][0])
    serial = {}
    for ctas in (None, 16):
        s = _rt(sc, nccl_min_ctas=ctas, dp_comm_overlap=False)
        ctx = Context(s)
        serial[ctas] = float(comm.dp_comm(ctx, t, memory.memory(ctx, t), 1e3, 1e3)["dp_comm"][0])
    assert serial[16] == serial[None] > 0.0


def test_the_edge_group_is_not_charged_twice():
    """Megatron's edge bucket group runs after the backward, beside no compute: with every other bucket
    hidden, the added time is the share of the traffic beyond what stays exposed."""
    sc = scenario(model="llama-3.1-8b", node="dgx-h100", nodes=2, seq=8192, gb=64)
    t = plan_table(sc, framework="megatron", mbs=1, zero=1, recompute="none")
    base_ctx, ctx = Context(sc), Context(_rt(sc, nccl_min_ctas=16))
    base = comm.dp_comm(base_ctx, t, memory.memory(base_ctx, t), 1e3, 1e3)
    new = comm.dp_comm(ctx, t, memory.memory(ctx, t), 1e3, 1e3)
    hidden = base["dp_total"][0] - base["dp_comm"][0]
    assert 0.0 < hidden < base["dp_total"][0]
    assert new["dp_comm"][0] - base["dp_comm"][0] == pytest.approx(comm.nccl_sm_share(ctx) * hidden)


@pytest.mark.parametrize("key", ["nccl_min_ctas", "moe_hybridep_num_sms"])
@pytest.mark.parametrize("bad", [True, 0, 16.5, "abc"])
def test_a_bad_cta_or_sm_count_exits_2_naming_the_key(tmp_path, key, bad):
    """YAML's true / yes is a boolean, not a count of one (planner.spec.base.Int refuses it); 0, fractions and
    text are refused too: exit 2 naming the file and the key, no traceback."""
    from click.testing import CliRunner

    from conftest import TINY_TRAIN, write_yaml
    from planner.cli import main

    p = write_yaml(tmp_path, {**TINY_TRAIN, "runtime": {key: bad}})
    r = CliRunner().invoke(main, ["solve", str(p)])
    assert r.exit_code == 2 and f"runtime.{key}" in r.output and str(p) in r.output, r.output
    assert "Traceback" not in r.output
