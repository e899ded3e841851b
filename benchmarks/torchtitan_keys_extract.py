"""Regenerate planner/frameworks/torchtitan_keys.json: every key of torchtitan's JobConfig at the pinned
tag, as the dotted TOML path the job config reads (`quantize.linear.mx.recipe_name`), with the values
of its Literal type where it has one, and the model converters registered at that tag.

The torchtitan export (planner/frameworks/torchtitan.py) may write only keys listed there;
tests/test_export.py checks that. The source is read, never imported (it needs torch and a GPU stack):
the dataclasses of torchtitan/config/job_config.py are parsed with `ast`, starting at `JobConfig` and
following each `field(default_factory=<Dataclass>)`; the converter names are the second argument of
each `register_model_converter(...)` call under torchtitan/components/.

    git clone https://github.com/pytorch/torchtitan /tmp/torchtitan
    git -C /tmp/torchtitan checkout v0.2.2
    python benchmarks/torchtitan_keys_extract.py /tmp/torchtitan [COMMIT]
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "planner" / "frameworks" / "torchtitan_keys.json"
TAG = "v0.2.2"


def _literal_values(annotation: ast.expr) -> list | None:
    """The values of a Literal[...] annotation (also inside `Literal[...] | None`), else None."""
    for node in ast.walk(annotation):
        if isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "Literal":
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            return [ast.literal_eval(i) for i in items]
    return None


def _nested_class(value: ast.expr | None) -> str | None:
    """The dataclass of `field(default_factory=Cls)`, or None."""
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "field":
        for kw in value.keywords:
            if kw.arg == "default_factory" and isinstance(kw.value, ast.Name):
                return kw.value.id
    return None


def job_config_keys(source: str) -> dict[str, list | None]:
    """{dotted key: Literal values or None} of every leaf field reachable from JobConfig."""
    classes = {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}
    out: dict[str, list | None] = {}

    def walk(cls: str, prefix: str):
        for stmt in classes[cls].body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            key = f"{prefix}{stmt.target.id}"
            nested = _nested_class(stmt.value)
            if nested in classes:
                walk(nested, key + ".")
            else:
                out[key] = _literal_values(stmt.annotation)

    walk("JobConfig", "")
    return out


def converters(root: Path) -> list[str]:
    """Names passed to register_model_converter(cls, name) under torchtitan/components/."""
    names = []
    for path in sorted((root / "torchtitan" / "components").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register_model_converter" \
                    and len(node.args) == 2 and isinstance(node.args[1], ast.Constant):
                names.append(node.args[1].value)
    return sorted(names)


def main(root: Path, commit: str | None = None) -> None:
    """`commit`: the tag's commit when `root` is an exported tree rather than a checkout."""
    commit = commit or subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                      text=True, check=True).stdout.strip()
    source = (root / "torchtitan" / "config" / "job_config.py").read_text(encoding="utf-8")
    data = {"tag": TAG, "commit": commit, "source": "torchtitan/config/job_config.py (JobConfig)",
            "converters": converters(root), "keys": job_config_keys(source)}
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(OUT)
    print(f"{len(data['keys'])} keys, {len(data['converters'])} converters at {commit} -> {OUT.name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
