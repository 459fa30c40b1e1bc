"""A migration path's images between two end points: IDPP (or linear) interpolation."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

INTERPOLATIONS = ("idpp", "linear")


def neb_images(
    start: Structure, end: Structure, n_images: int = 5, method: str = "idpp"
) -> list[Structure]:
    """Start, ``n_images`` interpolated images (ASE's IDPP, or ``linear``) and end, at fixed cell.

    IDPP keeps interpolated atoms from overlapping, which matters for a Ni hop through the
    shared tetrahedral site. Site properties (selective dynamics, moments) follow the start.
    """
    from ase.mep import NEB

    start_species = [site.specie.symbol for site in start]
    end_species = [site.specie.symbol for site in end]
    if start_species != end_species:
        where = next((f"site {i}: {a} vs {b}"
                      for i, (a, b) in enumerate(zip(start_species, end_species, strict=False)) if a != b),
                     f"{len(start)} vs {len(end)} sites")
        raise ValueError(f"images have different atom ordering: {where}")
    if not np.allclose(start.lattice.matrix, end.lattice.matrix, atol=1e-3):
        raise ValueError("start and end cells differ: NEB runs at the start's fixed cell")
    if method not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {method!r}: choose idpp or linear")
    adaptor = AseAtomsAdaptor()
    bare = [Structure(s.lattice, s.species, s.frac_coords) for s in (start, end)]
    # every atom interpolates (no constraints); constraints come back through the site properties
    frames = [adaptor.get_atoms(bare[0], msonable=False) for _ in range(n_images + 1)]
    frames.append(adaptor.get_atoms(bare[1], msonable=False))
    NEB(frames, method="improvedtangent").interpolate(method=method, mic=True)
    middle = [Structure(start.lattice, start.species, frame.get_scaled_positions(wrap=False),
                        site_properties=start.site_properties) for frame in frames[1:-1]]
    return [start.copy(), *middle, end.copy()]
