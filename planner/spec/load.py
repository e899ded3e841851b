"""Read YAML/JSON inputs safely, resolve catalog names, and turn validation errors into messages
that name the file, the key path and what was expected."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from planner.errors import InputError

# libyaml's parser when available (several times faster), with PyYAML's safe constructor either way.
_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MERGE_TAG = "tag:yaml.org,2002:merge"


class UniqueKeyLoader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """The safe loader, but a key repeated in one mapping (at any depth) is an error: PyYAML keeps the
    last value silently, so a second `training:` replaced the first. Merge keys (`<<: *base`) may still
    be overridden, as YAML intends."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:  # unhashable key: the base constructor reports it
                    continue
                if first is not key_node.start_mark:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first given on line {first.line + 1})",
                        key_node.start_mark)
        return super().construct_mapping(node, deep)


SAFE_LOADER = UniqueKeyLoader


# Inputs are small text files; a device (/dev/zero), a pipe or a huge file would never finish loading.
MAX_INPUT_BYTES = 16 * 2 ** 20


def read_input(p: Path, file: str | None = None, key: str | None = None) -> str:
    """The text of an input file: a regular UTF-8 file of at most MAX_INPUT_BYTES."""
    where = {"file": file or str(p), "key": key}
    if "\0" in str(p):  # the OS takes no NUL in a path (os.stat raises ValueError)
        raise InputError(f"{str(p)!r} is not a usable path (it holds a NUL character)", **where)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"file not found: {p}" if file else "file not found", **where) from None
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc.__class__.__name__}", **where) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p} is {'a directory' if stat.S_ISDIR(st.st_mode) else 'not a regular file'}", **where)
    if st.st_size > MAX_INPUT_BYTES:
        raise InputError(f"{p} is {st.st_size / 2 ** 20:.0f} MiB; inputs are at most "
                         f"{MAX_INPUT_BYTES // 2 ** 20} MiB", **where)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{p} is not UTF-8 text ({exc.reason} at byte {exc.start})", **where) from None
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc.__class__.__name__}", **where) from None


def load_yaml(path: str | Path) -> Any:
    """Load a YAML (or JSON) file with the safe loader; errors name the file and line."""
    p = Path(path)
    text = read_input(p)
    try:
        return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"malformed YAML: {where}{problem}", file=str(path)) from None


def _fields_at(cls: type[BaseModel], loc: tuple) -> list[str]:
    """Field names valid at `loc` (the path of an unknown key) inside model `cls`."""
    import typing

    current: Any = cls
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = _model_in(field.annotation, typing)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any, typing) -> Any:
    """The first pydantic model class inside an annotation (Optional[X], list[X], X | str, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg, typing)
        if found is not None:
            return found
    return None


def _is_type_error(kind: str) -> bool:
    """A pydantic error saying the value is of the wrong type (int_type, list_type, int_parsing, ...)."""
    return kind.endswith(("_type", "_parsing"))


def _key_from_message(path: str, msg: str, prefix: tuple, loc: tuple, cls=None) -> tuple[str, str]:
    """A check across keys (a model validator) says which key in its message ('search.fixed.global_batch:
    65 is not ...'); where that key lies at or below the error's own location, it becomes the path. A key
    named relative to the validated section (ModelSpec's 'kv_heads: ...' at `model`) is joined to it."""
    import re

    m = re.match(r"([A-Za-z_]\w*(?:\.\w+)*): (.+)", msg, re.S)
    rel = ".".join(str(p) for p in loc)
    if m and (not rel or m.group(1) == rel or m.group(1).startswith(rel + ".")):
        return ".".join(str(p) for p in prefix + (m.group(1),)), m.group(2)
    if m and rel and cls is not None and m.group(1).split(".")[0] in _fields_at(cls, loc + ("_",)):
        return ".".join(str(p) for p in prefix + loc + (m.group(1),)), m.group(2)
    return path, msg


def format_errors(exc: ValidationError, cls: type[BaseModel], prefix: tuple = ()) -> list[tuple[str, str]]:
    """(key path, message) for each pydantic error, with a 'did you mean' for unknown keys."""
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in
                                                                          ("function-after", "int", "float", "str", "bool", "literal", "lax-or-strict"))))
        path = ".".join(str(p) for p in prefix + loc) or "(top level)"
        kind = err["type"]
        near = []
        if kind == "extra_forbidden":
            import difflib  # only for this message (start-up time)

            valid = _fields_at(cls, loc)
            near = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            msg = f"unknown key (expected one of: {', '.join(valid)}){hint}" if valid else "unknown key"
        elif kind == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if "input" in err and kind not in ("value_error",) and not isinstance(err["input"], (dict, list)):
                msg += f" (got {err['input']!r})"
            path, msg = _key_from_message(path, msg, prefix, loc, cls) if kind == "value_error" else (path, msg)
        out.append((path, msg, kind, near[0] if kind == "extra_forbidden" and near else None))
    # A union (`nodes: 4 | [list] | {range}`) reports one error per member: when one member's own check
    # explains the problem (a value_error), the others' "should be a valid list" add nothing.
    explained = {p for p, _, k, _ in out if k == "value_error"}
    out = [o for o in out if o[2] == "value_error" or o[0] not in explained]
    # So does a member's own bound (`input_tokens: 0`: "greater than or equal to 1"), for the others' type errors.
    bounded = {p for p, _, k, _ in out if not _is_type_error(k) and k not in ("missing", "extra_forbidden")}
    out = [o for o in out if not (_is_type_error(o[2]) and o[0] in bounded)]
    # Likewise a member whose errors lie deeper (`nodes.max` of the range form) is the one meant.
    deeper = {p for p, _, _, _ in out}
    out = [o for o in out if not (_is_type_error(o[2]) and any(d.startswith(o[0] + ".") for d in deeper))]
    # A misspelt key also makes its intended key "missing": report the misspelling first, once.
    suggested = {".".join(p.split(".")[:-1] + [n]) for p, _, k, n in out if n}
    out = [o for o in out if not (o[2] == "missing" and o[0] in suggested)]
    out.sort(key=lambda o: o[2] != "extra_forbidden")
    return [(p, m) for p, m, _, _ in out]


def validate_model(cls: type[BaseModel], data: Any, file: str | None = None, prefix: tuple = ()):
    """`cls.model_validate(data)`, raising InputError that names the file and every bad key."""
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing (empty file?)"
        raise InputError(f"expected a mapping of keys, got {kind}", file=file, key=".".join(prefix) or None)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        errors = format_errors(exc, cls, prefix)
        first_key, first_msg = errors[0]
        extra = "".join(f"\n  {k}: {m}" for k, m in errors[1:])
        raise InputError(first_msg + extra, file=file, key=first_key) from None


def read_hf_config(path: Path, file: str | None = None) -> dict:
    """A Hugging Face config.json (or a model folder holding one) as an inline model mapping."""
    if path.is_dir():
        path = path / "config.json"
    text = read_input(path, file=file or str(path), key="model.hf_config")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"malformed JSON in {path}: {exc}", file=file, key="model.hf_config") from None
    from planner.spec.hf import model_from_hf

    try:
        out = model_from_hf(data, name=path.parent.name if path.name == "config.json" else path.stem)
    except InputError as exc:
        raise InputError(exc.message, file=str(path), key=exc.key) from None
    check_hf_model(out, data, str(path))
    return out


def check_hf_model(model: dict, cfg: dict, file: str) -> None:
    """Validate the model mapped from a config.json, so that its errors name that file and the config's
    own keys (num_key_value_heads, not kv_heads: planner.spec.hf.HF_NAMES), as the user wrote them."""
    from planner.spec.hf import hf_message, hf_name
    from planner.spec.model import ModelSpec

    try:
        ModelSpec.model_validate(model)
    except ValidationError as exc:
        errors = [(hf_name(k, cfg), hf_message(m, cfg, k.split(".")[0] if k in ("moe", "mla") else ""))
                  for k, m in format_errors(exc, ModelSpec)]
        extra = "".join(f"\n  {k}: {m}" for k, m in errors[1:])
        raise InputError(errors[0][1] + extra, file=file, key=errors[0][0]) from None


def resolve_model(value: Any, base_dir: Path, file: str | None = None) -> Any:
    """Model: catalog name, {hf_config: path[, mtp_layers: n]}, or inline mapping (returned as a plain
    dict). `mtp_layers` next to hf_config replaces the file's num_nextn_predict_layers (e.g. 0 to plan
    DeepSeek-V3 without its MTP module, as transformers instantiates it)."""
    from planner import catalog

    if isinstance(value, str):
        return catalog.model_entry(value, key="model", file=file)
    if isinstance(value, dict) and "hf_config" in value:
        extra = sorted(set(value) - {"hf_config", "mtp_layers"})
        if extra:
            raise InputError(f"unexpected keys next to hf_config: {extra} (allowed: mtp_layers)", file=file,
                             key="model")
        raw = value["hf_config"]
        if not isinstance(raw, str) or not raw.strip():
            raise InputError(f"expected the path of a config.json (or of the folder holding it) as text, not {raw!r}",
                             file=file, key="model.hf_config")
        p = Path(raw)
        out = read_hf_config(p if p.is_absolute() else base_dir / p, file=file)
        if "mtp_layers" in value:
            out = {**out, "mtp_layers": value["mtp_layers"]}  # validated with the rest of the model
        return out
    return value


def resolve_node(value: Any, file: str | None = None, key: str = "cluster.node") -> Any:
    from planner import catalog

    if isinstance(value, str):
        value = catalog.node_entry(value, key=key, file=file)
    if isinstance(value, dict) and isinstance(value.get("gpu"), str):
        value = {**value, "gpu": catalog.gpu_entry(value["gpu"], key=f"{key}.gpu", file=file)}
    return value


def resolve_scenario_dict(data: Any, base_dir: Path, file: str | None = None) -> Any:
    if not isinstance(data, dict):
        return data
    data = dict(data)
    if "model" in data:
        data["model"] = resolve_model(data["model"], base_dir, file)
    if isinstance(data.get("cluster"), dict) and "node" in data["cluster"]:
        data["cluster"] = {**data["cluster"], "node": resolve_node(data["cluster"]["node"], file)}
    return data


PRICE_KEYS = ("cluster.node.price.cloud_usd_per_node_hour", "cluster.node.gpu.price.cloud_usd_per_gpu_hour")


def position_problem(model, seq_len: int) -> str | None:
    """A learned position table shorter than the sequence cannot embed it (GPT-2: n_positions)."""
    if model.position == "learned" and model.max_seq_len is not None and model.max_seq_len < seq_len:
        return (f"seq_len ({seq_len}) exceeds the model's learned position table (max_seq_len "
                f"{model.max_seq_len})")
    return None


def check_cost_objective(sc, objective: str | None, file: str | None, key: str) -> None:
    """Ranking by cost needs a price: without one every plan's cost is unknown and the order would be
    the tie rule's alone (simplest layout first), not the cheapest."""
    if objective == "cost" and sc.cluster.node.usd_per_gpu_hour is None:
        raise InputError(f"ranking by cost needs the price of node '{sc.cluster.node.name}', which is unknown; give "
                         f"it in an inline node as {PRICE_KEYS[0]} or {PRICE_KEYS[1]}, or rank by time (the same order "
                         "as cost on one GPU count at any price)", file=file, key=key)


def check_scenario(sc, file: str | None = None):
    """Checks across sections that a lone section cannot make: sequence vs position table, and a
    money budget on hardware without a price (every plan would be 'over budget' at any budget)."""
    problem = position_problem(sc.model, sc.training.seq_len)
    if problem:
        raise InputError(problem, file=file, key="training.seq_len")
    check_cost_objective(sc, sc.objective, file, "objective")
    if sc.budget.max_usd is not None and sc.cluster.node.usd_per_gpu_hour is None:
        raise InputError(f"the price of node '{sc.cluster.node.name}' is unknown, so no plan's cost can be "
                         f"compared with the budget; give it in an inline node as {PRICE_KEYS[0]} or "
                         f"{PRICE_KEYS[1]}, or remove budget.max_usd", file=file, key="budget.max_usd")
    return sc


def is_purchase(data: Any) -> bool:
    """A purchase file is told from a scenario by its top-level keys (here, not in planner.spec.purchase:
    telling them apart needs none of the purchase and serving models, 0.03-0.05 s of a solve's start-up)."""
    return isinstance(data, dict) and ("clusters" in data or "workloads" in data or "serving_workloads" in data)


def refuse_foreign_file(data, path) -> None:
    """A Hugging Face config.json or a DeepSpeed config (what `planner export` writes) given as a scenario or
    purchase file: say what it is and what reads it, rather than listing each of its keys as unknown."""
    if not isinstance(data, dict) or {"name", "model", "cluster", "clusters"} & set(data):
        return
    if "model_type" in data:
        raise InputError(f"this is a Hugging Face config.json (model_type {data['model_type']!r}), not a scenario: "
                         f"`planner model {path}` counts it, and a scenario reads it as model: {{hf_config: {path}}}",
                         file=str(path), key="model_type")
    if {"train_batch_size", "train_micro_batch_size_per_gpu", "zero_optimization"} & set(data):
        raise InputError("this is a DeepSpeed config (planner export writes one), not a scenario or purchase file",
                         file=str(path), key="zero_optimization")


def refuse_purchase_file(data, path) -> None:
    """A purchase file given where a scenario is expected: say which command reads it."""
    refuse_foreign_file(data, path)
    if is_purchase(data) and not ("training" in data or "serving" in data):
        raise InputError("this is a purchase file (clusters:, workloads:), not a scenario; evaluate it with "
                         f"`planner compare {path}`", file=str(path), key="clusters")


def load_scenario(path: str | Path):
    """Read and validate a scenario file (catalog names and hf_config resolved)."""
    from planner.spec.scenario import Scenario

    p = Path(path)
    data = load_yaml(p)
    refuse_purchase_file(data, path)
    if isinstance(data, dict) and "serving" in data and "training" in data:
        raise InputError("a scenario has either a training: or a serving: block, not both",
                         file=str(path), key="serving")
    if isinstance(data, dict) and "serving" in data and "training" not in data:
        raise InputError("this is a serving scenario (it has a serving: block, not training:); "
                         f"plan it with `planner serve {path}`", file=str(path), key="serving")
    sc = validate_model(Scenario, resolve_scenario_dict(data, p.parent, str(path)), file=str(path))
    return check_scenario(sc, str(path))


def validate(path: str | Path) -> str:
    """Validate a scenario or purchase file; returns a one-line summary or raises InputError."""
    from planner.spec.purchase import validate_purchases

    data = load_yaml(path)
    refuse_foreign_file(data, path)
    if is_purchase(data):
        return validate_purchases(path)
    if isinstance(data, dict) and "serving" in data:
        from planner.spec.serving import load_serving_scenario

        sc = load_serving_scenario(path)
        return (f"{path}: valid serving scenario '{sc.name}': model {sc.model.name}, "
                f"{sc.cluster.nodes} x {sc.cluster.node.name} ({sc.cluster.gpus} GPUs)")
    sc = load_scenario(path)
    per_node = sc.cluster.node.gpus_per_node
    gpus = ", ".join(str(n * per_node) for n in sc.cluster.node_counts[:6])
    more = ", ..." if len(sc.cluster.node_counts) > 6 else ""
    return (f"{path}: valid scenario '{sc.name}': model {sc.model.name}, "
            f"{sc.cluster.nodes_text} x {sc.cluster.node.name} ({gpus}{more} GPUs)")
