"""What each training framework can run. One list of rules serves both the search (as a vectorised
mask over a plan table) and `planner estimate` (as messages for a plan the user typed).

Sources: shared/reference/ecosystem.md (DeepSpeed 0.19.8 sections 1.6 and 1.9; Megatron-LM 4.1;
torchtitan 4.2). Each rule says what is NOT allowed.
"""

from __future__ import annotations

import numpy as np

from planner.estimate import table as T

DS, MEG, TT = (T.FRAMEWORKS.index(n) for n in ("deepspeed", "megatron", "torchtitan"))
FP8 = T.PRECISIONS.index("fp8")

# (framework or None for all, message, predicate over a plan table -> True where violated)
RULES = [
    (None, "parameter offload (offload_params) needs ZeRO-3",
     lambda t: (t["offload_params"] > 0) & (t["zero"] < 3)),
    (None, "optimizer offload needs ZeRO >= 1 (the offloaded states are the sharded ones)",
     lambda t: (t["offload"] > 0) & (t["zero"] == 0)),
    (None, "NVMe optimizer offload (ZeRO-Infinity) needs ZeRO-3",
     lambda t: (t["offload"] == 2) & (t["zero"] < 3)),
    (None, "sequence parallelism (sp) needs tp > 1",
     lambda t: t["sp"] & (t["tp"] == 1)),
    (None, "virtual pipeline stages (vpp > 1) need pp > 1",
     lambda t: (t["vpp"] > 1) & (t["pp"] == 1)),
    (DS, "DeepSpeed: pipeline parallelism needs ZeRO <= 1 (PipelineEngine asserts stage < 2)",
     lambda t: (t["pp"] > 1) & (t["zero"] >= 2)),
    (DS, "DeepSpeed: no FP8 section in the config (use megatron or torchtitan for fp8)",
     lambda t: t["precision"] == FP8),
    (DS, "DeepSpeed: no interleaved pipeline schedule (vpp must be 1)",
     lambda t: t["vpp"] > 1),
    (DS, "DeepSpeed: context parallelism is not planned for DeepSpeed (Ulysses is not modelled yet)",
     lambda t: t["cp"] > 1),
    (DS, "DeepSpeed: Megatron-style sequence parallelism (sp) is not available",
     lambda t: t["sp"]),
    (DS, "DeepSpeed: AutoTP tensor parallelism is documented with ZeRO 0-2 and without pipeline",
     lambda t: (t["tp"] > 1) & ((t["zero"] == 3) | (t["pp"] > 1))),
    (DS, "DeepSpeed 0.19.8: AutoEP together with AutoTP cannot be combined with offload",
     lambda t: (t["ep"] > 1) & (t["tp"] > 1) & ((t["offload"] > 0) | (t["offload_params"] > 0))),
    (DS, "DeepSpeed: experts are split like the dense layers (etp must equal tp); EP comes from dp",
     lambda t: t["etp"] != t["tp"]),
    (MEG, "Megatron-LM: ZeRO stages offered are 0, 1 (distributed optimizer) and 3 (Megatron-FSDP, "
          "--use-megatron-fsdp); ZeRO-2 is not planned",
     lambda t: t["zero"] == 2),
    (MEG, "Megatron-LM: no NVMe or parameter offload; CPU optimizer offload needs the distributed optimizer",
     lambda t: (t["offload"] == 2) | (t["offload_params"] > 0) | ((t["offload"] == 1) & (t["zero"] != 1))),
    (TT, "torchtitan: expert tensor parallelism is 1 or tp (expert_tensor_parallel_degree)",
     lambda t: (t["etp"] != 1) & (t["etp"] != t["tp"])),
    (TT, "torchtitan: FSDP2 shards parameters, gradients and optimizer states (ZeRO-3) whenever dp*cp > 1",
     lambda t: (t["zero"] != 3) & (t["dp"] * t["cp"] > 1) | ((t["zero"] != 0) & (t["dp"] * t["cp"] == 1))),
    (TT, "torchtitan: CPU offload moves parameters and optimizer states together (CPUOffloadPolicy); no NVMe",
     lambda t: (t["offload"] != t["offload_params"]) | (t["offload"] == 2)),
    (TT, "torchtitan: tensor parallelism always uses sequence parallelism",
     lambda t: (t["tp"] > 1) & ~t["sp"]),
]


def runtime_rules(scenario) -> list:
    """RULES that depend on the scenario's runtime keys. runtime.fp8_recipe nvfp4 is Transformer Engine's
    NVFP4BlockScaling, which the planner models (compute.NVFP4_*: TE's quantiser kernels) and exports for
    Megatron-LM only (--fp4-format e2m1 --fp4-recipe nvfp4); torchtitan's float8 converter (torchao) has no
    NVFP4 training recipe, so its fp8 plans are not offered under it (DeepSpeed has no fp8 at all)."""
    if getattr(getattr(scenario, "runtime", None), "fp8_recipe", None) != "nvfp4":
        return []
    return [(TT, "torchtitan: no NVFP4 training recipe (runtime.fp8_recipe nvfp4 is Transformer Engine's, "
                 "run by megatron); use precision bf16 or fp8_recipe current",
             lambda t: t["precision"] == FP8)]


def unbuildable(model) -> dict[int, str]:
    """{framework code: why} for the frameworks that cannot build `model` as specified (an architecture
    value they cannot take: megatron.architecture_args, torchtitan_model.model_args). DeepSpeed runs
    the user's training script, so any model."""
    from planner.errors import InputError
    from planner.frameworks import megatron, torchtitan_model

    out = {}
    for code, build in ((MEG, megatron.architecture_args), (TT, torchtitan_model.model_args)):
        try:
            build(model)
        except InputError as e:
            out[code] = e.message
    return out


def framework_mask(t: dict, model=None) -> np.ndarray:
    """True where a plan can be run by its framework (and, given the model, the framework builds it)."""
    ok = np.ones(T.size(t), dtype=bool)
    for code in unbuildable(model) if model is not None else {}:
        ok &= t["framework"] != code
    for fw, _, bad in RULES:
        hit = bad(t)
        if fw is not None:
            hit = hit & (t["framework"] == fw)
        ok &= ~hit
    return ok


def framework_problems(plan, scenario=None) -> list[str]:
    """Messages of the rules a single (resolved) plan breaks."""
    t = T.from_plans([plan])
    out = []
    for fw, msg, bad in RULES + runtime_rules(scenario):
        if (fw is None or t["framework"][0] == fw) and bool(bad(t)[0]):
            out.append(msg)
    if scenario is not None:
        why = unbuildable(scenario.model).get(int(t["framework"][0]))
        out += [why] if why else []
    return out
