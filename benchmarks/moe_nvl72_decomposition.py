"""Where the planner puts the time of the Megatron MoE recipe rows, term by term (NVL72 EP32-64 and the
8-GPU-board rows of the same models).

    python benchmarks/moe_nvl72_decomposition.py [--out FILE]

For every Megatron-Bridge Qwen3-235B-A22B / DeepSeek-V3 row of benchmarks/recipe_runs.yaml with a
throughput figure: the scenario calibration_runs.build makes, `planner.estimate.evaluate.estimate` on it,
and two tables (markdown, to stdout or --out):

* the step's terms (`time.breakdown_s`), the published step implied by the row's tokens/s per GPU
  (step x predicted / published, as benchmarks/accuracy.py compares them) and what an exact prediction
  would need removed ("missing" < 0: the model is slow by that many seconds);
* one MoE layer and micro-batch, forward + backward, on the GPU: core attention (compute.layer_costs
  attn_fwd + attn_bwd), expert GEMMs (3 x moe_expert), the layer's other GEMMs (3 x (moe_matmul -
  moe_expert): attention projections, router), the rest of the layer (3 x (moe_fwd - moe_matmul):
  permutation, norms, activation, quantisation, elementwise), the EP dispatch + combine
  (comm.layer_comm ep_moe_layer) and the host time of the layer (moe_host, a floor, not added).

Nothing is fitted here; it only reads the model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import calibration_runs  # noqa: E402

from planner.estimate import table  # noqa: E402
from planner.estimate.evaluate import Context, layer_units  # noqa: E402

MODELS = ("qwen3-235b", "dsv3")
TERMS = ("compute", "recompute", "ep_comm", "pp_comm", "pp_bubble", "dp_comm", "optimizer")


def wanted(run: dict) -> bool:
    """Megatron-Bridge rows of the two large MoE models with a published throughput."""
    me = run.get("measured") or {}
    return (run["id"].startswith("mbridge") and any(m in run["id"] for m in MODELS)
            and bool(me.get("tokens_per_sec_per_gpu") or me.get("tflops_per_gpu")))


def _first(x) -> float:
    return float(np.ravel(x)[0])


def decompose(run: dict) -> dict:
    """Step terms, published step and the per-layer split of one run (module docstring)."""
    sc, plan, node, r, published = calibration_runs.estimated(run)
    predicted, step = r["throughput"]["tokens_per_s_per_gpu"], r["time"]["step_s"]
    unit, comm = layer_units(Context(sc), table.from_plans([plan]))
    u = {k: _first(v) * 1e3 for k, v in unit.items() if k.startswith(("moe_", "attn_"))}
    layer = {"attention": u["attn_fwd"] + u["attn_bwd"], "expert GEMMs": 3 * u["moe_expert"],
             "other GEMMs": 3 * (u["moe_matmul"] - u["moe_expert"]),
             "rest": 3 * (u["moe_fwd"] - u["moe_matmul"]), "EP a2a": _first(comm["ep_moe_layer"]) * 1e3,
             "host": u["moe_host"]}
    return {"id": run["id"], "node": node, "plan": f"pp{plan.pp} vpp{plan.vpp} ep{plan.ep} mbs{plan.mbs} ga{plan.ga}",
            "dispatcher": sc.runtime.moe_dispatcher, "error": predicted / published - 1, "step": step,
            "published_step": step * predicted / published, "terms": r["time"]["breakdown_s"], "layer": layer}


def rows(path: Path = HERE / "recipe_runs.yaml") -> list[dict]:
    runs = [r for r in yaml.safe_load(path.read_text()) or [] if wanted(r)]
    out = [decompose(r) for r in runs]
    nvl = [d for d in out if "nvl72" in d["node"]]
    return nvl + [d for d in out if "nvl72" not in d["node"]]


def render(data: list[dict]) -> str:
    head = ["run", "node", "plan", "dispatcher", *TERMS, "step", "published step", "missing", "error"]
    lines = ["Seconds per step (`time.breakdown_s`); missing = published step - modelled step.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * 4 + "---:|" * (len(head) - 4)]
    for d in data:
        t = d["terms"]
        lines.append("| " + " | ".join([d["id"], d["node"], d["plan"], d["dispatcher"],
                                        *(f"{t.get(k, 0.0):.2f}" for k in TERMS), f"{d['step']:.2f}",
                                        f"{d['published_step']:.2f}", f"{d['published_step'] - d['step']:+.2f}",
                                        f"{100 * d['error']:+.1f}%"]) + " |")
    keys = list(data[0]["layer"]) if data else []
    lines += ["", "One MoE layer and micro-batch, forward + backward, ms (host: the layer's host time, a floor "
              "the GPU time already exceeds where it is smaller).", "",
              "| run | " + " | ".join(keys) + " | GPU total | EP share |", "|---|" + "---:|" * (len(keys) + 2)]
    for d in data:
        layer = d["layer"]
        gpu = sum(v for k, v in layer.items() if k != "host")
        lines.append(f"| {d['id']} | " + " | ".join(f"{layer[k]:.2f}" for k in keys)
                     + f" | {gpu:.2f} | {100 * layer['EP a2a'] / gpu:.0f}% |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write the tables here (default: stdout)")
    args = ap.parse_args(argv)
    emit(render(rows()), args.out)
    return 0


def emit(text: str, out: Path | None) -> None:
    """text to the file `out`, or to stdout where none is given (the --out of the MoE decomposition scripts)."""
    if out:
        out.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    raise SystemExit(main())
