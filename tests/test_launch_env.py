"""The launch files set the allocator the memory model assumed: PYTORCH_CUDA_ALLOC_CONF=
expandable_segments:True exactly where runtime.expandable_segments resolves to on for the plan's
framework ('auto': torchtitan only), for every exporter (DeepSpeed, Megatron, torchtitan)."""

import numpy as np
import pytest

from planner.estimate import table
from planner.estimate.evaluate import Context
from planner.estimate.memory_terms_runtime import expandable_segments
from planner.export import build_files, plan_result
from planner.spec import parse_plan

from test_memory import scenario

PLANS = {"deepspeed": "framework=deepspeed,precision=bf16,dp=8,zero=2,mbs=1,recompute=full",
         "megatron": "framework=megatron,precision=bf16,dp=8,zero=1,mbs=1,recompute=full",
         "torchtitan": "framework=torchtitan,precision=bf16,dp=8,zero=3,mbs=1,recompute=full"}


@pytest.mark.parametrize("setting", ["auto", True, False])
@pytest.mark.parametrize("framework", sorted(PLANS))
def test_launch_files_set_expandable_segments_as_the_memory_model_assumed(framework, setting):
    sc = scenario(model="llama-3.1-8b", nodes=1, seq=4096, gb=64, runtime={"expandable_segments": setting})
    plan = parse_plan(PLANS[framework]).resolved(sc)
    assumed = bool(expandable_segments(Context(sc), table.from_plans([plan]))[0])
    assert assumed == (framework == "torchtitan" if setting == "auto" else setting)
    files = build_files(sc, plan_result(sc, plan))
    for name in ("launch.sh", "slurm.sbatch"):
        assert ("expandable_segments:True" in files[name]) == assumed, name
