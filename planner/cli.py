"""Command line: parse arguments, call the library, render. No modelling here.

Exit codes: 0 success; 1 the scenario is valid but nothing fits; 2 bad input (no traceback).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
from pathlib import Path

# numpy's OpenBLAS starts a worker thread per core when numpy is imported, unless told otherwise; the
# planner does no BLAS work (no matmul, dot or linalg: its arrays are elementwise), so the command line
# asks for one thread: 0.04-0.07 s CPU of every start-up on 2 cores. A value the user set is kept, and
# a process that imported numpy before this module keeps the threads it has.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# numpy on Linux asks for transparent huge pages (madvise MADV_HUGEPAGE) on every array of 4 MiB or
# more (numpy/__init__.py hugepage_setup; NUMPY_MADVISE_HUGEPAGE=0 turns it off). A huge page is
# zeroed whole (2 MiB) at its first touch, also where an array is written sparsely (the search's
# lookup tables over key spans leave absent keys unwritten): the 131,072-GPU range faulted in 233 huge
# pages, 0.2-0.3 s more system time than ordinary pages (a little less user time, likely fewer TLB misses;
# wall 3.76 -> 3.58 s, median of 24 alternated pairs: benchmarks/speed_profile.md). The command line
# asks for ordinary pages; a value the user set is kept.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
# pydantic looks for plugins (observability hooks, none of which the planner uses) by reading the entry
# points of every installed distribution when it builds its first model (pydantic/plugin/_loader.py
# get_plugins; PYDANTIC_DISABLE_PLUGINS=__all__ skips the scan): 0.01 s CPU of every start-up with ~120
# packages installed, more with more.
# A value the user set is kept (an empty PYDANTIC_DISABLE_PLUGINS turns plugins back on).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def _keep_freed_arrays() -> None:
    """glibc's malloc returns every block over its mmap threshold (128 KiB at start, raised as such
    blocks are freed) to the kernel when it is freed, and the next array of that size is mapped and
    faulted in, page by page, anew: a search allocates and frees arrays of 0.1-30 MB by the hundred
    (plan columns, memory chunks), 0.2-0.25 s of system time for DeepSeek-V3 on 2,048 GPUs. Blocks up
    to 32 MiB (glibc's largest threshold on 64-bit) are kept in the heap for reuse, and the heap is not
    trimmed below 1 GiB of free memory (mallopt M_MMAP_THRESHOLD, M_TRIM_THRESHOLD: glibc malloc.c).
    Larger blocks (a column of the 131,072-GPU range's 8.7M plans is 35-70 MB) are taken from the heap
    as well (M_MMAP_MAX 0: no block is mapped on its own; glibc still maps where the heap cannot grow),
    and the threads of the search share one arena (M_ARENA_MAX 1: a block freed by one thread is
    reused by the next allocation of any, not only of the thread that freed it). Whole process,
    alternated, median of 3-5 (benchmarks/speed_profile.md): page faults of the range 323k -> 212k
    (system time 0.69 -> 0.46 s, peak 920 -> 862 MiB), DeepSeek-V3 / 2,048 H800 77k -> 58k (peak 340 ->
    264 MiB). Other C libraries (and glibc refusing the values) leave malloc as it is."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -3, -4, -8  # glibc malloc.h
    mallopt(M_MMAP_THRESHOLD, 32 * 2**20)
    mallopt(M_TRIM_THRESHOLD, 2**30)
    mallopt(M_MMAP_MAX, 0)
    mallopt(M_ARENA_MAX, 1)


_keep_freed_arrays()

import click  # noqa: E402

from planner import catalog, jsonout
from planner.errors import InputError


class _Console:
    """A rich Console made on first use: `--json` output and `--help` need no rich (its import is
    start-up time). Piped output gets a wide console so the plan table is not squeezed to 80 columns."""

    def __init__(self, stderr: bool):
        self._stderr, self._console = stderr, None

    @property
    def real(self):
        if self._console is None:
            from rich.console import Console
            from rich.errors import MarkupError
            from rich.text import Text

            class PlainOnBadMarkup(Console):
                """Text with a name in it that reads as broken rich markup (a scenario named '[/]') is
                printed as plain text instead of raising MarkupError."""

                def render_str(self, text, **kw):
                    try:
                        return super().render_str(text, **kw)
                    except MarkupError:
                        return Text(text, style=kw.get("style") or "")

            stream = sys.stderr if self._stderr else sys.stdout
            self._console = PlainOnBadMarkup(stderr=self._stderr, highlight=False,
                                             width=None if stream.isatty() else 170)
        return self._console

    def __getattr__(self, name):
        return getattr(self.real, name)


out, err = _Console(stderr=False), _Console(stderr=True)

# At exit the interpreter's last garbage collections traverse every object still alive (pydantic's
# schemas, numpy's and OR-Tools' modules): 0.1-0.2 s of a 2 s solve on 2 cores, all after the output
# is written. Freezing them first (gc.freeze: moved out of the collector's reach) skips that walk;
# the objects are still released by reference counting as the modules are torn down.
atexit.register(gc.freeze)


class _Render:
    """planner.report.console, imported on first use (it imports rich)."""

    def __getattr__(self, name):
        from planner.report import console

        return getattr(console, name)


render = _Render()


def _import_behind(name: str) -> None:
    """Import module `name` in a background thread: the report's charts import matplotlib (0.3 s of
    interpreter work at start-up) while the search runs its long numpy loops, which release the
    interpreter lock (the search imports none of the modules matplotlib imports). The report's own
    import then finds the module loaded, or waits for it; an import that fails here is left for that
    import to raise."""
    import importlib
    import threading

    def load() -> None:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - raised again, in the main thread, by the report's import
            pass

    threading.Thread(target=load, name=f"import {name}", daemon=True).start()


def _fail_input(exc: InputError) -> None:
    from rich.markup import escape  # the message is text: '[tokens, share]' or a name '[/x]' is not markup

    err.print(f"[red]error:[/] {escape(str(exc))}", markup=True, soft_wrap=True)
    sys.exit(2)


LONG_LIST = 1_000  # a top-level list longer than this prints one compact entry per line


def _json_text(obj) -> str:
    """Indented JSON (jsonout.dumps: non-finite floats as null), except that the entries of a top-level
    list longer than LONG_LIST print one per line, compact: json's C encoder does not indent, and
    indenting a purchase sweep's 25,600 rows in Python took seconds (and half again the bytes)."""
    def long(v) -> bool:
        return isinstance(v, list) and len(v) > LONG_LIST

    def lines(v, pad: str) -> str:
        if not long(v):
            return jsonout.dumps(v, indent=2).replace("\n", "\n" + pad)
        return "[\n" + ",\n".join(pad + "  " + jsonout.dumps(e) for e in v) + "\n" + pad + "]"

    if isinstance(obj, dict) and any(long(v) for v in obj.values()):
        body = ",\n".join(f"  {jsonout.dumps(k)}: {lines(v, '  ')}" for k, v in obj.items())
        return "{\n" + body + "\n}"
    return lines(obj, "")


def _emit_json(obj) -> None:
    click.echo(_json_text(obj))


class _Group(click.Group):
    """Turns InputError raised anywhere in a command into a clean message and exit code 2, and so an
    OSError (a file that cannot be read or written: the path given is at fault)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            _fail_input(exc)
        except OSError as exc:
            where = exc.filename if exc.filename is not None else "a file"
            _fail_input(InputError(f"cannot read or write: {exc.strerror or exc.__class__.__name__}",
                                   file=str(where)))


def _finite_budget(ctx, param, value):
    """--budget: a positive, finite number of dollars no larger than the purchase solver takes."""
    from planner.spec.purchase import MAX_BUDGET_USD

    if value is not None and not (0 < value <= MAX_BUDGET_USD):  # also false for nan
        raise click.BadParameter(f"expected dollars in (0, {MAX_BUDGET_USD:g}], got {value}")
    return value


def _path(ctx, param, value):
    """An output path must not be empty (an unset shell variable: `-o "$OUT"`)."""
    if value is not None and not value.strip():
        raise click.BadParameter("expected a path, got an empty string")
    if value is not None and not value.isprintable():
        raise click.BadParameter(f"expected a path of printable characters, got {value!r}")
    return value


def _nvme_path(ctx, param, value):
    """--nvme-path: a non-empty path of printable characters (it is written into ds_config.json)."""
    if value is not None and (not value.strip() or not value.isprintable()):
        raise click.BadParameter(f"expected a directory path of printable characters, got {value!r}")
    return value


@click.group(cls=_Group)
@click.version_option(package_name="planner")
def main():
    """Hardware-aware deployment planner for large-model training."""


def _with_progress(work, steps: int):
    """Run work(progress) with a rich progress bar on stderr when there are several steps."""
    if not sys.stderr.isatty():
        return work(None)
    if steps <= 1:
        return _with_late_spinner(work)
    from rich.progress import Progress

    with Progress(console=err.real, transient=True) as bar:
        task = bar.add_task("searching node counts", total=steps)
        return work(lambda done, total: bar.update(task, completed=done))


SPINNER_AFTER_S = 1.0  # a one-count search shows its spinner once it has run this long


def _with_late_spinner(work):
    """work(None) with a "searching" spinner on stderr from SPINNER_AFTER_S on (a timer thread starts
    it; a search done sooner shows none): the spinner needs rich, whose import took ~30 ms CPU (60 ms
    wall at load ~3) of every interactive `planner solve --json`, whose output is no rich table, for
    a search of DeepSeek-V3 / 2,048 GPUs that is over in under a second (benchmarks/speed_profile.md).
    The spinner, once started, is stopped when the work ends, however it ends."""
    import threading

    lock, shown, done = threading.Lock(), [], []

    def show() -> None:
        with lock:  # the work's end waits for a spinner being started, then stops it
            if not done:
                spinner = err.status("searching the plan space...", spinner="dots")
                spinner.start()
                shown.append(spinner)

    timer = threading.Timer(SPINNER_AFTER_S, show)
    timer.daemon = True
    timer.start()
    try:
        return work(None)
    finally:
        timer.cancel()
        with lock:
            done.append(True)
            for spinner in shown:
                spinner.stop()


def _scenario(path: str):
    from planner.spec import load_scenario

    return load_scenario(path)


def _resolved_plan(sc, plan_text: str, scenario_path: str):
    """The --plan text checked against the scenario; a scenario key at fault is named with its file."""
    from planner.spec import parse_plan

    plan = parse_plan(plan_text)
    try:
        return plan.resolved(sc)
    except InputError as exc:
        if exc.file is None and exc.key and not exc.key.startswith(("--", "plan")):
            raise InputError(exc.message, file=scenario_path, key=exc.key) from None
        raise


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--top", type=click.IntRange(1, 10000), help="number of plans to show (default: the scenario's top)")
@click.option("--objective", type=click.Choice(["throughput", "time", "cost"]), help="ranking objective")
@click.option("--exhaustive", is_flag=True, help="enumerate layouts by brute force instead of CP-SAT (a cross-check)")
@click.option("--strict", is_flag=True, help="rank by the objective alone (no 1% tie band, no 3% penalty for tight plans)")
@click.option("--json", "as_json", is_flag=True, help="print the JSON result")
@click.option("--emit", "emit_dir", type=click.Path(file_okay=False), callback=_path,
              help="also write the files that run the top plans to DIR/rank1, DIR/rank2, ...")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), callback=_path, help="also write a self-contained HTML report")
@click.option("--force", is_flag=True, help="write into a non-empty --emit directory, replace an existing --report file")
def solve(scenario, top, objective, exhaustive, strict, as_json, emit_dir, report_path, force):
    """Search every plan of SCENARIO and rank those that fit."""
    from planner.search.solver import solve as run_solve

    if emit_dir:
        from planner.export import check_target

        check_target(Path(emit_dir), force)  # refuse before searching
    _check_new_file(report_path, force)
    _check_report_beside_emit(report_path, emit_dir, force)
    sc = _scenario(scenario)
    if objective:
        from planner.spec.load import check_cost_objective

        check_cost_objective(sc, objective, None, "--objective")
    if report_path:
        _import_behind("planner.report.charts")
    gc.freeze()  # the modules' and the scenario's objects: the search's collections need not walk them
    try:
        result = _with_progress(lambda progress: run_solve(sc, objective=objective, top=top, exhaustive=exhaustive,
                                                           progress=progress, strict=strict, points=bool(report_path)),
                                len(sc.cluster.node_counts))
    finally:
        gc.unfreeze()
    points = result.pop("points", None)  # the report's point clouds (numpy), not part of the JSON
    if as_json:
        _emit_json(result)
    elif result["plans"]:
        render.render_solve(result, out)
        out.print(f"global batch {result['batch']['chosen']:,}: {result['batch']['why']}", soft_wrap=True, markup=False)
    else:
        render.render_infeasible(result, out)
    if report_path:
        from planner.report.html import write_report

        written = write_report({**result, "points": points}, sc, report_path, force=force)
        (err if as_json else out).print(f"wrote {written}", soft_wrap=True)
    if not result["plans"]:
        sys.exit(1)
    if emit_dir:
        from planner.export import export_ranked

        from planner.export import MAX_EMIT

        plans = result["plans"]
        paths, skipped = export_ranked(sc, plans[:MAX_EMIT], emit_dir, force=force)
        if len(plans) > MAX_EMIT:
            skipped.append(f"ranks {MAX_EMIT + 1}-{len(plans)}: --emit writes at most the top {MAX_EMIT} plans")
        _report_export(emit_dir, paths, skipped, err if as_json else out)


def _check_report_beside_emit(report_path, emit_dir, force: bool) -> None:
    """--report may not be the --emit directory, nor (without --force) inside it: the report is written
    first, and the export would then refuse the directory as not empty, leaving the report behind."""
    if not (emit_dir and report_path):
        return
    report, emit = Path(report_path).absolute(), Path(emit_dir).absolute()
    if report == emit:
        raise InputError("--report and --emit name the same path", file=report_path)
    if emit in report.parents and not force:
        raise InputError("--report is inside the --emit directory, which must be empty; pass --force or write "
                         "the report elsewhere", file=report_path)


def _check_new_file(path, force: bool) -> None:
    """Fail before the work when an output file cannot be written (below a file, a directory) or
    exists and --force is not given."""
    if path:
        from planner.export import check_output_file

        check_output_file(path, force)


def _report_export(out_dir, paths, skipped, console) -> None:
    console.print(f"wrote {len(paths)} files to {out_dir}", soft_wrap=True)
    for msg in skipped:
        console.print(f"[yellow]skipped[/] {msg}", soft_wrap=True)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--plan", "plan_text", help='the plan to export, e.g. "framework=deepspeed,zero=3,mbs=1"')
@click.option("--rank", type=click.IntRange(1, 10000), help="export the K-th ranked plan of the search instead")
@click.option("--strict", is_flag=True, help="with --rank: rank by the objective alone (as solve --strict)")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), callback=_path, help="output directory")
@click.option("--force", is_flag=True, help="write into a non-empty output directory")
@click.option("--nvme-path", default=None, callback=_nvme_path, help="local NVMe directory for DeepSpeed NVMe offload")
def export(scenario, plan_text, rank, strict, out_dir, force, nvme_path):
    """Write the files that run one plan of SCENARIO (config, launch script, Slurm script, README)."""
    from planner.export import export_plan
    from planner.frameworks.deepspeed import DEFAULT_NVME_PATH

    if (plan_text is None) == (rank is None):
        raise click.UsageError("give exactly one of --plan and --rank")
    from planner.export import check_target

    check_target(Path(out_dir), force)  # refuse before the work
    sc = _scenario(scenario)
    if plan_text is not None:
        from planner.estimate.evaluate import estimate as run_estimate

        chosen = run_estimate(sc, _resolved_plan(sc, plan_text, scenario))
        if chosen["memory"]["verdict"] == "oom":
            err.print("[yellow]warning:[/] this plan does not fit in memory (README.txt gives the estimate)",
                      soft_wrap=True)
    else:
        from planner.search.solver import solve as run_solve

        result = run_solve(sc, top=rank, strict=strict)
        plans = result["plans"]
        if not plans:  # a valid scenario where nothing fits: exit 1, as solve
            render.render_infeasible(result, err)
            sys.exit(1)
        if len(plans) < rank:
            raise InputError(f"only {len(plans)} plans fit; rank {rank} does not exist", key="--rank")
        chosen = plans[rank - 1]
    paths = export_plan(sc, chosen, out_dir, force=force, nvme_path=nvme_path or DEFAULT_NVME_PATH)
    _report_export(out_dir, paths, [], out)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--plan", "plan_text", required=True,
              help='e.g. "tp=8,pp=2,dp=1,zero=1,mbs=1,recompute=selective,precision=bf16"')
@click.option("--json", "as_json", is_flag=True, help="print the JSON result")
def estimate(scenario, plan_text, as_json):
    """Evaluate one given plan of SCENARIO (memory, time, cost), whether it fits or not."""
    from planner.estimate.evaluate import estimate as run_estimate

    sc = _scenario(scenario)
    plan = _resolved_plan(sc, plan_text, scenario)
    r = run_estimate(sc, plan)
    if r["memory"]["verdict"] == "oom":
        from planner.search.explain import runtime_fixes

        r["runtime_fixes"] = runtime_fixes(sc, plan)
    if as_json:
        _emit_json(r)
    else:
        render.render_estimate(r, out)


@main.command()
@click.argument("target")
@click.option("--seq-len", type=click.IntRange(1, 2**24),
              help="sequence length for FLOPs (default: a training scenario's seq_len, a serving scenario's mean "
                   "input + output tokens, else 4096)")
@click.option("--json", "as_json", is_flag=True, help="print the JSON result")
def model(target, seq_len, as_json):
    """Parameter counts and FLOPs of a catalog model NAME, a SCENARIO file or a HF config.json."""
    from planner.arch import summary
    from planner.spec.load import is_purchase, load_yaml, read_hf_config, resolve_scenario_dict, validate_model
    from planner.spec.model import ModelSpec

    p = Path(target)
    seq = seq_len or 4096
    if p.suffix == ".json" or p.is_dir():  # a config.json, or a model folder holding one
        spec = validate_model(ModelSpec, read_hf_config(p, file=target), file=target)
    elif p.suffix in (".yaml", ".yml"):
        data = load_yaml(p)
        if isinstance(data, dict) and "serving" in data and "training" not in data:
            from planner.spec.serving import load_serving_scenario, token_stats

            sc = load_serving_scenario(target)  # FLOPs at the mean context a request reaches
            spec = sc.model
            seq = seq_len or round(token_stats(sc.serving.input_tokens)[0] + token_stats(sc.serving.output_tokens)[0])
        elif isinstance(data, dict) and "model" in data:
            sc = _scenario(target)
            spec, seq = sc.model, seq_len or sc.training.seq_len
        elif is_purchase(data):
            raise InputError("this is a purchase file (clusters:, workloads:); `planner model` reads a model name, "
                             f"a scenario or a config.json; `planner compare {target}` evaluates it", file=target)
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
@click.argument("purchases", type=click.Path(dir_okay=False))
@click.option("--budget", type=float, callback=_finite_budget, help="USD: the best mix to buy within it")
@click.option("--vary", multiple=True, help='sensitivity, repeatable: "price=±20%", "power=+-10%", "utilisation=-15%"')
@click.option("--json", "as_json", is_flag=True, help="print the JSON result")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), callback=_path, help="also write one CSV line per option x workload")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), callback=_path, help="also write a self-contained HTML report")
@click.option("--force", is_flag=True, help="overwrite the --csv and --report files if they exist")
@click.option("--workers", type=click.IntRange(1, 256), help="parallel search processes (default: 1, in this process)")
def compare(purchases, budget, vary, as_json, csv_path, report_path, force, workers):
    """Evaluate every cluster option x workload of PURCHASES: days, dollars, Pareto front, best mix."""
    from planner.purchase import compare as run_compare, search_count
    from planner.atomic import write_file
    from planner.report import purchase as show
    from planner.spec.purchase import load_purchases

    pf = load_purchases(purchases)
    if csv_path and report_path and Path(csv_path).absolute() == Path(report_path).absolute():
        raise InputError("--csv and --report name the same path", file=csv_path)
    _check_new_file(csv_path, force)
    _check_new_file(report_path, force)
    if report_path:
        _import_behind("planner.report.charts")
    result = _with_progress(lambda progress: run_compare(pf, budget, vary, workers, progress), search_count(pf))
    if csv_path:
        write_file(csv_path, show.csv_text(result), force=force)
    if as_json:
        _emit_json(result)
    else:
        show.render_compare(result, out)
    if report_path:
        from planner.report.compare_html import write_compare_report

        (err if as_json else out).print(f"wrote {write_compare_report(result, report_path, force=force)}", soft_wrap=True)
    if not any(r["plan"] for r in result["options"] + result.get("serving", [])) \
            or result.get("best_mix", {}).get("status") == "infeasible":
        sys.exit(1)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--plan", "plan_text", help='one deployment, e.g. "engine=trtllm,weights=fp8,kv_cache=fp8,tp=2,max_batch=512"')
@click.option("--json", "as_json", is_flag=True, help="print the JSON result")
@click.option("--top", type=click.IntRange(1, 10000), help="number of plans to show (default: the scenario's top)")
@click.option("--objective", type=click.Choice(["cost", "latency", "gpus", "throughput"]), help="ranking objective")
@click.option("--emit", "emit_dir", type=click.Path(file_okay=False), callback=_path,
              help="also write the engine launch files of the top plans to DIR/rank1, DIR/rank2, ...")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), callback=_path, help="also write an HTML report")
@click.option("--force", is_flag=True, help="write into a non-empty --emit directory, replace an existing --report")
def serve(scenario, plan_text, as_json, top, objective, emit_dir, report_path, force):
    """Rank inference deployments of a serving SCENARIO (or estimate one --plan)."""
    from planner.serve.cli_glue import run_serve

    _check_report_beside_emit(report_path, emit_dir, force)
    code = run_serve(scenario, plan_text, as_json, top, objective, emit_dir, report_path, force, out, err)
    if code:
        sys.exit(code)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file):
    """Check a scenario or purchase FILE; exit 2 with the key at fault if it is invalid."""
    from planner.spec import validate as run_validate

    click.echo(run_validate(file))


def run() -> None:
    """`python -m planner` and the `planner` script: the command (main, click's standalone mode: it
    always ends in SystemExit), then the process ends at once with its exit code, its output flushed.
    The interpreter's teardown after a command (every module's objects released one by one: pydantic's
    schemas, numpy's and OR-Tools' modules, the search's cached arrays) is work nobody reads: 1% of
    the instructions of a small solve (callgrind), 10-20 ms of wall time. Nothing the planner writes
    waits for it (files are written and closed atomically, thread and process pools are closed by their
    `with` blocks). A code that is not an int, or output that cannot be flushed (a closed pipe), exits
    the ordinary way, which reports it as before. A library caller of main() is not affected."""
    try:
        main()
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code
    else:
        code = 0
    if not isinstance(code, int):
        raise SystemExit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        raise SystemExit(code) from None
    os._exit(code)


if __name__ == "__main__":
    run()
