"""Estimates of one plan or many: memory, compute, communication, pipeline, offload, cost.

The package itself is callable, so that `planner.estimate(scenario, plan)` evaluates one plan
while `planner.estimate.memory` and friends stay importable as modules.
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, scenario, plan):
        from planner.estimate.evaluate import estimate

        return estimate(scenario, plan)


sys.modules[__name__].__class__ = _CallablePackage
