"""Every Megatron MoE run's tokens/s error with the MoE-layer costs of benchmarks/moe_missing_results.md
switched on one after another.

    python benchmarks/moe_missing_check.py [--out benchmarks/moe_missing_table.md]

Columns: none of them (the model before this work), + the FP8 quantisation padding copies
(compute_moe.quant_padding_bytes_per_token), + NCCL's measured all-to-all on one 8-GPU board
(comm.ep_all_to_all_s through planner.serve.nccl_measured), + the routing probabilities' own
all-to-all (comm.probs_all_to_all_s). A term is switched off by replacing it with zero (the padding
and the probabilities) or by the measured table's switch (nccl_measured.measured_table(..., measured=False)) for this
process only; nothing is fitted. Runs: the Megatron MoE runs of ../shared/calibration and of
benchmarks/recipe_runs.yaml / memory_runs.yaml, as benchmarks/accuracy.py --with-recipes evaluates
them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from functools import partial
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import accuracy  # noqa: E402
import calibration_runs  # noqa: E402

from planner.estimate import comm, compute  # noqa: E402
from planner.serve import nccl_measured  # noqa: E402

STEPS = ("before", "+ quantisation padding", "+ measured NCCL all-to-all", "+ probabilities all-to-all")


def _switch(step: int) -> None:
    """Switch the terms of STEPS[1:step + 1] on and the later ones off."""
    # the name compute.elementwise_bytes_per_token calls (defined in compute_moe, imported into compute)
    compute.quant_padding_bytes_per_token = _ORIG["pad"] if step >= 1 else (lambda ctx, t: 0.0)
    nccl_measured.measured_table = _ORIG["table"] if step >= 2 else partial(_ORIG["table"], measured=False)
    comm.probs_all_to_all_s = _ORIG["probs"] if step >= 3 else (lambda ctx, t, ep_g=None: np.zeros(len(t["tp"])))


_ORIG = {"pad": compute.quant_padding_bytes_per_token, "probs": comm.probs_all_to_all_s,
         "table": nccl_measured.measured_table}


def errors() -> list[dict]:
    """[{id, file, precision, errors: [one per STEPS]}] for every Megatron MoE run."""
    files = accuracy.default_files(accuracy.DEFAULT_DIR) + list(accuracy.RECIPE_FILES)
    runs = [(run, f) for run, f in accuracy.training_runs(files)
            if run["model"].get("moe") and calibration_runs.framework_of(run) == "megatron"]
    out = [{"id": run["id"], "file": f, "errors": []} for run, f in runs]
    for step in range(len(STEPS)):
        _switch(step)
        for row, (run, f) in zip(out, runs):
            r = accuracy.evaluate(run, f)
            row["precision"] = r["family"]["precision"]
            row["errors"].append(r["error"])
    _switch(len(STEPS) - 1)
    return out


def report(rows: list[dict]) -> str:
    out = ["| run | file | precision | " + " | ".join(STEPS) + " |", "|---|---|---|" + "---:|" * len(STEPS)]
    for r in rows:
        out.append(f"| {r['id']} | {r['file']} | {r['precision']} | "
                   + " | ".join(f"{e:+.1%}" for e in r["errors"]) + " |")
    for prec in sorted({r["precision"] for r in rows}):
        sel = [r for r in rows if r["precision"] == prec]
        cells = [f"{statistics.mean(abs(r['errors'][i]) for r in sel):.1%} ({statistics.mean(r['errors'][i] for r in sel):+.1%})"
                 for i in range(len(STEPS))]
        out.append(f"| **megatron MoE {prec}: mean abs (signed), {len(sel)} runs** | | | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "moe_missing_table.md"))
    args = ap.parse_args(argv)
    text = "# Megatron MoE runs, tokens/s error as each missing MoE-layer cost is added\n\n" \
           "`python benchmarks/moe_missing_check.py` (see its docstring; mechanisms and sources: " \
           "`benchmarks/moe_missing_results.md`). Error = predicted / published - 1.\n\n" + report(errors())
    accuracy.write_atomic(Path(args.out), text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
