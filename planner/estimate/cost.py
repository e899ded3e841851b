"""Days, GPU-hours and dollars to train the scenario's tokens."""

from __future__ import annotations

import numpy as np


def run_cost(tokens_total, tokens_per_s, gpus, usd_per_gpu_hour):
    seconds = tokens_total / np.maximum(tokens_per_s, 1e-30)
    gpu_hours = gpus * seconds / 3600.0
    cost = gpu_hours * usd_per_gpu_hour if usd_per_gpu_hour is not None else np.full_like(gpu_hours, np.nan)
    return {"days": seconds / 86400.0, "gpu_hours": gpu_hours, "cost_usd": cost}
