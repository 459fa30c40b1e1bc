"""Modules imported on first use, for a fast `ncmflow --help`.

typer's help formatter (``typer.rich_utils``) imports ``rich.markdown`` (markdown_it and
pygments, ~45 ms) and ``rich.traceback`` (~15 ms) at its top, although the CLI's help is
rich markup (no Markdown) and pretty tracebacks are off. `defer` puts a stand-in module in
``sys.modules`` whose classes import the real module when they are first called or
inspected, so those imports happen only if something uses them (`ncmflow analyze
electronic` prints Markdown: it gets the real class through the stand-in).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


def _real(name: str) -> types.ModuleType:
    module = sys.modules.get(name)
    if isinstance(module, _StandIn):
        del sys.modules[name]
        module = importlib.import_module(name)
    return module if module is not None else importlib.import_module(name)


class _Deferred(type):
    """A class standing in for ``module.name``: calls, attributes and isinstance go to the real one."""

    _module: str

    def _target(cls) -> type:
        return getattr(_real(cls._module), cls.__name__)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._target()(*args, **kwargs)

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("_"):  # typing probes (`-> Markdown | Text` in signatures) must not import
            raise AttributeError(attr)
        return getattr(cls._target(), attr)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls._target())

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls._target())


class _StandIn(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):  # the import system's probes (__path__, …)
            raise AttributeError(attr)
        return getattr(_real(self.__name__), attr)


def defer(name: str, *classes: str) -> None:
    """Let ``from name import cls`` succeed without importing ``name`` until ``cls`` is used."""
    if name in sys.modules:
        return
    stand_in = _StandIn(name)
    for cls in classes:
        setattr(stand_in, cls, _Deferred(cls, (), {"_module": name}))
    sys.modules[name] = stand_in


def defer_typer_help_imports() -> None:
    """`ncmflow --help` without rich.markdown and rich.traceback: −60 ms of ~0.25 s
    (benchmarks/cli_latency.py). The CLI's help is rich markup (square brackets escaped as
    ``\\[``, backticks shown as written): markdown help would import markdown_it after all."""
    defer("rich.markdown", "Markdown")
    defer("rich.traceback", "Traceback")
