"""Expert-parallel load imbalance under a skewed router: the busiest EP rank's share of the routed copies.

Trained routers do not spread tokens evenly over the experts: a few "hot" experts take a large share of
each batch. NVIDIA's AIConfigurator (github.com/ai-dynamo/aiconfigurator @095f58a5) models TensorRT-LLM's
MoE layers under such a skew: its collector (collector/helper.py, _generate_power_law_distribution) draws
the number of routed copies of each expert independently from a power law p(x) ~ x^-alpha on
[1, 0.8 x tokens] (on [0.01, 2] when tokens x top_k <= experts), scales them to tokens x top_k in all,
caps each expert at one copy per token, and times the EP rank that holds the most copies (experts in
contiguous blocks per rank); its models use alpha = 1.01 for DeepSeek-family MoE and 1.2 for others
(aic-core sdk models/deepseek.py, models/moe.py), both "estimated by latency matching" against real
datasets (CNN-DailyMail, OpenOrca; docs/POWER_LAW_DISTRIBUTION.md).

ROUTING_SKEW_ALPHA: ASSUMED, one value for every model: the smaller of AIConfigurator's two estimates
(1.01, the less skewed one). The skew of the published benchmarks' synthetic prompts (random token ids
through a trained router) is not published.

skew_imbalance(f, n, ep) = E[max over ranks of the rank's copies] / (n top_k / ep) under that
distribution: the expectation is taken over SKEW_DRAWS draws of a fixed seed, once per (experts, top_k, ep,
alpha) on a grid of token counts (powers of two up to 2^20) and interpolated in log2(tokens), so the plan
tables pay only an interpolation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

ROUTING_SKEW_ALPHA = 1.01
SKEW_DRAWS = 256
_GRID_LOG2 = np.arange(0, 21, dtype=float)


def _power_law(u, alpha: float, lo: float, hi: float):
    """Inverse CDF of p(x) ~ x^-alpha on [lo, hi] at uniform u (alpha != 1)."""
    a = 1.0 - alpha
    return ((hi ** a - lo ** a) * u + lo ** a) ** (1.0 / a)


def _cap(loads, cap: float, rounds: int = 4):
    """Each expert takes at most `cap` copies (one per token); the excess goes to the others in proportion
    to their load (AIConfigurator redistributes it round-robin; totals are the same)."""
    total = loads.sum(axis=1, keepdims=True)
    for _ in range(rounds):
        over = loads > cap
        if not over.any():
            break
        loads = np.minimum(loads, cap)
        free = np.where(over, 0.0, loads)
        missing = total - loads.sum(axis=1, keepdims=True)
        loads = loads + free / np.maximum(free.sum(axis=1, keepdims=True), 1e-30) * missing
    return loads


@lru_cache(maxsize=512)
def _table(experts: int, top_k: int, ep: int, alpha: float) -> np.ndarray:
    """Busiest-rank factor at tokens = 2^_GRID_LOG2 (module doc)."""
    if ep <= 1 or experts < 1 or alpha <= 0.0 or abs(alpha - 1.0) < 1e-9:
        return np.ones_like(_GRID_LOG2)
    u = np.random.default_rng(0).random((SKEW_DRAWS, experts))
    owner = (np.arange(experts) * ep) // experts             # contiguous blocks of experts per rank
    onehot = np.zeros((experts, ep))
    onehot[np.arange(experts), owner] = 1.0
    share = onehot.sum(axis=0) / experts                      # each rank's share of the experts
    out = []
    for t in 2.0 ** _GRID_LOG2:
        lo, hi = (1.0, 0.8 * t) if t * top_k > experts else (0.01, 2.0)
        if hi <= lo:
            out.append(1.0)
            continue
        x = _power_law(u, alpha, lo, hi)
        loads = _cap(x / x.sum(axis=1, keepdims=True) * t * top_k, t)
        ranks = loads @ onehot                                 # ranks holding no expert (ep > experts) idle
        ratio = np.divide(ranks, share, out=np.zeros_like(ranks), where=share > 0)
        out.append(float(np.mean(np.max(ratio, axis=1))) / (t * top_k))
    return np.array(out)


def skew_imbalance(f, n, ep, alpha: float = ROUTING_SKEW_ALPHA):
    """Busiest EP rank's routed copies over the mean rank's with n tokens under the skewed router
    (module doc); 1 where ep <= 1 or the model has no experts."""
    n = np.asarray(n, dtype=float)
    ep = np.asarray(ep)
    out = np.ones(np.broadcast(n, ep).shape)
    if not f.experts or alpha <= 0.0:
        return out
    n_b, ep_b = np.broadcast_arrays(n, ep)
    x = np.clip(np.log2(np.maximum(n_b, 1.0)), _GRID_LOG2[0], _GRID_LOG2[-1])
    for e in np.unique(ep_b):
        if e <= 1:
            continue
        sel = ep_b == e
        out[sel] = np.interp(x[sel], _GRID_LOG2, _table(int(f.experts), int(max(f.top_k, 1)), int(e), float(alpha)))
    return out
