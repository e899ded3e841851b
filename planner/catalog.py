"""Built-in catalogs (GPUs, nodes, models), shipped inside the wheel as `planner.catalogs`.

Loaded once, validated, and returned as immutable objects; raw entries are also available so that a
scenario can embed a catalog entry before validation (its errors then name the scenario's keys).
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import yaml

from planner.errors import InputError
from planner.spec.load import SAFE_LOADER

KINDS = ("gpus", "nodes", "models")


def catalog_file_text(filename: str) -> tuple[str, str]:
    """(text, where) of a file shipped in planner.catalogs (the source tree's catalogs/ without install)."""
    try:
        ref = resources.files("planner.catalogs").joinpath(filename)
        return ref.read_text(encoding="utf-8"), str(ref)
    except (ModuleNotFoundError, FileNotFoundError):  # running from a source tree without install
        p = Path(__file__).resolve().parent.parent / "catalogs" / filename
        return p.read_text(encoding="utf-8"), str(p)


def _catalog_text(kind: str) -> tuple[str, str]:
    return catalog_file_text(f"{kind}.yaml")


@lru_cache(maxsize=None)
def raw(kind: str) -> tuple[MappingProxyType, ...]:
    """The catalog's entries as read-only mappings, in file order."""
    if kind not in KINDS:
        raise InputError(f"unknown catalog '{kind}' (expected one of {', '.join(KINDS)})")
    text, where = _catalog_text(kind)
    entries = yaml.load(text, Loader=SAFE_LOADER) or []  # noqa: S506 - a safe loader
    names = [e["name"] for e in entries]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise InputError(f"duplicate catalog names: {sorted(dupes)}", file=where)
    return tuple(MappingProxyType(e) for e in entries)


def names(kind: str) -> list[str]:
    return [e["name"] for e in raw(kind)]


def _entry(kind: str, name: str, key: str, file: str | None) -> dict:
    for e in raw(kind):
        if e["name"] == name:
            return _thaw(e)
    near = difflib.get_close_matches(name, names(kind), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    raise InputError(f"unknown {kind[:-1]} '{name}' (see `planner catalog {kind}`){hint}", file=file, key=key)


def _thaw(value):
    if isinstance(value, (dict, MappingProxyType)):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_thaw(v) for v in value]
    return value


def entry(kind: str, name: str, key: str | None = None, file: str | None = None) -> dict:
    """One raw catalog entry (a fresh, mutable copy); unknown names raise with suggestions."""
    return _entry(kind, name, key or kind, file)


def gpu_entry(name: str, key: str = "gpu", file: str | None = None) -> dict:
    return _entry("gpus", name, key, file)


def node_entry(name: str, key: str = "node", file: str | None = None) -> dict:
    return _entry("nodes", name, key, file)


def model_entry(name: str, key: str = "model", file: str | None = None) -> dict:
    return _entry("models", name, key, file)


@lru_cache(maxsize=None)
def gpu(name: str):
    from planner.spec.hardware import GPU
    from planner.spec.load import validate_model

    return validate_model(GPU, gpu_entry(name), file=f"catalog gpus: {name}")


@lru_cache(maxsize=None)
def node(name: str):
    from planner.spec.hardware import Node
    from planner.spec.load import resolve_node, validate_model

    return validate_model(Node, resolve_node(name), file=f"catalog nodes: {name}")


@lru_cache(maxsize=None)
def model(name: str):
    from planner.spec.load import validate_model
    from planner.spec.model import ModelSpec

    return validate_model(ModelSpec, model_entry(name), file=f"catalog models: {name}")


def get(kind: str, name: str):
    return {"gpus": gpu, "nodes": node, "models": model}[kind](name)
