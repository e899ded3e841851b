"""Scenarios of the calibration runs on today's stacks (`modern_runs.yaml` and any later training-run
file of the same schema), built as a new user would: the run's own model shape, a catalog node,
the published plan and a `runtime:` block saying what the stack did.

Every knob the source leaves open is filled with the framework's default and listed in `assumed`,
so that the report shows what the planner was told. The older Megatron runs of
`published_runs.yaml` keep their own builder in accuracy.py (their FLOP conventions differ).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

from planner.arch import flops_per_token
from planner.catalog import model as catalog_model
from planner.catalog import node as catalog_node
from planner.estimate.evaluate import estimate
from planner.spec import Plan
from planner.spec.model import ModelSpec
from planner.spec.scenario import Runtime, Scenario

ERRATA = Path(__file__).resolve().parent / "run_errata.yaml"


class ErrataError(ValueError):
    """A malformed entry of the errata file (its path, the entry and the key are in the message)."""


def load_errata(path: Path | None = None) -> dict[str, dict]:
    """{run id: entry} of `run_errata.yaml`: corrections to runs of the read-only shared calibration
    files, each the setting the run's own recipe at its release tag states (file and line in the
    entry's `source`), where the run file leaves it out or prints another value. Each entry: `id`,
    `source` (text) and `set`, a mapping of dotted keys of the run (e.g. `parallel.micro_batch_size`,
    `model.moe.capacity_factor`) to the recipe's values. No file: no errata. Default path: ERRATA."""
    path = ERRATA if path is None else path
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or []
    if not isinstance(data, list):
        raise ErrataError(f"{path}: expected a list of entries, got {type(data).__name__}")
    out = {}
    for i, e in enumerate(data):
        if not (isinstance(e, dict) and isinstance(e.get("id"), str) and isinstance(e.get("source"), str)
                and isinstance(e.get("set"), dict) and e["set"]):
            raise ErrataError(f"{path}: entry {i}: expected keys id (text), source (text) and set (a non-empty mapping)")
        bad = [k for k in e["set"] if not (isinstance(k, str) and k.split(".")[0] in ("model", "parallel"))]
        if bad:
            raise ErrataError(f"{path}: entry {e['id']}: set key {bad[0]!r}: expected a dotted key under model. or parallel.")
        out[e["id"]] = e
    return out


def _dotted_keys(node: dict, prefix: str = "") -> set[str]:
    """Every dotted key of a nested mapping (`parallel.micro_batch_size`, `model.moe.top_k`)."""
    out = set()
    for k, v in node.items():
        out.add(prefix + str(k))
        if isinstance(v, dict):
            out |= _dotted_keys(v, f"{prefix}{k}.")
    return out


def check_errata(errata: dict[str, dict], runs: list[dict], path: Path | None = None) -> None:
    """Raise ErrataError where an entry's id names none of `runs` (every run of the known run files), a
    key of its `set` is one that no run of them has (a misspelt key would otherwise be set and never
    read), or the key's section is not a mapping of that run (model.moe of a dense run). Default path
    in the message: ERRATA."""
    path = ERRATA if path is None else path
    by_id = {r.get("id"): r for r in runs}
    keys = set().union(*(_dotted_keys({k: r[k] for k in ("model", "parallel") if isinstance(r.get(k), dict)})
                         for r in runs))
    for rid, entry in errata.items():
        if rid not in by_id:
            raise ErrataError(f"{path}: entry {rid}: no run with this id (expected the id of a run of the run files)")
        unknown = [k for k in entry["set"] if k not in keys]
        if unknown:
            raise ErrataError(f"{path}: entry {rid}: set key {unknown[0]!r}: no run file has this key "
                              "(expected a key the run files use, e.g. parallel.micro_batch_size)")
        for key in entry["set"]:
            parent = key.rsplit(".", 1)[0]
            node = by_id[rid]
            for part in parent.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                raise ErrataError(f"{path}: entry {rid}: set key {key!r}: the run has no mapping {parent} "
                                  "(expected a key under a section the run has, e.g. model.moe only for an MoE run)")


def with_errata(run: dict, errata: dict[str, dict]) -> dict:
    """The run with its errata entry applied (a copy; the run itself if it has none): each dotted key
    of the entry's `set` replaced, and the note `errata: <source>` added to the run's notes."""
    entry = errata.get(run.get("id"))
    if entry is None:
        return run
    run = copy.deepcopy(run)
    for key, value in entry["set"].items():
        *path, last = key.split(".")
        node = run
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    run["notes"] = f"{run.get('notes') or ''} errata: {entry['source']}".strip()
    return run


def framework_of(run: dict) -> str:
    """Family name of the stack: megatron (Megatron-LM / Megatron-Core / NeMo / Megatron-Bridge),
    torchtitan, or llm-foundry (Composer + PyTorch FSDP1)."""
    text = str(run["parallel"].get("framework") or "").lower()
    if "torchtitan" in text:
        return "torchtitan"
    if "composer" in text or "foundry" in text:
        return "llm-foundry"
    return "megatron"


def precision_of(run: dict) -> str:
    """fp8 for FP8, MXFP8 and NVFP4 runs (Transformer Engine's quantised GEMMs; NVFP4 is the fp8 plan with
    runtime fp8_recipe nvfp4, runtime_of), else fp16 or bf16."""
    text = str(run["parallel"].get("precision") or "").lower()
    if "fp8" in text or "fp4" in text:
        return "fp8"
    if "fp16" in text and "bf16" not in text:
        return "fp16"
    return "bf16"


def _ffn_act(text: str) -> str:
    """swiglu for any gated FFN (3 matmuls), gelu / relu for the non-gated two-matmul FFN."""
    t = text.lower()
    if "swiglu" in t or "gated" in t and "non-gated" not in t:
        return "swiglu"
    return "relu" if "relu" in t else "gelu"


# torchtitan's benchmark H100s (Meta Grand Teton): "96GB HBM2e with 2.4 TB/sec peak memory bandwidth"
# (pytorch/torchtitan benchmarks/llama3_h100_202412_torchtitan.md, Hardware); the catalog's h100-nvl
# stand-in has HBM3 at 3.9 TB/s.
GRAND_TETON_H100_HBM_TB_S = 2.4


def node_of(run: dict):
    """(catalog node, note). Torchtitan's H100s are the 96 GB HBM2e, 500 W part (run notes: peak
    between SXM and NVL); the catalog's nearest entry with that memory and power class is h100-nvl,
    with the HBM2e bandwidth the source states (GRAND_TETON_H100_HBM_TB_S), placed in a DGX-H100
    node (NVLink4 8-GPU, 400 Gb/s per GPU: the run's stated fabric)."""
    gpu = run["hardware"]["gpu"]
    if "GB300" in gpu:
        return catalog_node("gb300-nvl72"), "gb300-nvl72"
    if "GB200" in gpu:
        return catalog_node("gb200-nvl72"), "gb200-nvl72"
    if "B300" in gpu:
        return catalog_node("hgx-b300"), "hgx-b300"
    if "B200" in gpu:
        return catalog_node("dgx-b200"), "dgx-b200"
    if "A100" in gpu:
        return catalog_node("dgx-a100-80gb"), "dgx-a100-80gb"
    if "H200" in gpu:
        return catalog_node("hgx-h200"), "hgx-h200"
    if "H100" in gpu and "96GB" in gpu.replace(" ", ""):
        nd = catalog_node("dgx-h100")
        from planner.catalog import gpu as catalog_gpu
        g = catalog_gpu("h100-nvl").model_copy(update={"hbm_tb_s": GRAND_TETON_H100_HBM_TB_S})
        return nd.model_copy(update={"gpu": g, "name": "dgx-h100+h100-nvl"}), \
            f"dgx-h100 with h100-nvl (96 GB 500 W part, HBM2e {GRAND_TETON_H100_HBM_TB_S} TB/s)"
    return catalog_node("dgx-h100"), "dgx-h100"


def model_of(run: dict, assumed: list[str]) -> ModelSpec:
    """The run's own shape. Llama-style (RMSNorm, RoPE, untied) unless the name says GPT-3 / MPT /
    Nemotron (LayerNorm); a missing vocabulary comes from the catalog model of the same name. The
    run's model block may state `linear_bias`, `swiglu_limit`, `attention_sinks`, `rope_scaling`,
    `ffn_gate`, `sliding_window` and `sliding_window_layers` (config.json values, e.g. gpt-oss's
    attention_bias, swiglu_limit, sinks, YaRN scaling and layer_types;
    a swiglu_limit without ffn_gate is read as gpt-oss's gate and listed among the assumptions), and
    `mtp_layers` (the MTP modules the run trained, Megatron mtp_num_layers), `position_embedding` (learned: a
    learned absolute table of seq_length rows, Megatron --position-embedding-type learned_absolute; absent = rope) and
    `tie_embeddings` (the output layer shares the input embedding, Megatron/NeMo share_embeddings_and_output_weights;
    absent = untied, except MPT)."""
    m = run["model"]
    name = m["name"]
    low = name.lower()
    gpt_like = any(k in low for k in ("gpt-3", "gpt3", "mpt", "nemotron"))
    vocab = m.get("vocab_size")
    if vocab is None:
        vocab = catalog_model("gpt3-175b").vocab if "gpt" in low else 32000
        assumed.append(f"vocab={vocab}")
    kw = dict(name=name, layers=m["layers"], hidden=m["hidden_size"], heads=m["attention_heads"],
              kv_heads=m.get("kv_heads"), head_dim=m.get("head_dim"), ffn_hidden=m["ffn_hidden_size"],
              ffn_act=_ffn_act(str(m.get("ffn_activation") or "swiglu")), vocab=vocab,
              norm="layernorm" if gpt_like else "rmsnorm", tie_embeddings=bool(m.get("tie_embeddings", "mpt" in low)),
              linear_bias=bool(m.get("linear_bias", "gpt-3" in low or "gpt3" in low)),
              swiglu_limit=m.get("swiglu_limit"), attention_sinks=bool(m.get("attention_sinks", False)),
              rope_scaling=m.get("rope_scaling"), ffn_gate=m.get("ffn_gate", "silu"),
              sliding_window=m.get("sliding_window"), sliding_window_layers=m.get("sliding_window_layers"))
    if m.get("position_embedding") == "learned":  # Megatron --position-embedding-type learned_absolute
        kw.update(position="learned", max_seq_len=m["seq_length"])
    elif m.get("position_embedding") not in (None, "rope"):
        raise ValueError(f"model.position_embedding: expected learned or rope, got {m['position_embedding']!r}")
    if "ffn_gate" not in m and m.get("swiglu_limit") is not None:
        kw["ffn_gate"] = "gpt_oss"  # this format's swiglu_limit is gpt-oss's config.json key; said, not hidden
        assumed.append("ffn_gate=gpt_oss (swiglu_limit given)")
    moe = m.get("moe")
    if moe:
        kw["moe"] = {"experts": moe["num_experts"], "top_k": moe["top_k"],
                     "expert_ffn_hidden": moe["expert_ffn_hidden_size"],
                     "shared_experts": moe.get("shared_experts") or 0,
                     "dense_layers": moe.get("dense_layers") or 0,
                     "router_bias": moe.get("router_score") == "sigmoid",
                     # the run's router score function (HF scoring_func); Megatron builds expert bias with sigmoid only
                     "scoring": "sigmoid" if moe.get("router_score") == "sigmoid" else "softmax"}
        groups, group_topk = moe.get("router_groups"), moe.get("router_group_topk")
        if groups is not None or group_topk is not None:  # Megatron --moe-router-num-groups / -group-topk
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (groups, group_topk)):
                raise ValueError(f"model.moe.router_groups / router_group_topk: expected both, whole numbers >= 1 "
                                 f"(group-limited routing), got {groups!r} / {group_topk!r}")
            kw["moe"].update(groups=groups, group_topk=group_topk)
        if moe.get("capacity_factor"):
            kw["moe"]["capacity_factor"] = moe["capacity_factor"]
    if m.get("mla"):
        kw["mla"] = dict(m["mla"])
        kw["kv_heads"] = kw["head_dim"] = None
    if "qwen3" in low:
        kw["qk_norm"] = True
    if m.get("mtp_layers"):
        # the MTP modules the run trained (Megatron mtp_num_layers), where its source states them; a
        # spec's `mtp_depth` (the architecture's, modern_runs.yaml) says nothing about the run's use of it
        kw["mtp_layers"] = int(m["mtp_layers"])
    return ModelSpec.model_validate(kw)


def _recompute(run: dict, framework: str, assumed: list[str]) -> str:
    text = str(run["parallel"].get("recompute") or "").lower()
    if recompute_num_layers(run) is not None:
        return "full"  # Megatron --recompute-method block (runtime.recompute_num_layers)
    if "full" in text:
        return "full"
    if "selective" in text:
        return "selective"
    if text in ("none", "no"):
        return "none"
    # Megatron-Core: recompute_granularity defaults to None (no recompute); NeMo/Bridge recipes that
    # leave it unset train without recompute.
    assumed.append("recompute=none")
    return "none"


def recompute_num_layers(run: dict) -> int | None:
    """N of a Megatron block recompute (`recompute_num_layers=N` in the run's recompute text, or the
    structured key), else None."""
    p = run["parallel"]
    if p.get("recompute_num_layers") is not None:
        return int(p["recompute_num_layers"])
    m = re.search(r"recompute_num_layers\s*=\s*(\d+)", str(p.get("recompute") or ""))
    return int(m.group(1)) if m else None


def plan_of(run: dict, assumed: list[str]) -> dict:
    """Plan fields exactly as published; dp from GPUs / (tp pp cp) when the source leaves it out."""
    p, n = run["parallel"], run["hardware"]["num_gpus"]
    fw = framework_of(run)
    tp, pp, cp = p.get("tp") or 1, p.get("pp") or 1, p.get("cp") or 1
    dp = p.get("dp") or n // (tp * pp * cp)
    gbs = p["global_batch_size"]
    fsdp = str(p.get("fsdp") or "").lower()
    vpp_assumed = None
    if fw == "megatron":
        # Megatron-FSDP (--use-megatron-fsdp) shards parameters, gradients and optimizer: ZeRO-3;
        # otherwise NeMo / Megatron-Bridge recipes use the distributed optimizer (ZeRO-1).
        zero = 3 if "megatron-fsdp" in fsdp else 1
        mbs = p.get("micro_batch_size") or 1
        ga = gbs // (mbs * dp)
    else:
        zero = 3 if dp * cp > 1 else 0  # FSDP2 / FSDP1 FULL_SHARD
        local = p.get("local_batch_size") or p.get("micro_batch_size") or gbs // dp
        if pp > 1:
            # torchtitan (2024): the local batch is split into `pipeline_parallel_microbatches`
            # micro-batches, by default the PP degree (parallelize: `... or parallel_dims.pp`); an
            # interleaved schedule holds at least 2 stages per rank.
            if "interleaved" in str(p.get("techniques") or "").lower() and not p.get("virtual_pipeline_stages"):
                vpp_assumed = 2
                assumed.append("vpp=2 (interleaved, stages per rank not stated)")
            ga = p.get("grad_accum_steps") or pp
            mbs = max(1, local // ga)
            assumed.append(f"micro-batches={ga} (torchtitan default: the PP degree)")
        else:
            mbs = p.get("micro_batch_size") or local
            ga = gbs // (mbs * dp)
    plan = {"framework": "megatron" if fw == "megatron" else "torchtitan", "precision": precision_of(run),
            "dp": dp, "tp": tp, "pp": pp, "cp": cp, "ep": p.get("ep") or 1,
            "vpp": p.get("virtual_pipeline_stages") or vpp_assumed or 1, "zero": zero,
            "recompute": _recompute(run, fw, assumed), "mbs": mbs, "ga": ga}
    if p.get("etp") and "etp" in Plan.model_fields:
        plan["etp"] = p["etp"]
    if p.get("sequence_parallel") is not None:
        plan["sp"] = bool(p["sequence_parallel"]) and tp > 1
    return plan


def ep_overlap_of(run: dict) -> bool:
    """Megatron-Core's EP all-to-all overlap (--overlap-moe-expert-parallel-comm; Megatron-Bridge
    recipes: moe_a2a_overlap) where the run states it: the structured `parallel.moe_a2a_overlap`
    key of the run files in benchmarks/, else its notes (modern_runs.yaml writes
    'moe_a2a_overlap=True'). A run that does not say ran without it (Megatron-Core's default)."""
    flag = run["parallel"].get("moe_a2a_overlap")
    if flag is not None:
        return bool(flag)
    return "a2a_overlap=true" in str(run.get("notes") or "").lower().replace(" ", "")


def cuda_graphs_of(text) -> dict:
    """runtime.cuda_graph_impl / cuda_graph_scope from a run file's `cuda_graphs` text: 'local
    full_iteration', 'transformer_engine [moe_router, moe_preprocess]' (Megatron-Bridge recipes'
    cuda_graph_impl and scope), or 'cuda_graphs' (the NeMo 25.09 recommended-config column: NeMo
    scripts/performance/helpers.py set_cuda_graph_configs sets enable_cuda_graph, Megatron-Core's local
    implementation over whole layers)."""
    words = str(text or "").replace("[", " ").replace("]", " ").replace(",", " ").split()
    if not words:
        return {}
    if words[0] in ("local", "transformer_engine"):
        return {"cuda_graph_impl": words[0], "cuda_graph_scope": words[1:]}
    return {"cuda_graph_impl": "local", "cuda_graph_scope": []}


def runtime_of(run: dict, framework: str) -> dict:
    """What the stack did, from the run's own text. torchtitan overlaps TP only with async TP
    (`techniques` says AsyncTP); Megatron recipes overlap TP and DP (NeMo/Bridge H100 recipes set
    tp_comm_overlap); MoE all-to-all overlap only where the run says so (moe_a2a_overlap)."""
    p, notes = run["parallel"], str(run.get("notes") or "").lower()
    tech = str(p.get("techniques") or "").lower()
    rt: dict = {"flash_attention": True, "dp_comm_overlap": True,
          "tp_comm_overlap": ("asynctp" in tech.replace(" ", "")) if framework == "torchtitan" else True,
          "ep_comm_overlap": ep_overlap_of(run)}
    prec = str(p.get("precision") or "").lower()
    if "fp8-cs" in prec or "current scaling" in prec or (framework == "torchtitan" and "fp8" in prec):
        rt["fp8_recipe"] = "current"  # FP8-CS recipes; torchao Float8 tensorwise dynamic scaling
    elif "fp8-mx" in prec or "mxfp8" in prec:
        rt["fp8_recipe"] = "mxfp8"  # Megatron-Bridge FP8-MX recipes (MXFP8, 32-element block scales)
    elif "nvfp4" in prec:
        rt["fp8_recipe"] = "nvfp4"  # Megatron-Bridge NVFP4 recipes (bf16_with_nvfp4_mixed: fp4 e2m1, nvfp4)
    fw_text = str(p.get("framework") or "").lower()
    if ("nemo" in fw_text or "bridge" in fw_text) and "grad_reduce_dtype" in Runtime.model_fields:
        rt["grad_reduce_dtype"] = "bf16"  # NeMo / Megatron-Bridge recipes: grad_reduce_in_fp32 = False
        if "fp8" in prec and "fp8_param_gather" in Runtime.model_fields:
            # NeMo 2 bf16_with_fp8_mixed (fp8_params=True) and every Megatron-Bridge FP8 mixed-precision
            # recipe (training/mixed_precision.py: fp8_param_gather = True)
            rt["fp8_param_gather"] = True
    if "bridge" in fw_text and "cross_entropy_impl" in Runtime.model_fields:
        # Megatron-Bridge performance scripts (scripts/performance/utils/overrides.py):
        # cross_entropy_fusion_impl = "te"
        rt["cross_entropy_impl"] = "te"
    if framework == "megatron" and recompute_num_layers(run) is not None and "recompute_num_layers" in Runtime.model_fields:
        rt["recompute_num_layers"] = recompute_num_layers(run)
    # recipe settings a run file states as structured keys (benchmarks/recipe_runs.yaml header)
    for key in ("recompute_modules", "activation_offload_layers", "keep_fp8_transpose_cache", "cross_entropy_impl",
                "expandable_segments", "fp8_param_gather", "moe_dispatcher", "moe_pad_to_capacity",
                "account_for_embedding_in_pipeline_split", "account_for_loss_in_pipeline_split", "pipeline_layout",
                "dp_comm_overlap", "tp_comm_overlap", "fp8_attention", "nccl_min_ctas", "moe_fused_grouped_mlp",
                "moe_expert_rank_capacity_factor"):
        if p.get(key) is not None and key in Runtime.model_fields and framework == "megatron":
            rt[key] = p[key]
    if framework == "megatron" and "bridge" in fw_text and rt.get("moe_dispatcher") == "hybridep" \
            and "moe_hybridep_num_sms" in Runtime.model_fields:
        # Megatron-Bridge performance scripts (scripts/performance/utils/overrides.py at 5776a6d90, v0.3.0 and
        # v0.4.0): moe_hybridep_num_sms = 32 for every HybridEP recipe
        rt["moe_hybridep_num_sms"] = 32
    if framework == "megatron" and "cuda_graph_impl" in Runtime.model_fields:
        rt.update(cuda_graphs_of(p.get("cuda_graphs")))
    if framework != "megatron":
        # torch.compile only where the run says so (torchtitan's and Composer's default is off)
        rt["compile"] = "compile" in tech
    return rt


def optimizer_of(run: dict) -> dict:
    """{"optimizer": name} where the run states the optimizer its recipe trained with (the structured
    `parallel.optimizer` key of the run files in benchmarks/: muon for Megatron-Bridge's dist_muon), else {} (the
    scenario's default, adamw: every other recipe trains with Adam)."""
    name = run["parallel"].get("optimizer")
    return {"optimizer": name} if name is not None else {}


def estimated(run: dict):
    """(scenario, plan resolved against it, catalog node, `planner.estimate` of the plan, published tokens/s per
    GPU) of one run: what the per-run decompositions (moe_layer_times, moe_nvl72_decomposition,
    h100_fp8cs_decomposition) start from."""
    sc, plan, node, _ = build(run)
    plan = plan.resolved(sc)
    return sc, plan, node, estimate(sc, plan), published_tokens(run, sc.model)[0]


def published_tokens(run: dict, spec: ModelSpec) -> tuple[float, str]:
    """Published tokens/s per GPU: as printed, or total / GPUs, or GBS x seq / step time, or from
    TFLOP/s with the source's FLOP convention (non-causal model FLOPs, Megatron before 2025-03)."""
    me, n, p = run["measured"], run["hardware"]["num_gpus"], run["parallel"]
    s = run["model"]["seq_length"]
    if me.get("tokens_per_sec_per_gpu"):
        return float(me["tokens_per_sec_per_gpu"]), "tok/s/GPU"
    if me.get("iteration_time_s"):
        return p["global_batch_size"] * s / me["iteration_time_s"] / n, "s/iter"
    if me.get("tokens_per_sec_total"):
        return me["tokens_per_sec_total"] / n, "tok/s total"
    per_token = flops_per_token(spec, s, causal=False)["training"]
    return me["tflops_per_gpu"] * 1e12 / per_token, "model TFLOP/s (non-causal)"


def build(run: dict):
    """(Scenario, plan dict, node label, assumed list) of one run."""
    assumed: list[str] = []
    spec = model_of(run, assumed)
    node, label = node_of(run)
    plan = plan_of(run, assumed)
    n = run["hardware"]["num_gpus"]
    sc = Scenario.model_validate({
        "name": run["id"], "model": spec, "runtime": runtime_of(run, framework_of(run)),
        "cluster": {"node": node, "nodes": max(1, n // node.gpus_per_node)},
        "training": {"seq_len": run["model"]["seq_length"], "global_batch": run["parallel"]["global_batch_size"],
                     "tokens": 1e9, **optimizer_of(run)}})
    return sc, Plan.model_validate(plan), label, assumed
