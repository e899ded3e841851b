"""The pipeline timeline of one step, derived from the schedule's dependency graph.

Every task is one pass of one micro-batch through one model chunk on one pipeline stage:
(stage, microbatch, chunk, phase) with phase "F" (forward) or "B" (backward, recomputation included).
The graph has two kinds of edges:
  * data dependencies: a forward needs the same micro-batch's forward on the previous virtual stage,
    a backward the backward on the next virtual stage, and the last virtual stage's backward its own
    forward (virtual stage = chunk * pp + stage: Megatron-LM's interleaved placement);
  * the order in which each stage runs its tasks: Megatron-LM's 1F1B schedule (warm-up forwards,
    steady one-forward-one-backward, cool-down backwards) and its interleaved variant
    (`forward_backward_pipelining_with_interleaving`: (pp - stage - 1) * 2 + (vpp - 1) * pp warm-up
    forwards, micro-batches taken in groups of pp per chunk).
A task starts when its last predecessor ends (the longest path to it). Every stage is busy for
m x (forward + backward) and idle for the rest of the step, which for both schedules comes out as
the performance model's bubble, (pp - 1) / vpp x (forward + backward) (planner.estimate.pipeline).
"""

from __future__ import annotations

from typing import NamedTuple

from planner.estimate import compute, table
from planner.estimate.evaluate import Context, evaluate_table

# The terms of the time breakdown that one micro-batch spends on its pipeline stage (the rest of
# the step, data-parallel communication, optimizer and offload, happens outside the pipeline).
STAGE_TERMS = ("compute", "recompute", "tp_comm", "cp_comm", "ep_comm", "pp_comm")
# Above this many drawn tasks the graph is not built (pp x vpp too large to draw stage by stage).
MAX_TASKS = 20_000


def drawn_microbatches(pp: int, m: int) -> int:
    """Micro-batches the chart draws: m up to 3 pp, else m' = m - k pp in [2 pp, 3 pp) (same m mod pp).
    1F1B and interleaved 1F1B repeat one pattern in their steady phase, so the warm-up, the
    cool-down and each stage's idle time, (pp - 1) / vpp x stage time whatever m is, are those of the
    whole step (tests/test_report.py compares the two timelines)."""
    return m if m <= 3 * pp else m - pp * ((m - 2 * pp) // pp)


class Task(NamedTuple):
    stage: int
    microbatch: int
    chunk: int
    phase: str  # "F" or "B"


def stage_order(pp: int, m: int, vpp: int, stage: int) -> list[Task]:
    """The order in which `stage` runs its forward and backward tasks (Megatron-LM schedules)."""
    total = m * vpp
    if vpp == 1:
        warmup = min(pp - stage - 1, m)
    elif m == pp:
        warmup = total  # Megatron runs every forward first when there are exactly pp micro-batches
    else:
        warmup = min((pp - stage - 1) * 2 + (vpp - 1) * pp, total)

    def task(k: int, phase: str) -> Task:
        in_group = k % (pp * vpp)
        chunk = in_group // pp
        if phase == "B":
            chunk = vpp - 1 - chunk
        return Task(stage, (k // (pp * vpp)) * pp + k % pp, chunk, phase)

    tasks = [task(k, "F") for k in range(warmup)]
    for k in range(total - warmup):
        tasks += [task(k + warmup, "F"), task(k, "B")]
    tasks += [task(k, "B") for k in range(total - warmup, total)]
    return tasks


def schedule_graph(pp: int, m: int, vpp: int = 1) -> dict[Task, list[Task]]:
    """The dependency graph of one step (module docstring): every Task -> the Tasks it waits for,
    tasks in each stage's running order, stage by stage."""
    preds: dict[Task, list[Task]] = {}
    for s in range(pp):
        order = stage_order(pp, m, vpp, s)
        preds.update((t, [order[i - 1]] if i else []) for i, t in enumerate(order))
    last = pp * vpp - 1
    for mb in range(m):
        for v in range(last + 1):
            s, c = v % pp, v // pp
            if v > 0:
                preds[Task(s, mb, c, "F")].append(Task((v - 1) % pp, mb, (v - 1) // pp, "F"))
            if v < last:
                preds[Task(s, mb, c, "B")].append(Task((v + 1) % pp, mb, (v + 1) // pp, "B"))
            else:
                preds[Task(s, mb, c, "B")].append(Task(s, mb, c, "F"))
    return preds


def _topological(preds: dict[Task, list[Task]]) -> list[Task]:
    """The tasks in an order where each comes after all it waits for (Kahn's algorithm); ValueError
    on a cycle (a schedule that would deadlock)."""
    waiting = {t: len(p) for t, p in preds.items()}
    after: dict[Task, list[Task]] = {t: [] for t in preds}
    for t, p in preds.items():
        for q in p:
            after[q].append(t)
    ready = [t for t, n in waiting.items() if n == 0]
    out = []
    while ready:
        t = ready.pop()
        out.append(t)
        for u in after[t]:
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.append(u)
    if len(out) != len(preds):
        raise ValueError("the schedule's dependency graph has a cycle")
    return out


def timeline(pp: int, m: int, vpp: int, forward_s: float, backward_s: float) -> dict:
    """Start and end of every task (longest path), the makespan and each stage's idle time.

    `forward_s` and `backward_s` are one micro-batch's times on one stage (all its chunks)."""
    if 2 * pp * m * vpp > MAX_TASKS:
        raise ValueError(f"{2 * pp * m * vpp} tasks: too many to draw")
    preds = schedule_graph(pp, m, vpp)
    dur = {"F": forward_s / vpp, "B": backward_s / vpp}
    start: dict[Task, float] = {}
    for node in _topological(preds):
        start[node] = max((start[p] + dur[p.phase] for p in preds[node]), default=0.0)
    tasks = [(n, start[n], start[n] + dur[n.phase]) for n in preds]
    makespan = max(end for _, _, end in tasks)
    busy = [0.0] * pp
    for n, s, e in tasks:
        busy[n.stage] += e - s
    return {"pp": pp, "microbatches": m, "vpp": vpp, "forward_s": forward_s, "backward_s": backward_s,
            "tasks": tasks, "makespan_s": makespan, "idle_s": [makespan - b for b in busy]}


def _forward_share(ctx: Context, t: dict) -> float:
    """Forward / (forward + backward + recompute) of one micro-batch on the stage with the most
    compute, from the estimate's compute model (planner.estimate.compute)."""
    best = None
    for stage in ("first", "last"):
        c = compute.microbatch_compute(ctx, t, stage)
        f, b, r = (float(c[k][0]) for k in ("forward", "backward", "recompute"))
        if best is None or f + b + r > sum(best):
            best = (f, b + r)
    return best[0] / sum(best)


def plan_timeline(scenario, row: dict) -> dict:
    """The timeline of a plan row (planner.estimate.evaluate.result_row) with the model's bubble.

    The stage time of one micro-batch is the estimate's pipelined share of the step divided by the
    number of micro-batches, (compute + recompute + tp/cp/ep/pp communication) / ga, recomputed
    without the JSON's rounding; it is split into forward and backward in the ratio of the compute
    model's forward to backward + recompute time, communication included pro rata. With many
    micro-batches it draws drawn_microbatches of them (`step_microbatches` keeps the plan's ga)."""
    plan = row["plan"]
    gpus = plan["dp"] * plan["tp"] * plan["pp"] * plan["cp"]
    nodes = max(1, gpus // scenario.cluster.node.gpus_per_node)
    ctx = Context(scenario.model_copy(update={"cluster": scenario.cluster.with_nodes(nodes)}))
    t = table.from_plans([plan])
    ev = evaluate_table(ctx, t)
    stage_s = sum(float(ev["breakdown_s"][k][0]) for k in STAGE_TERMS) / plan["ga"]
    share = _forward_share(ctx, t)
    drawn = drawn_microbatches(plan["pp"], plan["ga"])
    out = timeline(plan["pp"], drawn, plan["vpp"], share * stage_s, (1 - share) * stage_s)
    out["step_microbatches"] = plan["ga"]
    # every stage is busy m x stage time and idle for the bubble whatever m is: the whole step's span
    out["step_makespan_s"] = out["makespan_s"] + (plan["ga"] - drawn) * stage_s
    out["model_bubble_s"] = float(ev["breakdown_s"]["pp_bubble"][0])
    out["stage_s"] = stage_s
    return out
