"""Every solution of a small CP-SAT model, as an array (the search spaces enumerate layouts this way)."""

from __future__ import annotations

import contextlib
import os
import sys
import types

import numpy as np


class _PandasOnUse(types.ModuleType):
    """Stands for pandas in OR-Tools' CP-SAT module after its import: the first attribute read imports
    the real pandas (so its pandas-indexed helpers still work for any other user in this process)."""

    def __getattr__(self, name):
        import pandas

        return getattr(pandas, name)


@contextlib.contextmanager
def _lazy_binding():
    """Shared libraries loaded inside bind their function symbols when first called (dlopen RTLD_LAZY,
    the C default) instead of all at load: CPython loads extension modules with RTLD_NOW
    (sys.getdlopenflags), and OR-Tools' CP-SAT extension and its libortools resolve tens of thousands
    of symbols the planner never calls (ld.so's do_lookup_x: 2% of the instructions of a DeepSeek-V3 /
    2,048 search; the import 0.06-0.17 -> 0.05-0.07 s CPU here). The flags are restored after;
    platforms without dlopen flags (Windows) load as they do."""
    get, put = getattr(sys, "getdlopenflags", None), getattr(sys, "setdlopenflags", None)
    lazy, now = getattr(os, "RTLD_LAZY", None), getattr(os, "RTLD_NOW", None)
    if get is None or put is None or lazy is None or now is None:
        yield
        return
    flags = get()
    put((flags & ~now) | lazy)
    try:
        yield
    finally:
        put(flags)


def cp_model():
    """OR-Tools' CP-SAT modelling module, imported when a search first needs it. Its module imports
    pandas (0.2 s of a 0.5 s start-up on 2 cores) only for the pandas-indexed variable helpers
    (new_int_var_series and the like: their signatures name pd.Index and pd.Series), which the
    planner does not use; so while it is first imported `pandas` names a placeholder holding those two
    classes; afterwards the placeholder leaves sys.modules and the module's `pd` imports the real
    pandas on first use. If the import fails with the placeholder (another OR-Tools release), it is
    imported again the ordinary way. Already imported: as is."""
    name = "ortools.sat.python.cp_model"
    if name not in sys.modules and "pandas" not in sys.modules:
        stub = types.ModuleType("pandas")
        stub.Index, stub.Series = type("Index", (), {}), type("Series", (), {})
        sys.modules["pandas"] = stub
        try:
            with _lazy_binding():
                from ortools.sat.python import cp_model as module
            module.pd = _PandasOnUse("pandas")
            return module
        except Exception:  # noqa: BLE001 - any failure: fall back to the ordinary import below
            sys.modules.pop(name, None)
        finally:
            if sys.modules.get("pandas") is stub:
                del sys.modules["pandas"]
    with _lazy_binding():
        from ortools.sat.python import cp_model as module

    return module


def all_solutions(model, variables: list) -> np.ndarray:
    """Values of `variables` (integer or boolean) in every solution of `model`, one row per solution
    (CP-SAT with enumerate_all_solutions on one worker: complete, deterministic)."""
    cp = cp_model()
    rows: list[list[int]] = []

    class Collector(cp.CpSolverSolutionCallback):
        def on_solution_callback(self):
            rows.append([self.Value(v) for v in variables])

    solver = cp.CpSolver()
    solver.parameters.enumerate_all_solutions = True
    solver.parameters.num_workers = 1
    # no symmetry detection: with every solution enumerated it may remove none, and detecting it took
    # 2-3 of the ~11 ms of DeepSeek-V3 / 2,048 GPUs' device grid (tests compare with brute force)
    solver.parameters.symmetry_level = 0
    solver.Solve(model, Collector())
    return np.array(rows, dtype=np.int64).reshape(-1, len(variables))
