"""Cross-node all-to-all against NCCL's published multi-node behaviour (benchmarks/alltoall_internode_results.md).

NCCL maintainers (nccl-tests issue #130): with NVLink inside nodes and one NIC per GPU, only the share bound for
other nodes sets the time, so nccl-tests' alltoall bus bandwidth is the per-GPU network rate divided by that
share, (n - k) / (n - 1) for n ranks, k per node (the issue rounds it to N / (N - 1) for N nodes); an NDR 400G
ConnectX-7 reaches 46-49 GB/s through NCCL (nccl-tests issues #290, #267).
"""

import numpy as np
import pytest

from planner import catalog
from planner.estimate import comm
from planner.estimate.topology import group

NDR_NCCL_GB_S = (46.0, 49.0)  # per NIC, nccl-tests issues #290 and #267 (NCCL maintainers)


def busbw_gb_s(node, nbytes, n):
    """nccl-tests alltoall bus bandwidth of the model: (n - 1) / n x bytes / time (nccl-tests src/alltoall.cu)."""
    t = float(comm.all_to_all_s(node, np.array([nbytes]), group(node, np.array([n]), np.array([1])))[0])
    return (n - 1) / n * nbytes / t / 1e9


@pytest.mark.parametrize("name", ["dgx-h100", "hgx-h200", "dgx-b200"])
@pytest.mark.parametrize("nodes", [2, 4, 8, 16])
def test_large_multinode_alltoall_at_the_published_nic_bound_rate(name, nodes):
    node = catalog.node(name)
    n = nodes * node.gpus_per_node
    got = busbw_gb_s(node, 1 << 30, n)
    k = node.gpus_per_node
    lo, hi = ((n - 1) / (n - k) * r for r in NDR_NCCL_GB_S)
    assert lo * 0.98 <= got <= hi


def test_alltoall_slows_as_the_remote_share_grows():
    """Going from 2 to 8 nodes moves the remote share from 1/2 to 7/8 of the buffer: about 1.75x the time."""
    node = catalog.node("dgx-h100")
    t2, t8 = (float(comm.all_to_all_s(node, np.array([256e6]), group(node, np.array([8 * m]), np.array([1])))[0]) for m in (2, 8))
    assert t8 / t2 == pytest.approx((7 / 8) / (1 / 2), rel=0.02)
