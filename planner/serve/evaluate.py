"""Evaluate a table of serving plans (numpy arrays, one entry per plan): memory, operating batch,
throughput, TTFT / TPOT p50 and p90 under the traffic, goodput under the SLO, $ per million output
tokens. One code path for `planner serve --plan` (a table of one) and the search.

Operating point (steady state of continuous batching with chunked prefill):
* every iteration carries B decoding sequences; B x input / output prefill tokens enter per
  iteration on average (a request enters prefill each time one leaves decode), prefilled as whole
  prompts in chunks up to the token budget, so the mean iteration mixes prefill steps and
  decode-only steps (_iter), at most max_batched_tokens in all;
* offline: B = the most sequences that fit (max_batch, KV pool, token budget); fixed concurrency
  C: B = min(that, C / replicas), the rest wait; a request rate: B solves Little's law
  B = (rate / replicas) x output x TPOT(B) (safeguarded secant), and a replica whose capacity is
  below the rate is unstable;
* TTFT = the prefill of the input alone in chunks of (max_batched_tokens - B / pp) tokens through the
  pp stages (prompt_prefill_s: chunks overlap across stages, one chunk does not), plus the wait in
  the prefill queue at the replica's busy prefill rate: under a request rate M/G/1 (Poisson arrivals,
  the service time of each input length: prompt_service_moments, timing.mg1_wait_quantile), at a fixed
  concurrency the finite-source queue of the requests in flight (closed_loop_wait_quantile; none with
  one request);
* TPOT p50 = the mean iteration time; p90 / p99 (tpot_quantile) combine two spreads: under Poisson
  arrivals the number of requests in service is Poisson distributed (M/G/inf), so the batch's quantile is
  B + z sqrt(B); and a request's TPOT is the mean of its own inter-token gaps, of which a share f carries a
  prompt chunk (longer by the chunk's time): a binomial count over its output - 1 gaps (chunk_spread_x).
* TTFT p90 / p99: the prefill of the input's 90th / 99th percentile length, the scheduling wait and the
  queue wait at that quantile; under a request rate with a spread of input lengths, the quantile of the sum
  of a prompt's own prefill (over the input's points) and the M/G/1 wait, which are independent
  (ttft_sum_quantile), plus the scheduling wait at that quantile (schedule_wait: the rest of the running
  step, the engine's poll or attention-DP hold, and one more step where the engine overlaps scheduling with
  the GPU step and other requests are running).

Disaggregated prefill/decode (plan prefill_replicas > 0; DistServe, Zhong et al. OSDI 2024;
vLLM / SGLang / Dynamo "P/D disaggregation"): `prefill_replicas` instances of the same layout only
prefill (steps of max_batched_tokens tokens, no decode), `replicas` instances only decode (no
prefill chunks in their steps, so TPOT is not stretched by prefill). Each request's KV cache moves
from a prefill to a decode instance over the scale-out link (every GPU sends its own shard at once,
planner.estimate.comm rates). TTFT = prefill on an idle prefill instance + the wait for one (M/G/1
under a rate) + the KV transfer; offline, the output rate is the smaller of the decode pool's and what
the prefill pool feeds (its requests/s x output tokens). At a fixed concurrency the C requests are split
between the prefill side and the decode pool by Little's law on the closed loop (disagg_closed_loop):
C = requests/s x (TTFT + (output - 1) x TPOT), the decode batch is the decoding share of C, TPOT is timed
at it and TTFT comes from the prefill queue at the request rate the cycle implies.
"""

from __future__ import annotations

import functools
import math
import statistics

import numpy as np

from planner.serve import engines as E
from planner.serve import timing
from planner.serve.memory import VERDICTS, memory_table, model_facts
from planner.spec.serving import length_biased_mean, token_moments, token_points, token_quantile, token_stats

Z90 = 1.2816  # standard normal 90th percentile
Z99 = 2.3263  # standard normal 99th percentile
QUANTILES = {"p90": (0.9, Z90), "p99": (0.99, Z99)}


def chunk_spread_x(output_tokens, q: float) -> float:
    """x_q such that a share q of the requests has (TPOT - mean) / sigma <= x_q, sigma = sqrt(f (1 - f)) x
    (gap with a prompt chunk - gap without): the spread of a request's TPOT from the prompt chunks among its
    steps (tpot_quantile).

    A request's TPOT is the mean of its g = output - 1 inter-token gaps (MLPerf's TPOT: time after the first
    token over the tokens after it; loadgen's per-sample TPOT). Each gap is one engine step, which carries a
    prompt chunk with the steady share f of the steps (evaluate._iter) and is then longer by Delta. Taking the
    steps' chunks as independent draws (the ASSUMPTION: a prompt longer than one chunk fills consecutive
    steps, which makes the spread larger), the count of chunk steps among a request's g gaps is binomial, so
    its TPOT has mean m and variance f (1 - f) Delta^2 / g, taken normal (central limit). Over the requests,
    whose g follow the output's points (token_points: shares by request), TPOT exceeds m + x sigma with
    probability sum_i w_i Phi_bar(x sqrt(g_i)); x_q solves that = 1 - q (bisection: the sum falls in x)."""
    pts = token_points(output_tokens)
    g = np.array([max(t - 1.0, 1.0) for t, _ in pts])
    w = np.array([s for _, s in pts])
    gu, inv = np.unique(g, return_inverse=True)
    return _chunk_spread_x(tuple(gu), tuple(np.bincount(inv, weights=w)), q)


@functools.lru_cache(maxsize=64)
def _chunk_spread_x(g: tuple, w: tuple, q: float) -> float:
    """chunk_spread_x's bisection for distinct gap counts g of request shares w (the standard library's normal
    tail, 0.5 erfc(x / sqrt 2): no scipy import on this path)."""
    sg = [math.sqrt(x) for x in g]
    lo, hi = 0.0, statistics.NormalDist().inv_cdf(q) / min(sg)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        tail = sum(wi * 0.5 * math.erfc(mid * si / math.sqrt(2.0)) for wi, si in zip(w, sg))
        lo, hi = (mid, hi) if tail > 1 - q else (lo, mid)
    return hi


class Context:
    """Everything about the scenario that does not depend on the plan."""

    def __init__(self, sc):
        self.sc = sc
        self.node = sc.cluster.node
        self.gpu = self.node.gpu
        self.facts = model_facts(sc.model)
        s = sc.serving
        self.in_mean, self.in_p90 = token_stats(s.input_tokens)
        self.in_p99 = token_quantile(s.input_tokens, 0.99)
        self.tpot_x = {k: chunk_spread_x(s.output_tokens, q) for k, (q, _) in QUANTILES.items()}
        self.in_moments = token_moments(s.input_tokens)  # E[l] .. E[l^4] of the input (prompt_service_moments)
        self.in_points = token_points(s.input_tokens)  # (tokens, share) of the input (ttft_sum_quantile)
        self.out_mean, self.out_p90 = token_stats(s.output_tokens)
        # A sequence in flight: its output length is length-biased (length_biased_mean), so on average it
        # holds input + E[o^2] / (2 E[o]) tokens of context; out_mean / 2 where the output count is fixed.
        self.out_running = length_biased_mean(s.output_tokens)
        self.ctx_dec = self.in_mean + self.out_running / 2
        self.ctx_dec_cv = running_context_cv(s.input_tokens, s.output_tokens)
        self.hit = s.prefix_cache_hit
        # A prefill token of a busy step: it belongs to a prompt picked in proportion to the prompt's length
        # (length_biased_mean, E[l^2] / E[l]) and attends to the cached prefix, hit x l, and to half of the
        # prompt's computed tokens, so its mean context is E[l^2] / E[l] x (1 + hit) / 2 (prefill attention
        # FLOPs summed over the prompts, timing.stage_terms); in_mean x (1 + hit) / 2 for one input length.
        self.ctx_pf = prompt_context(length_biased_mean(s.input_tokens), self.hit)
        self.cap_bytes = self.gpu.memory_gib * E.GIB
        lin, attn, bw = timing.rates(self.gpu, E.WEIGHT_NAMES)
        dense_names = tuple(E.dense_scheme(n) for n in E.WEIGHT_NAMES)
        mla_names = tuple(E.mla_proj_scheme(n) for n in E.WEIGHT_NAMES)
        k = sc.model.hidden
        self.hw = {"lin": lin, "attn": attn, "bw": bw, "kvb": E.KV_BYTES,
                   "bpe": np.array([E.weight_bytes_per_element(n, k) for n in E.WEIGHT_NAMES]),
                   "lin_dense": timing.rates(self.gpu, dense_names, dense_gemm=True)[0],
                   "bpe_dense": np.array([E.weight_bytes_per_element(n, k) for n in dense_names]),
                   "lin_mla": timing.rates(self.gpu, mla_names, dense_gemm=True)[0],
                   "bpe_mla": np.array([E.weight_bytes_per_element(n, k) for n in mla_names]),
                   "dequant": timing.dequant_s_per_weight(self.gpu, E.WEIGHT_NAMES),
                   "weight_only": np.array([timing.is_weight_only(n, self.gpu) for n in E.WEIGHT_NAMES]),
                   "gather_bpe": timing.moe_gather_bytes(E.WEIGHT_NAMES),
                   "mnnvl": bool(self.node.domain > self.node.gpus_per_node),  # scaleup_domain None = the node
                   "exp_per_flop": timing.exp_rate_per_flop(self.gpu),
                   "ctx_cv": self.ctx_dec_cv,
                   "gpu_name": self.gpu.name}
        self.price = self.node.usd_per_gpu_hour
        self.links = None  # collective costs of the plan table (timing.comm_links), set by evaluate

    def memory(self, t: dict) -> dict:
        """memory.memory_table of plan table t under this scenario (bytes per element of the plan's weight scheme,
        its dense and MLA-projection formats, KV format, the running and p90 lengths)."""
        wq = t["wq"]
        return memory_table(self.facts, t, self.cap_bytes, self.hw["bpe"][wq], E.KV_BYTES[t["kv"]], self.in_mean,
                            self.out_running, self.in_p90, self.out_p90, self.hw["bpe_dense"][wq], self.hw["bpe_mla"][wq])


def running_context_cv(input_tokens, output_tokens) -> float:
    """Coefficient of variation of a running sequence's context (its KV length: input + the outputs made so
    far). A decode step samples its sequences in proportion to their output length o (length_biased_mean) and
    finds each at an age uniform on [0, o], so E[age] = E[o^2] / (2 E[o]) (the mean Context.ctx_dec uses) and
    E[age^2] = E[o^3] / (3 E[o]); input and age taken as independent. 0 for fixed lengths with no output."""
    i1, i2 = token_moments(input_tokens, 2)
    o1, o2, o3 = token_moments(output_tokens, 3)
    if o1 <= 0:
        return 0.0
    age1, age2 = o2 / (2 * o1), o3 / (3 * o1)
    var = max(i2 - i1 * i1, 0.0) + max(age2 - age1 * age1, 0.0)
    mean = i1 + age1
    return math.sqrt(var) / mean if mean > 0 else 0.0


def prompt_context(tokens, hit):
    """Mean context a prefill token of a prompt of `tokens` tokens attends to: the cached prefix (hit x tokens)
    and half of the uncached rest ((1 - hit) x tokens / 2)."""
    return tokens * (1 + hit) / 2


def _disagg(t):
    return t.get("prefill_replicas", np.zeros_like(t["tp"])) > 0


def _iter(ctx, t, b, lk=None):
    """Mean iteration seconds at b decoding sequences per replica (_iter_parts)."""
    return _iter_parts(ctx, t, b, lk)[0]


def _iter_parts(ctx, t, b, lk=None):
    """(mean iteration seconds, share f of a decoding request's gaps that carry prompt work, how much longer
    such a gap is) at b decoding sequences per replica with the steady prefill share
    (none on the decode instances of a disaggregated plan).

    A request entering the engine is prefilled as a whole prompt, in chunks of at most the token
    budget left beside the decodes (max_batched_tokens - b), not spread thinly over every step:
    vLLM's scheduler puts the running decodes first and fills the rest of max_num_batched_tokens
    with the waiting prompts (docs, "Chunked prefill"), TensorRT-LLM's likewise with max_num_tokens.
    So a share f of the iterations carries a prefill step of s tokens and the rest decode only:
    mean = f x T(b, s) + (1 - f) x T(b, 0), with the steady prefill rate n = b x input / output
    tokens per iteration, s = min(budget, max(input, n)) and f = n / s. Where many prompts wait
    (n >= input) every step carries n tokens (f = 1, as spreading them would); at small batch the
    prompt's compute-bound step is no longer hidden under the decode's weight read. Under separate_prefill a
    decode gap carries n_pf / s prompt-only steps on average: a share min(that, 1) of the gaps carries them."""
    i_eff = ctx.in_mean * (1 - ctx.hit)
    budget = np.maximum(t["max_batched_tokens"] - b, 1.0)
    n_pf = np.minimum(b * i_eff / ctx.out_mean, budget)
    n_pf = np.where(_disagg(t), 0.0, n_pf)
    step = np.minimum(budget, np.maximum(i_eff, n_pf))
    share = np.clip(n_pf / np.maximum(step, 1e-9), 0.0, 1.0)
    ctx_dec = ctx.ctx_dec
    ctx_pf = ctx.ctx_pf
    lk = ctx.links if lk is None else lk
    with_pf = timing.iteration_s(ctx.facts, t, lk, ctx.hw, b, step, ctx_dec, ctx_pf)
    decode = _graph_decode_s(ctx, t, lk, b, ctx_dec, ctx_pf)
    mixed = share * with_pf + (1 - share) * decode
    sep = E.plan_separate_prefill(t)
    if not np.any(sep):
        return mixed, share, with_pf - decode
    # Steps of prompts alone (engines.plan_separate_prefill): every decode step, plus n_pf / s prompt-only
    # steps of s tokens, with the whole token budget (no decodes beside them).
    need = np.where(_disagg(t), 0.0, b * i_eff / ctx.out_mean)
    s_alone = np.minimum(np.maximum(t["max_batched_tokens"], 1.0), np.maximum(i_eff, need))
    alone = timing.iteration_s(ctx.facts, t, lk, ctx.hw, 0.0, s_alone, 0.0, ctx_pf)
    per_gap = need / np.maximum(s_alone, 1e-9)  # prompt-only steps per decode gap
    f_sep = np.clip(per_gap, 0.0, 1.0)
    return (np.where(sep, decode + per_gap * alone, mixed), np.where(sep, f_sep, share),
            np.where(sep, per_gap / np.maximum(f_sep, 1e-12) * alone, with_pf - decode))


def closed_loop_gaps(parts, b):
    """_iter_parts as a decoding request sees them in a closed population (offline, fixed concurrency): a
    request's successor enters when it leaves, so the prompts prefilled between its own tokens are those of
    the other b - 1 requests' successors, a share (b - 1) / b of the steady prompt work (none with one
    request: its prompt is in its TTFT, not in its TPOT). The mean iteration (parts[0], with every prompt)
    still times the cycle, hence the throughput: with R = TTFT + (output - 1) x TPOT from these gaps,
    requests/s x R = b (Little's law). Under a request rate the prompts arriving during a decode are all
    others' (the parts as they are)."""
    m, f, delta = parts
    k = np.clip((b - 1) / np.maximum(b, 1e-9), 0.0, 1.0)
    return m - (1 - k) * f * delta, k * f, delta


def tpot_quantile(ctx, t, b, parts, key: str, b_cap=None):
    """TPOT at quantile `key` (QUANTILES: p90 / p99) of b decoding sequences: the mean iteration (parts[0]; parts =
    _iter_parts at b) plus the root-sum-square of two independent spreads, each a normal quantile offset:
    * the batch's, under a request rate only (b_cap given): the number in service is Poisson (M/G/inf), so at
      b_q = min(b + z sqrt(b), b_cap) sequences (z: the key's normal quantile) the mean step is _iter(b_q), an
      offset of _iter(b_q) - parts[0];
    * the prompt chunks among a request's own steps: ctx.tpot_x[key] (chunk_spread_x at the key's quantile) x
      sqrt(f (1 - f)) x Delta, f and Delta from _iter_parts at b_q (at b without a rate).
    Without chunks (f = 0 or 1) and without a rate it is the mean itself."""
    _, z = QUANTILES[key]
    t_mean = parts[0]
    if b_cap is None:
        m_q, f, delta = parts
    else:
        m_q, f, delta = _iter_parts(ctx, t, np.minimum(b + z * np.sqrt(b), np.maximum(b_cap, 1)))
    batch = m_q - t_mean if b_cap is not None else 0.0
    chunks = ctx.tpot_x[key] * np.sqrt(np.clip(f * (1 - f), 0.0, None)) * np.abs(delta)
    return t_mean + np.sqrt(batch * batch + chunks * chunks)


def _graph_decode_s(ctx, t, lk, b, ctx_dec, ctx_pf):
    """A generation-only step. Where the plan pads its CUDA graphs (engines.graph_padded_batch) the step
    computes the padded batch p >= b; the dummy requests hold one KV token, so the real sequences' KV is
    kept by reading p sequences of mean context ctx_dec x b / p (the same bytes and attention FLOPs; the
    per-sequence attention work and the host bound count the dummies too)."""
    ranks = np.where(t["attn_dp"], t["tp"], 1)
    p = np.maximum(E.graph_padded_batch(b, ranks, E.plan_graph_padding(t), t["max_batch"]), np.asarray(b, dtype=float))
    return timing.iteration_s(ctx.facts, t, lk, ctx.hw, p, 0.0, ctx_dec * b / np.maximum(p, 1e-9), ctx_pf)


def _littles_law_batch(ctx, t, tok_rate, b_cap, t_cap, rounds: int = 60, tol: float = 1e-6):
    """Running sequences per replica that solve B = token rate x TPOT(B) (Little's law), capped at
    b_cap: the root of g(B) = rate x T(B) - B in [1e-3, b_cap], by secant steps kept inside a
    bracket [lo, hi] with g(lo) >= 0 >= g(hi), a step leaving the bracket replaced by bisection
    (safeguarded secant; Press et al., Numerical Recipes, 3rd ed., Sec. 9.2-9.4). The first
    evaluation is at the cap (t_cap = T(cap), already known to the caller; g >= 0 there: the rate
    fills the cap, the answer is the cap), the second at the fixed-point step rate x T(cap). T is
    piecewise linear in B (rooflines), so the secant lands on the root in a few rounds where the
    plain iteration B <- rate x T(B) crawls near saturation. Each round evaluates T once, on the
    plans not yet converged."""
    n = len(b_cap)
    lo, hi = np.full(n, 1e-3), np.maximum(b_cap.astype(float), 1e-3)
    b, prev_x, prev_g = hi.copy(), np.zeros(n), np.zeros(n)
    idx = np.arange(n)
    for k in range(rounds):
        x = b[idx]
        if k == 0:
            g = tok_rate * t_cap - x
        else:
            sub = {key: v[idx] for key, v in t.items()}
            lk = {key: tuple(a[idx] if np.ndim(a) else a for a in pair) for key, pair in ctx.links.items()}
            g = tok_rate[idx] * _iter(ctx, sub, x, lk) - x
        pos = g >= 0
        lo[idx] = np.where(pos, x, lo[idx])
        hi[idx] = np.where(pos, hi[idx], x)
        if k == 0:  # at the cap: filled (done) or the fixed-point step next
            nx = np.maximum(x + g, 1e-3)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                nx = x - g * (x - prev_x[idx]) / (g - prev_g[idx])
        nx = np.where(~np.isfinite(nx) | (nx <= lo[idx]) | (nx >= hi[idx]), 0.5 * (lo[idx] + hi[idx]), nx)
        done = (np.abs(nx - x) <= tol * np.maximum(x, 1.0)) | (hi[idx] - lo[idx] <= tol * np.maximum(lo[idx], 1.0))
        if k == 0:
            done |= pos
            nx = np.where(pos, x, nx)
        prev_x[idx], prev_g[idx] = x, g
        b[idx] = nx
        idx = idx[~done]
        if not len(idx):
            break
    return b


def prompt_prefill_s(ctx, t, n_dec, tokens, chunk, ctx_dec, ctx_pf):
    """Seconds to prefill one prompt of `tokens` tokens, cut into chunks of `chunk` tokens (the last carries
    the remainder), each chunk one micro-batch beside n_dec / pp decoding sequences, through pp stages.

    A chunk goes through the stages one after another; consecutive chunks of the same prompt overlap
    across stages: vLLM V1 advances a request's num_computed_tokens when it schedules a chunk
    (vllm/v1/core/sched/scheduler.py _update_after_schedule), so the next scheduled micro-batch of its
    batch queue (vllm/v1/engine/core.py step_with_batch_queue) carries the next chunk; SGLang's pipeline
    parallelism processes different chunks of one request on different stages at once
    (docs/advanced_features/pipeline_parallelism.md, "chunked pipeline parallelism"; Mooncake,
    Qin et al. 2024, Sec. 5.1). Stages of equal time per chunk make a proportionate flow shop, whose
    makespan is the sum of the chunk times + (pp - 1) x the longest (Pinedo, Scheduling, 5th ed., Sec. 6.1):
        T = full x s(chunk) + s(rest) + (pp - 1) x s(min(chunk, tokens)),
    full = floor(tokens / chunk), rest = tokens - full x chunk, s = timing.micro_batch_s (the stage time
    incl. the send to the next stage, and the host step). One chunk on pp stages takes pp stage times of the
    whole chunk (no faster than on one stage); pp = 1 gives full steps plus one step of the remainder."""
    full = np.floor(tokens / chunk)
    rest = tokens - full * chunk
    longest = np.minimum(chunk, tokens)
    pp = t["pp"]
    s = lambda n_pf: timing.micro_batch_s(ctx.facts, t, ctx.links, ctx.hw, n_dec / pp, n_pf,  # noqa: E731
                                          ctx_dec, ctx_pf)
    s_full = s(longest)
    s_rest = np.where(rest > 0, s(rest), 0.0)
    return full * s_full + s_rest + (pp - 1) * s_full


def _ttft_service(ctx, t, b, in_tokens, rate: bool = False):
    """Seconds to prefill in_tokens (after the cached prefix) alone beside b decoding sequences
    (prompt_prefill_s; a micro-batch carries b / pp decodes and a chunk of up to max_batched_tokens - b / pp
    prompt tokens: the engines' token budget holds per scheduled batch); with rate, also the prefill
    tokens/s of a busy engine, whose iterations fill the whole chunk with waiting prompts (chunk / iteration
    time of a full chunk, timing.iteration_s, its tokens at the busy steps' mean context Context.ctx_pf). The
    prompt of in_tokens attends to its own cached prefix and chunks (prompt_context)."""
    chunk = np.maximum(t["max_batched_tokens"] - b / t["pp"], 1.0)
    i_eff = in_tokens * (1 - ctx.hit)
    ctx_dec = ctx.ctx_dec
    one = prompt_prefill_s(ctx, t, b, i_eff, chunk, ctx_dec, prompt_context(in_tokens, ctx.hit))
    if not rate:
        return one, None
    busy_chunk = np.maximum(t["max_batched_tokens"] - b, 1.0)
    full = timing.iteration_s(ctx.facts, t, ctx.links, ctx.hw, b, busy_chunk, ctx_dec, ctx.ctx_pf)
    return one, busy_chunk / full


def _prefill_pool(ctx, t, in_tokens):
    """Disaggregated prefill instance: (seconds to prefill in_tokens alone (prompt_prefill_s, no decodes),
    prefill tokens/s at full steps, seconds to move the request's KV cache to a decode instance)."""
    from planner.estimate import comm
    from planner.serve.memory import kv_bytes_per_token, seq_kv_bytes

    mbt = t["max_batched_tokens"].astype(float)
    i_eff = in_tokens * (1 - ctx.hit)
    full_step = timing.iteration_s(ctx.facts, t, ctx.links, ctx.hw, 0.0, mbt, 0.0, ctx.ctx_pf)
    one = prompt_prefill_s(ctx, t, 0.0, i_eff, mbt, 0.0, prompt_context(in_tokens, ctx.hit))
    full, sw = kv_bytes_per_token(ctx.facts, t, ctx.hw["kvb"][t["kv"]])
    shard = seq_kv_bytes(ctx.facts, full, sw, in_tokens)  # bytes each GPU of the instance sends
    _, out_bw = comm._rates(ctx.node)
    return one, mbt / full_step, comm.ALPHA_OUT_S + shard / out_bw


def _prefill_pools(ctx, t, dis):
    """_prefill_pool at the mean, p90 and p99 input on the disaggregated plans only (zeros elsewhere): (prefill
    s, prefill tokens/s, KV move s at the mean; prefill s, KV move s at p90; the same at p99)."""
    n = len(t["tp"])
    out = [np.zeros(n) for _ in range(7)]
    if not dis.any():
        return out
    sub = {k: v[dis] for k, v in t.items()}
    full_links = ctx.links
    ctx.links = {k: tuple(a[dis] if np.ndim(a) else a for a in link) for k, link in full_links.items()}
    try:
        at90 = _prefill_pool(ctx, sub, ctx.in_p90)[::2]
        at99 = at90 if ctx.in_p99 == ctx.in_p90 else _prefill_pool(ctx, sub, ctx.in_p99)[::2]
        vals = _prefill_pool(ctx, sub, ctx.in_mean) + at90 + at99
    finally:
        ctx.links = full_links
    for o, v in zip(out, vals):
        o[dis] = v
    return out


def evaluate(sc, t: dict) -> dict:
    """Arrays of every quantity for each plan of table t (keys: engine, wq, kv, tp, pp, ep, attn_dp,
    replicas, max_batch, max_batched_tokens, prefill_replicas). In a table of many plans, the time
    model runs only on plans whose KV cache holds at least one sequence; the others keep their
    memory figures and get no throughput (they cannot serve)."""
    n = len(t["tp"])
    if n <= 1:
        return _evaluate(sc, t)
    ctx = Context(sc)
    mem = ctx.memory(t)
    alive = (mem["verdict"] < 2) & (np.minimum(t["max_batch"], mem["seqs_running"]) >= 1)
    if alive.all():
        return _evaluate(sc, t)
    sub = _evaluate(sc, {k: v[alive] for k, v in t.items()})

    def full(x, fill):
        out = np.full(n, fill, dtype=np.result_type(x, type(fill)))
        out[alive] = x
        return out

    gpus = t["tp"] * t["pp"] * (t["replicas"] + t.get("prefill_replicas", 0))
    price = ctx.price
    ev = {"ctx": sub["ctx"], "mem": mem, "gpus": gpus,
          "usd_per_hour": gpus * price if price is not None else np.full(n, np.nan)}
    for k, fill in (("batch", 0.0), ("batch_cap", 0.0), ("iteration_s", np.inf), ("out_tok_s", 0.0),
                    ("usd_per_m", np.inf), ("stable", False), ("meets_slo", False), ("goodput", 0.0),
                    ("capacity_tok_s", 0.0), ("decode_capacity_tok_s", 0.0), ("prefill_capacity_tok_s", 0.0)):
        ev[k] = full(sub[k], fill)
    for k in ("ttft", "tpot"):
        ev[k] = {q: full(v, np.inf) for q, v in sub[k].items()}
    return ev


def _evaluate(sc, t: dict) -> dict:
    ctx = Context(sc)
    ctx.links = timing.comm_links(ctx.node, t, ctx.facts.hidden, bool(ctx.facts.experts))
    s = sc.serving
    mem = ctx.memory(t)
    i_eff = ctx.in_mean * (1 - ctx.hit)
    dis = _disagg(t)
    pre = t.get("prefill_replicas", np.zeros_like(t["tp"]))
    # a step's token budget holds the decodes and the prompt chunk beside them; alone where prompts get steps of their own
    token_cap = np.where(dis | E.plan_separate_prefill(t), t["max_batched_tokens"],
                         t["max_batched_tokens"] / (1 + i_eff / ctx.out_mean))
    b_cap = np.maximum(np.minimum(np.minimum(t["max_batch"], mem["seqs_running"]), np.floor(token_cap)), 0)
    reps = t["replicas"]
    t_cap = _iter(ctx, t, np.maximum(b_cap, 1))
    cap_tok_s = b_cap / t_cap                     # output tokens/s per replica at full batch
    pf50, pf_tok_s, kv_move, pf90, kv_move90, pf99, kv_move99 = _prefill_pools(ctx, t, dis)
    pool_req_s = pre * pf_tok_s / np.maximum(i_eff, 1.0)   # requests/s the prefill pool can feed
    cap_tok_s = np.where(dis, np.minimum(cap_tok_s, pool_req_s * ctx.out_mean / np.maximum(reps, 1)), cap_tok_s)
    stable = b_cap >= 1
    wait50 = wait90 = wait99 = np.zeros_like(t_cap)
    es = es2 = None  # prompt service moments of the prefill queue under a rate
    if s.mode == "offline":
        b = b_cap
    elif s.mode == "concurrency":
        # fewer requests than colocated replicas: C replicas run one request each and the rest idle (a replica
        # does not run a fraction of a request: at b = C / replicas < 1 its prompt work was spread thin)
        b = np.minimum(b_cap, np.where(dis, s.concurrency / reps, np.maximum(s.concurrency / reps, 1.0)))
    else:
        lam = s.requests_per_s / reps
        stable = stable & (lam * ctx.out_mean < cap_tok_s)
        b = _littles_law_batch(ctx, t, lam * ctx.out_mean, b_cap, t_cap)
    b_eval = np.maximum(b, 1e-3)
    parts = _iter_parts(ctx, t, b_eval)
    t_iter = parts[0]
    ttft50, pf_rate = _ttft_service(ctx, t, b_eval, ctx.in_mean, rate=True)
    ttft90 = ttft50 if ctx.in_p90 == ctx.in_mean else _ttft_service(ctx, t, b_eval, ctx.in_p90)[0]
    ttft99 = ttft90 if ctx.in_p99 == ctx.in_p90 else _ttft_service(ctx, t, b_eval, ctx.in_p99)[0]
    # running requests an arrival finds on its replica (schedule_wait): Poisson arrivals see the mean b; a closed
    # loop's request sees the others
    others = b_eval if s.mode == "rate" else np.maximum(b_eval - 1.0, 0.0)
    ttft50 = np.where(dis, pf50 + kv_move, ttft50 + schedule_wait(t, t_iter, 0.5, b_eval, ctx.out_mean, others))
    ttft90 = np.where(dis, pf90 + kv_move90, ttft90 + schedule_wait(t, t_iter, 0.9, b_eval, ctx.out_mean, others))
    ttft99 = np.where(dis, pf99 + kv_move99, ttft99 + schedule_wait(t, t_iter, 0.99, b_eval, ctx.out_mean, others))
    queue_reps = np.where(dis, np.maximum(pre, 1), reps)   # who the prefill queue is shared by
    pf_rate = np.where(dis, pf_tok_s, pf_rate)
    if s.mode == "rate":
        lam = s.requests_per_s / queue_reps
        es, es2 = prompt_service_moments(ctx, t, b_eval, pf_rate)
        wait50 = timing.mg1_wait_quantile(lam, es, es2, 0.5)
        wait90 = timing.mg1_wait_quantile(lam, es, es2, 0.9)
        wait99 = timing.mg1_wait_quantile(lam, es, es2, 0.99)
        stable = stable & np.isfinite(wait90)
        tpot90 = tpot_quantile(ctx, t, b_eval, parts, "p90", b_cap)
        tpot99 = tpot_quantile(ctx, t, b_eval, parts, "p99", b_cap)
        out_tok_s = np.where(stable, s.requests_per_s * ctx.out_mean, cap_tok_s * reps)
    else:
        own = closed_loop_gaps(parts, b_eval)
        tpot50 = own[0]
        tpot90 = tpot_quantile(ctx, t, b_eval, own, "p90")
        tpot99 = tpot_quantile(ctx, t, b_eval, own, "p99")
        busy = reps if s.mode != "concurrency" else np.minimum(reps, s.concurrency / np.maximum(b, 1e-9))
        out_tok_s = np.where(dis, np.minimum(b / t_iter * reps, pool_req_s * ctx.out_mean), b / t_iter * busy)
        if s.mode == "concurrency":
            wait50 = concurrency_wait(ctx, s.concurrency, reps, b, t_iter, out_tok_s, pf_rate, queue_reps, 0.5)
            wait90 = concurrency_wait(ctx, s.concurrency, reps, b, t_iter, out_tok_s, pf_rate, queue_reps, 0.9)
            wait99 = concurrency_wait(ctx, s.concurrency, reps, b, t_iter, out_tok_s, pf_rate, queue_reps, 0.99)
            wait_mean = concurrency_wait(ctx, s.concurrency, reps, b, t_iter, out_tok_s, pf_rate, queue_reps, None)
            if dis.any():  # the closed loop of a disaggregated plan (disagg_closed_loop): its own batch, TPOT and waits
                d = np.flatnonzero(dis)
                sub = {k: v[d] for k, v in t.items()}
                lk = {k: tuple(a[d] if np.ndim(a) else a for a in pair) for k, pair in ctx.links.items()}
                t1 = _iter(ctx, sub, np.ones(len(d)), lk)
                bd, req_s, tp, S, y, extra = disagg_closed_loop(
                    s.concurrency, ctx.out_mean, reps[d], pre[d], b[d], t_iter[d], t1, pf50[d] + kv_move[d],
                    pf_tok_s[d] / max(i_eff, 1.0))
                b, t_iter, tpot50, tpot90, tpot99 = (np.array(x, dtype=float)
                                                     for x in (b, t_iter, tpot50, tpot90, tpot99))
                b[d], t_iter[d], tpot50[d], tpot90[d], tpot99[d] = bd, tp, tp, tp, tp
                out_tok_s = np.array(out_tok_s, dtype=float)
                out_tok_s[d] = req_s * ctx.out_mean
                for w, q in ((wait50, 0.5), (wait90, 0.9), (wait99, 0.99)):
                    w[d] = disagg_wait(S, y, extra, q)
                wait_mean[d] = disagg_wait(S, y, extra, None)
    gpus = t["tp"] * t["pp"] * (reps + pre)
    ttft = {"p50": ttft50 + wait50, "p90": ttft90 + wait90, "p99": ttft99 + wait99}
    if s.mode == "rate" and len(ctx.in_points) > 1 and not dis.all():
        # a prompt's own prefill and the queue wait ahead of it are independent (Poisson arrivals, FCFS): the
        # quantile of their sum, not the sum of their quantiles (ttft_sum_quantile)
        own = np.array([_ttft_service(ctx, t, b_eval, l)[0] * np.ones_like(t_iter) for l, _ in ctx.in_points])
        shares = np.array([w for _, w in ctx.in_points])
        for key, (q, _) in QUANTILES.items():
            x = ttft_sum_quantile(own, shares, schedule_wait(t, t_iter, q, b_eval, ctx.out_mean, others), lam, es, es2,
                                  q)
            ttft[key] = np.where(dis, ttft[key], np.maximum(x, ttft["p50"]))
    if s.mode == "concurrency":  # the mean (the scheduling wait's is its median), the closed loop's Little's law reads it
        ttft["mean"] = ttft50 + wait_mean
    tpot = {"p50": tpot50 if s.mode != "rate" else t_iter, "p90": tpot90, "p99": tpot99}
    good = _goodput_fraction(s, ttft50, es, es2, queue_reps, tpot)
    price = ctx.price
    usd_h = gpus * price if price is not None else np.full(gpus.shape, np.nan)
    usd_m = usd_h / 3600.0 / np.maximum(out_tok_s, 1e-30) * 1e6
    meets = _meets_slo(s, ttft, tpot)
    return {"ctx": ctx, "mem": mem, "batch": b, "batch_cap": b_cap, "iteration_s": t_iter, "ttft": ttft,
            "tpot": tpot, "out_tok_s": out_tok_s, "gpus": gpus, "usd_per_hour": usd_h, "usd_per_m": usd_m,
            "stable": stable, "meets_slo": meets, "goodput": out_tok_s * good,
            "capacity_tok_s": cap_tok_s * reps,
            # the two limits of a disaggregated plan's capacity: its decode instances at full batch and its prefill
            # pool (none on a colocated plan); explain._scale_to_qualify grows each side by what it lacks
            "decode_capacity_tok_s": b_cap / t_cap * reps,
            "prefill_capacity_tok_s": np.where(dis, pool_req_s * ctx.out_mean, np.inf)}


def prompt_service_moments(ctx, t, b, pf_rate):
    """(E[S], E[S^2]) of the service time S of one prompt in the prefill queue under a request rate, per
    plan (timing.mg1_wait_quantile).

    The server is the prompt-token budget of the replica's engine steps: each step the scheduler puts the
    running decodes first and fills the rest of the token budget (max_batched_tokens - b beside b decodes;
    the whole budget on a prefill instance) with chunks of the waiting prompts in arrival order, the
    partly prefilled one first (vLLM's chunked prefill, TensorRT-LLM's max_num_tokens). While prompts
    wait, every step carries a full chunk, so the queue's work drains at the busy engine's step time per
    chunk of tokens whatever the prompts' boundaries within the chunks: a work-conserving FCFS single server,
    and an arriving prompt waits for the work ahead of it, the M/G/1 wait (its own prefill, prompt_prefill_s,
    and the wait for the next step, schedule_wait, are added apart). The service of a prompt of l tokens is
    the busy-step time its uncached tokens take, S(l) = (1 - hit) l x tau(l), tau the busy step's seconds
    per chunk token at the prompt's mean attended context ctx(l) = hit l + (1 - hit) l / 2 (its chunks attend
    to the cached prefix and the chunks before them): prefill attention grows with the context, so S is
    quadratic in l, not linear. The step time is linear in ctx_pf (timing.stage_terms: prefill attention
    FLOPs 2 n ctx_pf ...) while the GPU step outweighs the host step, so tau(l) = a + c l is set by two steps:
    pf_rate (tokens/s of the busy step, evaluate, whose tokens attend at the length-biased input E[l^2] / E[l],
    Context.ctx_pf) and one at the mean input (not needed for one length). With the input's moments
    m_j = E[l^j] (planner.spec.serving.token_moments):
        E[S] = (1 - hit) (a m1 + c m2) = (1 - hit) m1 / pf_rate,  E[S^2] = (1 - hit)^2 (a^2 m2 + 2 a c m3 + c^2 m4).
    For a fixed input E[S] = i_eff / pf_rate and E[S^2] = E[S]^2 (deterministic service)."""
    m1, m2, m3, m4 = ctx.in_moments
    hit = ctx.hit
    tau_lb = 1.0 / np.maximum(pf_rate, 1e-30)
    lb = m2 / m1
    c = np.zeros_like(tau_lb)
    if lb > m1 * (1 + 1e-9):
        dis = _disagg(t)
        mbt = t["max_batched_tokens"].astype(float)
        chunk = np.where(dis, mbt, np.maximum(mbt - b, 1.0))
        n_dec = np.where(dis, 0.0, b)
        ctx_dec = np.where(dis, 0.0, ctx.ctx_dec)
        step = timing.iteration_s(ctx.facts, t, ctx.links, ctx.hw, n_dec, chunk, ctx_dec, prompt_context(m1, hit))
        c = (tau_lb - step / chunk) / (lb - m1)
    a = tau_lb - c * lb
    es = (1 - hit) * (a * m1 + c * m2)
    es2 = (1 - hit) ** 2 * (a * a * m2 + 2 * a * c * m3 + c * c * m4)
    return es, es2


def ttft_sum_quantile(own, shares, base, lam, es, es2, q: float):
    """q-quantile of TTFT under a request rate where the input length varies: TTFT = own(l) + base + W, a prompt of
    l tokens (share w_i of the prompts) taking own_i = its own prefill (_ttft_service), base = the scheduling wait
    at q (schedule_wait) and W the M/G/1 queue wait (timing.mg1_within: the atom P(W = 0) = 1 - rho and the
    exponential tail). Under Poisson arrivals and FCFS the wait depends on the work of the prompts ahead, not on
    the arriving prompt's own length, so the two are independent and P(TTFT <= x) = sum_i w_i P(W <= x - base -
    own_i); x solves P = q (bisection, per plan). The sum of the two quantiles (own prefill of the q-quantile
    input + the q-quantile wait), taken before, is the quantile only where both are at their q-quantile together
    (comonotone), an upper bound otherwise; it overstated the p99 of the MLPerf llama3.1-405b Server rows
    (inputs 2k-18k tokens) by 1.5-2 s against a draw of the same queue (tests/test_serve_ttft_sum.py). The
    scheduling wait is still added at its own quantile (a bound). own: (points, plans); shares: (points,)."""
    wait_q = timing.mg1_wait_quantile(lam, es, es2, q)
    lo = own.min(axis=0) + base
    hi = own.max(axis=0) + base + np.where(np.isfinite(wait_q), wait_q, 0.0)
    lam, es, es2 = (np.broadcast_to(np.asarray(x, dtype=float), lo.shape) for x in (lam, es, es2))
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        cdf = (shares[:, None] * timing.mg1_within(lam, es, es2, mid - base - own)).sum(axis=0)
        ok = cdf >= q - 1e-9  # shares summing to q exactly (e.g. 18 of 20 bins at 0.9) reach it
        lo, hi = np.where(ok, lo, mid), np.where(ok, mid, hi)
    return np.where(np.isfinite(wait_q), hi, np.inf)


def schedule_wait(t, t_iter, q: float, b=None, out_mean: float = 1.0, others=None):
    """Quantile q of the seconds a new request waits before the scheduler takes it into a prefill: the
    engines schedule between steps, so a request arriving during a decode step waits for that step and,
    where the scheduler polls its queue only every k decode steps (engines.plan_recv_interval: SGLang
    --scheduler-recv-interval), for the steps left until the next poll; where TensorRT-LLM balances attention-DP
    ranks (engines.plan_adp_balance), for the next release of held prompts, every adp_release_cycle steps at b
    decoding sequences per replica (b None: the cycle's shortest, every rank always holding a prompt).
    The arrival's phase in that cycle of k steps is uniform (closed-loop completions and Poisson arrivals
    are not tied to it): wait = q x k x step.
    Where the engine prepares the next step while the GPU runs this one (timing.overlaps_host_step), that next
    step is already scheduled when a request arrives: it reaches the scheduler when the running step ends and
    enters the step after the one launched then, one whole step later than without the overlap. Sources: SGLang
    Scheduler.event_loop_overlap (python/sglang/srt/managers/scheduler.py: recv_requests, get_next_batch_to_run,
    run_batch launches batch i, then process_batch_result of batch i - 1 waits for it), TensorRT-LLM
    PyExecutor._executor_loop_overlap (tensorrt_llm/_torch/pyexecutor/py_executor.py: _prepare_and_schedule_batch
    and _forward_step of step i, then _update_requests / _process_previous_batch of step i - 1), vLLM's async
    scheduling (the scheduler's next batch is built before the current batch's output is processed). It applies
    where the replica is busy: an arrival finds `others` running requests (a request rate: Poisson with mean b,
    arrivals see time averages; a closed loop: b - 1; default b, and busy when b is None), so the extra step
    comes with probability 1 - exp(-others): wait = (q x k + overlap x (1 - exp(-others))) x step."""
    k = E.plan_recv_interval(t)
    on, wait, timeout = E.plan_adp_balance(t)
    if np.any(on):
        ranks = np.where(t["attn_dp"], t["tp"], 1)
        arrivals = np.inf if b is None else np.asarray(b, dtype=float) / max(out_mean, 1e-9) / ranks
        k = np.where(on, adp_release_cycle(arrivals, ranks, wait, timeout), k)
    overlap = timing.overlaps_host_step(t["engine"], E.plan_engine_version(t), t["pp"], E.plan_async_scheduling(t))
    others = b if others is None else others
    busy = 1.0 if others is None else -np.expm1(-np.maximum(np.asarray(others, dtype=float), 0.0))
    return (q * k + np.where(overlap, busy, 0.0)) * t_iter


def adp_release_cycle(arrivals, ranks, wait, timeout):
    """Mean steps between two releases of the prompts TensorRT-LLM's attention-DP balancing holds
    (engines.plan_adp_balance), with `arrivals` new prompts per rank and step (Little's law at the operating
    point: b running sequences per replica, each leaving after `out_mean` steps, bring b / out_mean new prompts a
    step, spread over the ranks) and Poisson arrivals: a rank still lacks a prompt j steps after a release with
    probability exp(-a j), so every one of n ranks holds one after N steps, P(N > j) = 1 - (1 - exp(-a j))^n.
    The release comes at N + W steps (W = batching_wait_iters) where N < T (timeout_iters), else at T:
        E[L] = E[min(N, T)] + W P(N < T),  E[min(N, T)] = sum_{j=0}^{T-1} P(N > j).
    Busy ranks (a large): W + 1; idle ones (a -> 0): T. Left out: the immediate release when some rank has no
    running sequence at all (the balancing's other exit; it needs a nearly idle replica)."""
    a, n, w, T = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (arrivals, ranks, wait, timeout)))
    j = np.arange(int(np.max(T)) if T.size else 0, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):  # a = inf (b None): inf x 0 at j = 0, not selected
        lack = np.exp(-np.where(j > 0, a[..., None] * j, 0.0))  # P(a rank has no prompt j steps on); 1 at j = 0
    miss = 1.0 - (1.0 - lack) ** n[..., None]  # P(N > j)
    upto = j < T[..., None]
    mean_min = np.where(upto, miss, 0.0).sum(axis=-1)
    last = np.where(j == T[..., None] - 1, miss, 0.0).sum(axis=-1)  # P(N > T - 1) = P(N >= T)
    return mean_min + w * (1.0 - last)


LITTLE_TOL = 1e-10  # disagg_closed_loop: Newton stops where a step moves the request rate by less than this share


def disagg_closed_loop(conc, out_mean, reps, pre, b_up, t_up, t1, c0, mu, rounds: int = 100):
    """The closed loop of a disaggregated plan at a fixed concurrency C (each client sends its next request when
    the previous one completes), solved for its request rate X (requests/s) so that Little's law holds on the
    whole cycle: C = X x (TTFT + (output - 1) x TPOT), the C requests split between the prefill side (queue,
    prefill, KV move: X x TTFT of them) and the decode pool (X x (output - 1) x TPOT of them, b per decode
    instance), which in turn sets TPOT.

    * Decode: `reps` instances; the step time at b sequences is the chord of the time model between one
      sequence (t1) and b_up = min(batch cap, C / reps) (t_up, the most b can be): t(b) = t1 + s (b - 1), t1
      below one sequence (a decode step reads the weights once and the KV cache and per-token work grow with
      b: affine where the step stays on one roofline; the chord over-states t between the ends where the step
      turns compute-bound). Little's law on the pool, b x reps = X (output - 1) t(b), gives b of X in closed form.
    * Prefill: `pre` instances, each a server of mu prompts/s (its busy prefill rate); K = C / pre clients
      cycle through each. The queue of K clients is taken with the Schweitzer-Bard approximation of mean value
      analysis (an arriving request sees the queue of the other K - 1, (K - 1) / K of the mean; Schweitzer 1979,
      Bard 1979; Lazowska et al., Quantitative System Performance, 1984, Sec. 6.4.2): with y = (K - 1) / K x
      X / (pre mu), the mean wait is W = y / (1 - y) / mu, at most (K - 1) / mu (every other client ahead), the
      open-loop M/M/1 wait as K grows. TTFT = c0 (prefill of the mean input + KV move) + W.
    f(X) = X (c0 + W(X)) + b(X) reps - C is convex and increasing on [0, X_top], X_top = min(the decode pool's
    rate at b_up, pre mu): Newton's steps from X_top fall monotonically to the root (stop: a step below
    LITTLE_TOL of X). Where f(X_top) < 0 the requests left over wait at a full pool: `extra` = -f / X_top
    seconds more TTFT (a decode slot at the batch cap, or the prefill queue at capacity).
    Returns (b, X, TPOT t(b), the prefill queue's 1 / mu and y, extra); `disagg_wait` gives the wait's quantiles."""
    g = max(float(out_mean) - 1.0, 0.0)
    r, p = np.asarray(reps, dtype=float), np.asarray(pre, dtype=float)
    t1 = np.asarray(t1, dtype=float)
    s = np.where(b_up > 1.0, np.maximum(t_up - t1, 0.0) / np.maximum(b_up - 1.0, 1e-9), 0.0)
    s = np.minimum(s, t1 * (1.0 - 1e-9))  # batching is never slower than serial steps: t(b_up) <= b_up x t1
    S = 1.0 / np.maximum(mu, 1e-30)
    alpha = (1.0 - p / conc) / (p / S)  # y = alpha X
    with np.errstate(divide="ignore"):
        u_hi = np.where(g > 0, b_up * r / np.maximum(g * t_up, 1e-300), np.inf)
    u_top = np.minimum(u_hi, p / S)
    c0 = np.broadcast_to(np.asarray(c0, dtype=float), r.shape)
    cst = (g * t1, g * s, r * g * (t1 - s), S * alpha, r, alpha, c0)

    def f_df(u, k):
        gt1, gs, rc, sa, r_, al, c0_ = k
        n1 = u * gt1
        lin = n1 <= r_  # b <= 1: t = t1
        with np.errstate(divide="ignore", invalid="ignore"):  # den > 0 where b > 1 (u <= u_hi, below r / (g s))
            den = r_ - u * gs
            br = np.where(lin, n1, rc * u / den)
            dbr = np.where(lin, gt1, rc * r_ / (den * den))
        y = al * u
        inv = 1.0 / (1.0 - y)
        f = u * c0_ + sa * u * u * inv + br - conc
        df = c0_ + sa * u * (2.0 - y) * inv * inv + dbr
        return f, df, br

    # start at the least of two upper bounds of the root: X_top, and the root of X (c0 + W(X) + (output - 1) t1) = C
    # (TPOT >= t1), a quadratic: (sa - alpha k) X^2 + (k + alpha C) X - C = 0, k = c0 + (output - 1) t1
    k = c0 + g * t1
    qa, qb = S * alpha - alpha * k, k + alpha * conc
    with np.errstate(divide="ignore", invalid="ignore"):
        root = 2.0 * conc / (qb + np.sqrt(qb * qb + 4.0 * qa * conc))
    u = np.where(np.isfinite(root) & (root > 0), np.minimum(u_top, root), u_top)
    f, df, br = f_df(u, cst)
    sat = f <= 0
    extra = np.where(sat, -f / np.maximum(u, 1e-300), 0.0)
    idx = np.flatnonzero(~sat)  # Newton's steps on the rows not yet converged (each row's steps are its own)
    f, df = f[idx], df[idx]
    for _ in range(rounds):
        if not len(idx):
            break
        x = u[idx]
        nu = np.maximum(x - f / df, 0.0)
        u[idx] = nu
        keep = (x - nu) > LITTLE_TOL * x
        idx, nu = idx[keep], nu[keep]
        if len(idx):
            f, df, _ = f_df(nu, tuple(a[idx] for a in cst))
    br = f_df(u, cst)[2]
    b = np.minimum(br / r, b_up)  # at b_up to the last bit (b_up r / r can round above it; the step time may jump there)
    tpot = t1 + s * np.maximum(b - 1.0, 0.0)
    return b, u, tpot, S, alpha * u, extra


def disagg_wait(S, y, extra, q: float | None):
    """Quantile q of the prefill wait of disagg_closed_loop (+ its `extra`): the tail taken exponential with the
    queue's P(wait) = y and mean y / (1 - y) x S, as M/M/1 at load y: P(W > t) = y exp(-t (1 - y) / S). q None:
    the mean."""
    if q is None:
        return S * y / (1.0 - y) + extra
    with np.errstate(divide="ignore", invalid="ignore"):
        t = S / (1.0 - y) * np.log(y / (1.0 - q))
    return np.where(y > 1.0 - q, np.maximum(t, 0.0), 0.0) + extra


def concurrency_wait(ctx, conc, reps, b, t_iter, out_tok_s, pf_rate, queue_reps, q: float | None):
    """Quantile q of the seconds a new request waits at a fixed concurrency conc before its prefill starts
    (beyond the scheduling wait): for a batch slot (the conc / reps - b requests of a replica beyond its b
    running ones, at its completion rate b / t_iter / output requests/s), then for the prompts ahead of it
    in the prefill queue that queue_reps servers of pf_rate tokens/s share: the finite-source queue of the
    b x reps / queue_reps requests running per server, completing out_tok_s / output / queue_reps requests/s
    (closed_loop_wait_quantile; q None: the mean). evaluate and planner.serve.concurrency both call this."""
    slot = np.maximum(conc / reps - b, 0) / np.maximum(np.maximum(b, 1e-3) / t_iter / ctx.out_mean, 1e-30)
    i_eff = ctx.in_mean * (1 - ctx.hit)
    return slot + closed_loop_wait_quantile(out_tok_s / ctx.out_mean / queue_reps, pf_rate / np.maximum(i_eff, 1.0),
                                            b * reps / queue_reps, q)


def erlang_b(m, a):
    """Erlang's loss formula B(m, a) = (a^m / m!) / sum_{j<=m} a^j / j!, written with the regularized upper
    incomplete gamma function Q (sum_{j<=m} a^j / j! = e^a Q(m + 1, a)), so that it holds for a real m >= 0:
    B = exp(m ln a - a - ln Gamma(m + 1)) / Q(m + 1, a). Where Q underflows (a >> m, a load far below one),
    1 / B = sum_n prod_{i<n} (m - i) / a, summed until the terms fall below 1e-17 of the sum (each term is at
    most m / a of the one before, and Q underflows only where m / a is well below one)."""
    from scipy.special import gammaincc, gammaln

    m, a = np.broadcast_arrays(np.asarray(m, dtype=float), np.maximum(np.asarray(a, dtype=float), 1e-300))
    qc = gammaincc(m + 1.0, a)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        b = np.exp(m * np.log(a) - a - gammaln(m + 1.0)) / qc
    low = np.flatnonzero(~np.isfinite(b) | (qc < 1e-290))
    if len(low):
        ml, al = m.flat[low], a.flat[low]
        term, inv = np.ones(len(low)), np.ones(len(low))
        for i in range(100_000):
            term = term * np.maximum(ml - i, 0.0) / al
            inv = inv + term
            if i % 16 == 15 and not (term > 1e-17 * inv).any():
                break
        b = np.array(b, dtype=float)
        b.flat[low] = 1.0 / inv
    return np.clip(b, 0.0, 1.0)


def closed_loop_wait_quantile(lam, mu, sources, q: float | None):
    """Quantile q of the seconds a new prompt waits for the prompts ahead of it at a fixed concurrency:
    the finite-source (machine-repairman, M/M/1//K) queue, Kleinrock, Queueing Systems vol. 1 (1975),
    Sec. 3.9. K = `sources` requests cycle through one prefill server of rate mu (prompts/s): each spends
    a think time Z away from it (its decode), Z = K / lam with lam the closed loop's completion rate per
    prefill server (the time model's throughput; K / lam = output tokens x mean iteration on a colocated
    replica), then queues for its prefill. An arriving prompt sees the stationary state of the same queue
    with K - 1 sources (arrival theorem of closed networks: Sevcik & Mitrani, JACM 1981; Reiser & Lavenberg,
    JACM 1980), whose idle probability is Erlang's loss formula p0 = B(K - 1, a), a = mu Z (erlang_b: the
    repairman / Erlang-loss duality), and whose mean number present is N = (K - 1) - a (1 - p0) (throughput
    mu (1 - p0) = (K - 1 - N) / Z). Each prompt ahead (the one in service too, exponential) takes 1 / mu, so
    P(wait > 0) = 1 - p0 and E[wait] = N / mu. The tail is taken exponential with that mean:
        P(W > t) = (1 - p0) exp(-t (1 - p0) mu / N),  t_q = N / (mu (1 - p0)) ln((1 - p0) / (1 - q)),
    0 where 1 - p0 <= 1 - q. At K = 1 nobody is ahead (B(0, a) = 1): no wait. As K grows with the total
    rate lam fixed, B(K - 1, a) -> 1 - lam / mu = 1 - rho and N -> rho / (1 - rho): the open-loop M/M/1
    wait, P(W > t) = rho exp(-mu (1 - rho) t) (Kleinrock 1975, Vol. 1, Sec. 3.2), exactly. Finite for any load:
    at most K - 1 prompts are ever ahead. q None: the mean wait."""
    mu = np.maximum(mu, 1e-30)
    k = np.maximum(np.asarray(sources, dtype=float), 1.0)
    a = mu * k / np.maximum(lam, 1e-30)
    busy = 1.0 - erlang_b(k - 1.0, a)
    ahead = np.maximum((k - 1.0) - a * busy, 0.0)
    if q is None:  # the mean, E[wait] = N / mu
        return ahead / mu
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ahead / (mu * busy) * np.log(busy / (1.0 - q))
    return np.where(busy > 1.0 - q, np.maximum(t, 0.0), 0.0)


def _meets_slo(s, ttft, tpot):
    """Every SLO target the traffic is held to (Serving.slo_targets: TTFT / TPOT at p90 / p99) met."""
    ok = np.ones_like(tpot["p50"], dtype=bool)
    lat = {"ttft": ttft, "tpot": tpot}
    for kind, q, target in s.slo_targets():
        ok &= lat[kind][q] * 1e3 <= target
    return ok


def slo_bound(slo, kind: str):
    """(quantile key, ms) of the tightest target of a kind (ttft / tpot): the p90 one where set (a p99 target is
    at least the p90 one), else the p99 one; None where neither is set."""
    for kind_, q, target in slo.targets():
        if kind_ == kind:
            return q, target
    return None


def _goodput_fraction(s, ttft_svc, es, es2, reps, tpot):
    """Share of requests within the SLO (the tightest target of each kind, slo_bound): P(TTFT <= target) from the
    M/G/1 waiting time (timing.mg1_within, the prompt service moments es, es2 of prompt_service_moments), times 1
    when TPOT at the target's quantile meets it, 0.5 when only p50 does, else 0 (a coarse two-point TPOT tail)."""
    frac = np.ones_like(ttft_svc)
    ttft_b, tpot_b = slo_bound(s.slo, "ttft"), slo_bound(s.slo, "tpot")
    if ttft_b is not None and s.mode == "rate":
        frac = timing.mg1_within(s.requests_per_s / reps, es, es2, ttft_b[1] / 1e3 - ttft_svc)
    if tpot_b is not None:
        lim = tpot_b[1] / 1e3
        frac = frac * np.where(tpot[tpot_b[0]] <= lim, 1.0, np.where(tpot["p50"] <= lim, 0.5, 0.0))
    return frac


def result_row(ev: dict, t: dict, i: int) -> dict:
    """The JSON object of plan i (the PRODUCT.md serving contract)."""
    mem, gib = ev["mem"], E.GIB
    r = lambda x, n=2: None if x is None or not np.isfinite(x) else round(float(x), n)  # noqa: E731
    plan = {"engine": E.ENGINE_NAMES[int(t["engine"][i])], "weights": E.WEIGHT_NAMES[int(t["wq"][i])],
            "kv_cache": E.KV_NAMES[int(t["kv"][i])], "tp": int(t["tp"][i]), "pp": int(t["pp"][i]),
            "ep": int(t["ep"][i]), "attn_dp": bool(t["attn_dp"][i]), "replicas": int(t["replicas"][i]),
            "max_batch": int(t["max_batch"][i]), "max_batched_tokens": int(t["max_batched_tokens"][i]),
            "prefill_replicas": int(t["prefill_replicas"][i]) if "prefill_replicas" in t else 0,
            "engine_version": E.version_text(int(t["engine"][i]), float(E.plan_engine_version(t)[i])),
            "graph_padding": bool(E.plan_graph_padding(t)[i]),
            "moe_backend": E.MOE_BACKENDS[int(E.plan_trtllm_gen_moe(t)[i])],
            "recv_interval": int(E.plan_recv_interval(t)[i]),
            "quick_reduce": E.QUICK_REDUCE[int(E.plan_quick_reduce(t)[i])],
            "async_scheduling": bool(E.plan_async_scheduling(t)[i]),
            "separate_prefill": bool(E.plan_separate_prefill(t)[i])}
    on, wait, timeout = (x[i] for x in E.plan_adp_balance(t))
    plan.update(adp_balance=bool(on), adp_wait_iters=int(wait), adp_timeout_iters=int(timeout))
    plan["disaggregated"] = plan["prefill_replicas"] > 0
    usd_m = ev["usd_per_m"][i]
    return {
        "plan": plan,
        "gpus": int(ev["gpus"][i]),
        "memory": {"per_gpu_gib": r(mem["per_gpu"][i] / gib), "capacity_gib": r(ev["ctx"].cap_bytes / gib),
                   "weights_gib": r(mem["weights"][i] / gib), "kv_cache_gib": r(mem["kv_pool"][i] / gib),
                   "workspace_gib": r(mem["workspace"][i] / gib),
                   "other_gib": r((mem["other"][i] - mem["workspace"][i]) / gib),
                   "max_concurrent_sequences": int(mem["seqs_full"][i]),
                   "verdict": VERDICTS[int(mem["verdict"][i])]},
        "latency": {"ttft_ms": {q: r(ev["ttft"][q][i] * 1e3, 1) for q in ("p50", "p90", "p99")},
                    "tpot_ms": {q: r(ev["tpot"][q][i] * 1e3, 2) for q in ("p50", "p90", "p99")},
                    "meets_slo": bool(ev["meets_slo"][i]), "stable": bool(ev["stable"][i])},
        "throughput": {"output_tokens_per_s": r(ev["out_tok_s"][i], 1),
                       "output_tokens_per_s_per_gpu": r(ev["out_tok_s"][i] / ev["gpus"][i], 1),
                       "goodput_output_tokens_per_s": r(ev["goodput"][i], 1),
                       "capacity_output_tokens_per_s": r(ev["capacity_tok_s"][i], 1),
                       "running_sequences_per_replica": r(ev["batch"][i], 1)},
        "cost": {"usd_per_hour": r(ev["usd_per_hour"][i]),
                 "usd_per_million_output_tokens": r(usd_m, 4)},
    }
