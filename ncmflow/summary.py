"""One-screen summaries of models for the terminal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pymatgen.core import Molecule, Structure
from rich.console import Console
from rich.table import Table

PAIRS = (("Ni", "O"), ("Ni", "N"), ("C", "N"), ("C", "C"), ("C", "H"))


def key_distances(obj: Structure | Molecule) -> dict[str, float]:
    """Shortest distance overall and per chemically meaningful pair (periodic images included)."""
    dist = obj.distance_matrix + np.diag([np.inf] * len(obj))
    symbols = np.array([sp.symbol for sp in obj.species])
    out = {"closest contact": float(dist.min())}
    for a, b in PAIRS:
        block = dist[np.ix_(symbols == a, symbols == b)]
        if block.size:
            out[f"{a}–{b} shortest"] = float(block.min())
    return out


def summarize(console: Console, obj: Structure | Molecule, title: str, path: Path) -> None:
    table = Table(title=f"{title} → {path}", show_header=False, title_justify="left")
    table.add_row("formula", obj.composition.formula)
    table.add_row("atoms", str(len(obj)))
    if isinstance(obj, Structure):
        a, b, c = obj.lattice.abc
        al, be, ga = obj.lattice.angles
        table.add_row("lattice", f"a={a:.3f} b={b:.3f} c={c:.3f} Å  α={al:.1f} β={be:.1f} γ={ga:.1f}°")
    for name, value in key_distances(obj).items():
        table.add_row(name, f"{value:.3f} Å")
    for key in ("cyclization_index", "nitrile_CN", "ring_CN", "ni_n_distance", "vacancy_ordering"):
        if key in obj.properties:
            table.add_row(key, str(obj.properties[key]))
    console.print(table)
