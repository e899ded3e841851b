"""The HTML report: its sections and charts, no external resources, the pipeline timeline against the
performance model's bubble, the infeasible report, atomic writes and the CLI's --report."""

import re

import networkx as nx
import numpy as np
import pytest
from click.testing import CliRunner

from planner import estimate, load_scenario, parse_plan, solve
from planner.cli import main
from planner.errors import InputError
from planner.estimate.pipeline import bubble_s
from planner.report.html import write_report
from planner.report.timeline import schedule_graph, stage_order, timeline

from conftest import write

SEARCH = ("{frameworks: [megatron], precision: [bf16], zero: [1], offload: [none], offload_params: [none], "
          "recompute: [selective], micro_batch: [1]")
PIPELINED = f"""name: qwen2.5-32b pipelined
model: qwen2.5-32b
cluster: {{node: dgx-h100, nodes: NODES}}
training: {{seq_len: 4096, global_batch: 64, tokens: 1.0e10}}
search: {SEARCH}, fixed: {{pp: 2}}}}
top: 4
"""
INFEASIBLE = """name: llama-3.1-70b on one A100 40GB node, no offload, no recompute
model: llama-3.1-70b
cluster: {node: hgx-a100-40gb, nodes: 1}
training: {seq_len: 4096, global_batch: 64, tokens: 2.0e8}
search: {offload: [none], offload_params: [none], recompute: [none], micro_batch: [2]}
"""
PURCHASES = f"""name: two small clusters
clusters:
  - {{name: h100-cloud, node: hgx-h100, nodes: [1, 2], cloud: {{usd_per_gpu_hour: 2.99}}}}
  - {{name: a100-cloud, node: dgx-a100-80gb, nodes: [1, 2], cloud: {{usd_per_gpu_hour: 1.5}}}}
workloads:
  - {{name: short, model: llama-3.1-8b, seq_len: 4096, global_batch: 64, tokens: 1.0e10, search: {SEARCH}}}}}
  - {{name: half, model: llama-3.1-8b, seq_len: 2048, global_batch: 64, tokens: 1.0e10, weight: 2,
     search: {SEARCH}}}}}
"""
runner = CliRunner()


@pytest.fixture(scope="module")
def pipelined(tmp_path_factory):
    path = write(tmp_path_factory.mktemp("sc"), "pp.yaml", PIPELINED.replace("NODES", "2"))
    sc = load_scenario(path)
    return sc, solve(sc)


def charts_of(text: str) -> list[str]:
    return re.findall(r'<figure class="chart" data-chart="([a-z-]+)"', text)


def external_references(text: str) -> list[str]:
    """src/href attributes and CSS url()s that point outside the file, and script or link elements."""
    refs = re.findall(r'(?:src|href)\s*=\s*["\']?\s*((?:https?:)?//[^"\'\s>]*)', text, flags=re.I)
    refs += re.findall(r"url\(\s*['\"]?\s*((?:https?:)?//[^)]*)\)", text, flags=re.I)
    refs += re.findall(r"<script\b[^>]*>|<link\b[^>]*>|@import", text, flags=re.I)
    return refs


def test_report_sections_and_one_svg_per_chart(pipelined, tmp_path):
    sc, result = pipelined
    assert [p["plan"]["pp"] for p in result["plans"]] == [2] * 4
    path = write_report(result, sc, tmp_path / "r.html")
    text = path.read_text()
    for sid in ("summary", "plans", "plan-1", "plan-2", "plan-3", "tradeoffs"):
        assert f'<section id="{sid}">' in text
    assert 'id="plan-4"' not in text and 'id="infeasible"' not in text
    kinds = charts_of(text)
    # one timeline per distinct pipeline schedule of the top three; the others say which one they share
    schedules = [(p["plan"]["pp"], p["plan"]["vpp"], p["plan"]["ga"]) for p in result["plans"][:3]]
    assert kinds.count("memory") == 3 and kinds.count("time") == 3
    assert kinds.count("timeline") == len(set(schedules))
    assert text.count('class="timeline-same"') == 3 - len(set(schedules))
    assert kinds.count("tradeoff") == 1 and kinds.count("tradeoff-memory") == 1 and "pareto" not in kinds
    assert text.count("<svg") == len(kinds) == 8 + len(set(schedules))
    assert external_references(text) == []
    assert "<!DOCTYPE svg" not in text and "<?xml" not in text
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "element ids must be unique across the inline SVGs"
    # the summary's figures are the scenario's
    assert f"{result['considered']:,} considered" in text and "32,763,876,352 parameters total" in text


def test_a_repeated_pipeline_schedule_is_drawn_once(pipelined, tmp_path):
    sc, result = pipelined
    first = result["plans"][0]
    same = {**result, "plans": [first, first, *result["plans"][1:]]}
    text = write_report(same, sc, tmp_path / "same.html").read_text()
    assert charts_of(text).count("memory") == 3
    assert charts_of(text).count("timeline") == len({(p["plan"]["pp"], p["plan"]["vpp"], p["plan"]["ga"])
                                                      for p in same["plans"][:3]})
    assert text.count('class="timeline-same"') >= 1
    assert "the same schedule as plan #1" in text and f"{first['time']['breakdown_s']['pp_bubble']:.4g} s." in text


def test_multi_count_report_has_the_node_count_front(tmp_path):
    sc = load_scenario(write(tmp_path, "m.yaml", PIPELINED.replace("NODES", "[1, 2]")))
    result = solve(sc)
    assert result.get("pareto")
    text = write_report(result, sc, tmp_path / "m.html").read_text()
    assert charts_of(text).count("pareto") == 1
    assert text.count("<svg") == len(charts_of(text))


@pytest.mark.parametrize("pp,m,vpp", [(2, 1, 1), (2, 8, 1), (4, 4, 1), (4, 3, 1), (4, 16, 1), (8, 8, 1),
                                      (2, 4, 2), (4, 4, 2), (4, 8, 2), (4, 12, 3), (8, 16, 4), (2, 6, 5)])
def test_timeline_idle_equals_model_bubble(pp, m, vpp):
    f, b = 0.37, 0.91  # unequal forward and backward: the bubble depends only on their sum
    tl = timeline(pp, m, vpp, f, b)
    model = bubble_s({"pp": np.array(pp), "vpp": np.array(vpp)}, f + b)
    assert tl["idle_s"] == pytest.approx([float(model)] * pp, rel=1e-9)
    assert tl["makespan_s"] == pytest.approx(m * (f + b) + model, rel=1e-9)
    for s in range(pp):  # a stage runs one task at a time
        spans = sorted((a, e) for t, a, e in tl["tasks"] if t.stage == s)
        assert all(e <= a2 + 1e-12 for (_, e), (a2, _) in zip(spans, spans[1:]))


@pytest.mark.parametrize("pp,m,vpp", [(4, 8, 1), (4, 8, 2), (2, 6, 3)])
def test_schedule_graph_is_a_dag_of_every_task_once(pp, m, vpp):
    preds = schedule_graph(pp, m, vpp)
    g = nx.DiGraph([(q, t) for t, p in preds.items() for q in p])
    assert nx.is_directed_acyclic_graph(g) and g.number_of_nodes() == len(preds) == 2 * pp * m * vpp
    for s in range(pp):
        order = stage_order(pp, m, vpp, s)
        assert len(set(order)) == len(order) == 2 * m * vpp and all(t.stage == s for t in order)
    # 1F1B keeps at most pp - stage micro-batches in flight on a stage (Narayanan et al. 2021, Sec. 2.2);
    # the interleaved schedule at most its warm-up forwards + 1 chunk passes
    for s in range(pp):
        in_flight, most = 0, 0
        for t in stage_order(pp, m, vpp, s):
            in_flight += 1 if t.phase == "F" else -1
            most = max(most, in_flight)
        limit = min(pp - s, m) if vpp == 1 else min((pp - s - 1) * 2 + (vpp - 1) * pp + 1, m * vpp)
        assert most == limit
    # the last virtual stage turns each micro-batch around: its backward needs its own forward
    last = (pp * vpp - 1) % pp, (pp * vpp - 1) // pp
    assert all(g.has_edge(next(t for t in g if t.stage == last[0] and t.microbatch == mb and t.chunk == last[1]
                               and t.phase == "F"),
                          next(t for t in g if t.stage == last[0] and t.microbatch == mb and t.chunk == last[1]
                               and t.phase == "B")) for mb in range(m))


@pytest.mark.parametrize("plan", ["framework=megatron,tp=4,pp=2,zero=1,mbs=1,recompute=selective",
                                  "framework=megatron,tp=4,pp=2,vpp=4,zero=1,mbs=1,recompute=selective",
                                  "framework=megatron,tp=2,pp=4,vpp=2,zero=1,mbs=1,recompute=full"])
def test_plan_timeline_matches_the_estimate(pipelined, plan):
    from planner.report.timeline import plan_timeline

    sc, _ = pipelined
    row = estimate(sc, parse_plan(plan).resolved(sc))
    tl = plan_timeline(sc, row)
    assert tl["idle_s"] == pytest.approx([tl["model_bubble_s"]] * row["plan"]["pp"], rel=1e-6)
    assert tl["model_bubble_s"] == pytest.approx(row["time"]["breakdown_s"]["pp_bubble"], abs=2e-6)
    pipelined_s = sum(v for k, v in row["time"]["breakdown_s"].items()
                      if k not in ("dp_comm", "optimizer", "offload"))
    assert tl["step_makespan_s"] == pytest.approx(pipelined_s, abs=1e-5)
    assert 0.2 < tl["forward_s"] / (tl["forward_s"] + tl["backward_s"]) < 0.5


@pytest.mark.parametrize("pp,m,vpp", [(2, 8, 1), (4, 30, 1), (4, 17, 1), (8, 64, 1), (2, 16, 2), (4, 24, 2),
                                      (4, 40, 3)])
def test_shortened_timeline_has_the_steps_warm_up_cool_down_and_idle(pp, m, vpp):
    """The chart draws drawn_microbatches(pp, m) of m micro-batches: the same idle per stage, the same
    first and last tasks of every stage (relative to the start and the end), and the step's span
    once the missing micro-batches' busy time is added."""
    from planner.report.timeline import drawn_microbatches

    f, b = 0.37, 0.91
    k = drawn_microbatches(pp, m)
    assert 2 * pp <= k <= m and k % pp == m % pp and (k == m or k < 3 * pp)
    full, short = timeline(pp, m, vpp, f, b), timeline(pp, k, vpp, f, b)
    assert short["idle_s"] == pytest.approx(full["idle_s"], rel=1e-9)
    assert full["makespan_s"] == pytest.approx(short["makespan_s"] + (m - k) * (f + b), rel=1e-9)
    for s in range(pp):
        def ends(tl):
            spans = sorted((a, e) for n, a, e in tl["tasks"] if n.stage == s)
            head = [(round(a, 9), round(e, 9)) for a, e in spans[:2 * pp]]
            tail = [(round(tl["makespan_s"] - a, 9), round(tl["makespan_s"] - e, 9)) for a, e in spans[-2 * pp:]]
            return head, tail
        assert ends(full) == ends(short)


def test_infeasible_report_shows_the_overflow_and_the_fixes(tmp_path):
    sc = load_scenario(write(tmp_path, "inf.yaml", INFEASIBLE))
    result = solve(sc)
    assert not result["plans"] and result["closest"]
    text = write_report(result, sc, tmp_path / "inf.html").read_text()
    assert '<section id="infeasible">' in text and '<section id="plans">' not in text
    assert charts_of(text) == ["memory"] and text.count("<svg") == 1
    m = result["closest"]["memory"]
    assert f"by {m['per_gpu_gib'] - m['capacity_gib']:.1f} GiB (hatched)" in text
    assert 'hatch' in text or 'pattern' in text  # the overflow is drawn hatched
    for fix in result["closest"]["fixes"]:
        assert fix["change"] in text.replace("&#x27;", "'")
    assert external_references(text) == []


def test_overwrite_refused_without_force(pipelined, tmp_path):
    sc, result = pipelined
    path = tmp_path / "r.html"
    path.write_text("keep me")
    with pytest.raises(InputError) as exc:
        write_report(result, sc, path)
    assert str(path) in str(exc.value) and "--force" in str(exc.value)
    assert path.read_text() == "keep me"
    write_report(result, sc, path, force=True)
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary file left behind


def test_cli_solve_report(tmp_path):
    sc = write(tmp_path, "pp.yaml", PIPELINED.replace("NODES", "2"))
    out = tmp_path / "solve.html"
    r = runner.invoke(main, ["solve", str(sc), "--report", str(out)])
    assert r.exit_code == 0 and out.exists() and str(out) in r.output.replace("\n", "")
    r = runner.invoke(main, ["solve", str(sc), "--report", str(out)])
    assert r.exit_code == 2 and "--force" in r.output
    r = runner.invoke(main, ["solve", str(write(tmp_path, "inf.yaml", INFEASIBLE)), "--report",
                             str(tmp_path / "inf.html")])
    assert r.exit_code == 1 and (tmp_path / "inf.html").exists()


def test_cli_compare_report(tmp_path):
    pf = write(tmp_path, "buy.yaml", PURCHASES)
    out = tmp_path / "compare.html"
    r = runner.invoke(main, ["compare", str(pf), "--budget", "1e6", "--workers", "1", "--report", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    for sid in ("summary", "workload-1", "workload-2", "overall", "best-mix"):
        assert f'<section id="{sid}">' in text
    assert charts_of(text) == ["purchase"] * 3 and text.count("<svg") == 3
    assert external_references(text) == []


def test_offloading_plans_show_host_memory(tmp_path):
    sc = load_scenario(write(tmp_path, "o.yaml", "model: llama-3.1-8b\ncluster: {node: dgx-h100, nodes: 1}\n"
                                                 "training: {seq_len: 4096, global_batch: 64, tokens: 2.0e8}\n"
                                                 "search: {offload: [cpu], micro_batch: [1]}\n"))
    result = solve(sc)
    text = write_report(result, sc, tmp_path / "o.html").read_text()
    detailed = result["plans"][:3]
    assert detailed and all(p["plan"]["offload"] == "cpu" for p in detailed)
    for p in detailed:
        m = p["memory"]
        assert f"host RAM {m['host_per_node_gib']:.1f} GiB per node of {m['host_capacity_gib']:,.0f} GiB" in text
    assert text.count("<svg") == len(charts_of(text)) and external_references(text) == []


def test_point_clouds_and_deep_timelines_keep_the_page_small():
    """The trade-off chart of 50,000 plans is a density (one image), not 50,000 markers; a 32-stage,
    480-micro-batch timeline is drawn with 64 micro-batches, busy and idle as images."""
    from planner.report import charts
    from planner.report.timeline import drawn_microbatches

    rng = np.random.default_rng(0)
    n = 50_000
    cloud = {"x": rng.lognormal(10, 1, n), "tokens_per_s": rng.uniform(1e5, 1e6, n), "gpus": np.full(n, 2048)}
    svg = charts.tradeoff_chart(cloud, [(cloud["x"][0], cloud["tokens_per_s"][0])], "cost", "t", money=True)
    assert len(svg) < 300_000 and svg.count("<image") == 1
    few = {k: v[:500] for k, v in cloud.items()}
    assert charts.tradeoff_chart(few, [], "cost", "t").count("<image") == 0  # below the threshold: markers
    tl = timeline(32, drawn_microbatches(32, 480), 1, 0.37, 0.91)
    assert tl["microbatches"] == 64
    svg = charts.timeline_chart(tl, "deep")
    assert len(svg) < 400_000 and svg.count("<image") == 3


def test_report_of_a_batch_range_states_the_chosen_batch(tmp_path):
    """A global_batch range: the report's summary names the batch the search chose, inside the range,
    the one its top plan runs."""
    text = PIPELINED.replace("NODES", "2").replace("global_batch: 64", "global_batch: {min: 32, max: 128, step: 32}")
    sc = load_scenario(write(tmp_path, "range.yaml", text))
    result = solve(sc, points=True)
    chosen = result["batch"]["chosen"]
    assert chosen in (32, 64, 96, 128) and result["plans"][0]["plan"]["global_batch"] == chosen
    html = write_report(result, sc, tmp_path / "range.html").read_text()
    assert f"global batch 32 to 128 step 32 sequences (chosen: {chosen:,};" in html


def test_infeasible_report_lists_the_reasons_from_data_not_by_line_text(tmp_path):
    # The reasons come as their own list (the fixes as closest["fixes"]); the console's explanation is
    # the reasons then the fix lines. The report used to pick the reasons out of the explanation by
    # their text (lines not starting "  - " nor ending "that fit:").
    sc = load_scenario(write(tmp_path, "inf.yaml", INFEASIBLE))
    result = solve(sc)
    reasons, fixes = result["reasons"], result["closest"]["fixes"]
    assert reasons and result["explanation"][:len(reasons)] == reasons
    assert len(result["explanation"]) == len(reasons) + (len(fixes) + 1 if fixes else 0)
    text = write_report(result, sc, tmp_path / "inf.html").read_text().replace("&#x27;", "'")
    box = text[text.index('<div class="bad">'):text.index("</ul></div>")]
    assert box.count("<li>") == len(reasons) and all(line in box for line in reasons)
