"""planner: hardware-aware deployment planner for large-model training.

Everything the command line does is callable from Python:

    from planner import load_scenario, solve, estimate, parse_plan
    sc = load_scenario("scenarios/32b_16gpu.yaml")
    best = solve(sc)["plans"][0]
    one = estimate(sc, parse_plan("tp=8,pp=1,zero=1,mbs=1").resolved(sc))

Names are imported on first use, so that `planner catalog` or `planner validate` do not pay for
the solver's imports (OR-Tools pulls in pandas).
"""

__all__ = ["load_scenario", "parse_plan", "estimate", "solve", "model_stats", "model_summary"]
__version__ = "0.1.0"


def __getattr__(name):
    if name == "solve":
        from planner.search.solver import solve

        return solve
    if name == "estimate":
        import planner.estimate as estimate  # a callable package: estimate(scenario, plan)

        return estimate
    if name in ("load_scenario", "parse_plan"):
        import planner.spec as spec

        return getattr(spec, name)
    if name == "model_stats":
        from planner.arch import model_stats

        return model_stats
    if name == "model_summary":
        from planner.arch import summary

        return summary
    raise AttributeError(f"module 'planner' has no attribute {name!r}")
