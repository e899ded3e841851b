"""Property-based fuzzing (hypothesis) of every input the planner reads: generated scenarios, purchase
files, plan strings, Hugging Face configs, YAML documents, output paths and command-line options.

Properties: no traceback (only InputError inside the library, exit codes 0, 1 and 2 at the command
line), every run ends in bounded time, an exit-2 message names the key, file or option at fault, and a
failed export leaves nothing behind. Examples are bounded so the module runs in well under a minute;
benchmarks/fuzz.py runs the same generator over thousands of cases.
"""

import json
import math
import random
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.cli import main
from planner.errors import InputError
from planner.spec.load import validate_model
from planner.spec.plan import FIELDS, parse_plan

from fuzz_cases import BAD, HF, HF_FILES, check_result, make_case

def bounded(n: int):
    """Settings of one property: n examples, reproducible (derandomized), no per-example deadline (the
    bound on a run is asserted where it matters), no example database written into the checkout."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))
RUN_LIMIT_S = 60.0
runner = CliRunner()

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2 ** 70, max_value=2 ** 70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.sampled_from([b for b in BAD if not isinstance(b, (list, dict))]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)


@bounded(60)
@given(st.randoms(use_true_random=False))
def test_generated_cli_runs_end_cleanly(rng):
    """Any generated case through the real command: exit 0/1/2, no traceback, a named key on exit 2,
    finished within the time bound."""
    with tempfile.TemporaryDirectory(prefix="planner-fuzz-") as tmp:
        args, touched = make_case(rng, Path(tmp))
        start = time.perf_counter()
        r = runner.invoke(main, args)
        seconds = time.perf_counter() - start
    problem = check_result(args, touched, r.exit_code, r.output, r.exception)
    assert problem is None, f"{problem}: {args}\n{r.output[-800:]}"
    assert seconds < RUN_LIMIT_S, f"{args} took {seconds:.0f} s"


plan_pairs = st.lists(st.tuples(st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)),
                                st.one_of(st.sampled_from(["1", "2", "8", "0", "-1", "true", "yes", "cpu", "bf16",
                                                           "megatron", "3", "1e3", "nan", "inf", ""]),
                                          st.text(max_size=6))), max_size=6)


@bounded(100)
@given(plan_pairs, st.sampled_from([",", " , ", ",,"]))
def test_plan_strings_parse_or_name_the_key(pairs, sep):
    text = sep.join(f"{k}={v}" for k, v in pairs)
    try:
        plan = parse_plan(text)
    except InputError as exc:
        assert exc.key and (exc.key.startswith("--plan") or exc.key.split(".")[0] in FIELDS), str(exc)
        assert str(exc).startswith("--plan")
        return
    given_keys = [k.strip() for k, _ in pairs if k.strip()]
    assert len(given_keys) == len(set(given_keys))  # a key given twice is never accepted
    for key, value in pairs:
        if key.strip() in ("tp", "pp", "cp", "ep", "vpp", "mbs", "dp", "ga"):
            assert getattr(plan, key.strip()) == int(float(value.strip()))  # read as written, not a bool


@bounded(80)
@given(st.sampled_from(HF_FILES), st.dictionaries(st.sampled_from(
    ["model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
     "intermediate_size", "vocab_size", "hidden_act", "tie_word_embeddings", "num_local_experts",
     "num_experts_per_tok", "moe_intermediate_size", "n_routed_experts", "kv_lora_rank", "q_lora_rank",
     "decoder_sparse_step", "moe_layer_freq", "n_positions", "n_embd"]), json_values, max_size=3))
def test_hf_configs_map_or_name_the_key(name, change):
    from planner.spec.hf import model_from_hf
    from planner.spec.model import ModelSpec

    cfg = {**json.loads((HF / name).read_text()), **change}
    if isinstance(cfg.get("text_config"), dict):  # Llama 4: the text model's keys live in text_config
        cfg["text_config"] = {**cfg["text_config"], **{k: v for k, v in change.items() if k != "model_type"}}
    try:
        spec = validate_model(ModelSpec, model_from_hf(cfg), file="config.json")
    except InputError as exc:
        assert exc.key, str(exc)
        return
    if "head_dim" in change and change["head_dim"] is not None and spec.mla is None:
        assert spec.head_dim == change["head_dim"] and not isinstance(change["head_dim"], bool)


@bounded(80)
@given(st.dictionaries(st.sampled_from(["name", "model", "cluster", "training", "budget", "search", "runtime",
                                        "objective", "top", "colour"]), json_values, max_size=5))
def test_any_yaml_mapping_validates_or_names_the_key(data):
    from planner.spec.load import check_scenario, resolve_scenario_dict
    from planner.spec.scenario import Scenario

    try:
        check_scenario(validate_model(Scenario, resolve_scenario_dict(data, Path("."), "s.yaml"), file="s.yaml"))
    except InputError as exc:
        assert exc.key or "mapping" in exc.message, str(exc)


@bounded(150)
@given(st.text(max_size=60))
def test_any_text_loads_or_is_malformed_yaml(text):
    from planner.spec.load import load_yaml

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "s.yaml"
        p.write_bytes(text.encode("utf-8", "replace"))
        try:
            load_yaml(p)
        except InputError as exc:
            assert exc.file == str(p)


@bounded(100)
@given(st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=True), st.sampled_from(
    ["yes", "on", "1e6", "4096.0", "1_000", "0x10", " 7 "])))
def test_integers_are_strict(value):
    from planner.spec.base import PosInt, Strict

    class M(Strict):
        n: PosInt

    try:
        n = M(n=value).n
    except Exception as exc:  # pydantic's ValidationError
        assert exc.__class__.__name__ == "ValidationError"
        return
    assert not isinstance(value, bool) and n >= 1
    as_number = float(str(value).replace("_", "")) if isinstance(value, str) else value
    assert n == as_number and math.isfinite(as_number)


SCENARIO = "cluster: {node: dgx-h100, nodes: 1}\nmodel: llama-3.1-8b\ntraining: {seq_len: 4096, global_batch: 64, " \
           "tokens: 1.0e9}\n"
segments = st.sampled_from(["out", "afile", "adir", "README.txt", "launch.sh", "é", "a b", "$(x)", "..", "."])


@bounded(40)
@given(st.lists(segments, min_size=1, max_size=3), st.booleans(), st.sampled_from(["tp=8", "framework=deepspeed"]))
def test_export_paths_all_or_nothing(parts, force, plan):
    """Any output path: the export either writes its whole set of files or fails with exit 2 and
    leaves the folder tree exactly as it was."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "s.yaml").write_text(SCENARIO)
        (root / "afile").write_text("x")
        (root / "adir" / "launch.sh").mkdir(parents=True)
        before = sorted(str(p) for p in root.rglob("*"))
        out = root.joinpath(*parts)
        r = runner.invoke(main, ["export", str(root / "s.yaml"), "--plan", plan, "-o", str(out)]
                          + (["--force"] if force else []))
        assert check_result([], [], r.exit_code, r.output, r.exception) is None, r.output
        after = sorted(str(p) for p in root.rglob("*"))
        if r.exit_code == 0:
            assert (out / "README.txt").is_file() and (out / "launch.sh").is_file()
            assert not [p for p in after if p.endswith(".tmp")]
        else:
            assert r.exit_code == 2 and after == before, r.output


def test_generator_covers_every_command():
    """The generator reaches every command (a fuzz suite that never runs export proves nothing)."""
    rng = random.Random(0)
    seen = set()
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(150):
            seen.add(make_case(rng, Path(tmp))[0][0])
    assert seen >= {"validate", "solve", "estimate", "export", "model", "compare", "catalog"}
