"""Uncertainty bands: the spread of the calibration errors of a plan's family.

The bands are generated, not typed in: `benchmarks/accuracy.py` evaluates every calibration run and
`benchmarks/error_bands.py` turns the signed errors (predicted / published - 1) into one band
[low, high] per family (framework x dense/MoE x precision; a wider pool when a family has fewer
than three runs), written to `catalogs/error_bands.yaml` and shipped as `planner.catalogs`.

Reading a band [lo, hi] for an estimate x: on the calibration runs of its family the prediction was
between lo and hi above the measurement, so the measured value is expected between x / (1 + hi)
(the optimistic edge for memory, the low edge for throughput) and x / (1 + lo).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import yaml

from planner.estimate import table

KINDS = ("dense", "moe")
NO_BAND = {"band": [0.0, 0.0], "pool": "none", "runs": 0}


@lru_cache(maxsize=1)
def families() -> dict:
    """The generated bands by family key 'framework/dense|moe/precision' (empty if none shipped)."""
    from planner.catalog import _catalog_text

    try:
        text, _ = _catalog_text("error_bands")
    except FileNotFoundError:
        return {}
    # libyaml's parser where available (10 x faster here), PyYAML's safe constructor either way
    return (yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}).get("families", {})  # noqa: S506


def band(metric: str, framework: str, moe: bool, precision: str) -> dict:
    """{'band': [lo, hi], 'pool': str, 'runs': n} of one family and metric ('throughput' or 'memory');
    [0, 0] with pool 'none' where the calibration report has no run for it."""
    entry = families().get(f"{framework}/{'moe' if moe else 'dense'}/{precision}") or {}
    return entry.get(metric) or NO_BAND


@lru_cache(maxsize=8)
def _grid(metric: str, moe: bool) -> tuple[np.ndarray, np.ndarray]:
    lo = np.zeros((len(table.FRAMEWORKS), len(table.PRECISIONS)))
    hi = np.zeros_like(lo)
    for i, fw in enumerate(table.FRAMEWORKS):
        for j, prec in enumerate(table.PRECISIONS):
            lo[i, j], hi[i, j] = band(metric, fw, moe, prec)["band"]
    lo.setflags(write=False)
    hi.setflags(write=False)
    return lo, hi


def band_arrays(metric: str, moe: bool, t: dict) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of every row of a plan table (vectorised lookup by framework and precision)."""
    lo, hi = _grid(metric, bool(moe))
    return lo[t["framework"], t["precision"]], hi[t["framework"], t["precision"]]
