"""Read YAML/JSON inputs safely, resolve catalog names, and turn validation errors into messages
that name the file, the key path and what was expected."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from planner.errors import InputError

# libyaml's parser when available (several times faster), with PyYAML's safe constructor either way.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: str | Path) -> Any:
    """Load a YAML (or JSON) file with the safe loader; errors name the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=str(path)) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc.__class__.__name__}", file=str(path)) from None
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
            valid = _fields_at(cls, loc)
            near = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            msg = f"unknown key (expected one of: {', '.join(valid)}){hint}" if valid else "unknown key"
        elif kind == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"]
            if "input" in err and kind not in ("value_error",) and not isinstance(err["input"], (dict, list)):
                msg += f" (got {err['input']!r})"
        out.append((path, msg, kind, near[0] if kind == "extra_forbidden" and near else None))
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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"hf_config file not found: {path}", file=file, key="model.hf_config") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"malformed JSON in {path}: {exc}", file=file, key="model.hf_config") from None
    from planner.spec.hf import model_from_hf

    try:
        return model_from_hf(data, name=path.parent.name if path.name == "config.json" else path.stem)
    except InputError as exc:
        raise InputError(exc.message, file=str(path), key=exc.key) from None


def resolve_model(value: Any, base_dir: Path, file: str | None = None) -> Any:
    """Model: catalog name, {hf_config: path}, or inline mapping (returned as a plain dict)."""
    from planner import catalog

    if isinstance(value, str):
        return catalog.model_entry(value, key="model", file=file)
    if isinstance(value, dict) and "hf_config" in value:
        if set(value) != {"hf_config"}:
            extra = sorted(set(value) - {"hf_config"})
            raise InputError(f"unexpected keys next to hf_config: {extra}", file=file, key="model")
        p = Path(str(value["hf_config"]))
        return read_hf_config(p if p.is_absolute() else base_dir / p, file=file)
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


def load_scenario(path: str | Path):
    """Read and validate a scenario file (catalog names and hf_config resolved)."""
    from planner.spec.scenario import Scenario

    p = Path(path)
    data = load_yaml(p)
    if isinstance(data, dict) and "serving" in data and "training" not in data:
        raise InputError("this is a serving scenario (it has a serving: block, not training:); "
                         f"plan it with `planner serve {path}`", file=str(path), key="serving")
    return validate_model(Scenario, resolve_scenario_dict(data, p.parent, str(path)), file=str(path))


def validate(path: str | Path) -> str:
    """Validate a scenario or purchase file; returns a one-line summary or raises InputError."""
    from planner.spec.purchase import is_purchase, validate_purchases

    data = load_yaml(path)
    if is_purchase(data):
        return validate_purchases(path)
    if isinstance(data, dict) and "serving" in data:
        from planner.spec.serving import load_serving_scenario

        sc = load_serving_scenario(path)
        return (f"{path}: valid serving scenario '{sc.name}': model {sc.model.name}, "
                f"{sc.cluster.nodes} x {sc.cluster.node.name} ({sc.cluster.gpus} GPUs)")
    sc = load_scenario(path)
    return (f"{path}: valid scenario '{sc.name}': model {sc.model.name}, "
            f"{sc.cluster.nodes} x {sc.cluster.node.name} ({sc.cluster.gpus} GPUs)")
