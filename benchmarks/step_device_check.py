"""Step times on one GPU: a training step, grouped expert GEMMs, a serving decode / prefill step.

    python3 benchmarks/step_device_check.py --out step.json [--smoke] [--sections train,moe,serve]

Three sections, each in its own try/except (an error is recorded in the JSON and the others run);
the JSON is rewritten (atomically) after every item, so a run cut short keeps what it measured.

train  The 8-layer Llama-shaped decoder of benchmarks/memory_device_check.py (imported, same SwiGLU
       blocks, flash SDPA, F.cross_entropy on fp32 logits) in its Megatron mixed-precision layout
       (bf16 weights, fp32 main_grad buffer, fp32 master weights, fused AdamW), eager, no compile.
       Recompute none / full / tt_sac (torchtitan's op-level policy) at (mbs 1, s 4096) and (mbs 2,
       s 8192). Per step, CUDA events split forward (to the loss), backward, and the optimizer
       (AdamW step, master -> bf16 copy, main_grad zeroing); 2 warm-up steps, median of TRAIN_STEPS.
moe    Grouped expert GEMM forward (torch._grouped_mm, bf16, torchtitan's layout: weights stored
       (experts, n, k) and passed transposed) for real expert shapes with balanced routing: tokens
       per GPU T, each routed to top_k of E experts, EP ranks holding E / ep experts each, so a GPU
       receives T x top_k rows in all, T x top_k x ep / E per local expert. The up (k = hidden,
       n = 2 x expert ffn, GLU) and down (k = expert ffn, n = hidden) matmuls. Also a Python loop of
       torch.mm per expert, one dense GEMM of all the rows against one weight (the dense-path rate)
       and, where torch._scaled_grouped_mm exists, FP8 e4m3 with row-wise scales (fast accumulation).
       Each: 3 warm-ups, median of MOE_ITERS calls between CUDA events.
serve  A Llama-3.1-8B-shaped decoder (32 layers, random bf16 weights, fused qkv and gate/up
       weights, F.rms_norm, SwiGLU, LM head + argmax on the new token; no RoPE: engines fuse it into
       the qkv / attention kernels and it does not change the GEMM or KV traffic). Decode: batch
       1 / 16 / 64 / 256 sequences at context CTX, a static KV cache per layer (batch, kv heads, ctx,
       head dim), the new token's K/V written in place, attention either through
       scaled_dot_product_attention restricted to the flash backend (enable_gqa) or a
       flash-decoding-like bmm path (q grouped per KV head, QK^T bmm, fp32 softmax, PV bmm); each
       step captured in a CUDA graph (no host launch cost); also the same step without attention
       and attention alone (32 layers), so the GEMM and attention parts read separately. FP8
       weights (torch._scaled_mm, per-tensor scales, activation cast to e4m3 with a static scale,
       LM head in bf16) at FP8_BATCHES. Prefill of one sequence of PREFILL tokens, eager (not a
       graph; host launch time is hidden behind GPU work at these sizes), flash causal attention,
       K/V written to the cache, LM head on the last token. Graph replays: 2 warm-ups, median of
       SERVE_ITERS; prefill: 1 warm-up, median of 3.
--smoke runs every code path on the CPU at toy sizes (perf_counter instead of CUDA events, no graphs).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
import traceback

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memory_device_check as mdc  # noqa: E402

TRAIN_CONFIGS = [(1, 4096), (2, 8192)]  # (micro-batch, sequence)
TRAIN_RECOMPUTE = ("none", "full", "tt_sac")
TRAIN_WARMUP, TRAIN_STEPS = 2, 5
MOE_MODELS = [  # name, hidden, expert ffn, experts, top_k, ep degrees (all GLU experts)
    ("qwen3-30b-a3b", 2048, 768, 128, 8, (8,)),
    ("deepseek-v3", 7168, 2048, 256, 8, (8, 32, 64)),
    ("mixtral-8x7b", 4096, 14336, 8, 2, (1, 8)),
    ("gpt-oss-120b", 2880, 2880, 128, 4, (8,)),
]
MOE_TOKENS = (4096, 16384)
MOE_ITERS = 10
LLAMA8B = dict(layers=32, hidden=4096, heads=32, kv_heads=8, head_dim=128, ffn=14336, vocab=128256)
DECODE_BATCHES, CTX, FP8_BATCHES, PREFILL = (1, 16, 64, 256), 2048, (1, 64, 256), (2048, 8192)
SERVE_ITERS = 10
BUDGET_S = 200.0  # stop starting new items after this many seconds (the whole run must stay under 4 min)

SMOKE = dict(model=dict(layers=2, hidden=256, heads=4, head_dim=64, vocab=1000), ffn={"swiglu": 512, "gelu": 1024},
             train=[(1, 64), (2, 32)], moe_div=16, moe_tokens=(64,),
             llama=dict(layers=2, hidden=256, heads=4, kv_heads=2, head_dim=64, ffn=512, vocab=1000),
             batches=(1, 4), ctx=64, fp8_batches=(1, 4), prefill=(32,))


class Clock:
    """CUDA events on a GPU (GPU time between marks); perf_counter on the CPU (smoke runs)."""

    def __init__(self, cuda: bool):
        self.cuda = cuda

    def mark(self):
        if self.cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def seconds(self, a, b) -> float:
        return a.elapsed_time(b) / 1e3 if self.cuda else b - a

    def median_call_s(self, fn, warm: int, n: int) -> float:
        """Median seconds of fn() over n back-to-back calls after `warm` warm-ups (one mark between calls)."""
        for _ in range(warm):
            fn()
        self.sync()
        marks = [self.mark()]
        for _ in range(n):
            fn()
            marks.append(self.mark())
        self.sync()
        return statistics.median(self.seconds(a, b) for a, b in zip(marks, marks[1:]))


def free_memory():
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def err_text(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:400] + " | " + traceback.format_exc(limit=3)[-400:]


# ---------------------------------------------------------------- train


def train_section(out: dict, run, dev: str, clock: Clock, configs):
    """Forward / backward / optimizer seconds of the memory check's model, per recompute mode and shape."""
    model, params, master, opt = mdc.megatron_model("swiglu", "none", dev)
    out.update(model=mdc.MODEL, ffn=mdc.FFN["swiglu"], params=sum(p.numel() for p in params), runs=[])

    def optimizer_step():
        mdc.optimizer_step(params, master, opt)

    for mbs, seq in configs:
        tokens = torch.randint(0, mdc.MODEL["vocab"], (mbs, seq), device=dev)
        targets = torch.randint(0, mdc.MODEL["vocab"], (mbs, seq), device=dev)
        for rc in TRAIN_RECOMPUTE:
            r = {"recompute": rc, "mbs": mbs, "seq": seq}

            def item():
                model.recompute = rc
                phases = []
                for i in range(TRAIN_WARMUP + TRAIN_STEPS):
                    m0 = clock.mark()
                    loss = model(tokens, targets)
                    m1 = clock.mark()
                    loss.backward()
                    m2 = clock.mark()
                    optimizer_step()
                    m3 = clock.mark()
                    if i >= TRAIN_WARMUP:
                        phases.append((m0, m1, m2, m3))
                    del loss
                clock.sync()
                for key, (a, b) in (("forward_s", (0, 1)), ("backward_s", (1, 2)), ("optimizer_s", (2, 3)),
                                    ("step_s", (0, 3))):
                    r[key] = statistics.median(clock.seconds(p[a], p[b]) for p in phases)
                r["steps_s"] = [clock.seconds(p[0], p[3]) for p in phases]
                if clock.cuda:
                    r["peak_allocated"] = torch.cuda.max_memory_allocated()
                    torch.cuda.reset_peak_memory_stats()

            run(out["runs"], r, item)
        del tokens, targets
    del model, opt, master, params


# ---------------------------------------------------------------- moe


def moe_shapes(div: int, tokens_list):
    """(model, ep, tokens, local experts, rows per local expert, matmul, k, n) of every grouped GEMM measured."""
    for name, h, f, experts, top_k, eps in MOE_MODELS:
        if div > 1:  # smoke sizes, kept multiples of 16 (grouped GEMM strides are 16-byte aligned)
            h, f = max(16, h // div // 16 * 16), max(16, f // div // 16 * 16)
        for ep in eps:
            for tokens in tokens_list:
                rows_total = tokens * top_k * ep  # over the EP group's experts, E per group
                assert rows_total % experts == 0, (name, ep, tokens)
                for mm, k, n in (("up", h, 2 * f), ("down", f, h)):
                    yield name, ep, tokens, experts // ep, rows_total // experts, mm, k, n


def moe_item(r: dict, dev: str, clock: Clock):
    """Times one grouped expert GEMM shape four ways (see module doc) into r."""
    g, rows, k, n = r["local_experts"], r["rows_per_expert"], r["k"], r["n"]
    bf = torch.bfloat16
    x = torch.randn(g * rows, k, device=dev, dtype=bf)
    w = torch.randn(g, n, k, device=dev, dtype=bf) * 0.02  # torchtitan GroupedExperts: (experts, out, in)
    offs = torch.arange(1, g + 1, device=dev, dtype=torch.int32) * rows
    r["flops"] = 2.0 * g * rows * k * n
    timed = lambda fn: clock.median_call_s(fn, 3, MOE_ITERS)  # noqa: E731
    if hasattr(torch, "_grouped_mm"):
        try:
            r["grouped_s"] = timed(lambda: torch._grouped_mm(x, w.transpose(-2, -1), offs=offs))
        except Exception as e:  # noqa: BLE001
            r["grouped_error"] = err_text(e)
    r["loop_s"] = timed(lambda: [torch.mm(x[i * rows:(i + 1) * rows], w[i].t()) for i in range(g)])
    w0 = w[0]
    r["dense_s"] = timed(lambda: torch.mm(x, w0.t()))
    if hasattr(torch, "_scaled_grouped_mm"):
        try:
            f8 = torch.float8_e4m3fn
            x8, w8 = x.to(f8), w.to(f8)
            sa = torch.ones(g * rows, device=dev, dtype=torch.float32)
            sb = torch.ones(g, n, device=dev, dtype=torch.float32)
            r["fp8_grouped_s"] = timed(lambda: torch._scaled_grouped_mm(
                x8, w8.transpose(-2, -1), sa, sb, offs=offs, out_dtype=bf, use_fast_accum=True))
        except Exception as e:  # noqa: BLE001
            r["fp8_error"] = err_text(e)


def moe_section(out: dict, run, dev: str, clock: Clock, div: int, tokens_list):
    out.update(grouped_mm=hasattr(torch, "_grouped_mm"), scaled_grouped_mm=hasattr(torch, "_scaled_grouped_mm"),
               runs=[])
    for name, ep, tokens, g, rows, mm, k, n in moe_shapes(div, tokens_list):
        r = {"model": name, "ep": ep, "tokens": tokens, "local_experts": g, "rows_per_expert": rows, "matmul": mm,
             "k": k, "n": n}
        run(out["runs"], r, lambda: moe_item(r, dev, clock))


# ---------------------------------------------------------------- serve


def llama_weights(c: dict, dev: str):
    """Random bf16 weights (std 0.02) per layer: fused qkv, o, fused gate/up, down (nn.Linear layout
    (out, in)), RMSNorm weights."""
    h, d, f = c["hidden"], c["head_dim"], c["ffn"]
    qkv = (c["heads"] + 2 * c["kv_heads"]) * d

    def w(*shape):
        return torch.empty(*shape, device=dev, dtype=torch.bfloat16).normal_(0, 0.02)

    return [dict(qkv=w(qkv, h), o=w(h, c["heads"] * d), w13=w(2 * f, h), w2=w(h, f),
                 n1=torch.ones(h, device=dev, dtype=torch.bfloat16), n2=torch.ones(h, device=dev, dtype=torch.bfloat16))
            for _ in range(c["layers"])]


def make_linear(fp8: bool, dev: str):
    """F.linear in bf16; fp8: activation cast to e4m3 (static scale 1), torch._scaled_mm with per-tensor
    scales and bf16 output (weights (out, in) row-major, passed transposed: the column-major operand)."""
    if not fp8:
        return F.linear
    one = torch.ones((), device=dev, dtype=torch.float32)
    return lambda x, w: torch._scaled_mm(x.to(torch.float8_e4m3fn), w.t(), scale_a=one, scale_b=one,
                                         out_dtype=torch.bfloat16)


def attn_sdpa(q, k, v, causal=False):
    """q (b, H, s, d), k/v (b, KV, ctx, d): scaled_dot_product_attention, GQA native (enable_gqa)."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)


def attn_bmm(q, k, v, causal=False):
    """Decode attention as two batched GEMMs per KV head group: q heads sharing a KV head stacked as rows."""
    b, hq, _, d = q.shape
    kv = k.shape[1]
    qg = q.reshape(b, kv, hq // kv, d)
    p = torch.softmax(torch.matmul(qg, k.transpose(-1, -2)).float() * d ** -0.5, dim=-1).to(q.dtype)
    return torch.matmul(p, v).reshape(b, hq, 1, d)


def decode_fn(c, layers, head, kc, vc, b, ctx, attn, lin, with_attn=True, with_gemm=True):
    """One decode step of b sequences (their last position ctx - 1); returns the sampled tokens."""
    h, hq, kv, d = c["hidden"], c["heads"], c["kv_heads"], c["head_dim"]
    x = torch.randn(b, h, device=head.device, dtype=torch.bfloat16)
    pos = ctx - 1

    def step():
        y = x
        for L, W in enumerate(layers):
            k_all, v_all = kc[L][:b, :, :ctx], vc[L][:b, :, :ctx]
            if with_gemm:
                qkv = lin(F.rms_norm(y, (h,), W["n1"]), W["qkv"])
                q, k, v = qkv.split((hq * d, kv * d, kv * d), dim=-1)
                k_all[:, :, pos] = k.view(b, kv, d)
                v_all[:, :, pos] = v.view(b, kv, d)
                q = q.view(b, hq, 1, d)
            else:
                q = x.view(b, -1)[:, :hq * d].reshape(b, hq, 1, d)
            o = attn(q, k_all, v_all) if with_attn else q
            if with_gemm:
                y = y + lin(o.reshape(b, hq * d), W["o"])
                g, u = lin(F.rms_norm(y, (h,), W["n2"]), W["w13"]).chunk(2, dim=-1)
                y = y + lin(F.silu(g) * u, W["w2"])
        if not with_gemm:
            return y
        return F.linear(F.rms_norm(y, (h,), layers[-1]["n2"]), head).argmax(-1)

    return step


def prefill_fn(c, layers, head, kc, vc, s, attn):
    """One eager prefill of s tokens (batch 1): causal attention, K/V written to the cache, LM head on the last."""
    h, hq, kv, d = c["hidden"], c["heads"], c["kv_heads"], c["head_dim"]
    x = torch.randn(s, h, device=head.device, dtype=torch.bfloat16)

    def step():
        y = x
        for L, W in enumerate(layers):
            qkv = F.linear(F.rms_norm(y, (h,), W["n1"]), W["qkv"])
            q, k, v = qkv.split((hq * d, kv * d, kv * d), dim=-1)
            k = k.view(s, kv, d).transpose(0, 1).unsqueeze(0)
            v = v.view(s, kv, d).transpose(0, 1).unsqueeze(0)
            kc[L].view(-1)[:kv * s * d].view(1, kv, s, d).copy_(k)  # the cache's storage, one sequence
            vc[L].view(-1)[:kv * s * d].view(1, kv, s, d).copy_(v)
            o = attn(q.view(s, hq, d).transpose(0, 1).unsqueeze(0), k, v, causal=True)
            y = y + F.linear(o.squeeze(0).transpose(0, 1).reshape(s, hq * d), W["o"])
            g, u = F.linear(F.rms_norm(y, (h,), W["n2"]), W["w13"]).chunk(2, dim=-1)
            y = y + F.linear(F.silu(g) * u, W["w2"])
        return F.linear(F.rms_norm(y[-1:], (h,), layers[-1]["n2"]), head).argmax(-1)

    return step


def kernel_census(fn, cuda: bool) -> dict:
    """{kernel name: launches} of one call of fn under torch.profiler (GPU kernels; on the CPU, smoke: ops)."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        fn()
        if cuda:
            torch.cuda.synchronize()
    want = torch.autograd.DeviceType.CUDA if cuda else torch.autograd.DeviceType.CPU
    counts = {}
    for e in prof.events():
        if e.device_type == want:
            counts[e.name[:100]] = counts.get(e.name[:100], 0) + 1
    return counts


def graph_time_s(fn, clock: Clock) -> float:
    """Median replay seconds of fn captured in a CUDA graph (side-stream warm-up, then capture); on the
    CPU (smoke) fn itself."""
    if not clock.cuda:
        return clock.median_call_s(fn, 1, 3)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    t = clock.median_call_s(g.replay, 2, SERVE_ITERS)
    del g
    return t


def serve_section(out: dict, run, dev: str, clock: Clock, c: dict, batches, ctx, fp8_batches, prefills):
    from contextlib import nullcontext

    from torch.nn.attention import SDPBackend, sdpa_kernel

    flash = (lambda: sdpa_kernel(SDPBackend.FLASH_ATTENTION)) if clock.cuda else nullcontext
    torch.manual_seed(0)
    layers = llama_weights(c, dev)
    head = torch.empty(c["vocab"], c["hidden"], device=dev, dtype=torch.bfloat16).normal_(0, 0.02)
    bmax, kvshape = max(batches), (c["kv_heads"], max(ctx, max(prefills) // max(batches) + 1), c["head_dim"])
    kc = [torch.empty(bmax, *kvshape, device=dev, dtype=torch.bfloat16).normal_() for _ in range(c["layers"])]
    vc = [torch.empty(bmax, *kvshape, device=dev, dtype=torch.bfloat16).normal_() for _ in range(c["layers"])]
    out.update(model=c, ctx=ctx, kv_cache_bytes=2 * sum(t.numel() * 2 for t in kc), runs=[])

    try:  # GQA inside the flash kernel (enable_gqa); else K/V expanded to every query head first
        with flash():
            q0, k0 = (torch.randn(1, n, 16, c["head_dim"], device=dev, dtype=torch.bfloat16)
                      for n in (c["heads"], c["kv_heads"]))
            attn_sdpa(q0, k0, k0)
        out["sdpa"] = "flash, enable_gqa"
    except RuntimeError as e:
        out["sdpa"], out["sdpa_gqa_error"] = "flash, K/V repeat_interleave to all heads", err_text(e)
    group = c["heads"] // c["kv_heads"]

    def sdpa_flash(q, k, v, causal=False):
        with flash():
            if out["sdpa"] == "flash, enable_gqa":
                return attn_sdpa(q, k, v, causal)
            return F.scaled_dot_product_attention(q, k.repeat_interleave(group, 1), v.repeat_interleave(group, 1),
                                                  is_causal=causal)

    bf16 = make_linear(False, dev)
    for b in batches:
        for name, kw in (("attn_sdpa", dict(attn=sdpa_flash, with_gemm=False)),
                         ("attn_bmm", dict(attn=attn_bmm, with_gemm=False)),
                         ("no_attn", dict(attn=sdpa_flash, with_attn=False)),
                         ("step_sdpa", dict(attn=sdpa_flash)),
                         ("step_bmm", dict(attn=attn_bmm))):
            r = {"kind": "decode", "part": name, "batch": b, "ctx": ctx, "weights": "bf16", "graph": clock.cuda}
            run(out["runs"], r, lambda: r.update(
                time_s=graph_time_s(decode_fn(c, layers, head, kc, vc, b, ctx, lin=bf16, **kw), clock)))
    for s in prefills:
        r = {"kind": "prefill", "part": "step_sdpa", "tokens": s, "weights": "bf16", "graph": False}
        run(out["runs"], r, lambda: r.update(
            time_s=clock.median_call_s(prefill_fn(c, layers, head, kc, vc, s, sdpa_flash), 1, 3)))
    if hasattr(torch, "_scaled_mm"):
        fp8_layers = [dict(L, **{k: L[k].to(torch.float8_e4m3fn) for k in ("qkv", "o", "w13", "w2")}) for L in layers]
        f8 = make_linear(True, dev)
        for b in fp8_batches:
            for name, kw in (("no_attn", dict(attn=sdpa_flash, with_attn=False)), ("step_sdpa", dict(attn=sdpa_flash))):
                r = {"kind": "decode", "part": name, "batch": b, "ctx": ctx, "weights": "fp8", "graph": clock.cuda}
                run(out["runs"], r, lambda: r.update(
                    time_s=graph_time_s(decode_fn(c, fp8_layers, head, kc, vc, b, ctx, lin=f8, **kw), clock)))
        del fp8_layers
    else:
        out["fp8_error"] = "torch._scaled_mm missing"
    # last (the profiler is the least tried path here): which kernels one decode step launches
    for b in (min(batches), bmax):  # which kernels one decode step launches (how many per layer)
        r = {"kind": "census", "part": "step_sdpa", "batch": b, "ctx": ctx, "weights": "bf16"}
        run(out["runs"], r, lambda: r.update(kernels=kernel_census(
            decode_fn(c, layers, head, kc, vc, b, ctx, attn=sdpa_flash, lin=bf16), clock.cuda)))


# ---------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--smoke", action="store_true", help="toy sizes on the CPU: exercises every code path")
    ap.add_argument("--sections", default="train,moe,serve")
    args = ap.parse_args(argv)
    t0 = time.time()
    cuda = torch.cuda.is_available() and not args.smoke
    dev, clock = ("cuda" if cuda else "cpu"), Clock(cuda)
    res = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name() if cuda else "cpu", "smoke": args.smoke,
           "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""), "budget_s": BUDGET_S}
    if cuda:
        p = torch.cuda.get_device_properties(0)
        res.update(sm_count=p.multi_processor_count, gpu_memory=p.total_memory)

    def flush():
        res["elapsed_s"] = round(time.time() - t0, 1)
        mdc.write_json(args.out, res, indent=1)

    def run(rows: list, r: dict, item):
        """Runs one item into r (error text instead where it fails; skipped past the budget), appends, flushes."""
        if time.time() - t0 > BUDGET_S:
            r["skipped"] = "time budget"
        else:
            try:
                item()
            except Exception as e:  # noqa: BLE001  one failing item must not lose the others
                r["error"] = err_text(e)
            free_memory()  # outside the except block: its traceback no longer holds the item's tensors
        rows.append(r)
        print(f"[{time.time() - t0:6.1f}s]", json.dumps(r), flush=True)
        flush()

    sm = SMOKE if args.smoke else None
    if sm:
        mdc.MODEL, mdc.FFN = sm["model"], sm["ffn"]
    sections = {
        "train": lambda o: train_section(o, run, dev, clock, sm["train"] if sm else TRAIN_CONFIGS),
        "moe": lambda o: moe_section(o, run, dev, clock, sm["moe_div"] if sm else 1,
                                     sm["moe_tokens"] if sm else MOE_TOKENS),
        "serve": lambda o: serve_section(o, run, dev, clock, sm["llama"] if sm else LLAMA8B,
                                         sm["batches"] if sm else DECODE_BATCHES, sm["ctx"] if sm else CTX,
                                         sm["fp8_batches"] if sm else FP8_BATCHES, sm["prefill"] if sm else PREFILL),
    }
    for name in args.sections.split(","):
        res[name] = {}
        print(f"[{time.time() - t0:6.1f}s] section {name}", flush=True)
        try:
            sections[name](res[name])
        except Exception as e:  # noqa: BLE001  one failing section must not lose the others
            res[name]["error"] = err_text(e)
            print(f"section {name} failed: {res[name]['error']}", flush=True)
        free_memory()
        flush()
    print(f"[{time.time() - t0:6.1f}s] done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
