"""The cluster graph (networkx) and the closed form agree wherever the closed form applies."""

import itertools

import pytest

from planner.estimate.topology import group_profile, regular_profile


@pytest.mark.parametrize("domain", [4, 8, 72])
def test_graph_and_closed_form_agree(domain):
    checked = 0
    for size, stride in itertools.product([1, 2, 3, 4, 8, 16, 64], [1, 2, 3, 4, 8, 16, 24, 72, 144]):
        closed = regular_profile(domain, size, stride)
        if closed is not None:
            assert group_profile(domain, 450.0, 50.0, size, stride) == closed, (size, stride)
            checked += 1
    assert checked > 20


def test_irregular_placement_uses_the_graph():
    # Stride 3 in domains of 8: ranks 0,3,6 | 9,12,15 | ... -> 3 per domain at most, crossing domains.
    assert regular_profile(8, 6, 3) is None
    assert group_profile(8, 450.0, 50.0, 6, 3) == (3, "scaleout")
    assert group_profile(72, 900.0, 100.0, 18, 4) == (18, "scaleup")  # NVL72: 18 trays, one domain


def test_vectorised_profile_matches_the_graph():
    import numpy as np

    from planner import catalog
    from planner.estimate.topology import profile

    node = catalog.node("dgx-h100")
    sizes = np.array([1, 2, 3, 4, 6, 8, 16, 64])
    strides = np.array([1, 2, 3, 4, 8, 12, 16, 24])
    s, st = (a.ravel() for a in np.meshgrid(sizes, strides))
    k, crosses = profile(node, s, st)
    for i in range(len(s)):
        gk, kind = group_profile(8, 450.0, 50.0, int(s[i]), int(st[i]))
        assert (k[i], crosses[i]) == (gk, kind == "scaleout"), (s[i], st[i])
