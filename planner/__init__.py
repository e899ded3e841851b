"""planner: hardware-aware deployment planner for large-model training.

Everything the command line does is callable from Python:

    from planner import load_scenario, solve, estimate, parse_plan
    sc = load_scenario("scenarios/32b_16gpu.yaml")
    best = solve(sc)["plans"][0]
    one = estimate(sc, parse_plan("tp=8,pp=1,zero=1,mbs=1"))
"""

from planner.arch import model_stats, summary as model_summary
from planner import estimate  # a callable package: estimate(scenario, plan)
from planner.search.solver import solve
from planner.spec import load_scenario, parse_plan

__all__ = ["load_scenario", "parse_plan", "estimate", "solve", "model_stats", "model_summary"]
__version__ = "0.1.0"
