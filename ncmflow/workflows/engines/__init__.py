"""The engine registry: an engine is one module that defines ``ENGINE``, an :class:`Engine`.

An engine provides everything ncmflow needs of it — its input writer, its relax/static/NEB
makers and, for engines that compute in this process, an ASE calculator — and every factory
takes the :class:`~ncmflow.inputs.settings.DftSettings` whose tolerances it must honour.
Engines come from three places, looked up in this order: the modules of this package,
``register(engine)`` (a test or a notebook), and the ``ncmflow.engines`` entry point group
of installed packages (a plugin: ``[project.entry-points."ncmflow.engines"] cp2k =
"ncmflow_cp2k:ENGINE"``). Adding an engine never edits another file: see README, "Adding an
engine".
"""

from __future__ import annotations

import importlib
import pkgutil
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from jobflow import Maker
    from pymatgen.core import Structure

    from ncmflow.inputs.settings import DftSettings

JOBS = ("relax", "static", "neb")
ENTRY_POINTS = "ncmflow.engines"


class Tolerances(NamedTuple):
    """What a written input will stop at: force criterion (eV/Å) and step budget (None when
    the engine's method has none, e.g. CASTEP's LST/QST search)."""

    fmax: float
    steps: int | None


# (job, images, folder, settings, bulk) -> written paths; NEB jobs get every image
Writer = Callable[[str, "list[Structure]", Path, "DftSettings", "bool | None"], "list[Path]"]


@dataclass(frozen=True)
class Engine:
    """One engine's contract. Factories are called as ``relax_maker(settings, relax_cell)``,
    ``static_maker(settings)``, ``neb_maker(settings, optimizer)`` (``optimizer`` None: the
    engine's own) and ``calculator(settings, stress)``; the makers' outputs follow atomate2
    (a relaxation's output has ``.structure``) and the NEB maker's output is a ``BarrierDoc``.
    """

    name: str
    description: str
    relax_maker: Callable[..., Maker]
    static_maker: Callable[..., Maker]
    neb_maker: Callable[..., Maker]
    write_inputs: Writer
    # (job, folder) -> Tolerances, read back from the written files the way the engine reads them
    read_tolerances: Callable[[str, Path], Tolerances]
    jobs: tuple[str, ...] = JOBS  # jobs the writer can write
    calculator: Callable[..., Any] | None = None  # local engines: an ASE calculator
    # local engines that evaluate several images in one call: (settings) -> (frames -> [results])
    band_evaluator: Callable[..., Any] | None = None
    neb_uses_images: bool = True  # False: the method starts from the end points alone (LST/QST)
    # a single-point energy job, (structure, settings, **options) -> {"energy": eV, ...}: what the
    # study's DFT check (``ncmflow.workflows.dftcheck``) runs on ML end points and saddles
    energy_job: Callable[..., Any] | None = None
    programs: tuple[str, ...] = ()  # executables the engine needs at run time
    python_modules: tuple[str, ...] = ()
    install_hint: str = ""

    def missing(self) -> str | None:
        """Why this engine cannot run here (None when it can)."""
        for module in self.python_modules:
            if importlib.util.find_spec(module) is None:
                return f"engine '{self.name}' needs the Python package {module}: {self.install_hint}"
        for program in self.programs:
            if shutil.which(program) is None:
                return f"engine '{self.name}' needs the program {program} on PATH: {self.install_hint}"
        return None


_REGISTERED: dict[str, Engine] = {}


def _builtin() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}


def register(engine: Engine) -> Engine:
    """Make ``engine`` available by name in this process (tests, notebooks); built-in names
    cannot be taken over."""
    if engine.name in _builtin():
        raise ValueError(f"engine {engine.name!r} is built in; register yours under another name")
    _REGISTERED[engine.name] = engine
    return engine


def engine_names() -> list[str]:
    return sorted({*_builtin(), *_REGISTERED, *_plugins()})


def get_engine(name: str) -> Engine:
    if name in _builtin():
        return importlib.import_module(f"{__name__}.{name}").ENGINE
    if name in _REGISTERED:
        return _REGISTERED[name]
    if (plugin := _plugins().get(name)) is not None:
        return plugin.load()
    raise ValueError(f"unknown engine {name!r}: choose one of {', '.join(engine_names())}")


def write_inputs(
    engine: str,
    job: str,
    structures: list[Structure],
    outdir: Path,
    settings: DftSettings | None = None,
    n_images: int = 5,
    bulk: bool | None = None,
) -> list[Path]:
    """Write ``job`` inputs for ``engine`` under ``outdir``; return every written path.

    ``neb`` takes exactly (start, end) and writes the IDPP images between them (the same path
    for every engine). Other jobs take one or more structures; several go to numbered
    sub-folders ``00_<formula>``, … . ``bulk=True`` asks for a cell relaxation and is refused
    for slabs; ``None`` decides from the vacuum.
    """
    from ncmflow.inputs.settings import PAPER, check_elements
    from ncmflow.structures.path import neb_images

    chosen = get_engine(engine)
    if job not in chosen.jobs:
        able = {n: get_engine(n).jobs for n in engine_names()}
        known = [*JOBS, *sorted({j for jobs in able.values() for j in jobs} - set(JOBS))]
        if job not in known:
            raise ValueError(f"unknown job {job!r}; valid jobs: {', '.join(known)}")
        which = " or ".join(repr(n) for n, jobs in able.items() if job in jobs)
        raise ValueError(f"job {job!r} is only available for engine {which}")
    if not structures:
        raise ValueError("no structures given")
    for structure in structures:
        check_elements(structure)
    settings = settings or PAPER
    outdir = Path(outdir)
    if job == "neb":
        if len(structures) != 2:
            raise ValueError(f"job 'neb' takes exactly two structures (start, end), got {len(structures)}")
        return chosen.write_inputs(job, neb_images(*structures, n_images=n_images), outdir, settings, bulk)
    if len(structures) == 1:
        return chosen.write_inputs(job, structures, outdir, settings, bulk)
    written = []
    for i, structure in enumerate(structures):
        subdir = outdir / f"{i:02d}_{structure.reduced_formula}"
        written += chosen.write_inputs(job, [structure], subdir, settings, bulk)
    return written
