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


def test_kept_profiles_are_those_of_their_own_arguments():
    """profile keeps its last results per node and argument objects: a repeated call returns them
    (read-only), and other arrays, even equal in shape, other scalars or another node get their own."""
    from planner.estimate.topology import RECENT_KEPT, _profile

    node = SimpleNamespace(domain=8, scaleup_gb_s=450.0, scaleout_gb_s=50.0)
    other = SimpleNamespace(domain=4, scaleup_gb_s=450.0, scaleout_gb_s=50.0)
    sizes = np.array([1, 2, 4, 8, 16, 6])
    k, crosses = profile(node, sizes, 1)
    again = profile(node, sizes, 1)
    assert again[0] is k and again[1] is crosses
    assert not k.flags.writeable and not crosses.flags.writeable
    for args in [(node, sizes[::-1].copy(), 1), (node, sizes, 2), (other, sizes, 1), (node, sizes, np.int64(4)),
                 (node, sizes.astype(np.int8), sizes)]:
        got, want = profile(*args), _profile(*args)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), args
    for i in range(RECENT_KEPT + 1):  # the oldest results are dropped, then computed again
        profile(node, sizes + i, 1)
    fresh = profile(node, sizes, 1)
    assert fresh[0] is not k and np.array_equal(fresh[0], k)


def test_profile_of_scalar_groups():
    """A group given as scalars (comm.all_to_all_s(node, nbytes, 8, 2)) is profiled as a one-element array."""
    node = SimpleNamespace(domain=8, scaleup_gb_s=450.0, scaleout_gb_s=50.0)
    for size, stride in [(8, 2), (2, 1), (np.int64(16), 1)]:
        k, crosses = profile(node, size, stride)
        want = profile(node, np.array([size]), np.array([stride]))
        assert (int(k), bool(crosses)) == (int(want[0][0]), bool(want[1][0]))
