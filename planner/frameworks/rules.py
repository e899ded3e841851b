"""What each training framework can run. One list of rules serves both the search (as a vectorised
mask over a plan table) and `planner estimate` (as messages for a plan the user typed).

Sources: shared/reference/ecosystem.md (DeepSpeed 0.19.8 sections 1.6 and 1.9; Megatron-LM 4.1;
torchtitan 4.2). Each rule says what is NOT allowed.
"""

from __future__ import annotations

import numpy as np

from planner.estimate import table as T
from planner.estimate.table import DS, FP8, MEG, TT

SELECTIVE = T.RECOMPUTES.index("selective")


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

# Rules that also read the scenario's runtime block: (framework or None, message, predicate over
# (plan table, runtime) -> True where violated). The messages name the runtime key.
# torchtitan v0.2.2 (commit 73a0e69) registers only the quantize.{linear,grouped_mm}.{float8,mx}
# converters (torchtitan/components/quantization/): no FP4 training path. Also raised by the torchtitan
# export (torchtitan._quantize) for a result estimated under another runtime.
TT_NO_NVFP4 = ("torchtitan v0.2.2 has no NVFP4 training (its quantisation converters are float8 and mx): "
               "runtime.fp8_recipe nvfp4 needs framework megatron, or another fp8_recipe")

# runtime.fp8_attention is Transformer Engine's fp8_dpa: Megatron fp8 plans only. torchtitan v0.2.2's float8 / mx
# converters quantise linear layers only (components/quantization/); DeepSpeed plans have no fp8.
FP8_ATTENTION_PLANS = ("runtime.fp8_attention (Transformer Engine FP8 attention) needs a Megatron plan with "
                       "precision fp8")

MEG_FP8_DELAYED_RECOMPUTE = ("Megatron-LM: runtime.recompute_modules moe_act / layernorm with precision fp8 need an "
                             "fp8_recipe other than delayed (Megatron-Core: 'Delayed scaling does not support moe_act "
                             "and layernorm recompute for fp8'): use fp8_recipe current or mxfp8, or other modules")

def _fp8_delayed_recompute(t, rt):
    """Where a plan breaks MEG_FP8_DELAYED_RECOMPUTE. The plan columns are read only where the runtime
    block sets both the delayed recipe and moe_act / layernorm recompute: elsewhere the search's rule
    table (planner.search.solver._rule_reads) need not carry the recompute column."""
    if rt.fp8_recipe != "delayed" or not {"moe_act", "layernorm"} & set(rt.recompute_modules or ()):
        return np.zeros((), dtype=bool)
    return (t["precision"] == FP8) & (t["recompute"] == SELECTIVE)


RUNTIME_RULES = [
    (None, FP8_ATTENTION_PLANS,
     lambda t, rt: rt.fp8_attention & ((t["precision"] != FP8) | (t["framework"] != MEG))),
    (TT, TT_NO_NVFP4, lambda t, rt: (t["precision"] == FP8) & (rt.fp8_recipe == "nvfp4")),
    # components/quantization/mx.py MXLinearConverter: assert not (model compiled and tp > 1), "TP not yet
    # supported with torch.compile for mxfp8" (the export compiles as runtime.compile says)
    (TT, "torchtitan v0.2.2: runtime.fp8_recipe mxfp8 with runtime.compile runs without tensor parallelism "
         "(MXLinear refuses tp > 1 under torch.compile): tp must be 1, or runtime.compile false",
     lambda t, rt: (t["precision"] == FP8) & (rt.fp8_recipe == "mxfp8") & rt.compile & (t["tp"] > 1)),
    # Megatron-LM main @ d98e8a6 megatron/training/arguments.py validate_args: "--fp8-param-gather only
    # supported with distributed optimizer, torch fsdp2, megatron fsdp, or inference mode" (the FP4 flag
    # --fp4-param-gather has no such check)
    (MEG, "Megatron-LM: runtime.fp8_param_gather (--fp8-param-gather) needs the distributed optimizer or "
          "Megatron-FSDP: zero must be 1 or 3",
     lambda t, rt: (t["precision"] == FP8) & rt.fp8_param_gather & (rt.fp8_recipe != "nvfp4") & (t["zero"] == 0)),
    # same file: "When --fp8-param-gather is enabled, the optimizer cpu offload must be used in
    # conjunction with --fp8-recipe delayed"
    (MEG, "Megatron-LM: runtime.fp8_param_gather with optimizer CPU offload needs runtime.fp8_recipe delayed",
     lambda t, rt: (t["precision"] == FP8) & rt.fp8_param_gather & (t["offload"] == 1)
     & (rt.fp8_recipe not in ("delayed", "nvfp4"))),
    # Megatron-Core TransformerConfig.__post_init__ (megatron/core/transformer/transformer_config.py @ d98e8a6):
    # with fp8 and selective recompute, "Delayed scaling does not support moe_act and layernorm recompute for fp8"
    (MEG, MEG_FP8_DELAYED_RECOMPUTE, lambda t, rt: _fp8_delayed_recompute(t, rt)),
]


# Transformer Engine runs sliding-window attention under context parallelism only with cp_comm_type
# "a2a" or "all_gather" (transformer_engine/pytorch/attention/dot_product_attention/context_parallel.py
# attn_forward_func_with_cp: "Context parallelism does not support sliding window attention with
# cp_comm_type=..."); Megatron-Core passes --cp-comm-type through to it.
MEG_SWA_CP_P2P = ("Megatron-LM: sliding-window attention with context parallelism needs --cp-comm-type "
                  "all_gather or a2a (Transformer Engine refuses p2p): runtime.cp_comm must be auto or allgather")


# Megatron-Core MoEFlexTokenDispatcher.__init__ (megatron/core/transformer/moe/token_dispatcher.py, core_v0.16.0
# onwards): assert self.tp_size * self.ep_size > 1, "Flex token dispatcher requires TPxEP > 1", tp_size being the
# expert tensor-parallel group's size (pg_collection.expt_tp).
MEG_FLEX_ONE_RANK = ("Megatron-LM: runtime.moe_dispatcher deepep / hybridep (the flex token dispatcher) needs "
                     "ep x etp > 1 (Megatron-Core asserts 'Flex token dispatcher requires TPxEP > 1'): use ep or "
                     "etp > 1, or moe_dispatcher alltoall")


# Megatron-Core TransformerConfig.__post_init__ (transformer_config.py @ d98e8a6): num_moe_experts with
# add_bias_linear asserts "Bias in Moe is only supported when ETP==1" (gpt-oss's experts carry biases).
MEG_MOE_BIAS_ETP = ("Megatron-LM: an MoE model with linear biases (linear_bias, e.g. gpt-oss) needs expert tensor "
                    "parallelism 1 (Megatron-Core asserts 'Bias in Moe is only supported when ETP==1'): etp must be 1")


# training.optimizer muon: Megatron-Core's Muon (estimate/muon.py) is the one modelled. Megatron-LM d98e8a6
# arguments.py validate_args: "Emerging optimizer does not support Megatron-FSDP for now" (and Torch-FSDP2);
# optimizer CPU offload needs the distributed optimizer, which Muon turns into the layer-wise one; Megatron-Bridge's
# Kimi-K2 performance scripts turn fp8_param_gather off for Muon ("MXFP8's fp8_param_gather ... require
# DistributedOptimizer infrastructure, incompatible with Muon's LayerWiseDistributedOptimizer", kimi_llm_pretrain.py
# at v0.4.0).
MUON_RULES = [
    (DS, "training.optimizer muon: the planner models Megatron-Core's Muon only; DeepSpeed's Muon "
         "(MuonWithAuxAdam) is not modelled: use framework megatron, or another optimizer",
     lambda t, rt: np.asarray(True)),
    (TT, "training.optimizer muon: the planner models Megatron-Core's Muon only; not modelled for torchtitan: "
         "use framework megatron, or another optimizer",
     lambda t, rt: np.asarray(True)),
    (MEG, "Megatron-LM: training.optimizer muon runs with zero 0 or 1 (layer-wise distributed optimizer), not "
          "Megatron-FSDP ('Emerging optimizer does not support Megatron-FSDP'), and without optimizer offload",
     lambda t, rt: (t["zero"] >= 2) | (t["offload"] > 0)),
    (MEG, "Megatron-LM: training.optimizer muon with runtime.fp8_param_gather: the quantised parameter gather needs "
          "the distributed optimizer, which Muon replaces with its layer-wise one: set fp8_param_gather false",
     lambda t, rt: (t["precision"] == FP8) & rt.fp8_param_gather),
]


def runtime_violations(t: dict, runtime, model=None, optimizer=None):
    """[(framework, message, True where violated)] of RUNTIME_RULES under `runtime` (none without one),
    and, given the model, the rules on a windowed model's context-parallel exchange (MEG_SWA_CP_P2P) and
    on an MoE model's flex dispatcher (MEG_FLEX_ONE_RANK; they read cp, ep and etp, which RULES read too,
    so the search's projection on the rules' columns keeps them), and, given training.optimizer muon,
    MUON_RULES (framework, zero, offload, precision: read by RULES too)."""
    if optimizer == "muon":
        from planner.spec.scenario import Runtime

        rt = runtime if runtime is not None else Runtime()
        muon = [(fw, msg, np.asarray(bad(t, rt))) for fw, msg, bad in MUON_RULES]
    else:
        muon = []
    if runtime is None:
        return muon
    out = [(fw, msg, np.asarray(bad(t, runtime))) for fw, msg, bad in RUNTIME_RULES] + muon
    if model is not None and model.sliding_window and runtime.cp_comm == "p2p":
        out.append((MEG, MEG_SWA_CP_P2P, np.asarray(t["cp"] > 1)))
    if model is not None and model.moe and runtime.moe_dispatcher in ("deepep", "hybridep"):
        out.append((MEG, MEG_FLEX_ONE_RANK, np.asarray(t["ep"] * t["etp"] == 1)))
    if model is not None and model.moe and model.linear_bias:
        out.append((MEG, MEG_MOE_BIAS_ETP, np.asarray(t["etp"] > 1)))
    return out


def _seq_len(scenario):
    """The training sequence length of a scenario (None for one without training)."""
    tr = getattr(scenario, "training", None)
    return getattr(tr, "seq_len", None)


def unbuildable(model, seq_len: int | None = None) -> dict[int, str]:
    """{framework code: why} for the frameworks that cannot build `model` as specified (an architecture
    value they cannot take: megatron.architecture_args, torchtitan_model.model_args). DeepSpeed runs
    the user's training script on a transformers model, so any model except one with MTP modules:
    transformers builds none (DeepseekV3ForCausalLM ignores the checkpoint's layer 61, the MTP module).
    `seq_len`: the training sequence, where what a framework can build depends on it (chunked attention:
    megatron.architecture_args)."""
    from planner.errors import InputError
    from planner.frameworks import megatron, torchtitan_model

    out = {}
    if model.mtp_layers:
        out[DS] = ("DeepSpeed trains a transformers model, which builds no multi-token-prediction modules "
                   "(mtp_layers): use framework megatron, or mtp_layers 0")
    for code, build in ((MEG, lambda m: megatron.architecture_args(m, seq_len)), (TT, torchtitan_model.model_args)):
        try:
            build(model)
        except InputError as e:
            out[code] = e.message
    return out


def framework_mask(t: dict, model=None, runtime=None, optimizer=None) -> np.ndarray:
    """True where a plan can be run by its framework (and, given the model, the framework builds it;
    given the scenario's runtime block, the runtime rules hold)."""
    ok = np.ones(T.size(t), dtype=bool)
    for code in unbuildable(model) if model is not None else {}:
        ok &= t["framework"] != code
    for fw, _, bad in [*RULES, *((f, m, lambda _t, h=h: h) for f, m, h in runtime_violations(t, runtime, model, optimizer))]:
        hit = bad(t)
        if fw is not None:
            hit = hit & (t["framework"] == fw)
        ok &= ~hit
    return ok


def framework_problems(plan, scenario=None, runtime=None, optimizer=None) -> list[str]:
    """Messages of the rules a single (resolved) plan breaks: RULES; RUNTIME_RULES under `runtime`
    (default: the scenario's); the framework's model build, given the scenario."""
    t = T.from_plans([plan])
    out = []
    hits = [(fw, msg, bad(t)) for fw, msg, bad in RULES]
    hits += runtime_violations(t, runtime if runtime is not None or scenario is None else scenario.runtime,
                               getattr(scenario, "model", None),
                               optimizer if optimizer is not None or scenario is None else scenario.training.optimizer)
    for fw, msg, hit in hits:
        if (fw is None or t["framework"][0] == fw) and bool(np.broadcast_to(hit, (1,))[0]):
            out.append(msg)
    if scenario is not None:
        why = unbuildable(scenario.model, _seq_len(scenario)).get(int(t["framework"][0]))
        out += [why] if why else []
    return out
