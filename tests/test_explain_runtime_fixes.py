"""`planner solve` on an infeasible scenario: the nearest fixes try the runtime settings recipes change on
purpose (planner.search.explain.nearest_fixes / RUNTIME_MEMORY_KEYS) and name each with its effect."""

from planner.estimate.evaluate import estimate
from planner.search.solver import solve
from planner.spec.plan import FIELDS, parse_plan

from test_memory import scenario

# Llama-3.1-8B, Megatron FP8 on 8 H100 with dp 8, ZeRO-1, no recompute, micro-batch 1: about 90 GiB per GPU
# (fp32 gradients ~30 GiB) with the defaults; the search may not change the layout, ZeRO stage or recompute.
SEARCH = {"frameworks": ["megatron"], "precision": ["fp8"], "zero": [1], "tp": [1], "pp": [1], "cp": [1],
          "micro_batch": [1], "recompute": ["none"], "offload": ["none"], "offload_params": ["none"]}


def _sc(**runtime):
    sc = scenario(model="llama-3.1-8b", nodes=1, gb=64, search=SEARCH)
    return sc.model_copy(update={"runtime": sc.runtime.model_copy(update=runtime)}) if runtime else sc


def test_runtime_keys_are_offered_as_fixes_with_their_effect():
    r = solve(_sc())
    assert r["plans"] == [] and r["closest"]["memory"]["verdict"] == "oom"
    closest = r["closest"]["memory"]["per_gpu_gib"]
    fixes = {f["change"].split(" (")[0]: f for f in r["closest"]["fixes"]}
    lines = [x for x in r["explanation"] if x.lstrip().startswith("- runtime.")]
    for change, key, value in (("runtime.grad_reduce_dtype: bf16", "grad_reduce_dtype", "bf16"),
                               ("runtime.fp8_param_gather: true", "fp8_param_gather", True)):
        f = fixes[change]
        assert any(x.lstrip().startswith(f"- {change} (") for x in lines)  # named in the text, with its source
        # the fix's figure is what an estimate of its plan gives with the setting in the scenario,
        # and the setting alone (same plan shape, same framework) brings it under the closest plan's memory
        sc = _sc(**{key: value})
        plan = parse_plan(",".join(f"{k}={v}" for k, v in f["plan"].items() if k in FIELDS)).resolved(sc)
        m = estimate(sc, plan)["memory"]
        assert m["per_gpu_gib"] == f["per_gpu_gib"] < closest and m["verdict"] != "oom"
        # and the scenario with that setting is feasible
        assert solve(sc)["plans"]


def test_no_fix_message_lists_the_runtime_keys_tried(monkeypatch):
    from planner.search import explain

    monkeypatch.setattr(explain, "nearest_fixes", lambda *a, **k: [])  # as if no change fitted
    text = " ".join(solve(_sc())["explanation"])
    assert "no single change tried" in text
    assert "runtime.grad_reduce_dtype" in text and "runtime.fp8_param_gather" in text
