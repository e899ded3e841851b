"""Developer cross-check: the Megatron-LM arguments the planner emits, fed to Megatron-LM's OWN parser.

The project checks megatron_args.txt with its re-implementation of Megatron's rules
(planner/frameworks/megatron.py args_problems). This script runs the real thing instead, on CPU
(shared/reference/ecosystem.md section 2.3): for each case it splits the emitted megatron_args.txt on
whitespace as launch.sh does, appends launch.sh's default DATA_ARGS, sets the environment launch.sh
exports plus WORLD_SIZE = the plan's GPUs, and calls, as pretrain_gpt.py does,
  megatron.training.arguments.parse_args() -> validate_args(args, {'tokenizer_type': ...})
  -> init_num_microbatches_calculator (set_global_variables) -> gpt_config_from_args
     (core_transformer_config_from_args: TransformerConfig.__post_init__) -> pretrain_cfg_container_from_args
  -> parallel_state.initialize_model_parallel (as megatron/training/initialize.py, on torch's fake process group),
then compares what Megatron derived (data-parallel size, virtual stages, expert tensor parallel size,
sequence parallelism, number of micro-batches, expert data-parallel size) with the plan. Any exception or
mismatch is recorded.

It is NOT part of the test suite or CI and ships no third-party code: it needs a Megatron-LM checkout
and a Python with torch (CPU), triton, einops, numpy, packaging, pyyaml:
  python -m venv VENV && VENV/bin/pip install torch==2.13.0 && VENV/bin/pip install triton einops numpy pyyaml
  python benchmarks/megatron_parser_check.py --megatron MEGATRON_LM_CHECKOUT --python VENV/bin/python
(the cases are built with this interpreter, which has the planner's dependencies; the worker runs
under --python with PYTHONPATH=the checkout). Results: benchmarks/megatron_parser_results.md, section
"Megatron-LM" (benchmarks/torchtitan_parser_check.py writes the "torchtitan" one).

What cannot run on CPU is replaced, and said in the results file: typing.override (Megatron main needs
Python 3.12), get_device_arch_version (the plan's GPU compute capability major) and the Transformer Engine
version (TE_VERSION: Transformer Engine is not installed here; validate_args gates recipes on it).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "megatron_parser_results.md"
# launch.sh's default data arguments (planner/export.py MEGATRON_PROGRAM: ${DATA_ARGS:-...})
DATA_ARGS = "--mock-data --tokenizer-type NullTokenizer"
# Transformer Engine version assumed in place of an install: the highest minimum validate_args asks for at
# Megatron-LM d98e8a6 (megatron/training/arguments.py, is_te_min_version("2.10.0")).
TE_VERSION = "2.10.0"
# pretrain_gpt.py's args_defaults at d98e8a6
ARGS_DEFAULTS = {"tokenizer_type": "GPT2BPETokenizer"}
# Top plans per scenario taken from the search (what `solve --emit` writes as rank1..rankN).
TOP = 3


# ----------------------------------------------------------------------------- cases (planner side)

def _case(name: str, source: str, sc, result: dict) -> dict:
    """One case from a contract result: the files `solve --emit` / `export` write for it."""
    from planner.errors import InputError
    from planner.export import build_files
    from planner.frameworks import common, launch

    f = common.plan_fields(result["plan"])
    base = {"name": name, "source": source, "plan": common.plan_text(f), "world": common.gpus(f),
            "dp": f["dp"], "vpp": f["vpp"], "etp": f["etp"], "sp": bool(f["sp"]), "ga": f["ga"],
            "edp": common.gpus(f) // (f["etp"] * f["ep"] * f["pp"]),
            "arch": _capability(sc.cluster.node.gpu.compute_capability)}
    try:
        files = build_files(sc, result)
    except InputError as exc:
        return {**base, "refused": exc.message}
    return {**base, "args": files["megatron_args.txt"], "env": launch.environment(f, sc.runtime)}


def _capability(cc) -> list[int]:
    """(major, minor) of the GPU catalog's compute capability (9.0 -> [9, 0]); Hopper where unknown."""
    major, _, minor = f"{cc or 9.0:.1f}".partition(".")
    return [int(major), int(minor)]


def _megatron_only(sc):
    return sc.model_copy(update={"search": sc.search.model_copy(update={"frameworks": ["megatron"]})})


def solved_cases() -> list[dict]:
    """The top TOP Megatron plans of every shipped training scenario (scenarios/, benchmarks/scenarios/)."""
    import yaml

    from planner import load_scenario, solve

    out = []
    for path in sorted([*(ROOT / "scenarios").glob("*.yaml"), *(HERE / "scenarios").glob("*.yaml")]):
        data = yaml.safe_load(path.read_text()) or {}
        if "model" not in data or "workload" in data or "serve" in path.stem:
            continue
        sc = _megatron_only(load_scenario(path))
        for rank, r in enumerate(solve(sc, top=TOP)["plans"], start=1):
            out.append(_case(f"{path.parent.name}/{path.stem} rank{rank}", "solve", sc, r))
    return out


def _with(sc, model=None, **runtime):
    upd = {"runtime": sc.runtime.model_copy(update=runtime)} if runtime else {}
    if model is not None:
        from planner import catalog

        upd["model"] = catalog.model(model) if isinstance(model, str) else model
    return sc.model_copy(update=upd)


# (name, scenario file, model override or None, runtime overrides, plan text): features the search
# ranking may not reach. Each plan is resolved against its scenario and estimated (`planner estimate`).
PICKED = [
    ("dense gqa tp8 pp2 vpp2 selective", "scenarios/70b_64gpu.yaml", None, {},
     "framework=megatron,precision=bf16,tp=8,pp=2,vpp=2,mbs=1,zero=1,recompute=selective"),
    ("dense full recompute uniform", "scenarios/70b_64gpu.yaml", None, {},
     "framework=megatron,precision=bf16,tp=8,pp=4,mbs=1,zero=1,recompute=full"),
    ("dense full recompute block 2", "scenarios/70b_64gpu.yaml", None, {"recompute_num_layers": 2},
     "framework=megatron,precision=bf16,tp=8,pp=4,mbs=1,zero=1,recompute=full"),
    ("dense cp4 tp4", "scenarios/long_context_128k.yaml", None, {},
     "framework=megatron,precision=bf16,tp=4,cp=4,mbs=1,zero=1,recompute=selective"),
    ("dense cp2 allgather", "scenarios/long_context_128k.yaml", None, {"cp_comm": "allgather"},
     "framework=megatron,precision=bf16,tp=8,cp=2,mbs=1,zero=1,recompute=full"),
    ("dense uneven pp8 (126 layers) layout", "scenarios/405b_16k.yaml", None, {},
     "framework=megatron,precision=bf16,tp=8,pp=8,mbs=1,zero=1,recompute=full"),
    ("dense uneven pp16 vpp2 (126 layers) layout", "scenarios/405b_16k.yaml", None, {},
     "framework=megatron,precision=bf16,tp=8,pp=16,vpp=2,mbs=1,zero=1,recompute=full"),
    ("dense pp4 account embedding+loss", "scenarios/70b_64gpu.yaml", None,
     {"account_for_embedding_in_pipeline_split": True, "account_for_loss_in_pipeline_split": True},
     "framework=megatron,precision=bf16,tp=8,pp=2,mbs=1,zero=1,recompute=full"),
    ("megatron-fsdp zero3 bf16", "scenarios/32b_16gpu.yaml", None, {},
     "framework=megatron,precision=bf16,dp=16,zero=3,mbs=1,recompute=full"),
    ("megatron-fsdp zero3 fp8 tp2", "scenarios/32b_16gpu.yaml", None, {"keep_fp8_transpose_cache": True},
     "framework=megatron,precision=fp8,tp=2,dp=8,zero=3,mbs=1,recompute=selective"),
    ("fp8 delayed", "scenarios/32b_16gpu.yaml", None, {"fp8_recipe": "delayed"},
     "framework=megatron,precision=fp8,tp=2,dp=8,zero=1,mbs=1,recompute=selective"),
    ("fp8 tensorwise (current) + param gather", "scenarios/32b_16gpu.yaml", None,
     {"fp8_recipe": "current", "fp8_param_gather": True},
     "framework=megatron,precision=fp8,tp=2,dp=8,zero=1,mbs=1,recompute=selective"),
    ("fp8 mxfp8", "scenarios/32b_16gpu.yaml", None, {"fp8_recipe": "mxfp8"},
     "framework=megatron,precision=fp8,tp=2,dp=8,zero=1,mbs=1,recompute=selective"),
    ("nvfp4 + fp4 param gather", "scenarios/32b_16gpu.yaml", None, {"fp8_recipe": "nvfp4", "fp8_param_gather": True},
     "framework=megatron,precision=fp8,tp=2,dp=8,zero=1,mbs=1,recompute=selective"),
    ("fp16", "scenarios/32b_16gpu.yaml", None, {},
     "framework=megatron,precision=fp16,tp=2,dp=8,zero=1,mbs=1,recompute=selective"),
    ("cpu optimizer offload", "scenarios/70b_offload_1node.yaml", None, {},
     "framework=megatron,precision=bf16,tp=8,zero=1,offload=cpu,mbs=1,recompute=full"),
    ("activation offload", "scenarios/32b_16gpu.yaml", None, {"activation_offload_layers": 8},
     "framework=megatron,precision=bf16,tp=4,dp=4,zero=1,mbs=1,recompute=none"),
    ("cuda graphs transformer_engine", "scenarios/32b_16gpu.yaml", None, {"cuda_graph_impl": "transformer_engine"},
     "framework=megatron,precision=bf16,tp=4,dp=4,zero=1,mbs=1,recompute=none"),
    ("cuda graphs local full_iteration", "scenarios/32b_16gpu.yaml", None,
     {"cuda_graph_impl": "local", "cuda_graph_scope": ["full_iteration"]},
     "framework=megatron,precision=bf16,tp=4,dp=4,zero=1,mbs=1,recompute=none"),
    ("moe mixtral ep8 alltoall", "scenarios/mixtral_64gpu.yaml", None, {},
     "framework=megatron,precision=bf16,tp=2,ep=8,dp=32,zero=1,mbs=1,recompute=selective"),
    ("moe folding etp1 ep16 tp2", "scenarios/mixtral_64gpu.yaml", "qwen3-30b-a3b", {},
     "framework=megatron,precision=bf16,tp=2,ep=16,etp=1,dp=32,zero=1,mbs=1,recompute=selective"),
    ("moe ep8 pp2 vpp deepep + ep overlap", "scenarios/qwen3_moe_16gpu.yaml", None,
     {"moe_dispatcher": "deepep", "ep_comm_overlap": True},
     "framework=megatron,precision=bf16,pp=2,vpp=2,ep=8,dp=8,zero=1,mbs=1,recompute=none"),
    ("moe hybridep", "scenarios/qwen3_moe_16gpu.yaml", None, {"moe_dispatcher": "hybridep"},
     "framework=megatron,precision=bf16,ep=8,dp=16,zero=1,mbs=1,recompute=selective"),
    ("moe recompute modules moe_act+layernorm", "scenarios/qwen3_moe_16gpu.yaml", None,
     {"recompute_modules": ["moe_act", "layernorm"]},
     "framework=megatron,precision=bf16,ep=8,dp=16,zero=1,mbs=1,recompute=selective"),
    ("moe fp8 megatron-fsdp ep8", "scenarios/qwen3_moe_16gpu.yaml", None, {},
     "framework=megatron,precision=fp8,ep=8,dp=16,zero=3,mbs=1,recompute=none"),
    ("gpt-oss-120b sliding window + sinks, etp1", "scenarios/mixtral_64gpu.yaml", "gpt-oss-120b", {},
     "framework=megatron,precision=bf16,tp=2,ep=8,etp=1,dp=32,zero=1,mbs=1,recompute=selective"),
    ("gpt-oss-120b etp2 (expert biases: must be refused)", "scenarios/mixtral_64gpu.yaml", "gpt-oss-120b", {},
     "framework=megatron,precision=bf16,tp=2,ep=8,etp=2,dp=32,zero=1,mbs=1,recompute=selective"),
    ("gpt-oss-20b cp2 (window -> all_gather), etp1", "scenarios/mixtral_64gpu.yaml", "gpt-oss-20b", {},
     "framework=megatron,precision=bf16,tp=2,cp=2,ep=8,etp=1,dp=16,zero=1,mbs=1,recompute=selective"),
    ("deepseek-v3 mla mtp pp16 ep8", "benchmarks/scenarios/dsv3_2048_h100.yaml", None, {},
     "framework=megatron,precision=bf16,tp=2,pp=16,ep=64,dp=64,zero=1,mbs=1,recompute=full"),
    ("deepseek-v3 fp8 tensorwise, mla_up_proj+moe_act+layernorm recompute", "benchmarks/scenarios/dsv3_2048_h100.yaml",
     None, {"recompute_modules": ["mla_up_proj", "moe_act", "layernorm"], "fp8_recipe": "current"},
     "framework=megatron,precision=fp8,tp=1,pp=16,ep=32,etp=1,dp=128,zero=1,mbs=1,recompute=selective"),
    ("deepseek-v3 fp8 delayed + moe_act recompute (must be refused)", "benchmarks/scenarios/dsv3_2048_h100.yaml",
     None, {"recompute_modules": ["mla_up_proj", "moe_act", "layernorm"], "fp8_recipe": "delayed"},
     "framework=megatron,precision=fp8,tp=1,pp=16,ep=32,etp=1,dp=128,zero=1,mbs=1,recompute=selective"),
    ("deepseek-v3 folding tp2 ep64 etp1 pp8 (EP across tp x dp)", "benchmarks/scenarios/dsv3_2048_h100.yaml", None, {},
     "framework=megatron,precision=bf16,tp=2,pp=8,ep=64,etp=1,dp=128,zero=1,mbs=1,recompute=full"),
    ("deepseek-v2-lite mla no q-lora", "scenarios/qwen3_moe_16gpu.yaml", "deepseek-v2-lite", {},
     "framework=megatron,precision=bf16,ep=8,dp=16,zero=1,mbs=1,recompute=selective"),
    ("qwen2.5-7b qkv bias", "scenarios/32b_16gpu.yaml", "qwen2.5-7b", {},
     "framework=megatron,precision=bf16,tp=2,dp=8,zero=1,mbs=1,recompute=selective"),
    ("gpt3-175b learned pos, biases", "scenarios/70b_64gpu.yaml", "gpt3-175b", {},
     "framework=megatron,precision=bf16,tp=8,pp=8,mbs=1,zero=1,recompute=full"),
]


def picked_cases(picked=None, scenario=None, case=None) -> list[dict]:
    """The hand-picked plans (PICKED here; torchtitan_parser_check passes its own list, scenario reader
    and case builder), each built as `planner estimate` builds it, or the refusal's message."""
    from planner import load_scenario
    from planner.errors import InputError
    from planner.export import plan_result
    from planner.spec import parse_plan

    scenario = scenario or (lambda path: load_scenario(ROOT / path))
    case = case or _case
    out = []
    for name, path, model, runtime, text in picked or PICKED:
        sc = _with(scenario(path), model, **runtime)
        try:
            result = plan_result(sc, parse_plan(text).resolved(sc))
        except InputError as exc:
            out.append({"name": name, "source": "picked", "plan": text, "refused": exc.message})
            continue
        out.append(case(name, "picked", sc, result))
    return out


def run_cases() -> list[dict]:
    """Megatron-framework runs of the calibration files (benchmarks/accuracy.py's list: shared
    calibration + recipe_runs.yaml + memory_runs.yaml), built as `planner estimate` sees them."""
    sys.path.insert(0, str(HERE))
    import accuracy
    import calibration_runs

    from planner.errors import InputError
    from planner.export import plan_result

    files = accuracy.default_files(accuracy.DEFAULT_DIR) + [p for p in accuracy.RECIPE_FILES if p.exists()]
    out = []
    for run, file in accuracy.training_runs(files):
        legacy = file == "published_runs.yaml"  # the older Megatron runs: accuracy.py's own builder
        if not legacy and calibration_runs.framework_of(run) != "megatron":
            continue
        name = f"{file}:{run['id']}"
        try:
            sc, plan, _, _ = accuracy.legacy_scenario(run) if legacy else calibration_runs.build(run)
            result = plan_result(sc, plan.resolved(sc))
        except (InputError, ValueError) as exc:
            out.append({"name": name, "source": "run", "plan": "", "refused": str(getattr(exc, "message", exc))})
            continue
        out.append(_case(name, "run", sc, result))
    return out


# ----------------------------------------------------------------------------- worker (Megatron side)

def _check_one(case: dict, A, AU, nmc, torch) -> dict:
    """Megatron's parse -> validate -> microbatches -> configs on one case; the outcome and, when it
    parses, what Megatron derived that differs from the plan."""
    argv = ["pretrain_gpt.py", *case["args"].split(), *DATA_ARGS.split()]
    env = {"WORLD_SIZE": str(case["world"]), "RANK": "0", **case["env"]}
    saved = {k: os.environ.get(k) for k in [*env, "CUDA_DEVICE_MAX_CONNECTIONS", "NCCL_GRAPH_REGISTER",
                                            "PYTORCH_CUDA_ALLOC_CONF"]}
    for k in saved:
        os.environ.pop(k, None)
    os.environ.update(env)
    A.get_device_arch_version = lambda: case["arch"][0]
    torch.cuda.get_device_capability = lambda *_, **__: tuple(case["arch"])
    sys.argv, stage, err = argv, "parse_args", io.StringIO()
    out: dict = {"stage": None, "error": None, "warnings": [], "mismatch": []}
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            args = A.parse_args()
            stage = "validate_args"
            A.validate_args(args, dict(ARGS_DEFAULTS))
            stage = "num_microbatches"
            nmc.unset_num_microbatches_calculator()
            nmc.init_num_microbatches_calculator(
                rank=0, global_batch_size=args.global_batch_size, micro_batch_size=args.micro_batch_size,
                data_parallel_size=args.data_parallel_size * args.gtp_weight_remat_size,
                decrease_batch_size_if_needed=args.decrease_batch_size_if_needed,
                step_batch_size_schedule=args.step_batch_size_schedule, seq_length=args.seq_length)
            stage = "gpt_config_from_args"
            model_cfg = AU.gpt_config_from_args(args)
            stage = "pretrain_cfg_container_from_args"
            AU.pretrain_cfg_container_from_args(args, model_cfg)
            stage = "initialize_model_parallel"
            edp = _model_parallel_groups(args, case["world"])
            stage = "done"
        derived = {"dp": args.data_parallel_size, "vpp": args.virtual_pipeline_model_parallel_size or 1,
                   "etp": args.expert_tensor_parallel_size, "sp": bool(args.sequence_parallel),
                   "ga": nmc.get_num_microbatches(), "edp": edp}
        out["mismatch"] = [f"{k}: plan {case[k]}, Megatron {v}" for k, v in derived.items() if case[k] != v]
        out["warnings"] = sorted({str(w.message).strip().splitlines()[0][:200] for w in caught
                                  if not _noise(str(w.message))})
    except BaseException as exc:  # argparse exits with SystemExit(2), its message on stderr
        msg = err.getvalue().strip().splitlines()[-1] if isinstance(exc, SystemExit) and err.getvalue() else str(exc)
        out["error"] = f"{type(exc).__name__}: {msg}".strip()[:600]
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v
    out["stage"] = stage
    return out


def _model_parallel_groups(args, world: int) -> int:
    """Megatron-Core's process groups for the validated arguments, as megatron/training/initialize.py
    builds them (parallel_state.initialize_model_parallel, same keywords), on torch's fake process group
    of `world` ranks seen from rank 0: the rank grids and their divisibility checks (expert grid
    etp x ep x pp, parallel folding). Gloo groups are not made (the fake backend cannot), nor the NCCL
    high-priority stream options validate_args asks for on Blackwell with FSDP (a CPU torch has no
    ProcessGroupNCCL). Returns the expert data-parallel size."""
    import torch.distributed as dist
    from torch.testing._internal.distributed.fake_pg import FakeStore

    import megatron.core.parallel_state as ps

    dist.init_process_group("fake", rank=0, world_size=world, store=FakeStore())
    try:
        ps.initialize_model_parallel(
            args.tensor_model_parallel_size, args.pipeline_model_parallel_size,
            args.virtual_pipeline_model_parallel_size,
            pipeline_model_parallel_comm_backend=args.pipeline_model_parallel_comm_backend,
            use_sharp=args.use_sharp, gtp_remat_size=args.gtp_weight_remat_size,
            expert_gtp_remat_size=args.expert_gtp_weight_remat_size,
            context_parallel_size=args.context_parallel_size,
            hierarchical_context_parallel_sizes=args.hierarchical_context_parallel_sizes,
            hybrid_context_parallel=args.hybrid_context_parallel,
            expert_model_parallel_size=args.expert_model_parallel_size,
            num_distributed_optimizer_instances=args.num_distributed_optimizer_instances,
            expert_tensor_parallel_size=args.expert_tensor_parallel_size,
            distributed_timeout_minutes=args.distributed_timeout_minutes,
            nccl_communicator_config_path=args.nccl_communicator_config_path,
            order="tp-cp-ep-dp-pp" if not args.use_tp_pp_dp_mapping else "tp-cp-ep-pp-dp",
            create_gloo_process_groups=False,
            high_priority_stream_groups=[],  # NCCL stream options: the CPU build of torch has no ProcessGroupNCCL
            sharp_enabled_group=args.sharp_enabled_group)
        return ps.get_expert_data_parallel_world_size()
    finally:
        ps.destroy_model_parallel()
        dist.destroy_process_group()


def _te_stand_in(*_, **__):
    raise RuntimeError("Transformer Engine stand-in: not callable in the parser check")


NOISE = ("not installed", "Falling back", "transformer-engine>=", "absl", "Overriding default arguments for "
         "tokenizer_type", "NumPy")


def _noise(message: str) -> bool:
    """Warnings about this CPU environment (no Transformer Engine / Apex / absl), not about the arguments."""
    return any(n in message for n in NOISE)


def worker(cases_path: str, out_path: str) -> None:
    """Runs under the Megatron Python: every case of cases_path, results to out_path (JSON)."""
    import typing

    if not hasattr(typing, "override"):  # Megatron-LM main needs Python 3.12's typing.override
        typing.override = lambda f: f
    import logging

    logging.disable(logging.INFO)  # Megatron's per-case INFO lines (micro-batch counts)
    os.environ.setdefault("CUDA_DEVICE_MAX_CONNECTIONS", "1")  # only for the imports; each case sets its own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from packaging.version import Version

        import megatron.core.utils as core_utils
        core_utils._te_version = Version(TE_VERSION)
        import megatron.core.num_microbatches_calculator as nmc
        import megatron.training.argument_utils as AU
        import megatron.training.arguments as A
        import torch
        import megatron.core.models.common.embeddings.rope_utils as rope_utils
    # Transformer Engine's fused RoPE (TransformerConfig.__post_init__ requires it with apply_rope_fusion,
    # on by default): a stand-in, since TE is not installed here; nothing calls it.
    rope_utils.fused_apply_rotary_pos_emb = rope_utils.fused_apply_rotary_pos_emb or _te_stand_in
    cases = json.loads(Path(cases_path).read_text())
    results = []
    for case in cases:
        t0 = time.perf_counter()
        r = _check_one(case, A, AU, nmc, torch) if "args" in case else {}
        results.append({**r, "seconds": round(time.perf_counter() - t0, 3)})
    Path(out_path).write_text(json.dumps({"torch": torch.__version__, "te_assumed": TE_VERSION,
                                          "python": sys.version.split()[0], "results": results}))


# ----------------------------------------------------------------------------- report

def _commit(checkout: Path, name: str = "MEGATRON_COMMIT") -> str:
    """The checkout's commit: a file `name` in it (for a `git archive` tree), else git's HEAD."""
    if (checkout / name).exists():
        return (checkout / name).read_text().strip()
    try:
        return subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def outcome(case: dict, r: dict) -> str:
    if "refused" in case:
        return "refused by the planner's export: " + case["refused"]
    if r.get("error"):
        return f"FAIL at {r['stage']}: {r['error']}"
    if r.get("mismatch"):
        return "MISMATCH: " + "; ".join(r["mismatch"])
    return "pass"


def _kind(text: str) -> str:
    return "pass" if text == "pass" else "refused" if text.startswith("refused") else \
        "mismatch" if text.startswith("MISMATCH") else "fail"


def results_section(cases: list[dict], results: list[dict], head: list[str]) -> str:
    """A results section: the run's description, the tally, one table row per case."""
    outs = [outcome(c, r) for c, r in zip(cases, results)]
    n = {k: sum(_kind(o) == k for o in outs) for k in ("pass", "fail", "mismatch", "refused")}
    lines = head + ["", f"**{len(cases)} cases: {n['pass']} pass, {n['fail']} fail, {n['mismatch']} mismatch, "
                        f"{n['refused']} refused by the planner's own checks.**", "",
                    "| case | source | GPUs | plan | outcome | warnings |", "|---|---|---|---|---|---|"]
    for c, r, o in zip(cases, results, outs):
        warn = "<br>".join(w.replace("|", "/") for w in r.get("warnings", [])[:3])
        lines.append(f"| {c['name']} | {c['source']} | {c.get('world', '')} | `{c['plan']}` | "
                     f"{o.replace('|', '/')} | {warn} |")
    return "\n".join(lines) + "\n"


TITLE = "# Emitted framework files through the frameworks' own parsers"


def write_section(path: Path, title: str, text: str) -> None:
    """Replace (or append) the `## title` section of the results file, keeping the other sections."""
    old = path.read_text() if path.exists() else TITLE + "\n\nWritten by benchmarks/megatron_parser_check.py and " \
        "benchmarks/torchtitan_parser_check.py (developer cross-checks, not part of the tests).\n"
    marker = f"\n## {title}\n"
    if marker in old:
        before, rest = old.split(marker, 1)
        after = rest[rest.index("\n## "):] if "\n## " in rest else ""
    else:
        before, after = old.rstrip("\n") + "\n", ""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(before + marker + "\n" + text + after)
    os.replace(tmp, path)


def section(cases: list[dict], meta: dict, commit: str) -> str:
    head = [
        f"Megatron-LM commit `{commit}` (the commit planner/frameworks/megatron.py names), torch "
        f"{meta['torch']}, Python {meta['python']}; Transformer Engine not installed: its version taken as "
        f"{meta['te_assumed']} and its fused RoPE replaced by a stand-in; device arch and "
        "torch.cuda.get_device_capability = the plan's GPU compute capability.",
        "Per case: parse_args -> validate_args -> init_num_microbatches_calculator -> gpt_config_from_args "
        "(core_transformer_config_from_args) -> pretrain_cfg_container_from_args -> "
        "parallel_state.initialize_model_parallel (torch's fake process group; no gloo groups, no NCCL "
        "high-priority stream options), with WORLD_SIZE = "
        "the plan's GPUs, launch.sh's environment and its default DATA_ARGS; then Megatron's derived dp / vpp / "
        "etp / sequence parallel / micro-batches / expert data-parallel size compared with the plan. "
        "Warnings: Megatron's own, those about this CPU environment left out.",
    ]
    return results_section(cases, meta["results"], head)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", nargs=2, metavar=("CASES", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--megatron", type=Path, default=os.environ.get("MEGATRON_LM"),
                    help="Megatron-LM checkout (default $MEGATRON_LM)")
    ap.add_argument("--python", default=os.environ.get("MEGATRON_PYTHON"),
                    help="Python with torch/triton/einops (default $MEGATRON_PYTHON)")
    ap.add_argument("--only", choices=["solve", "picked", "run"], action="append",
                    help="case sources to run (default all)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    if a.worker:
        worker(*a.worker)
        return 0
    if not a.megatron or not a.python:
        ap.error("--megatron and --python are required (or MEGATRON_LM / MEGATRON_PYTHON)")
    sys.path.insert(0, str(ROOT))
    only = a.only or ["solve", "picked", "run"]
    builders = {"solve": solved_cases, "picked": picked_cases, "run": run_cases}
    cases = [c for k in only for c in builders[k]()]
    with tempfile.TemporaryDirectory() as tmp:
        cpath, opath = Path(tmp, "cases.json"), Path(tmp, "out.json")
        cpath.write_text(json.dumps(cases))
        env = {**os.environ, "PYTHONPATH": str(a.megatron.resolve())}
        subprocess.run([a.python, str(Path(__file__).resolve()), "--worker", str(cpath), str(opath)],
                       env=env, check=True, cwd=tmp)
        meta = json.loads(opath.read_text())
    text = section(cases, meta, _commit(a.megatron))
    write_section(a.out, "Megatron-LM", text)
    print(text.splitlines()[3])
    return 0


if __name__ == "__main__":
    sys.exit(main())
