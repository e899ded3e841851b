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
    if s.mode == "rate" and ok_mem.any() and not stable.any():
        # More replicas only help at a TPOT the target allows: each plan here runs its full batch
        # (the rate fills it), where its TPOT is highest. A target no plan meets even so is named
        # first, relaxed to the nearest TPOT met, and the GPUs are counted at that TPOT.
        within, met, relax = ok_mem, [], {}
        for _, q, target in (x for x in s.slo.targets() if x[0] == "tpot"):
            tpot = np.where(within, ev["tpot"][q], np.inf) * 1e3  # among those within the targets before it
            if tpot.min() > target:
                reasons.append(f"at {s.requests_per_s:g} requests/s every plan runs its full batch, and no plan then "
                               f"keeps TPOT {q} within the {target:g} ms target (lowest {tpot.min():.1f} ms)")
                target = relax[f"tpot_ms_{q}"] = math.ceil(tpot.min())
            within = within & (tpot <= target)
            met.append(f"TPOT {q} within {target:g} ms")
        # a relaxed target goes with each fix: neither more GPUs nor a lower rate gives a plan without it
        relax = _with_p99_at_least_p90(s.slo, relax)
        relaxed = "".join(f"relax slo.{k} to {v:g} and " for k, v in relax.items())
        if relax:
            sc = sc.model_copy(update={"serving": s.model_copy(update={"slo": s.slo.model_copy(update=relax)})})
        # per plan of the available GPUs, how far its counts must grow to qualify at this rate (the SLO's
        # queueing included: at its full-batch capacity a plan is not stable, and its prompt queue misses a TTFT
        # target well before), and the GPUs that takes; the rate it qualifies at as it is, that rate over the factor
        demand = s.requests_per_s * ev["ctx"].out_mean
        rows = np.flatnonzero(ok_mem)  # at a smaller share of the rate a plan runs a smaller batch: any may qualify
        f_dec, f_pre = _scale_to_qualify(sc, t, rows, demand) if len(rows) else (np.zeros(0), np.zeros(0))
        need_gpus = _gpus_at_scale(t, rows, f_dec, f_pre)
        at = "" if not met else " with " + " and ".join(met)
        if len(rows) and np.isfinite(need_gpus).any():
            need = int(need_gpus.min())
            reasons.append(f"{s.requests_per_s:g} requests/s need {need} GPUs at the best {demand / need:,.0f} "
                           f"output tokens/s per GPU{at}; {g} are available")
            fixes.append({"change": f"{relaxed}use at least {need} GPUs ({_where_gpus(sc, need)})", "why": "more replicas"})
            best_rate = s.requests_per_s / max(np.maximum(f_dec, f_pre).min(), 1.0)  # both shares fall with the rate
            unit = 10.0 ** (math.floor(math.log10(best_rate)) - 2)  # rounded down: the rate itself is the limit
            fixes.append({"change": f"{relaxed}lower requests_per_s to {math.floor(best_rate / unit) * unit:.3g}",
                          "why": "what the GPUs sustain"})
        else:
            reasons.append(f"no plan meets the targets at any rate{at}")
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


def _scale_to_qualify(sc, t: dict, rows: np.ndarray, demand: float, rounds: int = 14) -> tuple:
    """Per row of t in `rows`, the least factors (decode, prefill) by which its decode and prefill instance counts
    must grow for it to qualify at the scenario's rate (search.feasible_mask: stable, every target and the hourly
    budget met), inf where none does; a colocated row has no prefill instances (factor 1). A plan's latency and
    stability depend on the counts only through each instance's share of the rate (rate / decode replicas: the
    batch, TPOT and the colocated prompt queue; rate / prefill replicas: a disaggregated plan's prompt queue), so
    the row is evaluated at counts times a factor (not whole numbers: a load per instance), each side's found by
    bisection on its log with the other side's at the top of its range: from the factor at which that side's
    capacity (evaluate: decode_capacity_tok_s, prefill_capacity_tok_s) meets the demand (an instance at full load
    is not stable) to 2**12 times that."""
    from planner.serve.evaluate import evaluate
    from planner.serve.search import feasible_mask

    sub = {k: v[rows] for k, v in t.items()}
    sub.setdefault("prefill_replicas", np.zeros_like(sub["tp"]))
    pre = sub["prefill_replicas"]
    ev = evaluate(sc, sub)
    bottom = [np.log2(np.clip(demand / np.maximum(ev[k], 1e-30), 1e-9, 1e30))
              for k in ("decode_capacity_tok_s", "prefill_capacity_tok_s")]
    top = [b + 12.0 for b in bottom]

    def ok(log_dec, log_pre, sel):
        part = {k: v[sel] for k, v in sub.items()}
        return feasible_mask(sc, evaluate(sc, {**part, "replicas": part["replicas"] * 2.0 ** log_dec,
                                                "prefill_replicas": part["prefill_replicas"] * 2.0 ** log_pre}))

    reach = ok(*top, np.ones(len(pre), dtype=bool))
    out = []
    for side in (0, 1):  # the rows that qualify at the top; on the prefill side the disaggregated ones
        sel = reach & (pre > 0) if side else reach
        lo, hi = bottom[side][sel], top[side][sel]
        for _ in range(rounds if sel.any() else 0):
            mid = 0.5 * (lo + hi)
            good = ok(mid, top[1][sel], sel) if side == 0 else ok(top[0][sel], mid, sel)
            lo, hi = np.where(good, lo, mid), np.where(good, mid, hi)
        f = np.full(len(pre), np.inf)
        f[sel] = 2.0 ** hi
        out.append(f)
    out[1] = np.where(pre > 0, out[1], 1.0)
    return out[0], out[1]


def _gpus_at_scale(t: dict, rows: np.ndarray, f_dec: np.ndarray, f_pre: np.ndarray) -> np.ndarray:
    """GPUs of each row with its instance counts grown by the factors of _scale_to_qualify in whole instances
    (never below the row's own): the decode (colocated: all) replicas to ceil(f_dec x count); the prefill count
    must stay a power of two (search._with_disaggregated), so it grows by the power of two at least f_pre."""
    pre = t.get("prefill_replicas", np.zeros_like(t["tp"]))[rows]
    with np.errstate(invalid="ignore", over="ignore"):
        dec = np.ceil(t["replicas"][rows] * np.maximum(f_dec, 1.0) - 1e-9)
        grown = np.where(pre > 0, pre * 2.0 ** np.ceil(np.log2(np.maximum(f_pre, 1.0)) - 1e-9), 0.0)
        gpus = t["tp"][rows] * t["pp"][rows] * (dec + grown)
    return np.where(np.isfinite(f_dec) & np.isfinite(f_pre), gpus, np.inf)


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


def _with_p99_at_least_p90(slo, relax: dict) -> dict:
    """Targets to relax (key -> ms), with a p99 target raised to its kind's relaxed p90 one where that would pass
    it: a p99 target below the p90 one is refused (spec.serving.SLO), and relaxing TPOT p90 to a whole 3 ms
    above a p99 target of 2.5 ms made the fix a file that exits 2."""
    out = dict(relax)
    for kind in ("ttft", "tpot"):
        p90, p99 = out.get(f"{kind}_ms_p90"), out.get(f"{kind}_ms_p99", getattr(slo, f"{kind}_ms_p99"))
        if p90 is not None and p99 is not None and p99 < p90:
            out[f"{kind}_ms_p99"] = p90
    return out


def _joint_fix(sc, pool, ev) -> dict | None:
    """One change that gives a plan: every limit (SLO target, hourly budget) relaxed to what the plan nearest to
    all of them at once (limit_ratio) needs. Relaxing each target to the best any plan reaches alone is not enough
    where those are different plans."""
    cap = sc.budget.max_usd_per_hour
    ratio = np.where(pool, limit_ratio(sc, ev, ev["usd_per_hour"]), np.inf)
    if not np.isfinite(ratio).any():
        return None
    i = int(np.argmin(ratio))
    relax = _with_p99_at_least_p90(sc.serving.slo, {f"{kind}_ms_{q}": math.ceil(ev[kind][q][i] * 1e3) for kind, q, target
                                                     in sc.serving.slo_targets() if ev[kind][q][i] * 1e3 > target})
    changes = [f"relax slo.{k} to {v:g}" for k, v in relax.items()]
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
        # every candidate is a vLLM plan whose max_batch exceeds vLLM's default token budget (each attention-DP
        # rank's share of both alike): search._expanded leaves them out (engines.vllm_tokens_ok)
        tp = max(d["tp"])
        adp = m.moe is not None and tp > 1
        mbt = int(E.default_max_batched_tokens(np.array([E.VLLM]), gpu.memory_gib, sc.serving.offline, tp, adp)[0])
        b = np.array(so.max_batch)
        if not E.vllm_tokens_ok(E.VLLM, b, tp, adp, mbt).any():
            # under attention DP the replica's budget is tp ranks' max_num_batched_tokens (default_max_batched_tokens)
            budget = (f"{mbt:,} a replica: {tp} attention-DP ranks x its max_num_batched_tokens {mbt // tp:,}" if adp
                      else f"{mbt:,}, its max_num_batched_tokens here")
            return {"reasons": [f"vLLM refuses to start with more running sequences (search.max_batch "
                                f"{list(so.max_batch)}) than tokens per step ({budget}): no plan to evaluate"],
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
