"""Memory, time, throughput and cost of plans: vectorised over a plan table, and for one plan.

Memory verdict, against the usable device memory: the total the driver reports (catalog `memory_gib`,
e.g. 79.65 GiB for an "80 GB" H100), with the CUDA context, library workspaces, NCCL buffers and
allocator fragmentation counted inside the estimate (`other`), so nothing is subtracted twice. The
estimate x carries the memory error band [lo, hi] of its family (planner.estimate.bands: the spread
of predicted / measured - 1 over the calibration runs), so the measured peak is expected between
the optimistic edge x / (1 + hi) and the pessimistic edge x / (1 + lo):
  fits  - the pessimistic edge <= 80% of usable memory. Fujii et al. 2024 (arXiv:2411.06465) ran 454
          configurations on A100 and H100: none whose estimated memory was below 80% of the GPU's
          memory ran out of memory; the 20% left is for what no estimate sees (allocator spikes,
          routing imbalance, framework buffers). Applied to the pessimistic edge, it holds even if
          the plan needs as much more than estimated as the worst calibration run of its family;
  tight - between: the band reaches above 80%, or the estimate is above capacity while the
          optimistic edge is not; may run, try it before a long run;
  oom   - even the optimistic edge is above usable memory, or the node's host RAM or NVMe cannot hold
          what the plan puts there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from planner.arch import ModelStats, attention_flops_per_token, matmul_flops_per_token, model_stats
from planner.estimate import bands, comm, compute, compute_gemm, cost, memory, offload, pipeline, table
from planner.estimate.memory import GIB
from planner.estimate.memory_terms_stage import stage_window_layers

FITS_FRACTION = 0.80  # Fujii et al. 2024: estimates below 80% of GPU memory never ran out of memory


@dataclass(frozen=True)
class Context:
    """What every term needs from the scenario, computed once. `all_ranks`: evaluate the memory of
    every pipeline rank (the reference for memory_ranks' candidate ranks; `--exhaustive`)."""

    scenario: object
    all_ranks: bool = False

    @property
    def model(self):
        return self.scenario.model

    @property
    def node(self):
        return self.scenario.cluster.node

    @property
    def gpu(self):
        return self.scenario.cluster.node.gpu

    @property
    def seq_len(self) -> int:
        return self.scenario.training.seq_len

    @property
    def optimizer(self) -> str:
        return self.scenario.training.optimizer

    @cached_property
    def stats(self) -> ModelStats:
        return model_stats(self.model)

    @cached_property
    def model_flops_per_token(self) -> float:
        """Training FLOPs per token counted as model FLOPs: 3 x (matmuls + causal attention)."""
        return 3.0 * (matmul_flops_per_token(self.model) + attention_flops_per_token(self.model, self.seq_len))

    @cached_property
    def attention_fwd_flops_per_token(self) -> float:
        return attention_flops_per_token(self.model, self.seq_len)

    @cached_property
    def titan_sac_flops_per_token(self) -> float:
        """Matmul FLOPs per token that torchtitan's op-level selective checkpointing recomputes
        (every second non-expert mm of each block; compute.titan_sac_recomputed_share)."""
        from planner.arch import layer_matmuls

        total = 0.0
        for moe_layer, count in ((False, self.stats.dense_layers), (True, self.stats.moe_layers)):
            if count:
                flops = sum(2.0 * x.k * x.n * x.per_token for x in layer_matmuls(self.model, moe_layer)
                            if not x.name.startswith("expert"))
                total += count * compute.titan_sac_recomputed_share(self.model, moe_layer) * flops
        return total

    @cached_property
    def megatron_selective_flops_per_token(self) -> float:
        """Forward FLOPs per token that Megatron's selective recompute runs again (core attention and
        the modules of runtime.recompute_modules; planner.estimate.recompute)."""
        from planner.estimate.recompute import recomputed_flops_per_token

        return recomputed_flops_per_token(self)

    @cached_property
    def forward_flops_per_token(self) -> float:
        return matmul_flops_per_token(self.model) + self.attention_fwd_flops_per_token


def with_tensor_clock(ctx: Context, t: dict, mem: dict, units=None) -> dict:
    """The plan table with each row's sustained tensor-core clock (column `tensor_clock`, read by
    compute_gemm.peaks) on GPUs with a measured `sustained_tensor_fraction`: the step is timed once at
    burst clocks, and the share of it the GPU computes gives compute_gemm.sustained_clock. Other GPUs: as
    is (burst rates). `units`: layer_units of t (at burst clocks) when computed elsewhere."""
    s = ctx.gpu.sustained_tensor_fraction
    if not s:
        return t
    step, b = step_time(ctx, t, mem, units)
    busy = np.clip((b["compute"] + b["recompute"]) / np.maximum(step, 1e-30), 0.0, 1.0)
    return {**t, "tensor_clock": compute_gemm.sustained_clock(s, busy)}


def evaluate_table(ctx: Context, t: dict, peak=None) -> dict:
    """Every estimate for every row of the plan table, as arrays. `peak`: each plan's most loaded
    pipeline rank when an earlier memory scan found it (memory.memory)."""
    return _timed(ctx, t, memory.memory(ctx, t, peak=peak))


def evaluate_fitting(ctx: Context, t: dict, peak=None) -> tuple[dict, np.ndarray]:
    """(evaluate_table of the plans of t not out of memory, their rows in t): every plan's memory is
    evaluated first and only the plans whose verdict is fits or tight are timed, for a search that drops
    a plan out of memory whatever its time (planner.search.solver.bounded_rows: two thirds of the plans
    the compare of report_scenarios/purchases_range.yaml evaluates are out of memory). The same numbers
    as evaluate_table's for those rows (every estimate is computed row by row). Without `peak`, a plan's
    ranks past one already out of memory are not evaluated (memory.most_loaded_stage's `decided`, as
    solver._fits_memory_rows: its verdict stays out of memory; the plans that fit have every candidate
    rank evaluated, so their parts are the full scan's)."""
    decided = None
    if peak is None:
        hi = bands.band_arrays("memory", ctx.model.moe is not None, t)[1]
        capacity = ctx.gpu.memory_gib * GIB
        decided = lambda total, idx: total / (1 + hi[idx]) > capacity  # noqa: E731  (memory_verdict's optimistic edge)
    mem = memory.memory(ctx, t, decided, peak=peak)
    rows = np.flatnonzero(memory_verdict(ctx, t, mem)[0] < 2)
    if len(rows) < table.size(t):
        t, mem = memory._rows(t, rows), memory._rows(mem, rows)
    return _timed(ctx, t, mem), rows


def _timed(ctx: Context, t: dict, mem: dict) -> dict:
    """evaluate_table of t given its memory `mem`."""
    if not ctx.gpu.sustained_tensor_fraction:
        return _evaluated(ctx, t, mem, *step_time(ctx, t, mem))
    # timed twice (with_tensor_clock): the layers' communication is the same at both clocks but for
    # the context-parallel ring, which hides behind attention (comm.with_attention)
    burst = layer_units(ctx, t)
    t = with_tensor_clock(ctx, t, mem, burst)
    unit = compute.layer_costs(ctx, t)
    units = unit, comm.with_attention(ctx, t, burst[1], unit["attn_fwd"], unit["attn_bwd"])
    return _evaluated(ctx, t, mem, *step_time(ctx, t, mem, units))


def step_time(ctx: Context, t: dict, mem: dict, units=None):
    """(step seconds, breakdown by term) of every row: the pipeline's step over the stage time
    (stage_time) plus DP sync, optimizer and offload. `units`: layer_units of t when computed
    elsewhere."""
    stage_s, c, cm = stage_time(ctx, t, units)
    ga = t["ga"]
    dp = comm.dp_comm(ctx, t, mem, c["forward"], c["backward"])
    opt = offload.optimizer_s(ctx, t, mem, c["forward"], c["backward"])
    opt["offload"] = opt["offload"] + offload.activation_offload_s(ctx, t, mem, c["forward"], c["backward"])
    bubble = pipeline.bubble_s(t, stage_s)
    step = pipeline.pipeline_step_s(t, stage_s) + dp["dp_comm"] + opt["optimizer"] + opt["offload"]
    breakdown = {
        "compute": ga * (c["forward"] + c["backward"]),
        "recompute": ga * c["recompute"],
        "tp_comm": ga * cm["tp_comm"],
        "cp_comm": ga * cm["cp_comm"],
        "ep_comm": ga * cm["ep_comm"],
        "pp_comm": ga * cm["pp_comm"],
        "pp_bubble": bubble,
        "dp_comm": dp["dp_comm"],
        "optimizer": opt["optimizer"],
        "offload": opt["offload"],
    }
    return step, breakdown


def stage_time(ctx: Context, t: dict, units=None):
    """(stage seconds, its compute parts, its communication parts) of one micro-batch on the slowest
    pipeline stage evaluated (first_last_stage_times: the first, the last and, for models whose
    leading dense layers sit on the first rank, the heaviest middle rank): compute plus the exposed
    TP, CP, EP and pipeline communication. The step is the pipeline's step over this stage time plus
    DP sync, optimizer and offload (step_time), none of them negative. `units`: layer_units of t
    when computed elsewhere."""
    stages = list(first_last_stage_times(ctx, t, units).values())
    slowest = np.argmax(np.stack([np.broadcast_to(s[0], np.shape(stages[0][0])) for s in stages]), axis=0)
    pick = lambda i, key=None: np.choose(slowest, [s[i] if key is None else s[i][key] for s in stages])  # noqa: E731
    return pick(0), {k: pick(1, k) for k in stages[0][1]}, {k: pick(2, k) for k in stages[0][2]}


def heaviest_middle_rank(ctx: Context, t: dict):
    """Per plan, the first pipeline rank other than the first whose first model chunk holds none of
    the model's leading dense layers (DeepSeek `first_k_dense_replace`): of the ranks made only of
    MoE layers it holds the most, since a rank's layer count does not grow with the rank (the first
    chunks take the remainder: memory_terms_stage.stage_layers); a rank before it holds some dense
    layers (the test compares with every rank). Chunk c starts at layer c*base + min(c, extra),
    so the rank is the smallest r >= 1 with r*base + min(r, extra) >= dense layers, kept in
    1..pp-2 (rank 0 where pp < 3: no middle rank)."""
    from planner.estimate.memory_terms_stage import _chunk_layers, heaviest_rank, split_key_of

    if split_key_of(ctx) is not None:  # a Megatron split: the middle rank with the most layers
        return heaviest_rank(ctx, t)
    if ctx.model.moe and ctx.model.moe.layer_step > 1:  # dense layers between MoE layers: compare the ranks
        return _most_loaded_middle_rank(ctx, t)
    d = ctx.stats.dense_layers
    base, extra = _chunk_layers(ctx, t)
    full = np.ceil(d / (base + 1.0))  # ranks needed while every chunk holds base + 1 layers
    r = np.where(full <= extra, full, extra + np.ceil((d - extra * (base + 1.0)) / np.maximum(base, 1)))
    return np.where(t["pp"] >= 3, np.clip(r, 1, t["pp"] - 2), 0).astype(np.int64)


def _most_loaded_middle_rank(ctx: Context, t: dict):
    """Per plan, the middle rank (1..pp-2; 0 where pp < 3) holding the most decoder layers, ties to the most
    MoE layers then the lowest rank (heaviest_rank's order), each rank's layers from stage_layers: for MoE
    layers on every moe.layer_step-th layer (spec.model.moe_pattern), where no closed form names it."""
    from planner.estimate.memory_terms_stage import _stage_layers_rows

    pp = np.asarray(t["pp"])
    best = np.zeros(np.shape(pp), dtype=np.int64)
    best_score = np.full(np.shape(pp), -1.0)
    for r in range(1, max(int(pp.max()) - 1, 1) if pp.size else 1):
        lps, dense, _ = _stage_layers_rows(ctx, t, np.minimum(r, pp - 1))
        score = np.where(r <= pp - 2, lps * (ctx.model.layers + 1.0) + (lps - dense), -1.0)
        take = score > best_score
        best, best_score = np.where(take, r, best), np.where(take, score, best_score)
    return np.where(pp >= 3, best, 0).astype(np.int64)


def layer_units(ctx: Context, t: dict) -> tuple[dict, dict]:
    """(per-layer compute seconds: compute.layer_costs, per-layer communication: comm.layer_comm, with
    one EP dispatch as 'ep_dispatch'), the same on every pipeline stage: each stage scales them by
    its layer counts (rank_stage_time)."""
    unit = compute.layer_costs(ctx, t)
    unit_comm = comm.layer_comm(ctx, t, unit["attn_fwd"], unit["attn_bwd"])
    return unit, unit_comm


def first_last_stage_times(ctx: Context, t: dict, units=None) -> dict:
    """{'first', 'last'[, 'middle']}: (stage seconds, compute parts, communication parts) of one
    micro-batch on that pipeline stage (stage_time takes the slowest). The pipeline runs at the pace
    of its slowest stage (Narayanan et al. 2021, Sec. 2.2). Most plans' slowest stage is the first
    (most layers: the first chunks take the remainder) or the last (the output layer and loss); in a
    model with leading dense layers (DeepSeek-V3's three) the first rank holds them, and a middle
    rank made only of MoE layers (heaviest_middle_rank) can be slower than both, e.g. 8 MoE layers
    against the first rank's 3 dense + 5 MoE and the last rank's 7 MoE + output layer (61 layers on
    pp = 8). That rank is evaluated as 'middle' for such models and under a Megatron split
    (runtime.pipeline_layout / account_for_*: the middle ranks can hold the most layers); the others
    keep two stages. `units`: layer_units of t when computed elsewhere (e.g. once per distinct
    value of the columns they read: planner.search.bound)."""
    unit, unit_comm = layer_units(ctx, t) if units is None else units  # per layer: the same on every stage
    stages = {}
    for stage in stage_names(ctx):
        rank = heaviest_middle_rank(ctx, t) if stage == "middle" else stage
        stages[stage] = rank_stage_time(ctx, t, unit, unit_comm, rank, stage)
    return stages


def stage_names(ctx: Context) -> tuple[str, ...]:
    """The stages first_last_stage_times evaluates, in its order: 'first', 'last' and, for models with
    leading dense layers or under a Megatron split, 'middle'."""
    from planner.estimate.memory_terms_stage import split_key_of

    if (ctx.stats.dense_layers and ctx.stats.moe_layers) or split_key_of(ctx) is not None:
        return ("first", "last", "middle")
    return ("first", "last")


def stage_compute_times(ctx: Context, t: dict, unit: dict) -> dict:
    """{stage: its compute parts of one micro-batch}, the stages of first_last_stage_times and the compute
    of rank_stage_time alone (no communication), from the per-layer costs `unit` (compute.layer_costs)."""
    return {stage: _rank_compute(ctx, t, unit, heaviest_middle_rank(ctx, t) if stage == "middle" else stage, stage)[0]
            for stage in stage_names(ctx)}


def _rank_compute(ctx: Context, t: dict, unit: dict, rank, stage: str):
    """(compute parts of one micro-batch on pipeline rank `rank`, its dense and MoE layers) for
    rank_stage_time."""
    from planner.estimate.memory_terms_stage import stage_mtp

    _, dense, moe = memory.stage_layers(ctx, t, rank)
    windowed = stage_window_layers(ctx, t, rank) if ctx.model.sliding_window else None
    return compute.stage_compute(t, unit, dense, moe, stage, stage_mtp(ctx, t, rank), windowed), dense, moe


def rank_stage_time(ctx: Context, t: dict, unit: dict, unit_comm: dict, rank, stage: str):
    """(stage seconds, compute parts, communication parts) of one micro-batch on pipeline rank `rank`
    ('first', 'last' or ranks per plan; `stage` says whether it holds the output layer: 'last'), from
    the per-layer costs `unit` (compute.layer_costs) and `unit_comm` (comm.layer_comm)."""
    c, dense, moe = _rank_compute(ctx, t, unit, rank, stage)
    cm = comm.stage_comm(unit_comm, dense, moe)
    cm["pp_comm"] = cm["pp_comm"] * pipeline.interleave_p2p_factor(t)
    cm["tp_comm"] = comm.tp_exposed_s(ctx, t, cm["tp_comm"], c["layer_matmul_fwd"], cm["tp_fwd"])
    busy = c["forward"] + c["backward"] + c["recompute"]
    # EP overlap pairs a MoE layer's forward with another micro-batch's backward: the pre-dispatch
    # part (attention, router) and the expert GEMMs hide different all-to-alls (comm.ep_exposed_s)
    cm["ep_comm"] = comm.ep_exposed_s(ctx, t, cm["ep_comm"], moe, unit_comm["ep_dispatch"],
                                      unit["moe_fwd"] - unit["moe_expert"] + unit["attn_fwd"], unit["moe_expert"])
    stage_s = busy + cm["tp_comm"] + cm["cp_comm"] + cm["ep_comm"] + cm["pp_comm"]
    return stage_s, c, cm


def _evaluated(ctx: Context, t: dict, mem: dict, step, breakdown) -> dict:
    """Throughput, FLOP rates, MFU, memory verdict and cost of every row from its step time."""
    ga = t["ga"]
    gpus = t["dp"] * t["tp"] * t["pp"] * t["cp"]
    tokens_step = t["dp"] * t["mbs"] * ga * ctx.seq_len
    tps = tokens_step / step
    model_tflops = tps * ctx.model_flops_per_token / gpus / 1e12
    selective_flops = np.where(t["framework"] == table.TT,
                               ctx.titan_sac_flops_per_token, ctx.megatron_selective_flops_per_token)
    from planner.estimate.recompute import full_recompute_share

    recompute_flops = np.where(t["recompute"] == 2, full_recompute_share(ctx, t) * ctx.forward_flops_per_token,
                               np.where(t["recompute"] == 1, selective_flops, 0.0))
    hw_tflops = tps * (ctx.model_flops_per_token + recompute_flops) / gpus / 1e12
    precision_peak = np.array([ctx.gpu.peak_tflops(p) or np.nan for p in precision_peak_names(ctx)])[t["precision"]]
    # MFU basis: the dense BF16 peak (FP16 on GPUs without BF16, e.g. V100: their 16-bit tensor peak).
    bf16_peak = ctx.gpu.peak_tflops("bf16") or ctx.gpu.peak_tflops("fp16") or np.nan

    verdict, capacity, host_ok = memory_verdict(ctx, t, mem)
    run = cost.run_cost(ctx.scenario.training.tokens, tps, gpus, ctx.node.usd_per_gpu_hour)
    return {"memory": mem, "verdict": verdict, "capacity_bytes": capacity, "host_ok": host_ok,
            "step_s": step, "breakdown_s": breakdown, "tokens_per_s": tps, "gpus": gpus,
            "model_tflops": model_tflops, "hardware_tflops": hw_tflops,
            "mfu": model_tflops / bf16_peak, "mfu_precision_peak": model_tflops / precision_peak, **run}


def precision_peak_names(ctx) -> list[str]:
    """The peak each plan precision's GEMMs run against: table.PRECISIONS, with fp4 for fp8 plans under
    runtime.fp8_recipe nvfp4 (their linear layers run on the FP4 tensor cores)."""
    names = list(table.PRECISIONS)
    if ctx.scenario.runtime.fp8_recipe == "nvfp4":
        names[names.index("fp8")] = "fp4"
    return names


VERDICTS = ("fits", "tight", "oom")


def memory_verdict(ctx: Context, t: dict, mem: dict):
    """(verdict codes 0 fits / 1 tight / 2 oom, usable device bytes, host_ok) per plan, with the
    family's memory error band (module docstring). A plan whose offload the node cannot hold (host
    RAM, NVMe; unknown host memory: no offload) is oom."""
    capacity = ctx.gpu.memory_gib * GIB
    lo, hi = bands.band_arrays("memory", ctx.model.moe is not None, t)
    optimistic, pessimistic = mem["total"] / (1 + hi), mem["total"] / (1 + lo)
    nvme_cap = (ctx.node.nvme_tb or 0.0) * 1e12
    if ctx.node.host_memory_gib is None:  # unknown host: no offload plan can be shown to fit
        host_ok = (t["offload"] == 0) & (t["offload_params"] == 0)
    else:
        host_ok = (mem["host_per_node"] <= ctx.node.host_memory_gib * GIB) & (mem["nvme_per_node"] <= nvme_cap)
    verdict = np.where((optimistic > capacity) | ~host_ok, 2, np.where(pessimistic > FITS_FRACTION * capacity, 1, 0))
    return verdict, capacity, host_ok


def stage_name(rank: int, pp: int) -> str:
    """'first' (rank 0, also when pp = 1), 'last' (rank pp - 1) or 'middle'."""
    return "first" if rank == 0 else "last" if rank == pp - 1 else "middle"


def memory_json(ctx: Context, t: dict, mem: dict, verdict, i: int) -> dict:
    """The `memory` object of row i: totals and verdict, the contract's five groups (breakdown_gib),
    every named part by group (parts_gib), the most loaded stage and phase, host RAM and NVMe."""
    g = lambda a: float(np.asarray(a)[i] if np.ndim(a) else a)  # noqa: E731
    gib = lambda a: round(g(a) / GIB, 3)  # noqa: E731
    host_cap = ctx.node.host_memory_gib
    nvme_tb = ctx.node.nvme_tb
    return {
        "capacity_gib": round(ctx.gpu.memory_gib, 3),
        "per_gpu_gib": gib(mem["total"]),
        "headroom_gib": round(ctx.gpu.memory_gib - g(mem["total"]) / GIB, 3),
        "fits_below_gib": round(FITS_FRACTION * ctx.gpu.memory_gib, 3),
        "verdict": VERDICTS[int(g(verdict))],
        "breakdown_gib": {k: gib(mem[k]) for k in memory.GROUPS},
        "parts_gib": {grp: {p: gib(mem[f"{grp}.{p}"]) for p in names} for grp, names in memory.GROUPS.items()},
        "most_loaded_stage": stage_name(int(g(mem["stage"])), int(g(t["pp"]))),
        "most_loaded_rank": int(g(mem["stage"])),
        "peak_phase": ("forward_backward", "optimizer_step")[int(g(mem["peak_phase"]))],
        "host_per_node_gib": gib(mem["host_per_node"]),
        "host_capacity_gib": host_cap,
        "host_headroom_gib": None if host_cap is None else round(host_cap - g(mem["host_per_node"]) / GIB, 3),
        "host_parts_gib": {k.split(".", 1)[1]: gib(mem[k]) for k in memory.HOST_PARTS},
        "nvme_per_node_gb": round(g(mem["nvme_per_node"]) / 1e9, 3),
        "nvme_capacity_gb": None if nvme_tb is None else round(nvme_tb * 1000, 3),
    }


def _round_or_none(x: float, digits: int):
    return None if np.isnan(x) else round(x, digits)


def result_row(ctx: Context, t: dict, ev: dict, i: int) -> dict:
    """The contract's JSON object for row i."""
    g = lambda a: float(np.asarray(a)[i] if np.ndim(a) else a)  # noqa: E731
    cost_usd = g(ev["cost_usd"])
    return with_error_bands(ctx, {
        "plan": table.row(t, i),
        "memory": memory_json(ctx, t, ev["memory"], ev["verdict"], i),
        "time": {"step_s": round(g(ev["step_s"]), 6),
                 "breakdown_s": {k: round(g(v), 6) for k, v in ev["breakdown_s"].items()}},
        "throughput": {
            "tokens_per_s": round(g(ev["tokens_per_s"]), 3),
            "tokens_per_s_per_gpu": round(g(ev["tokens_per_s"]) / g(ev["gpus"]), 3),
            "model_tflops_per_gpu": round(g(ev["model_tflops"]), 3),
            "hardware_tflops_per_gpu": round(g(ev["hardware_tflops"]), 3),
            # PRODUCT.md: one basis for every precision (the dense BF16 peak), and the plan's own
            # precision peak as a second figure (an FP8 plan at the same tokens/s has half of it).
            "mfu": _round_or_none(g(ev["mfu"]), 5),
            "mfu_precision_peak": _round_or_none(g(ev["mfu_precision_peak"]), 5),
            "mfu_precision_basis": precision_peak_names(ctx)[int(g(t["precision"]))],
        },
        "run": {"days": round(g(ev["days"]), 4), "gpu_hours": round(g(ev["gpu_hours"]), 1),
                "cost_usd": None if np.isnan(cost_usd) else round(cost_usd, 2)},
    })


def with_error_bands(ctx: Context, r: dict) -> dict:
    """Add the family's calibration error bands (planner.estimate.bands) to a result: `error_band`
    [lo, hi] and where it comes from (`error_band_pool`: pool and number of runs) in `throughput` and
    `memory`, the measured values they imply (`..._range`: x / (1 + hi) to x / (1 + lo)), and the
    estimates at which the memory verdict changes (fits below, oom above)."""
    p, moe = r["plan"], ctx.model.moe is not None
    m, th = r["memory"], r["throughput"]
    for obj, metric, key in ((th, "throughput", "tokens_per_s_per_gpu"), (m, "memory", "per_gpu_gib")):
        b = bands.band(metric, p["framework"], moe, p["precision"])
        lo, hi = b["band"]
        obj["error_band"] = [lo, hi]
        obj["error_band_pool"] = {"pool": b["pool"], "runs": b["runs"]}
        obj[f"{key}_range"] = [round(obj[key] / (1 + hi), 3), round(obj[key] / (1 + lo), 3)]
    lo, hi = m["error_band"]
    m["fits_below_gib"] = round(FITS_FRACTION * m["capacity_gib"] * (1 + lo), 3)
    m["oom_above_gib"] = round(m["capacity_gib"] * (1 + hi), 3)
    return r


def estimate(scenario, plan) -> dict:
    """Evaluate one plan (a Plan, resolved against the scenario) and return the contract's object."""
    plan = plan.resolved(scenario) if plan.dp is None or plan.ga is None or plan.sp is None else plan
    ctx = Context(scenario)
    t = table.from_plans([plan])
    ev = evaluate_table(ctx, t)
    return result_row(ctx, t, ev, 0)
