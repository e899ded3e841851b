"""Regressions found by running the acceptance checks of issues 11, 12 and 14 as a new user would
(docs/acceptance_check.md, third audit): each test fails on the code before its fix."""

from click.testing import CliRunner

from planner.cli import main

from conftest import TINY_SERVE, TINY_TRAIN, write_yaml

runner = CliRunner()


def test_a_report_into_a_missing_folder_fails_before_the_work(tmp_path):
    """`solve / serve / compare --report no/such/dir/r.html` ran the whole search, printed its table and
    only then said 'the folder does not exist' (an existing file was already refused up front)."""
    missing = tmp_path / "no" / "such" / "r.html"
    for cmd, data in (("solve", TINY_TRAIN), ("serve", TINY_SERVE)):
        r = runner.invoke(main, [cmd, str(write_yaml(tmp_path, data)), "--report", str(missing)])
        assert r.exit_code == 2 and "the folder does not exist" in r.output, r.output
        assert "tok/s" not in r.output and "best" not in r.output, r.output  # no table: nothing was run
    assert not missing.parent.exists()


def test_a_bound_broken_in_one_union_member_is_the_only_message(tmp_path):
    """`input_tokens: 0` (an integer, or {mean, p90}, or a list) said 'greater than or equal to 1' and
    then 'should be a valid dictionary or instance of TokenMoments' and 'should be a valid list';
    `cluster.nodes: 1000000` likewise. The bound of the member meant is the message."""
    for block, key, value in (("serving", "input_tokens", 0), ("serving", "output_tokens", float("nan")),
                              ("cluster", "nodes", 1_000_000)):
        data = {**TINY_SERVE, block: {**TINY_SERVE[block], key: value}}
        r = runner.invoke(main, ["serve", str(write_yaml(tmp_path, data))])
        assert r.exit_code == 2 and f"{block}.{key}: " in r.output, r.output
        assert "valid list" not in r.output and "valid dictionary" not in r.output, r.output
    data = {**TINY_SERVE, "cluster": {**TINY_SERVE["cluster"], "nodes": "abc"}}  # no member's bound: every type is said
    r = runner.invoke(main, ["serve", str(write_yaml(tmp_path, data))])
    assert r.exit_code == 2 and "valid list" in r.output, r.output


def test_etp_on_a_dense_model_is_refused_like_ep(tmp_path):
    """`estimate --plan ...,etp=2` on a dense model was accepted and printed etp 2 in the plan (ep=2 is
    refused: 'has no experts'); etp = tp, what the search's dense plans carry, still round-trips."""
    p = write_yaml(tmp_path, {**TINY_TRAIN, "cluster": {"node": "dgx-h100", "nodes": 1}})
    r = runner.invoke(main, ["estimate", str(p), "--plan", "framework=megatron,tp=1,zero=1,etp=2"])
    assert r.exit_code == 2 and "etp = 2" in r.output and "no experts" in r.output, r.output
    r = runner.invoke(main, ["estimate", str(p), "--plan", "framework=megatron,tp=2,zero=1,etp=2"])
    assert r.exit_code == 0, r.output


def test_nearest_fixes_at_an_unreachable_rate_name_the_tpot_target_and_lead_to_a_plan(tmp_path):
    """At a rate no plan sustains, the fixes were 'use at least N GPUs' counted at the best output
    tokens/s per GPU of any plan, whatever its TPOT: a user who added those GPUs found the TPOT target
    out of reach (70B on 8 H100 at 50 req/s, TPOT 5 ms: 'use at least 18 GPUs'; on 24, 'relax TPOT to
    25 ms'). Now a TPOT target that no plan meets at the batch the rate fills is named with the nearest
    one met, and the GPUs are counted at that TPOT: following both fixes gives a plan."""
    import json
    import math
    import re

    data = {"name": "s", "model": "llama-3.1-8b", "cluster": {"node": "dgx-h100", "nodes": 1},
            "serving": {"input_tokens": 1024, "output_tokens": 256, "requests_per_s": 1000,
                        "slo": {"tpot_ms_p90": 2}},
            "search": {"engines": ["vllm"], "weights": ["fp8"], "kv_cache": ["fp8"]}}
    r = runner.invoke(main, ["serve", str(write_yaml(tmp_path, data)), "--json"])
    assert r.exit_code == 1, r.output
    why = json.loads(r.stdout)["infeasible"]
    assert any("2 ms target" in x for x in why["reasons"]), why
    changes = [f["change"] for f in why["fixes"]]
    tpot = int(next(re.search(r"relax slo.tpot_ms_p90 to (\d+)", c).group(1) for c in changes if "tpot" in c))
    gpus = int(next(re.search(r"use at least (\d+) GPUs", c).group(1) for c in changes if "GPUs" in c))
    data["serving"]["slo"]["tpot_ms_p90"] = tpot
    data["cluster"]["nodes"] = math.ceil(gpus / 8)
    r = runner.invoke(main, ["serve", str(write_yaml(tmp_path, data)), "--json"])
    assert r.exit_code == 0, r.output


def test_vllm_plan_with_fewer_batched_tokens_than_sequences_is_refused(tmp_path):
    """`serve --plan engine=vllm,max_batched_tokens=1` was estimated (0 output tokens/s) and its launch
    file would pass --max-num-batched-tokens 1 --max-num-seqs 1024, which vLLM's SchedulerConfig refuses
    (max_num_batched_tokens must be >= max_num_seqs). SGLang / TensorRT-LLM have no such rule."""
    p = write_yaml(tmp_path, TINY_SERVE)
    r = runner.invoke(main, ["serve", str(p), "--plan", "engine=vllm,max_batch=64,max_batched_tokens=32"])
    assert r.exit_code == 2 and "max_batched_tokens" in r.output and "max_num_seqs" in r.output, r.output
    for plan in ("engine=vllm,max_batch=64,max_batched_tokens=64", "engine=sglang,max_batch=64,max_batched_tokens=32"):
        assert runner.invoke(main, ["serve", str(p), "--plan", plan]).exit_code == 0, plan


def test_vllm_expert_parallel_is_all_or_nothing(tmp_path):
    """vLLM's --enable-expert-parallel makes the experts one group over all tp x dp GPUs: the search
    ranked vLLM plans with 1 < ep < tp (Qwen3-235B on 8 H200: 36 of them) whose --emit then failed
    ('cannot be expressed'), and `--plan engine=vllm,tp=4,ep=4... attn_dp` with ep 2 was emitted as ep 4.
    Such plans are now left out of the search and refused by --plan; SGLang keeps them (--ep-size)."""
    import json

    moe = {"name": "tiny-moe", "layers": 4, "hidden": 1024, "heads": 8, "kv_heads": 8, "ffn_hidden": 2048,
           "vocab": 32000, "moe": {"experts": 8, "top_k": 2, "expert_ffn_hidden": 512}}
    data = {**TINY_SERVE, "model": moe, "search": {"engines": ["vllm", "sglang"], "weights": ["bf16"],
                                               "kv_cache": ["bf16"], "tp": [4], "ep": [1, 2, 4]}}
    p = write_yaml(tmp_path, data)
    r = runner.invoke(main, ["serve", str(p), "--json", "--top", "10000"])
    assert r.exit_code == 0, r.output
    plans = [x["plan"] for x in json.loads(r.stdout)["plans"]]
    assert not [x for x in plans if x["engine"] == "vllm" and x["ep"] not in (1, x["tp"])], plans
    assert [x for x in plans if x["engine"] == "sglang" and x["ep"] == 2]
    for plan in ("engine=vllm,tp=4,ep=2", "engine=vllm,tp=4,ep=2,attn_dp=true"):
        r = runner.invoke(main, ["serve", str(p), "--plan", plan])
        assert r.exit_code == 2 and "--plan ep" in r.output, (plan, r.output)
    assert runner.invoke(main, ["serve", str(p), "--plan", "engine=sglang,tp=4,ep=2"]).exit_code == 0


def test_serve_emit_skips_a_ranked_plan_it_cannot_launch_and_writes_the_others(tmp_path):
    """On GB200 (4 GPUs a node) the search ranked vLLM attention-DP replicas of 8 GPUs first, and
    `serve --emit` failed on them after the search (exit 2, no file), as `solve --emit` does not: it
    skips such ranks with the reason and writes the rest. A single --plan still exits 2."""
    moe = {"name": "tiny-moe", "layers": 4, "hidden": 1024, "heads": 8, "kv_heads": 8, "ffn_hidden": 2048,
           "vocab": 32000, "moe": {"experts": 8, "top_k": 2, "expert_ffn_hidden": 512}}
    data = {**TINY_SERVE, "model": moe, "cluster": {"node": "gb200-nvl72", "nodes": 2},
            "search": {"engines": ["vllm", "sglang"], "weights": ["bf16"], "kv_cache": ["bf16"], "tp": [8],
                       "ep": [8]}}
    p = write_yaml(tmp_path, data)
    out = tmp_path / "emit"
    r = runner.invoke(main, ["serve", str(p), "--emit", str(out), "--top", "4"])
    assert r.exit_code == 0 and "skipped rank" in r.output and "several nodes" in r.output, r.output
    written = sorted(x.name for x in out.iterdir())
    assert written and len(written) < 4, written
    r = runner.invoke(main, ["serve", str(p), "--plan", "engine=vllm,tp=8,ep=8,attn_dp=true",
                             "--emit", str(tmp_path / "one")])
    assert r.exit_code == 2 and "several nodes" in r.output, r.output


def test_multi_node_readme_names_only_the_launchers_it_wrote(tmp_path):
    """A TensorRT-LLM replica over two GB200 trays gets no k8s.yaml (README: 'needs an MPI launcher'),
    yet the README's last line said 'slurm.sbatch and the LeaderWorkerSet do it for you'."""
    moe = {"name": "tiny-moe", "layers": 4, "hidden": 1024, "heads": 8, "kv_heads": 8, "ffn_hidden": 2048,
           "vocab": 32000, "moe": {"experts": 8, "top_k": 2, "expert_ffn_hidden": 512}}
    p = write_yaml(tmp_path, {**TINY_SERVE, "model": moe, "cluster": {"node": "gb200-nvl72", "nodes": 2}})
    out = tmp_path / "emit"
    r = runner.invoke(main, ["serve", str(p), "--plan", "engine=trtllm,tp=8,ep=8", "--emit", str(out)])
    assert r.exit_code == 0, r.output
    readme = (out / "README.txt").read_text()
    assert not (out / "k8s.yaml").exists() and "LeaderWorkerSet" not in readme, readme
