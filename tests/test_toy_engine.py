"""An engine added from outside the package: ASE's EMT, registered from this module alone.

It runs ncmflow's barrier flow (relax both end points → IDPP → CI-NEB → BarrierDoc) on ASE's
NEB tutorial system, an Au adatom hopping between hollow sites of Al(100), and must give the
barrier that plain ASE gives for the same recipe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from atomate2.ase.jobs import AseRelaxMaker
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from ncmflow.inputs.settings import PAPER, DftSettings, job_tolerances
from ncmflow.workflows.engines import Engine, Tolerances, engine_names, get_engine, register
from ncmflow.workflows.neb import BarrierFlowMaker, CiNebMaker


def emt_calculator(settings: DftSettings = PAPER, stress: bool = True):
    from ase.calculators.emt import EMT

    return EMT()


@dataclass
class EmtRelax(AseRelaxMaker):
    name: str = "emt relax"

    def _get_calculator(self):
        return emt_calculator()


def relax_maker(settings: DftSettings = PAPER, relax_cell: bool = False) -> EmtRelax:
    return EmtRelax(relax_cell=relax_cell, steps=settings.relax_steps, relax_kwargs={"fmax": settings.fmax},
                    optimizer_kwargs={"optimizer": settings.optimizer})


def static_maker(settings: DftSettings = PAPER) -> EmtRelax:
    return EmtRelax(name="emt static", steps=1)


def neb_maker(settings: DftSettings = PAPER, optimizer: str | None = None) -> CiNebMaker:
    return CiNebMaker(engine="emt", settings=settings, **({"optimizer": optimizer} if optimizer else {}))


def write_emt(job: str, images: list[Structure], outdir: Path, settings: DftSettings,
              bulk: bool | None = None) -> list[Path]:
    from ase.io import write

    outdir.mkdir(parents=True, exist_ok=True)
    write(outdir / "images.extxyz", [AseAtomsAdaptor.get_atoms(s, msonable=False) for s in images])
    (outdir / "emt.json").write_text(json.dumps({"job": job, **job_tolerances(job, settings)}))
    return [outdir / "images.extxyz", outdir / "emt.json"]


def read_emt(job: str, folder: Path) -> Tolerances:
    run = json.loads((folder / "emt.json").read_text())
    return Tolerances(run["fmax"], run["steps"])


EMT_ENGINE = register(Engine(
    name="emt", description="ASE's EMT (a toy engine for tests)", relax_maker=relax_maker,
    static_maker=static_maker, neb_maker=neb_maker, write_inputs=write_emt, read_tolerances=read_emt,
    calculator=emt_calculator))


def au_on_al100() -> tuple[Structure, Structure]:
    """ASE's tutorial: Au in a hollow site of a 2×2×3 Al(100) slab, and the next hollow along x;
    the two lower Al layers fixed."""
    from ase.build import add_adsorbate, fcc100

    slab = fcc100("Al", size=(2, 2, 3))
    add_adsorbate(slab, "Au", 1.7, "hollow")
    slab.center(axis=2, vacuum=4.0)
    start = AseAtomsAdaptor.get_structure(slab)
    moved = slab.copy()
    moved.positions[-1, 0] += slab.cell[0, 0] / 2
    end = AseAtomsAdaptor.get_structure(moved)
    fixed = [[not t > 1] * 3 for t in slab.get_tags()]  # tags 2, 3: the lower layers
    return (start.copy(site_properties={"selective_dynamics": fixed}),
            end.copy(site_properties={"selective_dynamics": fixed}))


def plain_ase_barrier(start: Structure, end: Structure, settings: DftSettings, n_images: int) -> float:
    """The same recipe in plain ASE: BFGS end points, IDPP, CI-NEB (improved tangent, ODE)."""
    from ase.calculators.emt import EMT
    from ase.constraints import FixAtoms
    from ase.mep import NEB
    from ase.mep.neb import NEBOptimizer
    from ase.optimize import BFGS

    ends = []
    for s in (start, end):
        atoms = AseAtomsAdaptor.get_atoms(s, msonable=False)
        atoms.calc = EMT()
        BFGS(atoms, logfile=None).run(fmax=settings.fmax, steps=settings.relax_steps)
        ends.append(atoms)
    fixed = ends[0].constraints[0].index
    images = [ends[0].copy() for _ in range(n_images + 1)] + [ends[1].copy()]
    for image in images:
        image.set_constraint()
    NEB(images, method="improvedtangent").interpolate(method="idpp", mic=True)
    for image in images:
        image.set_constraint(FixAtoms(indices=fixed))
        image.calc = EMT()
    neb = NEB(images, climb=True, method="improvedtangent", allow_shared_calculator=False)
    NEBOptimizer(neb, method="ode", logfile=None).run(fmax=settings.neb_fmax, steps=settings.neb_steps)
    energies = [image.get_potential_energy() for image in images]
    return max(energies[1:-1]) - energies[0]


def test_registered_engine_is_found_by_name() -> None:
    assert "emt" in engine_names() and get_engine("emt") is EMT_ENGINE
    with pytest.raises(ValueError, match="built in"):
        register(Engine(name="mlip", description="", relax_maker=relax_maker, static_maker=static_maker,
                        neb_maker=neb_maker, write_inputs=write_emt, read_tolerances=read_emt))


def test_toy_engine_runs_the_barrier_flow_like_plain_ase(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = PAPER.with_changes(fmax=0.02, neb_fmax=0.05)
    start, end = au_on_al100()
    engine = get_engine("emt")
    maker = BarrierFlowMaker(relax_maker=engine.relax_maker(settings, False),
                             neb_maker=engine.neb_maker(settings, None), n_images=3)
    flow = maker.make(start, end, "au-al100")
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    run_locally(flow, store=store, ensure_success=True)
    doc = store.query_one({"name": {"$regex": "ci-neb A"}}, load=True)["output"]
    expected = plain_ase_barrier(start, end, settings, n_images=3)
    # ASE's tutorial gives ~0.37 eV for this hop with EMT; the symmetric hop has ΔE = 0
    assert doc["engine"] == "emt" and doc["converged"] and doc["fmax"] == 0.05
    assert doc["forward_barrier"] == pytest.approx(expected, abs=1e-6)  # measured: equal to 2e-15 eV
    assert doc["reaction_energy"] == pytest.approx(0.0, abs=1e-6)
    assert 0.3 < expected < 0.45
    assert np.allclose(doc["images"][0]["lattice"]["matrix"], start.lattice.matrix)
