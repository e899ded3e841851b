"""DeepEP / HybridEP token dispatch and combine: de-duplicated volumes at the kernels' measured rates.

Megatron-Core's flex dispatcher (--moe-token-dispatcher-type flex, backend deepep or hybridep) does not run an
all-to-all of routed copies. DeepEP's normal kernels send each token ONCE to every destination node that holds
one of its experts (over RDMA, to the rank with the same local index there) and that rank forwards it over
NVLink ONCE to every destination GPU of its node ("normal kernels with NVLink and RDMA forwarding", DeepEP
README / docs/legacy.md; DeepSeek-V3 technical report Sec. 3.2.2); HybridEP does the same with TMA copies
(DeepEP branch hybrid-ep, docs/README_Hybrid-EP.md, "Hierarchical Communication Design"). The local experts of
one GPU receive one copy of a token, not one per expert. So a rank's volume is tokens x E[distinct destination
nodes] on the NICs and tokens x E[distinct destination GPUs] on NVLink, not tokens x top_k.

Both READMEs measure "algorithm bandwidth" on exactly these de-duplicated volumes, counting the copies that stay
on the own node (RDMA) or the own GPU (NVLink) too (DeepEP tests/test_internode.py: num_rdma_token_sent over
every destination node, recv_x.numel() of the received tokens; HybridEP tests/utils.py
count_rdma_send_from_routing_map: "To align with the implementation in the DeepEP, we do not set the local node
map to zeros"). The time of one dispatch (or combine) is therefore modelled on the same definition:
    t = alpha + max(T x D_nodes x bytes / R_rdma, T x D_gpus x bytes / R_nvl)
with T the rank's tokens, D the expected distinct destinations per token (own included) and R the measured
rate at the nearest measured EP size (clamped to the table's ends; HybridEP: in the row of its SM count,
runtime.moe_hybridep_num_sms, sm_table), as a fraction of the measuring system's link spec times this node's
spec. Where a kernel has no measured rate on a link (HybridEP on Hopper NVLink, GPUs the READMEs did not test)
the link model's rate (comm._rates) carries the de-duplicated copies that leave the
GPU / node: D_gpus x (k - 1) / k on NVLink and D_nodes x (m - 1) / m on the NICs (k GPUs per domain, m domains).
"""

from __future__ import annotations

from functools import lru_cache
from math import comb

import numpy as np

# Measured rates, GB/s of algorithm bandwidth (dispatch, combine), keyed by EP ranks, with the spec link rate
# of the measuring system (GB/s, one direction) that turns them into fractions of a link.
# DeepEP normal kernels (V1, the API Megatron-Core's fused_a2a.py calls), H800 with one ConnectX-7 400 Gb/s NIC
# per GPU; DeepSeek-V3 shape (4,096 tokens, hidden 7,168, top-8 of 256, 4 of the node groups), FP8 dispatch,
# BF16 combine: deepseek-ai/DeepEP docs/legacy.md (README of V1), "Normal kernels with NVLink and RDMA forwarding".
DEEPEP_RDMA = {"spec_gb_s": 50.0, "rates": {16: (43.0, 43.0), 32: (58.0, 57.0), 64: (51.0, 50.0)}}
# same table, intranode row; H800 NVLink is 200 GB/s per direction (400 GB/s bidirectional; catalogs/nodes.yaml
# hgx-h800). Cross-check: on H20 (NVLink 450 GB/s) the same test reached 337 GB/s (DeepEP issue #16), 0.75 of
# 450 against 0.77 here.
DEEPEP_NVL_HOPPER = {"spec_gb_s": 200.0, "rates": {8: (153.0, 158.0)}}
# DeepEP on GB200 NVL72 (NVLink 900 GB/s), Torch API, 16 SMs (Megatron-Core's moe_deepep_num_sms default is 20;
# the table has 16 and 24), BF16 dispatch: DeepEP branch hybrid-ep, docs/README_Hybrid-EP.md, "GB200 Platform",
# "DeepEP Performance Results". Its B200 8-rank row (348 / 302 GB/s) is within 4% of the GB200 8-rank one.
DEEPEP_NVL_BLACKWELL = {"spec_gb_s": 900.0, "rates": {8: (362.01, 310.21), 16: (328.80, 278.34),
                                                      24: (324.64, 126.53)}}
# HybridEP: the "Kernel Only" columns of docs/README_Hybrid-EP.md (DeepEP branch hybrid-ep, tables added in
# 7febc6e, 2026-02), keyed by the kernels' SM count (Megatron-Core --moe-hybridep-num-sms, runtime
# moe_hybridep_num_sms). Megatron-Core calls HybridEP through dispatch_with_permute / combine_with_unpermute
# (megatron/core/transformer/moe/fused_a2a.py, HybridEPDispatch / HybridEPCombine: "permute + dispatch a2a +
# permute"): the permute kernel reads the tokens straight out of HybridEP's receive buffer, so no separate
# device-to-device copy runs (NVIDIA's DeepSeek-V3 GB200 write-up, Megatron-LM docs/discussions/
# deepseek-v3-gb200-optimization Sec. 2.5: the copy, "about 10%-20% of the communication time", is fused into
# the permute). The README's "Torch API" columns time the plain dispatch() call ("dispatch = dispatch_kernel +
# d2d + misc", tests/test_hybrid_ep.py); the permutation and its bytes are counted by the planner on their own
# (compute_moe.permutation_bytes_per_token), so the kernel time is the communication term here.
# H100 with ConnectX-7 400 Gb/s, BF16 dispatch, uniform random top-8 routing over 8 local experts per rank:
# "H100 Platform" (SM counts 4 / 8 / 16).
HYBRIDEP_RDMA = {"spec_gb_s": 50.0, "sms": {
    4: {16: (44.40, 52.00), 32: (52.60, 51.00), 64: (48.00, 46.00)},
    8: {16: (76.80, 68.00), 32: (54.50, 56.40), 64: (50.55, 51.03)},
    16: {16: (71.71, 62.95), 32: (57.69, 57.46), 64: (49.97, 49.77)}}}
# GB200 NVL72, BF16 dispatch: "GB200 Platform" (SM counts 16 / 32). Its B200 8-rank row ("B200 Platform",
# 16 SMs, kernel only: 734.95 / 673.84 GB/s) is within 2% of the GB200 8-rank one.
HYBRIDEP_NVL_BLACKWELL = {"spec_gb_s": 900.0, "sms": {
    16: {8: (750.15, 684.27), 16: (661.93, 600.75), 24: (637.80, 565.53), 32: (629.79, 547.25),
         36: (612.85, 543.27)},
    32: {8: (764.03, 737.13), 16: (706.95, 666.26), 24: (665.97, 639.80), 32: (642.23, 605.15),
         36: (632.31, 596.99)}}}

# (backend, link) -> {compute-capability major: table}; RDMA tables are NIC-bound, used for every GPU.
MEASURED = {("deepep", "rdma"): {None: DEEPEP_RDMA}, ("hybridep", "rdma"): {None: HYBRIDEP_RDMA},
            ("deepep", "nvl"): {9: DEEPEP_NVL_HOPPER, 10: DEEPEP_NVL_BLACKWELL},
            ("hybridep", "nvl"): {10: HYBRIDEP_NVL_BLACKWELL}}


# Tokens drawn for the expectation under group-limited routing (distinct_destinations): a standard error of
# about 0.3% of the result (per-token spread < 1 destination).
ROUTING_DRAWS = 4096


@lru_cache(maxsize=4096)
def distinct_destinations(experts: int, top_k: int, dests: int, groups: int = 1, group_topk: int = 1) -> float:
    """Expected number of distinct destinations (GPUs or nodes, `dests` of them, each holding experts / dests
    consecutive experts) among a token's top_k experts, with independent random router scores (Megatron
    --moe-router-force-load-balancing draws random logits; benchmarks run with it).
    Unrestricted routing, every top_k subset alike: exactly dests x (1 - C(E - E/dests, k) / C(E, k)).
    Group-limited routing (DeepSeek-V3: n_group 8, topk_group 4; Megatron --moe-router-num-groups /
    --moe-router-group-topk): Megatron-Core's group_limited_topk (megatron/core/transformer/moe/moe_utils.py)
    scores each group by the sum of its top (top_k / group_topk) expert scores, keeps the group_topk best
    groups and takes the top_k experts among them. The chosen groups' best experts win, so a token spreads
    over more groups than a uniform draw from the kept ones would give; no closed form: the mean over
    ROUTING_DRAWS tokens with fixed seed."""
    e, k, d = int(experts), int(top_k), max(1, int(dests))
    if d == 1:
        return 1.0
    if groups <= 1 or group_topk >= groups or e % groups or e % d:
        return d * (1.0 - comb(e - e // d, k) / comb(e, k))
    chosen = _group_limited_experts(e, k, int(groups), int(group_topk))
    hit = np.zeros((ROUTING_DRAWS, d), dtype=bool)
    np.put_along_axis(hit, chosen // (e // d), True, axis=1)
    return float(hit.sum(axis=1).mean())


@lru_cache(maxsize=64)
def _group_limited_experts(e: int, k: int, g: int, m: int) -> np.ndarray:
    """The top_k experts of ROUTING_DRAWS tokens with random scores under Megatron-Core's group_limited_topk
    (drawn once per model, shared by every destination count)."""
    scores = np.random.default_rng(0).random((ROUTING_DRAWS, g, e // g))
    per = max(1, k // m)
    top = np.partition(scores, e // g - per, axis=2)[:, :, -per:].sum(axis=2)
    dropped = np.argsort(top, axis=1)[:, : g - m]
    np.put_along_axis(scores, dropped[:, :, None], -1.0, axis=1)
    return np.argpartition(scores.reshape(ROUTING_DRAWS, e), e - k, axis=1)[:, e - k:]


def _distinct(moe, dests):
    """distinct_destinations over an array of destination counts (computed once per count present)."""
    dests = np.asarray(dests, dtype=np.int64)
    lookup = np.zeros(int(dests.max(initial=1)) + 1)
    for u in np.flatnonzero(np.bincount(dests.ravel())):
        lookup[u] = distinct_destinations(moe.experts, moe.top_k, int(u), moe.groups or 1, moe.group_topk or 1)
    return lookup[dests]


def sm_table(table: dict, num_sms: int) -> dict:
    """{ranks: (dispatch, combine)} of a measured table: tables keyed by SM count ("sms") give the row
    measured with the most SMs not above `num_sms` (the fewest measured when all are above)."""
    if "sms" not in table:
        return table["rates"]
    counts = sorted(table["sms"])
    return table["sms"][max([c for c in counts if c <= num_sms] or counts[:1])]


def measured_rate(node, backend: str, link: str, ranks, num_sms: int = 16):
    """Bytes/s of one dispatch + one combine (their harmonic mean) on `link` ('rdma' or 'nvl') at `ranks`
    EP ranks, as the measured fraction of the measuring system's spec link times this node's spec (NIC:
    scaleout_gb_s; NVLink: scaleup_gb_s); nearest measured EP size below (the smallest above when none is);
    with `num_sms` SMs where the table has rows per SM count (sm_table); NaN where the kernel was not
    measured on this GPU generation."""
    ranks = np.asarray(ranks, dtype=float)
    by_arch = MEASURED.get((backend, link), {})
    cc = getattr(node.gpu, "compute_capability", None) if getattr(node.gpu, "vendor", "nvidia") == "nvidia" else None
    table = by_arch.get(None) or (by_arch.get(int(cc)) if cc else None)
    spec = node.scaleout_gb_s if link == "rdma" else node.scaleup_gb_s
    if table is None or not spec:
        return np.full(ranks.shape, np.nan)
    rows = sm_table(table, num_sms)
    sizes = np.array(sorted(rows), dtype=float)
    rates = np.array([2.0 / (1.0 / rows[int(r)][0] + 1.0 / rows[int(r)][1]) for r in sizes])
    i = np.clip(np.searchsorted(sizes, ranks, side="right") - 1, 0, len(sizes) - 1)
    return rates[i] / table["spec_gb_s"] * spec * 1e9


def dedup_dispatch_s(ctx, t, tokens, bytes_per_token):
    """Seconds of one DeepEP / HybridEP dispatch (or combine) of `tokens` tokens per rank of
    `bytes_per_token` bytes: the slower of its RDMA and NVLink stages, which the kernels pipeline (module
    docstring). Megatron-Core's MoEFlexTokenDispatcher runs them over the TPxEP group (tp_ep_group: the
    ep x etp consecutive ranks of the expert grid) and widens the routing map to every expert-TP rank of
    each destination (_initialize_metadata), so a token reaches etp x E[distinct EP ranks] GPUs and no
    separate expert-TP all-gather / reduce-scatter follows (comm.ep_dispatch_s)."""
    from planner.estimate import comm, topology

    node, moe, backend = ctx.node, ctx.model.moe, ctx.scenario.runtime.moe_dispatcher
    ep, etp = np.asarray(t["ep"]), np.asarray(t["etp"])
    size = ep * etp
    k, crosses = topology.profile(node, size, 1)
    domains = np.maximum(1, -(-size // np.maximum(k, 1)))  # ceil: 128 ranks on 72-GPU domains span 2
    d_gpus, d_nodes = etp * _distinct(moe, ep), _distinct(moe, domains)
    up, out = comm._rates(node)
    vol = tokens * bytes_per_token
    sms = ctx.scenario.runtime.moe_hybridep_num_sms
    r_nvl, r_rdma = measured_rate(node, backend, "nvl", k, sms), measured_rate(node, backend, "rdma", size, sms)
    nvl = np.where(np.isnan(r_nvl), d_gpus * (k - 1) / np.maximum(k, 1) * vol / (up * comm.mesh_share(node, k)),
                   d_gpus * vol / np.nan_to_num(r_nvl, nan=1.0))
    rdma = np.where(np.isnan(r_rdma), d_nodes * (domains - 1) / domains * vol / out,
                    d_nodes * vol / np.nan_to_num(r_rdma, nan=1.0))
    alpha = np.where(crosses, comm.ALPHA_OUT_S, comm.ALPHA_IN_S)
    return np.where(size > 1, alpha + np.maximum(nvl, np.where(crosses, rdma, 0.0)), 0.0)

