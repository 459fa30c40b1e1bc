"""GPAW, the local PAW engine: the paper's settings as a GPAW (+ D3) calculator and a run script.

GPAW runs in this process, so the workflows relax and run NEBs with it directly. Plane waves
(``mode="pw"``) are the stand-in for CASTEP's basis and are used for energies and forces:
LCAO forces were seen to be wrong in GPAW 26.7 (platform notes), so LCAO (``dzp``) serves
only the electronic-structure analyses (PDOS, COHP from its H and S matrices).
D3 comes from ``dftd3`` with the same parameters as the ML engine, summed in as PBE-D3 does.
GPAW has no plain Gaussian smearing; Fermi-Dirac of the same width stands in (energies are
extrapolated to zero width). Its SCF energy criterion is per valence electron, not per atom.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ase.calculators.mixing import SumCalculator
from pymatgen.core import Structure

from ncmflow.inputs.mlip import dispersion_calculator
from ncmflow.inputs.settings import (
    PAPER,
    DftSettings,
    check_elements,
    has_vacuum,
    job_tolerances,
    kpoint_mesh,
    relaxes_cell,
    to_ase_atoms,
)

if TYPE_CHECKING:
    from ase import Atoms

Mode = Literal["pw", "lcao"]
CELL_RELAX_REFUSED = ("GPAW 26.7's plane-wave stress disagrees with its energies (LiNiO2: −60 GPa where "
                      "E(V) gives +1 GPa): relax the cell with another engine, or fit E(a, c) as "
                      "benchmarks/dft_checks.py does")
LCAO_BASIS = "dzp"


def _structure(atoms_or_structure: Atoms | Structure) -> Structure:
    if isinstance(atoms_or_structure, Structure):
        return atoms_or_structure
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_structure(atoms_or_structure)  # initial moments -> "magmom"


def gpaw_parameters(
    atoms_or_structure: Atoms | Structure | None = None,
    settings: DftSettings = PAPER,
    mode: Mode = "pw",
    encut: float | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """GPAW keyword arguments for ``settings`` (JSON-ready).

    With a structure the Γ-centred mesh is ``kpoint_mesh`` (as the VASP writer) and the start
    moments are fixed here; without one (calculator factories of the workflows) the same
    spacing is given as a k-point density and the moments come from the atoms at run time.
    ``encut`` and any GPAW keyword (``kpts``, ``spinpol``, …) override, e.g. for cheap tests.
    """
    if mode not in ("pw", "lcao"):
        raise ValueError(f"GPAW mode must be 'pw' or 'lcao', got {mode!r}")
    params: dict[str, Any] = {
        "mode": {"name": "pw", "ecut": encut or settings.encut} if mode == "pw" else {"name": "lcao"},
        "xc": settings.xc,
        "spinpol": settings.spin_polarized,
        "occupations": {"name": "fermi-dirac", "width": settings.smearing},
        "convergence": {"energy": settings.energy_tol},
        # CASTEP's spacing s (2π/Å) is ASE's density 1/(2π s) k-points per Å⁻¹
        "kpts": {"density": 1.0 / (2 * math.pi * settings.kpoint_spacing), "gamma": True},
    }
    if mode == "lcao":
        params["basis"] = LCAO_BASIS
    if settings.hubbard_u:
        params["setups"] = {el: f":d,{u:g}" for el, u in settings.u_values.items()}
    if atoms_or_structure is not None:
        structure = _structure(atoms_or_structure)
        mesh = kpoint_mesh(structure, settings.kpoint_spacing)
        if has_vacuum(structure):  # a slab: one k along the normal, dipole layer in the vacuum
            mesh = (*mesh[:2], 1)
            params["poissonsolver"] = {"dipolelayer": "xy"}
        params["kpts"] = {"size": mesh, "gamma": True}
        if settings.spin_polarized:
            params["magmoms"] = settings.initial_magmoms(structure)
    return params | overrides


class DftPlusD3(SumCalculator):
    """DFT + D3 that also reports the DFT part's magnetic moments (D3 has none, so a plain
    ``SumCalculator`` drops them, and with them the Ni moments of every relaxation step)."""

    magnetic = ("magmom", "magmoms")

    def __init__(self, dft: Any, d3: Any) -> None:
        super().__init__([dft, d3])
        self.dft, self.d3 = dft, d3
        self.implemented_properties = [*self.implemented_properties, *self.magnetic]

    def calculate(self, atoms: Atoms, properties: list[str], system_changes: list[str]) -> None:
        summed = [p for p in properties if p not in self.magnetic] or ["energy"]
        super().calculate(atoms, summed, system_changes)
        self.results |= {p: self.dft.get_property(p, atoms) for p in self.magnetic}


def slab_boundaries(atoms: Atoms) -> Atoms:
    """Non-periodic along c for a slab, which GPAW's dipole layer needs (see gpaw_parameters)."""
    if has_vacuum(_structure(atoms)):
        atoms.pbc = (True, True, False)
    return atoms


def gpaw_calculator(
    atoms_or_structure: Atoms | Structure | None = None,
    settings: DftSettings = PAPER,
    mode: Mode = "pw",
    txt: str | Path | None = "gpaw.txt",
    **overrides: Any,
) -> Any:
    """GPAW (+ D3 unless ``settings.dispersion == "none"``) as one ASE calculator.

    The parts are ``.dft`` and ``.d3`` of a :class:`DftPlusD3`, so each can be checked alone.
    """
    from gpaw import GPAW

    calc = GPAW(**gpaw_parameters(atoms_or_structure, settings, mode, **overrides),
                txt=str(txt) if txt is not None else None)
    d3 = dispersion_calculator(settings)
    return calc if d3 is None else DftPlusD3(calc, d3)


RUN_SCRIPT = '''"""Run this job with GPAW: python run_gpaw.py (written by ncmflow)."""
import json

from ase.io import read, write

from ncmflow.inputs.gpaw import gpaw_calculator, slab_boundaries
from ncmflow.inputs.settings import DftSettings

run = json.load(open("settings.json"))
settings = DftSettings.from_dict(run["settings"])
images = [slab_boundaries(image) for image in read("images.extxyz", index=":")]
if run["job"] == "neb":
    from ase.mep import NEB
    from ase.mep.neb import NEBOptimizer

    for image in images:
        image.calc = gpaw_calculator(image, settings, txt=None)
    NEBOptimizer(NEB(images, climb=True, method="improvedtangent"), trajectory="neb.traj").run(
        fmax=run["fmax"], steps=run["steps"])
else:
    from ase.optimize import BFGS

    atoms = images[0]
    atoms.calc = gpaw_calculator(atoms, settings)
    if run["job"] == "relax":
        BFGS(atoms, trajectory="relax.traj").run(fmax=run["fmax"], steps=run["steps"])
    print("energy (eV):", atoms.get_potential_energy())
write("final.extxyz", images)
'''


def write_gpaw(
    job: str,
    images: list[Structure],
    outdir: Path,
    settings: DftSettings = PAPER,
    bulk: bool | None = None,
) -> list[Path]:
    """Write ``images.extxyz``, ``settings.json`` (with the GPAW keywords) and ``run_gpaw.py``."""
    from ase.io import write

    for image in images:
        check_elements(image)
    if job == "relax" and relaxes_cell(images[0], bulk):  # validates first
        raise ValueError(f"{CELL_RELAX_REFUSED}; or write a fixed-cell relaxation "
                         "(bulk=False; --no-bulk)")
    run = {"job": job, "relax_cell": False, **job_tolerances(job, settings),
           "gpaw": gpaw_parameters(images[0], settings), "settings": settings.as_dict()}
    outdir.mkdir(parents=True, exist_ok=True)
    paths = [outdir / "images.extxyz", outdir / "settings.json", outdir / "run_gpaw.py"]
    write(paths[0], [to_ase_atoms(image, settings) for image in images], format="extxyz")
    paths[1].write_text(json.dumps(run, indent=2) + "\n")
    paths[2].write_text(RUN_SCRIPT)
    return paths
