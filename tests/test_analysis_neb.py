"""NEB barrier analysis against analytic energy profiles whose barrier is known exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from ncmflow.analysis.neb import (
    plot_profiles,
    profile_from_arrays,
    profile_from_images,
    profile_from_vasp_neb,
)

L = 3.0  # hop length, Å
CELL = 12.0  # big cubic cell, Å


def analytic(eb: float, de: float):
    """E(x) = Eb/2 (1 − cos 2πx/L) + ΔE x/L and its exact derivative."""
    k = 2 * np.pi / L

    def energy(x):
        return eb / 2 * (1 - np.cos(k * x)) + de * x / L

    def slope(x):
        return eb / 2 * k * np.sin(k * x) + de / L

    return energy, slope


def make_images(eb: float, de: float, n: int = 7, shift: float = 0.0) -> list[Atoms]:
    """A single atom moving along x; `shift` puts the path across the periodic boundary."""
    energy, slope = analytic(eb, de)
    images = []
    for x in np.linspace(0, L, n):
        atoms = Atoms("Ni", positions=[[x + shift, 6.0, 6.0]], cell=[CELL] * 3, pbc=True)
        forces = np.array([[-slope(x), 0.0, 0.0]])
        atoms.wrap()
        atoms.calc = SinglePointCalculator(atoms, energy=energy(x) - 5.0, forces=forces)
        images.append(atoms)
    return images


def exact_max(eb: float, de: float) -> tuple[float, float]:
    """Saddle energy and position of the analytic profile, by brute force."""
    energy, _ = analytic(eb, de)
    x = np.linspace(0, L, 300001)
    top = np.argmax(energy(x))
    return float(energy(x[top])), float(x[top])


def test_symmetric_barrier_exact():
    prof = profile_from_images(make_images(eb=1.0, de=0.0))
    energy, _ = analytic(1.0, 0.0)
    np.testing.assert_allclose(prof.energies, energy(np.linspace(0, L, 7)), atol=1e-12)
    assert prof.forward_barrier == pytest.approx(1.0, abs=1e-3)
    assert prof.reverse_barrier == pytest.approx(1.0, abs=1e-3)
    assert prof.reaction_energy == pytest.approx(0.0, abs=1e-9)
    assert prof.saddle_x == pytest.approx(L / 2, abs=0.02)
    assert prof.saddle_index == 3
    assert prof.path_coords[-1] == pytest.approx(L)


def test_asymmetric_barrier_between_images():
    eb, de = 3.0, 0.8
    prof = profile_from_images(make_images(eb, de))
    top, x_top = exact_max(eb, de)
    assert prof.forward_barrier == pytest.approx(top, abs=1e-3)
    assert prof.reverse_barrier == pytest.approx(top - de, abs=1e-3)
    assert prof.reaction_energy == pytest.approx(de, abs=1e-9)
    assert prof.saddle_x == pytest.approx(x_top, abs=0.01)  # between images 3 and 4
    assert prof.saddle_x > L / 2  # an endothermic hop has a late saddle (Hammond)
    d = json.loads(json.dumps(prof.as_dict()))  # plain JSON, nothing lost on the way
    assert d["spline_x"] == prof.spline_x.tolist() and d["spline_y"] == prof.spline_y.tolist()
    assert d["forward_barrier"] == prof.forward_barrier and d["saddle_index"] == 3


def test_hermite_fit_through_three_images_by_hand():
    """Images at 0, 1, 2 Å with E = 0, 1, 0.5 eV and dE/dx = 0, 0.6, 0 eV/Å (force = −slope).

    On [1, 2] the cubic Hermite is h(t) = 1.6t³ − 2.7t² + 0.6t + 1; h′(t) = 4.8t² − 5.4t + 0.6
    vanishes at t = 1/8, where h = 1 + 53/1280 = 1.0359375 eV: the saddle lies past image 1.
    """
    positions = [np.array([[x, 0.0, 0.0]]) for x in (0.0, 1.0, 2.0)]
    forces = [np.array([[-slope, 0.0, 0.0]]) for slope in (0.0, 0.6, 0.0)]
    prof = profile_from_arrays([-7.0, -6.0, -6.5], forces, positions)  # non-periodic
    np.testing.assert_allclose(prof.path_coords, [0.0, 1.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(prof.energies, [0.0, 1.0, 0.5], atol=1e-12)
    assert prof.forward_barrier == pytest.approx(1.0359375, abs=1e-12)
    assert prof.saddle_x == pytest.approx(1.125, abs=1e-12)
    assert prof.reverse_barrier == pytest.approx(0.5359375, abs=1e-12)
    assert prof.reaction_energy == pytest.approx(0.5, abs=1e-12)
    assert prof.saddle_index == 1
    t = prof.spline_x[prof.spline_x <= 1.0]  # first segment: 0 → 1 eV, 3t² − 2t³ + 0.6(t³ − t²)
    np.testing.assert_allclose(prof.spline_y[: len(t)], 2.4 * t**2 - 1.4 * t**3, atol=1e-12)
    with pytest.raises(ValueError, match="at least 3 images"):
        profile_from_arrays([0.0, 1.0], forces[:2], positions[:2])


def test_path_across_periodic_boundary_is_unwrapped():
    straight = profile_from_images(make_images(2.0, 0.3))
    wrapped = profile_from_images(make_images(2.0, 0.3, shift=CELL - 1.0))
    assert wrapped.path_coords[-1] == pytest.approx(L)
    assert wrapped.forward_barrier == pytest.approx(straight.forward_barrier, abs=1e-9)


def outcar_text(atoms: Atoms) -> str:
    """The smallest OUTCAR that ASE's vasp-out reader accepts (header + one ionic step)."""
    symbols = list(dict.fromkeys(atoms.get_chemical_symbols()))
    counts = [atoms.get_chemical_symbols().count(s) for s in symbols]
    e = atoms.get_potential_energy()
    lines = [f" POTCAR:    PAW_PBE {s} 06Sep2000" for s in symbols * 2]
    lines += [f"   ions per type =  {' '.join(map(str, counts))}", "   ISPIN  =      1",
              "----- Iteration    1(   1)  -----", "      direct lattice vectors"]
    lines += [" ".join(f"{v:12.6f}" for v in row) + "  0 0 0" for row in atoms.cell]
    lines += [" POSITION          TOTAL-FORCE (eV/Angst)", " " + "-" * 60]
    lines += [" ".join(f"{v:12.6f}" for v in (*p, *f))
              for p, f in zip(atoms.positions, atoms.get_forces(), strict=True)]
    lines += [" " + "-" * 60, "  FREE ENERGIE OF THE ION-ELECTRON SYSTEM (eV)", "  " + "-" * 40,
              f"  free  energy   TOTEN  =  {e:.8f} eV", "",
              f"  energy  without entropy=  {e:.8f}  energy(sigma->0) =  {e:.8f}", ""]
    return "\n".join(lines)


def test_vasp_neb_folder(tmp_path):
    eb, de = 2.0, -0.5
    images = make_images(eb, de, n=5)
    for i, atoms in enumerate(images):
        d = tmp_path / f"{i:02d}"
        d.mkdir()
        write(d / "POSCAR", atoms, format="vasp")
        (d / "OUTCAR").write_text(outcar_text(atoms))
    prof = profile_from_vasp_neb(tmp_path)
    ref = profile_from_images(images)
    np.testing.assert_allclose(prof.spline_y, ref.spline_y, atol=1e-6)
    assert prof.reaction_energy == pytest.approx(de, abs=1e-6)

    (tmp_path / "04" / "OUTCAR").unlink()
    with pytest.raises(FileNotFoundError, match="04"):
        profile_from_vasp_neb(tmp_path)


def test_plot_profiles(tmp_path):
    profiles = {"bare": profile_from_images(make_images(2.83, 0.4)),
                "cPAN-coated": profile_from_images(make_images(3.36, 0.6))}
    out = plot_profiles(profiles, tmp_path / "barriers.png")
    assert out.stat().st_size > 10_000
