"""Scenario: model + cluster + training workload + budget + search options (PRODUCT.md contract)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, model_validator

from planner.spec.base import Name, PosFloat, PosInt, Strict
from planner.spec.hardware import Cluster
from planner.spec.model import ModelSpec

Framework = Literal["deepspeed", "megatron", "torchtitan"]
PrecisionName = Literal["fp32", "fp16", "bf16", "fp8"]
OffloadTarget = Literal["none", "cpu", "nvme"]
Recompute = Literal["none", "selective", "full"]
Optimizer = Literal["adamw", "adam", "adam8bit", "sgd", "adafactor"]
Objective = Literal["throughput", "time", "cost"]

PLAN_FIELDS = ("framework", "precision", "dp", "tp", "pp", "cp", "ep", "vpp", "sp", "zero",
               "offload", "offload_params", "recompute", "mbs", "ga")


class Training(Strict):
    seq_len: PosInt = Field(le=2**24)
    global_batch: PosInt = Field(description="sequences per optimizer step", le=2**30)
    tokens: PosFloat = Field(description="tokens to train, for days and cost", le=1e16)
    optimizer: Optimizer = "adamw"


class Budget(Strict):
    max_usd: PosFloat | None = None
    max_days: PosFloat | None = None
    max_gpus: PosInt | None = None


class SearchOptions(Strict):
    frameworks: list[Framework] = Field(default_factory=lambda: ["deepspeed", "megatron", "torchtitan"], min_length=1)
    precision: list[PrecisionName] = Field(default_factory=lambda: ["bf16", "fp8"], min_length=1)
    zero: list[Literal[0, 1, 2, 3]] = Field(default_factory=lambda: [0, 1, 2, 3], min_length=1)
    offload: list[OffloadTarget] = Field(default_factory=lambda: ["none", "cpu", "nvme"], min_length=1)
    offload_params: list[OffloadTarget] = Field(default_factory=lambda: ["none", "cpu", "nvme"], min_length=1)
    recompute: list[Recompute] = Field(default_factory=lambda: ["none", "selective", "full"], min_length=1)
    micro_batch: list[PosInt] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1)
    tp: list[PosInt] | None = None
    pp: list[PosInt] | None = None
    cp: list[PosInt] | None = None
    ep: list[PosInt] | None = None
    vpp: list[PosInt] | None = None
    uneven_pipeline: bool = Field(True, description="allow layers not divisible by pp*vpp (the first stages "
                                  "take one more layer), as real runs do (Llama-3.1-405B: 126 layers on pp 16)")
    fixed: dict[str, object] = Field(default_factory=dict, description="pin any plan field")

    @model_validator(mode="after")
    def _check_fixed(self):
        from planner.spec.plan import Plan  # the plan's own validation names bad values

        for key in self.fixed:
            if key not in PLAN_FIELDS:
                import difflib
                near = difflib.get_close_matches(key, PLAN_FIELDS, n=1)
                hint = f"; did you mean '{near[0]}'?" if near else ""
                raise ValueError(f"unknown plan field '{key}' in fixed (expected one of {', '.join(PLAN_FIELDS)}){hint}")
        try:
            Plan.model_validate({**self.fixed})  # type-check the pinned values
        except ValidationError as exc:  # name the pinned key: search.fixed.tp, not search.tp
            e = exc.errors()[0]
            raise ValueError(f"fixed.{'.'.join(map(str, e['loc']))}: {e['msg']}") from None
        return self


class Runtime(Strict):
    """What the software stack does, where it changes time (not memory layout). Defaults describe a
    current, tuned stack; set them to reproduce older runs."""

    flash_attention: bool = Field(True, description="fused attention (FlashAttention / cuDNN): no s x s tensors")
    tp_comm_overlap: bool = Field(True, description="TP collectives overlapped with GEMMs (Megatron "
                                  "--tp-comm-overlap, torchtitan async TP); DeepSpeed AutoTP never overlaps here")
    ep_comm_overlap: bool = Field(False, description="expert-parallel all-to-all of one micro-batch overlapped "
                                  "with another's compute (DeepSeek DualPipe, Megatron-Core "
                                  "--overlap-moe-expert-parallel-comm); off by default: not every stack does it")
    dp_comm_overlap: bool = Field(True, description="gradient reduction overlapped with the last micro-batch's "
                                  "backward and the parameter all-gather with the first forward (Megatron "
                                  "--overlap-grad-reduce --overlap-param-gather, DeepSpeed overlap_comm, FSDP)")


class Scenario(Strict):
    name: Name = "scenario"
    model: ModelSpec
    cluster: Cluster
    training: Training
    budget: Budget = Budget()
    search: SearchOptions = SearchOptions()
    runtime: Runtime = Runtime()
    objective: Objective = "throughput"
    top: PosInt = Field(10, le=10000)
