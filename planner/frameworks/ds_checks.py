"""The project's checks of a DeepSpeed 0.19.8 ds_config: what DeepSpeed's parser rejects, and what
it lets through although DeepSpeed rejects it later or silently ignores it.

Sources: shared/reference/ecosystem.md section 1 (cited as §1.x): removed keys (§1.8), the
invalid combinations tested with the real parser (§1.9), the top-level keys the parser reads
(§1.10), and the keys of the pydantic sections (§1.2-1.4, §1.6), whose typos the parser rejects.
These checks work without DeepSpeed installed; tests/test_export.py runs them next to the parser.
"""

from __future__ import annotations

DS_VERSION = "0.19.8"
# §1.8: removed in 0.19, the parser raises DeepSpeedConfigError.
REMOVED_TOP_LEVEL = frozenset({
    "nebula", "compression_training", "amp", "quantize_training", "sparse_gradients", "eigenvalue",
    "sparse_attention", "elasticity", "graph_harvesting", "curriculum_learning", "progressive_layer_drop"})
REMOVED_ZERO_KEYS = frozenset({"mics_shard_size", "mics_hierarchical_params_gather", "zeropp_loco_param"})
# §1.10: the top-level keys DeepSpeedConfig reads, without the removed ones. Others are ignored
# silently, so a typo there would pass the parser.
TOP_LEVEL_KEYS = frozenset({
    "activation_checkpointing", "aio", "autotuning", "bf16", "bfloat16", "checkpoint", "comet",
    "comms_logger", "communication_data_type", "compile", "csv_monitor", "data_efficiency", "data_types",
    "dataloader_drop_last", "datastates_ckpt", "disable_allgather", "disable_python_gc", "dump_state",
    "expert_parallel", "flops_profiler", "fp16", "gradient_accumulation_steps", "gradient_allreduce_op",
    "gradient_clipping", "gradient_predivide_factor", "hybrid_engine", "log_level",
    "managed_gradient_accumulation", "memory_breakdown", "optimizer", "pipeline", "prescale_gradients",
    "scheduler", "seq_parallel_communication_data_type", "sequence_parallel_size", "steps_per_print",
    "tensor_parallel", "tensorboard", "timers", "torch_autocast", "train_batch_size",
    "train_micro_batch_size_per_gpu", "use_data_before_expert_parallelism", "vocabulary_size",
    "wall_clock_breakdown", "wandb", "weight_quantization", "zero_allow_untested_optimizer",
    "zero_force_ds_cpu_optimizer", "zero_optimization"})
# §1.7: DeepSpeed's own optimizers (any other name must be a torch.optim class), and its schedulers.
DS_OPTIMIZERS = frozenset({"adagrad", "adam", "adamw", "lamb", "muadam", "muadamw", "musgd", "lion", "muon"})
TORCH_OPTIMIZERS = frozenset({"adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "asgd", "lbfgs",
                              "nadam", "radam", "rmsprop", "rprop", "sgd", "sparseadam"})
# DeepSpeed has CPU kernels for these (DeepSpeedCPUAdam, -Adagrad, -Lion); offloaded states need one.
CPU_OFFLOAD_OPTIMIZERS = frozenset({"adam", "adamw", "adagrad", "lion"})
SCHEDULERS = frozenset({"LRRangeTest", "OneCycle", "WarmupLR", "WarmupDecayLR", "WarmupCosineLR"})
# Keys of the pydantic sections the planner writes (extra="forbid" in DeepSpeed: a typo is an error).
SECTION_KEYS = {
    "zero_optimization": frozenset({  # §1.3 (aliases included)
        "stage", "contiguous_gradients", "reduce_scatter", "reduce_bucket_size", "allgather_partitions",
        "allgather_bucket_size", "overlap_comm", "use_multi_rank_bucket_allreduce", "compute_grad_norm",
        "load_from_fp32_weights", "offload_param", "offload_optimizer", "sub_group_size",
        "stage3_prefetch_bucket_size", "prefetch_bucket_size", "stage3_param_persistence_threshold",
        "param_persistence_threshold", "stage3_model_persistence_threshold", "model_persistence_threshold",
        "stage3_max_live_parameters", "max_live_parameters", "stage3_max_reuse_distance", "max_reuse_distance",
        "stage3_gather_16bit_weights_on_model_save", "gather_16bit_weights_on_model_save",
        "stage3_gather_fp16_weights_on_model_save", "stage3_module_granularity_threshold",
        "stage3_use_all_reduce_for_fetch_params", "stage3_allgather_sequential", "ignore_unused_parameters",
        "round_robin_gradients", "parameter_alignment", "zero_hpz_partition_size", "zero_quantized_weights",
        "zero_quantized_nontrainable_weights", "zero_quantized_gradients", "memory_efficient_linear",
        "override_module_apply", "pipeline_loading_checkpoint", "log_trace_cache_warnings", "enable_sanity_checks",
        "elastic_checkpoint", "legacy_stage1", "save_muon_momentum_buffer_in_memory", "zenflow", "leaf_module",
        "cpu_offload", "cpu_offload_param", "cpu_offload_use_pin_memory"}),
    "offload_optimizer": frozenset({"device", "nvme_path", "buffer_count", "pin_memory", "pipeline_read",  # §1.4
                                    "pipeline_write", "fast_init", "ratio", "super_offload", "cpuadam_cores_perc"}),
    "offload_param": frozenset({"device", "nvme_path", "buffer_count", "buffer_size", "max_in_cpu", "pin_memory"}),
    "bf16": frozenset({"enabled", "immediate_grad_update", "check_grad_overflow",  # §1.2
                       "bf16_master_weights_and_grads", "bf16_optimizer_states"}),
    "fp16": frozenset({"enabled", "auto_cast", "loss_scale", "initial_scale_power", "loss_scale_window", "hysteresis",
                       "consecutive_hysteresis", "min_loss_scale", "fp16_master_weights_and_grads"}),
}


def section(cfg: dict, key: str) -> dict:
    """cfg[key] when it is a mapping, else an empty one."""
    value = cfg.get(key)
    return value if isinstance(value, dict) else {}


def zero_stage(cfg: dict) -> int:
    """§1.3: `zero_optimization.stage`; the legacy boolean `true` means stage 1."""
    z = cfg.get("zero_optimization")
    if isinstance(z, bool):
        return int(z)
    return int(section(cfg, "zero_optimization").get("stage", 0))


def _key_problems(cfg: dict) -> list[str]:
    """§1.8 removed keys, §1.10 unknown top-level keys, and typos inside the pydantic sections."""
    z = section(cfg, "zero_optimization")
    out = [f"top-level key '{k}' was removed in DeepSpeed 0.19 (§1.8)" for k in cfg if k in REMOVED_TOP_LEVEL]
    out += [f"unknown top-level key '{k}' (DeepSpeed would ignore it silently, §1.10)"
            for k in cfg if k not in TOP_LEVEL_KEYS | REMOVED_TOP_LEVEL]
    out += [f"zero_optimization.{k} was removed in DeepSpeed 0.19 (§1.8)" for k in z if k in REMOVED_ZERO_KEYS]
    parts = {"zero_optimization": z, "offload_optimizer": section(z, "offload_optimizer"),
             "offload_param": section(z, "offload_param"), "bf16": section(cfg, "bf16") or section(cfg, "bfloat16"),
             "fp16": section(cfg, "fp16")}
    for name, part in parts.items():
        out += [f"unknown key '{k}' in {name} (DeepSpeed's parser rejects it)"
                for k in part if k not in SECTION_KEYS[name] | REMOVED_ZERO_KEYS]
    return out


def config_problems(cfg: dict, dp_world_size: int | None = None, kv_heads: int | None = None,
                    optimizer: str | None = None) -> list[str]:
    """The project's checks of a ds_config: what DeepSpeed 0.19.8 rejects at parse time and what it
    only rejects (or silently ignores) later, §1.8-1.10. Empty when the config is sound."""
    out = _key_problems(cfg)
    out += _batch_problems(cfg, dp_world_size)
    out += _zero_problems(cfg)
    out += _parallel_problems(cfg, kv_heads)
    out += _optimizer_problems(cfg, optimizer)
    return out


def _batch_problems(cfg: dict, dp: int | None) -> list[str]:
    """§1.1: integers (not "auto"), MBS given, TBS = MBS x GAS x DP; AutoTP configs leave TBS out."""
    out = []
    values = {k: cfg[k] for k in ("train_batch_size", "train_micro_batch_size_per_gpu",
                                  "gradient_accumulation_steps") if k in cfg}
    for k, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            out.append(f"{k} must be a positive integer, got {v!r} (§1.1)")
    if "train_micro_batch_size_per_gpu" not in values:
        out.append("train_micro_batch_size_per_gpu is missing (§1.1)")
    if out:
        return out
    tbs, mbs = values.get("train_batch_size"), values["train_micro_batch_size_per_gpu"]
    gas = values.get("gradient_accumulation_steps", 1)
    if tbs is not None and section(cfg, "tensor_parallel").get("autotp_size", 0) > 1:
        out.append("with AutoTP DeepSpeed divides train_batch_size by the full world size: give "
                   "micro-batch and gradient_accumulation_steps only (§1.1)")
    elif tbs is not None and dp is not None and tbs != mbs * gas * dp:
        out.append(f"train_batch_size {tbs} != micro-batch {mbs} x accumulation {gas} x data-parallel {dp} (§1.1)")
    return out


def _zero_problems(cfg: dict) -> list[str]:
    """§1.2-1.4 and §1.9: precision modes, ZeRO stage, offload and pipeline combinations."""
    out, stage = [], zero_stage(cfg)
    z = section(cfg, "zero_optimization")
    if stage not in (0, 1, 2, 3):
        out.append(f"zero_optimization.stage must be 0-3, got {stage}")
    if section(cfg, "fp16").get("enabled") and (section(cfg, "bf16") or section(cfg, "bfloat16")).get("enabled"):
        out.append("fp16 and bf16 cannot both be enabled (§1.2)")
    opt, par = section(z, "offload_optimizer"), section(z, "offload_param")
    if par.get("device", "none") != "none" and stage < 3:
        out.append("offload_param needs ZeRO-3 (DeepSpeed ignores it silently below, §1.9)")
    if opt.get("device", "none") != "none" and stage == 0:
        out.append("offload_optimizer needs ZeRO >= 1 (§1.4)")
    for name, sub in (("offload_optimizer", opt), ("offload_param", par)):
        if sub.get("device") == "nvme" and not sub.get("nvme_path"):
            out.append(f"{name} on nvme needs nvme_path (fails at swap init, §1.9)")
    if opt.get("ratio", 1.0) < 1.0 and stage < 3:
        out.append("partial optimizer offload (ratio < 1) needs ZeRO-3 (§1.4)")
    stages = section(cfg, "pipeline").get("stages", 1)
    if isinstance(stages, int) and stages > 1 and stage >= 2:
        out.append("pipeline parallelism needs ZeRO <= 1 (PipelineEngine asserts stage < 2, §1.6)")
    if z.get("compute_grad_norm") is False and stage in (0, 3):
        out.append("compute_grad_norm false is only allowed with ZeRO 1/2 (§1.3)")
    if cfg.get("gradient_allreduce_op") == "sum" and stage == 3:
        out.append("gradient_allreduce_op 'sum' is rejected with ZeRO-3 (§1.7)")
    ac = section(cfg, "activation_checkpointing")
    contiguous_ok = ac.get("partition_activations") and ac.get("number_checkpoints")
    if ac.get("contiguous_memory_optimization") and not contiguous_ok:
        out.append("contiguous_memory_optimization needs partition_activations and number_checkpoints "
                   "(deepspeed.checkpointing.configure asserts it)")
    return out


def _parallel_problems(cfg: dict, kv_heads: int | None) -> list[str]:
    """§1.6 and §1.9: AutoTP degree against the KV heads; AutoEP folded with AutoTP (DeepSpeed 0.19.8
    module_inject/auto_ep_folding.py validate_folding_global: no offload, no pipeline)."""
    out = []
    tp = section(cfg, "tensor_parallel").get("autotp_size", 0) or 1
    if kv_heads is not None and tp > kv_heads:
        out.append(f"autotp_size {tp} exceeds the model's {kv_heads} KV heads (the engine raises, §1.9)")
    ep = section(cfg, "expert_parallel")
    if ep.get("enabled") and tp > 1:
        z = section(cfg, "zero_optimization")
        if any(section(z, k).get("device", "none") != "none" for k in ("offload_optimizer", "offload_param")):
            out.append("AutoEP with AutoTP does not support ZeRO offload in DeepSpeed 0.19.8")
        if isinstance(section(cfg, "pipeline").get("stages"), int) and cfg["pipeline"]["stages"] > 1:
            out.append("AutoEP with AutoTP supports pipeline size 1 only in DeepSpeed 0.19.8")
    return out


def _optimizer_problems(cfg: dict, optimizer: str | None) -> list[str]:
    """§1.7: optimizer and scheduler names (checked only at engine time), ZeRO with an optimizer
    DeepSpeed does not ship, and offloaded states that need one of DeepSpeed's CPU optimizers."""
    out = []
    kind = str(section(cfg, "optimizer").get("type", "")).lower() or None
    if kind is not None and kind not in DS_OPTIMIZERS | TORCH_OPTIMIZERS:
        out.append(f"optimizer type '{kind}' is neither a DeepSpeed nor a torch.optim optimizer (§1.7)")
    sched = section(cfg, "scheduler").get("type")
    if sched is not None and sched not in SCHEDULERS:
        out.append(f"scheduler type '{sched}' is not one of {', '.join(sorted(SCHEDULERS))} (§1.7)")
    if zero_stage(cfg) > 0 and (kind is None or kind not in DS_OPTIMIZERS) \
            and not cfg.get("zero_allow_untested_optimizer"):
        out.append("ZeRO with an optimizer DeepSpeed does not ship needs zero_allow_untested_optimizer (§1.7)")
    offloaded = section(section(cfg, "zero_optimization"), "offload_optimizer").get("device", "none") != "none"
    name = kind or optimizer
    if offloaded and name not in CPU_OFFLOAD_OPTIMIZERS:
        out.append(f"offloaded optimizer states need one of DeepSpeed's CPU optimizers "
                   f"({', '.join(sorted(CPU_OFFLOAD_OPTIMIZERS))}), not {name or 'a client optimizer'}")
    return out
