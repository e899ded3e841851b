"""The cluster as a graph (networkx): which links a communication group crosses.

GPUs of one scale-up domain hang off one NVLink/xGMI switch (an NVL72 domain spans 18 four-GPU
trays: `scaleup_domain`, not `gpus_per_node`, decides); every GPU also has its own scale-out NIC
(rail-optimised fabrics, one NIC per GPU), and the NICs meet in the fabric. Edge attribute `gb_s`
is the spec bandwidth per GPU, one direction.

For a group of `size` ranks placed `stride` apart (rank order TP, CP, DP, PP as in comm.py), the
graph answers how many members share a scale-up domain and which link is the bottleneck of a ring
through them: the slowest edge on the paths between consecutive members. Groups are profiled on
a representative slice of the cluster (the ranks of one group starting at rank 0), so the graph
stays small even at 16,384 GPUs.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np


def _graph(domain: int, members: list[int], up_gb_s: float, out_gb_s: float):
    """The GPUs of one group, their scale-up switches, their NICs and the fabric."""
    import networkx as nx  # imported on first irregular group only: it costs ~0.13 s of start-up

    g = nx.Graph()
    for rank in members:
        g.add_edge(("gpu", rank), ("switch", rank // domain), gb_s=up_gb_s, kind="scaleup")
        g.add_edge(("gpu", rank), ("nic", rank), gb_s=out_gb_s, kind="scaleout")
        g.add_edge(("nic", rank), "fabric", gb_s=float("inf"), kind="fabric")
    return g


@lru_cache(maxsize=4096)
def group_profile(domain: int, up_gb_s: float, out_gb_s: float, size: int, stride: int) -> tuple[int, str]:
    """(members per scale-up domain, kind of the ring's bottleneck link: 'scaleup' or 'scaleout').

    The scale-up domains are the connected components of the graph without its scale-out edges;
    consecutive ring members in different components can only meet through their NICs and the
    fabric, so the ring's slowest hop is then a scale-out link."""
    if size <= 1:
        return 1, "scaleup"
    # Placement repeats every domain: the first domains' worth of members show the whole pattern.
    members = [i * stride for i in range(min(size, 2 * (domain // max(1, min(stride, domain)) + 1)))]
    g = _graph(domain, members, up_gb_s, out_gb_s)
    import networkx as nx

    up = g.edge_subgraph([(u, v) for u, v, k in g.edges(data="kind") if k == "scaleup"])
    comp = {n: i for i, c in enumerate(nx.connected_components(up)) for n in c}
    counts = np.bincount([comp[("gpu", r)] for r in members])
    per_domain = int(counts.max())
    crosses = int((counts > 0).sum()) > 1
    return per_domain, ("scaleout" if crosses else "scaleup")


class Group(NamedTuple):
    """A communication group of `size` ranks placed `stride` apart, profiled once (group): `k` members
    per scale-up domain, `crosses` True where its ring leaves the domain. The collectives of
    planner.estimate.comm take it, so a group used for several of them is profiled once."""

    size: Any
    k: Any
    crosses: Any


def group(node, size, stride) -> Group:
    """The Group of `size` ranks `stride` apart on `node`'s cluster (profile), `size` kept as given."""
    k, crosses = profile(node, size, stride)
    return Group(size, k, crosses)


def profile(node, size, stride):
    """Vectorised over plan-table arrays: (members per domain, True where the ring leaves its domain).
    A closed form covers regular placements (stride and domain dividing one another: every layout on
    nodes of 8 with power-of-two degrees); the graph (group_profile) the rest. tests/test_topology.py
    checks that both agree."""
    size, stride = np.broadcast_arrays(np.asarray(size, dtype=np.int64), np.asarray(stride, dtype=np.int64))
    d = node.domain
    k = np.where(stride >= d, 1, np.minimum(size, d // np.maximum(stride, 1)))
    k = np.where(size <= 1, 1, k)
    crosses = (size > 1) & ((stride >= d) | (size * stride > d))
    irregular = (size > 1) & ~(((stride >= d) & (stride % d == 0)) | ((stride < d) & (d % np.maximum(stride, 1) == 0)))
    if irregular.any():
        k, crosses = k.copy(), crosses.copy()
        keys = size[irregular] * (1 << 32) + stride[irregular]
        uniq, inverse = np.unique(keys, return_inverse=True)
        up, sc = float(node.scaleup_gb_s), float(node.scaleout_gb_s or 1e-9)
        res = [group_profile(d, up, sc, int(u >> 32), int(u & 0xFFFFFFFF)) for u in uniq]
        k[irregular] = np.array([r[0] for r in res])[inverse]
        crosses[irregular] = np.array([r[1] == "scaleout" for r in res])[inverse]
    return k, crosses
