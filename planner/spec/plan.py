"""One deployment plan: every parallel degree and memory trick, like torchtitan's ParallelDims.

`Plan.check(scenario)` validates the whole layout in one place and its messages print the numbers
that do not multiply out.
"""

from typing import TYPE_CHECKING, Literal

from planner.errors import InputError
from typing import Annotated

from pydantic import BeforeValidator

from planner.spec.base import PosInt, Strict, _to_int

if TYPE_CHECKING:
    from planner.spec.scenario import Scenario

FIELDS = ("framework", "precision", "dp", "tp", "pp", "cp", "ep", "etp", "vpp", "sp", "zero",
          "offload", "offload_params", "recompute", "mbs", "ga")


class Plan(Strict):
    # pydantic builds the validator at the first validation, not at import: a solve or a purchase
    # comparison validates no plan (start-up time), `planner estimate --plan` and search.fixed do
    model_config = {**Strict.model_config, "defer_build": True}

    framework: Literal["deepspeed", "megatron", "torchtitan"] = "megatron"
    precision: Literal["fp32", "fp16", "bf16", "fp8"] = "bf16"
    dp: PosInt | None = None
    tp: PosInt = 1
    pp: PosInt = 1
    cp: PosInt = 1
    ep: PosInt = 1
    # Expert tensor-parallel size (Megatron-Core `--expert-tensor-parallel-size`, torchtitan
    # `expert_tensor_parallel_degree`): routed experts are split over etp ranks instead of tp, and the
    # expert-parallel group may then span tp x cp x dp ("MoE parallel folding"): ep * etp must divide
    # tp * cp * dp. Omitted: tp (Megatron's default), or 1 when ep * tp does not divide tp * cp * dp
    # (the folded layout, e.g. EP64 with tp2 on 64 ranks of tp x cp x dp, needs etp = 1).
    etp: PosInt | None = None
    vpp: PosInt = 1
    sp: bool | None = None
    zero: Annotated[Literal[0, 1, 2, 3], BeforeValidator(_to_int)] = 1
    offload: Literal["none", "cpu", "nvme"] = "none"
    offload_params: Literal["none", "cpu", "nvme"] = "none"
    recompute: Literal["none", "selective", "full"] = "selective"
    mbs: PosInt = 1
    ga: PosInt | None = None

    def resolved(self, scenario: "Scenario", check_build: bool = True) -> "Plan":
        """Fill dp, ga and sp from the scenario, then check the layout; raises InputError.
        check_build=False skips only the check that the framework's own model code builds the
        architecture (for a framework that stands in for another stack's parallelism)."""
        if len(scenario.cluster.node_counts) > 1:
            raise InputError("the scenario lists several node counts; a plan needs one (set cluster.nodes to a "
                             "single count)", key="cluster.nodes")
        gpus = scenario.cluster.gpus
        model_par = self.tp * self.pp * self.cp
        dp = self.dp if self.dp is not None else max(1, gpus // model_par)
        batches = scenario.training.batches  # with several, the largest that dp * mbs divides
        gb = next((b for b in reversed(batches) if b % (self.mbs * dp) == 0), batches[-1])
        ga = self.ga if self.ga is not None else max(1, gb // (self.mbs * dp))
        sp = self.sp if self.sp is not None else (self.tp > 1 and self.framework != "deepspeed")
        biased_moe = bool(scenario.model.moe and scenario.model.linear_bias)
        etp = self.etp if self.etp is not None else default_etp(self.tp, self.cp, dp, self.ep, biased_moe)
        plan = self.model_copy(update={"dp": dp, "ga": ga, "sp": sp, "etp": etp})
        problems = plan.problems(scenario, check_build)
        if problems:
            raise InputError("; ".join(problems), key="plan")
        return plan

    @property
    def gpus(self) -> int:
        return (self.dp or 1) * self.tp * self.pp * self.cp

    @property
    def global_batch(self) -> int:
        return (self.dp or 1) * self.mbs * (self.ga or 1)

    def problems(self, scenario: "Scenario", check_build: bool = True) -> list[str]:
        """Structural problems of this (resolved) plan for the scenario; empty when it is valid."""
        from planner.frameworks.rules import framework_problems
        from planner.search.space import structural_problems

        return structural_problems(self, scenario) + framework_problems(self, scenario if check_build else None,
                                                                     runtime=scenario.runtime,
                                                                     optimizer=scenario.training.optimizer)

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in FIELDS}
        out["global_batch"] = self.global_batch
        return out


def default_etp(tp: int, cp: int, dp: int, ep: int, biased_moe: bool = False) -> int:
    """Megatron's default expert tensor-parallel size (tp; megatron/training/arguments.py), or 1 when
    that layout is impossible (ep * tp does not divide tp * cp * dp) but the folded one is, or when the
    experts carry linear biases (gpt-oss): Megatron-Core asserts ETP == 1 there (frameworks.rules
    MEG_MOE_BIAS_ETP), so the only size such a run can have is 1 (the export writes it explicitly)."""
    if biased_moe:
        return 1
    return tp if (tp * cp * dp) % (ep * tp) == 0 else 1


def parse_plan(text: str) -> Plan:
    """Parse `"tp=8,pp=2,zero=1,recompute=selective"` into a Plan (omitted keys take defaults)."""
    import difflib

    values: dict[str, object] = {}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise InputError("the plan is empty (give key=value pairs, e.g. tp=8,pp=2)", key="--plan")
    for part in parts:
        if "=" not in part:
            raise InputError(f"'{part}' is not key=value (e.g. tp=8)", key="--plan")
        key, _, raw = (s.strip() for s in part.partition("="))
        if key not in FIELDS:
            near = difflib.get_close_matches(key, FIELDS, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise InputError(f"unknown plan key '{key}' (expected one of {', '.join(FIELDS)}){hint}",
                             key="--plan")
        if key in values:
            raise InputError(f"'{key}' is given twice", key=f"--plan.{key}")
        if key == "sp":
            low = raw.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise InputError(f"sp must be true or false, got '{raw}'", key="--plan.sp")
            values[key] = low in ("true", "1", "yes")
        elif key in ("framework", "precision", "offload", "offload_params", "recompute"):
            values[key] = raw
        else:
            values[key] = raw
    from planner.spec.load import validate_model
    return validate_model(Plan, values, file="--plan")
