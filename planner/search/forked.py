"""The chunks of one pass of the search shared between the process and one forked child: two cores
without the interpreter lock between them (threads share it, and the memory verdict and the bound
make many small numpy calls, each of which holds it between its array loops).

The child is forked after the pass's inputs are built, so it reads them through copy-on-write pages
(nothing is pickled); it computes every other chunk, writes those rows of the pass's output arrays
into shared anonymous memory mapped before the fork, and leaves with os._exit (no return into the
caller's stack, no flush of the parent's stdio buffers, no atexit handlers). The parent computes the
other chunks, waits for the child and copies its rows in. A child that fails (an error, a signal) is
replaced by the parent computing its chunks itself: the same numbers, each chunk's rows depending on
that chunk alone (the callers' contract, as for threads), so the result never depends on the split.

Used only where it is safe and pays (usable): os.fork exists, at least two CPUs are ours, and the
process runs one thread (forking a process with other threads can leave a lock held by a thread that
does not exist in the child; CPython 3.12+ warns). FORK = False turns it off (callers then use their
threads)."""

from __future__ import annotations

import gc
import mmap
import os
import signal
import sys
import threading
import time

import numpy as np

FORK = True  # the switch: False keeps every pass in this process (threads: solver._in_chunks)
MIN_CHUNKS = 4  # a fork, its page tables and its exit cost ~3-4 ms (a 150-650 MB process), and each
# process faults in the pages its chunks write: below four chunks (of solver.FORK_CHUNK rows) it does not pay

_active = False  # a split is running in this process (or this is its child): no nested fork

FORKS = 0  # splits run in this process (tests read it)


def cpus() -> int:
    """The CPUs this process may run on (its affinity where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _os_threads() -> int | None:
    """The threads of this process as the kernel counts them (Linux /proc), else None."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Threads:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def single_threaded(tries: int = 20) -> bool:
    """Whether this process runs one thread: Python's own count and, on Linux, the kernel's (native
    threads: OpenBLAS's workers, a pool's thread that was joined but has not yet exited, which the
    tries wait for, 0.25 ms apart)."""
    if threading.active_count() != 1:
        return False
    for _ in range(tries):
        n = _os_threads()
        if n is None or n == 1:
            return True
        time.sleep(0.00025)
    return False


def usable(chunks: int) -> bool:
    """Whether a pass of `chunks` chunks is split with a forked child (module docstring)."""
    return (FORK and not _active and chunks >= MIN_CHUNKS and hasattr(os, "fork")
            and sys.platform != "win32" and cpus() >= 2 and single_threaded())


def shared_empty(like: np.ndarray) -> np.ndarray:
    """An uninitialised array shaped as `like` in shared anonymous memory (MAP_SHARED: a forked child's
    writes are seen here; the mapping is released with the last array viewing it)."""
    buf = mmap.mmap(-1, max(like.nbytes, 1))
    return np.frombuffer(buf, dtype=like.dtype, count=like.size).reshape(like.shape)


def split(chunk, starts: list[int], outputs: dict) -> None:
    """chunk(lo) for every lo of `starts`, the even-numbered ones here and the odd-numbered ones in a
    forked child (interleaved: neighbouring chunks cost about the same). `outputs`: the dict of arrays
    chunk(lo) writes, read through the dict at each call; each of its rows is written by one chunk,
    and chunk writes nothing else the caller reads afterwards. Its arrays are replaced, before the
    fork, by arrays of the same shape in shared memory (shared_empty) that both processes write."""
    global _active, FORKS
    mine, theirs = starts[0::2], starts[1::2]
    for k, a in outputs.items():
        outputs[k] = shared_empty(a)
    _active = True
    try:
        pid = os.fork()
        if pid == 0:  # the child: its chunks, then out (never back into the caller's stack)
            code = 1
            try:
                gc.disable()  # a collection would touch (and so copy) the parent's pages
                for lo in theirs:
                    chunk(lo)
                code = 0
            finally:
                os._exit(code)
        FORKS += 1
        status = None
        try:
            for lo in mine:
                chunk(lo)
            status = os.waitpid(pid, 0)[1]
        finally:
            if status is None:  # an error here (or an interrupt): the child is stopped and reaped
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    finally:
        _active = False
    if os.waitstatus_to_exitcode(status) != 0:  # the child failed: its chunks here (the same numbers)
        for lo in theirs:
            chunk(lo)
