"""Developer cross-check: the torchtitan files the planner emits (torchtitan.toml + torchtitan_flavor.py),
read by torchtitan's OWN code at the tag the export names (v0.2.2, commit 73a0e69).

Per case, in a directory holding the emitted files, as torchtitan/train.py does on CPU:
  ConfigManager().parse_args(["--job.config_file", "torchtitan.toml"])     (TOML -> JobConfig, unknown keys refused)
  -> importlib.import_module(experimental.custom_import)                  (registers the planned flavor)
  -> ParallelDims(... world_size = the plan's GPUs) -> build_mesh()        (torch's fake process group)
  -> get_train_spec(model.name).model_args[flavor].update_from_config(job_config)
  -> the model built on the meta device -> build_model_converters(...).convert(model)  (float8 / mx)
  -> model_args.get_nparams_and_flops (its parameter count, compared with the planner's)
  -> the Trainer's batch check (global batch % (local batch x the mesh's batch degree))
  -> with pp > 1, the pipeline checks that need no process group (_pipeline_microbatches).
Any exception, or a parameter count / batch degree / gradient-accumulation count other than the plan's,
is recorded in benchmarks/megatron_parser_results.md (section "torchtitan").

Not part of the tests or CI; ships no third-party code. Needs a torchtitan checkout at the tag and a
Python with torch (CPU), tyro, tokenizers, torchdata, tensorboard, datasets and torchao 0.16.0 (0.17 moved
the MX config torchtitan v0.2.2 imports); torchao 0.16's MoE kernels import under triton 3.6 (not 3.9),
which can come first on PYTHONPATH (the worker keeps it after the checkout):
  pip install --target TRITON36 --no-deps triton==3.6.0
  PYTHONPATH=TRITON36 python benchmarks/torchtitan_parser_check.py --torchtitan CHECKOUT --python VENV/bin/python
What cannot run on CPU is replaced, and said in the results: has_cuda_capability in the quantisation
converters answers for the plan's GPU (catalog compute capability).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
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
sys.path.insert(0, str(HERE))
import megatron_parser_check as mpc  # noqa: E402  (stdlib-only at import: report helpers, case sources)

TOP = mpc.TOP


# ----------------------------------------------------------------------------- cases (planner side)

def _case(name: str, source: str, sc, result: dict) -> dict:
    from planner.arch import model_stats
    from planner.errors import InputError
    from planner.export import build_files
    from planner.frameworks import common

    f = common.plan_fields(result["plan"])
    base = {"name": name, "source": source, "plan": common.plan_text(f), "world": common.gpus(f),
            "batch": f["dp"], "ga": f["ga"], "arch": mpc._capability(sc.cluster.node.gpu.compute_capability),
            "params": model_stats(sc.model).params_total}
    try:
        files = build_files(sc, result)
    except InputError as exc:
        return {**base, "refused": exc.message}
    return {**base, "files": {k: v for k, v in files.items() if k in ("torchtitan.toml", "torchtitan_flavor.py")}}


def solved_cases() -> list[dict]:
    import yaml

    from planner import load_scenario, solve

    out = []
    for path in sorted([*(ROOT / "scenarios").glob("*.yaml"), *(HERE / "scenarios").glob("*.yaml")]):
        data = yaml.safe_load(path.read_text()) or {}
        if "model" not in data or "serve" in path.stem:
            continue
        sc = load_scenario(path)
        sc = sc.model_copy(update={"search": sc.search.model_copy(update={"frameworks": ["torchtitan"]})})
        for rank, r in enumerate(solve(sc, top=TOP)["plans"], start=1):
            out.append(_case(f"{path.parent.name}/{path.stem} rank{rank}", "solve", sc, r))
    return out


PICKED = [
    ("fsdp tp2 selective op", "scenarios/70b_64gpu.yaml", None, {},
     "framework=torchtitan,precision=bf16,tp=2,dp=32,zero=3,mbs=1,recompute=selective"),
    ("fsdp full AC", "scenarios/70b_64gpu.yaml", None, {},
     "framework=torchtitan,precision=bf16,tp=8,dp=8,zero=3,mbs=1,recompute=full"),
    ("pp4 1F1B", "scenarios/70b_64gpu.yaml", None, {},
     "framework=torchtitan,precision=bf16,tp=4,pp=4,dp=4,zero=3,mbs=1,recompute=full"),
    ("pp4 vpp2 interleaved", "scenarios/70b_64gpu.yaml", None, {},
     "framework=torchtitan,precision=bf16,tp=4,pp=4,vpp=2,dp=4,zero=3,mbs=1,recompute=full"),
    ("pp8 uneven (126 layers)", "scenarios/405b_16k.yaml", None, {},
     "framework=torchtitan,precision=bf16,tp=8,pp=8,zero=3,mbs=1,recompute=full"),
    ("cp4", "scenarios/long_context_128k.yaml", None, {},
     "framework=torchtitan,precision=bf16,tp=4,cp=4,dp=2,zero=3,mbs=1,recompute=full"),
    ("fp8 tensorwise (float8 converter)", "scenarios/70b_64gpu.yaml", None, {"fp8_recipe": "current"},
     "framework=torchtitan,precision=fp8,tp=2,dp=32,zero=3,mbs=1,recompute=selective"),
    ("fp8 delayed -> tensorwise", "scenarios/70b_64gpu.yaml", None, {"fp8_recipe": "delayed"},
     "framework=torchtitan,precision=fp8,tp=8,dp=8,zero=3,mbs=1,recompute=full"),
    ("cpu offload", "scenarios/70b_offload_1node.yaml", None, {},
     "framework=torchtitan,precision=bf16,dp=8,zero=3,offload=cpu,offload_params=cpu,mbs=1,recompute=full"),
    ("moe qwen3 ep8", "scenarios/qwen3_moe_16gpu.yaml", None, {},
     "framework=torchtitan,precision=bf16,ep=8,dp=16,zero=3,mbs=1,recompute=full"),
    ("moe qwen3 tp2 ep8 etp1", "scenarios/qwen3_moe_16gpu.yaml", None, {},
     "framework=torchtitan,precision=bf16,tp=2,ep=8,etp=1,dp=8,zero=3,mbs=1,recompute=full"),
    ("moe deepseek-v3 mla pp16 ep64", "benchmarks/scenarios/dsv3_2048_h100.yaml", None, {},
     "framework=torchtitan,precision=bf16,pp=16,ep=64,dp=128,zero=3,mbs=1,recompute=full"),
    ("dense 8b tp8 cp4, no compile", "scenarios/long_context_128k.yaml", "llama-3.1-8b", {"compile": False},
     "framework=torchtitan,precision=bf16,tp=8,cp=4,zero=3,mbs=1,recompute=full"),
    ("mxfp8 on B200 (mx converters), no compile, tp2", "scenarios/70b_64gpu.yaml@dgx-b200", None,
     {"fp8_recipe": "mxfp8", "compile": False},
     "framework=torchtitan,precision=fp8,tp=2,dp=32,zero=3,mbs=1,recompute=full"),
    ("mxfp8 moe on B200 (linear + grouped_mm mx)", "scenarios/qwen3_moe_16gpu.yaml@dgx-b200", None,
     {"fp8_recipe": "mxfp8"}, "framework=torchtitan,precision=fp8,ep=8,dp=16,zero=3,mbs=1,recompute=full"),
]


def _scenario(path: str):
    """A scenario file, or `file@node`: the same scenario on another catalog node type."""
    from planner import catalog, load_scenario

    file, _, node = path.partition("@")
    sc = load_scenario(ROOT / file)
    if node:
        sc = sc.model_copy(update={"cluster": sc.cluster.model_copy(update={"node": catalog.node(node)})})
    return sc


def picked_cases() -> list[dict]:
    """The hand-picked torchtitan plans, built as megatron_parser_check builds its own."""
    return mpc.picked_cases(PICKED, _scenario, _case)


def run_cases() -> list[dict]:
    """torchtitan runs of the calibration files (modern_runs.yaml, memory_runs.yaml), as estimated."""
    import accuracy
    import calibration_runs

    from planner.errors import InputError
    from planner.export import plan_result

    files = accuracy.default_files(accuracy.DEFAULT_DIR) + [p for p in accuracy.RECIPE_FILES if p.exists()]
    out = []
    for run, file in accuracy.training_runs(files):
        if file == "published_runs.yaml" or calibration_runs.framework_of(run) != "torchtitan":
            continue
        name = f"{file}:{run['id']}"
        try:
            sc, plan, _, _ = calibration_runs.build(run)
            result = plan_result(sc, plan.resolved(sc))
        except (InputError, ValueError) as exc:
            out.append({"name": name, "source": "run", "plan": "", "refused": str(getattr(exc, "message", exc))})
            continue
        out.append(_case(name, "run", sc, result))
    return out


# ----------------------------------------------------------------------------- worker (torchtitan side)

def _check_one(case: dict, tmp: Path, mods: dict) -> dict:
    """torchtitan's parse -> flavor -> ParallelDims / mesh -> model args -> meta model -> converters ->
    parameter count -> batch check, in a directory holding the case's files."""
    import torch
    import torch.distributed as dist
    from torch.testing._internal.distributed.fake_pg import FakeStore

    here = tmp / f"case{case['i']}"
    here.mkdir()
    for name, text in case["files"].items():
        (here / name).write_text(text)
    for m in ("float8", "mx"):  # torchtitan/components/quantization/{float8,mx}.py: the plan's GPU
        setattr(mods[m], "has_cuda_capability", lambda major, minor: tuple(case["arch"]) >= (major, minor))
    out: dict = {"stage": None, "error": None, "warnings": [], "mismatch": []}
    stage, cwd = "ConfigManager.parse_args", os.getcwd()
    sys.modules.pop("torchtitan_flavor", None)
    sys.path.insert(0, str(here))
    os.chdir(here)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            jc = mods["ConfigManager"]().parse_args(["--job.config_file", "torchtitan.toml"])
            stage = "custom_import"
            if jc.experimental.custom_import:
                importlib.import_module(jc.experimental.custom_import)
            stage = "ParallelDims"
            p = jc.parallelism
            dims = mods["ParallelDims"](
                dp_shard=p.data_parallel_shard_degree, dp_replicate=p.data_parallel_replicate_degree,
                cp=p.context_parallel_degree, tp=p.tensor_parallel_degree, pp=p.pipeline_parallel_degree,
                ep=p.expert_parallel_degree, etp=p.expert_tensor_parallel_degree, world_size=case["world"])
            stage = "build_mesh"
            dist.init_process_group("fake", rank=0, world_size=case["world"], store=FakeStore())
            try:
                dims.build_mesh()
                batch = dims.get_mesh("batch").size() if dims.dp_enabled else 1
            finally:
                dist.destroy_process_group()
            stage = "model_args.update_from_config"
            spec = mods["get_train_spec"](jc.model.name)
            args = spec.model_args[jc.model.flavor]
            args.update_from_config(jc)
            stage = "model on meta device"
            with torch.device("meta"), mods["utils"].set_default_dtype(mods["DTYPES"][jc.training.dtype]):
                model = spec.model_cls(args)
            stage = "get_nparams_and_flops"
            params, _ = args.get_nparams_and_flops(model, jc.training.seq_len)
            stage = "build_model_converters"
            mods["build_model_converters"](jc, dims).convert(model)
            stage = "batch check (train.py)"
            gbs = jc.training.global_batch_size
            gbs = jc.training.local_batch_size * batch if gbs < 0 else gbs
            if gbs % (jc.training.local_batch_size * batch):
                raise AssertionError(f"global batch size must be multiple of local batch size times data-parallel "
                                     f"degree ({gbs} % ({jc.training.local_batch_size} * {batch}) != 0)")
            ga = gbs // (jc.training.local_batch_size * batch)
            if p.pipeline_parallel_degree > 1:  # the local batch runs as pipeline micro-batches
                stage = "pipeline schedule (pipeline_parallel.py)"
                ga *= _pipeline_microbatches(jc, model, mods)
            stage = "done"
        derived = {"batch": batch, "ga": ga, "params": sum(x.numel() for x in model.parameters())}
        out["mismatch"] = [f"{k}: plan {case[k]:,}, torchtitan {v:,}" for k, v in derived.items() if case[k] != v]
        if params != derived["params"]:
            out["warnings"].append(f"get_nparams_and_flops counts {params:,} parameters")
    except BaseException as exc:
        out["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:600]
    finally:
        os.chdir(cwd)
        sys.path.remove(str(here))
    out["stage"] = stage
    return out


def _pipeline_microbatches(jc, model, mods) -> int:
    """torchtitan's pipeline checks that need no process group: the schedule class of the name
    (get_schedule_class), one stage per rank for a single-stage schedule and at least two for a looped
    one, the stages a multiple of pp (pipeline_llm / pipeline_module_split), every module name of
    module_fqns_per_model_part a module of the model, and build_pipeline_schedule's micro-batch count
    (local batch / pipeline_parallel_microbatch_size, which must divide). Returns that count."""
    from torch.distributed.pipelining.schedules import PipelineScheduleSingle

    p = jc.parallelism
    single = issubclass(mods["get_schedule_class"](p.pipeline_parallel_schedule), PipelineScheduleSingle)
    parts = p.module_fqns_per_model_part
    if parts:
        if len(parts) % p.pipeline_parallel_degree:
            raise ValueError(f"num_stages {len(parts)} must be evenly divisible by pp_degree {p.pipeline_parallel_degree}")
        per_rank = len(parts) // p.pipeline_parallel_degree
        if (single and per_rank != 1) or (not single and per_rank < 2):
            raise ValueError(f"{p.pipeline_parallel_schedule}: {per_rank} stages per rank")
        for name in (n for part in parts for n in part):
            model.get_submodule(name)
    if jc.training.local_batch_size % p.pipeline_parallel_microbatch_size:
        raise ValueError(f"Batch size {jc.training.local_batch_size} must be divisible by microbatch_size "
                         f"{p.pipeline_parallel_microbatch_size}")
    return jc.training.local_batch_size // p.pipeline_parallel_microbatch_size


def worker(cases_path: str, out_path: str) -> None:
    import logging

    logging.disable(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch
        import torchtitan  # noqa: F401  (registers the quantisation converters)
        import torchtitan.components.quantization.float8 as float8
        import torchtitan.components.quantization.mx as mx
        from torchtitan.config import TORCH_DTYPE_MAP, ConfigManager
        from torchtitan.distributed.parallel_dims import ParallelDims
        from torchtitan.distributed.pipeline_parallel import get_schedule_class
        from torchtitan.protocols.model_converter import build_model_converters
        from torchtitan.protocols.train_spec import get_train_spec
        from torchtitan.tools import utils
    mods = {"float8": float8, "mx": mx, "ConfigManager": ConfigManager, "ParallelDims": ParallelDims,
            "get_train_spec": get_train_spec, "build_model_converters": build_model_converters, "utils": utils,
            "DTYPES": TORCH_DTYPE_MAP, "get_schedule_class": get_schedule_class}
    versions = {}
    for name in ("torchao", "triton"):
        try:
            versions[name] = importlib.import_module(name).__version__
        except ImportError:
            versions[name] = "not installed"
    cases = json.loads(Path(cases_path).read_text())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases):
            t0 = time.perf_counter()
            r = _check_one({**case, "i": i}, Path(tmp), mods) if "files" in case else {}
            results.append({**r, "seconds": round(time.perf_counter() - t0, 3)})
    Path(out_path).write_text(json.dumps({"torch": torch.__version__, **versions,
                                          "python": sys.version.split()[0], "results": results}))


# ----------------------------------------------------------------------------- report

def section(cases: list[dict], meta: dict, commit: str) -> str:
    head = [
        f"torchtitan commit `{commit}` (tag v0.2.2, the version planner/frameworks/torchtitan.py names), torch "
        f"{meta['torch']}, torchao {meta['torchao']} (the last release with the MX API v0.2.2 imports), triton "
        f"{meta['triton']}, Python {meta['python']}; has_cuda_capability of the quantisation converters answers "
        "for the plan's GPU.",
        "Per case, in a directory holding the emitted torchtitan.toml and torchtitan_flavor.py: "
        "ConfigManager.parse_args -> experimental.custom_import -> ParallelDims(world_size = the plan's GPUs) -> "
        "build_mesh (torch's fake process group) -> model_args.update_from_config -> the model on the meta "
        "device -> build_model_converters(...).convert -> get_nparams_and_flops -> train.py's batch check "
        "(re-stated: it runs inside Trainer.__init__) -> with pp > 1 get_schedule_class, stages per rank, every "
        "module_fqns_per_model_part name a module of the meta model, micro-batches of the local batch (re-stated "
        "from pipeline_parallel.py); then the mesh's batch degree, the micro-batches per step and the meta "
        "model's parameter count compared with the plan and the planner's count.",
    ]
    return mpc.results_section(cases, meta["results"], head)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", nargs=2, metavar=("CASES", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--torchtitan", type=Path, default=os.environ.get("TORCHTITAN"),
                    help="torchtitan checkout at v0.2.2 (default $TORCHTITAN)")
    ap.add_argument("--python", default=os.environ.get("TORCHTITAN_PYTHON"),
                    help="Python with torch, tyro, torchao, ... (default $TORCHTITAN_PYTHON)")
    ap.add_argument("--only", choices=["solve", "picked", "run"], action="append")
    ap.add_argument("--out", type=Path, default=mpc.RESULTS)
    a = ap.parse_args()
    if a.worker:
        worker(*a.worker)
        return 0
    if not a.torchtitan or not a.python:
        ap.error("--torchtitan and --python are required (or TORCHTITAN / TORCHTITAN_PYTHON)")
    sys.path.insert(0, str(ROOT))
    builders = {"solve": solved_cases, "picked": picked_cases, "run": run_cases}
    cases = [c for k in (a.only or ["solve", "picked", "run"]) for c in builders[k]()]
    with tempfile.TemporaryDirectory() as tmp:
        cpath, opath = Path(tmp, "cases.json"), Path(tmp, "out.json")
        cpath.write_text(json.dumps(cases))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(x for x in (str(a.torchtitan.resolve()),
                                                                        os.environ.get("PYTHONPATH")) if x)}
        subprocess.run([a.python, str(Path(__file__).resolve()), "--worker", str(cpath), str(opath)],
                       env=env, check=True, cwd=tmp)
        meta = json.loads(opath.read_text())
    text = section(cases, meta, mpc._commit(a.torchtitan, "TORCHTITAN_COMMIT"))
    mpc.write_section(a.out, "torchtitan", text)
    print(text.splitlines()[3])
    return 0


if __name__ == "__main__":
    sys.exit(main())
