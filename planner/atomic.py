"""Atomic file writes, in a module of their own so that the commands writing a file (report, CSV,
export) do not import each other's modules: `planner solve --report` imported the purchase search
and the serving spec (about 0.2 s) only for `write_file`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from planner.errors import InputError


def folder_refuses(path: Path, exc: OSError) -> InputError:
    """The error for a folder that takes no new file (read-only, /proc): it names the path the user gave,
    not the temporary name the atomic write staged there."""
    return InputError(f"cannot write in '{Path(path).parent}': {exc.strerror or exc.__class__.__name__}",
                      file=str(path))


def write_atomic(path: Path, text: str, executable: bool = False) -> None:
    """Write `text` to a temporary file next to `path`, flush it to disk, then rename it over `path`."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise folder_refuses(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o755 if executable else 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_file(path: str | Path, text: str, force: bool = False) -> None:
    """Write `text` to `path` atomically (write_atomic); an existing file is replaced only with `force`."""
    p = Path(path)
    if p.exists() and not force:
        raise InputError("file exists; use --force to overwrite it", file=str(p))
    if not p.parent.is_dir():
        raise InputError("the folder does not exist", file=str(p))
    write_atomic(p, text)
