"""Engine registry: one module per engine, each defining ``ENGINE``; discovered by name.

An engine says how to relax, run a static and run a NEB, and, for engines that compute in
this process (mlip, gpaw), how to make an ASE calculator. Adding an engine is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobflow import Maker


@dataclass(frozen=True)
class Engine:
    name: str
    description: str
    relax_maker: Callable[..., Maker]  # (relax_cell: bool, fmax: float) -> Maker
    static_maker: Callable[..., Maker]
    neb_maker: Callable[..., Maker]  # (fmax: float, steps: int) -> Maker
    calculator: Callable[..., Any] | None = None  # local engines: () -> ASE calculator
    # local engines that evaluate several images in one call: () -> (frames -> [results dicts])
    band_evaluator: Callable[..., Any] | None = None
    programs: tuple[str, ...] = ()  # executables the engine needs at run time
    python_modules: tuple[str, ...] = ()
    install_hint: str = ""
    defaults: dict = field(default_factory=dict)

    def missing(self) -> str | None:
        """Why this engine cannot run here (None when it can)."""
        for module in self.python_modules:
            if importlib.util.find_spec(module) is None:
                return f"engine '{self.name}' needs the Python package {module}: {self.install_hint}"
        for program in self.programs:
            if shutil.which(program) is None:
                return f"engine '{self.name}' needs the program {program} on PATH: {self.install_hint}"
        return None


def engine_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get_engine(name: str) -> Engine:
    if name not in engine_names():
        raise ValueError(f"unknown engine {name!r}: choose one of {', '.join(engine_names())}")
    return importlib.import_module(f"{__name__}.{name}").ENGINE
