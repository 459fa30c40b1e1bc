"""Charge density difference on Gaussian model densities whose transfer is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from ncmflow.analysis.cdd import (
    DensityGrid,
    density_difference,
    plane_average,
    plane_slice,
    plot_plane_average,
    plot_slice,
    sphere_charges,
)

Q = 0.2  # electrons moved from Ni to N in the model
SIGMA = 0.3  # Å, width of the transferred charge
SHAPE = (54, 54, 72)  # 0.167 Å spacing


def gaussian(grid: DensityGrid, centre, charge: float, sigma: float) -> np.ndarray:
    """Periodic (minimum image, orthorhombic cell) normalised 3D Gaussian of `charge` e."""
    frac = (grid.points() - centre) / grid.atoms.cell.lengths()
    r = np.linalg.norm((frac - np.round(frac)) * grid.atoms.cell.lengths(), axis=-1)
    norm = charge / (sigma * np.sqrt(2 * np.pi)) ** 3
    return (norm * np.exp(-0.5 * (r / sigma) ** 2)).reshape(grid.data.shape)


@pytest.fixture(scope="module")
def model():
    """Slab (Ni, O) + molecule (N, C) in a 9×9×12 Å cell; Ni–N 2 Å along z."""
    atoms = Atoms("NiONC", positions=[[4.5, 4.5, 5.0], [2.25, 2.25, 4.0],
                                      [4.5, 4.5, 7.0], [4.5, 5.6, 7.8]],
                  cell=[9.0, 9.0, 12.0], pbc=True)
    empty = DensityGrid(np.zeros(SHAPE), atoms)
    g = {i: gaussian(empty, atoms.positions[i], 1.0, 0.5) for i in range(4)}
    slab = DensityGrid(8 * g[0] + 6 * g[1], atoms[:2])
    mol = DensityGrid(5 * g[2] + 4 * g[3], atoms[2:])
    transfer = gaussian(empty, atoms.positions[2], Q, SIGMA) - gaussian(
        empty, atoms.positions[0], Q, SIGMA)
    complex_ = DensityGrid(slab.data + mol.data + transfer, atoms)
    return complex_, slab, mol, transfer


def test_difference_recovers_known_transfer(model):
    complex_, slab, mol, transfer = model
    diff = density_difference(complex_, slab, mol)
    np.testing.assert_allclose(diff.data, transfer, atol=1e-12)
    charges = sphere_charges(diff, [0, 2], radius=1.1)
    assert charges["Ni0"] == pytest.approx(-Q, rel=0.01)
    assert charges["N2"] == pytest.approx(Q, rel=0.01)


def test_plane_average_and_cumulative_transfer(model, tmp_path):
    diff = density_difference(*model[:3])
    avg = plane_average(diff)
    assert avg["area"] == pytest.approx(81.0)
    between = np.argmin(np.abs(avg["z"] - 6.0))  # halfway between the Ni and N layers
    assert avg["delta_q"][between] == pytest.approx(-Q, rel=0.01)
    assert avg["delta_q"][-1] == pytest.approx(0.0, abs=1e-9)
    assert plot_plane_average(avg, tmp_path / "cdd_z.png").stat().st_size > 10_000


def test_slice_through_bond_and_plot(model, tmp_path):
    diff = density_difference(*model[:3])
    slc = plane_slice(diff, 0, 2, direction=(0, 1, 0), margin=2.0)
    peak = 1 / (SIGMA * np.sqrt(2 * np.pi)) ** 3 * Q
    ni, n = (np.argmin(np.abs(slc.s - x)) for x in (0.0, 2.0))
    mid = np.argmin(np.abs(slc.t))
    assert slc.values[mid, n] == pytest.approx(peak, rel=0.03)  # accumulation at N
    assert slc.values[mid, ni] == pytest.approx(-peak, rel=0.03)  # depletion at Ni
    assert {a[0] for a in slc.atoms} == {"Ni", "N", "C"}  # C lies in this plane too
    with pytest.raises(ValueError, match="parallel"):
        plane_slice(diff, 0, 2, direction=(0, 0, 1))
    assert plot_slice(slc, tmp_path / "cdd_slice.png").stat().st_size > 10_000


def test_slice_is_periodic_across_the_cell_boundary(model):
    diff = density_difference(*model[:3])
    shifted = DensityGrid(np.roll(diff.data, SHAPE[2] // 2, axis=2), diff.atoms.copy())
    shifted.atoms.positions[:, 2] = (shifted.atoms.positions[:, 2] + 6.0) % 12.0  # N at z≈1
    a = plane_slice(diff, 0, 2, direction=(0, 1, 0))
    b = plane_slice(shifted, 0, 2, direction=(0, 1, 0))
    np.testing.assert_allclose(b.values, a.values, atol=1e-10)


def test_mismatched_grids_and_cells_are_refused(model):
    complex_, slab, mol, _ = model
    coarse = DensityGrid(slab.data[::2], slab.atoms)
    with pytest.raises(ValueError, match="grid of A"):
        density_difference(complex_, coarse, mol)
    bigger = mol.atoms.copy()
    bigger.cell[2, 2] = 13.0
    with pytest.raises(ValueError, match="cell of B"):
        density_difference(complex_, slab, DensityGrid(mol.data, bigger))


def test_sphere_reaching_periodic_images_is_refused(model):
    with pytest.raises(ValueError, match="periodic images"):
        sphere_charges(model[0], [0], radius=5.0)


@pytest.mark.parametrize("name", ["delta.cube", "CHGCAR_delta"])
def test_written_file_reads_back_equal(model, tmp_path, name):
    diff = density_difference(*model[:3])
    path = diff.write(tmp_path / name)
    back = DensityGrid.from_cube(path) if name.endswith(".cube") else DensityGrid.from_chgcar(path)
    assert back.data.shape == SHAPE
    # cube files store the voxel vectors in bohr with 6 decimals
    np.testing.assert_allclose(back.atoms.cell.array, diff.atoms.cell.array, atol=1e-4)
    np.testing.assert_allclose(back.atoms.positions, diff.atoms.positions, atol=1e-4)
    np.testing.assert_allclose(back.data, diff.data, rtol=1e-5, atol=1e-12 * np.abs(diff.data).max())


def test_sphere_charge_in_skewed_cell_across_boundary():
    """Hexagonal cell (as NCM811) with the charge sitting on a cell corner."""
    from ase.geometry import find_mic

    atoms = Atoms("Ni", scaled_positions=[[0.02, 0.97, 0.5]],
                  cell=[[8, 0, 0], [-4, 4 * np.sqrt(3), 0], [0, 0, 10]], pbc=True)
    grid = DensityGrid(np.zeros((48, 48, 60)), atoms)
    _, r = find_mic(grid.points().reshape(-1, 3) - atoms.positions[0], atoms.cell, True)
    grid.data = (0.5 * np.exp(-0.5 * (r / SIGMA) ** 2) / (SIGMA * np.sqrt(2 * np.pi)) ** 3
                 ).reshape(grid.data.shape)
    assert sphere_charges(grid, [0], radius=1.2)["Ni0"] == pytest.approx(0.5, rel=0.01)


def chgcar(grid: DensityGrid, path, magnetisation: np.ndarray | None = None) -> DensityGrid:
    """``grid`` through a real CHGCAR file (VASP's ρ·V), optionally with a magnetisation block."""
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.io.vasp import Chgcar, Poscar

    structure = AseAtomsAdaptor.get_structure(grid.atoms)
    data = {"total": grid.data * structure.volume}
    if magnetisation is not None:
        data["diff"] = magnetisation * structure.volume
    Chgcar(Poscar(structure), data).write_file(path)
    return DensityGrid.from_chgcar(path)


def test_chgcar_difference_is_pymatgen_volumetric_arithmetic(model, tmp_path):
    """CHGCARs: Δρ comes from pymatgen's Chgcar subtraction, every channel when all have it."""
    complex_, slab, mol, transfer = model
    spin = {"complex": 0.3 * slab.data, "slab": 0.2 * slab.data, "mol": 0.05 * mol.data}
    ab, a, b = (chgcar(g, tmp_path / f"CHGCAR_{k}", spin[k])
                for k, g in zip(spin, (complex_, slab, mol), strict=True))
    diff = density_difference(ab, a, b)
    assert list(diff.chgcar.data) == ["total", "diff"]
    np.testing.assert_allclose(diff.data, transfer, atol=1e-9 * np.abs(complex_.data).max())
    volume = complex_.atoms.get_volume()
    np.testing.assert_allclose(diff.chgcar.data["diff"] / volume, 0.1 * slab.data - 0.05 * mol.data,
                               atol=1e-9 * np.abs(slab.data).max())
    charges = sphere_charges(diff, [0, 2], radius=1.1)
    assert charges["Ni0"] == pytest.approx(-Q, rel=0.01) and charges["N2"] == pytest.approx(Q, rel=0.01)
    back = DensityGrid.from_chgcar(diff.write(tmp_path / "CHGCAR_delta"))  # both channels written
    np.testing.assert_allclose(back.chgcar.data["diff"], diff.chgcar.data["diff"], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(back.data, diff.data, atol=1e-9 * np.abs(complex_.data).max())

    closed_shell = chgcar(mol, tmp_path / "CHGCAR_mol_closed")  # cPAN without a spin channel
    total_only = density_difference(ab, a, closed_shell)
    assert list(total_only.chgcar.data) == ["total"]
    np.testing.assert_allclose(total_only.data, diff.data, atol=1e-12 * np.abs(complex_.data).max())
