"""MI300X TP8 serving points (benchmarks/amd_serve_results.md): vLLM's benchmark_latency.py reruns the same prompts,
so its timed iterations find them in the prefix cache in whole KV blocks."""

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


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
