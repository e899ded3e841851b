"""Serving search at a fixed concurrency without listing the full table (planner.serve.search).

The full listing has one row per (instance layout, engine / weights / KV / max_batch / attention DP:
a *group*) x replica count r' (1 .. min(GPUs / instance, C)) x prefill split p (0, or a power of two
p < r' prefill instances beside r' - p decode instances): groups x C x log C rows. In
planner.serve.evaluate the quantities of a row factor exactly:
* memory, batch limits, NVLink/network costs and the prefill pool (TTFT, rate, KV move of a
  disaggregated plan): per group (none of them reads the replica counts);
* the batch bound b = min(b_cap, C / r) and everything timed at it (iteration time, chunked
  prefill TTFT): per group and decode count r, the same for every split p (a colocated plan runs at it);
* a disaggregated plan's decode step at one sequence (the other end of its step-time chord): per group;
* the rest (waiting, closed-loop queue, output rate, GPUs, $; a disaggregated plan's closed loop,
  evaluate.disagg_closed_loop, whose batch is at most b): elementwise formulas of the above.
Rows are dropped before the splits only on bounds that hold for every split: memory and batch, and TPOT
above its target at the least TPOT a row can have (colocated: the one at b; disaggregated: the one-sequence
step, since its batch falls below b by the requests on the prefill side, and the step time rises with the
batch).
So the time model runs once per (group, r) instead of once per row, only on groups whose memory
verdict and KV pool admit a sequence (evaluate runs no time model on the others either, and they are
never feasible), in blocks of groups so that memory stays bounded, and every split is combined
elementwise. The ranking needs only each block's best rows: any key's best row ranks within its
block's first top x (rows per key) rows; where no row is feasible, the explanation (planner.serve.explain:
minima over the rows) reads the rows that attain them. The same numpy expressions on the same inputs give
the same bits, so the plans, their order, the counts and the explanation equal the full listing's
(tests/test_serve_concurrency.py).
"""

from __future__ import annotations

import copy
import os

import numpy as np

from planner.serve import evaluate as V
from planner.serve import timing

BLOCK_ROWS = 200_000  # (group, r) rows timed at once: bounds the temporaries of the time model
THREADS = min(2, os.cpu_count() or 1)  # blocks evaluated at once (each block's numbers are its own)


def count_rows(m: np.ndarray, splits: list[int], colocated: bool) -> int:
    """Rows of the full listing: per group of m replica counts, m colocated rows and m - p for each split p."""
    n = int(m.sum()) if colocated else 0
    return n + sum(int(np.maximum(m - p, 0).sum()) for p in splits)


def _sub_links(links: dict, idx: np.ndarray) -> dict:
    return {k: tuple(a[idx] if np.ndim(a) else a for a in pair) for k, pair in links.items()}


def _expand(m: np.ndarray, first: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(group index, count) for every count first .. m[g] of each group g."""
    n = np.maximum(m - first + 1, 0)
    gi = np.repeat(np.arange(len(m)), n)
    start = np.cumsum(n) - n
    r = np.arange(int(n.sum())) - np.repeat(start, n) + first
    return gi, r


def _at_batch(ctx, t, b, links, dis: bool) -> tuple:
    """(iteration s, TTFT p50 service s, busy prefill tokens/s, TTFT p90 service s + the p90 scheduling
    wait, TPOT p90, TTFT p99 service s + the p99 scheduling wait, TPOT p99) of the rows of t at b decoding
    sequences (evaluate._evaluate's calls; no TTFT on the decode instances of a disaggregated plan: theirs is
    the prefill pool's)."""
    saved, ctx.links = ctx.links, links
    try:
        parts = V._iter_parts(ctx, t, b)
        t_iter = parts[0]
        own = V.closed_loop_gaps(parts, b)  # a request's own gaps (evaluate: the closed loop's TPOT)
        tpot90, tpot99 = (V.tpot_quantile(ctx, t, b, own, q) for q in ("p90", "p99"))
        if dis:
            return t_iter, None, None, None, tpot90, None, tpot99
        ttft50, pf_rate = V._ttft_service(ctx, t, b, ctx.in_mean, rate=True)
        ttft90 = ttft50 if ctx.in_p90 == ctx.in_mean else V._ttft_service(ctx, t, b, ctx.in_p90)[0]
        ttft99 = ttft90 if ctx.in_p99 == ctx.in_p90 else V._ttft_service(ctx, t, b, ctx.in_p99)[0]
        others = np.maximum(b - 1.0, 0.0)  # a closed loop's request finds the others running (V.schedule_wait)
        return (t_iter, ttft50, pf_rate, ttft90 + V.schedule_wait(t, t_iter, 0.9, b, ctx.out_mean, others), tpot90,
                ttft99 + V.schedule_wait(t, t_iter, 0.99, b, ctx.out_mean, others), tpot99)
    finally:
        ctx.links = saved


def _timed(ctx, t, b_cap, gi, r, conc, dis: bool):
    """Per (group, decode count) rows: b = min(b_cap, C / r) and _at_batch at b_eval = max(b, 1e-3). Where the
    batch is full (b_eval = max(b_cap, 1): the same inputs for every such count of a group) the values
    are the group's, computed once; the time model runs per row only below the cap."""
    b = np.minimum(b_cap[gi], conc / r)
    b_eval = np.maximum(b, 1e-3)
    cap = np.maximum(b_cap, 1)
    at_cap = _at_batch(ctx, t, cap, ctx.links, dis)
    out = [None if x is None else x[gi] for x in at_cap]
    part = np.flatnonzero(b_eval != cap[gi])
    if len(part):
        gp = gi[part]
        vals = _at_batch(ctx, {k: v[gp] for k, v in t.items()}, b_eval[part], _sub_links(ctx.links, gp), dis)
        for o, v in zip(out, vals):
            if o is not None:
                o[part] = v
    return b, out


def search(sc, g: dict, objective: str, top: int, order, feasible_mask) -> tuple[dict, int, int]:
    """(table of the candidate rows in listing order, rows of the full listing, feasible rows of it).
    `g`: planner.serve.search group table (replicas = the largest count of the instance, prefill 0,
    `inst` and `pos`: the instance and the group's place among the instance's groups)."""
    s, so = sc.serving, sc.search
    conc = s.concurrency
    m = np.minimum(g["replicas"], conc).astype(np.int64)
    colocated = False in so.disaggregated
    splits = [p for p in (1, 2, 4, 8, 16, 32, 64) if p < m.max()] if (True in so.disaggregated and len(m)) else []
    evaluated = count_rows(m, splits, colocated)
    keys = [k for k in g if k not in ("inst", "pos")]
    t = {k: g[k] for k in keys}
    ctx = V.Context(sc)
    mem = ctx.memory(t)
    alive = (mem["verdict"] < 2) & (np.minimum(t["max_batch"], mem["seqs_running"]) >= 1)
    rows_per_key = max(int(np.unique(np.column_stack([t["engine"], t["wq"], t["kv"], t["max_batch"]]), axis=0)
                           .shape[0]), 1)
    keep_n = top * rows_per_key
    ai = np.flatnonzero(alive)
    blocks, start = [], 0
    while start < len(ai):  # blocks of alive groups, about BLOCK_ROWS (group, r) rows each
        stop = start + 1 + int(np.searchsorted(np.cumsum(m[ai[start:]]), BLOCK_ROWS, side="right"))
        blocks.append(ai[start:min(stop, len(ai))])
        start = min(stop, len(ai))

    def run(blk, explain=False):
        return _block(sc, copy.copy(ctx), {k: v[blk] for k, v in t.items()}, {k: v[blk] for k, v in mem.items()},
                      m[blk], g["inst"][blk], g["pos"][blk], conc, colocated, splits, objective, keep_n,
                      order, feasible_mask, explain)

    def run_all(explain=False):
        if THREADS > 1 and len(blocks) > 1:  # numpy releases the interpreter lock in its array loops
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(THREADS, len(blocks))) as pool:
                return list(pool.map(lambda b: run(b, explain), blocks))
        return [run(blk, explain) for blk in blocks]

    done = run_all()
    feasible = sum(n_f for n_f, _ in done)
    cands = [c for _, cs in done for c in cs]
    if not cands:  # nothing feasible: the rows planner.serve.explain reads (its minima), and one row per group
        cands = [c for _, cs in run_all(explain=True) for c in cs]
        first = np.flatnonzero(m >= (1 if colocated else 2)) if (colocated or splits) else np.zeros(0, dtype=np.int64)
        one = {k: v[first] for k, v in t.items()}
        one.update(replicas=np.ones(len(first), dtype=np.int64), inst=g["inst"][first], pos=g["pos"][first],
                   prefill_replicas=np.full(len(first), 0 if colocated else 1, dtype=np.int64),
                   rr=np.full(len(first), 1 if colocated else 2), part=np.zeros(len(first), dtype=np.int64))
        cands.append(one)
    cat = {k: np.concatenate([c[k] for c in cands]) for k in cands[0]}
    o = np.lexsort((cat["pos"], cat["rr"], cat["inst"], cat["part"]))  # the full listing's order
    table = {k: cat[k][o] for k in keys}
    table["replicas"] = cat["replicas"][o]
    table["prefill_replicas"] = cat["prefill_replicas"][o]
    return table, evaluated, feasible


def _block(sc, ctx, t, mem, m, inst, pos, conc, colocated, splits, objective, keep_n, order, feasible_mask,
           explain: bool = False):
    """(feasible rows, candidate rows) of one block of alive groups, every split. `explain`: the candidates
    are instead the rows of least TPOT p90 / p99 and least TTFT p90 / p99 among those whose memory and batch fit, and
    of least $/h among those that also meet the SLO (what planner.serve.explain reports when none is
    feasible), with every row timed."""
    s = sc.serving
    ctx.links = timing.comm_links(ctx.node, t, ctx.facts.hidden, bool(ctx.facts.experts))
    i_eff = ctx.in_mean * (1 - ctx.hit)
    n_g = len(t["tp"])
    cands, feasible = [], 0
    parts = ([0] if colocated else []) + splits
    for part, p in enumerate(parts):
        if p == 0:
            tg = {**t, "prefill_replicas": np.zeros(n_g, dtype=np.int64)}
            token_cap = tg["max_batched_tokens"] / (1 + i_eff / ctx.out_mean)
        else:
            tg = {**t, "prefill_replicas": np.full(n_g, p, dtype=np.int64)}
            token_cap = tg["max_batched_tokens"]
        dis = p > 0
        if part == 0 or (dis and p == splits[0]):  # timing per (group, r): once per flavour
            b_cap = np.maximum(np.minimum(np.minimum(tg["max_batch"], mem["seqs_running"]), np.floor(token_cap)), 0)
            # rows no split can make feasible: the group's memory or batch fails, or TPOT misses its target
            gi, r = _expand(np.where((mem["verdict"] < 2) & (b_cap >= 1), m - dis, 0))
            b, timed = _timed(ctx, tg, b_cap, gi, r, conc, dis)
            if dis:  # the decode step at one sequence: the least TPOT of any split (evaluate.disagg_closed_loop)
                t1 = V._iter(ctx, tg, np.ones(n_g))
            tpot_targets = [(q, ms) for kind, q, ms in s.slo.targets() if kind == "tpot"]
            if tpot_targets and not explain:
                ok_t = np.ones(len(gi), dtype=bool)
                for q, ms in tpot_targets:  # evaluate._meets_slo's test; disaggregated: at its lower bound
                    ok_t &= (t1[gi] if dis else timed[4 if q == "p90" else 6]) * 1e3 <= ms
                fast = np.flatnonzero(ok_t)
                gi, r, b = gi[fast], r[fast], b[fast]
                timed = [None if x is None else x[fast] for x in timed]
            t_iter, ttft50, pf_rate, ttft90, tpot90, ttft99, tpot99 = timed
            dec_out = b / t_iter * r  # per (group, count), colocated: decode output rate
            if dis:
                pools = V._prefill_pools(ctx, tg, np.ones(n_g, dtype=bool))
        # evaluate._evaluate's concurrency formulas (only the p90s: the SLO and the ranking read those)
        if dis:
            sel = r <= (m[gi] - p)
            gs, rs, ti, bs = gi[sel], r[sel], t_iter[sel], b[sel]
            pf50, pf_tok_s, kv_move, pf90, kv_move90, pf99, kv_move99 = (x[gs] for x in pools)
            pre = np.full(len(gs), p, dtype=np.int64)
            bs, req_s, ti, S, y, extra = V.disagg_closed_loop(conc, ctx.out_mean, rs, pre, bs, ti, t1[gs],
                                                              pf50 + kv_move, pf_tok_s / max(i_eff, 1.0))
            out_tok_s = req_s * ctx.out_mean
            tp90 = tp99 = ti
            ttft = {"p90": pf90 + kv_move90 + V.disagg_wait(S, y, extra, 0.9)}
            if s.slo.ttft_ms_p99 is not None:
                ttft["p99"] = pf99 + kv_move99 + V.disagg_wait(S, y, extra, 0.99)
        else:
            gs, rs, ti, bs, rate = gi, r, t_iter, b, pf_rate
            tp90, tp99 = tpot90, tpot99
            pre = np.zeros(len(gs), dtype=np.int64)
            out_tok_s = dec_out
            ttft = {"p90": ttft90 + V.concurrency_wait(ctx, conc, rs, bs, ti, out_tok_s, rate, rs, 0.9)}
            if s.slo.ttft_ms_p99 is not None:
                ttft["p99"] = ttft99 + V.concurrency_wait(ctx, conc, rs, bs, ti, out_tok_s, rate, rs, 0.99)
        gpus = t["tp"][gs] * t["pp"][gs] * (rs + pre)
        tpot = {"p50": ti, "p90": tp90, "p99": tp99}  # _meets_slo reads p50 for the shape only
        usd_h = gpus * ctx.price if ctx.price is not None else np.full(gpus.shape, np.nan)
        usd_m = usd_h / 3600.0 / np.maximum(out_tok_s, 1e-30) * 1e6
        ev = {"mem": {"verdict": mem["verdict"][gs]}, "stable": b_cap[gs] >= 1, "batch_cap": b_cap[gs],
              "meets_slo": V._meets_slo(s, ttft, tpot), "usd_per_hour": usd_h}
        if explain:
            fit = (ev["mem"]["verdict"] < 2) & (ev["batch_cap"] >= 1 - 1e-9)
            from planner.serve.explain import limit_ratio

            picks = [np.where(mask, x, np.inf).argmin() for x, mask in
                     ((tp90, fit), (ttft["p90"], fit), (tp99, fit), (ttft.get("p99", ttft["p90"]), fit),
                      (usd_h, fit & ev["meets_slo"]), (limit_ratio(sc, {"tpot": tpot, "ttft": ttft}, usd_h), fit))
                     if mask.any()]
            ok = np.unique(np.array(picks, dtype=np.int64))
        else:
            ok = np.flatnonzero(feasible_mask(sc, ev))
            feasible += len(ok)
        if not len(ok):
            continue
        rank = {"usd_per_m": usd_m[ok], "ttft": {"p90": ttft["p90"][ok]}, "tpot": {"p90": tp90[ok]},
                "gpus": gpus[ok], "out_tok_s": out_tok_s[ok]}
        rr = rs[ok] + pre[ok]
        gk = gs[ok]
        best = order(rank, ctx.out_mean, objective, (pos[gk], rr, inst[gk]), first=keep_n)
        keep = ok[best]
        c = {k: v[gs[keep]] for k, v in t.items()}
        c.update(replicas=rs[keep], prefill_replicas=pre[keep], inst=inst[gs[keep]], pos=pos[gs[keep]],
                 rr=rs[keep] + pre[keep], part=np.full(len(keep), part))
        cands.append(c)
    return feasible, cands
