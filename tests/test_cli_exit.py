"""`python -m planner` ends the process at once after its command (planner.cli.run: os._exit, no
interpreter teardown). Its output must still be complete and its exit code the command's, also where
stdout is a pipe that Python block-buffers (PYTHONUNBUFFERED unset: output left in the buffer would be lost)."""

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from planner.cli import main

from conftest import ROOT, write


def _planner(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-m", "planner", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)


def test_json_output_is_complete():
    r = _planner("catalog", "gpus", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(r.stdout) > 8192  # more than one buffer: a lost tail would show
    assert r.stdout == CliRunner().invoke(main, ["catalog", "gpus", "--json"]).output
    assert [e["name"] for e in json.loads(r.stdout)]


def test_printed_json_is_flushed():
    """`serve --json` prints (no flush of its own): run() flushes stdout before the process ends."""
    args = ["serve", "scenarios/serve_70b.yaml", "--plan", "engine=trtllm,weights=fp8,kv_cache=fp8,tp=2", "--json"]
    r = _planner(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout and r.stdout == CliRunner().invoke(main, args).output
    assert json.loads(r.stdout)["plan"]


def test_table_output_is_complete():
    r = _planner("catalog", "nodes")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "dgx-h100" in r.stdout and r.stdout.endswith("\n")


def test_bad_input_still_exits_2_with_its_message(tmp_path):
    p = write(tmp_path, "s.yaml", "model: llama-3.1-8b\ncluster: {node: dgx-h100, nodes: 0}\n"
                                   "training: {seq_len: 4096, global_batch: 8, tokens: 1e9}\n")
    r = _planner("validate", p)
    assert r.returncode == 2
    assert "cluster.nodes" in r.stderr and str(p) in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_usage_error_exits_2():
    r = _planner("solve")
    assert r.returncode == 2 and "Missing argument" in r.stderr


def test_help_texts_print_percent_signs_once():
    """click does not %-format option help: '1%%' was printed as written."""
    for cmd in ("solve", "estimate", "serve", "compare", "export"):
        r = CliRunner().invoke(main, [cmd, "--help"])
        assert r.exit_code == 0 and "%%" not in r.output, (cmd, r.output)


def test_names_that_read_as_rich_markup_print_as_text(tmp_path):
    """A scenario or node named '[/]' or '[/bold]' raised rich's MarkupError (a traceback) in the
    solve, serve and compare tables and headers."""
    node = '{name: "[/]", gpu: l40s, gpus_per_node: 8, scaleup_gb_s: 31, scaleup_domain: 8}'
    train = write(tmp_path, "t.yaml", f'name: "[/bold] x"\nmodel: llama-3.1-8b\ncluster: {{node: {node}, nodes: 1}}\n'
                                      "training: {seq_len: 4096, global_batch: 64, tokens: 1.0e10}\n")
    serve = write(tmp_path, "s.yaml", f'name: "[/bold] x"\nmodel: llama-3.1-405b\ncluster: {{node: {node}, nodes: 1}}\n'
                                      "serving: {input_tokens: 2048, output_tokens: 512, requests_per_s: 10}\n"
                                      "search: {weights: [bf16]}\n")
    purchase = write(tmp_path, "p.yaml", 'name: "[/]"\nclusters:\n'
                                         '  - {name: "[/]", node: hgx-h100, nodes: [1], cloud: {usd_per_gpu_hour: 2}}\n'
                                         'workloads:\n  - {name: "[/bold]", model: llama-3.1-8b, seq_len: 4096, '
                                         'global_batch: [64, 128], tokens: 1.0e10}\n')
    for args, code in ((["solve", train], 0), (["serve", serve], 1), (["compare", purchase], 0)):
        r = _planner(*args)
        assert r.returncode == code and "Traceback" not in r.stderr + r.stdout, (args, r.stderr[-1500:])
        assert "[/bold]" in r.stdout or "[/]" in r.stdout


def test_import_behind_loads_the_module_and_leaves_failures_to_the_caller():
    """cli._import_behind: the module is imported in a background thread (the report's charts while
    the search runs); an import that fails there raises nothing, and the caller's own import raises it."""
    import threading

    from planner import cli

    before = set(threading.enumerate())
    cli._import_behind("planner.report.charts")
    cli._import_behind("planner_no_such_module")
    for t in set(threading.enumerate()) - before:
        t.join(60)
    assert "planner.report.charts" in sys.modules
    assert "planner_no_such_module" not in sys.modules


def test_report_is_the_same_with_charts_imported_behind(tmp_path):
    """`compare --report` in a fresh process (matplotlib imported in a thread while the search runs)
    writes the same HTML as the same command in process (matplotlib already imported)."""
    import planner.report.charts  # noqa: F401 - in process: no import left to the thread

    purchases = ROOT / "scenarios" / "purchases.yaml"
    fresh, here = tmp_path / "fresh.html", tmp_path / "here.html"
    r = _planner("compare", purchases, "--json", "--report", fresh)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    assert CliRunner().invoke(main, ["compare", str(purchases), "--json", "--report", str(here)]).exit_code in (0, 1)
    assert _stable(fresh.read_text()) == _stable(here.read_text())


def _stable(html: str) -> str:
    """The report without what differs between any two runs: the search's seconds and matplotlib's
    SVG ids (salted at random per chart: rcParams svg.hashsalt None) with the ids' prefixes made of them."""
    import re

    html = re.sub(r"in \d+(\.\d+)? s\b", "in ? s", html)
    html = re.sub(r"\bs[0-9a-f]{10}-", "", html)
    return re.sub(r"\b[a-z][0-9a-f]{10}\b", "?", html)
