import json
import math

from planner import jsonout


def test_non_finite_floats_become_null_everywhere():
    obj = {"days": math.inf, "plans": [{"mfu": float("nan"), "x": 1.5}, (-math.inf, 2)], "n": 3}
    back = json.loads(jsonout.dumps(obj))
    assert back == {"days": None, "plans": [{"mfu": None, "x": 1.5}, [None, 2]], "n": 3}
