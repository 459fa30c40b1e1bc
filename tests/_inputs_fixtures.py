"""Small structures for the inputs tests: a slab, an N-coordinated slab, molecules in a box."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from ncmflow.structures.bulk import li05nio2, linio2

VACUUM = 15.0  # Å added along c


def bulk() -> Structure:
    """12-atom hexagonal LiNiO2."""
    return linio2()


def delithiated() -> Structure:
    """42-atom Li0.5NiO2, the Ni-migration model."""
    return li05nio2()


def slab() -> Structure:
    """LiNiO2 with 15 Å vacuum along c; the bottom half of the atoms fixed."""
    s = linio2()
    lattice = Lattice(s.lattice.matrix + np.diag([0.0, 0.0, VACUUM]))
    z = s.cart_coords[:, 2]
    flags = [[bool(zi > np.median(z))] * 3 for zi in z]
    return Structure(
        lattice,
        s.species,
        s.cart_coords,
        coords_are_cartesian=True,
        site_properties={"selective_dynamics": flags},
    )


def coated_slab() -> Structure:
    """The slab with a nitrile (N≡C–H) standing 2.0 Å above its topmost Ni."""
    s = slab()
    ni = max((i for i, site in enumerate(s) if site.specie.symbol == "Ni"), key=lambda i: s[i].coords[2])
    top = s[ni].coords
    for el, dz in (("N", 2.0), ("C", 3.16), ("H", 4.22)):
        s.append(
            el,
            top + np.array([0.0, 0.0, dz]),
            coords_are_cartesian=True,
            properties={"selective_dynamics": [True] * 3},
        )
    return s


def molecules_in_box() -> Structure:
    """N2 and CH4 in a 15 Å cubic box: covers C, N and H."""
    d = 0.629  # C–H 1.09 Å along the body diagonals
    coords = [[7.5, 7.5, 6.95], [7.5, 7.5, 8.05], [3.0, 3.0, 3.0]]
    coords += [
        [3.0 + sx * d, 3.0 + sy * d, 3.0 + sx * sy * d] for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1))
    ]
    return Structure(
        Lattice.cubic(15.0), ["N", "N", "C", "H", "H", "H", "H"], coords, coords_are_cartesian=True
    )


def foreign(element: str) -> Structure:
    """Bulk LiNiO2 with one Ni replaced by an unsupported element."""
    s = linio2()
    s.replace(next(i for i, site in enumerate(s) if site.specie.symbol == "Ni"), element)
    return s


def ni_hop(structure: Structure, shift: float = 0.8) -> tuple[Structure, int]:
    """An end point with the first Ni moved ``shift`` Å along +c (same cell and order)."""
    end = structure.copy()
    ni = next(i for i, site in enumerate(end) if site.specie.symbol == "Ni")
    end.translate_sites([ni], [0.0, 0.0, shift], frac_coords=False, to_unit_cell=False)
    return end, ni
