"""MI300X TP8 serving points (benchmarks/amd_serve_results.md): vLLM's benchmark_latency.py reruns the same prompts,
so its timed iterations find them in the prefix cache in whole KV blocks."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_repeated_prompt_hit_counts_whole_blocks_and_recomputes_the_last_token():
    from serving_accuracy import repeated_prompt_hit

    assert repeated_prompt_hit(128) == 112 / 128
    assert repeated_prompt_hit(2048) == 2032 / 2048
    assert repeated_prompt_hit(16) == 0.0  # one block: the last token is recomputed, so nothing is served
    assert repeated_prompt_hit(17) == 16 / 17


def test_latency_table_points_run_with_the_cached_prompt_and_throughput_points_without():
    from serving_accuracy import point_scenario

    pts = yaml.safe_load((ROOT / "benchmarks" / "serving_runs.yaml").read_text())
    rocm = [p for p in pts if p["id"].startswith("rocm-vllm010-")]
    latency = [p for p in rocm if "benchmark_latency" in p["workload"]["kind"]]
    assert len(latency) == 10 and all(p["workload"].get("repeated_prompts") for p in latency)
    for p in rocm:
        sc, _, _ = point_scenario(p)
        hit = sc.serving.prefix_cache_hit
        assert (hit > 0.8) if p in latency else (hit == 0.0), p["id"]


def test_switchless_mesh_groups_use_only_the_links_to_their_members():
    import numpy as np

    from planner import catalog
    from planner.estimate import comm
    from planner.estimate.topology import group

    mi, h = catalog.node("mi300x-8"), catalog.node("dgx-h100")
    assert mi.scaleup_mesh_links == 7 and h.scaleup_mesh_links is None
    two_mb = 2 ** 21

    def busbw(node, k):  # bus bandwidth of the size-dependent part, GB/s
        t = float(comm.all_reduce_s(node, two_mb, group(node, np.array([k]), np.array([1])))[0]) - comm.ALPHA_IN_S
        return 2 * (k - 1) / k * two_mb / t / 1e9

    # 8x MI300X: 312.9 GB/s RCCL on 8 GPUs, 47.7 GB/s on 2 (one of the 7 links); NVSwitch: the same at every size
    assert abs(busbw(mi, 8) - 312.7) < 1 and abs(busbw(mi, 2) - 312.7 / 7) < 1 and abs(busbw(mi, 4) - 3 * 312.7 / 7) < 1
    assert abs(busbw(h, 2) - busbw(h, 8)) < 1e-6
    # the same share reaches the ring collectives and the point-to-point link
    up = 448e9 * 0.698
    gather2 = float(comm.gather_s(mi, two_mb, group(mi, np.array([2]), np.array([1])))[0]) - comm.ALPHA_IN_S
    assert abs(gather2 - 0.5 * two_mb / (up / 7)) < 1e-9
    bw2, _ = comm.link(mi, group(mi, np.array([2]), np.array([1])))
    bw8, _ = comm.link(mi, group(mi, np.array([8]), np.array([1])))
    assert abs(float(bw8[0]) / float(bw2[0]) - 7) < 1e-9
