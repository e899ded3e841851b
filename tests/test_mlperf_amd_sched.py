"""AMD's MLPerf vLLM build (its V0 scheduler patch, VLLM_LLAMA2_MLPERF_SCHED): no step decodes more than
VLLM_LLAMA2_MLPERF_MAX_TARGET_DECODE_BATCH sequences, so the rows whose config turns it on get
max_batch = min(max_num_seqs, that target); the V1 engine (MI325X Interactive) and the rows without it keep
max_num_seqs (serving_accuracy.mlperf_decode_target)."""

import re

import serving_accuracy as S

from conftest import serving_point


def _max_batch(key: str) -> int:
    return int(re.search(r"max_batch=(\d+)", serving_point(key)[1]).group(1))


def test_the_decode_target_is_read_only_on_v0_with_the_patch_on():
    v0 = "VLLM_USE_V1 0 in config.yaml; VLLM_LLAMA2_MLPERF_SCHED 1, VLLM_LLAMA2_MLPERF_MAX_TARGET_DECODE_BATCH 608"
    assert S.mlperf_decode_target(v0) == 608
    # on but no target given: the patch's own default (envs.py)
    assert S.mlperf_decode_target("VLLM_USE_V1 0; VLLM_LLAMA2_MLPERF_SCHED 1") == S.MLPERF_DECODE_TARGET_DEFAULT
    assert S.mlperf_decode_target(v0.replace("VLLM_USE_V1 0", "VLLM_USE_V1 1")) == float("inf")
    assert S.mlperf_decode_target(v0.replace("SCHED 1", "SCHED 0")) == float("inf")
    assert S.mlperf_decode_target("vLLM 0.10.1") == float("inf")


def test_the_rows_that_set_it_decode_at_most_the_target():
    # server_mi300x.yaml: max_num_seqs 650, MAX_TARGET 608; server_mi325x.yaml: 1024 / 832; offline_mi300x: 1792 / 1536
    assert _max_batch("mlperf51-mi300x8-llama2-70b-server") == 608
    assert _max_batch("mlperf51-gigacomputing-mi325x8-llama2-70b-server") == 832
    assert _max_batch("mlperf51-vultr-mi325x8-llama2-70b-server") == 832
    assert _max_batch("mlperf51-mi300x8-llama2-70b-offline") == 1536
    assert _max_batch("mlperf51-mi325x8-llama2-70b-offline") == 2048


def test_rows_without_it_keep_max_num_seqs():
    assert _max_batch("mlperf51-gigacomputing-mi325x8-llama2-70b-interactive") == 3840  # V1: the V0 patch is inert
    assert _max_batch("mlperf51-dell-xe9680-mi300x8-llama2-70b-interactive") == 600  # config sets no MLPERF_SCHED
    assert _max_batch("mlperf51-mi300x8-mixtral-8x7b-server") == 4096  # mixtral configs set no MLPERF_SCHED
