"""Generated CLI inputs for the fuzz suite (tests/test_fuzz.py) and the standalone fuzzer
(benchmarks/fuzz.py): scenarios, purchase files, plan strings, Hugging Face configs, output paths and
command-line options, each a small valid input with random damage.

`make_case(rng, workdir)` writes the files a case needs into `workdir` and returns the argument list of
one `planner` command and the key paths it damaged. `check_result` is the property every run must
hold: exit code 0, 1 or 2, no traceback, and an exit-2 message that names the damaged key (or the
file or option at fault). Plain `random.Random`, so the standalone script needs no hypothesis; the
suite drives it with hypothesis' `st.randoms()` (reproducible, shrinkable seeds).
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HF = ROOT / "tests" / "fixtures" / "hf"

# Small valid inputs: tiny models on one or two nodes, so a full search takes well under a second.
TINY = {"name": "tiny", "layers": 4, "hidden": 512, "heads": 8, "ffn_hidden": 1536, "vocab": 32000}
NODE = {"name": "box", "gpus_per_node": 8, "scaleup_gb_s": 450, "scaleout_gb_s": 50, "host_memory_gib": 1024,
        "nvme_tb": 15, "price": {"cloud_usd_per_node_hour": 20},
        "gpu": {"name": "g80", "memory_gib": 80, "hbm_tb_s": 3.35, "tflops": {"bf16": 989, "fp8": 1979}}}
TRAIN = {"seq_len": 2048, "global_batch": 32, "tokens": 1.0e9}
SCENARIOS = [
    {"name": "tiny", "model": TINY, "cluster": {"node": "dgx-h100", "nodes": 1}, "training": TRAIN},
    {"name": "inline", "model": {**TINY, "kv_heads": 2, "position": "learned", "max_seq_len": 4096},
     "cluster": {"node": NODE, "nodes": [1, 2]}, "training": TRAIN, "budget": {"max_usd": 1.0e6}},
    {"name": "moe", "model": {**TINY, "moe": {"experts": 8, "top_k": 2, "expert_ffn_hidden": 512}},
     "cluster": {"node": "hgx-h100", "nodes": {"min": 1, "max": 2}}, "training": TRAIN,
     "runtime": {"ep_comm_overlap": True, "cp_comm": "auto", "fp8_recipe": "current", "activation_offload_layers": 2,
                 "recompute_num_layers": 1, "keep_fp8_transpose_cache": False},
     "search": {"frameworks": ["megatron"], "precision": ["bf16"], "micro_batch": [1, 2]}, "top": 3},
    {"name": "hf", "model": {"hf_config": "config.json"}, "cluster": {"node": "dgx-h100", "nodes": 1},
     "training": {**TRAIN, "seq_len": 1024}, "objective": "cost", "runtime": {"flash_attention": True}},
]
# Serving: a tiny dense and a tiny MoE model on one node (planner serve; the search takes well under a second).
SERVING = [
    {"name": "chat", "model": {**TINY, "kv_heads": 2}, "cluster": {"node": "dgx-h100", "nodes": 1},
     "serving": {"input_tokens": {"mean": 1024, "p90": 3000}, "output_tokens": 256, "requests_per_s": 5,
                 "slo": {"ttft_ms_p90": 800, "tpot_ms_p90": 40}, "prefix_cache_hit": 0.3},
     "search": {"engines": ["vllm", "trtllm"], "weights": ["bf16", "fp8"], "kv_cache": ["fp8"]}},
    {"name": "moe-offline", "model": {**TINY, "moe": {"experts": 8, "top_k": 2, "expert_ffn_hidden": 512}},
     "cluster": {"node": "dgx-b200", "nodes": 1},
     "serving": {"input_tokens": [[512, 0.5], [2048, 0.5]], "output_tokens": 128, "offline": True},
     "search": {"engines": ["sglang"], "weights": ["fp8", "nvfp4", "fp8-block"], "kv_cache": ["bf16"],
                "max_batch": [64, 256]}, "top": 3},
]
SERVE_PLANS = ["engine=vllm,weights=fp8,kv_cache=fp8,tp=1", "engine=trtllm,weights=fp8,kv_cache=fp8,tp=2,replicas=2",
               "engine=sglang,weights=bf16,tp=8,ep=8,max_batch=64", "engine=vllm,weights=mxfp4,tp=4",
               "engine=trtllm,weights=fp8-block,kv_cache=bf16,tp=1,max_batch=512", "engine=tgi", "tp=3",
               "weights=fp3", "replicas=0", "max_batch=-1", "engine=vllm,engine=vllm", "", ","]
PURCHASE = {"name": "p", "budget_usd": 1.0e6,
            "clusters": [{"name": "rent", "node": "hgx-h100", "nodes": [1, 2], "cloud": {"usd_per_gpu_hour": 2.5}},
                         {"name": "own", "node": NODE, "nodes": 1,
                          "owned": {"capex_usd_per_node": 3.0e5, "power_kw": 10}}],
            "workloads": [{"name": "w", "model": TINY, **TRAIN, "deadline_days": 30}]}
# A purchase file may also hold serving workloads, next to the training ones or alone (issue 12).
SERVING_WORKLOAD = {"name": "chat", "model": {**TINY, "kv_heads": 2}, "hours_per_year": 2000,
                    "serving": {"input_tokens": 512, "output_tokens": 128, "requests_per_s": 5},
                    "search": {"engines": ["vllm"], "weights": ["bf16", "fp8"], "kv_cache": ["fp8"]}}
PURCHASES = [PURCHASE, {**PURCHASE, "serving_workloads": [SERVING_WORKLOAD]},
             {**{k: v for k, v in PURCHASE.items() if k != "workloads"}, "serving_workloads": [SERVING_WORKLOAD]}]
HF_FILES = sorted(p.name for p in HF.glob("*.json"))

# Values that have broken parsers before: YAML 1.1 booleans, numbers out of range, non-finite floats,
# wrong containers, control characters and shell syntax, long lists.
BAD = [True, False, "yes", "off", None, 0, -1, 1, 2, 3, 7, 1000, 2 ** 31, 10 ** 30, 0.5, 1.5, 1e300, -1e300,
       math.inf, -math.inf, math.nan, "", " ", "x", "1e6", "1_000", "nan", "inf", "0x10", [], [0], [1], [True],
       [2, 4], [1, 1, 1], [[1]], {}, {"a": 1}, {"min": 4, "max": 1}, {"min": 1, "max": 3}, "x\ny", "a\rb",
       "$(touch canary)", "$a_{$", "<b>&amp;", "`touch canary`", "'; touch canary; '", "\x00", "é€", "a" * 300, list(range(300)),
       "llama-3.1-8b", "dgx-h100", "megatron", "bf16", "fp4"]
PLAN_KEYS = ["framework", "precision", "dp", "tp", "pp", "cp", "ep", "vpp", "sp", "zero", "offload",
             "offload_params", "recompute", "mbs", "ga"]
PLAN_VALUES = {"framework": ["megatron", "deepspeed", "torchtitan", "jax"], "precision": ["bf16", "fp8", "fp16", "fp32",
                                                                                     "int4"],
               "offload": ["none", "cpu", "nvme", "gpu"], "offload_params": ["none", "cpu", "nvme"],
               "recompute": ["none", "selective", "full", "half"], "sp": ["true", "false", "maybe", "1"],
               "zero": ["0", "1", "2", "3", "4", "true"]}
NUMBERS = ["1", "2", "4", "8", "16", "0", "-1", "3", "1e3", "2.0", "2.5", "true", "x", "", "99999999999999999999"]
PATHS = ["out"] * 8 + ["out/deep/er", "afile", "afile/sub", "adir", "adir/README.txt", "o $(touch canary)", "é/ü",
                       "", ".", "out\nx"]
VARY = ["price=±20%", "power=+-10%", "utilisation=-15%", "price=+1e300%", "price=abc", "foo=10%", "", "=",
        "price=±nan%", "price=±-50%", "price"]


def _paths(tree, prefix=()):
    """Every key path of a nested dict/list (lists by index)."""
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _paths(v, prefix + (i,))


def _get(tree, path):
    for p in path:
        tree = tree[p]
    return tree


def _value(rng: random.Random, old):
    """A damaged value: a bad one, or the old number scaled far off."""
    if isinstance(old, (int, float)) and not isinstance(old, bool) and rng.random() < 0.4:
        return type(old)(old * rng.choice([0, -1, 2, 3, 10, 1000, 10 ** 6])) if old else rng.choice(BAD)
    return copy.deepcopy(rng.choice(BAD))


def damage(rng: random.Random, data, n: int) -> tuple[object, list[str]]:
    """`n` random edits of a nested mapping: set a value, delete a key, add an unknown key. Returns the
    new data and the dotted paths edited."""
    data, touched = copy.deepcopy(data), []
    for _ in range(n):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent = _get(data, path[:-1])
        op = rng.random()
        if op < 0.7:
            parent[path[-1]] = _value(rng, parent[path[-1]])
        elif op < 0.85 and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[rng.choice(["colour", "trianing", "node", "x y", "1"])] = rng.choice(BAD[:20])
        touched.append(".".join(map(str, path)))
    return data, touched


def to_yaml(rng: random.Random, data) -> str:
    """YAML text of `data`; sometimes damaged as text: a duplicated line, a truncation, a tab, a stray
    anchor, or JSON syntax."""
    text = json.dumps(data, default=str) if rng.random() < 0.1 else yaml.safe_dump(data, sort_keys=False,
                                                                                  allow_unicode=True)
    r = rng.random()
    lines = text.splitlines(keepends=True)
    if r < 0.05 and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif r < 0.08:
        lines = lines[:rng.randrange(len(lines) + 1)]
    elif r < 0.10:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(["\tx: 1\n", "&a [*a]\n", "<<: *nope\n", "- - -\n",
                                                               "{{{\n", "!!python/object:os.system {}\n"]))
    return "".join(lines)


GOOD_PLANS = ["tp=8", "tp=4", "tp=2,pp=2", "framework=deepspeed,zero=3", "framework=deepspeed,zero=2,offload=cpu",
              "framework=deepspeed,zero=3,offload=nvme,offload_params=nvme,recompute=full",
              "framework=torchtitan,zero=3,tp=2", "tp=4,cp=2", "tp=2,ep=4", "pp=2,vpp=2,mbs=2", "precision=fp8,tp=8",
              "framework=megatron,zero=0,recompute=none,mbs=4"]


def plan_text(rng: random.Random) -> str:
    """A plan string: a usual plan, or random key=value pairs, some damaged."""
    if rng.random() < 0.45:
        return rng.choice(GOOD_PLANS)
    parts = []
    for key in rng.sample(PLAN_KEYS, rng.randrange(0, 6)):
        value = rng.choice(PLAN_VALUES.get(key, NUMBERS))
        parts.append(f"{key}={value}")
    r = rng.random()
    if r < 0.05:
        parts.append(rng.choice(["tp", "=8", "tp==8", "t p=8", "zero=3", "colour=red", ",,", "tp=8=8"]))
    elif r < 0.08 and parts:
        parts.append(parts[0])  # a key twice
    return ",".join(parts) if rng.random() < 0.97 else rng.choice(["", " ", ","])


def hf_config(rng: random.Random) -> dict:
    cfg = json.loads((HF / rng.choice(HF_FILES)).read_text())
    if rng.random() < 0.15:
        cfg["head_dim"] = rng.choice([0, False, None, 64, -1, "64", 1.5])
    if rng.random() < 0.1:
        cfg["model_type"] = rng.choice([[], {}, None, 1, "bert", "llama", "gpt2"])
    return damage(rng, cfg, rng.choice([0, 0, 1, 2]))[0]


def _prepare(workdir: Path) -> None:
    (workdir / "afile").write_text("x")
    (workdir / "adir").mkdir(exist_ok=True)
    (workdir / "adir" / "README.txt").mkdir(exist_ok=True)


def _scenario_case(rng: random.Random, workdir: Path) -> tuple[list[str], list[str]]:
    base = copy.deepcopy(rng.choice(SCENARIOS))
    if base["name"] == "hf":
        folder = rng.random() < 0.3
        target = workdir / "cfgdir" if folder else workdir
        target.mkdir(exist_ok=True)
        (target / "config.json").write_text(json.dumps(hf_config(rng), allow_nan=True))
        base["model"]["hf_config"] = "cfgdir" if folder else "config.json"
    data, touched = damage(rng, base, rng.choice([0, 0, 1, 1, 1, 2, 3]))
    (workdir / "s.yaml").write_text(to_yaml(rng, data))
    command = rng.choice(["validate", "solve", "solve", "estimate", "estimate", "export", "export", "model"])
    args = [command, str(workdir / "s.yaml")]
    out = str(workdir / rng.choice(PATHS))
    if command == "solve":
        args += ["--top", rng.choice(["1", "2", "3", "0", "10001", "x"] if rng.random() < 0.2 else ["1", "2"])]
        args += rng.choice([[], [], [], ["--json"], ["--objective", rng.choice(["cost", "time", "speed"])],
                            ["--emit", out], ["--report", out], ["--exhaustive", "--top", "1"]])
    elif command == "estimate":
        args += ["--plan", plan_text(rng)] + (["--json"] if rng.random() < 0.5 else [])
    elif command == "export":
        args += (["--plan", plan_text(rng)] if rng.random() < 0.85 else ["--rank", rng.choice(["1", "2", "10000", "0"])])
        args += ["-o", out] + (["--force"] if rng.random() < 0.5 else [])
        if rng.random() < 0.2:
            args += ["--nvme-path", rng.choice(["/mnt/nvme", "/mnt/nvme", "", "a b", "$(touch canary)", "/x\ny"])]
    elif command == "model" and rng.random() < 0.3:
        args += ["--seq-len", rng.choice(["1", "4096", "0", "x", str(2 ** 30)])]
    return args, touched


def _purchase_case(rng: random.Random, workdir: Path) -> tuple[list[str], list[str]]:
    data, touched = damage(rng, rng.choice(PURCHASES), rng.choice([0, 0, 1, 1, 2]))
    (workdir / "p.yaml").write_text(to_yaml(rng, data))
    if rng.random() < 0.2:
        return ["validate", str(workdir / "p.yaml")], touched
    args = ["compare", str(workdir / "p.yaml"), "--workers", "1"]
    if rng.random() < 0.3:
        args += ["--budget", rng.choice(["1e6", "inf", "nan", "-5", "0", "1e15", "1e16", "x", "1e-9"])]
    if rng.random() < 0.2:
        args += ["--vary", rng.choice(VARY)]
    if rng.random() < 0.2:
        args += rng.choice([["--json"], ["--csv", str(workdir / rng.choice(PATHS))],
                            ["--report", str(workdir / rng.choice(PATHS))]])
    return args, touched


def _serving_case(rng: random.Random, workdir: Path) -> tuple[list[str], list[str]]:
    data, touched = damage(rng, rng.choice(SERVING), rng.choice([0, 0, 1, 1, 2]))
    (workdir / "v.yaml").write_text(to_yaml(rng, data))
    if rng.random() < 0.15:
        return ["validate", str(workdir / "v.yaml")], touched
    args = ["serve", str(workdir / "v.yaml")]
    if rng.random() < 0.4:
        args += ["--plan", rng.choice(SERVE_PLANS)]
    args += rng.choice([[], [], ["--json"], ["--emit", str(workdir / rng.choice(PATHS))],
                        ["--report", str(workdir / rng.choice(PATHS))]])
    return args, touched


def _model_case(rng: random.Random, workdir: Path) -> tuple[list[str], list[str]]:
    r = rng.random()
    if r < 0.5:
        (workdir / "config.json").write_text(json.dumps(hf_config(rng), allow_nan=True))
        return ["model", str(workdir / "config.json")], ["(hf config)"]
    if r < 0.8:
        data, touched = damage(rng, TINY, rng.choice([1, 2]))
        (workdir / "m.yaml").write_text(to_yaml(rng, data))
        return ["model", str(workdir / "m.yaml")], touched
    kind = rng.choice(["gpus", "nodes", "models", "chips"])
    return ["catalog", kind] + ([rng.choice(["h100", "dgx-h100", "llama-3.1-8b", "x"])] if rng.random() < 0.5
                                else []), []


def make_case(rng: random.Random, workdir: Path) -> tuple[list[str], list[str]]:
    """Write the files of one generated case into `workdir`; (CLI arguments, damaged key paths)."""
    _prepare(workdir)
    r = rng.random()
    if r < 0.6:
        return _scenario_case(rng, workdir)
    if r < 0.72:
        return _purchase_case(rng, workdir)
    if r < 0.87:
        return _serving_case(rng, workdir)
    return _model_case(rng, workdir)


KEY_LIKE = re.compile(r"(--[a-z-]+|[A-Za-z_]+\.[A-Za-z0-9_.]+|'[^']+'|\"[^\"]+\"|\w+\.(yaml|json)|[a-z_]+:)")


def check_result(args: list[str], touched: list[str], exit_code: int, output: str, exception) -> str | None:
    """The property: None when the run is acceptable, else what is wrong with it."""
    if exception is not None and not isinstance(exception, SystemExit):
        return f"exception {exception!r}"
    if "Traceback" in output:
        return "traceback in output"
    if exit_code not in (0, 1, 2):
        return f"exit code {exit_code}"
    if exit_code == 2:
        if "rror" not in output or not KEY_LIKE.search(output):
            return "exit 2 without a message naming a key, file or option"
    return None
