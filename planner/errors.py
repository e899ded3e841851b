"""Errors the user can fix. The CLI prints them without a traceback and exits with code 2 (a valid
scenario where nothing fits is not an error: solve() returns no plans and an explanation, exit 1)."""

from __future__ import annotations


class InputError(Exception):
    """Bad input: names the file, the key path and what was expected."""

    def __init__(self, message: str, file: str | None = None, key: str | None = None):
        self.file = file
        self.key = key
        self.message = message
        where = ": ".join(p for p in (file, key) if p)
        super().__init__(f"{where}: {message}" if where else message)
