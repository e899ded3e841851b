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


@pytest.mark.parametrize("setting", ["auto", True])
def test_deepspeed_env_file_reads_back_as_deepspeeds_runner_reads_it(tmp_path, setting):
    """launch.sh writes .deepspeed_env, which DeepSpeed's runner reads line by line as KEY=VALUE
    (launcher/runner.py: `key, val = var.split('=', maxsplit=1)` on every line, so a blank line raises).
    With no variable to forward ('auto': DeepSpeed runs without expandable segments) the file is empty."""
    import subprocess

    from planner.frameworks import launch

    sc = scenario(model="llama-3.1-8b", nodes=1, seq=4096, gb=64, runtime={"expandable_segments": setting})
    plan = parse_plan(PLANS["deepspeed"]).resolved(sc)
    env = launch.environment(plan.as_dict(), sc.runtime)
    (tmp_path / ".deepspeed_env").write_text("STALE=1\n")  # an earlier plan's file is replaced
    subprocess.run(["bash", "-c", "\n".join(launch.deepspeed_setup(env))], cwd=tmp_path, check=True)
    lines = (tmp_path / ".deepspeed_env").read_text().splitlines(keepends=True)
    read = dict(line.rstrip("\n").split("=", maxsplit=1) for line in lines)
    assert read == env


@pytest.mark.parametrize("framework", sorted(PLANS))
def test_launch_files_export_the_nccl_cta_floor_the_estimate_assumed(framework):
    """runtime.nccl_min_ctas is charged as the SM share of overlapped NCCL collectives (comm.nccl_sm_share):
    the launch files set the same NCCL_MIN_CTAS, and nothing when the key is unset."""
    for setting in (None, 16):
        sc = scenario(model="llama-3.1-8b", nodes=1, seq=4096, gb=64, runtime={"nccl_min_ctas": setting})
        plan = parse_plan(PLANS[framework]).resolved(sc)
        files = build_files(sc, plan_result(sc, plan))
        for name in ("launch.sh", "slurm.sbatch"):
            assert ("NCCL_MIN_CTAS=16" in files[name]) == (setting == 16), (name, setting)
