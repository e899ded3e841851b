"""Accuracy of the performance model against published training runs.

    python benchmarks/accuracy.py [--runs FILE ...] [--with-recipes] [--out benchmarks/accuracy_results.md] [--json PATH]

Reads every training-run file of the shared calibration set (`published_runs.yaml`,
`modern_runs.yaml`; serving files are skipped) and evaluates each run with `planner.estimate` on its
exact model shape, a catalog node, the published plan and a `runtime:` block saying what the stack
did (benchmarks/calibration_runs.py builds those for today's stacks). Predictions are compared on a
convention-free quantity: tokens/s per GPU (equivalently seconds per iteration), and on peak memory
where a run measured it. Published TFLOP/s are converted to tokens/s with the source's own FLOP
convention:
  * Narayanan et al. 2021 Table 1: Eq. 3, 96 B s l h^2 (1 + s/6h + V/16lh) per iteration (4 passes:
    full recompute, non-causal attention);
  * Megatron-Core r0.8 README, Megatron-LM before 2025-03 and NeMo before 2025-08 (NVIDIA/NeMo#14424,
    'Discount FLOPs in dot-product att', halves it from then on): model FLOPs with the s^2 attention term not
    halved (our own FLOP count with causal=False);
  * Korthikanti et al. 2022 and the DGX Cloud recipes: seconds per iteration, compared directly.
Knobs the source leaves null are set to the value printed in the `assumed` column.

Outputs: the human report (--out) and a machine-readable twin (--json, default: --out with .json):
  {"runs": [{"id", "file", "source", "family": {"framework", "moe", "precision"},
             "tokens_per_s_per_gpu": {"published", "predicted", "error"},   # error = predicted/published - 1
             "memory": null | {"published_gib", "predicted_gib", "error"}, "verdict"}]}
Runs whose plan the planner cannot express yet are listed in the report and left out of the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import yaml

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
import calibration_runs  # noqa: E402
import error_bands  # noqa: E402

from planner.arch import flops_per_token
from planner.catalog import node as catalog_node
from planner.errors import InputError
from planner.estimate.evaluate import estimate
from planner.spec import Plan
from planner.spec.model import ModelSpec
from planner.spec.scenario import Runtime, Scenario

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = HERE.parent.parent / "shared" / "calibration"
LEGACY_FILE = "published_runs.yaml"
# published NVIDIA recipes and runs with measured peak memory (--with-recipes; benchmarks/recipe_fits.py)
RECIPE_FILES = (HERE / "recipe_runs.yaml", HERE / "memory_runs.yaml")
KNOWN_REGRESSIONS = HERE / "known_regressions.yaml"
NODES = {"A100": "dgx-a100-80gb", "H100": "dgx-h100"}


def model_of(run: dict) -> ModelSpec:
    m = run["model"]
    h = m["hidden_size"]
    mcore = run["id"].startswith("mcore")
    return ModelSpec(
        name=m["name"], layers=m["layers"], hidden=h, heads=m["attention_heads"],
        kv_heads=m.get("kv_heads") or m["attention_heads"], head_dim=m.get("head_dim") or h // m["attention_heads"],
        ffn_hidden=m.get("ffn_hidden_size") or 4 * h, ffn_act="gelu", vocab=m["vocab_size"],
        # Megatron GPT: layernorm, biases; 2021/2022 runs tie embeddings and use learned positions
        # and dropout; Megatron-Core r0.8 benchmarks untie (their parameter counts imply it) and use RoPE.
        tie_embeddings=not mcore, position="rope" if mcore else "learned", max_seq_len=m["seq_length"],
        norm="layernorm", linear_bias=True, dropout=not mcore)


def plan_of(run: dict) -> tuple[Plan, list[str]]:
    p, assumed = run["parallel"], []
    rc_text = str(p.get("recompute") or "").lower()
    if "full" in rc_text:
        recompute = "full"
    elif "selective" in rc_text:
        recompute = "selective"
    else:
        recompute = "selective"
        assumed.append("recompute=selective")
    mbs = p.get("micro_batch_size")
    if mbs is None:
        mbs = 1
        assumed.append("mbs=1")
    vpp = p.get("virtual_pipeline_stages") or 1
    pp = p["pp"] or 1
    if pp > 1 and p.get("virtual_pipeline_stages") is None:
        assumed.append("vpp=1")
    sp = p.get("sequence_parallel")
    tp = p["tp"] or 1
    if sp is None:
        sp = tp > 1 and run["id"].startswith("mcore")
        assumed.append(f"sp={str(sp).lower()}")
    prec = str(p.get("precision") or "").lower()
    precision = "fp16" if "fp16" in prec and "bf16" not in prec else "bf16"
    zero = 1 if run["id"].startswith("mcore") else 0  # r0.8 benchmarks overlap param gather: distributed optimizer
    dp = p["dp"]
    ga = p["global_batch_size"] // (mbs * dp)
    plan = Plan(framework="megatron", precision=precision, dp=dp, tp=tp, pp=pp, cp=1, ep=1, vpp=vpp, sp=sp,
                zero=zero, recompute=recompute, mbs=mbs, ga=ga)
    return plan, assumed


def published_tokens_per_gpu_s(run: dict, spec: ModelSpec) -> tuple[float, str]:
    me, m, p = run["measured"], run["model"], run["parallel"]
    s, l, h, V = m["seq_length"], m["layers"], m["hidden_size"], m["vocab_size"]
    n = run["hardware"]["num_gpus"]
    if me.get("iteration_time_s"):
        return p["global_batch_size"] * s / me["iteration_time_s"] / n, "s/iter"
    if run["id"].startswith("megatron2021"):
        per_token = 96 * l * h * h * (1 + s / (6 * h) + V / (16 * l * h))
        return me["tflops_per_gpu"] * 1e12 / per_token, "TFLOP/s (Eq. 3)"
    per_token = flops_per_token(spec, s, causal=False)["training"]
    return me["tflops_per_gpu"] * 1e12 / per_token, "model TFLOP/s (non-causal)"


class RunFileError(Exception):
    """A calibration file whose run cannot be turned into a scenario."""


def legacy_scenario(run: dict):
    """Scenario, plan and assumptions of an older Megatron run (published_runs.yaml)."""
    spec = model_of(run)
    plan, assumed = plan_of(run)
    gpu = run["hardware"]["gpu"]
    node = next(v for k, v in NODES.items() if k in gpu)
    modern = run["id"].startswith("mcore")  # 2021/2022 Megatron: no fused attention, no TP overlap
    sc = Scenario(name=run["id"], model=spec, runtime={"flash_attention": modern, "tp_comm_overlap": modern,
                                                         "dp_comm_overlap": modern},
                  cluster={"node": catalog_node(node), "nodes": run["hardware"]["num_gpus"] // 8},
                  training={"seq_len": run["model"]["seq_length"], "global_batch": run["parallel"]["global_batch_size"],
                            "tokens": 1e9})
    return sc, plan, node, assumed


def family_of(run: dict, legacy: bool) -> dict:
    if legacy:
        prec = "fp16" if plan_of(run)[0].precision == "fp16" else "bf16"
        return {"framework": "megatron", "moe": False, "precision": prec}
    return {"framework": calibration_runs.framework_of(run), "moe": bool(run["model"].get("moe")),
            "precision": calibration_runs.precision_of(run)}


def source_of(run: dict) -> str:
    src = run.get("source")
    title = src.get("title") if isinstance(src, dict) else src
    return str(title or "unknown").split(" (")[0].strip()


def evaluate(run: dict, file: str) -> dict:
    legacy = file == LEGACY_FILE
    if legacy:
        sc, plan, node, assumed = legacy_scenario(run)
        published, kind = published_tokens_per_gpu_s(run, sc.model)
    else:
        try:
            sc, plan, node, assumed = calibration_runs.build(run)
        except KeyError as exc:
            raise RunFileError(f"{file}: run '{run.get('id')}': missing key {exc} (see the calibration README schema)")
        except (InputError, ValueError, TypeError) as exc:
            raise RunFileError(f"{file}: run '{run.get('id')}': cannot build its scenario: {exc}")
        published, kind = calibration_runs.published_tokens(run, sc.model)
    default = Runtime()
    runtime = ", ".join([f"training.optimizer={sc.training.optimizer}"] * (sc.training.optimizer != "adamw")
                        + [f"{k}={v}" for k, v in sc.runtime.model_dump().items() if getattr(default, k) != v]) or "-"
    row = {"id": run["id"], "file": file, "source": source_of(run), "family": family_of(run, legacy), "runtime": runtime,
           "published": published, "kind": kind, "assumed": ", ".join(assumed) or "-", "node": node,
           "confidence": run.get("confidence")}
    peak = (run.get("measured") or {}).get("peak_memory_gib")
    try:
        # llm-foundry (Composer + PyTorch FSDP1) builds its own models (MPT: tied embeddings, GELU,
        # ALiBi); the planner's torchtitan framework stands in for its FSDP sharding and collectives
        # only, so torchtitan's model-code limits do not apply to these runs.
        plan = plan.resolved(sc, check_build=row["family"]["framework"] != "llm-foundry")
        r = estimate(sc, plan)
    except InputError as exc:  # the plan cannot be expressed yet: reported, not counted
        return {**row, "predicted": None, "error": None, "verdict": f"rejected: {exc}", "gib": None,
                "peak_gib": peak, "mem_error": None, "bound": "-"}
    predicted = r["throughput"]["tokens_per_s_per_gpu"]
    gib = r["memory"]["per_gpu_gib"]
    return {**row, "predicted": predicted, "error": predicted / published - 1, "verdict": r["memory"]["verdict"],
            "gib": gib, "peak_gib": peak, "mem_error": None if peak is None else gib / peak - 1,
            "bound": max(r["time"]["breakdown_s"].items(), key=lambda kv: kv[1])[0]}


def training_runs(paths: list[Path]) -> list[tuple[dict, str]]:
    """Every training run with a throughput figure in the given files (serving files are skipped:
    their entries carry a `workload`), with the corrections of benchmarks/run_errata.yaml applied
    (calibration_runs.with_errata: the recipe's own settings where a shared run file omits or
    misprints them)."""
    out = []
    loaded = {path: run_list(path) for path in dict.fromkeys([*paths, *known_run_files()])}
    try:
        errata = calibration_runs.load_errata()
        calibration_runs.check_errata(errata, [r for runs in loaded.values() for r in runs])
    except (calibration_runs.ErrataError, yaml.YAMLError) as exc:
        raise RunFileError(str(exc))
    for path in paths:
        for r in loaded[path]:
            r = calibration_runs.with_errata(r, errata)
            me = r.get("measured") or {}
            if not isinstance(r.get("model"), dict) or "workload" in r or not isinstance(r.get("parallel"), dict):
                continue
            if any(me.get(k) for k in ("iteration_time_s", "tflops_per_gpu", "tokens_per_sec_per_gpu",
                                       "tokens_per_sec_total")):
                out.append((r, path.name))
    return out


def run_list(path: Path) -> list[dict]:
    """The runs (mappings) of one run file; RunFileError where the file is not a list."""
    data = yaml.safe_load(path.read_text()) or []
    if not isinstance(data, list):
        raise RunFileError(f"{path}: expected a list of runs, got {type(data).__name__}")
    return [r for r in data if isinstance(r, dict)]


def known_run_files() -> list[Path]:
    """Every training-run file the errata may name a run of: the shared calibration set (where present)
    and RECIPE_FILES."""
    shared = default_files(DEFAULT_DIR) if DEFAULT_DIR.is_dir() else []
    return [*shared, *(p for p in RECIPE_FILES if p.exists())]


def default_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if not p.name.startswith("serving"))


def _stats(errors: list[float]) -> tuple[float, float]:
    a = [abs(e) for e in errors]
    return (statistics.mean(a), max(a)) if a else (float("nan"), float("nan"))


def group_table(rows: list[dict], key, title: str) -> list[str]:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    lines = [f"| {title} | runs | tok/s mean abs error | worst | mean signed | memory runs | memory mean abs error |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in sorted(groups):
        g = groups[name]
        te = [r["error"] for r in g if r["error"] is not None]
        me = [r["mem_error"] for r in g if r["mem_error"] is not None]
        pct = lambda v, fmt=".1f": f"{100 * v:{fmt}}%" if te else "-"  # noqa: E731
        mean, worst = _stats(te)
        signed = statistics.mean(te) if te else 0.0
        mm = f"{100 * _stats(me)[0]:.1f}%" if me else "-"
        lines.append(f"| {name} | {len(te)} of {len(g)} | {pct(mean)} | {pct(worst)} | "
                     f"{pct(signed, '+.1f')} | {len(me)} | {mm} |")
    return lines


def family_name(r: dict) -> str:
    f = r["family"]
    return f"{f['framework']} {'MoE' if f['moe'] else 'dense'} {f['precision']}"


def known_regressions(path: Path = KNOWN_REGRESSIONS) -> dict[str, dict]:
    """Runs the framework's maintainers record as a regression of their release: id -> {record, says}."""
    return {r["id"]: r for r in (yaml.safe_load(path.read_text()) or [])} if path.exists() else {}


def report(rows: list[dict], files: list[Path], regressions: dict[str, dict] | None = None) -> str:
    ok = [r for r in rows if r["error"] is not None]
    mean, worst = _stats([r["error"] for r in ok])
    legacy = [r for r in ok if r["file"] == LEGACY_FILE]
    lmean, lworst = _stats([r["error"] for r in legacy])
    mem = [r for r in ok if r["mem_error"] is not None]
    lines = ["# Accuracy against published training runs", "",
             f"`python benchmarks/accuracy.py` on {', '.join(f'`{p.name}`' for p in files)} "
             f"({len(rows)} runs, {len(ok)} estimated). Tokens/s per GPU predicted by `planner.estimate` on each "
             "run's exact model, catalog node, plan and `runtime:` block vs published (converted from the "
             "source's FLOP convention where only TFLOP/s are printed); peak memory vs measured where published. "
             "Machine-readable: `accuracy_results.json`.", "",
             f"**All runs: mean absolute error {100 * mean:.1f}%, worst {100 * worst:.1f}%.** "
             f"`{LEGACY_FILE}`: mean {100 * lmean:.1f}%, worst {100 * lworst:.1f}%. "
             f"Predicted to fit in memory: {sum(r['verdict'] in ('fits', 'tight') for r in ok)} of {len(ok)}.", ""]
    if mem:
        mm, mw = _stats([r["mem_error"] for r in mem])
        lines += [f"Peak memory where measured ({len(mem)} runs): mean absolute error {100 * mm:.1f}%, "
                  f"worst {100 * mw:.1f}%.", ""]
    rejected = [r for r in rows if r["error"] is None]
    if rejected:
        lines += ["Not estimated (the plan cannot be expressed yet):", ""]
        lines += [f"- {r['id']}: {r['verdict']}" for r in rejected] + [""]
    lines += ["## Per file", ""] + group_table(rows, lambda r: r["file"], "file")
    lines += ["", "## Per family (framework x dense/MoE x precision)", ""] + group_table(rows, family_name, "family")
    listed = [r for r in rows if r["id"] in (regressions or {})]
    if listed:
        lines += ["", "Without the runs their framework's maintainers record as a performance regression of that "
                  "release (`benchmarks/known_regressions.yaml`; the tables above include them):", ""]
        lines += [f"- {r['id']}: {regressions[r['id']]['record']}" + (
            "" if r["error"] is None else f" (error {100 * r['error']:+.1f}%)") for r in listed] + [""]
        lines += group_table([r for r in rows if r not in listed], family_name, "family")
    corrected = [r["id"] for r in rows if r["id"] in calibration_runs.load_errata()]
    if corrected:
        lines += ["", "Runs evaluated with the corrections of `benchmarks/run_errata.yaml` (the setting the run's "
                  "recipe at its release states, with file and line there): " + ", ".join(corrected) + "."]
    lines += ["", "## Per source", ""] + group_table(rows, lambda r: r["source"], "source")
    lines += ["", "## Per run", "",
              "| run | node | published tok/s/GPU | predicted | error | published as | assumed | runtime (non-default) "
              "| memory GiB | measured peak GiB | bound by |",
              "|---|---|---:|---:|---:|---|---|---|---:|---:|---|"]
    for r in rows:
        pred = "-" if r["predicted"] is None else f"{r['predicted']:,.1f}"
        err = "-" if r["error"] is None else f"{100 * r['error']:+.1f}%"
        gib = "-" if r["gib"] is None else f"{r['gib']:.1f} {r['verdict']}"
        peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.1f} ({100 * r['mem_error']:+.1f}%)" \
            if r["mem_error"] is not None else f"{r['peak_gib']:.1f}"
        lines.append(f"| {r['id']} | {r['node']} | {r['published']:,.1f} | {pred} | {err} | {r['kind']} "
                     f"| {r['assumed']} | {md_cell(r['runtime'])} | {gib} | {peak} | {r['bound']} |")
    return "\n".join(lines) + "\n"


def as_json(rows: list[dict]) -> dict:
    """The machine-readable report (schema in the module docstring)."""
    out = []
    for r in rows:
        if r["error"] is None:
            continue
        mem = None if r["mem_error"] is None else {
            "published_gib": float(r["peak_gib"]), "predicted_gib": float(r["gib"]), "error": float(r["mem_error"])}
        out.append({"id": r["id"], "file": r["file"], "source": r["source"], "family": r["family"],
                    "tokens_per_s_per_gpu": {"published": float(r["published"]), "predicted": float(r["predicted"]),
                                             "error": float(r["error"])},
                    "memory": mem, "verdict": r["verdict"]})
    return {"runs": out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=Path, action="append",
                    help="a training-run file (repeatable); default: every training file of the shared calibration set")
    ap.add_argument("--with-recipes", action="store_true",
                    help="also evaluate benchmarks/recipe_runs.yaml and memory_runs.yaml (a wider check; "
                         "default --out then benchmarks/accuracy_with_recipes.md, and no error bands are written "
                         "unless --bands is given: the bands come from the calibration set only)")
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/accuracy_results.md")
    ap.add_argument("--json", type=Path, default=None, help="default: --out with .json")
    ap.add_argument("--bands", type=Path, default=None,
                    help="error bands derived from the report (benchmarks/error_bands.py); default: "
                         "catalogs/error_bands.yaml for the default --out, else error_bands.yaml next to --out")
    args = ap.parse_args(argv)
    files = args.runs or default_files(DEFAULT_DIR)
    if args.with_recipes:
        files = [*files, *RECIPE_FILES]
    args.out = args.out or HERE / ("accuracy_with_recipes.md" if args.with_recipes else "accuracy_results.md")
    try:
        rows = [evaluate(r, f) for r, f in training_runs(files)]
    except (RunFileError, OSError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = report(rows, files, known_regressions())
    write_atomic(args.out, text)
    json_path = args.json or args.out.with_suffix(".json")
    write_atomic(json_path, json.dumps(as_json(rows), indent=1) + "\n")
    print(text)
    if args.with_recipes and args.bands is None:
        return 0
    default_out = args.out.resolve() == (HERE / "accuracy_results.md").resolve()
    bands = args.bands or (error_bands.DEFAULT_OUT if default_out else args.out.with_name("error_bands.yaml"))
    error_bands.write_bands(json_path, bands)
    print(f"error bands: {bands}")
    return 0


def md_cell(text: str) -> str:
    """Text for a markdown table cell: '|' escaped (a pipeline layout holds it)."""
    return text.replace("|", "\\|")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
