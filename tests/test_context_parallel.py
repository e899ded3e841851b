"""Context-parallel ring attention: exchanged heads, exposure of each stack's exchange, merge traffic.
Hand-worked numbers from the stacks' code (planner.estimate.context_parallel docstring)."""

import numpy as np
import pytest

from planner.estimate import comm, context_parallel as CP
from planner.estimate.evaluate import Context, estimate
from planner.estimate.topology import group
from planner.spec import Plan

from test_memory import raw_table, scenario


def test_torchtitan_ring_carries_repeated_kv_heads():
    """Llama 3.1 8B: 32 query heads, 8 K/V heads, head dim 128. torchtitan repeats K/V to 32 heads
    before SDPA; Transformer Engine sends the 8 grouped heads. 32k tokens per rank (seq 64k, cp 2):
    torchtitan 2 x 32768 x 32 x 256 bytes = 512 MiB, Megatron 8 heads = 128 MiB; with tp 2 both halve."""
    ctx = Context(scenario(seq=65536))
    for fw, heads in (("torchtitan", 32), ("megatron", 8)):
        for tp in (1, 2):
            t = raw_table(framework=fw, zero=3 if fw == "torchtitan" else 1, cp=2, tp=tp)
            assert float(CP.kv_chunk_bytes(ctx, t)[0]) == pytest.approx(2.0 * 32768 * heads / tp * 256)


def test_ring_exposure_hand_worked():
    """cp 4, one K/V hop 3 ms, fp32 gradient hop 6 ms, all-gather 10 ms; attention forward 8 ms
    (2 ms a step), backward 20 ms (5 ms a step); one forward pass.
      p2p:       forward 3 x (3 - 2) = 3; backward 3 x max(0, 6 - 5) = 3                -> 6 ms
      allgather: forward 10 - 2 = 8; backward gather 10 - 5 = 5, hops 3 x (6 - 5) = 3, last hop 6 -> 22 ms
    With the forward recomputed (2 passes) the forward parts count twice: p2p 9, allgather 30.
    cp 1: nothing to exchange."""
    args = (np.array([4, 4, 1]), 3e-3, 6e-3, 10e-3, 8e-3, 20e-3)
    got = CP.ring_exposed_s(*args, np.array([False, True, True]), 1)
    assert got == pytest.approx([6e-3, 22e-3, 0.0])
    got = CP.ring_exposed_s(*args, np.array([False, True, True]), 2)
    assert got == pytest.approx([9e-3, 30e-3, 0.0])


def test_ring_exposure_waited_at_issue():
    """torch's ring under torch.compile: each exchange waited as soon as issued, nothing hidden.
    Same numbers as above (cp 4, hop 3, dkv hop 6, gather 10 ms), one forward pass:
      p2p:       forward 3 x 3 = 9; backward K/V 3 x 3 = 9, dK/dV 4 x 6 = 24   -> 42 ms
      allgather: forward 10; backward gather 10, dK/dV 4 x 6 = 24             -> 44 ms
    Two forward passes: p2p 51, allgather 54. cp 1: nothing."""
    args = (np.array([4, 4, 1]), 3e-3, 6e-3, 10e-3, 8e-3, 20e-3, np.array([False, True, True]))
    assert CP.ring_exposed_s(*args, 1, True) == pytest.approx([42e-3, 44e-3, 0.0])
    assert CP.ring_exposed_s(*args, 2, True) == pytest.approx([51e-3, 54e-3, 0.0])


def test_ring_serial_only_torchtitan_compiled():
    """The waits-at-issue rule holds for torchtitan with cp > 1 under runtime.compile only:
    not eager torchtitan, not Megatron (Transformer Engine's ring), not without CP."""
    on, off = Context(scenario(seq=65536, runtime={"compile": True})), Context(scenario(seq=65536, runtime={"compile": False}))
    tt = raw_table(framework="torchtitan", zero=3, cp=2)
    assert bool(CP.ring_serial(on, tt)[0]) and not bool(CP.ring_serial(off, tt)[0])
    assert not bool(CP.ring_serial(on, raw_table(framework="megatron", cp=2))[0])
    assert not bool(CP.ring_serial(on, raw_table(framework="torchtitan", zero=3, cp=1))[0])


def test_merge_traffic_by_stack():
    """torchtitan cp 4, seq 16k (4096 tokens per rank), 32 heads x 128: 3 non-local steps x
    4096 x 4096 elements x 10 bytes forward, x 30 backward, over the HBM rate, 8 more each with the
    per-step (p2p) exchange. Megatron (Transformer Engine's p2p ring), E_q = 4096 x 32 x 128 and
    8 K/V heads, E_kv = 4096 x 8 x 256 = E_q / 2: forward 4 x 6 E_q + (3 x 2 + 4) E_kv = 29 E_q;
    backward 3 x (9 E_q + 10 E_kv) + 5 E_q + 13 E_kv = 53.5 E_q; with the all-gather exchange, and
    without CP: zero."""
    ctx = Context(scenario(seq=16384))
    hbm = 2.0e12
    fwd, bwd = CP.merge_s(ctx, raw_table(framework="torchtitan", zero=3, cp=4), hbm)
    elems = 4096 * 32 * 128
    assert float(fwd[0]) == pytest.approx(3 * elems * 10 / hbm)
    assert float(bwd[0]) == pytest.approx(3 * elems * 30 / hbm)
    fwd, bwd = CP.merge_s(Context(scenario(seq=16384, runtime={"cp_comm": "p2p"})),
                          raw_table(framework="torchtitan", zero=3, cp=4), hbm)
    assert float(fwd[0]) == pytest.approx(3 * elems * 18 / hbm)
    assert float(bwd[0]) == pytest.approx(3 * elems * 38 / hbm)
    fwd, bwd = CP.merge_s(ctx, raw_table(framework="megatron", cp=4), hbm)
    assert float(fwd[0]) == pytest.approx(29 * elems / hbm)
    assert float(bwd[0]) == pytest.approx(53.5 * elems / hbm)
    for c, t in ((Context(scenario(seq=16384, runtime={"cp_comm": "allgather"})), raw_table(framework="megatron", cp=4)),
                 (ctx, raw_table(framework="megatron", cp=1))):
        fwd, bwd = CP.merge_s(c, t, hbm)
        assert float(fwd[0]) == 0.0 and float(bwd[0]) == 0.0


def test_cp_comm_runtime_key_switches_the_exchange():
    """The same torchtitan CP plan across nodes (tp 8 fills the node, so the cp ring crosses NICs):
    'allgather' (its default) waits for the whole gather after the first step and is slower than
    'p2p' hops hidden step by step; 'auto' equals 'allgather'. Without CP the key changes nothing.
    Eager (runtime.compile false): compiled, every exchange is waited at issue and exposes more."""
    def step(runtime, cp):
        runtime = {"compile": False, **runtime}
        sc = scenario(model="llama-3.1-70b", nodes=4, seq=65536, gb=4, runtime=runtime)
        plan = Plan.model_validate(dict(framework="torchtitan", dp=4 // cp, tp=8, pp=1, cp=cp, zero=3,
                                        recompute="full", mbs=1)).resolved(sc)
        return estimate(sc, plan)["time"]
    auto, ag, p2p = (step({"cp_comm": k}, 4) for k in ("auto", "allgather", "p2p"))
    assert auto["step_s"] == ag["step_s"]
    assert ag["breakdown_s"]["cp_comm"] > p2p["breakdown_s"]["cp_comm"] >= 0.0
    assert step({"cp_comm": "allgather"}, 1)["step_s"] == step({"cp_comm": "p2p"}, 1)["step_s"]
    for k in ("allgather", "p2p"):
        compiled = step({"cp_comm": k, "compile": True}, 4)["breakdown_s"]["cp_comm"]
        assert compiled > step({"cp_comm": k}, 4)["breakdown_s"]["cp_comm"]


def test_layer_comm_uses_the_backward_time_given():
    """A backward long enough to hide every hop leaves only the forward exposure (p2p, Megatron)."""
    ctx = Context(scenario(model="llama-3.1-70b", nodes=4, seq=65536))
    t = raw_table(framework="megatron", tp=8, cp=4, dp=1)
    slow_bwd = comm.layer_comm(ctx, t, np.array([1e-6]), np.array([1e3]))["cp_layer"]
    kv = float(CP.kv_chunk_bytes(ctx, t)[0])
    bw, a = comm.link(ctx.node, group(ctx.node, t["cp"], t["tp"]))
    assert float(slow_bwd[0]) == pytest.approx(3 * (float(a[0]) + kv / float(bw[0]) - 1e-6 / 4))


def test_recomputed_core_attention_runs_the_ring_again():
    """Megatron's selective recompute re-runs core attention (default recompute_modules [core_attn]),
    so its forward exchange is paid twice, as with full recompute; torchtitan's op-level selective
    checkpointing saves SDPA's output: once. With no attention to hide behind, the difference is the
    forward exposure, (cp - 1) p2p hops for Megatron (cp 4: 3 hops)."""
    ctx = Context(scenario(model="llama-3.1-70b", nodes=4, seq=65536))
    tiny, slow = np.array([1e-9]), np.array([1e3])
    per = {rc: float(comm.layer_comm(ctx, raw_table(framework="megatron", tp=8, cp=4, recompute=rc),
                                     tiny, slow)["cp_layer"][0]) for rc in ("none", "selective", "full")}
    t = raw_table(framework="megatron", tp=8, cp=4)
    bw, a = comm.link(ctx.node, group(ctx.node, t["cp"], t["tp"]))
    hop = float(a[0]) + float(CP.kv_chunk_bytes(ctx, t)[0]) / float(bw[0])
    assert per["selective"] - per["none"] == pytest.approx(3 * (hop - 1e-9 / 4), rel=1e-9)
    assert per["full"] == pytest.approx(per["selective"])
    titan = {rc: float(comm.layer_comm(ctx, raw_table(framework="torchtitan", zero=3, tp=8, cp=4, recompute=rc),
                                       tiny, slow)["cp_layer"][0]) for rc in ("none", "selective")}
    assert titan["selective"] == pytest.approx(titan["none"])
