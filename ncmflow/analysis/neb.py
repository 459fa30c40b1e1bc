"""Migration barriers from finished NEB images (the study's Ni hop: 2.83 eV bare, 3.36 eV coated).

The energy profile is ASE's cubic Hermite fit (`ase.utils.forcecurve.fit_raw`, as used by
`NEBTools`): each segment between images matches both image energies and the tangential forces,
so the saddle between images is located without extra calculations. Nothing here runs one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.geometry import find_mic
from ase.io import read
from ase.utils.forcecurve import fit_raw
from monty.json import jsanitize
from scipy.interpolate import CubicHermiteSpline

from ncmflow.analysis.plotting import figure, save


@dataclass
class BarrierProfile:
    """Energy profile of one NEB; energies in eV relative to the first image, lengths in Å."""

    path_coords: np.ndarray  # reaction coordinate of each image (cumulative |ΔR|, Å)
    energies: np.ndarray  # image energies − E(start), eV
    spline_x: np.ndarray  # dense reaction coordinate of the fit, Å
    spline_y: np.ndarray  # fitted energy, eV
    forward_barrier: float  # max(fit) − E_start, eV
    reverse_barrier: float  # max(fit) − E_end, eV
    reaction_energy: float  # E_end − E_start, eV
    saddle_x: float  # reaction coordinate of the fitted maximum, Å
    saddle_index: int  # index of the highest image (the climbing image in a CI-NEB)

    def as_dict(self) -> dict:
        """Plain dict (arrays become lists) for JSON stores and notebooks."""
        return jsanitize(asdict(self))


def unwrap_positions(positions: list[np.ndarray], cell: np.ndarray, pbc) -> list[np.ndarray]:
    """Make consecutive images continuous by minimum-image displacements.

    `fit_raw` applies the minimum image to path lengths but not to the tangent directions,
    so an atom wrapped across the cell would get a wrong tangential force; unwrapping first
    makes both consistent.
    """
    unwrapped = [np.asarray(positions[0], dtype=float)]
    for nxt in positions[1:]:
        step, _ = find_mic(np.asarray(nxt) - unwrapped[-1], cell, pbc)
        unwrapped.append(unwrapped[-1] + step)
    return unwrapped


def profile_from_arrays(
    energies, forces, positions, cell=None, pbc=(True, True, True)
) -> BarrierProfile:
    """Profile from per-image energies (eV), forces (eV/Å) and positions (Å).

    Forces must be the physical (DFT/MLIP) forces, not NEB-projected ones. Pass `cell=None`
    for non-periodic images.
    """
    energies = np.asarray(energies, dtype=float)
    forces = [np.asarray(f, dtype=float) for f in forces]
    positions = [np.asarray(p, dtype=float) for p in positions]
    if len(energies) < 3:
        raise ValueError(f"a barrier needs at least 3 images, got {len(energies)}")
    if cell is not None:
        positions = unwrap_positions(positions, np.asarray(cell), pbc)
    fit = fit_raw(energies, forces, positions)
    path, rel = np.asarray(fit.path, dtype=float), np.asarray(fit.energies, dtype=float)
    # fit_raw's tangent lines carry dE/dx = −F·τ at each image; the cubic Hermite through
    # them is fit_raw's own spline, rebuilt here so the saddle is exact, not on a sample grid
    slopes = [(y[-1] - y[0]) / (x[-1] - x[0]) for x, y in fit.lines]
    spline = CubicHermiteSpline(path, rel, slopes)
    stationary = spline.derivative().roots(extrapolate=False)
    candidates = np.concatenate([path, stationary[np.isfinite(stationary)]])
    top = candidates[np.argmax(spline(candidates))]
    x = np.linspace(0.0, path[-1], 40 * (len(path) - 1) + 1)
    return BarrierProfile(
        path_coords=path,
        energies=rel,
        spline_x=x,
        spline_y=spline(x),
        forward_barrier=float(spline(top)),
        reverse_barrier=float(spline(top) - rel[-1]),
        reaction_energy=float(rel[-1]),
        saddle_x=float(top),
        saddle_index=int(np.argmax(rel)),
    )


def profile_from_images(images: list[Atoms]) -> BarrierProfile:
    """Profile from images carrying energy and forces (e.g. a SinglePointCalculator)."""
    return profile_from_arrays(
        [a.get_potential_energy() for a in images],
        [a.get_forces() for a in images],
        [a.get_positions() for a in images],
        cell=images[0].cell.array,
        pbc=images[0].pbc,
    )


def _outcar(folder: Path) -> Path | None:
    return next((p for p in (folder / "OUTCAR", folder / "OUTCAR.gz") if p.is_file()), None)


def profile_from_vasp_neb(folder: str | Path) -> BarrierProfile:
    """Profile from a VASP (VTST) NEB folder with image folders 00, 01, …, N+1.

    Every image folder, the end points 00 and N+1 included, must hold an OUTCAR (or
    OUTCAR.gz): VASP does not compute the end points inside the NEB run, so copy the OUTCARs
    of the relaxed end points there (as VTST's nebbarrier.pl also requires). The last ionic
    step of each OUTCAR is used, with ASE's energy (sigma → 0) and the TOTAL-FORCE block.
    """
    folder = Path(folder)
    image_dirs = sorted((d for d in folder.iterdir() if d.is_dir() and d.name.isdigit()),
                        key=lambda d: int(d.name))
    if len(image_dirs) < 3:
        raise FileNotFoundError(f"{folder}: expected image folders 00, 01, …; found {len(image_dirs)}")
    missing = [d.name for d in image_dirs if _outcar(d) is None]
    if missing:
        raise FileNotFoundError(f"{folder}: no OUTCAR in image folder(s) {', '.join(missing)}")
    return profile_from_images([_last_step(_outcar(d)) for d in image_dirs])


def _last_step(outcar: Path) -> Atoms:
    from ncmflow.structures.files import parsing

    with parsing(outcar, "OUTCAR"):
        return read(outcar, format="vasp-out", index=-1)


def draw_profiles(ax, profiles: dict[str, BarrierProfile], colors: dict[str, str] | None = None,
                  linestyles: dict[str, str] | None = None, annotate: bool = True,
                  labelled: bool = True) -> None:
    """Draw each splined profile and its images on ``ax``; ``annotate`` writes the forward barrier
    at the saddle, ``labelled`` gives every line a legend label (off for figures with a proxy legend)."""
    for i, (label, prof) in enumerate(profiles.items()):
        color = (colors or {}).get(label, f"C{i}")
        ax.plot(prof.spline_x, prof.spline_y, color=color, linestyle=(linestyles or {}).get(label, "-"),
                label=f"{label} ($E_a$ = {prof.forward_barrier:.2f} eV)" if labelled else "_nolegend_")
        ax.plot(prof.path_coords, prof.energies, "o", color=color, markersize=5,
                markeredgecolor="k", markeredgewidth=0.5)
        if annotate:
            ax.annotate(f"{prof.forward_barrier:.2f} eV", (prof.saddle_x, prof.forward_barrier),
                        xytext=(0, 6), textcoords="offset points", ha="center", va="bottom",
                        color=color, fontsize=9)
    ax.axhline(0.0, color="0.6", linewidth=0.8, zorder=0)


def plot_profiles(profiles: dict[str, BarrierProfile], path: str | Path) -> Path:
    """Overlay barrier profiles (e.g. bare vs cPAN-coated) and annotate each forward barrier."""
    with figure() as (fig, ax):
        draw_profiles(ax, profiles)
        ax.set_xlabel("Reaction coordinate (Å)")
        ax.set_ylabel("Energy relative to initial state (eV)")
        ax.margins(y=0.15)
        ax.legend(loc="best", fontsize=9)
        return save(fig, path)
