"""Why no serving plan qualifies, and the nearest changes that would give one."""

from __future__ import annotations

import math

import numpy as np

from planner.serve import engines as E


def explain_serving(sc, t: dict, ev: dict) -> dict:
    """Reasons (which limit fails, by how much) and nearest fixes, from the evaluated table."""
    s, gpu = sc.serving, sc.cluster.node.gpu
    mem = ev["mem"]
    fits = mem["verdict"] < 2
    reasons, fixes = [], []
    from planner.serve.search import max_gpus

    g = max_gpus(sc)
    if not len(t["tp"]):
        return _no_layout(sc, g)
    if not fits.any():
        cap = gpu.memory_gib * E.GIB * E.VLLM_GPU_MEMORY_UTILIZATION
        need = {}
        for wname in sc.search.weights:
            w = E.WEIGHT_NAMES.index(wname)
            sel = (t["wq"] == w) & (t["pp"] == 1) & (t["tp"] == 1)
            if sel.any():
                need[wname] = float(mem["weights"][sel].max())
        if need:
            best = min(need, key=need.get)
            n = max(1, math.ceil(need[best] / cap))
            reasons.append(f"the weights alone need {n} GPU(s) of {gpu.memory_gib:.0f} GiB at {best} "
                           f"({need[best] / E.GIB:.0f} GiB), and {g} GPU(s) are available"
                           if n > g else f"no layout leaves room for the KV cache of one sequence "
                           f"of {s.input_tokens} + {s.output_tokens} tokens")
            if n > g or max(n * 2, 2) > g:
                fixes.append({"change": f"use at least {max(n * 2, 2)} GPUs ({_where_gpus(sc, max(n * 2, 2))})",
                              "why": "weights split over more GPUs leave room for the KV cache"})
            else:  # enough GPUs: the sequence itself is too long for what is left
                fixes.append({"change": "shorten input_tokens + output_tokens, or allow search.kv_cache fp8",
                              "why": "the KV cache of one sequence does not fit beside the weights"})
            lighter = [x for x in ("fp8", "nvfp4", "int4-awq") if x not in sc.search.weights
                       and E.compute_precision(x, gpu)]
            if lighter:
                fixes.append(_lighter_weights_fix(sc, lighter[0], cap, g))
        return {"reasons": reasons, "fixes": fixes}
    ok_mem = fits & (ev["batch_cap"] >= 1 - 1e-9)
    stable = ok_mem & ev["stable"]
    if s.mode == "rate" and not stable.any():
        # More replicas only help at a TPOT the target allows: each plan here runs its full batch
        # (the rate fills it), where its TPOT is highest. A target no plan meets even so is named
        # first, relaxed to the nearest TPOT met, and the GPUs are counted at that TPOT.
        within, met = ok_mem, []
        for _, q, target in (x for x in s.slo.targets() if x[0] == "tpot"):
            tpot = np.where(ok_mem, ev["tpot"][q], np.inf) * 1e3
            if tpot.min() > target:
                reasons.append(f"at {s.requests_per_s:g} requests/s every plan runs its full batch, and no plan then "
                               f"keeps TPOT {q} within the {target:g} ms target (lowest {tpot.min():.1f} ms)")
                target = math.ceil(tpot.min())
                fixes.append({"change": f"relax slo.tpot_ms_{q} to {target}", "why": "nearest target met at full batch"})
            within = within & (tpot <= target)
            met.append(f"TPOT {q} within {target:g} ms")
        per_gpu = np.where(within, ev["capacity_tok_s"] / ev["gpus"], 0).max()
        need = s.requests_per_s * ev["ctx"].out_mean / max(per_gpu, 1e-9)
        at = "" if not met else " with " + " and ".join(met)
        reasons.append(f"{s.requests_per_s:g} requests/s need about {need:.0f} GPUs at the best "
                       f"{per_gpu:,.0f} output tokens/s per GPU{at}; {g} are available")
        fixes.append({"change": f"use at least {math.ceil(need)} GPUs ({_where_gpus(sc, math.ceil(need))})",
                      "why": "more replicas"})
        best_rate = s.requests_per_s * g / max(need, 1e-9)
        fixes.append({"change": f"lower requests_per_s to {best_rate:.3g}", "why": "what the GPUs sustain"})
        return {"reasons": reasons, "fixes": fixes}
    pool = stable if s.mode == "rate" else ok_mem
    for kind, q, target in s.slo_targets():
        best = np.where(pool, ev[kind][q], np.inf).min() * 1e3
        if best > target:
            name, fmt = ("TPOT", ".1f") if kind == "tpot" else ("TTFT", ".0f")
            reasons.append(f"the lowest {name} {q} of any plan is {best:{fmt}} ms, above the {target:g} ms target")
    if sc.budget.max_usd_per_hour is not None:
        cheapest = np.where(pool & ev["meets_slo"], ev["usd_per_hour"], np.inf).min()
        if np.isfinite(cheapest) and cheapest > sc.budget.max_usd_per_hour:
            reasons.append(f"the cheapest plan that meets the targets costs ${cheapest:,.2f}/h, above "
                           f"budget.max_usd_per_hour {sc.budget.max_usd_per_hour:g}")
    if not reasons:
        reasons.append("no plan meets every target at once (each is met by some plan alone)")
    fixes = [f for f in fixes + [_joint_fix(sc, pool, ev)] if f]
    if not fixes:  # every limit is met by some plan, and none qualifies for another reason
        fixes.append({"change": "relax the SLO or add GPUs", "why": "targets conflict"})
    return {"reasons": reasons, "fixes": fixes}


def limit_ratio(sc, lat: dict, usd_h) -> np.ndarray:
    """Per plan, how far it is from the scenario's limits: the largest of each latency quantile over its SLO
    target (lat: {"tpot": {"p90": s, "p99": s}, "ttft": {...}}, seconds; TTFT not offline) and $/h over
    budget.max_usd_per_hour (1 or less: all met). The plan of least ratio needs the least relaxation of all of
    them at once (_joint_fix); planner.serve.concurrency keeps it among the rows an infeasible search explains
    with."""
    cap = sc.budget.max_usd_per_hour
    ratio = np.zeros(np.shape(usd_h))
    for kind, q, target in sc.serving.slo_targets():
        ratio = np.maximum(ratio, lat[kind][q] * 1e3 / target)
    if cap is not None:
        ratio = np.maximum(ratio, usd_h / cap)
    return np.nan_to_num(ratio, nan=np.inf)


def _joint_fix(sc, pool, ev) -> dict | None:
    """One change that gives a plan: every limit (SLO target, hourly budget) relaxed to what the plan nearest to
    all of them at once (limit_ratio) needs. Relaxing each target to the best any plan reaches alone is not enough
    where those are different plans."""
    cap = sc.budget.max_usd_per_hour
    ratio = np.where(pool, limit_ratio(sc, ev, ev["usd_per_hour"]), np.inf)
    if not np.isfinite(ratio).any():
        return None
    i = int(np.argmin(ratio))
    changes = [f"relax slo.{kind}_ms_{q} to {math.ceil(ev[kind][q][i] * 1e3)}"
               for kind, q, target in sc.serving.slo_targets() if ev[kind][q][i] * 1e3 > target]
    over_budget = cap is not None and ev["usd_per_hour"][i] > cap
    if over_budget:
        changes.append(f"raise budget.max_usd_per_hour to {math.ceil(ev['usd_per_hour'][i] * 100) / 100:.2f}")
    if not changes:
        return None
    return {"change": " and ".join(changes),
            "why": "one plan meets all of these at once" if len(changes) > 1
            else "cheapest plan that meets the targets" if over_budget else "nearest target met"}


def _where_gpus(sc, n: int) -> str:
    """Which keys give n GPUs: cluster.nodes (or budget.max_gpus where it is the limit), or, where n GPUs span
    nodes and the node has no scale-out link (the scenario refuses more than one such node), another node."""
    node = sc.cluster.node
    if math.ceil(n / node.gpus_per_node) * node.gpus_per_node > node.domain and node.scaleout_gb_s is None:
        return (f"{node.name} has no scale-out link to a second node: cluster.node with scaleout_gb_s, or a "
                f"node of more GPUs")
    return "cluster.nodes or budget.max_gpus"


def _lighter_weights_fix(sc, scheme: str, cap: float, gpus: int) -> dict:
    """The fix 'allow a lighter weight scheme', with the GPUs its weights alone need (the weights of
    the whole model at that scheme, memory.weight_bytes of a single-GPU layout, over the usable
    memory per GPU): 'and use at least n GPUs' where the GPUs available would still not hold them."""
    from planner.serve.memory import model_facts, weight_bytes

    k = sc.model.hidden
    one = {"tp": np.array([1]), "pp": np.array([1]), "ep": np.array([1]), "attn_dp": np.array([False])}
    w = float(weight_bytes(model_facts(sc.model), one, E.weight_bytes_per_element(scheme, k),
                           E.weight_bytes_per_element(E.dense_scheme(scheme), k),
                           E.weight_bytes_per_element(E.mla_proj_scheme(scheme), k))[0])
    n = max(1, math.ceil(w / cap))
    change = f"allow search.weights {scheme}" + (f" and use at least {n} GPUs ({_where_gpus(sc, n)})" if n > gpus else "")
    return {"change": change, "why": f"fewer bytes per weight: {w / E.GIB:.0f} GiB of weights at {scheme}"}


def _no_layout(sc, g: int) -> dict:
    """Why the candidate table is empty: a search list with no legal value (tp must divide the
    attention heads, pp be at most the layers, ep divide the experts), no engine x weight scheme the GPU
    runs, no instance (tp x pp) within the GPUs, only vLLM plans whose max_batch exceeds vLLM's token budget, or
    only disaggregated plans on too few GPUs or at a concurrency of one (the replica count is at most the
    concurrency)."""
    from planner.serve.search import _domains

    m, so, gpu = sc.model, sc.search, sc.cluster.node.gpu
    d = _domains(sc)
    rules = {"tp": f"divides the {m.heads} attention heads", "pp": f"is at most the {m.layers} layers",
             "ep": f"divides the {m.moe.experts} experts" if m.moe else "is 1 (a dense model)"}
    empty = [k for k in ("tp", "pp", "ep") if not d[k]]
    if empty:
        reasons = [f"no value of search.{k} {rules[k]}" for k in empty]
        return {"reasons": reasons, "fixes": [{"change": f"widen or drop search.{k}", "why": f"{k} must be one that "
                                               f"{rules[k]}"} for k in empty]}
    problems = [E.format_problem(E.ENGINE_NAMES.index(e), w, kv, gpu) or E.model_problem(w, m)
                for e in so.engines for w in so.weights for kv in so.kv_cache]
    if not any(E.engine_supported(i, gpu) for i in range(len(E.ENGINE_NAMES))):
        return {"reasons": sorted({E.engine_problem(E.ENGINE_NAMES.index(e), gpu) for e in so.engines}),
                "fixes": [{"change": "plan on an NVIDIA or AMD node (cluster.node)",
                           "why": f"no engine's pinned release runs on {gpu.name}"}]}
    if all(problems):
        return {"reasons": [f"the {gpu.name} runs none of search.engines {list(so.engines)} with search.weights "
                            f"{list(so.weights)} and search.kv_cache {list(so.kv_cache)}"]
                + sorted(set(problems)),
                "fixes": [{"change": "allow another engine, weight scheme or KV-cache format (search.engines, "
                                     "search.weights, search.kv_cache)",
                           "why": "TensorRT-LLM runs on NVIDIA GPUs from Ampere on, and FP8 there from Ada / Hopper on; "
                                  "vLLM and SGLang (as pinned) on NVIDIA and AMD GPUs; nvfp4 needs NVIDIA FP4 "
                                  "tensor cores; mxfp4 quantises MoE experts only"}]}
    if min(d["tp"]) * min(d["pp"]) > g:
        return {"reasons": [f"the smallest instance, tp {min(d['tp'])} x pp {min(d['pp'])}, needs more than the "
                            f"{g} GPU(s) available"],
                "fixes": [{"change": "allow smaller search.tp / search.pp, or more GPUs", "why": "one instance "
                           "must fit in the cluster"}]}
    engines = [E.ENGINE_NAMES.index(e) for e in so.engines]
    if so.max_batch and set(engines) == {E.VLLM}:
        # every candidate is a vLLM plan whose max_batch (per rank: at the widest tp, with attention data parallel on
        # a MoE model) exceeds vLLM's default token budget: search._expanded leaves them out (engines.vllm_tokens_ok)
        tp = max(d["tp"])
        mbt = int(E.default_max_batched_tokens(np.array([E.VLLM]), gpu.memory_gib, sc.serving.offline)[0])
        b = np.array(so.max_batch)
        if not E.vllm_tokens_ok(E.VLLM, b, tp, m.moe is not None and tp > 1, mbt).any():
            return {"reasons": [f"vLLM refuses to start with more running sequences (search.max_batch "
                                f"{list(so.max_batch)}) than tokens per step ({mbt:,}, its max_num_batched_tokens "
                                "here): no plan to evaluate"],
                    "fixes": [{"change": f"allow a search.max_batch of at most {mbt:,}, or another engine "
                                         "(search.engines)",
                               "why": "vLLM's SchedulerConfig requires max_num_batched_tokens >= max_num_seqs"}]}
    conc = sc.serving.concurrency if sc.serving.mode == "concurrency" else None
    if conc is not None and conc < 2 and 2 * min(d["tp"]) * min(d["pp"]) <= g:
        return {"reasons": [f"no layout to evaluate: search.disaggregated set to true only needs at least two instances "
                            f"(one prefill, one decode), and at concurrency {conc} a plan has at most {conc} instance "
                            "(the replica count is capped by the concurrency)"],
                "fixes": [{"change": "allow colocated plans (add false to search.disaggregated)",
                           "why": "a single request keeps one instance busy; nothing to split"}]}
    return {"reasons": [f"no layout to evaluate: search.disaggregated set to true only needs at least two instances "
                        f"(one prefill, one decode) and {g} GPU(s) are available"],
            "fixes": [{"change": "allow colocated plans (add false to search.disaggregated) or more GPUs",
                       "why": "a single instance cannot be split into prefill and decode pools"}]}
