"""The order the branch and bound takes plans in (planner.search.solver.bounded_rows): highest upper
bound of tokens/s first, ties in table order, sorted only as far as the search reads."""

from __future__ import annotations

import numpy as np


class ByBound:
    """np.argsort(-ub, kind="stable") (highest first, ties and NaN as the stable sort puts them), sorted
    one block at a time as it is read: the search reads a few thousand of millions of rows. Each block
    is every row not yet sorted whose value reaches the b-th largest of them (found by
    partitioning, linear time), sorted stably in table order: the same rows in the same order as the
    whole sort's prefix. Indexing and slicing as the array it stands for (its first rows); `ub` must
    not change for rows not yet sorted. The rows left after a block are listed only when another
    block is read (a search that reads one block spares a pass over every row)."""

    BLOCK = 65_536

    def __init__(self, ub: np.ndarray):
        self.ub, self.head = ub, np.zeros(0, dtype=np.int64)
        self.rest = None  # rows not yet sorted, in table order (None: every row, not yet listed)
        self.taken = None  # (rows before the last block (None: every row), mask of those it took) until listed

    def __len__(self) -> int:
        return len(self.ub)

    def __getitem__(self, key):
        stop = key.stop if isinstance(key, slice) else int(key) + 1 if int(key) >= 0 else len(self)
        self._sort_to(len(self) if stop is None or stop < 0 else stop)
        return self.head[key]

    def _list_rest(self) -> None:
        """Set `rest` to the rows not yet sorted, in table order, from the last block's mask."""
        if self.taken is not None:
            rest, take = self.taken
            np.logical_not(take, out=take)
            self.rest = np.flatnonzero(take) if rest is None else rest[take]
            self.taken = None

    def _sort_to(self, m: int) -> None:
        while len(self.head) < min(m, len(self.ub)):  # the rows not in head are those not yet sorted
            self._list_rest()
            left = len(self.ub) if self.rest is None else len(self.rest)
            # at least BLOCK rows (an eighth of a small table: purchase searches read few rows), and as
            # many as sorted so far (the search's chunks grow 4-fold)
            want = max(m - len(self.head), len(self.head), min(self.BLOCK, len(self) // 8))
            values = self.ub if self.rest is None else self.ub[self.rest]
            take = None  # every row left
            if want < left:
                cut = kth_largest(values, want)
                if not np.isnan(cut):
                    take = values >= cut  # False for NaN: those stay for the last block, as the sort puts them
            if take is None:
                block, self.rest = (np.arange(left) if self.rest is None else self.rest), np.zeros(0, dtype=np.int64)
                order = np.argsort(-values, kind="stable")
            else:
                block = np.flatnonzero(take) if self.rest is None else self.rest[take]
                order = np.argsort(-values[take], kind="stable")
                self.taken = (self.rest, take)
            self.head = np.concatenate([self.head, block[order]])


SAMPLE = 32  # kth_largest estimates its cut from every SAMPLE-th value


def kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest of `values`, NaN not counted (NaN where fewer than k are numbers): the number
    -np.partition(-values, k - 1)[k - 1] is. A partition of every value cost half of a block of ByBound
    (a million-plan table: 12 of 23 ms); here a value c of a strided sample, ranked a little below k/SAMPLE
    in the sample, is first found, and only the values >= c are partitioned: where there are at least k of
    them they hold the k largest (every other value is below c), so their k-th largest is the same number.
    Where there are fewer (values sorted in a stride's pattern), or the table is small, every value is
    partitioned as before."""
    n = len(values)
    rank = k // SAMPLE + k // (4 * SAMPLE) + 8  # ~1.25 k / SAMPLE: the values >= c number ~1.25 k
    if n >= 16 * SAMPLE and rank * SAMPLE * 2 <= n:
        neg = np.negative(values[::SAMPLE])
        neg.partition(rank - 1)
        c = -neg[rank - 1]
        if not np.isnan(c):
            top = values[values >= c]  # no NaN
            if len(top) >= k:
                values = top
    neg = np.negative(values)
    neg.partition(k - 1)
    return -neg[k - 1]
