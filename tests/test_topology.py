"""The cluster graph (networkx) and the vectorised closed form agree everywhere."""

from types import SimpleNamespace

import numpy as np
import pytest

from planner.estimate.topology import group_profile, profile


@pytest.mark.parametrize("domain", [4, 8, 72])
def test_vectorised_profile_matches_the_graph(domain):
    node = SimpleNamespace(domain=domain, scaleup_gb_s=450.0, scaleout_gb_s=50.0)
    sizes = np.array([1, 2, 3, 4, 6, 8, 16, 64])
    strides = np.array([1, 2, 3, 4, 8, 12, 16, 24, 72, 144])
    s, st = (a.ravel() for a in np.meshgrid(sizes, strides))
    k, crosses = profile(node, s, st)
    for i in range(len(s)):
        gk, kind = group_profile(domain, 450.0, 50.0, int(s[i]), int(st[i]))
        assert (k[i], crosses[i]) == (gk, kind == "scaleout"), (domain, s[i], st[i])


def test_irregular_placement_uses_the_graph():
    # Stride 3 in domains of 8: ranks 0,3,6 | 9,12,15 | ... -> 3 per domain at most, crossing domains.
    assert group_profile(8, 450.0, 50.0, 6, 3) == (3, "scaleout")
    assert group_profile(72, 900.0, 100.0, 18, 4) == (18, "scaleup")  # NVL72: 18 trays, one domain


def test_profile_of_scalar_groups():
    """A group given as scalars (topology.group(node, 8, 2)) is profiled as a one-element array."""
    node = SimpleNamespace(domain=8, scaleup_gb_s=450.0, scaleout_gb_s=50.0)
    for size, stride in [(8, 2), (2, 1), (np.int64(16), 1)]:
        k, crosses = profile(node, size, stride)
        want = profile(node, np.array([size]), np.array([stride]))
        assert (int(k), bool(crosses)) == (int(want[0][0]), bool(want[1][0]))
