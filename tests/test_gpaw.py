"""GPAW engine: the paper's settings, PW + D3, and LCAO PDOS/COHP checked on N2 and O2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from _inputs_fixtures import bulk
from pymatgen.core import Lattice, Structure
from scipy.integrate import trapezoid

pytest.importorskip("dftd3", reason="dftd3 not installed (D3 part of the GPAW engine)")

from ncmflow.inputs.gpaw import DftPlusD3, gpaw_calculator, write_gpaw
from ncmflow.inputs.settings import PAPER, to_ase_atoms
from ncmflow.workflows.engines import get_engine
from ncmflow.workflows.lcao import gpaw_cohp, gpaw_pdos, lcao_cohp, lcao_inputs, orbital_indices

pytestmark = [pytest.mark.requires_gpaw,  # skipped with the reason where GPAW is not installed
              pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")]

BOX = 6.0  # Å
CHEAP = {"kpts": (1, 1, 1), "nbands": "nao", "symmetry": {"point_group": False}}


def dimer(element: str, bond: float, box: float = BOX) -> Structure:
    z = box / 2
    return Structure(Lattice.cubic(box), [element] * 2,
                     [[z, z, z - bond / 2], [z, z, z + bond / 2]], coords_are_cartesian=True)


def lcao_run(structure: Structure, settings, txt, magmoms=None):
    atoms = to_ase_atoms(structure, settings)
    if magmoms is not None:
        atoms.set_initial_magnetic_moments(magmoms)
    atoms.calc = gpaw_calculator(atoms, settings, mode="lcao", txt=txt, **CHEAP)
    atoms.get_potential_energy()
    return atoms.calc


@pytest.fixture(scope="module")
def n2(tmp_path_factory):
    """Spin-paired N2, LCAO dzp, Γ only (≈3 s)."""
    settings = PAPER.with_changes(spin_polarized=False, dispersion="none")
    return lcao_run(dimer("N", 1.10), settings, tmp_path_factory.mktemp("n2") / "gpaw.txt")


def test_n2_cohp_mulliken_and_bonding(n2, tmp_path) -> None:
    inputs = lcao_inputs(n2)
    assert list(inputs["spins"]) == ["up"]
    m, ef = inputs["spins"]["up"], inputs["efermi"]
    assert m["weights"].sum() == pytest.approx(2.0)  # spin degeneracy included
    energies = np.arange(ef - 35.0, ef + 10.0, 0.01)
    orbitals = [orbital_indices(n2, a) for a in (0, 1)]
    assert [len(o) for o in orbitals] == [13, 13]  # dzp: 2s + 2p + d polarisation per N
    mulliken = sum(
        lcao_cohp(m["H"], m["S"], m["coeffs"], m["eigenvalues"], m["weights"], a, b, ef,
                  energies)["icoop"]
        for a in orbitals for b in orbitals)
    assert mulliken == pytest.approx(10.0, abs=1e-2)

    n2.write(tmp_path / "n2.gpw", mode="all")  # and the reader works from a file
    for source in (n2, tmp_path / "n2.gpw"):
        bond = gpaw_cohp(source, 0, 1, energies)["up"]
        assert -bond["icohp"] > 1.0  # net bonding N≡N
    eps = np.sort(m["eigenvalues"][0]) - ef
    # 2σg (lowest state) and the degenerate 1πu pair are bonding: −COHP > 0 at their energies
    pi = eps[2]
    assert eps[3] == pytest.approx(pi, abs=1e-6)
    for e in (eps[0], pi):
        assert np.interp(e, bond["energies"], bond["minus_cohp"]) > 0
    with pytest.raises(ValueError, match="two different atoms"):
        gpaw_cohp(n2, 1, 1)


def test_cohp_refuses_point_group_reduced_kpoints(tmp_path) -> None:
    settings = PAPER.with_changes(spin_polarized=False, dispersion="none")
    atoms = to_ase_atoms(dimer("N", 1.10), settings)
    atoms.calc = gpaw_calculator(atoms, settings, mode="lcao", txt=tmp_path / "gpaw.txt",
                                 kpts=(2, 2, 2))
    atoms.get_potential_energy()
    with pytest.raises(ValueError, match="point-group"):
        lcao_inputs(atoms.calc)


def test_pdos_spin_channels_o2_triplet(n2, tmp_path) -> None:
    spin_paired = gpaw_pdos(n2)
    assert set(spin_paired.projections) == {"N-s", "N-p"}  # bound channels only
    assert list(spin_paired.total) == ["up"]

    o2 = lcao_run(dimer("O", 1.21), PAPER.with_changes(dispersion="none"), tmp_path / "o2.txt",
                  magmoms=[1.0, 1.0])
    pdos = gpaw_pdos(o2)
    occupied = pdos.energies <= 0.0
    states = {spin: trapezoid(g[occupied], pdos.energies[occupied]) for spin, g in pdos.total.items()}
    assert states == pytest.approx({"up": 7.0, "down": 5.0}, abs=1e-2)  # triplet O2
    projected = {spin: sum(trapezoid(pdos.projections[lb][spin][occupied], pdos.energies[occupied])
                           for lb in ("O-s", "O-p")) for spin in ("up", "down")}
    assert projected == pytest.approx(states, rel=0.1)  # PAW projections: not exactly complete
    site = gpaw_pdos(o2, labels=["O1-p"], energies=pdos.energies + pdos.efermi)
    np.testing.assert_allclose(2 * site.projections["O1-p"]["up"], pdos.projections["O-p"]["up"],
                               rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="no such N site"):
        gpaw_pdos(o2, labels=["N0-p"])


def test_paper_calculator_for_a_ni_structure() -> None:
    from dftd3.ase import DFTD3

    structure = bulk()
    calc = gpaw_calculator(structure, txt=None)
    assert isinstance(calc, DftPlusD3)
    params = calc.dft.parameters
    assert params.xc.name == "PBE" and params.spinpol is True
    assert params.mode.name == "pw" and params.mode.ecut == pytest.approx(520.0)
    ni = [i for i, site in enumerate(structure) if site.specie.symbol == "Ni"]
    assert params.magmoms[ni] == pytest.approx([1.0] * len(ni))
    atoms = to_ase_atoms(structure)
    d3_alone = DFTD3(method="PBE", damping="d3bj").get_potential_energy(atoms)
    assert calc.d3.get_potential_energy(atoms) == pytest.approx(d3_alone, rel=1e-12)
    plain = gpaw_calculator(structure, PAPER.with_changes(dispersion="none"), txt=None)
    assert not isinstance(plain, DftPlusD3)


def test_pw_plus_d3_sums_and_keeps_moments(tmp_path) -> None:
    """PW N2 at a cheap cutoff: total = GPAW + D3, forces = −dE/dz, the moments pass through."""
    def energy(shift: float) -> tuple[float, Any]:
        atoms = to_ase_atoms(dimer("N", 1.10))
        atoms.positions[1, 2] += shift
        atoms.calc = gpaw_calculator(atoms, encut=300, kpts=(1, 1, 1), txt=tmp_path / "gpaw.txt")
        return atoms.get_potential_energy(), atoms

    e0, atoms = energy(0.0)
    dft, d3 = atoms.calc.dft, atoms.calc.d3
    assert e0 == pytest.approx(dft.results["energy"] + d3.results["energy"], abs=1e-10)
    assert d3.results["energy"] < 0
    h = 0.005
    numeric = -(energy(h)[0] - energy(-h)[0]) / (2 * h)
    assert atoms.get_forces()[1, 2] == pytest.approx(numeric, abs=0.05)
    assert atoms.get_magnetic_moments() == pytest.approx([0.0, 0.0], abs=1e-3)


def test_engine_and_writer(tmp_path) -> None:
    engine = get_engine("gpaw")
    assert engine.missing() is None
    assert isinstance(engine.calculator(encut=300), DftPlusD3)
    assert engine.neb_maker().engine == "gpaw"
    assert engine.relax_maker().relax_kwargs == {"fmax": PAPER.fmax}
    symmetry = engine.calculator(encut=300).dft.parameters.symmetry.todict()
    assert symmetry == {"point_group": False, "time_reversal": False}  # "off"

    paths = write_gpaw("static", [bulk()], tmp_path)
    assert sorted(p.name for p in paths) == ["images.extxyz", "run_gpaw.py", "settings.json"]
    run = json.loads((tmp_path / "settings.json").read_text())
    assert run["relax_cell"] is False and run["gpaw"]["mode"] == {"name": "pw", "ecut": 520.0}
    assert run["gpaw"]["kpts"]["gamma"] is True and len(run["gpaw"]["magmoms"]) == len(bulk())


def test_engine_refuses_a_cell_relaxation() -> None:
    with pytest.raises(ValueError, match="stress disagrees"):
        get_engine("gpaw").relax_maker(relax_cell=True)  # GPAW 26.7's PW stress is wrong


def test_written_bulk_relaxation_never_relaxes_the_cell(tmp_path) -> None:
    """What the engine refuses its written script must not do: a bulk relaxation is refused
    before anything is written, a fixed-cell one is written as such."""
    with pytest.raises(ValueError, match="plane-wave stress"):
        write_gpaw("relax", [bulk()], tmp_path / "bulk")
    assert not (tmp_path / "bulk").exists()
    write_gpaw("relax", [bulk()], tmp_path / "fixed", bulk=False)
    assert json.loads((tmp_path / "fixed" / "settings.json").read_text())["relax_cell"] is False
    assert "FrechetCellFilter" not in (tmp_path / "fixed" / "run_gpaw.py").read_text()


# H2 in a 10 Å box (> 8 Å of vacuum: a fixed-cell job, non-periodic along c, like a slab)
CHEAP_RUN = PAPER.with_changes(encut=300.0, spin_polarized=False, kpoint_spacing=0.5, relax_steps=30)


def test_written_run_script_relaxes_h2(tmp_path) -> None:
    """run_gpaw.py as a user runs it (``python run_gpaw.py`` in its folder), ~5 s: PBE-D3, 300 eV,
    Γ only. Its H2 bond must come out at PBE's 0.750 Å (this cheap box and cutoff converge to
    0.755 Å, measured once with GPAW 26.7.0), its energy at the −6.592 eV measured then."""
    write_gpaw("relax", [dimer("H", 0.80, box=10.0)], tmp_path, CHEAP_RUN)
    assert json.loads((tmp_path / "settings.json").read_text())["relax_cell"] is False
    result = subprocess.run([sys.executable, "run_gpaw.py"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    printed = float(re.search(r"energy \(eV\): (\S+)", result.stdout).group(1))
    from ase.io import read

    final, steps = read(tmp_path / "final.extxyz"), read(tmp_path / "relax.traj", ":")
    assert final.get_distance(0, 1) == pytest.approx(0.750, abs=0.01)
    assert np.abs(final.get_forces()).max() < CHEAP_RUN.fmax  # stopped at the written criterion
    assert final.get_potential_energy() == pytest.approx(printed, abs=1e-8)
    assert steps[-1].get_potential_energy() == pytest.approx(printed, abs=1e-8)
    assert steps[0].get_potential_energy() > printed + 0.02  # downhill from the 0.80 Å start
    assert printed == pytest.approx(-6.592, abs=0.01)
    # and the same number from this process's calculator: the script used the written settings
    final.calc = gpaw_calculator(final, CHEAP_RUN, txt=tmp_path / "check.txt")
    assert final.get_potential_energy() == pytest.approx(printed, abs=1e-4)


def test_electronic_structure_job(tmp_path, monkeypatch) -> None:
    from ncmflow.analysis.cdd import DensityGrid
    from ncmflow.workflows.engines.gpaw import gpaw_electronic_structure

    monkeypatch.chdir(tmp_path)
    out = gpaw_electronic_structure.original(dimer("N", 1.10), pairs=[(0, 1)], kpts=(1, 1, 1),
                                             spinpol=False)
    bond = out["cohp"]["N0-N1"]
    assert -bond["up"]["icohp"] > 1.0 and bond["length"] == pytest.approx(1.10)
    assert not out["restarted"]
    assert set(out["pdos"]["projections"]) == {"N-s", "N-p"}
    density = DensityGrid.from_cube(out["density_cube"])
    assert density.data.sum() * density.voxel_volume == pytest.approx(14.0, abs=0.05)  # all e⁻
    again = gpaw_electronic_structure.original(dimer("N", 1.10), pairs=[(0, 1)], kpts=(1, 1, 1),
                                               spinpol=False)  # a rerun reads lcao.gpw
    assert again["restarted"] and again["energy"] == pytest.approx(out["energy"], abs=1e-8)
    assert again["cohp"]["N0-N1"]["up"]["icohp"] == pytest.approx(bond["up"]["icohp"], abs=1e-6)


@pytest.mark.slow
def test_pw_single_point_linio2(tmp_path) -> None:
    """Primitive LiNiO2, spin-polarized PBE-D3 at 300 eV and 2×2×2 k: finite, Ni magnetic."""
    structure = bulk().get_primitive_structure()
    atoms = to_ase_atoms(structure)
    atoms.calc = gpaw_calculator(structure, encut=300, kpts=(2, 2, 2), txt=tmp_path / "gpaw.txt")
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    assert np.isfinite(energy) and np.isfinite(forces).all()
    ni = [i for i, site in enumerate(structure) if site.specie.symbol == "Ni"]
    assert atoms.get_magnetic_moments()[ni] == pytest.approx([0.8] * len(ni), abs=0.3)


def test_n2_relax_resumes_after_a_kill_and_reaches_the_bond_length(tmp_path, monkeypatch) -> None:
    """GPAW PBE(+D3) through the engine's relax maker at the paper's 520 eV: stopped after 2
    steps (as a killed job) and rerun in its folder, it goes on from step 2 and ends with N≡N
    within 0.02 Å of 1.10 Å (at 400 eV it comes out 1.13 Å: N's PAW setup needs the cutoff)."""
    from ncmflow.workflows.engines.gpaw import RELAX_STEPS

    monkeypatch.chdir(tmp_path)
    engine, start = get_engine("gpaw"), dimer("N", 1.20)
    cheap = {"kpts": (1, 1, 1)}
    killed = engine.relax_maker(PAPER.with_changes(relax_steps=2), gpaw_kwargs=cheap).run_ase(start)
    assert not killed.converged
    stopped_at = killed.final_mol_or_struct.get_distance(0, 1)
    assert abs(stopped_at - 1.20) > 0.02

    resumed = engine.relax_maker(PAPER, gpaw_kwargs=cheap).run_ase(start)  # fmax 0.02 eV/Å
    assert resumed.converged
    # a fresh run would record the 1.20 Å start first; the resumed one goes on downhill from
    # where the killed one stopped (ASE does not record the restart point again)
    energies = [f["energy"] for f in killed.trajectory.frame_properties]
    first = resumed.trajectory.frame_properties[0]["energy"]
    assert first < energies[-1] + 1e-4 < energies[0] - 0.01
    assert resumed.final_mol_or_struct.get_distance(0, 1) == pytest.approx(1.10, abs=0.02)
    from ase.io import read

    assert len(read(RELAX_STEPS, index=":")) >= 3  # both runs' steps, in one file


@pytest.mark.slow  # three spin-polarized PW runs of LiNiO2: 110 s on this 2-core machine
def test_pw_forces_are_energy_derivatives_in_a_crystal(tmp_path) -> None:
    """The check that would have caught GPAW 26.7's wrong LCAO forces on LiNiO2 (platform notes):
    in primitive LiNiO2 with one O pushed off its site, the PW force on that O equals −dE/dz."""
    structure = bulk().get_primitive_structure()
    o = next(i for i, site in enumerate(structure) if site.specie.symbol == "O")
    structure.translate_sites([o], [0.0, 0.0, 0.08], frac_coords=False)

    def run(dz: float) -> Any:
        atoms = to_ase_atoms(structure)
        atoms.positions[o, 2] += dz
        atoms.calc = gpaw_calculator(structure, encut=350, kpts=(2, 2, 2), txt=tmp_path / "gpaw.txt",
                                     convergence={"energy": 1e-6, "density": 1e-5})
        atoms.get_potential_energy()
        return atoms

    h = 0.01
    force = run(0.0).get_forces()[o, 2]
    numeric = -(run(h).get_potential_energy() - run(-h).get_potential_energy()) / (2 * h)
    assert abs(force) > 0.3  # displaced: a real restoring force to compare
    assert force == pytest.approx(numeric, abs=0.03)


def test_slab_parameters_one_k_along_the_normal_and_a_dipole_layer() -> None:
    from ncmflow.inputs.gpaw import gpaw_parameters, slab_boundaries
    from ncmflow.structures import electronic_model

    model = electronic_model()
    params = gpaw_parameters(model)
    assert params["kpts"]["size"][2] == 1 and params["kpts"]["size"][:2] == (5, 2)
    assert params["poissonsolver"] == {"dipolelayer": "xy"}
    assert slab_boundaries(to_ase_atoms(model)).pbc.tolist() == [True, True, False]
    assert "poissonsolver" not in gpaw_parameters(bulk())  # bulk: periodic, no dipole layer
    assert slab_boundaries(to_ase_atoms(bulk())).pbc.all()
