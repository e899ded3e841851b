"""Built-in catalogs (GPUs, nodes, models), shipped inside the wheel as `planner.catalogs`.

Loaded once, validated, and returned as immutable objects; raw entries are also available so that a
scenario can embed a catalog entry before validation (its errors then name the scenario's keys).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from planner.errors import InputError

KINDS = ("gpus", "nodes", "models")


@lru_cache(maxsize=None)
def _installed_folders() -> tuple[str, ...] | None:
    """The folders of the catalogs that belong to this copy of the code: the package's own catalogs/ folder
    (an ordinary install), else the catalogs/ beside the package in a source tree (a checkout, installed
    editable or not: its code and its catalogs go together, also where another checkout holds the editable
    install), else the folders of planner.catalogs as the import system finds it (() where it has none on
    disk, inside a zip archive); None where there is none."""
    here = Path(__file__).resolve().parent
    for folder in (here / "catalogs", here.parent / "catalogs"):
        if (folder / "gpus.yaml").is_file():
            return (str(folder),)
    from importlib.util import find_spec

    try:
        spec = find_spec("planner.catalogs")
    except ModuleNotFoundError:
        return None
    return None if spec is None else tuple(spec.submodule_search_locations or ())


def catalog_file_text(filename: str) -> tuple[str, str]:
    """(text, where) of a file shipped in planner.catalogs (the source tree's catalogs/ without install).
    Where the catalogs are a folder of files the file is read from there, as importlib.resources.files would
    find it, without importing importlib.resources (with tempfile and zipfile: ~60M instructions, 0.01 s of
    every start-up); importlib.resources reads any other kind."""
    folders = _installed_folders()
    for folder in folders or ():
        p = Path(folder) / filename
        if p.is_file():
            return p.read_text(encoding="utf-8"), str(p)
    if folders is not None:
        from importlib import resources

        try:
            ref = resources.files("planner.catalogs").joinpath(filename)
            return ref.read_text(encoding="utf-8"), str(ref)
        except (ModuleNotFoundError, FileNotFoundError):
            pass
    raise InputError(f"the built-in catalog file {filename} is missing from this installation of planner")


def _catalog_text(kind: str) -> tuple[str, str]:
    return catalog_file_text(f"{kind}.yaml")


def _load(text: str):
    import yaml

    from planner.spec.load import SAFE_LOADER

    return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader


@lru_cache(maxsize=None)
def raw(kind: str) -> tuple[MappingProxyType, ...]:
    """The catalog's entries as read-only mappings, in file order."""
    if kind not in KINDS:
        raise InputError(f"unknown catalog '{kind}' (expected one of {', '.join(KINDS)})")
    text, where = _catalog_text(kind)
    entries = _load(text) or []
    names = [e["name"] for e in entries]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise InputError(f"duplicate catalog names: {sorted(dupes)}", file=where)
    return tuple(MappingProxyType(e) for e in entries)


def names(kind: str) -> list[str]:
    return [e["name"] for e in raw(kind)]


_ITEM = re.compile(r"^- ", re.M)  # a top-level list item (a catalog entry) starts at column 0
_NAME = re.compile(r'- name: *(?:"([^"\\\n]*)"|([A-Za-z0-9][A-Za-z0-9._+-]*)) *(?:#[^\n]*)?\n')
_BLANK = re.compile(r"(?:[ \t]*(?:#[^\n]*)?\n)*")
# what may tie an entry's text to the rest of the file: a document marker, or an anchor or alias
# (& or * before a name outside quotes and comments; a false alarm only parses the whole file)
_UNSPLITTABLE = re.compile(r"^(?:---|\.\.\.)|^[^#\"'\n]*[&*][A-Za-z0-9_]", re.M)


@lru_cache(maxsize=None)
def _items(kind: str) -> dict[str, str] | None:
    """{name: the text of its entry} of a catalog file laid out as the shipped ones are: comments, then
    top-level list items each starting `- name: NAME` (a plain or double-quoted name), names unique;
    None for any other layout (then the whole file is parsed). Looking up one entry then parses only
    its text (a scenario names one node, one GPU and one model of ~75 entries: start-up time)."""
    if kind not in KINDS:
        return None
    text, _ = _catalog_text(kind)
    starts = [m.start() for m in _ITEM.finditer(text)]
    if not starts or not _BLANK.fullmatch(text, 0, starts[0]) or _UNSPLITTABLE.search(text):
        return None
    items = {}
    for lo, hi in zip(starts, starts[1:] + [len(text)]):
        m = _NAME.match(text, lo)
        if m is None:
            return None
        name = m.group(1) if m.group(1) is not None else m.group(2)
        if name in items:
            return None  # the whole parse names the duplicates
        items[name] = text[lo:hi]
    return items


def _one(kind: str, name: str) -> dict | None:
    """The entry `name` parsed from its own text (_items), or None (not found, or another layout)."""
    items = _items(kind)
    if not items or name not in items:
        return None
    found = _load(items[name])
    if isinstance(found, list) and len(found) == 1 and isinstance(found[0], dict) and found[0].get("name") == name:
        return found[0]
    return None


def _entry(kind: str, name: str, key: str, file: str | None) -> dict:
    one = _one(kind, name)
    if one is not None:
        return one  # a fresh parse: mutable, shared with no one
    for e in raw(kind):
        if e["name"] == name:
            return _thaw(e)
    import difflib  # only for this message (start-up time)

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
