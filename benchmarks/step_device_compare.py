"""The planner's time terms against the step timings of benchmarks/step_device_check.py.

    python benchmarks/step_device_compare.py [--results benchmarks/step_device/h200.json]
                                             [--out benchmarks/step_device_results.md]

Reads the JSON the device script wrote on one H200 and evaluates, on a one-GPU H200 node:
train  the same 8-layer model, micro-batch, sequence and recompute mode as a torchtitan plan without
       compile (planner.estimate.evaluate: the clock-adjusted table of evaluate_table; forward,
       backward + recompute, optimizer and step, and the forward's parts: weight matmuls, attention,
       elementwise (+ launches), output layer). The optimizer term is the Megatron plan's (framework
       megatron, no distributed optimizer, bf16 with an fp32 grad buffer: the state layout the device
       script measured; optimizer_bytes.optimizer_hbm_bytes), and the step has it in place of the
       torchtitan plan's optimizer term; the forward and backward stay torchtitan's (recompute modes
       and early_stop as torchtitan runs them). The same at burst tensor clocks (no power-limit
       derating); and the peak allocated memory against benchmarks/memory_device_compare.py's states +
       transient.
moe    compute_moe.grouped_expert_gemm_s (the training model: local experts x gemm_s(rows padded to
       GEMM_TILE_ROWS, k, n), balanced routing: runtime.moe_load_imbalance 1) per up / down matmul at the
       burst bf16 / FP8 rates; and the serving model's serve.timing.expert_linear_s for up + down of one
       layer (n = tokens x ep tokens in the EP group, tp = ep, imbalance 1).
serve  serve.timing.stage_s of Llama-3.1-8B (catalog) on one H200, TensorRT-LLM at the pinned version
       (CUDA-graph decode: no host issue term in the GPU step), decode n_dec = batch at context ctx, and
       prefill n_pf = tokens at mean attended context tokens / 2, split into its terms (GEMMs, elementwise,
       attention, kernel launches); iteration_s (adds the host step) beside it.
Error = model / measured - 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

from planner import catalog  # noqa: E402
from planner.atomic import write_atomic  # noqa: E402
from planner.estimate import compute_gemm, compute_moe, memory, table  # noqa: E402
from planner.estimate.evaluate import Context, layer_units, stage_time, step_time, with_tensor_clock  # noqa: E402
from planner.spec.model import ModelSpec  # noqa: E402
from planner.spec.scenario import Scenario  # noqa: E402

RESULTS = HERE / "step_device" / "h200.json"
RECOMPUTE = {"none": "none", "full": "full", "tt_sac": "selective"}
GPU = "h200-sxm-141gb"
NODE = "hgx-h200"


def f0(x) -> float:
    return float(np.asarray(x).ravel()[0])


def err(model, meas) -> str:
    return f"{100 * (model / meas - 1):+.0f}%" if meas and meas == meas and model == model else "n/a"


# ---------------------------------------------------------------- train


def plan_row(framework: str, run: dict, recompute: str) -> dict:
    """One-GPU bf16 plan row of `framework` for a measured configuration."""
    return table.from_plans([dict(framework=framework, precision="bf16", dp=1, tp=1, pp=1, cp=1, ep=1, vpp=1,
                                  sp=False, zero=0, offload="none", offload_params="none",
                                  recompute=recompute, mbs=run["mbs"], ga=1)])


def train_predicted(model: dict, ffn: int, run: dict) -> dict:
    """The planner's seconds for one measured training configuration (torchtitan plan, one H200), with the
    Megatron plan's optimizer term in place of torchtitan's (the measured state layout is Megatron's)."""
    spec = ModelSpec(name="device-check", layers=model["layers"], hidden=model["hidden"], heads=model["heads"],
                     kv_heads=model["heads"], head_dim=model["head_dim"], ffn_hidden=ffn, ffn_act="swiglu",
                     vocab=model["vocab"], norm="layernorm")
    node = catalog.node(NODE).model_copy(update={"gpus_per_node": 1})
    sc = Scenario(name="device-check", model=spec, cluster={"node": node, "nodes": 1},
                  training={"seq_len": run["seq"], "global_batch": run["mbs"], "tokens": 1e9},
                  runtime={"compile": False})  # step_device_check.py runs eagerly
    ctx = Context(sc)
    t = plan_row("torchtitan", run, RECOMPUTE[run["recompute"]])
    mem = memory.memory(ctx, t)
    tm = plan_row("megatron", run, "none")  # the optimizer does not depend on recompute
    meg_opt = f0(step_time(ctx, tm, memory.memory(ctx, tm))[1]["optimizer"])
    burst_step, b_burst = step_time(ctx, t, mem)  # tensor cores at burst clocks (no power-limit derating)
    burst_step = f0(burst_step) - f0(b_burst["optimizer"]) + meg_opt
    _, c_burst, _ = stage_time(ctx, t)
    t = with_tensor_clock(ctx, t, mem)
    step, b = step_time(ctx, t, mem)
    step = f0(step) - f0(b["optimizer"]) + meg_opt
    _, c, _ = stage_time(ctx, t)
    unit, _ = layer_units(ctx, t)
    L = model["layers"]
    return {"burst_step": f0(burst_step), "burst_forward": f0(c_burst["forward"]),
            "burst_backward": f0(c_burst["backward"]) + f0(c_burst["recompute"]),"forward": f0(c["forward"]), "backward": f0(c["backward"]) + f0(c["recompute"]),
            "recompute": f0(c["recompute"]), "optimizer": meg_opt, "step": step,
            "torchtitan_optimizer": f0(b["optimizer"]),
            "fwd_matmul": L * f0(unit["dense_matmul"]), "fwd_attention": f0(c["attention_fwd"]),
            "fwd_elementwise": L * (f0(unit["dense_fwd"]) - f0(unit["dense_matmul"])), "fwd_head": f0(unit["head"]),
            "tensor_clock": f0(t["tensor_clock"]) if "tensor_clock" in t else 1.0,
            "model_flops": ctx.model_flops_per_token * run["mbs"] * run["seq"]}


def train_report(sec: dict) -> list[str]:
    if "runs" not in sec:
        return [f"Section failed on the device: {sec.get('error', 'no data')}"]
    lines = ["Measured recompute: torch.utils.checkpoint(use_reentrant=False) with PyTorch's default early stop "
             "(recomputation ends once the last tensor backward needs is rebuilt); torchtitan passes early_stop=False.", "",
             "| recompute | mbs x seq | measured fwd / bwd / opt / step (ms) | model fwd / bwd / opt / step (ms) | "
             "err fwd | err bwd | err opt | err step | measured TFLOP/s (model FLOPs) | model at burst clock: fwd / bwd / "
             "step (ms) | err fwd | err bwd | err step |", "|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    parts = ["", "Model's forward by term (ms): weight matmuls, attention, elementwise + launches, output layer "
             "(+ loss); tensor clock = the sustained-clock factor applied to the tensor-core rates.", "",
             "| recompute | mbs x seq | matmul | attention | elementwise | output layer | sum | measured fwd | "
             "tensor clock |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sec["runs"]:
        if "step_s" not in r:
            lines.append(f"| {r['recompute']} | {r['mbs']} x {r['seq']} | {r.get('error') or r.get('skipped')} "
                         "| | | | | | |")
            continue
        p = train_predicted(sec["model"], sec["ffn"], r)
        m = {"forward": r["forward_s"], "backward": r["backward_s"], "optimizer": r["optimizer_s"], "step": r["step_s"]}
        ms = lambda d: " / ".join(f"{1e3 * d[k]:.1f}" for k in ("forward", "backward", "optimizer", "step"))  # noqa: E731
        lines.append(f"| {r['recompute']} | {r['mbs']} x {r['seq']} | {ms(m)} | {ms(p)} | "
                     + " | ".join(err(p[k], m[k]) for k in ("forward", "backward", "optimizer", "step"))
                     + f" | {p['model_flops'] / r['step_s'] / 1e12:.0f} | {1e3 * p['burst_forward']:.1f} / "
                     f"{1e3 * p['burst_backward']:.1f} / {1e3 * p['burst_step']:.1f} | {err(p['burst_forward'], m['forward'])} | "
                     f"{err(p['burst_backward'], m['backward'])} | {err(p['burst_step'], m['step'])} |")
        if r["recompute"] == "none":
            s = p["fwd_matmul"] + p["fwd_attention"] + p["fwd_elementwise"] + p["fwd_head"]
            parts.append(f"| {r['recompute']} | {r['mbs']} x {r['seq']} | {1e3 * p['fwd_matmul']:.1f} | "
                         f"{1e3 * p['fwd_attention']:.1f} | {1e3 * p['fwd_elementwise']:.1f} | "
                         f"{1e3 * p['fwd_head']:.1f} | {1e3 * s:.1f} | {1e3 * r['forward_s']:.1f} | "
                         f"{p['tensor_clock']:.3f} |")
    return lines + parts + memory_lines(sec)


def memory_predicted(sec: dict, run: dict) -> float:
    """memory_device_compare's states + transient (GiB) for one training configuration of this run."""
    import memory_device_compare as mdc_cmp

    p = mdc_cmp.predicted(sec["model"], {"swiglu": sec["ffn"]}, dict(run, act="swiglu"), expandable=False)
    return p["states"] + p["transient"]


def memory_lines(sec: dict) -> list[str]:
    """Peak allocated memory of the timed steps against the memory model (benchmarks/memory_device_compare.py)."""
    lines = ["", "Peak allocated memory over the timed steps (GiB) against the memory model's states + transient "
             "(benchmarks/memory_device_compare.py; none and tt_sac at 2 x 8192 were not in the memory check):", "",
             "| recompute | mbs x seq | measured | model | err |", "|---|---|---:|---:|---:|"]
    for r in sec["runs"]:
        if "peak_allocated" in r:
            meas, pred = r["peak_allocated"] / 2**30, memory_predicted(sec, r)
            lines.append(f"| {r['recompute']} | {r['mbs']} x {r['seq']} | {meas:.2f} | {pred:.2f} | {100 * (pred / meas - 1):+.1f}% |")
    return lines


# ---------------------------------------------------------------- moe


def moe_train_predicted(r: dict, experts: int, fp8: bool = False) -> float:
    """compute_moe.grouped_expert_gemm_s of one measured grouped GEMM (balanced routing, burst clock)."""
    gpu = catalog.gpu(GPU)
    t = {"ep": np.array([r["ep"]]), "etp": np.array([1]), "tp": np.array([1]),
         "precision": np.array([table.PRECISIONS.index("fp8" if fp8 else "bf16")])}
    linear_fps, _, hbm, _ = compute_gemm.peaks(gpu, t)
    ctx = SimpleNamespace(model=SimpleNamespace(moe=SimpleNamespace(experts=experts)),
                          scenario=SimpleNamespace(runtime=SimpleNamespace(moe_load_imbalance=1.0)))
    top_k = r["rows_per_expert"] * experts / (r["tokens"] * r["ep"])  # rows per expert = T top_k ep / E
    return f0(compute_moe.grouped_expert_gemm_s(ctx, t, r["tokens"], top_k, r["k"], r["n"], linear_fps, hbm,
                                                1.0 if fp8 else 2.0))


def moe_train_terms(r: dict, experts: int) -> dict:
    """grouped_expert_gemm_s's three parts summed over the local experts (bf16): tensor-core time
    (flops / MAMF rate), operand and output traffic (/ HBM x 0.8) and one GEMM_LAUNCH_S per expert."""
    gpu = catalog.gpu(GPU)
    t = {"precision": np.array([table.PRECISIONS.index("bf16")])}
    fps, _, hbm, _ = compute_gemm.peaks(gpu, t)
    g, k, n = r["local_experts"], r["k"], r["n"]
    rows = math.ceil(r["rows_per_expert"] / compute_moe.GEMM_TILE_ROWS) * compute_moe.GEMM_TILE_ROWS
    one = f0(compute_gemm.gemm_s(g * rows, k, n, fps, hbm)) + (g - 1) * 2.0 * k * n / hbm
    return {"compute": g * 2.0 * rows * k * n / f0(fps), "traffic": g * (2.0 * (rows * k + k * n) + 2.0 * rows * n) / hbm,
            "launch": g * compute_gemm.GEMM_LAUNCH_S, "one_gemm": one}


def moe_serve_predicted(name: str, tokens: int, ep: int) -> float:
    """serve.timing.expert_linear_s: up + down of one layer's routed experts on one GPU of the EP group
    (tokens x ep tokens in the group, tp = ep, balanced: imbalance 1), bf16 on an H200."""
    from planner.serve import engines as E
    from planner.serve import timing
    from planner.serve.memory import model_facts

    f = model_facts(catalog.model(name))
    lin, _, bw = timing.rates(catalog.gpu(GPU), ("bf16",))
    return f0(timing.expert_linear_s(f, 1, tokens * ep, ep, lin[0], bw, E.weight_bytes_per_element("bf16", f.hidden),
                                     ep=ep, imbalance=1.0))


def moe_report(sec: dict) -> list[str]:
    if "runs" not in sec:
        return [f"Section failed on the device: {sec.get('error', 'no data')}"]
    lines = ["| model | EP | tokens/GPU | local experts x rows | matmul k x n | grouped (us) | loop | dense | "
             "grouped TFLOP/s | dense TFLOP/s | model (us) | err vs grouped | FP8 grouped (us) | FP8 model | err |",
             "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    pairs = {}
    for r in sec["runs"]:
        if "loop_s" not in r:
            lines.append(f"| {r['model']} | {r['ep']} | {r['tokens']} | | {r['matmul']} | "
                         f"{(r.get('error') or r.get('skipped'))[:80]} | | | | | | | | | |")
            continue
        e = r["local_experts"] * r["ep"]
        p = moe_train_predicted(r, e)
        g = r.get("grouped_s", math.nan)
        p8 = moe_train_predicted(r, e, fp8=True)
        g8 = r.get("fp8_grouped_s", math.nan)
        us = lambda x: f"{1e6 * x:.0f}" if x == x else "n/a"  # noqa: E731
        lines.append(f"| {r['model']} | {r['ep']} | {r['tokens']} | {r['local_experts']} x {r['rows_per_expert']} | "
                     f"{r['matmul']} {r['k']} x {r['n']} | {us(g)} | {us(r['loop_s'])} | {us(r['dense_s'])} | "
                     f"{r['flops'] / g / 1e12:.0f} | {r['flops'] / r['dense_s'] / 1e12:.0f} | {us(p)} | {err(p, g)} | "
                     f"{us(g8)} | {us(p8)} | {err(p8, g8)} |")
        key = (r["model"], r["ep"], r["tokens"])
        pairs.setdefault(key, []).append(g)
    lines += ["", "The training model's grouped GEMM by part (bf16, us, summed over the local experts) against the "
              "measured grouped kernel; 'one-GEMM variant' (not the model, a what-if): gemm_s of all the local rows at once "
              "(one launch, one additive traffic term) plus the other local experts' weight reads:", "", "| model | EP | tokens/GPU | matmul | compute (flops / MAMF) | traffic | "
              "launches | sum | measured grouped | measured / compute | one-GEMM variant | err |",
              "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sec["runs"]:
        if r.get("grouped_s") is None:
            continue
        q = moe_train_terms(r, r["local_experts"] * r["ep"])
        lines.append(f"| {r['model']} | {r['ep']} | {r['tokens']} | {r['matmul']} | {1e6 * q['compute']:.0f} | "
                     f"{1e6 * q['traffic']:.0f} | {1e6 * q['launch']:.0f} | {1e6 * sum(q.values()):.0f} | "
                     f"{1e6 * r['grouped_s']:.0f} | {r['grouped_s'] / q['compute']:.2f} | {1e6 * q['one_gemm']:.0f} | "
                     f"{err(q['one_gemm'], r['grouped_s'])} |")
    lines += ["", "Serving model (serve.timing.expert_linear_s, up + down of one layer, balanced) against the "
              "measured grouped up + down:", "",
              "| model | EP | tokens/GPU | measured up + down (us) | expert_linear_s (us) | err |", "|---|---:|---:|---:|---:|---:|"]
    for (name, ep, tokens), gs in pairs.items():
        if len(gs) != 2 or any(x != x for x in gs):
            continue
        p = moe_serve_predicted(name, tokens, ep)
        lines.append(f"| {name} | {ep} | {tokens} | {1e6 * sum(gs):.0f} | {1e6 * p:.0f} | {err(p, sum(gs))} |")
    return lines


# ---------------------------------------------------------------- serve


def serve_predicted(weights: str, n_dec: float, n_pf: float, ctx_dec: float, ctx_pf: float) -> dict:
    """serve.timing.stage_s and its terms for Llama-3.1-8B on one H200 (TensorRT-LLM, pinned version)."""
    from planner.serve import timing
    from planner.serve.evaluate import Context as ServeContext
    from planner.serve.memory import attn_tp, kv_bytes_per_token, seq_kv_bytes, stage_layers
    from planner.serve.plan import parse_serve_plan
    from planner.spec.serving import ServingScenario

    node = catalog.node_entry(NODE)
    node["gpus_per_node"] = 1
    node["gpu"] = catalog.gpu_entry(node["gpu"])
    sc = ServingScenario.model_validate({"name": "device-check", "model": catalog.model("llama-3.1-8b").model_dump(),
                                         "cluster": {"node": node, "nodes": 1},
                                         "serving": {"input_tokens": 2048, "output_tokens": 128, "offline": True}})
    t = parse_serve_plan(f"engine=trtllm,weights={weights},kv_cache=bf16,tp=1,pp=1,ep=1,replicas=1,max_batch=256", sc)
    ctx = ServeContext(sc)
    f, hw = ctx.facts, ctx.hw
    lk = timing.comm_links(ctx.node, t, f.hidden, False)
    ls = stage_layers(f, t["pp"])
    n = n_dec + n_pf
    wq = t["wq"]
    gemm = timing.dense_linear_s(f, ls, n, n_dec, t["tp"], attn_tp(t), hw["lin_dense"][wq], hw["bw"], hw["bpe_dense"][wq])
    elementwise = n * ls * timing.activation_bytes_per_token(f, t["tp"], attn_tp(t), t["ep"], 1.0) / hw["bw"]
    full, sw = kv_bytes_per_token(f, t, hw["kvb"][t["kv"]])
    kv_read = n_dec * seq_kv_bytes(f, full, sw, ctx_dec)
    dec_fps, pf_fps = timing.attention_fps(f, hw["attn"], hw["exp_per_flop"])
    attention = np.maximum(kv_read / hw["bw"], 2.0 * n_dec * ctx_dec * f.attn_dim_decode * ls / dec_fps) \
        + 2.0 * n_pf * ctx_pf * f.attn_dim_prefill * ls / pf_fps \
        + timing.decode_attention_fixed_s(f, ls, n_dec, attn_tp(t))
    launch = timing.kernel_launch_s(f, t, ls)
    stage = timing.stage_s(f, t, lk, hw, n_dec, n_pf, ctx_dec, ctx_pf)
    out = {"gemm": f0(gemm), "elementwise": f0(elementwise), "attention": f0(attention), "launch": f0(launch),
           "stage": f0(stage), "iteration": f0(timing.iteration_s(f, t, lk, hw, n_dec, n_pf, ctx_dec, ctx_pf))}
    out["unexplained"] = out["stage"] - out["gemm"] - out["elementwise"] - out["attention"] - out["launch"]
    return out


def serve_report(sec: dict) -> list[str]:
    if "runs" not in sec:
        return [f"Section failed on the device: {sec.get('error', 'no data')}"]
    runs = [r for r in sec["runs"] if "time_s" in r]
    failed = [r for r in sec["runs"] if r.get("error") or r.get("skipped")]
    get = lambda kind, part, w, key, val: next((r["time_s"] for r in runs if r["kind"] == kind and r["part"] == part  # noqa: E731
                                                and r["weights"] == w and r.get(key) == val), math.nan)
    ms = lambda x: f"{1e3 * x:.2f}" if x == x else "n/a"  # noqa: E731
    lines = [f"Attention in the measured step: scaled_dot_product_attention ({sec.get('sdpa', '?')}); "
             "'bmm' the two-GEMM decode path. Decode in CUDA graphs, prefill eager.", "",
             "| step | weights | measured step (ms) | model stage_s | err | measured no-attention | model GEMM + "
             "elementwise + launch | err | measured attention (sdpa / bmm) | model attention | err | model iteration_s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for w, batches in (("bf16", sorted({r["batch"] for r in runs if r["kind"] == "decode" and r["weights"] == "bf16"})),
                       ("fp8", sorted({r["batch"] for r in runs if r["kind"] == "decode" and r["weights"] == "fp8"}))):
        for b in batches:
            p = serve_predicted(w, b, 0.0, sec["ctx"], 0.0)
            step, noattn = get("decode", "step_sdpa", w, "batch", b), get("decode", "no_attn", w, "batch", b)
            a_sdpa, a_bmm = get("decode", "attn_sdpa", w, "batch", b), get("decode", "attn_bmm", w, "batch", b)
            rest = p["gemm"] + p["elementwise"] + p["launch"]
            lines.append(f"| decode b={b}, ctx {sec['ctx']} | {w} | {ms(step)} | {ms(p['stage'])} | {err(p['stage'], step)} | "
                         f"{ms(noattn)} | {ms(rest)} | {err(rest, noattn)} | {ms(a_sdpa)} / {ms(a_bmm)} | "
                         f"{ms(p['attention'])} | {err(p['attention'], a_sdpa)} | {ms(p['iteration'])} |")
    for s in sorted({r["tokens"] for r in runs if r["kind"] == "prefill"}):
        p = serve_predicted("bf16", 0.0, s, 0.0, s / 2)
        step = get("prefill", "step_sdpa", "bf16", "tokens", s)
        lines.append(f"| prefill {s} tokens | bf16 | {ms(step)} | {ms(p['stage'])} | {err(p['stage'], step)} | | "
                     f"{ms(p['gemm'] + p['elementwise'] + p['launch'])} | | | {ms(p['attention'])} | | {ms(p['iteration'])} |")
    lines += ["", "Model terms (ms): GEMMs / elementwise / attention / launches (unexplained = stage_s minus their "
              "sum, 0 when the split is complete):", "", "| step | weights | GEMM | elementwise | attention | launch | "
              "unexplained |", "|---|---|---:|---:|---:|---:|---:|"]
    for w, b in [("bf16", b) for b in (1, 16, 64, 256)] + [("fp8", b) for b in (1, 64, 256)]:
        p = serve_predicted(w, b, 0.0, sec["ctx"], 0.0)
        lines.append(f"| decode b={b} | {w} | {ms(p['gemm'])} | {ms(p['elementwise'])} | {ms(p['attention'])} | "
                     f"{ms(p['launch'])} | {ms(p['unexplained'])} |")
    layers = sec.get("model", {}).get("layers", 1)
    for r in sec["runs"]:
        if r["kind"] == "census" and r.get("kernels"):
            n = sum(r["kernels"].values())
            top = sorted(r["kernels"].items(), key=lambda kv: -kv[1])[:12]
            lines += ["", f"Kernels of one decode step (batch {r['batch']}, torch.profiler): {n} in all, "
                      f"{n / layers:.1f} per layer; most launched: "
                      + "; ".join(f"{k} x{v}" for k, v in top)]
    if failed:
        lines += ["", "Failed or skipped on the device: " + "; ".join(
            f"{r['kind']} {r['part']} {r.get('batch', r.get('tokens'))} {r['weights']}: "
            f"{(r.get('error') or r.get('skipped'))[:120]}" for r in failed)]
    return lines


def report(data: dict) -> str:
    lines = ["# Step times against the planner (one H200)", "",
             f"Measured with `benchmarks/step_device_check.py` on one {data['gpu']} (torch {data['torch']}, "
             f"{data.get('elapsed_s', '?')} s in all); compared by `benchmarks/step_device_compare.py` (see its "
             "docstring for what is compared with what). Error = model / measured - 1.", "",
             "## Training step (8-layer Llama-shaped model, eager bf16, Megatron state layout)", ""]
    for name, fn, title in (("train", train_report, None), ("moe", moe_report, "## Grouped expert GEMMs (forward, "
                                                                               "balanced routing)"),
                            ("serve", serve_report, "## Serving step (Llama-3.1-8B shape, random weights)")):
        if title:
            lines += ["", title, ""]
        try:
            lines += fn(data.get(name, {}))
        except Exception as e:  # noqa: BLE001  a report section that cannot be built says why
            lines.append(f"(could not compare: {type(e).__name__}: {e})")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    try:
        data = json.loads(args.results.read_text())
    except (OSError, ValueError) as e:
        print(f"error: {args.results}: cannot read the device results ({e})", file=sys.stderr)
        return 2
    text = report(data)
    if args.out:
        write_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
