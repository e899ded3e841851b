"""The plan space: domains of every field and the structural constraints.

Structural constraints (the same ones Megatron-LM's argument checks enforce, ecosystem.md 4.1):
  dp * tp * pp * cp = GPUs;  heads % tp = 0 and kv_heads % tp = 0 (MLA: heads only);
  tp <= GPUs in the scale-up domain;  layers % (pp * vpp) = 0, or with `search.uneven_pipeline`
  (default) pp * vpp <= layers, the first layers % (pp * vpp) chunks taking one more layer; with
  Megatron's own split (runtime.account_for_*_in_pipeline_split / pipeline_layout) the (pp, vpp) pairs
  Megatron accepts for it (estimate/pipeline_split.py), on Megatron plans only;
  seq_len % (2 * cp) = 0 (load-balanced causal chunks) and seq_len % tp = 0 with sp;
  experts % ep = 0 and ep * etp divides tp * cp * dp (Megatron-Core parallel_state.py builds the expert
  grid etp x ep x expert-dp x pp over the same ranks as tp x cp x dp x pp, order tp-cp-ep-dp-pp: with
  etp = tp, EP is carved from dp x cp; with etp = 1 it may span tp x cp x dp, "parallel folding");
  mbs * ga * dp = a global batch the scenario allows;  the precision must be supported by the GPU.
"""

from __future__ import annotations

from planner.estimate.pipeline_split import layout_stages, split_key, split_problems, valid_pairs_mask


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(n ** 0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def structural_problems(plan, scenario) -> list[str]:
    m, cl, tr = scenario.model, scenario.cluster, scenario.training
    dp, tp, pp, cp, ep, vpp = plan.dp or 1, plan.tp, plan.pp, plan.cp, plan.ep, plan.vpp
    out = []
    if dp * tp * pp * cp != cl.gpus:
        out.append(f"dp*tp*pp*cp = {dp}*{tp}*{pp}*{cp} = {dp * tp * pp * cp}, but the cluster has {cl.gpus} GPUs")
    if m.heads % tp:
        out.append(f"heads ({m.heads}) not divisible by tp ({tp})")
    if not m.mla and m.n_kv_heads % tp:
        out.append(f"kv_heads ({m.n_kv_heads}) not divisible by tp ({tp})")
    if tp > cl.node.domain:
        out.append(f"tp ({tp}) exceeds the scale-up domain ({cl.node.domain} GPUs)")
    split = split_key(scenario.runtime)
    if split is not None:
        out += split_problems(split, m.layers, pp, vpp, m.mtp_layers)
        if plan.framework != "megatron":
            out.append(f"runtime.{'pipeline_layout' if split[0] == 'layout' else 'account_for_*_in_pipeline_split'}"
                       f" is a Megatron split; the plan's framework is {plan.framework}")
    elif scenario.search.uneven_pipeline:
        if pp * vpp > m.layers:
            out.append(f"pp*vpp = {pp}*{vpp} = {pp * vpp} exceeds the {m.layers} layers")
    elif m.layers % (pp * vpp):
        out.append(f"layers ({m.layers}) not divisible by pp*vpp = {pp}*{vpp} = {pp * vpp} "
                   f"(search.uneven_pipeline is off)")
    if cp > 1 and tr.seq_len % (2 * cp):
        out.append(f"seq_len ({tr.seq_len}) not divisible by 2*cp = {2 * cp}")
    if plan.sp and tr.seq_len % tp:
        out.append(f"seq_len ({tr.seq_len}) not divisible by tp ({tp}) for sequence parallelism")
    if ep > 1 and not m.moe:
        out.append(f"ep = {ep} but {m.name} has no experts")
    if plan.etp not in (None, 1, tp) and not m.moe:  # the search's dense plans carry etp = tp
        out.append(f"etp = {plan.etp} but {m.name} has no experts (leave etp out)")
    if m.moe and m.moe.experts % ep:
        out.append(f"experts ({m.moe.experts}) not divisible by ep ({ep})")
    etp = plan.etp or tp
    if (tp * cp * dp) % (ep * etp):
        out.append(f"ep*etp = {ep}*{etp} = {ep * etp} must divide tp*cp*dp = {tp}*{cp}*{dp} = {tp * cp * dp}")
    gb = plan.mbs * (plan.ga or 1) * dp
    if gb not in tr.batches:
        out.append(f"mbs*ga*dp = {plan.mbs}*{plan.ga}*{dp} = {gb}, but global_batch is {tr.batch_text}")
    if cl.node.gpu.peak_tflops(plan.precision) is None:
        out.append(f"{cl.node.gpu.name} has no {plan.precision} support in the catalog")
    return out


def domains(scenario, ga: bool = True) -> dict[str, list[int]]:
    """Allowed values of each integer field before the joint constraints (`ga=False` leaves out the
    accumulation steps, the divisors of every allowed batch, for callers that derive them)."""
    m, cl, tr, so = scenario.model, scenario.cluster, scenario.training, scenario.search
    n = cl.gpus
    kv = m.heads if m.mla else m.n_kv_heads
    dom = {
        "tp": [d for d in divisors(n) if m.heads % d == 0 and kv % d == 0 and d <= cl.node.domain],
        "pp": [d for d in divisors(n) if (m.layers % d == 0 or (so.uneven_pipeline and d <= m.layers))],
        "cp": [d for d in divisors(n) if d == 1 or tr.seq_len % (2 * d) == 0],
        "ep": [d for d in divisors(n) if (m.moe and m.moe.experts % d == 0) or d == 1],
        # Interleaving depth: any divisor of the layers, plus small depths for uneven splits.
        "vpp": sorted({d for d in divisors(m.layers) if d <= 32}
                      | ({v for v in (2, 3, 4, 5, 6, 8) if v <= m.layers} if so.uneven_pipeline else set())),
        "dp": divisors(n),
        "mbs": [b for b in so.micro_batch if any(gb % b == 0 for gb in tr.batches)],
    }
    split = split_key(scenario.runtime)
    if split is not None:  # Megatron's split: pp x vpp divides its units (all_layouts keeps the pairs it builds)
        units = len(layout_stages(split[1])) if split[0] == "layout" else m.layers + split[1] + split[2]
        dom["pp"] = [d for d in divisors(n) if d <= units]
        dom["vpp"] = [d for d in divisors(units) if d <= 32 or split[0] == "layout"]
    if ga:
        dom["ga"] = sorted(set().union(*(divisors(gb) for gb in tr.batches)))
    for key in ("tp", "pp", "cp", "ep", "vpp"):
        allowed = getattr(so, key)
        if allowed is not None:
            dom[key] = [v for v in dom[key] if v in allowed]
    for key, value in so.fixed.items():
        if key in dom:
            dom[key] = [v for v in dom[key] if v == int(value)]
    return dom


def all_layouts(scenario, fields: tuple[str, ...]) -> dict:
    """Every point of the product of the domains, filtered by the structural constraints with numpy:
    the brute-force counterpart of the CP-SAT enumeration (used by `solve --exhaustive`)."""
    import numpy as np

    dom = domains(scenario)
    if any(not dom[k] for k in fields):
        return {k: np.array([], dtype=np.int64) for k in fields}
    grids = np.meshgrid(*(np.array(dom[k], dtype=np.int64) for k in fields), indexing="ij")
    v = {k: g.ravel() for k, g in zip(fields, grids)}
    n = scenario.cluster.gpus
    ok = (v["dp"] * v["tp"] * v["pp"] * v["cp"] == n)
    ok &= np.isin(v["mbs"] * v["ga"] * v["dp"], scenario.training.batches)
    split = split_key(scenario.runtime)
    if split is not None:
        ok &= valid_pairs_mask(split, scenario.model.layers, v["pp"], v["vpp"])
    elif scenario.search.uneven_pipeline:
        ok &= v["pp"] * v["vpp"] <= scenario.model.layers
    else:
        ok &= scenario.model.layers % (v["pp"] * v["vpp"]) == 0
    ok &= (v["tp"] * v["dp"] * v["cp"]) % v["ep"] == 0  # ep * etp | tp * cp * dp with etp = 1 at least
    ok &= (v["vpp"] == 1) | ((v["pp"] > 1) & (v["ga"] % v["pp"] == 0))
    return {k: a[ok] for k, a in v.items()}


def with_etp(scenario, lay: dict) -> dict:
    """Each layout with its expert tensor-parallel sizes, vectorised: etp = tp (Megatron's default,
    experts split like the dense layers) and, for MoE models with tp > 1 and ep > 1, etp = 1 (experts
    whole, EP folded over tp x cp x dp), where ep * etp divides tp * cp * dp. The search offers these two,
    the ones torchtitan supports (expert_tensor_parallel_degree 1 or tp); a plan string may give any
    etp Megatron accepts. `search.fixed.etp` pins it."""
    import numpy as np

    tp = lay["tp"]
    options = [tp] + ([np.ones_like(tp)] if scenario.model.moe else [])
    out = {k: np.concatenate([v] * len(options)) for k, v in lay.items()}
    out["etp"] = np.concatenate(options)
    ok = (out["tp"] * out["cp"] * out["dp"]) % (out["ep"] * out["etp"]) == 0
    if len(options) > 1:  # etp = 1 rows only where they differ and place experts: tp > 1 and ep > 1
        ok &= ~((np.arange(len(ok)) >= len(tp)) & ((out["tp"] == 1) | (out["ep"] == 1)))
    if "etp" in scenario.search.fixed:
        ok &= out["etp"] == int(scenario.search.fixed["etp"])
    return {k: v[ok] for k, v in out.items()}
