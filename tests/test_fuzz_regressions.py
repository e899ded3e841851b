"""Regressions of issue 13: bad inputs that crashed (traceback), hung, or were read silently wrong.
Each test rebuilds the reproducer described in the issue and asserts a clean exit 2 that names the
key (or the correct answer)."""

import json

import pytest
from click.testing import CliRunner

from planner.cli import main

from conftest import HF, write

runner = CliRunner()
BASE = "model: llama-3.1-8b\ntraining: {seq_len: 4096, global_batch: 64, tokens: 1.0e9}\n"


def run(*args):
    r = runner.invoke(main, [str(a) for a in args])
    assert "Traceback" not in r.output and not (r.exception and not isinstance(r.exception, SystemExit)), \
        f"{args}: {r.exception!r}\n{r.output}"
    return r


def scenario(tmp_path, nodes="1", extra="", base=BASE, name="s.yaml"):
    return write(tmp_path, name, f"cluster: {{node: dgx-h100, nodes: {nodes}}}\n{base}{extra}")


@pytest.mark.parametrize("nodes", ["[2, 4]", "{min: 1, max: 3}", "[2]", "[1, 1, 1]"])
def test_validate_node_lists(tmp_path, nodes):
    r = run("validate", scenario(tmp_path, nodes))
    assert r.exit_code == 0 and "valid scenario" in r.output


@pytest.mark.parametrize("nodes,gpus", [("[2]", 16), ("[1, 1, 1]", 8)])
def test_estimate_and_export_single_count_list(tmp_path, nodes, gpus):
    p = scenario(tmp_path, nodes)
    r = run("estimate", p, "--plan", "tp=8", "--json")
    assert r.exit_code == 0, r.output
    q = json.loads(r.stdout)["plan"]
    assert q["dp"] * q["tp"] * q["pp"] * q["cp"] == gpus
    r = run("export", p, "--plan", "tp=8", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output


def test_estimate_several_counts_names_key(tmp_path):
    r = run("estimate", scenario(tmp_path, "[2, 4]"), "--plan", "tp=8")
    assert r.exit_code == 2 and "cluster.nodes" in r.output


def test_node_count_list_capped(tmp_path):
    r = run("validate", scenario(tmp_path, str(list(range(1, 300)))))
    assert r.exit_code == 2 and "cluster.nodes" in r.output and "at most 256" in r.output


@pytest.mark.parametrize("nodes,key", [("yes", "cluster.nodes"), ("[true]", "cluster.nodes.0"),
                                       ("on", "cluster.nodes")])
def test_yaml_booleans_are_not_counts(tmp_path, nodes, key):
    r = run("validate", scenario(tmp_path, nodes))
    assert r.exit_code == 2 and key in r.output and "boolean" in r.output


def test_yaml_boolean_batch_and_search_degree(tmp_path):
    r = run("validate", scenario(tmp_path, base=BASE.replace("global_batch: 64", "global_batch: on")))
    assert r.exit_code == 2 and "training.global_batch" in r.output
    r = run("validate", scenario(tmp_path, extra="search: {tp: [true]}\n"))
    assert r.exit_code == 2 and "search.tp" in r.output


@pytest.mark.parametrize("text,where", [
    ("training: {seq_len: 8, global_batch: 1, tokens: 1.0e9}\n", "'training'"),
    ("search: {tp: [1], tp: [2]}\n", "'tp'"),
])
def test_duplicate_yaml_keys(tmp_path, text, where):
    r = run("validate", scenario(tmp_path, extra=text))
    assert r.exit_code == 2 and "duplicate key" in r.output and where in r.output


def test_yaml_merge_key_may_be_overridden(tmp_path):
    p = write(tmp_path, "m.yaml", "cluster: {node: dgx-h100, nodes: 1}\nmodel: llama-3.1-8b\n"
              "training:\n  <<: {seq_len: 4096, global_batch: 64, tokens: 1.0e9}\n  seq_len: 2048\n")
    assert run("validate", p).exit_code == 0


@pytest.mark.parametrize("plan,key", [("zero=3,zero=0", "zero"), ("", "--plan"), (" , ", "--plan")])
def test_plan_string_duplicates_and_empty(tmp_path, plan, key):
    r = run("estimate", scenario(tmp_path), "--plan", plan)
    assert r.exit_code == 2 and key in r.output


def test_hf_config_directory(tmp_path):
    folder = tmp_path / "llama"
    folder.mkdir()
    (folder / "config.json").write_text((HF / "llama-3.1-8b.json").read_text())
    p = scenario(tmp_path, base=BASE.replace("llama-3.1-8b", "{hf_config: llama}"))
    r = run("validate", p)
    assert r.exit_code == 0 and "model llama" in r.output
    catalog = json.loads(run("model", "llama-3.1-8b", "--json").stdout)["params_total"]
    for target in (folder / "config.json", folder):
        r = run("model", target, "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["params_total"] == catalog


def hf_variant(tmp_path, **change):
    cfg = {**json.loads((HF / "llama-3.1-8b.json").read_text()), **change}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return scenario(tmp_path, base=BASE.replace("llama-3.1-8b", "{hf_config: config.json}"))


@pytest.mark.parametrize("change,key", [({"model_type": []}, "model_type"), ({"head_dim": 0}, "head_dim"),
                                        ({"head_dim": False}, "head_dim")])
def test_hf_config_bad_values(tmp_path, change, key):
    r = run("validate", hf_variant(tmp_path, **change))
    assert r.exit_code == 2 and key in r.output


def test_learned_positions_shorter_than_sequence(tmp_path):
    model = ("model: {name: g, layers: 2, hidden: 256, heads: 4, ffn_hidden: 1024, vocab: 1000, "
             "position: learned, max_seq_len: 1024}")
    r = run("validate", scenario(tmp_path, base=BASE.replace("model: llama-3.1-8b", model)))
    assert r.exit_code == 2 and "training.seq_len" in r.output and "max_seq_len" in r.output


def test_budget_without_price_names_price_keys(tmp_path):
    p = write(tmp_path, "s.yaml", f"cluster: {{node: hgx-b300, nodes: 1}}\n{BASE}budget: {{max_usd: 1.0e30}}\n")
    r = run("validate", p)
    assert r.exit_code == 2 and "budget.max_usd" in r.output and "cloud_usd_per_gpu_hour" in r.output


def listing(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes() if p.is_file() else None) for p in folder.rglob("*"))


@pytest.mark.parametrize("args", [["-o", "{f}/sub"], ["-o", "{f}"]])
def test_export_below_or_onto_a_file(tmp_path, args):
    (tmp_path / "afile").write_text("x")
    args = [a.format(f=tmp_path / "afile") for a in args]
    r = run("export", scenario(tmp_path), "--plan", "tp=8", *args)
    assert r.exit_code == 2 and "afile" in r.output
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize("option", ["--report", "--emit"])
def test_solve_outputs_below_a_file(tmp_path, option):
    (tmp_path / "afile").write_text("x")
    r = run("solve", scenario(tmp_path), option, tmp_path / "afile" / "sub")
    assert r.exit_code == 2 and "afile" in r.output


def test_export_name_taken_by_a_directory_changes_nothing(tmp_path):
    out = tmp_path / "out"
    assert run("export", scenario(tmp_path), "--plan", "tp=8", "-o", out).exit_code == 0
    (out / "README.txt").unlink()
    (out / "README.txt").mkdir()
    (out / "README.txt" / "mine").write_text("keep")
    before = listing(tmp_path)
    r = run("export", scenario(tmp_path), "--plan", "tp=4", "-o", out, "--force")
    assert r.exit_code == 2 and "README.txt" in r.output
    assert listing(tmp_path) == before


@pytest.mark.parametrize("existing", [False, True])
def test_export_failing_midway_leaves_nothing(tmp_path, monkeypatch, existing):
    """The third file fails to be written: a new folder is not created at all, an existing one keeps its
    files unchanged, and no temporary folder is left next to it."""
    import planner.export as ex

    out, sc = tmp_path / "new" / "out", scenario(tmp_path)
    if existing:
        assert run("export", sc, "--plan", "tp=8", "-o", out).exit_code == 0
        (out / "notes.md").write_text("mine")
    before = listing(tmp_path)
    real, calls = ex.os.replace, []

    def failing(src, dst, *a, **k):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(dst))
        return real(src, dst, *a, **k)

    real_fsync, writes = ex.os.fsync, []

    def failing_fsync(fd):
        writes.append(fd)
        if len(writes) == 3:
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(ex.os, "replace", failing)
    monkeypatch.setattr(ex.os, "fsync", failing_fsync)
    r = run("export", sc, "--plan", "framework=deepspeed,zero=1", "-o", out, "--force")
    assert r.exit_code == 2 and "No space left" in r.output
    assert listing(tmp_path) == before
    monkeypatch.setattr(ex.os, "fsync", real_fsync)
    writes.clear()
    if existing:  # the staging succeeds, the third move into the folder fails: everything is put back
        calls.clear()
        r = run("export", sc, "--plan", "framework=deepspeed,zero=1", "-o", out, "--force")
        assert r.exit_code == 2 and len(calls) >= 3
        assert listing(tmp_path) == before


def test_export_rank_beyond_the_plans_is_bad_input(tmp_path):
    r = run("export", scenario(tmp_path), "--rank", "10000", "-o", tmp_path / "o")
    assert r.exit_code == 2 and "--rank" in r.output and not (tmp_path / "o").exists()


PURCHASE = """budget_usd: {budget}
clusters:
  - {{name: a, node: hgx-h100, nodes: [1, 2], cloud: {{usd_per_gpu_hour: {price}}}}}
workloads:
  - {{name: w, model: llama-3.1-8b, seq_len: 4096, global_batch: 64, tokens: 1.0e9}}
"""


@pytest.mark.parametrize("budget,price,key", [("1.0e17", "2.0", "budget_usd"),
                                              ("1.0e6", "1e300", "clusters.0.cloud.usd_per_gpu_hour"),
                                              ("1.0e6", ".inf", "clusters.0.cloud.usd_per_gpu_hour")])
def test_money_out_of_range_is_bad_input(tmp_path, budget, price, key):
    r = run("compare", write(tmp_path, "p.yaml", PURCHASE.format(budget=budget, price=price)))
    assert r.exit_code == 2 and key in r.output


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "1e16"])
def test_budget_option_out_of_range(tmp_path, value):
    r = run("compare", write(tmp_path, "p.yaml", PURCHASE.format(budget="1.0e6", price="2.0")), "--budget", value)
    assert r.exit_code == 2 and "--budget" in r.output


def test_largest_money_values_solve(tmp_path):
    """The largest accepted prices and budget reach the CP-SAT mix without overflow."""
    r = run("compare", write(tmp_path, "p.yaml", PURCHASE.format(budget="1.0e15", price="1.0e12")), "--json")
    assert r.exit_code in (0, 1), r.output
    mix = json.loads(r.stdout)["best_mix"]
    assert mix["status"] in ("optimal", "feasible (time limit)", "infeasible")
    if mix["cost_usd"] is not None:
        assert mix["cost_usd"] <= 1.0e15


@pytest.mark.parametrize("path", ["", " ", "a\nb"])
def test_empty_or_control_output_paths(tmp_path, path):
    r = run("export", scenario(tmp_path), "--plan", "tp=8", "-o", path, "--force")
    assert r.exit_code == 2 and "--output" in r.output


def test_purchase_searches_capped(tmp_path):
    # 100 clusters x 256 counts x 2 workloads = 51,200 searches: above the cap (one workload's sweep is not)
    clusters = "".join(f"  - {{name: c{i}, node: hgx-h100, nodes: {{min: 1, max: 256}}, cloud: {{}}}}\n"
                       for i in range(100))
    work = "".join(f"  - {{name: w{i}, model: llama-3.1-8b, seq_len: 4096, global_batch: 64, tokens: 1.0e9}}\n"
                   for i in range(2))
    p = write(tmp_path, "p.yaml", f"clusters:\n{clusters}workloads:\n{work}")
    r = run("validate", p)
    assert r.exit_code == 2 and "plan searches" in r.output and "51200" in r.output


@pytest.mark.skipif(not __import__("os").path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_files_are_refused_not_read_forever(tmp_path):
    r = run("validate", "/dev/zero")
    assert r.exit_code == 2 and "not a regular file" in r.output
    p = scenario(tmp_path, base=BASE.replace("llama-3.1-8b", "{hf_config: /dev/zero}"))
    r = run("validate", p)
    assert r.exit_code == 2 and "model.hf_config" in r.output and "not a regular file" in r.output


def test_huge_input_is_refused(tmp_path):
    p = tmp_path / "big.yaml"
    with open(p, "wb") as fh:
        fh.truncate(17 * 2 ** 20)  # sparse: no disk used
    r = run("validate", p)
    assert r.exit_code == 2 and "MiB" in r.output


def test_vary_below_minus_100_percent_is_refused():
    from planner.errors import InputError
    from planner.purchase import parse_vary

    assert parse_vary(["price=-100%"]) == [("price", (-1.0,))]
    for text in ("price=-200%", "power=±150%"):
        with pytest.raises(InputError, match="below zero"):
            parse_vary([text])


def test_emit_writes_at_most_the_top_100(tmp_path, monkeypatch):
    import planner.export as ex

    monkeypatch.setattr(ex, "MAX_EMIT", 2)
    r = run("solve", scenario(tmp_path), "--top", "4", "--emit", tmp_path / "e")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == ["rank1", "rank2"]
    assert "ranks 3-4" in r.output


def test_dollar_signs_in_names_are_text_in_report_charts(tmp_path):
    """matplotlib read '$a_{$' in a cluster name as TeX and raised while drawing the report."""
    p = write(tmp_path, "p.yaml", "clusters:\n  - {name: '$a_{$', node: hgx-h100, nodes: [1, 2], cloud: {}}\n"
              "workloads:\n  - {name: '$w^{$', model: {name: t, layers: 2, hidden: 256, heads: 4, ffn_hidden: 512,"
              " vocab: 1000}, seq_len: 1024, global_batch: 8, tokens: 1.0e8}\n")
    r = run("compare", p, "--workers", "1", "--report", tmp_path / "r.html")
    assert r.exit_code == 0, r.output
    assert "$a_{$" in (tmp_path / "r.html").read_text()


def test_gpu_with_fp8_but_no_bf16_peak_is_refused(tmp_path):
    """Attention of FP8 plans runs at the bf16 peak: without it every time was infinite (and --json raised)."""
    node = ("{name: n, gpus_per_node: 8, scaleup_gb_s: 450, gpu: {name: g, memory_gib: 80, hbm_tb_s: 3.35, "
            "tflops: {fp8: 1979}}}")
    p = write(tmp_path, "s.yaml", f"cluster: {{node: {node}, nodes: 1}}\n{BASE}")
    r = run("validate", p)
    assert r.exit_code == 2 and "cluster.node.gpu" in r.output and "bf16" in r.output
