"""The search's passes shared with a forked child (planner.search.forked) give the same arrays as in
one process, and a failing child is replaced by the parent's own computation.

A fork is used only in a process of one thread; numpy's OpenBLAS starts worker threads at import
unless OPENBLAS_NUM_THREADS=1 (as the command line sets it), so the fork paths run in a fresh
interpreter with that setting."""

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from planner.search import forked

ROOT = Path(__file__).resolve().parent.parent
linux_fork = pytest.mark.skipif(not sys.platform.startswith("linux") or forked.cpus() < 2,
                                reason="the fork path runs on Linux with two CPUs or more")


def _run(code: str) -> str:
    """`code` in a fresh interpreter of one thread (OPENBLAS_NUM_THREADS=1); its stdout."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


SPLIT = """
    import os, signal, numpy as np
    from planner.search import forked

    me = os.getpid()
    n, rows = 1000, 64

    def run(fail=None):
        out = {"v": np.zeros(n), "pid": np.zeros(n, dtype=np.int64)}
        def chunk(lo):
            if os.getpid() != me and fail == "raise":
                raise RuntimeError("child fails")
            if os.getpid() != me and fail == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            at = slice(lo, lo + rows)
            out["v"][at] = np.sqrt(np.arange(n)[at] * 3.0 + 1.0)
            out["pid"][at] = os.getpid()
        assert forked.usable(-(-n // rows))
        before = forked.FORKS
        forked.split(chunk, list(range(0, n, rows)), out)
        assert forked.FORKS == before + 1
        return out

    ref = np.sqrt(np.arange(n) * 3.0 + 1.0)
    ok = run()
    assert np.array_equal(ok["v"], ref)
    pids = set(ok["pid"].tolist())
    assert me in pids and len(pids) == 2, pids  # the even chunks here, the odd ones in the child
    assert (ok["pid"][64:128] != me).all() and (ok["pid"][:64] == me).all()
    for how in ("raise", "kill"):
        back = run(how)
        assert np.array_equal(back["v"], ref), how
        assert (back["pid"] == me).all(), how  # the child's chunks computed again here
    print("split ok")
"""


@linux_fork
def test_split_shares_chunks_and_recovers_from_a_failed_child():
    assert "split ok" in _run(SPLIT)


SEARCH = """
    import numpy as np
    from planner import load_scenario
    from planner.estimate.evaluate import Context
    from planner.search import bound, forked, solver

    # chunks small enough for several on these scenarios (6,242 and 182,094 plans fit)
    for name, rows in (("scenarios/32b_16gpu.yaml", 64), ("scenarios/mixtral_64gpu.yaml", 8192)):
        solver.FORK_CHUNK = rows
        sc = load_scenario(name)
        got = {}
        for fork in (False, True):
            forked.FORK = fork
            before = forked.FORKS
            ctx = Context(sc)
            t, _, layout = solver._candidate_rows(sc, compact=True)
            fits, peak = solver._fits_memory(ctx, t, layout, True)
            pool, heads = solver._fitting_plans(t, np.flatnonzero(fits), layout)
            lb, refine = bound.search_bound(ctx, pool, heads)
            tight = refine(np.arange(len(lb))) if refine is not None else lb
            res = solver.solve(sc)
            res.pop("seconds")
            got[fork] = (fits, peak, lb, tight, res, forked.FORKS - before)
        (f0, p0, l0, r0, s0, n0), (f1, p1, l1, r1, s1, n1) = got[False], got[True]
        assert n0 == 0 and n1 >= 3, (name, n0, n1)  # term tables and the bound went through the child
        assert np.array_equal(f0, f1) and np.array_equal(p0, p1), name
        assert np.array_equal(l0, l1) and np.array_equal(r0, r1), name
        assert s0 == s1, name
        print(name, "same", int(f0.sum()), len(l0), n1)
"""


@linux_fork
def test_search_passes_forked_give_the_same_arrays():
    out = _run(SEARCH)
    assert out.count(" same ") == 2, out


def test_no_fork_beside_another_thread():
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not forked.single_threaded()
        assert not forked.usable(100)
    finally:
        stop.set()
        other.join()


def test_switch_off(monkeypatch):
    monkeypatch.setattr(forked, "FORK", False)
    assert not forked.usable(100)
