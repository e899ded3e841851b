"""Exports: the files of the top plans of every scenario pass the project's rule checks, DeepSpeed
configs read back to the same plan and are accepted by DeepSpeed 0.19.8's own parser (ecosystem.md
section 0 recipe), launch files carry the layout, and nothing is overwritten without --force."""

import copy
import json
import os
import subprocess
from functools import lru_cache
from unittest import mock

import pytest
import yaml
from click.testing import CliRunner

from planner import load_scenario, solve
from planner.cli import main
from planner.errors import InputError
from planner.export import build_files, export_plan, export_ranked, plan_result
from planner.frameworks import accelerate, common, megatron, megatron_layout, torchtitan
from planner.frameworks import deepspeed as ds
from planner.spec import parse_plan

from conftest import ROOT, SCENARIOS

# Scenario files (scenarios/ also holds purchase files).
PATHS = [p for p in SCENARIOS if "model" in (yaml.safe_load(p.read_text()) or {})]
FRAMEWORKS = (None, "deepspeed", "megatron", "torchtitan")  # None: the scenario's own search


@lru_cache(maxsize=None)
def scenario(path, framework=None):
    sc = load_scenario(path)
    if framework is not None:
        sc = sc.model_copy(update={"search": sc.search.model_copy(update={"frameworks": [framework]})})
    return sc


@lru_cache(maxsize=None)
def top_plans(path, framework=None):
    return solve(scenario(path, framework), top=3)["plans"]


def exported(path, framework=None):
    """(scenario, result, plan fields, files) for the top plans."""
    sc = scenario(path, framework)
    return [(sc, r, r["plan"], build_files(sc, r)) for r in top_plans(path, framework)]


# Hand-picked DeepSpeed plans, so that the parser sees every section whatever the ranking:
# fp16, fp32, CPU and NVMe offload, AutoTP, pipeline, AutoEP (alone and with AutoTP), each recompute
# mode, and a non-Adam optimizer.
EXTRA_DS_PLANS = [
    ("32b_16gpu", "precision=fp16,zero=1,offload=cpu,mbs=1,recompute=selective", None),
    ("32b_16gpu", "zero=3,offload=nvme,offload_params=nvme,mbs=2,recompute=full", None),
    ("32b_16gpu", "tp=4,zero=2,mbs=1,recompute=none", None),
    ("32b_16gpu", "pp=2,zero=1,mbs=1,recompute=selective", None),
    ("32b_16gpu", "zero=1,mbs=1,recompute=full", "sgd"),
    ("mixtral_64gpu", "ep=8,zero=2,mbs=1,recompute=selective", None),
    ("mixtral_64gpu", "tp=2,ep=4,zero=1,mbs=1,recompute=full", None),
    ("70b_offload_1node", "precision=fp32,zero=3,offload=cpu,offload_params=cpu,mbs=1,recompute=full", None),
]


@lru_cache(maxsize=None)
def ds_exports():
    items = [(p.stem, item) for p in PATHS for item in exported(p, "deepspeed")]
    for stem, text, optimizer in EXTRA_DS_PLANS:
        sc = scenario(ROOT / "scenarios" / f"{stem}.yaml")
        if optimizer:
            sc = sc.model_copy(update={"training": sc.training.model_copy(update={"optimizer": optimizer})})
        result = plan_result(sc, parse_plan("framework=deepspeed," + text).resolved(sc))
        items.append((f"{stem}-extra", (sc, result, result["plan"], build_files(sc, result))))
    return items


def test_every_scenario_file_is_covered():
    assert len(PATHS) >= 8
    assert all(top_plans(p) for p in PATHS)


@pytest.mark.parametrize("framework", FRAMEWORKS, ids=lambda f: f or "any")
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_rule_checks_pass(path, framework):
    """(a) every emitted file passes the project's checks, and the scripts are valid bash."""
    tomllib = pytest.importorskip("tomllib")
    for sc, _, f, files in exported(path, framework):
        world = common.gpus(f)
        if f["framework"] == "deepspeed":
            cfg = json.loads(files["ds_config.json"])
            assert set(cfg) <= ds.TOP_LEVEL_KEYS
            assert ds.config_problems(cfg, f["dp"], sc.model.n_kv_heads, sc.training.optimizer) == []
            assert accelerate.config_problems(yaml.safe_load(files["accelerate.yaml"])) == []
        elif f["framework"] == "megatron":
            assert megatron.args_problems(megatron.parse_args(files["megatron_args.txt"].splitlines()), world) == []
        else:
            parsed = tomllib.loads(files["torchtitan.toml"])
            assert parsed == torchtitan.torchtitan_config(sc, f)[0]
            assert torchtitan.config_problems(parsed, world) == []
        for name in ("launch.sh", "slurm.sbatch"):
            check = subprocess.run(["bash", "-n"], input=files[name], text=True, capture_output=True)
            assert check.returncode == 0, (name, check.stderr)
        assert common.plan_text(f) in files["README.txt"]


@pytest.mark.parametrize("stem,item", ds_exports(), ids=lambda x: x if isinstance(x, str) else "")
def test_deepspeed_round_trip(stem, item):
    """(b) reading the emitted config back gives the plan's fields; the README's plan text too."""
    sc, _, f, files = item
    cfg = json.loads(files["ds_config.json"])
    assert ds.plan_from_ds_config(cfg, gpus=common.gpus(f)) == f
    if f["tp"] == 1:  # train_batch_size is there: no world size needed
        assert ds.plan_from_ds_config(cfg) == f
    else:
        assert "train_batch_size" not in cfg and cfg["tensor_parallel"]["autotp_size"] == f["tp"]
        with pytest.raises(InputError):
            ds.plan_from_ds_config(cfg)
    assert parse_plan(common.plan_text(f)).resolved(sc).as_dict() == f


def test_deepspeed_plans_cover_the_config_features():
    """The DeepSpeed exports exercise ZeRO 1-3, CPU and NVMe offload, AutoTP, pipeline, AutoEP,
    every precision DeepSpeed has and every recompute mode (so the parser test sees each section)."""
    plans = [item[2] for _, item in ds_exports()]
    assert {p["zero"] for p in plans} >= {1, 2, 3} and {p["precision"] for p in plans} >= {"bf16", "fp16", "fp32"}
    assert {p["offload"] for p in plans} | {p["offload_params"] for p in plans} >= {"cpu", "nvme"}
    assert any(p["tp"] > 1 for p in plans) and any(p["pp"] > 1 for p in plans)
    assert any(p["ep"] > 1 and p["tp"] > 1 for p in plans) and any(p["ep"] > 1 and p["tp"] == 1 for p in plans)
    assert {p["recompute"] for p in plans} == {"none", "selective", "full"}


def _deepspeed():
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    if os.environ.get("PLANNER_REQUIRE_DEEPSPEED") == "1":  # CI (.ci/run) installs it: no skipping there
        import deepspeed
        assert deepspeed.__version__ == ds.DS_VERSION
        return deepspeed
    return pytest.importorskip("deepspeed", reason="DeepSpeed 0.19.8 (and CPU torch) not installed; "
                               ".ci/run installs them and runs this check with PLANNER_REQUIRE_DEEPSPEED=1")


class FakeMPU:  # ecosystem.md section 0: only this method is used by DeepSpeedConfig
    def __init__(self, dp):
        self.dp = dp

    def get_data_parallel_world_size(self):
        return self.dp


def ds_validate(cfg: dict, dp_world_size: int, world_size: int | None = None):
    """ecosystem.md section 0, verbatim: DeepSpeedConfig with rank and world size patched."""
    from deepspeed.runtime.config import DeepSpeedConfig
    with mock.patch("deepspeed.comm.get_rank", return_value=0), \
            mock.patch("deepspeed.comm.get_world_size", return_value=world_size or dp_world_size):
        return DeepSpeedConfig(copy.deepcopy(cfg), mpu=FakeMPU(dp_world_size))


@pytest.mark.parametrize("stem,item", ds_exports(), ids=lambda x: x if isinstance(x, str) else "")
def test_deepspeed_parser_accepts(stem, item):
    """(c) DeepSpeed 0.19.8's own parser accepts every emitted config with the plan's world size and
    reads the plan's values from it. AutoTP: DeepSpeed sees the full world (no mpu, section 1.1)."""
    _deepspeed()
    _, _, f, files = item
    cfg, world = json.loads(files["ds_config.json"]), common.gpus(f)
    dp_seen = world if f["tp"] > 1 else f["dp"]
    parsed = ds_validate(cfg, dp_seen, world)
    assert (parsed.train_micro_batch_size_per_gpu, parsed.gradient_accumulation_steps) == (f["mbs"], f["ga"])
    assert parsed.train_batch_size == f["mbs"] * f["ga"] * dp_seen
    assert parsed.zero_optimization_stage == f["zero"]
    assert parsed.bfloat16_config.enabled == (f["precision"] == "bf16")
    assert parsed.float16_config.enabled == (f["precision"] == "fp16")
    z = parsed.zero_config
    assert (z.offload_optimizer.device if z.offload_optimizer else "none") == f["offload"]
    assert (z.offload_param.device if z.offload_param else "none") == f["offload_params"]
    if f["zero"] >= 1:
        assert z.reduce_bucket_size == z.allgather_bucket_size == ds.BUCKET_ELEMENTS
    assert parsed.tensor_parallel_config.autotp_size == (f["tp"] if f["tp"] > 1 else 0)


@pytest.mark.parametrize("break_it", [
    lambda c: c["zero_optimization"].update(mics_shard_size=8),        # removed key (1.8)
    lambda c: c.update(train_batch_size=c["train_batch_size"] + 1),    # batch rule (1.1)
    lambda c: c.update(fp16={"enabled": True}),                        # fp16 + bf16 (1.2)
    lambda c: c["zero_optimization"].update(stage3_max_live_param=1),  # typo in a section (1.3)
    lambda c: c.update(amp={"enabled": True}),                         # removed top-level key (1.8)
])
def test_parser_and_project_checks_agree_on_rejections(break_it):
    """A broken config is rejected by DeepSpeed's parser and flagged by the project's checks."""
    _deepspeed()
    sc = scenario(ROOT / "scenarios" / "70b_64gpu.yaml")
    f = parse_plan("framework=deepspeed,zero=3,mbs=1,recompute=full").resolved(sc).as_dict()
    cfg = ds.ds_config(sc, f)
    ds_validate(cfg, f["dp"])
    assert ds.config_problems(cfg, f["dp"]) == []
    break_it(cfg)
    with pytest.raises(Exception):
        ds_validate(cfg, f["dp"])
    assert ds.config_problems(cfg, f["dp"])


def test_section_key_lists_match_deepspeed():
    """The project's key lists are keys (or aliases) DeepSpeed's pydantic sections really have."""
    _deepspeed()
    from deepspeed.runtime.precision_config import DeepSpeedBF16Config, DeepSpeedFP16Config
    from deepspeed.runtime.zero.config import DeepSpeedZeroConfig
    from deepspeed.runtime.zero.offload_config import DeepSpeedZeroOffloadOptimizerConfig, \
        DeepSpeedZeroOffloadParamConfig
    from planner.frameworks.ds_checks import SECTION_KEYS
    models = {"zero_optimization": DeepSpeedZeroConfig, "offload_optimizer": DeepSpeedZeroOffloadOptimizerConfig,
              "offload_param": DeepSpeedZeroOffloadParamConfig, "bf16": DeepSpeedBF16Config,
              "fp16": DeepSpeedFP16Config}
    for name, model in models.items():
        known = set(model.model_fields) | {f.alias for f in model.model_fields.values() if f.alias}
        assert SECTION_KEYS[name] <= known, (name, SECTION_KEYS[name] - known)


def test_project_checks_catch_what_the_parser_lets_through():
    """Section 1.9: combinations the parser accepts but DeepSpeed rejects or ignores later."""
    sc, _, f, files = exported(ROOT / "scenarios" / "32b_16gpu.yaml", "deepspeed")[0]
    base = json.loads(files["ds_config.json"])
    cases = {
        "offload_param": {"zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}}},
        "nvme_path": {"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "nvme"}}},
        "pipeline": {"zero_optimization": {"stage": 2}, "pipeline": {"stages": 2}},
        "unknown top-level": {"zero_optimisation": {"stage": 1}},
        "optimizer type": {"optimizer": {"type": "FooOpt"}},
    }
    for needle, change in cases.items():
        cfg = {**copy.deepcopy(base), **change}
        assert any(needle in p for p in ds.config_problems(cfg, f["dp"])), needle


def test_deepspeed_refuses_plans_it_cannot_run():
    sc = scenario(ROOT / "scenarios" / "mixtral_64gpu.yaml")
    plan = {"framework": "deepspeed", "precision": "bf16", "dp": 32, "tp": 2, "pp": 1, "cp": 1, "ep": 2, "vpp": 1,
            "sp": False, "zero": 1, "offload": "cpu", "offload_params": "none", "recompute": "full", "mbs": 1, "ga": 32}
    with pytest.raises(InputError, match="AutoEP with AutoTP does not support ZeRO offload"):
        ds.ds_config(sc, plan)
    with pytest.raises(InputError, match="FP8"):
        ds.ds_config(sc, {**plan, "precision": "fp8", "offload": "none"})


def test_buckets_and_gathering_match_the_memory_model():
    """ds_config sets the bucket sizes, overlap and ZeRO-3 gathering limits that the memory model
    (planner/estimate/memory_terms_runtime.py) counts."""
    from planner.estimate import memory_terms_runtime as rt
    sc = scenario(ROOT / "scenarios" / "32b_16gpu.yaml")
    for zero in (1, 2, 3):
        f = parse_plan(f"framework=deepspeed,zero={zero},mbs=1,recompute=full").resolved(sc)
        z = ds.ds_config(sc, f)["zero_optimization"]
        assert z["reduce_bucket_size"] == z["allgather_bucket_size"] == rt.DS_BUCKET_ELEMENTS
        assert z["overlap_comm"] == sc.runtime.dp_comm_overlap
    assert z["stage3_prefetch_bucket_size"] == rt.DS_PREFETCH_BUCKET_ELEMENTS
    assert z["stage3_max_live_parameters"] == rt.DS_MAX_LIVE_PARAMETERS
    assert z["stage3_param_persistence_threshold"] == rt.DS_PARAM_PERSISTENCE_THRESHOLD


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_launch_files_carry_the_layout(path):
    """(d) node count and GPUs per node in the hostfile, launch command, Slurm and Accelerate files."""
    for framework in FRAMEWORKS[1:]:
        for sc, _, f, files in exported(path, framework):
            nodes, per_node = common.node_layout(sc, f)
            assert nodes * per_node == common.gpus(f) and per_node <= sc.cluster.node.gpus_per_node
            slurm, launcher = files["slurm.sbatch"], files["launch.sh"]
            assert f"#SBATCH --nodes={nodes}\n" in slurm and f"#SBATCH --gpus-per-node={per_node}\n" in slurm
            assert f"--nnodes {nodes} --nproc-per-node {per_node} " in slurm
            if framework != "deepspeed":
                assert f"--nnodes {nodes} --nproc-per-node {per_node} " in launcher
            if framework == "deepspeed":
                lines = files["hostfile"].splitlines()
                assert len(lines) == nodes and all(ln.endswith(f" slots={per_node}") for ln in lines)
                assert f"--num_nodes {nodes} --num_gpus {per_node} " in launcher
                acc = yaml.safe_load(files["accelerate.yaml"])
                assert (acc["num_machines"], acc["num_processes"]) == (nodes, nodes * per_node)
            if framework == "megatron" and (f["tp"] > 1 or f["cp"] > 1):
                # Megatron-FSDP (zero 3) asserts CUDA_DEVICE_MAX_CONNECTIONS != 1
                assert ("CUDA_DEVICE_MAX_CONNECTIONS=1" in files["launch.sh"]) == (f["zero"] != 3)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_megatron_divisibility(path):
    """(f) ecosystem.md 4.1 rules on the emitted Megatron arguments, written out here once more."""
    for sc, _, f, files in exported(path, "megatron"):
        a = megatron.parse_args(files["megatron_args.txt"].splitlines())
        tp, pp, cp, ep = (a["tensor_model_parallel_size"], a["pipeline_model_parallel_size"],
                          a["context_parallel_size"], a["expert_model_parallel_size"])
        world = common.gpus(f)
        etp = a.get("expert_tensor_parallel_size", tp)
        assert world % (tp * pp * cp) == 0 and world % (etp * ep * pp) == 0 and etp == f["etp"]
        dp = world // (tp * pp * cp)
        assert a["global_batch_size"] == f["global_batch"]
        assert a["global_batch_size"] % (a["micro_batch_size"] * dp) == 0
        assert a["num_attention_heads"] % tp == 0
        groups = a.get("num_query_groups", a["num_attention_heads"])
        assert groups % tp == 0 or tp % groups == 0
        if "pipeline_model_parallel_layout" in a:  # uneven split: the layout holds the planner's chunks
            layers, counts = a["num_layers"], megatron_layout.layout_counts(a["pipeline_model_parallel_layout"])
            assert layers % (pp * f["vpp"]) and counts == common.chunk_layer_counts(layers, pp, f["vpp"])
            assert "num_layers_per_virtual_pipeline_stage" not in a
        else:
            assert a["num_layers"] % pp == 0
        if "num_layers_per_virtual_pipeline_stage" in a:
            assert pp > 1 and (a["num_layers"] // pp) % a["num_layers_per_virtual_pipeline_stage"] == 0
        if cp > 1:
            assert a["seq_length"] % (2 * cp) == 0
        if ep > 1:
            assert a["num_experts"] % ep == 0
        assert ("sequence_parallel" in a) == f["sp"] and ("use_distributed_optimizer" in a) == (f["zero"] in (1, 3))
        assert ("use_megatron_fsdp" in a) == (f["zero"] == 3)
    bad = megatron.parse_args(["--num-layers 30", "--num-attention-heads 40", "--tensor-model-parallel-size 3",
                               "--micro-batch-size 1", "--global-batch-size 7", "--seq-length 4096",
                               "--recompute-granularity full"])
    assert len(megatron.args_problems(bad, 16)) == 1  # 16 % 3: the layout itself is impossible
    assert len(megatron.args_problems(bad, 12)) == 4  # heads, batch, recompute, query groups


def test_export_writes_atomically_and_refuses_to_overwrite(tmp_path):
    """(e) a non-empty directory needs force; force replaces the plan's files and removes stale
    export files of another framework, leaving other files alone; no temporary files remain."""
    path = ROOT / "scenarios" / "32b_16gpu.yaml"
    sc, best = scenario(path, "deepspeed"), top_plans(path, "deepspeed")[0]
    first = export_plan(sc, best, tmp_path / "out")
    assert {p.name for p in first} == {"ds_config.json", "hostfile", "launch.sh", "slurm.sbatch", "accelerate.yaml",
                                       "README.txt", "config.json"}
    assert os.access(tmp_path / "out" / "launch.sh", os.X_OK)
    (tmp_path / "out" / "notes.md").write_text("mine")
    with pytest.raises(InputError, match="--force") as exc:
        export_plan(sc, best, tmp_path / "out")
    assert str(tmp_path / "out") in str(exc.value)
    titan_path = ROOT / "scenarios" / "70b_64gpu.yaml"  # torchtitan has no q/k/v biases: not Qwen2.5
    titan = top_plans(titan_path, "torchtitan")[0]
    export_plan(scenario(titan_path, "torchtitan"), titan, tmp_path / "out", force=True)
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {"torchtitan.toml", "torchtitan_flavor.py", "launch.sh", "slurm.sbatch", "README.txt",
                     "notes.md"}  # no .tmp left
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        export_plan(sc, titan, tmp_path / "file")


def test_export_from_a_plan_object_estimates_it(tmp_path):
    sc = scenario(ROOT / "scenarios" / "70b_offload_1node.yaml")
    plan = parse_plan("framework=deepspeed,zero=3,offload=nvme,offload_params=nvme,mbs=1,recompute=full").resolved(sc)
    export_plan(sc, plan, tmp_path, nvme_path="/mnt/nvme0")
    cfg = json.loads((tmp_path / "ds_config.json").read_text())
    assert cfg["zero_optimization"]["offload_param"]["nvme_path"] == "/mnt/nvme0"
    assert cfg["zero_optimization"]["offload_param"]["buffer_size"] >= sc.model.vocab * sc.model.hidden
    readme = (tmp_path / "README.txt").read_text()
    assert "memory per GPU" in readme and "tokens/s" in readme and "days" in readme and "NVMe" in readme


def test_cli_export_and_emit(tmp_path):
    runner = CliRunner()
    path = str(ROOT / "scenarios" / "70b_offload_1node.yaml")
    r = runner.invoke(main, ["export", path, "--rank", "1", "-o", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a" / "README.txt").exists()
    r = runner.invoke(main, ["export", path, "--rank", "1", "-o", str(tmp_path / "a")])
    assert r.exit_code == 2 and "--force" in r.output
    r = runner.invoke(main, ["export", path, "--plan", "framework=deepspeed,zero=3,offload=cpu,offload_params=cpu,"
                             "mbs=1,recompute=full", "-o", str(tmp_path / "a"), "--force"])
    assert r.exit_code == 0, r.output
    assert runner.invoke(main, ["export", path, "-o", str(tmp_path / "b")]).exit_code == 2
    r = runner.invoke(main, ["solve", path, "--top", "2", "--json", "--emit", str(tmp_path / "e")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["plans"] and {p.name for p in (tmp_path / "e").iterdir()} == {"rank1", "rank2"}
    r = runner.invoke(main, ["solve", path, "--top", "2", "--emit", str(tmp_path / "e")])
    assert r.exit_code == 2 and "--force" in r.output


def test_export_ranked_skips_what_a_framework_cannot_run(tmp_path):
    sc = scenario(ROOT / "scenarios" / "32b_16gpu.yaml", "deepspeed")
    good = top_plans(ROOT / "scenarios" / "32b_16gpu.yaml", "deepspeed")[0]
    bad = {**good, "plan": {**good["plan"], "precision": "fp8"}}
    paths, skipped = export_ranked(sc, [good, bad], tmp_path)
    assert {p.parent.name for p in paths} == {"rank1"} and len(skipped) == 1 and "rank 2" in skipped[0]


def test_megatron_moe_export_names_the_dispatcher_and_the_ep_overlap_it_was_costed_with(tmp_path):
    """The time model follows Megatron-Core's all-to-all dispatcher and, with runtime.ep_comm_overlap,
    its EP-overlap schedule only where Megatron allows it (no full recompute; vpp when pp > 1)."""
    from planner.frameworks import megatron
    from planner.spec import load_scenario, parse_plan

    path = tmp_path / "moe.yaml"
    path.write_text("name: moe\nmodel: mixtral-8x7b\ncluster: {node: dgx-h100, nodes: 2}\n"
                    "training: {seq_len: 4096, global_batch: 256, tokens: 1.0e10}\n"
                    "runtime: {ep_comm_overlap: true, cp_comm: allgather}\n")
    sc = load_scenario(path)
    args = lambda text: megatron.megatron_args(sc, parse_plan(text).resolved(sc))  # noqa: E731
    sel = args("framework=megatron,precision=bf16,tp=2,ep=4,cp=2,dp=4,zero=1,mbs=1,recompute=selective")
    assert "--moe-token-dispatcher-type alltoall" in sel and "--overlap-moe-expert-parallel-comm" in sel
    assert "--cp-comm-type all_gather" in sel  # TE raises on "allgather"
    full = args("framework=megatron,precision=bf16,tp=2,ep=4,cp=2,dp=4,zero=1,mbs=1,recompute=full")
    assert "--overlap-moe-expert-parallel-comm" not in full
    pp = args("framework=megatron,precision=bf16,tp=2,pp=2,ep=4,dp=4,zero=1,mbs=1,recompute=selective")
    assert "--overlap-moe-expert-parallel-comm" not in pp


@pytest.mark.parametrize("cmd", [["solve", "scenarios/70b_offload_1node.yaml", "--top", "1"],
                                 ["serve", "scenarios/serve_70b.yaml", "--top", "1"]])
def test_emit_into_a_dangling_link_names_the_link(tmp_path, cmd):
    """A link to a folder that does not exist was caught only when the staged folder was renamed onto
    it, with an error naming the temporary folder ('.out.x1y2.tmp: Not a directory')."""
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "missing")
    r = CliRunner().invoke(main, [cmd[0], str(ROOT / cmd[1]), *cmd[2:], "--emit", str(link)])
    assert r.exit_code == 2, r.output
    assert f"{link}:" in r.output and "link" in r.output and ".tmp" not in r.output
    assert not (tmp_path / "missing").exists() and link.is_symlink()


@pytest.mark.parametrize("cmd", [["solve", "scenarios/32b_16gpu.yaml", "--top", "1", "--report", "r.html"],
                                 ["solve", "scenarios/32b_16gpu.yaml", "--top", "1", "--emit", "out"],
                                 ["export", "scenarios/32b_16gpu.yaml", "--rank", "1", "-o", "out"]])
def test_a_folder_that_refuses_files_is_named_not_the_temporary_file(tmp_path, monkeypatch, cmd):
    """An unwritable folder (read-only, /proc) failed with the name of the temporary file the atomic
    write staged ('.r.html.x1y2.tmp: Permission denied'), a name the user never gave."""
    import tempfile

    def refuse(*args, dir=None, prefix="", suffix="", **kw):
        raise PermissionError(13, "Permission denied", os.path.join(dir, prefix + "x1y2" + suffix))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    target = tmp_path / cmd[-1]
    r = CliRunner().invoke(main, [cmd[0], str(ROOT / cmd[1]), *cmd[2:-1], str(target)])
    assert r.exit_code == 2, r.output
    assert f"{target}:" in r.output and "Permission denied" in r.output and ".tmp" not in r.output


@pytest.mark.parametrize("cmd", [["solve", "scenarios/70b_offload_1node.yaml", "--top", "2"],
                                 ["serve", "scenarios/serve_70b.yaml", "--top", "2"]])
def test_emit_force_never_writes_through_a_linked_rank_folder(tmp_path, cmd):
    """With --force, out/rank1 a link to a folder elsewhere had its files replaced there (a linked file
    was refused, a linked folder followed)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("launch.sh", "serve.sh", "README.txt"):
        (elsewhere / name).write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "rank1").symlink_to(elsewhere)
    r = CliRunner().invoke(main, [cmd[0], str(ROOT / cmd[1]), *cmd[2:], "--emit", str(out), "--force"])
    assert r.exit_code == 2, r.output
    assert str(out / "rank1") in r.output and "link" in r.output
    assert sorted(p.name for p in elsewhere.iterdir()) == ["README.txt", "launch.sh", "serve.sh"]
    assert all(p.read_text() == "precious" for p in elsewhere.iterdir())
