"""DeepSpeed 0.19.8: a `ds_config.json` from a plan and the reader back to plan fields. The
project's own checks of a config (what DeepSpeed's parser lets through) are in ds_checks.py and
re-exported here as config_problems.

Every key comes from shared/reference/ecosystem.md section 1 (cited as §1.x), which was checked
against DeepSpeed 0.19.8's own parser. The batch rule under AutoTP follows §1.1: DeepSpeed divides
by the full world size at parse time, so AutoTP configs give the micro-batch and accumulation
steps and leave train_batch_size out (the AutoTP tutorial does the same).
"""

from __future__ import annotations

from planner.errors import InputError
from planner.estimate.memory_terms_runtime import (DS_BUCKET_ELEMENTS, DS_MAX_LIVE_PARAMETERS,
                                                   DS_PARAM_PERSISTENCE_THRESHOLD, DS_PREFETCH_BUCKET_ELEMENTS)
from planner.frameworks import common
from planner.frameworks.ds_checks import (DS_OPTIMIZERS, DS_VERSION, TOP_LEVEL_KEYS,  # noqa: F401 (re-exported)
                                          config_problems, section, zero_stage)

# The memory model (planner/estimate/memory_terms_runtime.py) counts DeepSpeed's buckets and ZeRO-3
# gathered parameters with these values, so the config sets exactly them: reduce and all-gather
# buckets of 2e8 elements, and ZeRO-3 prefetch bucket, live parameters and persistence threshold.
BUCKET_ELEMENTS = int(DS_BUCKET_ELEMENTS)
PREFETCH_BUCKET_ELEMENTS = int(DS_PREFETCH_BUCKET_ELEMENTS)
MAX_LIVE_PARAMETERS = int(DS_MAX_LIVE_PARAMETERS)
PARAM_PERSISTENCE_THRESHOLD = int(DS_PARAM_PERSISTENCE_THRESHOLD)
# NVMe offload needs a directory on a local NVMe drive (§1.4); this is DeepSpeed's documentation
# example. `planner export --nvme-path` sets the real one.
DEFAULT_NVME_PATH = "/local_nvme"

# The scenario's optimizer -> DeepSpeed optimizer type; None: a client optimizer (bitsandbytes
# 8-bit Adam, transformers Adafactor) passed to deepspeed.initialize, so no optimizer section.
OPTIMIZER_TYPES = {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD", "adam8bit": None, "adafactor": None}


def largest_param(scenario, fields: dict) -> int:
    """Elements of the largest single parameter tensor on one GPU, which an NVMe swap buffer must hold:
    the embedding or output matrix, an attention or MLP projection, or a fused expert tensor
    (transformers v5 stores a sparse-MoE block's gate and up projections of all its experts in one
    parameter; AutoEP keeps experts / ep of them per GPU)."""
    m = scenario.model
    out = max(m.vocab * m.hidden, m.ffn_hidden * m.hidden, m.heads * m.d_head * m.hidden)
    if m.moe:
        out = max(out, m.moe.experts // fields["ep"] * 2 * m.moe.expert_ffn_hidden * m.hidden)
    return out // fields["tp"]


def _batch(fields: dict) -> dict:
    """§1.1: train_batch_size = micro-batch x accumulation x data-parallel size. Under AutoTP
    (tp > 1) DeepSpeed uses the full world size at parse time: give micro-batch and GAS only."""
    out = {"train_micro_batch_size_per_gpu": fields["mbs"], "gradient_accumulation_steps": fields["ga"]}
    if fields["tp"] == 1:
        out = {"train_batch_size": fields["global_batch"], **out}
    return out


def _precision(fields: dict) -> dict:
    """§1.2: bf16 or fp16 (dynamic loss scaling with DeepSpeed's defaults); fp32 enables neither."""
    if fields["precision"] == "bf16":
        return {"bf16": {"enabled": True}}
    if fields["precision"] == "fp16":
        return {"fp16": {"enabled": True, "loss_scale": 0, "initial_scale_power": 16, "loss_scale_window": 1000,
                         "hysteresis": 2, "min_loss_scale": 1}}
    return {}


def _offload(device: str, nvme_path: str, **extra) -> dict:
    """§1.4: an offload sub-section; NVMe needs its path (the parser does not check that)."""
    out = {"device": device, "pin_memory": True, **extra}
    if device == "nvme":
        out["nvme_path"] = nvme_path
    return out


def _zero(scenario, fields: dict, nvme_path: str) -> dict:
    """§1.3: the stage, buckets and ZeRO-3 gathering limits the memory model counts, overlap_comm
    as the time model assumes (off with pipeline: the PipelineEngine turns it off anyway, §1.3),
    and the offload sub-sections."""
    stage = fields["zero"]
    z: dict = {"stage": stage}
    if stage >= 1:
        overlap = bool(scenario.runtime.dp_comm_overlap) and fields["pp"] == 1
        z.update(contiguous_gradients=True, overlap_comm=overlap, reduce_bucket_size=BUCKET_ELEMENTS,
                 allgather_bucket_size=BUCKET_ELEMENTS)
    if stage == 3:
        z.update(stage3_prefetch_bucket_size=PREFETCH_BUCKET_ELEMENTS, stage3_max_live_parameters=MAX_LIVE_PARAMETERS,
                 stage3_param_persistence_threshold=PARAM_PERSISTENCE_THRESHOLD,
                 stage3_gather_16bit_weights_on_model_save=True)
    if fields["offload"] != "none":
        z["offload_optimizer"] = _offload(fields["offload"], nvme_path)
    if fields["offload_params"] != "none":
        extra = {}
        if fields["offload_params"] == "nvme":  # swap buffers must hold the largest parameter
            extra["buffer_size"] = max(100_000_000, largest_param(scenario, fields))
        z["offload_param"] = _offload(fields["offload_params"], nvme_path, **extra)
    return z


def _optimizer(scenario, fields: dict) -> dict:
    """§1.7: optimizer and WarmupCosineLR with the recipe of planner/frameworks/common.py. ZeRO with
    an optimizer DeepSpeed does not ship needs zero_allow_untested_optimizer."""
    if scenario.training.optimizer == "muon":  # rules.MUON_RULES keep such plans out of the search
        raise InputError("training.optimizer muon: the planner models Megatron-Core's Muon only; DeepSpeed's Muon "
                         "(MuonWithAuxAdam) is not modelled: use framework megatron, or another optimizer",
                         key="training.optimizer")
    kind = OPTIMIZER_TYPES[scenario.training.optimizer]
    out: dict = {}
    if kind in ("AdamW", "Adam"):
        out["optimizer"] = {"type": kind, "params": {"lr": common.LR, "betas": list(common.BETAS),
                                                     "eps": common.EPS, "weight_decay": common.WEIGHT_DECAY}}
    elif kind == "SGD":
        out["optimizer"] = {"type": kind, "params": {"lr": common.LR, "momentum": 0.9,
                                                     "weight_decay": common.WEIGHT_DECAY}}
    if fields["zero"] > 0 and (kind is None or kind.lower() not in DS_OPTIMIZERS):
        out["zero_allow_untested_optimizer"] = True
    steps = common.train_steps(scenario, fields)
    out["scheduler"] = {"type": "WarmupCosineLR", "params": {
        "total_num_steps": steps, "warmup_num_steps": common.warmup_steps(steps), "warmup_min_ratio": 0.0,
        "cos_min_ratio": common.MIN_LR_RATIO, "warmup_type": "linear"}}
    return out


def _checkpointing(scenario, fields: dict) -> dict:
    """§1.5: activation checkpointing. DeepSpeed checkpoints whole modules; the planner writes
    `number_checkpoints` = layers of the largest stage for full recomputation (one checkpoint per layer) and
    leaves it unset for selective recomputation (only the attention core of each layer is
    recomputed; the training script chooses what it checkpoints). None: no section."""
    if fields["recompute"] == "none":
        return {}
    ac = {"partition_activations": False, "contiguous_memory_optimization": False, "cpu_checkpointing": False}
    if fields["recompute"] == "full":  # the largest stage's layers (the first stages take any remainder)
        ac["number_checkpoints"] = max(common.rank_layer_counts(scenario.model.layers, fields["pp"], fields["vpp"]))
    return {"activation_checkpointing": ac}


def partition_notes(scenario, fields: dict) -> list[str]:
    """README lines for a pipeline plan whose layers do not divide by pp: the split cannot be written
    into ds_config.json (its `pipeline` section has the stage count only); the training script's
    deepspeed.pipe.PipelineModule chooses it with `partition_method` (default "parameters";
    deepspeed/runtime/pipe/module.py `_partition_layers`). "uniform" calls partition_uniform
    (deepspeed/runtime/utils.py), which gives the remainder to the first stages as the planner does,
    but over the PipelineModule's whole layer list: with the embedding, final norm and head in that
    list (126 layers + 3 entries on 16 stages) the last stage gets 6 transformer layers instead of 7.
    DeepSpeed 0.19.8 takes no explicit partition, so the lines give the counts and how to impose them."""
    counts = common.chunk_layer_counts(scenario.model.layers, fields["pp"], 1)
    bounds = [sum(counts[:s]) for s in range(len(counts) + 1)]
    return ["  DeepSpeed: ds_config.json cannot carry this split; the training script's PipelineModule chooses",
            "  it (partition_method, default \"parameters\"). partition_method=\"uniform\" also gives the first",
            "  stages the extra layers, but counts every entry of the layer list (embedding, final norm, head), so",
            "  it gives this split only when the list holds the transformer layers alone. Pass this custom partition:",
            f"    transformer layers per stage: {','.join(map(str, counts))}",
            f"    stage s runs layers b[s] .. b[s+1]-1, b = {bounds}",
            "  (subclass deepspeed.pipe.PipelineModule, override _partition_layers to set self.parts to these bounds",
            "  as indices into the layer list, +1 for an embedding entry before the layers and the list's length as",
            "  the last, then call self._set_bounds(start=self.parts[stage_id], stop=self.parts[stage_id + 1]))."]


def launch_note(scenario, fields: dict) -> list[str]:
    """One comment line for the launch files of an uneven pipeline split (README.txt has the rest)."""
    counts = common.chunk_layer_counts(scenario.model.layers, fields["pp"], 1)
    return [f"Uneven pipeline split, transformer layers per stage {','.join(map(str, counts))}: the "
            "PipelineModule needs this custom partition (README.txt)."]


def _parallel(fields: dict) -> dict:
    """§1.6: AutoTP (`tensor_parallel.autotp_size`), the pipeline stage count (used with a
    deepspeed.pipe.PipelineModule), and AutoEP (`expert_parallel.autoep_size`) for experts."""
    out: dict = {}
    if fields["tp"] > 1:
        out["tensor_parallel"] = {"autotp_size": fields["tp"]}
    if fields["pp"] > 1:
        out["pipeline"] = {"stages": fields["pp"]}
    if fields["ep"] > 1:
        out["expert_parallel"] = {"enabled": True, "autoep_size": fields["ep"]}
    return out


def ds_config(scenario, plan, nvme_path: str = DEFAULT_NVME_PATH) -> dict:
    """The ds_config.json of a DeepSpeed plan. Raises InputError when DeepSpeed cannot run it."""
    from planner.frameworks.rules import framework_problems

    fields = common.plan_fields(plan)
    if fields["framework"] != "deepspeed":
        raise InputError(f"the plan runs on {fields['framework']}, not deepspeed", key="plan.framework")
    problems = framework_problems(fields)
    cfg = {**_batch(fields), **_precision(fields), "zero_optimization": _zero(scenario, fields, nvme_path),
           "gradient_clipping": common.GRAD_CLIP, **_optimizer(scenario, fields),
           **_checkpointing(scenario, fields), **_parallel(fields), "steps_per_print": 10,
           "wall_clock_breakdown": False}
    problems += config_problems(cfg, dp_world_size=fields["dp"], kv_heads=_kv_heads(scenario),
                                optimizer=scenario.training.optimizer)
    if problems:
        raise InputError("DeepSpeed " + DS_VERSION + " cannot run this plan: " + "; ".join(problems), key="plan")
    return cfg


def _kv_heads(scenario) -> int:
    m = scenario.model
    return m.heads if m.mla else m.n_kv_heads


def plan_from_ds_config(cfg: dict, gpus: int | None = None) -> dict:
    """Plan fields read back from a ds_config written by ds_config(). dp comes from
    train_batch_size / (micro-batch x GAS); AutoTP configs have no train_batch_size (§1.1), so dp
    is then gpus / (tp x pp) and needs the world size `gpus` (the hostfile's slots)."""
    z = section(cfg, "zero_optimization")
    tp = int(section(cfg, "tensor_parallel").get("autotp_size") or 1)
    pp = section(cfg, "pipeline").get("stages", 1)
    pp = pp if isinstance(pp, int) else 1  # "auto": the PipelineModule decides
    ep_section = section(cfg, "expert_parallel")
    ep = int(ep_section.get("autoep_size", 1)) if ep_section.get("enabled") else 1
    mbs, ga = int(cfg["train_micro_batch_size_per_gpu"]), int(cfg.get("gradient_accumulation_steps", 1))
    if "train_batch_size" in cfg:
        dp = int(cfg["train_batch_size"]) // (mbs * ga)
    elif gpus is not None:
        dp = gpus // (tp * pp)
    else:
        raise InputError("this config has no train_batch_size (AutoTP); give the world size to read dp",
                         key="train_batch_size")
    bf16 = section(cfg, "bf16") or section(cfg, "bfloat16")
    precision = "bf16" if bf16.get("enabled") else "fp16" if section(cfg, "fp16").get("enabled") else "fp32"
    ac = cfg.get("activation_checkpointing")
    recompute = "none" if ac is None else "full" if ac.get("number_checkpoints") else "selective"
    fields = {"framework": "deepspeed", "precision": precision, "dp": dp, "tp": tp, "pp": pp, "cp": 1, "ep": ep,
              "etp": tp, "vpp": 1, "sp": False, "zero": zero_stage(cfg),
              "offload": section(z, "offload_optimizer").get("device", "none"),
              "offload_params": section(z, "offload_param").get("device", "none"),
              "recompute": recompute, "mbs": mbs, "ga": ga}
    fields["global_batch"] = dp * mbs * ga
    return fields
