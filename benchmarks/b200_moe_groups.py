"""Megatron MoE recipe rows on 8-GPU boards and NVL72: which parallel groups leave the NVLink domain, and
how much the NIC-bound terms or the host floor would have to grow to hold the time the model misses.

    python benchmarks/b200_moe_groups.py [--out FILE]

For every Megatron-Bridge MoE row of benchmarks/recipe_runs.yaml with a throughput figure (DeepSeek-V3,
Qwen3-235B-A22B, Qwen3-30B-A3B, gpt-oss-120b) on DGX B200, HGX B300, GB200 / GB300 NVL72 and DGX H100: the
scenario calibration_runs.build makes, its resolved plan and `planner.estimate` on it. Per row:

* each group (size, and `x` where it leaves the scale-up domain, `planner.estimate.topology.profile` with
  the rank order of comm.py: TP innermost, then CP, DP, PP; EP over consecutive ranks of tp x cp x dp with
  etp = 1; the expert data-parallel group EDP = tp*cp*dp / (ep*etp), ep*etp ranks apart);
* the step terms that run over the NICs (pp_comm where PP leaves the domain, ep_comm where EP does, dp_comm
  where DP or EDP does) and the published step (step x predicted / published tokens/s, as accuracy.py);
* `NIC x`: the factor by which those NIC-bound seconds would have to grow to hold the missing time
  ((nic + missing) / nic), i.e. 1 / (the fraction of the modelled NIC rate the traffic would have to run at);
* `host x`: the factor by which the MoE layer's modelled host time (host.py, a floor, not added to the GPU
  time) would have to grow to exceed the layer's GPU time plus the missing time per layer and micro-batch
  (missing / (ga x layers / pp)), i.e. to become the binding term and hold the missing time.

Nothing is fitted; the script only reads the model (benchmarks/b200_moe_results.md discusses the numbers).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import accuracy  # noqa: E402
import calibration_runs  # noqa: E402
import moe_nvl72_decomposition  # noqa: E402

from planner.estimate.topology import profile  # noqa: E402

MODELS = {"dsv3": "DeepSeek-V3", "qwen3-235b": "Qwen3-235B-A22B", "qwen3-30b": "Qwen3-30B-A3B",
          "gpt-oss": "gpt-oss-120b"}
NODES = ("dgx-b200", "hgx-b300", "gb200-nvl72", "gb300-nvl72", "dgx-h100")


def family(run_id: str) -> str | None:
    return next((name for key, name in MODELS.items() if key in run_id), None)


def groups(node, plan) -> dict:
    """{name: (size, members per domain, leaves the domain)} of the plan's groups on the node's cluster."""
    tp, cp, dp, ep, pp, etp = plan.tp, plan.cp, plan.dp, plan.ep, plan.pp, plan.etp or 1
    spec = {"TP": (tp, 1), "CP": (cp, tp), "DP": (dp * cp, tp), "EP": (ep, etp),
            "EDP": (max(1, tp * cp * dp // (ep * etp)), ep * etp), "PP": (pp, tp * cp * dp)}
    out = {}
    for name, (size, stride) in spec.items():
        k, crosses = profile(node, np.array([size]), np.array([stride]))
        out[name] = (int(size), int(np.ravel(k)[0]), bool(np.ravel(crosses)[0]))
    return out


def analyse(run: dict) -> dict:
    """Groups, NIC-bound seconds, missing time and the two growth factors of one row (module docstring)."""
    sc, plan, node, r, published = calibration_runs.estimated(run)
    predicted, step, terms = r["throughput"]["tokens_per_s_per_gpu"], r["time"]["step_s"], r["time"]["breakdown_s"]
    missing = step * predicted / published - step
    g = groups(sc.cluster.node, plan)
    nic = (terms.get("pp_comm", 0.0) * g["PP"][2] + terms.get("ep_comm", 0.0) * g["EP"][2]
           + terms.get("dp_comm", 0.0) * (g["DP"][2] or g["EDP"][2]))
    layer = moe_nvl72_decomposition.decompose(run)["layer"]
    gpu_layer = sum(v for k, v in layer.items() if k != "host")  # ms, one MoE layer and micro-batch
    missing_layer = 1e3 * missing / (plan.ga * sc.model.layers / plan.pp)
    moe = sc.model.moe
    # routed rows per local expert and micro-batch with balanced routing (the recipes force it): the EP
    # group's tokens (sequence-parallel TP splits them) x top-k over the experts
    tokens = plan.mbs * sc.training.seq_len / plan.cp / (plan.tp if plan.sp else 1)
    rows_per_expert = plan.ep * tokens * moe.top_k / moe.experts
    return {"id": run["id"], "family": family(run["id"]), "node": node.split(" ")[0],
            "plan": f"pp{plan.pp} vpp{plan.vpp} ep{plan.ep} dp{plan.dp} mbs{plan.mbs} ga{plan.ga}",
            "dispatcher": sc.runtime.moe_dispatcher, "groups": g, "error": predicted / published - 1,
            "step": step, "published_step": step + missing, "missing": missing, "nic_s": nic,
            "nic_x": (nic + missing) / nic if nic > 0 else None,
            "host_ms": layer["host"], "gpu_ms": gpu_layer, "missing_layer_ms": missing_layer,
            "host_x": (gpu_layer + missing_layer) / layer["host"] if layer["host"] > 0 else None,
            "local_experts": moe.experts // (plan.ep * (plan.etp or 1)), "rows_per_expert": rows_per_expert}


def wanted(run: dict) -> bool:
    """Megatron-Bridge rows of the four MoE models with a published throughput (rows() keeps NODES)."""
    me = run.get("measured") or {}
    return (run["id"].startswith("mbridge") and family(run["id"]) is not None
            and bool(me.get("tokens_per_sec_per_gpu") or me.get("tflops_per_gpu")))


def runs(path: Path = HERE / "recipe_runs.yaml") -> list[dict]:
    """The wanted() rows of recipe_runs.yaml as recorded."""
    return [r for r in yaml.safe_load(path.read_text()) or [] if wanted(r)]


def rows(path: Path = HERE / "recipe_runs.yaml") -> list[dict]:
    """analyse() of each of runs() on the NODES."""
    return [d for d in map(analyse, runs(path)) if d["node"] in NODES]


def _group_text(g: dict) -> str:
    return " ".join(f"{n}{s}{'x' if c else ''}" for n, (s, k, c) in g.items() if s > 1)


def render(data: list[dict], regressions: set[str] = frozenset()) -> str:
    order = {n: i for i, n in enumerate(NODES)}
    data = sorted(data, key=lambda d: (list(MODELS.values()).index(d["family"]), order[d["node"]], d["id"]))
    lines = ["Groups: size, `x` = leaves the NVLink domain (over the per-GPU NICs). Seconds per step; `NIC x` and "
             "`host x` as in the module docstring (`-`: no NIC-bound term). `*` = a known regression "
             "(known_regressions.yaml).", "",
             "| run | node | plan | dispatcher | groups | error | step | published | missing | NIC-bound s | NIC x "
             "| host / GPU ms per MoE layer-mb | host x | local experts x rows |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for d in data:
        star = "*" if d["id"] in regressions else ""
        nic_x = "-" if d["nic_x"] is None else f"{d['nic_x']:.1f}"
        lines.append(f"| {d['id']}{star} | {d['node']} | {d['plan']} | {d['dispatcher']} | {_group_text(d['groups'])} "
                     f"| {100 * d['error']:+.1f}% | {d['step']:.2f} | {d['published_step']:.2f} | {d['missing']:+.2f} "
                     f"| {d['nic_s']:.2f} | {nic_x} | {d['host_ms']:.2f} / {d['gpu_ms']:.2f} | {d['host_x']:.1f} "
                     f"| {d['local_experts']} x {d['rows_per_expert']:.0f} |")
    lines += ["", "Per model and node, known regressions left out (mean signed error; mean missing s per step):", "",
              "| model | node | rows | mean error | mean missing s | rows with a NIC-bound term | NIC x (min-max) "
              "| host x (min-max) |", "|---|---|---:|---:|---:|---:|---|---|"]
    keys = dict.fromkeys((d["family"], d["node"]) for d in data)
    for fam, node in keys:
        sel = [d for d in data if (d["family"], d["node"]) == (fam, node) and d["id"] not in regressions]
        if not sel:
            continue
        nx = [d["nic_x"] for d in sel if d["nic_x"] is not None]
        hx = [d["host_x"] for d in sel]
        lines.append(f"| {fam} | {node} | {len(sel)} | {100 * statistics.fmean(d['error'] for d in sel):+.1f}% "
                     f"| {statistics.fmean(d['missing'] for d in sel):+.2f} | {len(nx)} "
                     f"| {f'{min(nx):.1f}-{max(nx):.1f}' if nx else '-'} | {min(hx):.1f}-{max(hx):.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write the tables here (default: stdout)")
    args = ap.parse_args(argv)
    moe_nvl72_decomposition.emit(render(rows(), set(accuracy.known_regressions())), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
