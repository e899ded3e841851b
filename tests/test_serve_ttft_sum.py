"""TTFT quantiles under a request rate where the input length varies: the quantile of own prefill + queue wait
(evaluate.ttft_sum_quantile), not the sum of the two quantiles."""

import numpy as np

from planner.serve import timing
from planner.serve.evaluate import ttft_sum_quantile

# MLPerf llama3.1-405b input bins (benchmarks/serving_runs.yaml): 20 equal shares, 2k-18k tokens
BINS = np.array([2068, 3226, 4034, 4747, 5563, 6477, 7488, 8373, 9156, 9799, 10340, 10764, 11160, 11596, 12051,
                 12482, 13012, 13740, 14902, 17666], dtype=float)
SHARES = np.full(len(BINS), 1 / len(BINS))
OWN = 1.4e-4 * BINS                      # s: a prompt's own prefill, ~linear in its length
SERVICE = BINS * (7e-5 + 2e-9 * BINS)    # s: its work in the busy prefill queue, quadratic through attention


def _moments(lam):
    es, es2 = float(SHARES @ SERVICE), float(SHARES @ SERVICE ** 2)
    return np.array([lam]), np.array([es]), np.array([es2])


def _x(q, lam, base=0.0):
    lam_, es, es2 = _moments(lam)
    return float(ttft_sum_quantile(OWN[:, None], SHARES, np.array([base]), lam_, es, es2, q)[0])


def test_matches_a_draw_of_the_same_wait_distribution():
    """Against own + W drawn independently, W from the tail the planner uses (atom 1 - rho, exponential rest)."""
    rng = np.random.default_rng(1)
    lam = 0.5
    _, es, es2 = _moments(lam)
    rho, eta = (float(v[0]) for v in timing.mg1_tail(np.array([lam]), es, es2))
    n = 400_000
    w = np.where(rng.random(n) < rho, rng.exponential(1 / eta, n), 0.0)
    x = rng.choice(OWN, n) + 0.05 + w
    for q in (0.9, 0.99):
        assert abs(_x(q, lam, base=0.05) / np.quantile(x, q) - 1) < 0.02


def test_below_the_sum_of_quantiles_and_equal_for_one_length():
    lam = 0.5
    lam_, es, es2 = _moments(lam)
    for q in (0.9, 0.99):
        bound = OWN[int(np.ceil(q * len(OWN))) - 1] + float(timing.mg1_wait_quantile(lam_, es, es2, q)[0])
        assert _x(q, lam) < bound
        one = float(ttft_sum_quantile(np.array([[2.0]]), np.array([1.0]), np.array([0.0]), lam_, es, es2, q)[0])
        assert abs(one - (2.0 + float(timing.mg1_wait_quantile(lam_, es, es2, q)[0]))) < 1e-6


def test_closer_to_a_simulated_queue_than_the_sum_of_quantiles():
    """A Lindley-recursion draw of the M/G/1 queue itself (FCFS, Poisson arrivals, the bins' service times): the
    p99 of own + wait is nearer the quantile of the sum than the sum of the quantiles (the exponential tail is
    still an approximation, so not equal)."""
    rng = np.random.default_rng(2)
    lam = 0.5
    n = 200_000
    idx = rng.integers(0, len(BINS), n)
    s, gaps = SERVICE[idx], rng.exponential(1 / lam, n)
    w = np.zeros(n)
    for i in range(1, n):
        w[i] = max(0.0, w[i - 1] + s[i - 1] - gaps[i])
    sim = np.quantile(w + OWN[idx], 0.99)
    lam_, es, es2 = _moments(lam)
    old = OWN[-1] + float(timing.mg1_wait_quantile(lam_, es, es2, 0.99)[0])
    assert abs(_x(0.99, lam) - sim) < abs(old - sim)


def test_unstable_queue_is_infinite():
    lam_, es, es2 = _moments(10.0)
    assert np.isinf(ttft_sum_quantile(OWN[:, None], SHARES, np.array([0.0]), lam_, es, es2, 0.99)[0])


def test_root_against_a_grid_of_the_written_out_distribution():
    """The bisection's x against the first point of a fine grid where the mixture CDF, written out here
    (sum_i w_i (1 - rho exp(-eta (x - own_i))) over own_i <= x, the atom 1 - rho at x = own_i), reaches q."""
    for lam in (0.05, 0.5, 0.9):
        lam_, es, es2 = _moments(lam)
        rho = lam * float(es[0])
        eta = 2 * (1 - rho) * float(es[0]) / float(es2[0])
        grid = np.linspace(0.0, 60.0, 600_001)
        t = grid[:, None] - OWN[None, :]
        cdf = (SHARES * np.where(t >= 0, 1 - rho * np.exp(-eta * np.maximum(t, 0)), 0.0)).sum(axis=1)
        for q in (0.5, 0.9, 0.99):
            first = grid[np.argmax(cdf >= q)]
            assert abs(_x(q, lam) - first) <= 1e-4 + 1e-6 * first


def test_light_load_gives_the_quantile_of_the_own_prefill():
    """rho -> 0: no wait, the q-quantile of the own prefill over the bins (inf{x: F(x) >= q}; 18 of 20 equal
    bins make 0.9 exactly)."""
    for q, k in ((0.5, 10), (0.9, 18), (0.99, 20)):
        assert abs(_x(q, 0.0) - OWN[k - 1]) < 1e-9
        assert abs(_x(q, 1e-12) - OWN[k - 1]) < 1e-9
