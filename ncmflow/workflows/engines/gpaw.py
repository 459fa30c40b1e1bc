"""GPAW: real PBE-D3 DFT in this process (PAW, plane waves; LCAO for electronic structure).

Relaxations, statics and NEBs run in PW mode (LCAO forces were wrong in GPAW 26.7);
:func:`gpaw_electronic_structure` runs LCAO to get what the Ni–N bonding analysis needs:
PDOS, a pair COHP from the LCAO H and S matrices, and the all-electron density as a cube.
The calculator knows no structure here, so k-points follow the paper's spacing as a density
and the start moments travel with the structure (the makers add the paper's defaults).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from atomate2.ase.jobs import AseRelaxMaker
from jobflow import job
from monty.json import jsanitize
from pymatgen.core import Structure

from ncmflow.inputs.gpaw import CELL_RELAX_REFUSED, DftPlusD3, write_gpaw
from ncmflow.inputs.settings import PAPER, DftSettings, written_tolerances
from ncmflow.workflows.diskfull import naming, replace_file
from ncmflow.workflows.engines import Engine, Tolerances
from ncmflow.workflows.neb import CiNebMaker

DENSITY_CUBE = "density.cube"
CHECKPOINT = "lcao.gpw"
RELAX_STEPS = "relax_steps.traj"
OPTIMIZER_STATE = "optimizer.json"


def calculator(settings: DftSettings = PAPER, stress: bool = True, txt: str | None = None,
               **gpaw_kwargs: Any) -> Any:
    """GPAW PW (+ D3) with ``settings``; GPAW keywords (``kpts``, …) override for cheap runs.
    ``stress`` is accepted for the engine contract; nothing here relaxes a cell (see relax_maker).

    ``txt=None`` by default: a NEB makes one calculator per image and they would share a log.
    Symmetry is off: GPAW stops with ``SymmetryBrokenError`` when a relaxation or NEB moves an
    atom off a symmetric arrangement (seen in benchmarks/dft_neb_seeding.py).
    """
    from ncmflow.inputs.gpaw import gpaw_calculator

    return gpaw_calculator(None, settings, "pw", txt, **({"symmetry": "off"} | gpaw_kwargs))


def with_start_moments(structure: Structure) -> Structure:
    """The paper's start moments as the "magmom" site property (a site's own value wins)."""
    return structure.copy(site_properties={"magmom": PAPER.initial_magmoms(structure)})


@dataclass
class GpawRelaxMaker(AseRelaxMaker):
    """atomate2's ASE relaxation (the paper's BFGS) on GPAW PW + D3."""

    name: str = "gpaw relax"
    settings: DftSettings = PAPER
    gpaw_kwargs: dict = field(default_factory=dict)

    def _get_calculator(self) -> Any:
        return calculator(self.settings, txt="gpaw.txt", **self.gpaw_kwargs)

    def run_ase(self, mol_or_struct: Structure, prev_dir: str | Path | None = None) -> Any:
        """A fixed-cell relaxation keeps every step in ``relax_steps.traj`` and the optimizer's
        Hessian in ``optimizer.json``: killed and rerun in its folder (as ``ncmflow`` reruns a
        job), it continues from its last step instead of repeating the DFT steps done."""
        structure = with_start_moments(mol_or_struct)
        if self.steps <= 1 or self.relax_cell:
            return super().run_ase(structure, prev_dir)
        optimizer = _checkpointing(self.optimizer_kwargs.get("optimizer", "FIRE"))
        checkpointed = replace(self, relax_kwargs={
            **self.relax_kwargs, "trajectory": RELAX_STEPS, "append_trajectory": True,
            "restart": OPTIMIZER_STATE}, optimizer_kwargs={**self.optimizer_kwargs, "optimizer": optimizer})
        with naming(Path.cwd(), KEPT):  # a full disk anywhere else (GPAW's log): the folder named
            return AseRelaxMaker.run_ase(checkpointed, _resume(structure), prev_dir)


KEPT = "the steps done are kept: free space and rerun to resume from the last one"


class _Checkpointed:
    """An ASE optimizer whose restart file is replaced whole, never truncated first (ASE's
    ``dump`` opens it with "w": a full disk left no optimizer state at all), and whose
    trajectory appends name their file on a full disk (ASE's trajectory keeps the frames
    written before a failed append: measured with ASE 3.29)."""

    def dump(self, data: Any) -> None:
        from ase.io.jsonio import write_json

        if self.comm.rank == 0 and self.restart is not None:
            replace_file(self.restart, lambda handle: write_json(handle, data), KEPT)

    def call_observers(self) -> None:  # the forces are computed before: only the files are written here
        with naming(Path(RELAX_STEPS).resolve(), KEPT):
            super().call_observers()


def _checkpointing(optimizer: str | type) -> type:
    """``optimizer`` (an ASE optimizer or atomate2's name for one) with :class:`_Checkpointed`."""
    from atomate2.ase.utils import OPTIMIZERS

    base = OPTIMIZERS[optimizer] if isinstance(optimizer, str) else optimizer
    return type(base.__name__, (_Checkpointed, base), {})


def _resume(structure: Structure) -> Structure:
    """``structure`` at the last step a killed run of this job left in this folder, if any."""
    if not Path(RELAX_STEPS).is_file() or Path(RELAX_STEPS).stat().st_size == 0:
        return structure
    from ase.io import read

    last = read(RELAX_STEPS, index=-1)
    if last.get_chemical_symbols() != [site.specie.symbol for site in structure]:
        raise ValueError(f"{Path(RELAX_STEPS).resolve()} belongs to another structure: remove it")
    return Structure(structure.lattice, structure.species, last.positions, coords_are_cartesian=True,
                     site_properties=structure.site_properties, properties=structure.properties)


@dataclass
class GpawStaticMaker(GpawRelaxMaker):
    """A single point, the way atomate2's static makers are relaxations of one step."""

    name: str = "gpaw static"
    relax_cell: bool = False
    steps: int = 1


def relax_maker(settings: DftSettings = PAPER, relax_cell: bool = False,
                gpaw_kwargs: dict | None = None) -> GpawRelaxMaker:
    if relax_cell:
        raise ValueError(CELL_RELAX_REFUSED)
    return GpawRelaxMaker(settings=settings, relax_cell=relax_cell, steps=settings.relax_steps,
                          relax_kwargs={"fmax": settings.fmax},
                          optimizer_kwargs={"optimizer": settings.optimizer}, gpaw_kwargs=gpaw_kwargs or {})


def static_maker(settings: DftSettings = PAPER, gpaw_kwargs: dict | None = None) -> GpawStaticMaker:
    return GpawStaticMaker(settings=settings, gpaw_kwargs=gpaw_kwargs or {})


def neb_maker(settings: DftSettings = PAPER, optimizer: str | None = None,
              gpaw_kwargs: dict | None = None) -> CiNebMaker:
    return CiNebMaker(engine="gpaw", settings=settings, engine_options=gpaw_kwargs or {},
                      **({"optimizer": optimizer} if optimizer else {}))


def _checkpoint(atoms: Any) -> Any:
    """The converged calculator of an earlier run of this job in this folder, if any."""
    if not Path(CHECKPOINT).is_file():
        return None
    from gpaw import GPAW

    calc = GPAW(CHECKPOINT, txt="gpaw_lcao.txt")
    same = (calc.atoms.get_chemical_symbols() == atoms.get_chemical_symbols()
            and np.allclose(calc.atoms.positions, atoms.positions, atol=1e-6))
    return calc if same else None


@job(data=["pdos", "cohp"])
def gpaw_electronic_structure(
    structure: Structure,
    pairs: list[tuple[int, int]] | None = None,
    labels: list[str] | None = None,
    width: float = 0.1,
    **gpaw_kwargs: Any,
) -> dict[str, Any]:
    """LCAO (dzp) single point → PDOS, each pair's COHP and ``density.cube`` in the run folder.

    No D3 (it does not change the electrons) and no point-group k reduction (pair COHP needs
    the full set); a slab gets GPAW's dipole layer. The converged density is kept in
    ``lcao.gpw``: a killed job rerun in the same folder restarts its SCF from there.
    ``gpaw_kwargs`` override GPAW keywords, e.g. ``kpts`` for a cheap run.
    Energies in the returned PDOS/COHP are E − E_F (eV); COHPs are keyed "Ni12-N45".
    """
    from ase.io.cube import write_cube
    from ase.units import Bohr

    from ncmflow.inputs.gpaw import gpaw_calculator, slab_boundaries
    from ncmflow.inputs.settings import to_ase_atoms
    from ncmflow.workflows.lcao import gpaw_cohp, gpaw_pdos

    atoms = slab_boundaries(to_ase_atoms(structure))
    atoms.set_constraint()
    calc = _checkpoint(atoms)
    restarted = calc is not None
    if not restarted:
        calc = gpaw_calculator(structure, PAPER.with_changes(dispersion="none"), "lcao",
                               "gpaw_lcao.txt", **({"nbands": "nao", "symmetry": {"point_group": False}}
                                                   | gpaw_kwargs))
    atoms.calc = calc
    energy = float(atoms.get_potential_energy())
    if not restarted:
        calc.write(CHECKPOINT, mode="all")  # with wave functions: the COHP needs them
    # on the grid twice as fine as the SCF's: the density near the Ni and N cores is steep
    density = calc.get_all_electron_density(gridrefinement=2)
    cube = Path.cwd() / DENSITY_CUBE
    with open(cube, "w") as fh:  # e/Å³ → e/bohr³, the cube format's unit (VESTA reads it)
        write_cube(fh, atoms, data=density * Bohr**3)
    symbols = atoms.get_chemical_symbols()
    cohp = {f"{symbols[a]}{a}-{symbols[b]}{b}": {"sites": [a, b],
                                                 "length": float(atoms.get_distance(a, b, mic=True)),
                                                 **jsanitize(gpaw_cohp(calc, a, b, width=width))}
            for a, b in pairs or []}
    return {"energy": energy, "efermi": float(calc.get_fermi_level()),
            "magmom": float(calc.get_magnetic_moment()),
            "pdos": gpaw_pdos(calc, labels, width=width).as_dict(),
            "cohp": cohp, "density_cube": str(cube), "dir_name": str(Path.cwd()),
            "formula": structure.composition.formula, "n_sites": len(structure),
            "restarted": restarted}


@job
def gpaw_energy(structure: Structure, settings: DftSettings = PAPER, mode: str = "pw",
                **gpaw_kwargs: Any) -> dict[str, Any]:
    """One spin-polarized single point (+ D3 as ``settings`` say) from the paper's start moments:
    the energy, the moments and the SCF's cost. A slab gets GPAW's dipole layer (its cPAN side
    and its bare side differ). ``mode`` "pw" (``settings.encut``) or "lcao" (dzp); GPAW keywords
    (``kpts``, …) override. A killed job starts its SCF again (nothing is kept half way)."""
    import time

    from ncmflow.inputs.gpaw import gpaw_calculator, slab_boundaries
    from ncmflow.inputs.settings import to_ase_atoms

    structure = with_start_moments(structure)
    atoms = slab_boundaries(to_ase_atoms(structure))
    atoms.calc = gpaw_calculator(structure, settings, mode, "gpaw.txt", **({"symmetry": "off"} | gpaw_kwargs))
    _report_scf(atoms.calc.dft if isinstance(atoms.calc, DftPlusD3) else atoms.calc)
    started = time.perf_counter()
    energy = float(atoms.get_potential_energy())
    dft = getattr(atoms.calc, "dft", atoms.calc)
    return {"energy": energy, "magmom": float(dft.get_magnetic_moment()),
            "magmoms": [float(m) for m in dft.get_magnetic_moments()],
            "scf_iterations": int(dft.get_number_of_iterations()),
            "wall_time": time.perf_counter() - started, "mode": mode, "dir_name": str(Path.cwd()),
            "formula": structure.composition.formula, "n_sites": len(structure)}


def _report_scf(calc: Any) -> None:
    """GPAW's SCF iterations as the job's progress (a single point runs for many minutes)."""
    from ase.units import Ha

    from ncmflow.workflows import progress

    hooks = getattr(calc, "hooks", None)  # GPAW's new ASE calculator: called after every iteration
    if hooks is not None:
        hooks["scf_step"] = lambda ctx: progress.say(
            f"SCF iteration {ctx.niter}, DFT energy {ctx.energies.total_extrapolated * Ha:.4f} eV")


ENGINE = Engine(
    name="gpaw",
    description="GPAW PAW DFT, PBE-D3(BJ), plane waves (LCAO for PDOS/COHP), serial on the CPU",
    relax_maker=relax_maker,
    static_maker=static_maker,
    neb_maker=neb_maker,
    write_inputs=write_gpaw,
    read_tolerances=lambda job, folder: Tolerances(**written_tolerances(folder)),
    calculator=calculator,
    energy_job=gpaw_energy,
    python_modules=("gpaw", "dftd3"),
    install_hint="apt-get install -y libxc-dev libopenblas-dev; "
                 "CC=g++ pip install 'ncmflow[dft]' (GPAW compiles its C sources as C++)",
)
