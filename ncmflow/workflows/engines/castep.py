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
from ncmflow.workflows.documents import BarrierDoc
from ncmflow.workflows.engines import Engine

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

    @job(output_schema=CastepResult)
    def make(self, structure: Structure) -> CastepResult:
        from ase.io import read
        from pymatgen.io.ase import AseAtomsAdaptor

        write_castep(self.task, [structure], Path.cwd(), bulk=self.relax_cell, seed=SEED)
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
    fmax: float = 0.05
    uses_images = False  # LST/QST starts from the end points: a second, denser band adds nothing

    @job(output_schema=BarrierDoc)
    def make(self, images: list[Structure], model: str, info: dict | None = None) -> BarrierDoc:
        write_castep("neb", [images[0], images[-1]], Path.cwd(), seed=SEED)
        barriers = parse_ts_barriers(_run())
        forward, reverse = barriers["reactant"], barriers["product"]
        return BarrierDoc(model=model, engine="castep", images=[images[0], images[-1]],
                          forward_barrier=forward, reverse_barrier=reverse,
                          reaction_energy=forward - reverse, converged=True, state="successful",
                          fmax=self.fmax, optimizer="LST/QST", tangent="n/a", dir_name=str(Path.cwd()),
                          **{"path_method": "LST/QST from the end points", **(info or {})})


def relax_maker(relax_cell: bool = False, **_) -> CastepMaker:
    return CastepMaker(relax_cell=relax_cell)


def static_maker(**_) -> CastepMaker:
    return CastepMaker(name="castep static", task="static")


def neb_maker(fmax: float = 0.05, **_) -> CastepTsMaker:
    return CastepTsMaker(fmax=fmax)


ENGINE = Engine(
    name="castep",
    description="CASTEP (the paper's code), LST/QST transition-state search, on a cluster",
    relax_maker=relax_maker,
    static_maker=static_maker,
    neb_maker=neb_maker,
    programs=(shlex.split(os.environ.get("NCMFLOW_CASTEP_CMD", "castep.mpi"))[0],),
    install_hint="run it where CASTEP is licensed and installed; set NCMFLOW_CASTEP_CMD",
)
