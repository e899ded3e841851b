"""Explanations: what bounds a plan's step time, and why nothing fits with the nearest changes that
would make it fit (each with its resulting estimate)."""

from __future__ import annotations

import math

import numpy as np

from planner.errors import InputError
from planner.estimate.evaluate import result_row


def bound_by(row: dict) -> dict:
    """The term that bounds the step time and the largest overhead, with their shares."""
    parts = {k: v for k, v in row["time"]["breakdown_s"].items() if v > 0}
    step = row["time"]["step_s"]
    top = sorted(parts.items(), key=lambda kv: -kv[1])
    out = {"term": top[0][0], "share": round(top[0][1] / step, 4)}
    overheads = [(k, v) for k, v in top if k not in ("compute", "recompute")]
    if overheads:
        out["largest_overhead"] = overheads[0][0]
        out["overhead_share"] = round(overheads[0][1] / step, 4)
    return out


def _summary(result_best: dict) -> str:
    p, tp, run = result_best["plan"], result_best["throughput"], result_best["run"]
    cost = "n/a" if run["cost_usd"] is None else f"${run['cost_usd']:,.0f}"
    return (f"{p['framework']} {p['precision']} dp{p['dp']} tp{p['tp']} pp{p['pp']} cp{p['cp']} ep{p['ep']} "
            f"zero{p['zero']} offload={p['offload']} recompute={p['recompute']} mbs{p['mbs']}: "
            f"{result_best['memory']['per_gpu_gib']:.1f} GiB, {tp['tokens_per_s_per_gpu']:,.0f} tok/s/GPU, "
            f"{run['days']:.1f} days, {cost}")


def _best_of(scenario, objective) -> dict | None:
    from planner.search.solver import _keys, _search_one
    from planner.search.rank import order

    run = _search_one(scenario, exhaustive=False)
    if run["ev"] is None or not len(run["feasible"]):
        return None
    i = run["feasible"][order(_keys(run, run["feasible"]), objective)[0]]
    return result_row(run["ctx"], run["t"], run["ev"], int(i))


def nearest_fixes(scenario, objective: str, limit: int = 6) -> list[dict]:
    """Changes that make the scenario feasible, nearest first, each with the best plan's estimate."""
    from planner import catalog

    fixes: list[dict] = []
    cl, so = scenario.cluster, scenario.search
    n = max(cl.node_counts)

    def attempt(label: str, sc) -> bool:
        try:
            best = _best_of(sc, objective)
        except (InputError, ValueError):  # a candidate change that is itself invalid is skipped
            return False
        if best is not None:
            fixes.append({"change": label, "best_plan": best, "summary": _summary(best)})
            return True
        return False

    one = scenario.model_copy(update={"cluster": cl.with_nodes(n)})
    relaxed = {"zero": [0, 1, 2, 3], "offload": ["none", "cpu", "nvme"], "offload_params": ["none", "cpu", "nvme"],
               "recompute": ["none", "selective", "full"], "micro_batch": sorted(set(so.micro_batch) | {1})}
    for key, values in relaxed.items():
        if set(getattr(so, key)) != set(values):
            attempt(f"allow {key} {values}", one.model_copy(update={"search": so.model_copy(update={key: values})}))
    for key, value, why in _runtime_candidates(scenario):
        attempt(f"runtime.{key}: {_yaml_value(value)} ({why})",
                one.model_copy(update={"runtime": scenario.runtime.model_copy(update={key: value})}))
    for factor in (2, 4, 8):
        try:
            more = cl.with_nodes(n * factor)
        except ValueError:  # a node without a scale-out link makes no larger cluster
            break
        if attempt(f"{n * factor} nodes ({n * factor * cl.node.gpus_per_node} GPUs) of {cl.node.name}",
                   one.model_copy(update={"cluster": more})):
            break
    bigger = sorted((catalog.node(name) for name in catalog.names("nodes")),
                    key=lambda nd: nd.gpu.memory_gib)
    tried: set = set()  # GPU memory sizes tried, smallest first, up to the first that fits (one node per size)
    for nd in bigger:
        if nd.gpu.memory_gib <= cl.node.gpu.memory_gib or nd.gpus_per_node != cl.node.gpus_per_node:
            continue
        if (nd.scaleout_gb_s is None and n > 1) or nd.gpu.memory_gib in tried:
            continue
        tried.add(nd.gpu.memory_gib)
        if attempt(f"{n} nodes of {nd.name} ({nd.gpu.name}, {nd.gpu.memory_gib:.0f} GiB)",
                   one.model_copy(update={"cluster": one.cluster.model_copy(update={"node": nd})})) or len(tried) >= 6:
            break
    tr = scenario.training
    if tr.seq_len >= 256 and tr.seq_len % 2 == 0:
        doubled = [2 * b for b in tr.batches]
        attempt(f"sequence {tr.seq_len // 2} with global batch {', '.join(f'{b:,}' for b in doubled[:3])}"
                f"{'...' if len(doubled) > 3 else ''} (same tokens per step)",
                one.model_copy(update={"training": tr.model_copy(update={
                    "seq_len": tr.seq_len // 2, "global_batch": doubled if len(doubled) > 1 else doubled[0],
                    "tokens_per_step": None})}))
    return fixes[:limit]


# Runtime settings that lower memory and that framework recipes set on purpose (each off in the framework's
# own default, which is the planner's default): a scenario without a `runtime:` block gets the default, so
# an out-of-memory plan names them. (key, value, which plans it applies to, who sets it)
RUNTIME_MEMORY_KEYS = (
    ("grad_reduce_dtype", "bf16", None,
     "NeMo / Megatron-Bridge performance recipes: grad_reduce_in_fp32 = False (Megatron-LM --grad-reduce-in-bf16)"),
    ("fp8_param_gather", True, ("megatron", "fp8"),
     "NeMo / Megatron-Bridge FP8 recipes: fp8_param_gather = True (Megatron-LM --fp8-param-gather)"),
    ("cross_entropy_impl", "te", ("megatron", None),
     "Megatron-Bridge performance recipes: cross_entropy_fusion_impl = te"),
    ("expandable_segments", True, None,
     "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True (Megatron-Bridge performance scripts, torchtitan run_train.sh)"),
)


def _yaml_value(value) -> str:
    """A runtime value as the scenario file writes it (true / false, bare words)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _runtime_candidates(scenario, framework: str | None = None, precision: str | None = None):
    """(key, value, why) of RUNTIME_MEMORY_KEYS that the scenario does not set yet and that apply to the
    framework / precision (None: any the search allows)."""
    rt = scenario.runtime
    frameworks = [framework] if framework else list(scenario.search.frameworks)
    precisions = [precision] if precision else list(scenario.search.precision)
    for key, value, scope, why in RUNTIME_MEMORY_KEYS:
        if getattr(rt, key) == value:
            continue
        if scope and (scope[0] not in frameworks or (scope[1] is not None and scope[1] not in precisions)):
            continue
        yield key, value, why


def runtime_fixes(scenario, plan) -> list[dict]:
    """For one plan: each runtime setting of RUNTIME_MEMORY_KEYS the scenario leaves at its default that
    lowers this plan's memory, with the memory and verdict it gives; the last entry all of them together
    (where more than one). Empty when none lowers it."""
    from planner.estimate.evaluate import estimate

    base = estimate(scenario, plan)["memory"]["per_gpu_gib"]
    out, changed = [], {}
    for key, value, why in _runtime_candidates(scenario, plan.framework, plan.precision):
        try:
            sc = scenario.model_copy(update={"runtime": scenario.runtime.model_copy(update={key: value})})
            m = estimate(sc, plan)["memory"]
        except (InputError, ValueError):  # a setting this plan cannot take is not offered
            continue
        if m["per_gpu_gib"] < base - 0.1:
            changed[key] = value
            out.append({"change": f"runtime.{key}: {_yaml_value(value)}", "why": why,
                        "per_gpu_gib": m["per_gpu_gib"], "verdict": m["verdict"]})
    if len(changed) > 1:
        sc = scenario.model_copy(update={"runtime": scenario.runtime.model_copy(update=changed)})
        m = estimate(sc, plan)["memory"]
        out.append({"change": "all of these", "why": "", "per_gpu_gib": m["per_gpu_gib"], "verdict": m["verdict"]})
    return out


def _split_line(scenario) -> list[str]:
    """The scenario's own Megatron pipeline split, which alone can leave no plan: only Megatron plans
    whose pp x vpp Megatron divides it on are searched (planner.estimate.pipeline_split)."""
    from planner.estimate.pipeline_split import layout_stages, split_key

    key = split_key(scenario.runtime)
    if key is None:
        return []
    if key[0] == "layout":
        return [f"runtime.pipeline_layout has {len(layout_stages(key[1]))} virtual stages: only Megatron plans "
                "with pp x vpp equal to that are searched"]
    return [f"runtime.account_for_*_in_pipeline_split: only Megatron plans whose pp divides layers + the "
            f"accounted embedding / loss ({scenario.model.layers + key[1] + key[2]}), and vpp the layers per "
            "rank, are searched"]


def _precision_lines(scenario) -> list[str]:
    """The GPU's catalog has a peak for none of search.precision (a V100 has no bf16 or fp8, the default list):
    every plan is refused (search.space: the precision must be supported by the GPU)."""
    gpu, wanted = scenario.cluster.node.gpu, scenario.search.precision
    if any(gpu.peak_tflops(p) is not None for p in wanted):
        return []
    has = [p for p in ("fp8", "bf16", "fp16", "fp32") if gpu.peak_tflops(p) is not None]
    return [f"{gpu.name} runs none of search.precision {list(wanted)} (the catalog gives it "
            f"{', '.join(has) or 'no'} peaks): set search.precision to {has or 'a precision it runs'}"]


def _unbuildable_lines(scenario) -> list[str]:
    """Each searched framework that cannot build the scenario's model, with its reason
    (frameworks.rules.unbuildable), which alone removes all of that framework's plans."""
    from planner.estimate import table as T
    from planner.frameworks.rules import unbuildable

    why = unbuildable(scenario.model, scenario.training.seq_len)
    return [f"{name} cannot build the model: {why[T.FRAMEWORKS.index(name)]}"
            for name in scenario.search.frameworks if T.FRAMEWORKS.index(name) in why]


def _blocked_frameworks(scenario) -> dict[str, str]:
    """{searched framework: the line saying why} for those that take no plan of the scenario whatever the parallel
    layout: they cannot build the model (frameworks.rules.unbuildable), or training.optimizer muon, which the
    planner models on Megatron only (the framework-wide MUON_RULES)."""
    from planner.estimate import table as T
    from planner.frameworks.rules import MUON_RULES, unbuildable

    why = {code: f"cannot build the model: {msg}" for code, msg in unbuildable(scenario.model).items()}
    if scenario.training.optimizer == "muon":
        for code, msg, _ in MUON_RULES:
            if code not in why and code != T.MEG:  # deepspeed / torchtitan: every plan
                why[code] = f"takes no plan: {msg}"
    return {name: f"{name} {why[T.FRAMEWORKS.index(name)]}" for name in scenario.search.frameworks
            if T.FRAMEWORKS.index(name) in why}


def explain_infeasible(scenario, runs, objective: str):
    """(closest plan, reason lines, fix lines) when no plan is feasible: the reasons say why nothing is
    feasible, the fix lines list the nearest changes that fit (also in closest["fixes"], as data)."""
    with_fit = [(sc, run) for sc, run in runs if run["ev"] is not None and run["fits_memory"]]
    if with_fit:  # plans fit in memory, the budget rules them out: show the fastest
        sc, run = max(with_fit, key=lambda x: x[1]["ev"]["tokens_per_s"][x[1]["ok"]].max())
        i = int(np.flatnonzero(run["ok"])[np.argmax(run["ev"]["tokens_per_s"][run["ok"]])])
        row = result_row(run["ctx"], run["t"], run["ev"], i)
        b = scenario.budget
        lines = [f"{sum(r['fits_memory'] for _, r in runs):,} plans fit in memory but none is within the budget"]
        if b.max_days is not None and row["run"]["days"] > b.max_days:
            lines.append(f"the fastest takes {row['run']['days']:.1f} days > max_days {b.max_days:g}")
        if b.max_usd is not None and (row["run"]["cost_usd"] or 0) > b.max_usd:
            lines.append(f"it costs ${row['run']['cost_usd']:,.0f} > max_usd {b.max_usd:,.0f}")
        if b.max_gpus is not None and sc.cluster.gpus > b.max_gpus:
            lines.append(f"it uses {sc.cluster.gpus} GPUs > max_gpus {b.max_gpus}")
        fixes = _budget_fixes(scenario, with_fit, objective)
        row["fixes"] = [_fix_record(f) for f in fixes]
        fix_lines = [f"  - {f['change']}" + (f": {f['summary']}" if "summary" in f else "") for f in fixes]
        return row, lines, ["nearest changes that fit:"] + fix_lines if fixes else []
    evaluated = [(sc, run) for sc, run in runs if run["ev"] is not None]
    blocked = _blocked_frameworks(scenario)
    if not evaluated and len(blocked) == len(scenario.search.frameworks):
        return None, ["no searched framework can run this scenario, whatever the parallel layout or GPU count:"] \
            + [f"  {line}" for line in blocked.values()], []
    if not evaluated:
        return None, ["no plan satisfies the structural constraints (divisibility of heads, layers, experts, "
                      "sequence and batch by the parallel degrees, TP inside the scale-up domain), the "
                      "frameworks' rules (some follow runtime settings: fp8_recipe, fp8_param_gather, "
                      "fp8_attention, cp_comm, compile"
                      + ("; training.optimizer muon: Megatron only, zero 0 or 1"
                         if scenario.training.optimizer == "muon" else "")
                      + ") and the search restrictions; widen the search lists "
                      "or change the GPU count"] \
            + _precision_lines(scenario) + _split_line(scenario) + _unbuildable_lines(scenario), []
    sc, run = min(evaluated, key=lambda x: _overflow_ratio(x[0], x[1]["ev"]).min())
    ev = run["ev"]
    i = int(np.argmin(_overflow_ratio(sc, ev)))
    row = result_row(run["ctx"], run["t"], ev, i)
    lines, fix_lines = explain_memory(row), []
    fixes = nearest_fixes(scenario, objective)
    if fixes:
        fix_lines = ["nearest changes that fit:"] + [f"  - {f['change']}: {f['summary']}" for f in fixes]
    else:
        rt = "".join(f", runtime.{k}" for k, _, _ in _runtime_candidates(scenario))
        lines.append("no single change tried (more GPUs, a GPU with more memory, ZeRO-3, offload, full "
                     f"recompute, micro-batch 1, half the sequence{rt}) makes it fit")
    row["fixes"] = [_fix_record(f) for f in fixes]
    return row, lines, fix_lines


def _fix_record(f: dict) -> dict:
    """A nearest fix as data (closest["fixes"]): the change, and the best plan it gives where one was searched."""
    if "best_plan" not in f:
        return {"change": f["change"]}
    p = f["best_plan"]
    return {"change": f["change"], "plan": p["plan"], "per_gpu_gib": p["memory"]["per_gpu_gib"],
            "tokens_per_s": p["throughput"]["tokens_per_s"], "days": p["run"]["days"], "cost_usd": p["run"]["cost_usd"]}


def _budget_fixes(scenario, with_fit, objective: str) -> list[dict]:
    """Where plans fit in memory but the budget rules them all out: the budget raised to what the plan nearest to
    every limit at once needs (the least of the largest ratio days / max_days, cost / max_usd, GPUs / max_gpus:
    one change that gives that plan), and, where max_gpus is below the cluster, the cluster cut to the nodes it
    allows when that has a plan within the budget."""
    b, fixes = scenario.budget, []
    limits = [(k, getattr(b, k), key) for k, key in (("max_days", "days"), ("max_usd", "cost_usd"), ("max_gpus", "gpus"))
              if getattr(b, k) is not None]
    best = None
    for sc, run in with_fit:
        ev, ok = run["ev"], run["ok"]
        ratio = np.zeros(len(ok))
        for _, cap, key in limits:
            ratio = np.maximum(ratio, np.nan_to_num(np.asarray(ev[key], dtype=float), nan=np.inf) / cap)
        ratio = np.where(ok, ratio, np.inf)
        i = int(np.argmin(ratio))
        if np.isfinite(ratio[i]) and (best is None or ratio[i] < best[0]):
            best = (ratio[i], ev, i)
    if best is not None:
        _, ev, i = best
        raise_to = {"max_days": lambda v: f"{math.ceil(v * 100) / 100:g}", "max_usd": lambda v: f"{math.ceil(v)}",
                    "max_gpus": lambda v: f"{int(v)}"}
        changes = [f"raise budget.{k} to {raise_to[k](float(ev[key][i]))}" for k, cap, key in limits
                   if float(ev[key][i]) > cap]
        if changes:
            fixes.append({"change": " and ".join(changes)})
    cl = scenario.cluster
    if b.max_gpus is not None and max(cl.node_counts) * cl.node.gpus_per_node > b.max_gpus >= cl.node.gpus_per_node:
        n = b.max_gpus // cl.node.gpus_per_node
        try:
            plan = _best_of(scenario.model_copy(update={"cluster": cl.with_nodes(n)}), objective)
        except (InputError, ValueError):
            plan = None
        if plan is not None:
            fixes.append({"change": f"set cluster.nodes to {n} ({n * cl.node.gpus_per_node} GPUs, within budget.max_gpus)",
                          "best_plan": plan, "summary": _summary(plan)})
    return fixes


def _overflow_ratio(scenario, ev):
    """How far each plan is from fitting: the worst of GPU memory / capacity, host RAM / host
    memory and NVMe / NVMe capacity (1.0 = exactly full)."""
    from planner.estimate.memory import GIB

    node = scenario.cluster.node
    ratio = ev["memory"]["total"] / ev["capacity_bytes"]
    if node.host_memory_gib:
        ratio = np.maximum(ratio, ev["memory"]["host_per_node"] / (node.host_memory_gib * GIB))
    nvme = (node.nvme_tb or 0.0) * 1e12
    ratio = np.maximum(ratio, np.where(ev["memory"]["nvme_per_node"] > 0,
                                       ev["memory"]["nvme_per_node"] / max(nvme, 1.0), 0.0))
    return ratio


def explain_memory(row: dict) -> list[str]:
    """Why the closest plan does not fit: the overflowing term and by how much."""
    m = row["memory"]
    limit = m.get("oom_above_gib", m["capacity_gib"])  # capacity widened by the memory error band
    over = m["per_gpu_gib"] - limit
    terms = sorted(m["breakdown_gib"].items(), key=lambda kv: -kv[1])
    if over > 0:
        return [f"the closest plan needs {m['per_gpu_gib']:.1f} GiB per GPU, oom above {limit:.1f} "
                f"(capacity {m['capacity_gib']:.1f} and the memory error band): over by "
                f"{over:.1f} GiB; the largest term is {terms[0][0]} ({terms[0][1]:.1f} GiB), then "
                + ", ".join(f"{k} {v:.1f}" for k, v in terms[1:4])]
    from planner.report.console import host_shortfall

    return [f"GPU memory fits ({m['per_gpu_gib']:.1f} GiB) but the host does not: {host_shortfall(m)}"]
