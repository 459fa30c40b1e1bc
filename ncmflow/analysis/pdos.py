"""Projected DOS: the Ni-d / N-p overlap near E_F that signals the Ni–N coordination bond.

`PdosData` holds plain arrays relative to E_F, spin channels apart ("up"/"down"), whatever
code produced them: VASP via pymatgen's CompleteDos, or GPAW-like arrays via `from_arrays`.
Projection labels are "<Element>-<l>" (summed over all sites of the element, e.g. "Ni-d")
or "<Element><index>-<l>" for one site, index 0-based as in the structure (e.g. "Ni12-d").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.integrate import trapezoid

from ncmflow.analysis.plotting import fermi_line, figure, save
from ncmflow.workflows.lcao import SPINS, PdosData, parse_label  # the stored PDOS document

__all__ = ["SPINS", "PdosData", "band_centre", "parse_label", "pdos_overlap", "plot_pdos"]

def _window(pdos: PdosData, window: tuple[float, float] | None) -> np.ndarray:
    lo, hi = window if window is not None else (-np.inf, np.inf)
    return (pdos.energies >= lo) & (pdos.energies <= hi)


def band_centre(pdos: PdosData, label: str, window: tuple[float, float] | None = None) -> float:
    """First moment ∫E g dE / ∫g dE (eV vs E_F) of a spin-summed projection, e.g. "Ni12-d".

    `window=None` uses the whole d band, as Hammer–Nørskov and pymatgen's
    `get_band_center` do; pass e.g. (-inf, 0) for the occupied-states centre.
    """
    mask = _window(pdos, window)
    e, g = pdos.energies[mask], pdos.spin_summed(label)[mask]
    weight = trapezoid(g, e)
    if weight <= 0:
        raise ValueError(f"{label} has no states in window {window}")
    return float(trapezoid(e * g, e) / weight)


def pdos_overlap(
    pdos: PdosData,
    label_a: str,
    label_b: str,
    window: tuple[float, float] = (-2.0, 1.0),
    min_states: float = 0.01,
) -> float:
    """Shared area ∫ min(ĝ_A, ĝ_B) dE of the two spin-summed PDOS, each normalised to unit
    area inside `window` (eV vs E_F; default the study's E_F − 2 … E_F + 1 eV).

    Chosen over the normalised product because it reads as "fraction of states in common":
    1 for identical shapes, 0 for disjoint ones, and insensitive to the absolute heights
    (Ni-d has far more states than N-p). A projection with fewer than `min_states` states in
    the window counts as absent (overlap 0): normalising would otherwise blow a numerical tail
    (e.g. of a Gaussian-smeared band 4 eV away) up to a full curve that overlaps spuriously.
    """
    mask = _window(pdos, window)
    e = pdos.energies[mask]
    normed = []
    for label in (label_a, label_b):
        g = np.clip(pdos.spin_summed(label)[mask], 0.0, None)
        area = trapezoid(g, e)
        if area < min_states:
            return 0.0
        normed.append(g / area)
    return float(trapezoid(np.minimum(*normed), e))


def plot_pdos(
    pdos: PdosData,
    path: str | Path,
    labels: list[str] | None = None,
    energy_range: tuple[float, float] = (-8.0, 4.0),
    show_total: bool = False,
) -> Path:
    """Overlaid PDOS, spin down mirrored below zero, E_F dashed at 0."""
    labels = labels or list(pdos.projections)
    mask = _window(pdos, energy_range)
    e = pdos.energies[mask]
    with figure(width=5.0, height=3.6) as (fig, ax):
        curves = [(label, pdos.projections[label], f"C{i}") for i, label in enumerate(labels)]
        if show_total and pdos.total:
            curves.insert(0, ("total", pdos.total, "0.7"))
        for label, channels, color in curves:
            for spin, g in channels.items():
                sign = -1.0 if spin == "down" else 1.0
                ax.plot(e, sign * g[mask], color=color, linewidth=1.2,
                        label=label if spin == "up" else None)
                ax.fill_between(e, sign * g[mask], color=color, alpha=0.15, linewidth=0)
        fermi_line(ax)
        ax.axhline(0.0, color="k", linewidth=0.6)
        ax.set_xlim(*energy_range)
        ax.set_xlabel(r"$E - E_\mathrm{F}$ (eV)")
        ax.set_ylabel("PDOS (states/eV)")
        if any("down" in channels for _, channels, _ in curves):
            for y, text in ((0.97, "spin up"), (0.03, "spin down")):
                ax.text(0.98, y, text, transform=ax.transAxes, ha="right",
                        va="top" if y > 0.5 else "bottom", fontsize=8, color="0.3")
        ax.legend(loc="upper left", fontsize=9)
        return save(fig, path)
