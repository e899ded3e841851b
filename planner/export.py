"""Write the files that run a plan: the framework's config or arguments, launch script, Slurm script,
hostfile, and a README.txt naming the plan and its estimates.

Files are written atomically (a temporary file in the same directory, then os.replace), and an
existing non-empty output directory is only written into with force=True.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from planner.atomic import folder_refuses
from planner.errors import InputError
from planner.frameworks import accelerate, common, hf_config, launch, megatron, megatron_layout, torchtitan
from planner.frameworks import torchtitan_model
from planner.frameworks import deepspeed as ds

# Every file name an export may write; with force, names of this set that the new export does not
# write are removed so a directory never mixes two plans. Other files are left alone.
EXPORT_NAMES = frozenset({"ds_config.json", "hostfile", "accelerate.yaml", "megatron_args.txt", "torchtitan.toml",
                          "launch.sh", "slurm.sbatch", "README.txt", ".deepspeed_env", "config.json",
                          "torchtitan_flavor.py"})
EXECUTABLE = frozenset({"launch.sh", "slurm.sbatch"})
# `solve --emit` writes at most this many rank folders (six files each, every one flushed to disk).
MAX_EMIT = 100
DS_PROGRAM = '"${TRAIN_SCRIPT:-train.py}" --deepspeed --deepspeed_config ds_config.json ${TRAIN_ARGS:-}'
MEGATRON_SETUP = ["set -f; ARGS=($(cat megatron_args.txt)); set +f  # one flag per line, no globbing"]
MEGATRON_PROGRAM = ('"${MEGATRON_LM:?set MEGATRON_LM to a Megatron-LM checkout}/pretrain_gpt.py" "${ARGS[@]}" '
                    '${DATA_ARGS:---mock-data --tokenizer-type NullTokenizer}')
TITAN_PROGRAM = "-m torchtitan.train --job.config_file torchtitan.toml"


def plan_result(scenario, plan) -> dict:
    """The contract's result object for a plan: as given when it has estimates (a solve or estimate
    result), else estimated here from the plan (a Plan or plan dict)."""
    if isinstance(plan, dict) and "plan" in plan and "memory" in plan:
        return plan
    from planner.estimate.evaluate import estimate
    from planner.spec.plan import FIELDS, Plan

    fields = common.plan_fields(plan)
    return estimate(scenario, Plan(**{k: fields[k] for k in FIELDS}))


def _deepspeed_files(scenario, f: dict, nodes: int, per_node: int, head: list[str], nvme_path: str) -> dict:
    cfg = ds.ds_config(scenario, f, nvme_path=nvme_path)
    env = launch.environment(f, scenario.runtime)
    acc = accelerate.accelerate_config(f, nodes, per_node)
    try:  # the model for a Hugging Face training script (DeepSpeed or Accelerate): AutoConfig.from_pretrained(".")
        model = {"config.json": json.dumps(hf_config.hf_config(scenario.model), indent=2) + "\n"}
    except InputError as e:
        model, head = {}, head + [f"no config.json: {e.message}"]
    return {**model,
        "ds_config.json": json.dumps(cfg, indent=2) + "\n",
        "hostfile": launch.hostfile(nodes, per_node),
        "launch.sh": launch.launch_script(head + ["Run on the first hostfile node; TRAIN_SCRIPT calls "
                                                  "deepspeed.initialize (default train.py)."], env,
                                          launch.deepspeed_command(nodes, per_node, DS_PROGRAM),
                                          launch.deepspeed_setup(env)),
        "slurm.sbatch": launch.slurm_script(_job_name(scenario), nodes, per_node, env, DS_PROGRAM, head,
                                            write_hostfile=True),
        "accelerate.yaml": accelerate.to_yaml(acc, head + ["accelerate launch --config_file accelerate.yaml "
                                                           "train.py (add --machine_rank on each node)"]),
    }


def _torchrun_files(scenario, f: dict, nodes: int, per_node: int, head: list[str], program: str,
                    setup: list[str] | None = None) -> dict:
    env = launch.environment(f, scenario.runtime)
    where = "Run on this node." if nodes == 1 else "Run on every node with MASTER_ADDR = the first node."
    return {"launch.sh": launch.launch_script(head + [where], env, launch.torchrun_command(nodes, per_node, program),
                                              setup),
            "slurm.sbatch": launch.slurm_script(_job_name(scenario), nodes, per_node, env, program, head, setup)}


def build_files(scenario, result: dict, nvme_path: str = ds.DEFAULT_NVME_PATH) -> dict[str, str]:
    """{file name: text} for the plan of `result` (a contract result object). Raises InputError
    when the plan's framework cannot run it; nothing is written."""
    f = common.plan_fields(result["plan"])
    nodes, per_node = common.node_layout(scenario, f)
    head = [f"planner plan: {common.plan_text(f)}", f"{nodes} node(s) x {per_node} GPUs ({scenario.name})"]
    if f["framework"] == "deepspeed":
        if common.uneven_split(scenario, f):  # the split lives in the training script: say it in every file
            head = head + ds.launch_note(scenario, f)
        files = _deepspeed_files(scenario, f, nodes, per_node, head, nvme_path)
    elif f["framework"] == "megatron":
        files = {"megatron_args.txt": "\n".join(megatron.megatron_args(scenario, f)) + "\n",
                 **_torchrun_files(scenario, f, nodes, per_node, head, MEGATRON_PROGRAM, MEGATRON_SETUP)}
    else:
        cfg, notes = torchtitan.torchtitan_config(scenario, f)
        files = {"torchtitan.toml": torchtitan.to_toml(cfg, head + [f"torchtitan {torchtitan.TORCHTITAN_VERSION}"]
                                                       + notes),
                 f"{torchtitan_model.MODULE}.py": torchtitan_model.flavor_module(scenario.model),
                 **_torchrun_files(scenario, f, nodes, per_node, head, TITAN_PROGRAM)}
    files["README.txt"] = readme(scenario, result, f, nodes, per_node, sorted(files))
    return files


def _job_name(scenario) -> str:
    return launch.safe_name(f"planner-{scenario.name}")


FILE_NOTES = {
    "ds_config.json": f"DeepSpeed {ds.DS_VERSION} config (batch, precision, ZeRO, offload, optimizer, schedule)",
    "hostfile": "DeepSpeed hostfile: replace node-N by your host names (slurm.sbatch writes its own)",
    "launch.sh": "launch command with the environment the plan needs",
    "slurm.sbatch": "Slurm batch script: sbatch slurm.sbatch from this directory",
    "accelerate.yaml": "Hugging Face Accelerate config pointing at ds_config.json",
    "megatron_args.txt": "Megatron-LM pretrain_gpt.py arguments, one per line (add data arguments via DATA_ARGS)",
    "torchtitan.toml": f"torchtitan {torchtitan.TORCHTITAN_VERSION} job config (set dataset and tokenizer)",
    "torchtitan_flavor.py": "torchtitan model flavor with the model's exact arguments (imported by torchtitan.toml)",
    "config.json": "Hugging Face model config of the planned model (AutoConfig.from_pretrained on this directory)",
}


def readme(scenario, result: dict, f: dict, nodes: int, per_node: int, names: list[str]) -> str:
    """README.txt: which plan the files implement and the planner's estimates for it."""
    m, t, th, run = result["memory"], result["time"], result["throughput"], result["run"]
    node = scenario.cluster.node
    parts = ", ".join(f"{k} {v:.1f}" for k, v in m["breakdown_gib"].items())
    cost = "unknown (no price in the catalog)" if run["cost_usd"] is None else f"${run['cost_usd']:,.0f}"
    lines = [
        f"Files written by planner for scenario: {launch.comment_text(scenario.name)}",
        "",
        "Plan (paste into: planner estimate SCENARIO --plan \"...\"):",
        f"  {common.plan_text(f)}",
        f"Cluster: {nodes} x {launch.comment_text(node.name)} ({per_node} x {launch.comment_text(node.gpu.name)} "
        f"used per node), {common.gpus(f)} GPUs",
        "",
        "Estimates (planner's model):",
        f"  memory per GPU  {m['per_gpu_gib']:.1f} GiB of {m['capacity_gib']:.1f} GiB ({m['verdict']}); {parts} GiB",
        f"  host per node   {m['host_per_node_gib']:.1f} GiB",
        f"  step time       {t['step_s']:.3f} s",
        f"  throughput      {th['tokens_per_s']:,.0f} tokens/s ({th['tokens_per_s_per_gpu']:,.0f} per GPU), "
        f"MFU {th['mfu']:.1%}",
        f"  training        {run['days']:.2f} days, {run['gpu_hours']:,.0f} GPU-hours, cost {cost}",
        "",
        "Files:",
        *(f"  {n:<18} {FILE_NOTES[n]}" for n in names if n in FILE_NOTES),
    ]
    if f["framework"] == "deepspeed" and "nvme" in (f["offload"], f["offload_params"]):
        lines.append("  NVMe offload: nvme_path in ds_config.json must be a directory on a local NVMe drive")
    return "\n".join(lines + split_notes(scenario, f) + fp8_attention_notes(scenario, f)) + "\n"


def fp8_attention_notes(scenario, f: dict) -> list[str]:
    """README lines for a Megatron fp8 plan estimated with runtime.fp8_attention: Megatron-LM (main @ d98e8a6)
    has no command-line flag for it: megatron/training/arguments.py lists TransformerConfig's
    fp8_dot_product_attention among the fields with no CLI argument (since 639c08ab, 2026-01; none before),
    so the launch files cannot turn it on and say how to."""
    if not (scenario.runtime.fp8_attention and f["framework"] == "megatron" and f["precision"] == "fp8"):
        return []
    return ["", "FP8 attention (runtime.fp8_attention) is in the estimates, not in megatron_args.txt: Megatron-LM's "
            "pretrain_gpt.py has no flag for it. Set TransformerConfig fp8_dot_product_attention=True in your "
            "entry point (Megatron-Bridge: mixed_precision.fp8_dot_product_attention=True; NeMo MLPerf configs: "
            "FP8_DPA=True), or expect the step without it (runtime.fp8_attention false)."]


SPLIT_NOTES = {"megatron": megatron_layout.readme_notes, "torchtitan": torchtitan.split_notes,
               "deepspeed": ds.partition_notes}


def split_notes(scenario, f: dict) -> list[str]:
    """README lines for an uneven pipeline split (layers % (pp x vpp) != 0): the layers of every
    stage (common.split_lines) and how the framework's files carry them. None for an even split."""
    from planner.estimate.pipeline_split import chunk_decoders, split_key

    key = split_key(scenario.runtime)
    if key is not None:  # the scenario's Megatron split, written as given (megatron._parallel_args)
        counts = chunk_decoders(key, scenario.model.layers, f["pp"], f["vpp"])
        return ["", "Pipeline split set by the scenario (runtime." + ("pipeline_layout" if key[0] == "layout"
                else "account_for_*_in_pipeline_split") + "): decoder layers per virtual stage in chunk order "
                "(stage = vp stage x pp + rank; the embedding on the first, the loss on the last):",
                "  " + " ".join(map(str, counts or ()))] + (
                    [f"  plus {scenario.model.mtp_layers} MTP layer(s) where the layout writes 'm' (or on the last "
                     "stage)"] if scenario.model.mtp_layers else [])
    if not common.uneven_split(scenario, f):
        return []
    own = common.own_chunk_counts(scenario, f["pp"], f["vpp"]) if scenario.model.mtp_layers else None
    lines = common.split_lines(scenario.model.layers, f["pp"], f["vpp"], own)
    return ["", *lines, *SPLIT_NOTES[f["framework"]](scenario, f)]


def check_target(out_dir: Path, force: bool) -> None:
    """Refuse a file in the way (the target or a folder above it), and a non-empty directory unless force."""
    check_parents(out_dir)
    if out_dir.is_symlink() and not out_dir.exists():
        raise InputError(f"is a link to '{os.readlink(out_dir)}', which does not exist; give a folder",
                         file=str(out_dir))
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("exists and is not a directory", file=str(out_dir))
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise InputError("output directory is not empty; pass --force to overwrite it", file=str(out_dir))


def check_parents(path: Path) -> None:
    """Refuse a path below a regular file (`-o afile/sub`): no folder can be made there."""
    for parent in Path(path).absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"'{parent}' is a file, not a folder", file=str(path))
            return


def check_output_file(path, force: bool) -> None:
    """Fail before the work when an output file cannot be written: below a file, a directory, an
    existing file without force, or in a folder that does not exist."""
    p = Path(path)
    check_parents(p)
    if p.is_dir():
        raise InputError("is a directory; give a file name", file=str(p))
    if p.exists() and not force:
        raise InputError("file exists; use --force to overwrite it", file=str(p))
    if not p.absolute().parent.is_dir():  # as atomic.write_file says after the work
        raise InputError("the folder does not exist", file=str(p))


def _check_replaceable(out_dir: Path, files: dict[str, str]) -> None:
    """Every path the export writes or removes is absent or a regular file (a directory named
    launch.sh cannot be replaced): checked before anything is written."""
    for rel in sorted(files) + _stale(out_dir, files):
        target = out_dir / rel
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise InputError("is in the way of the export (not a regular file); remove it", file=str(target))
        for parent in list(Path(rel).parents)[:-1]:
            check_not_linked(out_dir / parent)
            if (out_dir / parent).exists() and not (out_dir / parent).is_dir():
                raise InputError("is in the way of the export (not a folder); remove it", file=str(out_dir / parent))


def check_not_linked(folder: Path) -> None:
    """A folder the export makes inside the folder given (rank1, ...) must not be a link: its files
    would be written, and with --force replaced, wherever the link points."""
    if folder.is_symlink():
        raise InputError("is a link; the export writes only inside the folder given: remove it", file=str(folder))


def _stale(out_dir: Path, files: dict[str, str]) -> list[str]:
    """Export files of an earlier plan in the folders this export writes: removed so that a folder
    never mixes two plans (other files are left alone)."""
    folders: dict[Path, set[str]] = {}
    for rel in files:
        folders.setdefault(Path(rel).parent, set()).add(Path(rel).name)
    return sorted(str(folder / name) for folder, names in folders.items() for name in EXPORT_NAMES - names
                  if (out_dir / folder / name).exists() or (out_dir / folder / name).is_symlink())


def _stage(stage: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        target = stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(target, 0o755 if target.name in EXECUTABLE else 0o644)


def _swap_in(stage: Path, out_dir: Path, files: dict[str, str]) -> None:
    """Move the staged files into an existing out_dir, keeping what they replace (and the stale export
    files) in stage/.old until every move succeeded; on a failure, put everything back."""
    old, moved, made = stage / ".old", [], []
    try:
        for i, rel in enumerate(_stale(out_dir, files)):
            keep = old / f"stale{i}"
            keep.parent.mkdir(exist_ok=True)
            os.replace(out_dir / rel, keep)
            moved.append((out_dir / rel, keep))
        for i, rel in enumerate(sorted(files)):
            target = out_dir / rel
            if not target.parent.is_dir():
                target.parent.mkdir(parents=True)
                made.append(target.parent)
            keep = old / f"file{i}"
            if target.exists():
                keep.parent.mkdir(exist_ok=True)
                os.replace(target, keep)
                moved.append((target, keep))
            os.replace(stage / rel, target)
            moved.append((target, None))
    except BaseException:
        for target, keep in reversed(moved):
            if keep is None:
                target.unlink(missing_ok=True)
            else:
                os.replace(keep, target)
        for folder in reversed(made):
            folder.rmdir()
        raise


def write_tree(out_dir: Path, files: dict[str, str]) -> list[Path]:
    """Write {relative path: text} under out_dir all or nothing: the files are staged in a temporary
    folder next to out_dir, then the folder is renamed into place (a new out_dir) or its files are
    moved in one by one with the replaced ones kept until all succeeded (an existing out_dir). On any
    failure nothing of the export is left: no temporary folder, no partial set of files, no folder it
    created."""
    out_dir = Path(out_dir)
    _check_replaceable(out_dir, files)
    made = [p for p in [out_dir.parent, *out_dir.parent.parents] if not p.exists()]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        stage = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    except OSError as exc:
        raise folder_refuses(out_dir, exc) from None
    try:
        _stage(stage, files)
        if out_dir.is_dir():
            _swap_in(stage, out_dir, files)
        else:
            os.rename(stage, out_dir)
            os.chmod(out_dir, 0o777 & ~_umask())
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for folder in made:  # deepest first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    shutil.rmtree(stage, ignore_errors=True)  # after a swap: the replaced files
    return [out_dir / rel for rel in files]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def export_plan(scenario, plan_result_or_plan, out_dir, force: bool = False,
                nvme_path: str = ds.DEFAULT_NVME_PATH) -> list[Path]:
    """Write the files of one plan (a solve/estimate result, a Plan or a plan dict) into out_dir."""
    out_dir = Path(out_dir)
    check_target(out_dir, force)
    files = build_files(scenario, plan_result(scenario, plan_result_or_plan), nvme_path)
    return write_tree(out_dir, files)


def export_ranked(scenario, results: list[dict], out_dir, force: bool = False,
                  nvme_path: str = ds.DEFAULT_NVME_PATH) -> tuple[list[Path], list[str]]:
    """Write each ranked plan into out_dir/rank1, rank2, ... Returns (paths written, messages for
    the plans that their framework cannot run, which are skipped)."""
    out_dir = Path(out_dir)
    check_target(out_dir, force)
    built, skipped = [], []
    for rank, result in enumerate(results, start=1):
        try:
            built.append((rank, build_files(scenario, result, nvme_path)))
        except InputError as exc:
            skipped.append(f"rank {rank}: {exc}")
    tree = {f"rank{rank}/{name}": text for rank, files in built for name, text in files.items()}
    return (write_tree(out_dir, tree) if tree else []), skipped
