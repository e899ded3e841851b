"""`planner serve`: load the scenario, search or estimate, print, and write --emit / --report files.

The launch files come from planner.serve.launch.serving_files(scenario, result) -> {name: text}
and the report from planner.serve.report.write_serving_report(result, scenario, path, force); both
are optional modules: without them the command says so and exits 2 before any work."""

from __future__ import annotations

from pathlib import Path

from planner import jsonout
from planner.errors import InputError


def _launch_builder():
    try:
        from planner.serve.launch import serving_files
    except ImportError:
        return None
    return serving_files


def _report_writer():
    try:
        from planner.serve.report import write_serving_report
    except ImportError:
        return None
    return write_serving_report


def emit_plans(sc, plans: list[dict], out_dir: str, force: bool) -> tuple[list[Path], list[str]]:
    """Write each plan's launch files to out_dir/rank<k> atomically (planner.atomic.write_atomic).
    Returns (paths written, messages for the ranked plans whose launch is not emitted, which are
    skipped as `export_ranked` skips training plans); a single plan that cannot be emitted is an error."""
    from planner.atomic import write_atomic
    from planner.export import check_not_linked, check_target

    build = _launch_builder()
    root = Path(out_dir)
    check_target(root, force)
    if len(plans) > 1:
        for k in range(1, len(plans) + 1):
            check_not_linked(root / f"rank{k}")
    built, skipped = [], []
    for k, r in enumerate(plans, 1):  # build everything before writing
        try:
            built.append((k, build(sc, r)))
        except InputError as exc:
            if len(plans) == 1:
                raise
            skipped.append(f"rank {k}: {exc}")
    paths = []
    for k, files in built:
        d = root / (f"rank{k}" if len(plans) > 1 else "")
        d.mkdir(parents=True, exist_ok=True)
        from planner.serve.launch import LAUNCH_NAMES

        for stale in LAUNCH_NAMES - set(files):  # with --force: never mix two plans' files
            (d / stale).unlink(missing_ok=True)
        for name, text in files.items():
            write_atomic(d / name, text, executable=name.endswith(".sh") or name.endswith(".sbatch"))
            paths.append(d / name)
    return paths, skipped


def run_serve(path, plan_text, as_json, top, objective, emit_dir, report_path, force, out, err) -> int:
    from planner.serve import render
    from planner.serve.search import estimate_serving, solve_serving
    from planner.spec.serving import load_serving_scenario

    if emit_dir:
        if _launch_builder() is None:
            raise InputError("--emit is not available in this build (planner.serve.launch is missing)")
        from planner.export import check_target

        check_target(Path(emit_dir), force)
    if report_path:
        if _report_writer() is None:
            raise InputError("--report is not available for serving in this build (planner.serve.report is missing)")
        from planner.export import check_output_file

        check_output_file(report_path, force)
    sc = load_serving_scenario(path)
    console = err if as_json else out
    if plan_text is not None:
        from planner.serve.plan import parse_serve_plan

        r = estimate_serving(sc, parse_serve_plan(plan_text, sc))
        if as_json:  # the plan's keys at the top (as `estimate`), and under plans[0] (as a search)
            print(jsonout.dumps({**r, "scenario": sc.name, "plans": [r]}, indent=2))
        else:
            render.render_one(r, out)
        plans, result = [r], {"scenario": sc.name, "plans": [r]}
    else:
        result = solve_serving(sc, objective=objective, top=top)
        if as_json:
            print(jsonout.dumps(result, indent=2))
        elif result["plans"]:
            render.render_serve(result, out)
        else:
            render.render_infeasible(result, out)
        plans = result["plans"]
    from planner.serve import engines as E

    if plan_text is None:  # a searched scheme that means nothing for this model was left out: say why
        for scheme in sc.search.weights:
            if E.model_problem(scheme, sc.model):
                console.print(f"note: weights={scheme} left out: {E.model_problem(scheme, sc.model)}", soft_wrap=True)
    for scheme in dict.fromkeys(r["plan"]["weights"] for r in plans):
        note = E.weight_only_note(scheme, sc.cluster.node.gpu)
        if note:
            console.print(f"note: {note}", soft_wrap=True)
    if report_path:  # written when no plan qualifies too: it holds the reasons and the nearest fixes
        console.print(f"wrote {_report_writer()(result, sc, report_path, force=force)}", soft_wrap=True)
    if not plans:
        return 1
    if emit_dir:
        paths, skipped = emit_plans(sc, plans, emit_dir, force)
        console.print(f"wrote {len(paths)} files to {emit_dir}", soft_wrap=True)
        for msg in skipped:
            console.print(f"skipped {msg}", soft_wrap=True, markup=False)
    return 0
