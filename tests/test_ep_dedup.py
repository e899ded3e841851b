"""DeepEP / HybridEP dispatch: a token reaches each destination node and GPU once (planner.estimate.ep_dedup);
the expected distinct destinations match a Monte Carlo draw of the routing, the kernels' time follows the
README rates on the de-duplicated volume, and the plain all-to-all dispatcher is left as it was."""

import numpy as np
import pytest

from planner.estimate import comm, ep_dedup
from planner.estimate.evaluate import Context

from test_memory import plan_table, scenario
from test_moe_dispatch import _with


def _monte_carlo(experts, top_k, dests, groups, group_topk, n=20000, seed=1):
    """Draw routings as Megatron's group_limited_topk does with random scores (force load balancing): rank the
    groups by the sum of their top (top_k / group_topk) scores, keep group_topk of them, then take the top_k
    experts among those groups; count the distinct destinations hit, token by token."""
    rng = np.random.default_rng(seed)
    scores = rng.random((n, experts))
    if groups > 1:
        per = experts // groups
        gscore = np.sort(scores.reshape(n, groups, per), axis=2)[:, :, -(top_k // group_topk):].sum(axis=2)
        keep = np.argsort(-gscore, axis=1)[:, :group_topk]
        mask = np.zeros((n, groups), dtype=bool)
        np.put_along_axis(mask, keep, True, axis=1)
        scores = np.where(np.repeat(mask, per, axis=1), scores, -1.0)
    top = np.argsort(-scores, axis=1)[:, :top_k]
    dest = top // (experts // dests)
    return np.mean([len(set(row)) for row in dest])


@pytest.mark.parametrize("experts,top_k,dests,groups,group_topk", [
    (128, 8, 8, 1, 1),     # Qwen3-30B-A3B on EP8: GPUs
    (128, 8, 2, 1, 1),     # ... EP16 over two nodes: nodes
    (256, 8, 8, 8, 4),     # DeepSeek-V3 node-limited routing, 8 destinations of one group each
    (256, 8, 64, 8, 4),    # DeepSeek-V3 EP64: GPUs inside a group
    (256, 8, 4, 8, 4),     # two groups per destination
])
def test_distinct_destinations_match_a_monte_carlo_draw(experts, top_k, dests, groups, group_topk):
    exact = ep_dedup.distinct_destinations(experts, top_k, dests, groups, group_topk)
    assert exact == pytest.approx(_monte_carlo(experts, top_k, dests, groups, group_topk), rel=0.015)
    assert 1.0 <= exact <= min(top_k, dests)


def _dispatch(sc, plan):
    t = plan_table(sc, **plan)
    return float(comm.ep_dispatch_s(Context(sc), t)[0]), t


DSV3_PLAN = dict(framework="megatron", precision="bf16", tp=1, pp=16, dp=64, ep=64, recompute="full", mbs=1)


def test_deepep_over_eight_nodes_sends_each_token_once_per_node_at_the_readme_rate():
    """DeepSeek-V3 (top-8, 4 of 8 node groups) on 1,024 H100, EP64 = 8 nodes of one group each: each token
    reaches at most 4 nodes (own included: the README's definition), nearly always 4 (the kept groups' best
    experts win), at DeepEP's EP64 rate (51 / 50 GB/s on 400G CX7, harmonic mean 50.5):
    4,096 tokens x 7,168 x 2 bytes x nodes / 50.5 GB/s + 30 us. The NVLink stage (~7.5 GPUs at 0.775 x
    450 GB/s) is faster here."""
    sc = _with(scenario(model="deepseek-v3", nodes=128, gb=4096), moe_dispatcher="deepep")
    got, _ = _dispatch(sc, DSV3_PLAN)
    nodes = ep_dedup.distinct_destinations(256, 8, 8, 8, 4)
    assert 3.5 < nodes <= 4.0
    want = 30e-6 + 4096 * 7168 * 2 * nodes / (2 / (1 / 51 + 1 / 50) * 1e9)
    assert got == pytest.approx(want, rel=1e-9)
    # the all-to-all dispatcher on the same plan sends 7 of its 8 routed copies over the NICs (at 47 GB/s)
    plain, _ = _dispatch(_with(sc, moe_dispatcher="alltoall"), DSV3_PLAN)
    assert plain > 1.5 * got


def test_alltoall_dispatcher_is_unchanged_and_torchtitan_ignores_the_flex_backend():
    """The de-duplication applies to Megatron's flex dispatcher only: alltoall keeps ep_all_to_all_s, and a
    torchtitan plan under moe_dispatcher hybridep keeps the all-to-all of its routed copies."""
    base = scenario(model="qwen3-30b-a3b", nodes=2, gb=64)
    plan = dict(framework="megatron", precision="bf16", tp=1, pp=1, dp=16, ep=16, recompute="none", mbs=1)
    got, t = _dispatch(base, plan)
    tokens = 4096
    assert got == pytest.approx(float(comm.ep_all_to_all_s(Context(base), t, 2.0 * tokens * 8 * 2048)[0]))
    hyb = _with(base, moe_dispatcher="hybridep")
    assert _dispatch(hyb, plan)[0] < got / 2  # ~2 nodes of 2 (own included) at 54 GB/s vs 4 remote copies at 47
    titan = dict(plan, framework="torchtitan", zero=3)
    assert _dispatch(hyb, titan)[0] == pytest.approx(_dispatch(base, titan)[0])


def test_unmeasured_link_falls_back_to_the_link_model_on_wire_copies():
    """HybridEP was not measured on Hopper NVLink: EP8 on one H100 node carries D_gpus x 7/8 copies per
    token at the node's NVLink rate (450 x 0.82 GB/s)."""
    sc = _with(scenario(model="qwen3-30b-a3b", nodes=2, gb=64), moe_dispatcher="hybridep")
    got, _ = _dispatch(sc, dict(framework="megatron", precision="bf16", tp=1, pp=1, dp=16, ep=8,
                                recompute="none", mbs=1))
    d = ep_dedup.distinct_destinations(128, 8, 8)
    assert got == pytest.approx(10e-6 + d * 7 / 8 * 4096 * 2048 * 2 / (450e9 * 0.82), rel=1e-9)


def test_ep_group_larger_than_a_domain_but_not_a_multiple_spans_every_domain_it_touches():
    """HybridEP, DeepSeek-V3 on GB200 NVL72, EP128: 72 + 56 ranks in two NVLink domains, so a token reaches
    ~2 domains over RDMA (own included), at HybridEP's EP64 kernel rate with 16 SMs (Megatron-Core's default;
    49.97 / 49.77 GB/s on 400G CX7, the table's last row; GB200's NIC is 50 GB/s per GPU as well). The RDMA
    stage is the slower one here."""
    sc = _with(scenario(model="deepseek-v3", node="gb200-nvl72", nodes=512, gb=4096), moe_dispatcher="hybridep")
    got, _ = _dispatch(sc, dict(DSV3_PLAN, dp=128, ep=128))
    nodes = ep_dedup.distinct_destinations(256, 8, 2, 8, 4)
    assert 1.9 < nodes <= 2.0
    assert got == pytest.approx(30e-6 + 4096 * 7168 * 2 * nodes / (2 / (1 / 49.97 + 1 / 49.77) * 1e9), rel=1e-9)


def test_flex_dispatcher_with_expert_tp_sends_to_every_expert_tp_rank_of_the_tp_ep_group():
    """Megatron-Core's flex dispatcher runs over the TPxEP group (tp_ep_group) with the routing map widened to
    each destination's etp ranks, and adds no expert-TP all-gather: Qwen3-30B-A3B, EP4 x ETP2 on one H100
    node reaches 2 x E[distinct EP ranks of 4] GPUs per token, at DeepEP's intranode rate (153 / 158 GB/s of
    H800's 200, scaled to H100's 450) + 10 us."""
    sc = _with(scenario(model="qwen3-30b-a3b", nodes=1, gb=64), moe_dispatcher="deepep")
    got, _ = _dispatch(sc, dict(framework="megatron", precision="bf16", tp=1, pp=1, dp=8, ep=4, etp=2,
                                recompute="none", mbs=1))
    gpus = 2 * ep_dedup.distinct_destinations(128, 8, 4)
    rate = 2 / (1 / 153 + 1 / 158) / 200 * 450e9
    assert got == pytest.approx(10e-6 + gpus * 4096 * 2048 * 2 / rate, rel=1e-9)


def test_hybridep_in_one_nvl72_domain_runs_at_the_kernel_rate_of_its_sm_count():
    """HybridEP inside one GB200 NVL72 domain (DeepSeek-V3, EP32): Megatron-Core calls dispatch_with_permute,
    whose permute reads HybridEP's receive buffer (no device-to-device copy: the README's "Kernel Only"
    columns). 16 SMs (Megatron-Core's default): 629.79 / 547.25 GB/s at 32 ranks; 32 SMs (Megatron-Bridge's
    recipes): 642.23 / 605.15; 24 SMs take the 16-SM row (the most SMs measured, not above the setting).
    Volume: 4,096 tokens x 7,168 x 2 bytes x E[distinct GPUs] (own included) + 10 us."""
    base = _with(scenario(model="deepseek-v3", node="gb200-nvl72", nodes=64, gb=4096), moe_dispatcher="hybridep")
    plan = dict(DSV3_PLAN, pp=8, dp=32, ep=32)
    gpus = ep_dedup.distinct_destinations(256, 8, 32, 8, 4)
    vol = 4096 * 7168 * 2 * gpus
    for sms, (d, c) in ((16, (629.79, 547.25)), (24, (629.79, 547.25)), (32, (642.23, 605.15))):
        got, _ = _dispatch(_with(base, moe_hybridep_num_sms=sms), plan)
        assert got == pytest.approx(10e-6 + vol / (2 / (1 / d + 1 / c) * 1e9), rel=1e-9)
    # the README's Torch API columns (dispatch kernel + copy out of the buffer), not used: 485.50 / 423.19
    torch_api = 10e-6 + vol / (2 / (1 / 485.50 + 1 / 423.19) * 1e9)
    assert _dispatch(base, plan)[0] < 0.8 * torch_api
