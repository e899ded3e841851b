"""torchtitan v0.2.2 job config (TOML) for a plan, and the project's check of its parallel layout.

Target: torchtitan tag v0.2.2 (2026-02-20), the last release configured by TOML files; `main`
moved to Python config registries (shared/reference/ecosystem.md section 4.2, recommendation 5).
Keys are those of ecosystem.md 4.2 (torchtitan/config/job_config.py at v0.2.2, commit 73a0e69), every
one listed in torchtitan_keys.json (extracted from that file by benchmarks/torchtitan_keys_extract.py).
FP8 uses the `quantize.linear.float8` model converter and its `[quantize.linear.float8]` section, the
v0.2 naming (v0.1 had a top-level `[float8]` section); runtime.fp8_recipe mxfp8 the torchao MX
converters `quantize.linear.mx` and, for MoE models, `quantize.grouped_mm.mx` (mx_converters).
"""

from __future__ import annotations

import json
from pathlib import Path

from planner.errors import InputError
from planner.frameworks import common, launch, torchtitan_model

TORCHTITAN_VERSION = "v0.2.2"
# JobConfig keys (dotted) with their Literal values, and the model converters, at that tag
KEYS = json.loads((Path(__file__).resolve().parent / "torchtitan_keys.json").read_text(encoding="utf-8"))
CONVERTERS = frozenset(KEYS["converters"])
OPTIMIZERS = {"adamw": "AdamW", "adam": "Adam"}


def model_section(scenario, f: dict) -> tuple[dict, list[str]]:
    """[model]: the family and the flavor that torchtitan_flavor.py registers with the model's exact
    arguments (torchtitan_model.py), and comment lines saying so."""
    fam, _ = torchtitan_model.model_args(scenario.model)
    section = {"name": fam, "flavor": torchtitan_model.FLAVOR}
    if f["precision"] == "fp8":
        section["converters"] = list(_quantize(scenario, f)[0])
    notes = [f"model: flavor '{torchtitan_model.FLAVOR}' of {fam} is registered by {torchtitan_model.MODULE}.py "
             "(imported through experimental.custom_import) with the planned model's exact arguments"]
    return section, notes


# torchtitan v0.2.2 torchtitan/components/quantization/mx.py and docs/mxfp8.md (commit 73a0e69):
# MXLinearConverter swaps every nn.Linear whose dimensions are multiples of 16 for torchao's MXLinear
# except `filter_fqns` (JobConfig default ["output"]: the output layer stays bf16, as the estimate's
# head GEMM); recipe "mxfp8_cublas" (the JobConfig default, cuBLAS MXFP8 GEMMs); the dim-1 cast kernel
# "cuda", which the JobConfig docstring recommends for performance. MXGroupedMMConverter runs the routed
# experts' grouped GEMMs (3-D weights of modules whose name contains "experts", torchtitan's
# GroupedExperts) in MXFP8 (recipe "mxfp8", the only one); without it they stay bf16 while the
# estimate runs every expert GEMM at the MXFP8 rate. Both need compute capability >= 10.0; MXLinear
# asserts that a compiled model runs without tensor parallelism (rules.RUNTIME_RULES). torchao keeps
# no quantised weight or activation between passes and communicates in bf16 (docs/mxfp8.md
# "Composability"), as the estimate counts for torchtitan.
MX_LINEAR = {"recipe_name": "mxfp8_cublas", "mxfp8_dim1_cast_kernel_choice": "cuda", "filter_fqns": ["output"]}
MX_GROUPED = {"recipe_name": "mxfp8", "fqns": ["experts"]}


def _quantize(scenario, f: dict) -> tuple[dict, dict]:
    """({converter: its section} in model.converters order, [quantize] tree) of an fp8 plan under
    runtime.fp8_recipe: delayed/current -> the float8 linear converter with tensorwise scaling, output
    layer excluded; mxfp8 -> the MX converters (MX_LINEAR, and MX_GROUPED for MoE models). NVFP4 has no
    torchtitan converter at v0.2.2 (rules.RUNTIME_RULES keeps such plans out of the search; this refuses
    a result estimated under another runtime)."""
    from planner.frameworks.rules import TT_NO_NVFP4

    recipe = scenario.runtime.fp8_recipe
    if recipe == "nvfp4":
        raise InputError(f"runtime.fp8_recipe nvfp4: {TT_NO_NVFP4}", key="runtime.fp8_recipe")
    if recipe == "mxfp8":
        conv = {"quantize.linear.mx": dict(MX_LINEAR)}
        if scenario.model.moe:
            conv["quantize.grouped_mm.mx"] = dict(MX_GROUPED)
        tree = {"linear": {"mx": conv["quantize.linear.mx"]}}
        if "quantize.grouped_mm.mx" in conv:
            tree["grouped_mm"] = {"mx": conv["quantize.grouped_mm.mx"]}
        return conv, tree
    # No recipe_name: unset is torchao's tensorwise scaling (Float8LinearConfig defaults), the only path
    # that takes the FSDP float8 all-gather; Float8LinearConverter (components/quantization/float8.py at
    # v0.2.2) asserts "using `float8_config.enable_fsdp_float8_all_gather` together with
    # `float8_config.recipe_name` is not supported" (found by benchmarks/torchtitan_parser_check.py).
    fsdp = f["dp"] * f["cp"] > 1
    section = {"enable_fsdp_float8_all_gather": fsdp, "precompute_float8_dynamic_scale_for_fsdp": fsdp,
               "filter_fqns": ["output"]}
    return {"quantize.linear.float8": section}, {"linear": {"float8": section}}


def _pipeline(scenario, f: dict) -> dict:
    """Schedule 1F1B, or Interleaved1F1B for vpp > 1, and the modules of each of the pp x vpp
    stages (`module_fqns_per_model_part`, which replaced split points): the planner's split
    (common.chunk_layer_counts; uneven ones give the first stages one layer more), embedding on the
    first stage, final norm and output on the last. torchtitan runs stage i on rank i mod pp for
    both schedules (torchtitan/distributed/pipeline_parallel.py `pipeline_module_split`, "loop"
    style), the rank-to-chunk assignment the planner models."""
    out = {"pipeline_parallel_degree": f["pp"]}
    if f["pp"] == 1:
        return out
    parts, start = [], 0
    for n in common.chunk_layer_counts(scenario.model.layers, f["pp"], f["vpp"]):
        parts.append([f"layers.{i}" for i in range(start, start + n)])
        start += n
    parts[0].insert(0, "tok_embeddings")
    parts[-1] += ["norm", "output"]
    out.update(pipeline_parallel_schedule="Interleaved1F1B" if f["vpp"] > 1 else "1F1B",
               pipeline_parallel_microbatch_size=f["mbs"], module_fqns_per_model_part=parts)
    return out


def split_notes(scenario, f: dict) -> list[str]:
    """README line for an uneven split: where torchtitan.toml carries it."""
    return ["  torchtitan.toml lists these layers per stage in parallelism.module_fqns_per_model_part",
            "  (stage i runs on pipeline rank i mod pp)."]


def _parallelism(scenario, f: dict) -> dict:
    """[parallelism] (§4.2): FSDP2 over dp (x cp inside torchtitan), TP (async with the overlap the
    time model assumes; async TP needs torch.compile: distributed/tensor_parallel.py maybe_enable_async_tp
    raises without it), PP, CP, EP with the plan's expert TP (etp: tp, or 1 with EP folded over tp)."""
    rt = scenario.runtime
    out = {"data_parallel_replicate_degree": 1, "data_parallel_shard_degree": f["dp"],
           "tensor_parallel_degree": f["tp"],
           "enable_async_tensor_parallel": f["tp"] > 1 and bool(rt.tp_comm_overlap) and bool(rt.compile),
           **_pipeline(scenario, f), "context_parallel_degree": f["cp"], "expert_parallel_degree": f["ep"]}
    if f["ep"] > 1:
        out["expert_tensor_parallel_degree"] = f["etp"]
    return out


def _training(scenario, f: dict) -> dict:
    """[training] (§4.2): local batch per DP rank (with PP the whole step's micro-batches, split into
    pipeline micro-batches of mbs; otherwise mbs, and torchtitan accumulates global / (local x dp)),
    mixed precision (FSDP2 param dtype), CPU offload (parameters and optimizer states together)."""
    if f["precision"] == "fp16":
        raise InputError("torchtitan trains in bf16 or fp32 (training.mixed_precision_param), not fp16",
                         key="plan.precision")
    local = f["mbs"] * f["ga"] if f["pp"] > 1 else f["mbs"]
    return {"local_batch_size": local, "global_batch_size": f["global_batch"],
            "seq_len": scenario.training.seq_len, "max_norm": common.GRAD_CLIP,
            "steps": common.train_steps(scenario, f),
            "mixed_precision_param": "float32" if f["precision"] == "fp32" else "bfloat16",
            "mixed_precision_reduce": "float32", "enable_cpu_offload": f["offload"] == "cpu"}


def torchtitan_config(scenario, plan) -> tuple[dict, list[str]]:
    """(nested sections of the TOML job config, comment lines) for a torchtitan plan."""
    f = common.plan_fields(plan)
    if f["framework"] != "torchtitan":
        raise InputError(f"the plan runs on {f['framework']}, not torchtitan", key="plan.framework")
    opt = OPTIMIZERS.get(scenario.training.optimizer)
    if opt is None:
        raise InputError(f"torchtitan has no {scenario.training.optimizer} optimizer (Adam, AdamW)",
                         key="training.optimizer")
    model, notes = model_section(scenario, f)
    steps = common.train_steps(scenario, f)
    cfg = {"job": {"description": f"planner: {scenario.name}", "dump_folder": "./outputs"},
           "model": model,
           "optimizer": {"name": opt, "lr": common.LR, "beta1": common.BETAS[0], "beta2": common.BETAS[1],
                         "eps": common.EPS, "weight_decay": common.WEIGHT_DECAY},
           "lr_scheduler": {"warmup_steps": common.warmup_steps(steps), "decay_type": "cosine"},
           "training": _training(scenario, f), "parallelism": _parallelism(scenario, f),
           "activation_checkpoint": {"mode": f["recompute"]},
           "experimental": {"custom_import": torchtitan_model.MODULE}}
    if f["recompute"] == "selective":  # op-level: Korthikanti's selective recomputation
        cfg["activation_checkpoint"]["selective_ac_option"] = "op"
    # runtime.compile, as the estimate assumes it (torchtitan's own default is off); float8 / MX casts are
    # fused by it and async TP needs it
    cfg["compile"] = {"enable": bool(scenario.runtime.compile), "components": ["model", "loss"]}
    if f["precision"] == "fp8":
        cfg["quantize"] = _quantize(scenario, f)[1]
    problems = config_problems(cfg, common.gpus(f))
    if problems:
        raise InputError("torchtitan cannot run this plan: " + "; ".join(problems), key="plan")
    return cfg, notes


def config_problems(cfg: dict, world: int) -> list[str]:
    """torchtitan's ParallelDims rule (§4.2): dp_replicate x dp_shard x cp x tp x pp = world, expert
    TP equal to tp or 1, EP inside dp_shard x cp (x tp when etp = 1); the local batch splits into
    pipeline micro-batches; the global batch is a multiple of local batch x data-parallel degree."""
    p, t = cfg["parallelism"], cfg["training"]
    rep, shard, cp, tp, pp = (p["data_parallel_replicate_degree"], p["data_parallel_shard_degree"],
                              p["context_parallel_degree"], p["tensor_parallel_degree"], p["pipeline_parallel_degree"])
    out = []
    if rep * shard * cp * tp * pp != world:
        out.append(f"dp_replicate*dp_shard*cp*tp*pp = {rep}*{shard}*{cp}*{tp}*{pp} != world size {world}")
    ep, etp = p["expert_parallel_degree"], p.get("expert_tensor_parallel_degree", 1)
    if etp not in (1, tp):
        out.append(f"expert_tensor_parallel_degree {etp} must be 1 or tp ({tp})")
    if (shard * cp * (tp if etp == 1 else 1)) % ep:
        out.append(f"expert_parallel_degree {ep} must divide the ranks it borrows from")
    if pp > 1:
        out += _pipeline_problems(p, t)
    if t["global_batch_size"] % (t["local_batch_size"] * rep * shard):
        out.append(f"global_batch_size {t['global_batch_size']} is not a multiple of local batch x dp")
    if cfg["activation_checkpoint"]["mode"] not in ("none", "selective", "full"):
        out.append("activation_checkpoint.mode must be none, selective or full")
    return out + _converter_problems(cfg)


def _converter_problems(cfg: dict) -> list[str]:
    """torchtitan v0.2.2 model converters (components/quantization/): each named converter is registered
    and has its [quantize.<kind>.<type>] section; float8 and mx are not mixed (QuantizationConverter.
    _validate); the float8 FSDP all-gather goes without a recipe_name (float8.py); MXLinear refuses a
    compiled model with tensor parallelism (mx.py)."""
    conv, out = cfg["model"].get("converters", []), []
    for name in conv:
        _, kind, qtype = (name.split(".") + ["", ""])[:3]
        if name not in CONVERTERS:
            out.append(f"model.converters: {name} is not a torchtitan {TORCHTITAN_VERSION} converter")
        elif qtype not in cfg.get("quantize", {}).get(kind, {}):
            out.append(f"the {name} converter needs its [{name}] section")
    if len({n.split(".")[-1] for n in conv if n.startswith("quantize.")}) > 1:
        out.append("float8 and mx converters cannot be combined")
    float8 = cfg.get("quantize", {}).get("linear", {}).get("float8", {})
    if float8.get("recipe_name") is not None and float8.get("enable_fsdp_float8_all_gather"):
        out.append("quantize.linear.float8: enable_fsdp_float8_all_gather cannot go with a recipe_name "
                   "(Float8LinearConverter asserts it; leave recipe_name unset for tensorwise scaling)")
    compiled = cfg.get("compile", {}).get("enable") and "model" in cfg.get("compile", {}).get("components", [])
    if "quantize.linear.mx" in conv and compiled and cfg["parallelism"]["tensor_parallel_degree"] > 1:
        out.append("MXFP8 linear layers do not run with tensor parallelism under torch.compile")
    return out


def _pipeline_problems(p: dict, t: dict) -> list[str]:
    """The local batch splits into pipeline micro-batches; the stages are a multiple of pp, one per
    rank for 1F1B and at least two per rank for interleaving; every layer is on exactly one stage and
    the stages, read in order, hold layers 0, 1, 2, ... (a stage may hold more layers than another)."""
    out, pp, parts = [], p["pipeline_parallel_degree"], p.get("module_fqns_per_model_part", [])
    if t["local_batch_size"] % p["pipeline_parallel_microbatch_size"]:
        out.append("local_batch_size is not a multiple of pipeline_parallel_microbatch_size")
    per_rank = len(parts) // pp
    if len(parts) % pp or per_rank != 1 and p["pipeline_parallel_schedule"] == "1F1B" or \
            per_rank < 2 and p["pipeline_parallel_schedule"] != "1F1B":
        out.append(f"{len(parts)} stages do not fit schedule {p['pipeline_parallel_schedule']} on {pp} ranks")
    layers = [m for part in parts for m in part if m.startswith("layers.")]
    if layers != [f"layers.{i}" for i in range(len(layers))]:  # stage by stage, so unsorted
        out.append("module_fqns_per_model_part must hold every layer once, in order")
    return out


def _toml_string(text: str) -> str:
    """A TOML basic string (TOML 1.0, "String"): backslash, quote and every control character
    escaped, so no value can end the string or the line."""
    short = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
    return '"' + "".join(short.get(c) or (f"\\u{ord(c):04X}" if ord(c) < 0x20 or ord(c) == 0x7F else c)
                         for c in text) + '"'


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return _toml_string(v)
    return "[" + ", ".join(_toml_value(x) for x in v) + "]"


def to_toml(cfg: dict, comments: list[str] | None = None) -> str:
    """TOML text of nested sections (tables of scalars and lists; nested tables become dotted
    headers such as [quantize.linear.float8])."""
    lines = launch.comment_lines(comments or [])

    def table(prefix: str, d: dict):
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        if scalars:
            lines.extend(["", f"[{prefix}]", *(f"{k} = {_toml_value(v)}" for k, v in scalars.items())])
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}", v)

    for name, section in cfg.items():
        table(name, section)
    return "\n".join(lines).lstrip("\n") + "\n"
