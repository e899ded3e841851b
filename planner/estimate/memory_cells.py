"""A plan table as layout runs x category codes, and its "cells": plans equal in the columns a memory
term reads (planner.estimate.memory_tables), found by arithmetic on the layout-major table, not by
sorting the plans: a plan's cell is its layout run's id and its category code's id, each numbered
among the values present through small tables."""

from __future__ import annotations

import numpy as np

from planner.estimate import table as T

CATEGORY_COLUMNS = ("framework", "precision", "zero", "offload", "offload_params", "recompute", "sp")
LAYOUT_COLUMNS = ("tp", "pp", "cp", "ep", "vpp", "dp", "mbs", "ga", "etp")
BLOCK = 1 << 20  # rows per block where Plans.cells walks the whole table
DENSE_KEYS = 1 << 16  # key ranges numbered through a presence table at any count of keys (T.value_ranks)


def _compact_ids(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(id of every row's key among the keys present (int32: T.value_ranks), one row per id)."""
    cell, keys = T.value_ranks(key, DENSE_KEYS, np.int32)
    row = np.empty(len(keys), dtype=np.int64)
    row[cell] = np.arange(len(key), dtype=np.int32 if len(key) < 2**31 else np.int64)
    return cell, row


class Plans:
    """The plan table as layout runs x categorical codes (rows with the same layout columns are
    contiguous in a layout-major table: each run is one layout), for finding each term's cells."""

    def __init__(self, t: dict, rows=None, layout=None):
        """`layout` (optional): the layout of every row of t (solver._candidate_rows: rows of one
        layout are contiguous), which marks the runs in one comparison instead of one per layout
        column (a run may then be one of several equal layouts in a row: their cells are the same)."""
        self.t, self.rows = t, rows
        n = T.size(t) if rows is None else len(rows)
        if layout is not None:
            change = T.changes(layout if rows is None else layout[rows])
        else:
            change = T.changes(self.column(LAYOUT_COLUMNS[0]))
            for k in LAYOUT_COLUMNS[1:]:
                change |= T.changes(self.column(k))
        self.n = n
        self.heads = np.flatnonzero(change)  # first row of each run
        del change
        # the run of every row (as a cumulative count of the heads, without its n-long int32 sum)
        self.run = np.repeat(np.arange(len(self.heads), dtype=np.int32), np.diff(self.heads, append=n))
        # category code: mixed radix of the values (int16 where they fit: the largest tables)
        cats = [self.column(k) for k in CATEGORY_COLUMNS]  # each gathered once (where `rows` picks the plans)
        self.radix = [int(c.max()) + 1 if n else 1 for c in cats]
        self.n_cat = int(np.prod(self.radix))
        self.cat = np.zeros(n, dtype=np.int16 if self.n_cat < 2**15 else np.int32)
        for c, radix in zip(cats, self.radix):
            self.cat *= radix
            self.cat += c
        del cats

    def column(self, k: str, at=None) -> np.ndarray:
        """Column k of the plans (rows `at` of them)."""
        rows = self.rows if at is None else self._rows(at)
        return self.t[k] if rows is None else self.t[k][rows]

    def take(self, at) -> dict:
        """T.take of the plans `at`."""
        return T.take(self.t, self._rows(at))

    def _rows(self, at):
        """The rows of t of the plans `at`."""
        return at if self.rows is None else self.rows[at]

    def decoded(self) -> dict:
        """The categorical columns of every category code (index: code)."""
        digits, rest = {}, np.arange(self.n_cat)
        for k, radix in zip(reversed(CATEGORY_COLUMNS), reversed(self.radix)):
            digits[k], rest = rest % radix, rest // radix
        return {k: digits[k] for k in CATEGORY_COLUMNS}

    def head_columns(self) -> dict:
        """The layout columns of each run's first plan as int64, each gathered when first read and kept
        (the terms' cells read mostly the same ones: one gather each, not one per term)."""
        if getattr(self, "_head_columns", None) is None:
            self._head_columns = _Wide(self, self.heads)
        return self._head_columns

    def present(self) -> np.ndarray:
        """The category codes some plan has, ascending (computed once)."""
        if getattr(self, "_present", None) is None:
            seen = np.zeros(self.n_cat, dtype=bool)
            seen[self.cat] = True  # a scatter: no intp copy of the codes (np.bincount makes one)
            self._present = np.flatnonzero(seen)
        return self._present

    def _consistent(self, ids: list) -> bool:
        """Whether every run's coarse layout id follows from its own (exact) layout id (ids: the
        coarse and own layout ids of the runs, _compact_ids): then a cell key is a function of a
        plan's own layout and category."""
        rough, own = ids[0][0], ids[1][0]
        return bool(np.array_equal(np.take(rough, np.take(ids[1][1], own)), rough))

    def _keys(self, base: np.ndarray, cat_id: np.ndarray, shift, seen) -> np.ndarray:
        """Every plan's key: base (per run; with `shift`, per run and then per run + shift[code]) +
        cat_id[code], in blocks (no temporaries of the table's length), marking each key in `seen`
        (a presence table) where given."""
        key = np.empty(self.n, dtype=base.dtype)
        ends = np.append(self.heads[1:], self.n)
        for lo in range(0, self.n, BLOCK):
            hi = min(lo + BLOCK, self.n)
            run, cat = self.run[lo:hi], self.cat[lo:hi]
            if shift is None:  # each run's base repeated over its rows in the block (a gather by run otherwise)
                r0, r1 = int(run[0]), int(run[-1]) + 1
                k = np.repeat(base[r0:r1], np.minimum(ends[r0:r1], hi) - np.maximum(self.heads[r0:r1], lo))
            else:
                k = np.take(base, run + np.take(shift, cat))
            k += np.take(cat_id, cat)
            if seen is not None:
                seen[k] = True
            key[lo:hi] = k
        return key

    def cells(self, cols: tuple[str, ...], coarse: dict | None = None, exact=None) -> tuple[np.ndarray, dict]:
        """(cell of every plan (int32), a table of one row per cell): plans equal in the columns
        `cols`, a layout column k taken as coarse[k](layout columns) where given, except for the plans
        whose category code is `exact` (a mask over the codes; None: none), which keep their own. A
        cell is a pair (layout id, category id), each numbered among the values present (the run heads,
        the category codes the plans have); its row holds the (coarse) layout columns of a run of its
        layout and the categorical columns of a category code of its categories, so it equals each of
        its plans in `cols` (the columns it holds: a term reading another fails loudly)."""
        lay = [k for k in LAYOUT_COLUMNS if k in cols]
        heads = self.head_columns()
        own = [heads[k] for k in lay]
        rough = [coarse[k](heads) if k in (coarse or {}) else heads[k] for k in lay]
        digits, present = self.decoded(), self.present()
        cid, c_code = _compact_ids(T.radix_code([digits[k][present] for k in CATEGORY_COLUMNS if k in cols],
                                               len(present))[0])
        n_c = len(c_code)
        split = exact is not None and coarse and bool(exact[present].any())
        ids = [_compact_ids(T.radix_code(v, len(self.heads))[0]) for v in ([rough, own] if split else [rough])]
        n_rough = len(ids[0][1])
        n_lay = sum(len(r) for _, r in ids)
        wide = np.int64 if n_lay * n_c >= 2**31 else np.int32
        cat_id = np.zeros(self.n_cat, dtype=wide)
        cat_id[present] = cid
        # per category code, the shift from a run's coarse layout id to its own (exact codes)
        shift = exact.astype(wide) * len(self.heads) if split else None
        span = n_lay * n_c
        # A cell's key: its layout id x n_c + its category id, the layout ids of the exact plans after
        # the coarse ones. Split, each plan's key is first taken over its own layout (a "fine" key: the
        # same arithmetic for every plan), each present fine key then mapped to its cell's key.
        # (where each run's coarse layout follows from its own and exactness from the category id, and
        # the fine keys fit a presence table)
        dense = max(4 * self.n, 1 << 16)
        fine = (split and len(ids[1][1]) * n_c <= dense and self._consistent(ids)
                and np.array_equal(exact[present], exact[present[c_code[cid]]]))
        lay_id = ids[1][0] if fine else np.concatenate([i for i, _ in ids[:1]] + [i + n_rough for i, _ in ids[1:]])
        fine_span = len(ids[1][1]) * n_c if fine else span
        base = lay_id.astype(wide) * n_c
        if fine_span <= dense:  # a presence table
            seen = np.zeros(fine_span, dtype=bool)
            key = self._keys(base, cat_id, None if fine else shift, seen)
            keys = present_keys = np.flatnonzero(seen)
            del seen
            to_cell = None
            if fine:  # each present fine key's cell key: its own layout for exact codes, else the coarse one
                own_lay, c = keys // n_c, keys % n_c
                exact_key = np.take(exact, np.take(present, np.take(c_code, c)))
                rough_of_own = np.take(ids[0][0], np.take(ids[1][1], own_lay))
                # np.unique's values and inverse, by a presence table where the keys' range is short
                to_cell, keys = T.value_ranks(np.where(exact_key, own_lay + n_rough, rough_of_own) * n_c + c)
            cell = key.astype(np.int32, copy=False)
            if to_cell is not None or len(keys) < fine_span:  # the keys renumbered
                ids_ = np.zeros(fine_span, dtype=np.int32)
                ids_[present_keys] = np.arange(len(keys), dtype=np.int32) if to_cell is None else to_cell.reshape(-1)
                for lo in range(0, self.n, BLOCK):
                    cell[lo:lo + BLOCK] = np.take(ids_, key[lo:lo + BLOCK])
        else:
            key = self._keys(base, cat_id, shift, None)
            keys, cell = np.unique(key, return_inverse=True)
            cell = cell.reshape(-1).astype(np.int32)
        del key
        lay_of = keys // n_c
        runs = np.concatenate([r for _, r in ids])
        # the columns the cells tell apart, as T.take gives them: layout columns from the run heads'
        run = np.take(runs, lay_of)
        rows = {k: np.take(heads[k], run) for k in lay}
        code = np.take(present, np.take(c_code, keys % n_c))
        for k in CATEGORY_COLUMNS:
            if k in cols:
                rows[k] = np.take(digits[k], code).astype(T.wide(self.t[k][:0]).dtype)
        if coarse:
            rough_cell = lay_of < n_rough
            for k, f in coarse.items():
                rows[k] = np.where(rough_cell, f(rows), rows[k])
        return cell, rows


class _Wide(dict):
    """The layout columns of plans `at` as int64, each taken when first read."""

    def __init__(self, plans, at):
        super().__init__()
        self.plans, self.at = plans, at

    def __missing__(self, k):
        v = self[k] = T.wide(self.plans.column(k, self.at))
        return v
