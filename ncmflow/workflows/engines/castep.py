"""CASTEP (the paper's code): ncmflow writes .cell/.param, runs the binary, parses .castep.

atomate2 has no CASTEP support, so these Makers are small: write inputs from the paper's
settings, run ``$NCMFLOW_CASTEP_CMD seed`` (default ``castep.mpi``), read results with ASE.
The NEB is CASTEP's own LST/QST transition-state search between the relaxed end points.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from jobflow import Maker, job
from pydantic import BaseModel
from pymatgen.core import Structure

from ncmflow.inputs.castep import write_castep
from ncmflow.inputs.settings import PAPER, DftSettings
from ncmflow.workflows.documents import BarrierDoc
from ncmflow.workflows.engines import Engine, Tolerances

SEED = "ncmflow"
BARRIER = re.compile(r"Barrier from (reactant|product)\s*[:=]?\s*([-+\d.Ee]+)\s*eV", re.IGNORECASE)


class CastepResult(BaseModel):
    structure: Structure
    energy: float
    dir_name: str


def command() -> list[str]:
    return [*shlex.split(os.environ.get("NCMFLOW_CASTEP_CMD", "castep.mpi")), SEED]


def _run() -> str:
    done = subprocess.run(command(), capture_output=True, text=True, check=False)
    output = Path(f"{SEED}.castep")
    if done.returncode != 0 or not output.is_file():
        raise RuntimeError(f"CASTEP failed (exit {done.returncode}): {done.stderr.strip()[:200]}")
    return output.read_text()


@dataclass
class CastepMaker(Maker):
    """GeometryOptimization or SinglePoint with the paper's settings."""

    name: str = "castep relax"
    task: str = "relax"
    relax_cell: bool = False
    settings: DftSettings = PAPER

    @job(output_schema=CastepResult)
    def make(self, structure: Structure) -> CastepResult:
        from ase.io import read
        from pymatgen.io.ase import AseAtomsAdaptor

        write_castep(self.task, [structure], Path.cwd(), self.settings, bulk=self.relax_cell, seed=SEED)
        _run()
        atoms = read(f"{SEED}.castep", index=-1, format="castep-castep")
        return CastepResult(structure=AseAtomsAdaptor.get_structure(atoms),
                            energy=float(atoms.get_potential_energy()), dir_name=str(Path.cwd()))


def parse_ts_barriers(text: str) -> dict[str, float]:
    """Forward/reverse barriers from a TransitionStateSearch .castep output."""
    found = {side.lower(): float(value) for side, value in BARRIER.findall(text)}
    if {"reactant", "product"} - found.keys():
        raise ValueError("no 'Barrier from reactant/product' lines: the TS search did not finish")
    return found


@dataclass
class CastepTsMaker(Maker):
    """CASTEP LST/QST between the first and last image (the intermediate ones are unused)."""

    name: str = "castep ts-search"
    settings: DftSettings = PAPER

    @job(output_schema=BarrierDoc)
    def make(self, images: list[Structure], model: str, info: dict | None = None) -> BarrierDoc:
        write_castep("neb", [images[0], images[-1]], Path.cwd(), self.settings, seed=SEED)
        barriers = parse_ts_barriers(_run())
        forward, reverse = barriers["reactant"], barriers["product"]
        return BarrierDoc(model=model, engine="castep", images=[images[0], images[-1]],
                          forward_barrier=forward, reverse_barrier=reverse,
                          reaction_energy=forward - reverse, converged=True, state="successful",
                          fmax=self.settings.neb_fmax, optimizer="LST/QST", tangent="n/a",
                          dir_name=str(Path.cwd()),
                          **{"path_method": "LST/QST from the end points", **(info or {})})


def relax_maker(settings: DftSettings = PAPER, relax_cell: bool = False) -> CastepMaker:
    return CastepMaker(relax_cell=relax_cell, settings=settings)


def static_maker(settings: DftSettings = PAPER) -> CastepMaker:
    return CastepMaker(name="castep static", task="static", settings=settings)


def neb_maker(settings: DftSettings = PAPER, optimizer: str | None = None) -> CastepTsMaker:
    """CASTEP's LST/QST search: no optimizer to choose and no band of images."""
    if optimizer is not None:
        raise ValueError(f"CASTEP's LST/QST transition-state search takes no optimizer (got {optimizer!r})")
    return CastepTsMaker(settings=settings)


def read_tolerances(job: str, folder: Path) -> Tolerances:
    """Force tolerance and iteration budget of the written .param, read by ASE's CASTEP reader.

    LST/QST has no budget comparable to a NEB's iterations: ``steps`` is None for ``neb``.
    """
    import warnings

    from ase.io.castep import read_param

    with warnings.catch_warnings():  # "no CASTEP binary": the keywords are read unchecked
        warnings.simplefilter("ignore", UserWarning)
        param = read_param(str(Path(folder) / f"{SEED}.param")).param
    if job == "neb":
        return Tolerances(fmax=_value(param.tssearch_force_tol.value), steps=None)
    return Tolerances(fmax=_value(param.geom_force_tol.value), steps=int(param.geom_max_iter.value))


def _value(text: str) -> float:
    return float(str(text).split()[0])  # "0.05 ev/ang" -> 0.05


ENGINE = Engine(
    name="castep",
    description="CASTEP (the paper's code), LST/QST transition-state search, on a cluster",
    relax_maker=relax_maker,
    static_maker=static_maker,
    neb_maker=neb_maker,
    write_inputs=write_castep,
    read_tolerances=read_tolerances,
    neb_uses_images=False,  # LST/QST starts from the end points: a denser band adds nothing
    programs=(shlex.split(os.environ.get("NCMFLOW_CASTEP_CMD", "castep.mpi"))[0],),
    install_hint="run it where CASTEP is licensed and installed; set NCMFLOW_CASTEP_CMD",
)
