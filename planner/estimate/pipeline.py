"""Pipeline schedule: step time from the slowest stage, and the bubble.

1F1B with m micro-batches over p stages takes (m + p - 1) stage-times; the interleaved schedule with
v model chunks per GPU shrinks the bubble to (p - 1) / v stage-times (Narayanan et al. 2021,
arXiv:2104.04473, Sec. 2.2, bubble fraction (p - 1) / (v * m)).
"""

from __future__ import annotations

import numpy as np


def bubble_s(t, stage_s):
    """Idle time of one step: (pp - 1) / vpp stage-times of one micro-batch."""
    return (t["pp"] - 1) / t["vpp"] * stage_s


def pipeline_step_s(t, stage_s):
    """Forward+backward time of all micro-batches of a step, bubble included."""
    return t["ga"] * stage_s + bubble_s(t, stage_s)


def interleave_p2p_factor(t):
    """Interleaving sends each micro-batch across vpp times more stage boundaries."""
    return np.where(t["vpp"] > 1, t["vpp"], 1)
