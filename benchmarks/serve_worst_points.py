"""The worst-predicted serving points (dstack's early-2025 DeepSeek-R1 rows left out) with the model's time
breakdown at each point's operating batch, grouped by mechanism (engine, GPU, regime, batch).

For every point of benchmarks/serving_accuracy.py: the running batch b per replica the plan reaches, the
mean iteration (planner.serve.evaluate._iter), the decode-only step at b split into the terms of
planner.serve.timing.stage_terms (x pp) plus the host step as timing.iteration_s adds it, and the time the
prefill chunks add to the mean iteration (mean - decode-only), and the mean iteration the published rate implies at
the same batch (mean x predicted / measured throughput: the time the model would have to add). Regime: prefill-bound where the prefill chunks
take over half the mean iteration; KV-limited where the KV pool (memory) caps the batch below max_batch and the
token budget; else decode-bound, split by whether the dense GEMMs are weight-read- or compute-bound at b (stage_terms'
dense term at infinite bandwidth against it at infinite FLOP rates; a tie, where a gfx942 default-tile kernel's K loop
takes longer than either roofline, counts as compute-bound).

    python benchmarks/serve_worst_points.py [N]     # N worst points (default 20), markdown to stdout
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import serving_accuracy as S  # noqa: E402
from planner.serve import engines as E  # noqa: E402
from planner.serve import timing  # noqa: E402
from planner.serve.evaluate import Context, _graph_decode_s, _iter  # noqa: E402
from planner.serve.plan import parse_serve_plan  # noqa: E402
from planner.serve.search import estimate_serving  # noqa: E402

TERMS = ("dense_gemm", "expert_gemm", "moe_routing", "elementwise", "decode_attention", "decode_attention_fixed",
         "collectives", "kernel_launch", "weight_only_moe")
SHORT = {"dense_gemm": "dense", "expert_gemm": "experts", "moe_routing": "route", "elementwise": "act",
         "decode_attention": "kv/attn", "decode_attention_fixed": "attn fix", "collectives": "comm",
         "kernel_launch": "launch", "weight_only_moe": "w-only MoE"}


def points() -> list[dict]:
    return S.points()


def breakdown(r: dict) -> dict:
    """Operating batch, mean / decode-only iteration (ms), per-term decode step (ms) and regime of point r."""
    r["precision"]["native_weight_format"] = r["model"].get("native_weight_format")
    sc, plan, _ = S.point_scenario(r)
    t = parse_serve_plan(plan, sc)
    est = estimate_serving(sc, t)
    ctx = Context(sc)
    ctx.links = timing.comm_links(ctx.node, t, ctx.facts.hidden, bool(ctx.facts.experts))
    b = np.array([max(est["throughput"]["running_sequences_per_replica"] or 1.0, 1e-3)])
    ctx_dec, ctx_pf = ctx.ctx_dec, ctx.ctx_pf  # the contexts _iter attends (length-biased where lengths vary)
    mean = float(_iter(ctx, t, b)[0])
    dec = float(_graph_decode_s(ctx, t, ctx.links, b, ctx_dec, ctx_pf)[0])
    f, pp = ctx.facts, t["pp"]
    # the generation-only step as _graph_decode_s computes it: CUDA-graph padded batch p, same KV bytes
    ranks = np.where(t["attn_dp"], t["tp"], 1)
    p = np.maximum(E.graph_padded_batch(b, ranks, E.plan_graph_padding(t), t["max_batch"]), b)
    terms = timing.stage_terms(f, t, ctx.links, ctx.hw, p / pp, 0.0, ctx_dec * b / p, ctx_pf)
    ms = {k: float(np.asarray(pp * terms[k]).ravel()[0]) * 1e3 for k in TERMS}
    overlap = bool(timing.overlaps_host_step(t["engine"], E.plan_engine_version(t), pp, E.plan_async_scheduling(t))[0])
    host = float(np.maximum(timing.STEP_OVERHEAD_S, timing.host_bound_s(t, p))[0]) * 1e3
    # overlapped host step: only what it adds beyond the GPU step (max of the two)
    ms["host"] = host if not overlap else max(host - sum(ms.values()), 0.0)
    # dense GEMMs read- or compute-bound at b: stage_terms' own dense term with one side's rate made infinite at a
    # time, so the gfx942 tile terms it adds (aiter_triton_gemm, hipblaslt_fp8) count as the model counts them

    def dense_without(*rates):
        hw = {**ctx.hw, **{k: np.full(np.shape(ctx.hw[k]), np.inf) for k in rates}}
        dense = timing.stage_terms(f, t, ctx.links, hw, p / pp, 0.0, ctx_dec * b / p, ctx_pf)["dense_gemm"]
        return float(np.ravel(dense)[0])

    read, comp = dense_without("lin_dense", "lin_mla"), dense_without("bw")
    mem = ctx.memory(t)
    kv_cap = float(mem["seqs_running"][0])
    pf_share = max(mean - dec, 0.0) / mean
    if pf_share > 0.5:
        regime = "prefill-bound"
    elif not r["workload"].get("concurrency") and kv_cap <= min(float(t["max_batch"][0]), b[0] + 0.5):
        regime = "KV-limited"
    else:
        regime = "decode, GEMM compute-bound" if comp >= read else "decode, weight-read-bound"
    return {"b": float(b[0]), "padded": float(p[0]), "mean_ms": mean * 1e3, "decode_ms": dec * 1e3, "pf_share": pf_share, "ms": ms,
            "regime": regime, "overlap": overlap}


def batch_bucket(b: float) -> str:
    return "b<=8" if b <= 8 else "b 9-64" if b <= 64 else "b 65-512" if b <= 512 else "b>512"


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="the worst non-dstack serving points with their step terms")
    ap.add_argument("n", nargs="?", type=int, default=20, help="how many points (default 20)")
    n = ap.parse_args(argv).n
    rows = {r["id"]: r for r in S.run()}
    pts = {p["id"]: p for p in points()}
    ranked = sorted((i for i in rows if not i.startswith("dstack-")), key=lambda i: -abs(rows[i]["error"]))
    print(f"| point | error | engine | GPU | b | regime | mean / decode ms | implied ms | prefill share | "
          + " | ".join(SHORT[k] for k in TERMS) + " | host |")
    print("|---|---:|---|---|---:|---|---:|---:|---:|" + "---:|" * (len(TERMS) + 1))
    groups = defaultdict(list)
    for i in ranked[:n]:
        r, p = rows[i], pts[i]
        d = breakdown(p)
        gpu = S.node_name(p["hardware"]["gpu"])
        cells = " | ".join(f"{d['ms'][k]:.2f}" for k in TERMS + ("host",))
        print(f"| {i} | {100 * r['error']:+.1f}% | {r['engine']} | {gpu} | {d['b']:.0f} | {d['regime']} | "
              f"{d['mean_ms']:.2f} / {d['decode_ms']:.2f} | {d['mean_ms'] * r['predicted'] / r['measured']:.2f} | "
              f"{100 * d['pf_share']:.0f}% | {cells} |")
        for key in (f"engine {r['engine']}", f"GPU {gpu}", f"regime {d['regime']}", f"batch {batch_bucket(d['b'])}",
                    f"model {r['kind']}"):
            groups[key].append(r["error"])
    print()
    print("| group (of these points) | points | mean signed error | mean abs error |")
    print("|---|---:|---:|---:|")
    for key in sorted(groups):
        e = np.array(groups[key])
        print(f"| {key} | {len(e)} | {100 * e.mean():+.1f}% | {100 * np.abs(e).mean():.1f}% |")


if __name__ == "__main__":
    main()
