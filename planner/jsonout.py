"""JSON text for `--json` output and emitted plan files.

JSON has no infinity or NaN; a non-finite float (e.g. days to train when throughput is zero) becomes
null instead of a crash or of the non-standard `Infinity` token that strict parsers refuse."""

from __future__ import annotations

import json
import math


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps(obj, **kwargs) -> str:
    """`json.dumps` with non-finite floats written as null (allow_nan=False checks nothing slipped by)."""
    return json.dumps(_finite(obj), allow_nan=False, **kwargs)
