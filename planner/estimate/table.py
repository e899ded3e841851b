"""Plans as columns of numpy arrays, so that memory and time are evaluated for many plans at once.

Categorical fields are stored as small integer codes (the index in the tuples below).
"""

from __future__ import annotations

import numpy as np

FRAMEWORKS = ("deepspeed", "megatron", "torchtitan")
PRECISIONS = ("fp32", "fp16", "bf16", "fp8")
# the codes of the framework and precision columns that the estimate tests
DS, MEG, TT = (FRAMEWORKS.index(n) for n in ("deepspeed", "megatron", "torchtitan"))
FP32, FP16, BF16, FP8 = (PRECISIONS.index(n) for n in ("fp32", "fp16", "bf16", "fp8"))
OFFLOADS = ("none", "cpu", "nvme")
RECOMPUTES = ("none", "selective", "full")
CATEGORICAL = {"framework": FRAMEWORKS, "precision": PRECISIONS, "offload": OFFLOADS,
               "offload_params": OFFLOADS, "recompute": RECOMPUTES}
INTEGER = ("dp", "tp", "pp", "cp", "ep", "etp", "vpp", "zero", "mbs", "ga")
COLUMNS = tuple(CATEGORICAL) + INTEGER + ("sp",)


def from_plans(plans) -> dict[str, np.ndarray]:
    """Columns from resolved Plan objects (or dicts with every field)."""
    rows = [p if isinstance(p, dict) else p.as_dict() for p in plans]
    table = {}
    for col, values in CATEGORICAL.items():
        table[col] = np.array([values.index(r[col]) for r in rows], dtype=np.int64)
    for col in INTEGER:
        # A plan written before etp existed (or a framework config read back) has experts split like tp.
        table[col] = np.array([int(r["tp"] if col == "etp" and r.get("etp") is None else r[col]) for r in rows],
                              dtype=np.int64)
    table["sp"] = np.array([bool(r["sp"]) for r in rows], dtype=bool)
    return table


def size(table: dict[str, np.ndarray]) -> int:
    return len(table["tp"])


def row(table: dict[str, np.ndarray], i: int) -> dict:
    """Plan fields of row i, decoded (the contract's plan object)."""
    out: dict = {}
    for col in ("framework", "precision", "dp", "tp", "pp", "cp", "ep", "etp", "vpp", "sp", "zero",
                "offload", "offload_params", "recompute", "mbs", "ga"):
        v = table[col][i]
        if col in CATEGORICAL:
            out[col] = CATEGORICAL[col][int(v)]
        elif col == "sp":
            out[col] = bool(v)
        else:
            out[col] = int(v)
    out["global_batch"] = out["dp"] * out["mbs"] * out["ga"]
    return out


def take(table: dict[str, np.ndarray], index) -> dict[str, np.ndarray]:
    """Rows `index` of every column, integer columns as int64 (the estimates' arithmetic; a compact
    table stores them narrower: compact)."""
    return {k: wide(v[index]) for k, v in table.items()}


def wide(v: np.ndarray) -> np.ndarray:
    """An integer column as int64 (others as they are)."""
    return v.astype(np.int64) if v.dtype.kind in "iu" and v.dtype != np.int64 else v


def value_ranks(col: np.ndarray, dense_span: int = 1 << 22, dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each value among the column's distinct values, in `dtype`; the distinct values in
    increasing order): np.unique's inverse and values, through a presence table over the values' range
    where it is short (integer or bool columns whose range is below `dense_span` or 16 x the values:
    linear time), by sorting otherwise."""
    col = np.asarray(col)
    col = col.view(np.int8) if col.dtype == bool else col
    if col.dtype.kind in "iu" and len(col):
        lo, hi = int(col.min()), int(col.max())
        if hi - lo < max(dense_span, 16 * len(col)):
            ranks, values = present_ranks(col - lo if lo else col, hi - lo + 1, dtype)
            return ranks, values + lo
    values, ranks = np.unique(col, return_inverse=True)
    return ranks.reshape(-1).astype(dtype), values


def present_ranks(key: np.ndarray, span: int, dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """(rank of every key among the distinct keys present, in `dtype`; the distinct keys ascending) for
    keys in [0, span), through a presence table: the keys present are numbered by one scatter into an
    unfilled table (its pages of absent keys are never written), not by a running count over the span
    (np.cumsum over 1.3M entries took 2.4 x the scatter's time here); the same ranks."""
    present = np.zeros(span, dtype=bool)
    present[key] = True
    keys = np.flatnonzero(present)
    del present
    # the table in int32 where the ranks fit (half the pages an int64 table touches when the keys are
    # sparse in a wide span), the ranks returned in `dtype` (the same numbers)
    small = np.int32 if len(keys) < 2**31 and np.dtype(dtype).itemsize > 4 else dtype
    ids = np.empty(span, dtype=small)
    ids[keys] = np.arange(len(keys), dtype=small)
    return ids[key].astype(dtype, copy=False), keys


def changes(col: np.ndarray) -> np.ndarray:
    """True where a row's value differs from the row before (and on the first row)."""
    out = np.empty(len(col), dtype=bool)
    out[:1] = True
    np.not_equal(col[1:], col[:-1], out=out[1:])
    return out


def radix_code(cols: list[np.ndarray], n: int) -> tuple[np.ndarray, int]:
    """One int64 code per row of `n` rows, equal exactly where the rows are equal in every column of
    `cols` (mixed radix, each column's digit its value's rank: value_ranks), and the number of codes."""
    code, span = np.zeros(n, dtype=np.int64), 1
    for c in cols:
        digit, values = value_ranks(c)
        code = code * len(values) + digit
        span *= len(values)
    return code, span


def compact(v: np.ndarray) -> np.ndarray:
    """An integer column in the narrowest signed type that holds its values (storage only: take()
    widens the rows it returns)."""
    if v.dtype.kind not in "iu" or not len(v):
        return v
    lo, hi = int(v.min()), int(v.max())
    for dt in (np.int8, np.int16, np.int32):
        if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max:
            return v.astype(dt, copy=False)  # already that narrow: as it is
    return v


def read_keys(call, sample: dict, fill=None) -> set[str]:
    """The columns of `sample` that call(table) reads (by [] or .get), found by running it on a
    recording copy of `sample` (its numbers mean nothing: numpy's warnings silenced). With `fill`, every
    key is there: one `sample` lacks reads as `fill` (also by .get) and counts too."""
    seen: set[str] = set()

    class Recorder(dict):
        def __getitem__(self, key):
            seen.add(key)
            return fill if fill is not None and key not in self else super().__getitem__(key)

        def get(self, key, default=None):
            seen.add(key)
            return super().get(key, default if fill is None else fill)

    with np.errstate(all="ignore"):
        call(Recorder(sample))
    return seen if fill is not None else seen & set(sample)


def distinct(a: np.ndarray, axis=None) -> np.ndarray:
    """np.unique(a, axis=axis) (sorted distinct values or rows), asked with return_index: numpy 2's
    plain np.unique checks for a masked array (np.ma.is_masked), which imports numpy.ma (~10-40 ms of
    every process's start-up) on first use."""
    return np.unique(a, axis=axis, return_index=True)[0]
