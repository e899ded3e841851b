"""Start-up cost of the input models: pydantic imported without asyncio.

typing_extensions' `deprecated` decorator (typing_extensions.py, `deprecated.__call__` on a function,
Python < 3.12) runs `import asyncio.coroutines` to ask whether the function it wraps is a coroutine
function; pydantic_core.core_schema and pydantic.main decorate functions with it when they are imported,
so the first pydantic import pulls in all of asyncio (ssl, socket, subprocess, its event loops:
0.02-0.04 s of a 0.3 s start-up on 2 cores, about a tenth of the instructions a `planner solve` spends
before it reads the scenario), which the planner never uses. While planner.spec imports pydantic's modules
(planner/spec/__init__.py, before the models are defined), `asyncio.coroutines` names a small module that
answers that one question as asyncio does (asyncio/coroutines.py iscoroutinefunction: inspect's test, or
the `_is_coroutine` marker); afterwards it leaves sys.modules, and a later `import asyncio` imports the
real one. If anything fails under the placeholder (another release reading more of asyncio), every module
imported meanwhile is dropped and the import is done again the ordinary way. Where asyncio is already
imported, nothing changes. The stand-ins are process-wide for that moment: a program importing asyncio in
another thread while planner.spec first imports pydantic would get them (the command line runs no other
thread then).

Likewise pydantic's plugin loader (pydantic/plugin/_loader.py) imports importlib.metadata (with email,
csv, zipfile, socket: 0.01-0.03 s) only to list the installed distributions' entry points when it looks
for plugins, which the command line turns off (PYDANTIC_DISABLE_PLUGINS: planner.cli): the loader is
imported with `importlib.metadata` naming a module that imports the real one at its first attribute read
(a library user who keeps plugins on gets the real module then, as before).
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import types


def _placeholder() -> tuple[types.ModuleType, types.ModuleType]:
    """(asyncio, asyncio.coroutines) stand-ins holding what typing_extensions' deprecated reads."""
    package, coroutines = types.ModuleType("asyncio"), types.ModuleType("asyncio.coroutines")
    package.__path__ = []  # a package, so that `import asyncio.coroutines` resolves the submodule
    marker = object()

    def iscoroutinefunction(func) -> bool:
        return inspect.iscoroutinefunction(func) or getattr(func, "_is_coroutine", None) is marker

    coroutines._is_coroutine, coroutines.iscoroutinefunction = marker, iscoroutinefunction
    package.coroutines = coroutines
    return package, coroutines


class _ImportOnUse(types.ModuleType):
    """Stands for a module not imported yet: the first attribute read imports the real one."""

    def __getattr__(self, name):
        import importlib

        return getattr(importlib.import_module(self.__name__), name)


def _placeholders() -> dict[str, types.ModuleType]:
    """{module name: stand-in} for the modules above that are not imported yet."""
    out: dict[str, types.ModuleType] = {}
    if "asyncio" not in sys.modules:
        out["asyncio"], out["asyncio.coroutines"] = _placeholder()
    if "importlib.metadata" not in sys.modules:
        out["importlib.metadata"] = _ImportOnUse("importlib.metadata")
    return out


@contextlib.contextmanager
def without_asyncio():
    """Run the block (imports) with the placeholders; on an error the block's imports are undone and
    the error is raised (import_without_asyncio then imports the ordinary way)."""
    stand_ins = _placeholders()
    before = set(sys.modules)
    sys.modules.update(stand_ins)
    try:
        yield
    except BaseException:
        for name in set(sys.modules) - before:
            sys.modules.pop(name, None)
        raise
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


def import_without_asyncio(*names: str) -> None:
    """Import the modules `names` under without_asyncio; if that fails, import them as usual (the same
    modules, or the same error)."""
    import importlib

    try:
        with without_asyncio():
            for name in names:
                importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any failure: the ordinary import below raises the real error, if any
        for name in names:
            importlib.import_module(name)
