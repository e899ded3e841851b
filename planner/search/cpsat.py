"""Every solution of a small CP-SAT model, as an array (the search spaces enumerate layouts this way)."""

from __future__ import annotations

import numpy as np


def all_solutions(model, variables: list) -> np.ndarray:
    """Values of `variables` (integer or boolean) in every solution of `model`, one row per solution
    (CP-SAT with enumerate_all_solutions on one worker: complete, deterministic)."""
    from ortools.sat.python import cp_model  # imported when a search needs it (start-up time)

    rows: list[list[int]] = []

    class Collector(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self):
            rows.append([self.Value(v) for v in variables])

    solver = cp_model.CpSolver()
    solver.parameters.enumerate_all_solutions = True
    solver.parameters.num_workers = 1
    solver.Solve(model, Collector())
    return np.array(rows, dtype=np.int64).reshape(-1, len(variables))
