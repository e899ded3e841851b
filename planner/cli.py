"""Command line: parse arguments, call the library, render. No modelling here.

Exit codes: 0 success; 1 the scenario is valid but nothing fits; 2 bad input (no traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from planner import catalog
from planner.errors import InputError
from planner.report import console as render

# Piped output gets a wide console so the plan table is not squeezed to 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 170)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 170)


def _fail_input(exc: InputError) -> None:
    err.print(f"[red]error:[/] {exc}", markup=True, soft_wrap=True)
    sys.exit(2)


def _emit_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, allow_nan=False))


class _Group(click.Group):
    """Turns InputError raised anywhere in a command into a clean message and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            _fail_input(exc)


@click.group(cls=_Group)
@click.version_option(package_name="planner")
def main():
    """Hardware-aware deployment planner for large-model training."""


def _with_progress(work, steps: int):
    """Run work(progress) with a rich progress bar on stderr when there are several steps."""
    if steps <= 1 or not sys.stderr.isatty():
        return work(None)
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("searching node counts", total=steps)
        return work(lambda done, total: bar.update(task, completed=done))


def _scenario(path: str):
    from planner.spec import load_scenario

    return load_scenario(path)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--top", type=click.IntRange(1, 10000), help="number of plans to show (default: the scenario's top)")
@click.option("--objective", type=click.Choice(["throughput", "time", "cost"]), help="ranking objective")
@click.option("--exhaustive", is_flag=True, help="enumerate layouts by brute force instead of CP-SAT (a cross-check)")
@click.option("--json", "as_json", is_flag=True, help="print the JSON result")
def solve(scenario, top, objective, exhaustive, as_json):
    """Search every plan of SCENARIO and rank those that fit."""
    from planner.search.solver import solve as run_solve

    sc = _scenario(scenario)
    result = _with_progress(lambda progress: run_solve(sc, objective=objective, top=top, exhaustive=exhaustive,
                                                       progress=progress), len(sc.cluster.node_counts))
    if as_json:
        _emit_json(result)
    elif result["plans"]:
        render.render_solve(result, out)
    else:
        render.render_infeasible(result, out)
    if not result["plans"]:
        sys.exit(1)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--plan", "plan_text", required=True,
              help='e.g. "tp=8,pp=2,dp=1,zero=1,mbs=1,recompute=selective,precision=bf16"')
@click.option("--json", "as_json", is_flag=True, help="print the JSON result")
def estimate(scenario, plan_text, as_json):
    """Evaluate one given plan of SCENARIO (memory, time, cost), whether it fits or not."""
    from planner.estimate.evaluate import estimate as run_estimate
    from planner.spec import parse_plan

    sc = _scenario(scenario)
    plan = parse_plan(plan_text).resolved(sc)
    r = run_estimate(sc, plan)
    if as_json:
        _emit_json(r)
    else:
        render.render_estimate(r, out)


@main.command()
@click.argument("target")
@click.option("--seq-len", type=click.IntRange(1, 2**24), help="sequence length for FLOPs (default: scenario's or 4096)")
@click.option("--json", "as_json", is_flag=True, help="print the JSON result")
def model(target, seq_len, as_json):
    """Parameter counts and FLOPs of a catalog model NAME, a SCENARIO file or a HF config.json."""
    from planner.arch import summary
    from planner.spec.load import load_yaml, read_hf_config, resolve_scenario_dict, validate_model
    from planner.spec.model import ModelSpec

    p = Path(target)
    seq = seq_len or 4096
    if p.suffix == ".json":
        spec = validate_model(ModelSpec, read_hf_config(p, file=target), file=target)
    elif p.suffix in (".yaml", ".yml"):
        data = load_yaml(p)
        if isinstance(data, dict) and "model" in data:
            sc = _scenario(target)
            spec, seq = sc.model, seq_len or sc.training.seq_len
        else:
            spec = validate_model(ModelSpec, resolve_scenario_dict({"model": data}, p.parent, target)["model"],
                                  file=target)
    else:
        spec = catalog.model(target) if target in catalog.names("models") else None
        if spec is None:
            catalog.model_entry(target, key="model")  # raises with suggestions
    s = summary(spec, seq)
    if as_json:
        _emit_json(s)
    else:
        render.render_model(s, out)


@main.command(name="catalog")
@click.argument("kind", type=click.Choice(list(catalog.KINDS)))
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="print the JSON entries")
def catalog_cmd(kind, name, as_json):
    """List the built-in GPUS, NODES or MODELS (or one entry by NAME)."""
    if name:
        entries = [catalog.entry(kind, name, key=kind)]
    else:
        entries = [catalog.entry(kind, n) for n in catalog.names(kind)]
    if as_json:
        _emit_json(entries)  # always a list, also for one NAME
    else:
        if name:
            out.print_json(json.dumps(entries[0]))
        else:
            render.render_catalog(kind, entries, out)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file):
    """Check a scenario FILE; exit 2 with the key at fault if it is invalid."""
    from planner.spec import validate as run_validate

    click.echo(run_validate(file))


if __name__ == "__main__":
    main()
