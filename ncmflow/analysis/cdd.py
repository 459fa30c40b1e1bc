"""Charge density difference Δρ = ρ(AB) − ρ(A) − ρ(B): where the Ni–N bond moves electrons.

Densities are electrons/Å³ on a periodic grid; grid point (i, j, k) sits at
origin + (i/Na, j/Nb, k/Nc)·cell, as in VASP CHGCARs and periodic cube files. Positive Δρ
is electron accumulation, negative depletion.

Grids read from CHGCARs keep pymatgen's ``Chgcar``, and Δρ of three of them is pymatgen's
``VolumetricData`` arithmetic (every channel: total and, when all three have it, the
magnetisation). Cube files (GPAW) stay on ASE's reader: pymatgen's ``VolumetricData.from_cube``
drops the grid origin (it shifts the atoms by it and ``to_cube`` writes 0) and keeps e/bohr³.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.geometry import find_mic
from ase.units import Bohr
from mpl_toolkits.axes_grid1 import make_axes_locatable
from scipy.ndimage import map_coordinates

from ncmflow.analysis.plotting import figure, save

SPHERE = 1.0  # Å, default radius of the Ni and N spheres Δq is integrated in


@dataclass
class DensityGrid:
    """Electron density (e/Å³) on the periodic grid of `atoms.cell`."""

    data: np.ndarray
    atoms: Atoms
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    chgcar: Any = field(default=None, repr=False, compare=False)  # pymatgen Chgcar (ρ·V), if read from one

    @property
    def voxel_volume(self) -> float:
        return self.atoms.get_volume() / self.data.size

    def points(self) -> np.ndarray:
        """Cartesian coordinates (Å) of all grid points, shape (Na, Nb, Nc, 3)."""
        axes = [np.arange(n) / n for n in self.data.shape]
        frac = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
        return frac @ self.atoms.cell.array + self.origin

    @classmethod
    def from_chgcar(cls, path: str | Path) -> DensityGrid:
        """From a VASP CHGCAR/AECCAR (total density only); VASP stores ρ·V_cell, undone here."""
        from pymatgen.io.ase import AseAtomsAdaptor
        from pymatgen.io.vasp import Chgcar

        from ncmflow.structures.files import parsing

        with parsing(path, "CHGCAR"):
            chg = Chgcar.from_file(str(path))
        return cls(chg.data["total"] / chg.structure.volume,
                   AseAtomsAdaptor.get_atoms(chg.structure), chgcar=chg)

    @classmethod
    def from_cube(cls, path: str | Path, bohr_units: bool = True) -> DensityGrid:
        """From a periodic cube file; Gaussian-cube densities are e/bohr³ (`bohr_units`)."""
        from ase.io.cube import read_cube

        from ncmflow.structures.files import parsing

        with parsing(path, "cube file"), open(path) as fh:
            cube = read_cube(fh)
        data = cube["data"] / Bohr**3 if bohr_units else cube["data"]
        return cls(data, cube["atoms"], np.asarray(cube["origin"], dtype=float))

    def write(self, path: str | Path) -> Path:
        """Write for VESTA: `.cube` (e/bohr³) or else a CHGCAR (ρ·V, atoms shifted by −origin)."""
        path = Path(path)
        if path.suffix == ".cube":
            from ase.io.cube import write_cube

            with open(path, "w") as fh:
                write_cube(fh, self.atoms, data=self.data * Bohr**3, origin=self.origin)
            return path
        if self.chgcar is not None and not self.origin.any():
            self.chgcar.write_file(path)  # every channel it holds, as VASP wrote it
            return path
        from pymatgen.io.ase import AseAtomsAdaptor
        from pymatgen.io.vasp import Chgcar, Poscar

        atoms = self.atoms.copy()
        atoms.positions -= self.origin
        structure = AseAtomsAdaptor.get_structure(atoms)
        Chgcar(Poscar(structure), {"total": self.data * structure.volume}).write_file(path)
        return path


def density_difference(ab: DensityGrid, a: DensityGrid, b: DensityGrid) -> DensityGrid:
    """Δρ = ρ(AB) − ρ(A) − ρ(B); the three must share grid, cell and origin exactly."""
    for name, part in (("A", a), ("B", b)):
        if part.data.shape != ab.data.shape:
            raise ValueError(f"grid of {name} {part.data.shape} != grid of AB {ab.data.shape}")
        if not np.allclose(part.atoms.cell.array, ab.atoms.cell.array, atol=1e-4):
            raise ValueError(f"cell of {name} differs from cell of AB")
        if not np.allclose(part.origin, ab.origin, atol=1e-4):
            raise ValueError(f"grid origin of {name} differs from that of AB")
    if all(g.chgcar is not None for g in (ab, a, b)):
        parts = [g.chgcar for g in (ab, a, b)]
        if len({tuple(p.data) for p in parts}) > 1:  # e.g. spin-polarized slab, closed-shell cPAN
            parts = [_total_only(p) for p in parts]
        with warnings.catch_warnings():  # AB, A and B hold different atoms by design
            warnings.filterwarnings("ignore", "Structures are different")
            delta = parts[0] - parts[1] - parts[2]  # VolumetricData.linear_add on ρ·V
        return DensityGrid(delta.data["total"] / delta.structure.volume, ab.atoms, ab.origin, delta)
    return DensityGrid(ab.data - a.data - b.data, ab.atoms, ab.origin)


def _total_only(chgcar: Any) -> Any:
    from pymatgen.io.vasp import Chgcar

    return Chgcar(chgcar.poscar, {"total": chgcar.data["total"]})


def sphere_charges(grid: DensityGrid, indices: list[int], radius: float) -> dict[str, float]:
    """∫Δρ dV (electrons) in a sphere of `radius` Å around each atom, keyed "Ni12", "N40".

    Positive: electrons gained. Only the box of grid points around each atom is visited
    (indices wrap periodically), so it stays fast on large slab grids. A radius beyond half
    the cell's shortest height would count periodic images twice and is refused.
    """
    cell = grid.atoms.cell.array
    heights = grid.atoms.get_volume() / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]),
                                                       axis=1)
    if radius >= heights.min() / 2:
        raise ValueError(f"radius {radius} Å reaches periodic images (cell height {heights.min():.2f} Å)")
    shape = np.array(grid.data.shape)
    charges = {}
    for i in indices:
        centre = (grid.atoms.positions[i] - grid.origin) @ np.linalg.inv(cell)
        reach = radius / heights
        box = np.meshgrid(*(np.arange(np.floor((f - r) * n), np.ceil((f + r) * n) + 1, dtype=int)
                            for f, r, n in zip(centre, reach, shape, strict=True)), indexing="ij")
        offset = np.stack([b / n for b, n in zip(box, shape, strict=True)], axis=-1) - centre
        inside = np.linalg.norm(offset @ cell, axis=-1) <= radius
        values = grid.data[tuple(b % n for b, n in zip(box, shape, strict=True))]
        charges[f"{grid.atoms[i].symbol}{i}"] = float(values[inside].sum() * grid.voxel_volume)
    return charges


def plane_average(grid: DensityGrid) -> dict[str, np.ndarray | float]:
    """Δρ averaged over the a–b plane vs height z along its normal, and ΔQ(z) = ∫_0^z Δρ̄ A dz′.

    z starts at the grid origin; ΔQ (electrons) is the net charge gained below z, so it ends
    at the total ∫Δρ dV (≈ 0 for a charge-conserving difference).
    """
    cell = grid.atoms.cell.array
    area = float(np.linalg.norm(np.cross(cell[0], cell[1])))
    nz = grid.data.shape[2]
    dz = grid.atoms.get_volume() / area / nz
    rho = grid.data.mean(axis=(0, 1))
    return {"z": np.arange(nz) * dz, "rho_avg": rho, "delta_q": np.cumsum(rho) * area * dz,
            "area": area}


@dataclass
class DensitySlice:
    """Δρ (e/Å³) on a plane: s along the bond (0 at the first atom), t across it (Å)."""

    s: np.ndarray
    t: np.ndarray
    values: np.ndarray  # shape (len(t), len(s))
    atoms: list[tuple[str, float, float]]  # atoms within 0.5 Å of the plane: symbol, s, t


def plane_slice(grid: DensityGrid, i: int, j: int, direction=(0.0, 0.0, 1.0),
                margin: float = 2.5, spacing: float = 0.05) -> DensitySlice:
    """Slice through atoms i and j (e.g. Ni and its N) and `direction` (default: surface
    normal z), interpolated periodically (linear) so it may cross the cell boundary."""
    pos = grid.atoms.positions
    bond, _ = find_mic(pos[j] - pos[i], grid.atoms.cell, grid.atoms.pbc)
    u = bond / np.linalg.norm(bond)
    v = np.asarray(direction, dtype=float) - np.dot(direction, u) * u
    if np.linalg.norm(v) < 1e-6:
        raise ValueError("slice direction is parallel to the bond; pick another direction")
    v /= np.linalg.norm(v)
    s = np.arange(-margin, np.linalg.norm(bond) + margin + spacing / 2, spacing)
    t = np.arange(-margin, margin + spacing / 2, spacing)
    ss, tt = np.meshgrid(s, t)
    xyz = pos[i] + ss[..., None] * u + tt[..., None] * v
    frac = (xyz - grid.origin) @ np.linalg.inv(grid.atoms.cell.array)
    index = np.moveaxis(frac * np.array(grid.data.shape), -1, 0)
    # "grid-wrap" is scipy's true periodic mode; "wrap" treats first and last point as one
    values = map_coordinates(grid.data, index, order=1, mode="grid-wrap")

    rel, _ = find_mic(pos - pos[i], grid.atoms.cell, grid.atoms.pbc)
    normal = np.cross(u, v)
    marked = [(a.symbol, float(r @ u), float(r @ v)) for a, r in zip(grid.atoms, rel, strict=True)
              if abs(r @ normal) < 0.5 and s[0] <= r @ u <= s[-1] and t[0] <= r @ v <= t[-1]]
    return DensitySlice(s, t, values, marked)


def plot_slice(slc: DensitySlice, path: str | Path, vmax: float | None = None) -> Path:
    """Diverging map, accumulation red / depletion blue, symmetric limits, atoms marked.

    The default limit is the 99th percentile of |Δρ|, not its maximum: the largest values sit
    in the cores' steep density, and scaling to them washes out the bond region.
    """
    vmax = vmax or float(np.percentile(np.abs(slc.values), 99)) or 1.0
    aspect = (slc.t[-1] - slc.t[0]) / (slc.s[-1] - slc.s[0])
    with figure(width=5.6, height=4.6 * aspect + 0.9) as (fig, ax):
        mesh = ax.pcolormesh(slc.s, slc.t, slc.values, cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                             shading="auto", rasterized=True)
        for symbol, s, t in slc.atoms:
            ax.plot(s, t, "o", markersize=12, markerfacecolor="white", markeredgecolor="k",
                    alpha=0.85)
            ax.annotate(symbol, (s, t), ha="center", va="center", fontsize=7)
        ax.set_aspect("equal")
        ax.set_xlabel("Distance along bond (Å)")
        ax.set_ylabel("Distance across bond, in plane (Å)")
        cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.1)  # same height
        fig.colorbar(mesh, cax=cax, label=r"$\Delta\rho$ (e/Å$^3$)", extend="both")
        return save(fig, path)


def plot_plane_average(average: dict, path: str | Path) -> Path:
    """Δρ̄(z) (top) and the cumulative charge transfer ΔQ(z) (bottom) against height."""
    with figure(width=4.5, height=4.6, nrows=2, sharex=True) as (fig, (top, bottom)):
        top.plot(average["z"], average["rho_avg"], color="k", linewidth=1.0)
        for sign, color, text in ((1, "C3", "accumulation"), (-1, "C0", "depletion")):
            top.fill_between(average["z"], average["rho_avg"], where=sign * average["rho_avg"] > 0,
                             color=color, alpha=0.5, linewidth=0, interpolate=True, label=text)
        top.legend(fontsize=8, loc="best")
        top.set_ylabel(r"$\overline{\Delta\rho}(z)$ (e/Å$^3$)")
        bottom.plot(average["z"], average["delta_q"], color="C0")
        bottom.set_ylabel(r"$\Delta Q(z)$ (e)")
        bottom.set_xlabel(r"$z$ (Å)")
        for ax in (top, bottom):
            ax.axhline(0.0, color="0.5", linewidth=0.7)
        return save(fig, path)


def charge_density_difference(ab: DensityGrid, a: DensityGrid, b: DensityGrid, ni: int, n: int,
                              out: Path, radius: float = SPHERE, suffix: str = ".cube") -> dict[str, Any]:
    """Δρ written for VESTA, sliced through the Ni–N bond and plane-averaged; returns the numbers.

    ``transfer_to_slab`` is ΔQ(z) at the height midway between Ni and N: electrons moved from
    the cPAN side of that plane to the slab side (negative: towards cPAN).
    """
    delta = density_difference(ab, a, b)
    out.mkdir(parents=True, exist_ok=True)
    files = {"delta_rho": delta.write(out / f"delta_rho{suffix}")}
    charges = sphere_charges(delta, [ni, n], radius)
    cut = plane_slice(delta, ni, n, direction=slice_direction(delta, ni, n))
    files["slice"] = plot_slice(cut, out / "cdd_slice.png")
    average = plane_average(delta)
    files["plane_average"] = plot_plane_average(average, out / "cdd_plane_average.png")
    z_mid = np.mean(delta.atoms.positions[[ni, n], 2]) - delta.origin[2]
    transfer = float(np.interp(z_mid, average["z"], average["delta_q"]))
    return {"sphere_radius": radius, "sphere_charges": charges, "transfer_to_slab": transfer,
            "total": float(average["delta_q"][-1]), "z_mid": float(z_mid), "files": files,
            "plane_average": average}


def slice_direction(grid: DensityGrid, i: int, j: int) -> tuple[float, float, float]:
    """The plane holds the bond and the surface normal, or x when the bond is (nearly) vertical."""
    bond = grid.atoms.get_distance(i, j, mic=True, vector=True)
    return (1.0, 0.0, 0.0) if abs(bond[2]) > 0.95 * np.linalg.norm(bond) else (0.0, 0.0, 1.0)
