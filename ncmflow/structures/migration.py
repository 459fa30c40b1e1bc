"""End points of the Ni hop: TM-layer octahedral site → adjacent Li-layer vacancy.

The three models share one convention: the hopping Ni is the lowest-index Ni with a vacant
Li-layer octahedral site 2.5–3.5 Å away (the shared tetrahedral face lies between them);
on slabs it is a top-layer Ni and the target is the deepest such vacancy (subsurface when
the Li ordering leaves one in reach, otherwise the Li-layer site of the surface plane; the
target's depth is recorded as ``hop_depth``).
Start and end have identical atom ordering, so they are NEB-ready.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure

from ncmflow.structures.bulk import li05nio2
from ncmflow.structures.cpan import cpan
from ncmflow.structures.interface import interface
from ncmflow.structures.slab import slab

MODELS = ("bulk", "bare", "cpan")
HOP_RANGE = (2.5, 3.5)  # Å, TM site to a neighbouring Li-layer octahedral site
FREE_RADIUS = 3.0  # Å around the bound N within which cPAN atoms relax in the migration model
SURFACE_LAYER = 1.0  # Å, how far below the topmost Ni a Ni still counts as surface


def _depth(structure: Structure, frac: np.ndarray) -> float:
    return float(structure.lattice.get_cartesian_coords(frac)[2])


def _vacancies_near(structure: Structure, index: int) -> list[tuple[float, np.ndarray]]:
    """(distance, fractional position) of Li vacancies within hopping range of a site."""
    vac = np.array(structure.properties.get("li_vacancies", []), dtype=float).reshape(-1, 3)
    if not len(vac):
        return []
    d = structure.lattice.get_all_distances(structure.frac_coords[index], vac)[0]
    return [(float(x), f) for x, f in zip(d, vac, strict=True) if HOP_RANGE[0] <= x <= HOP_RANGE[1]]


def hop(structure: Structure, ni_index: int, surface: bool) -> tuple[Structure, Structure]:
    """Move Ni ``ni_index`` into its chosen neighbouring vacancy; return (start, end)."""
    options = _vacancies_near(structure, ni_index)
    if not options:
        raise ValueError(f"site {ni_index} has no Li vacancy within {HOP_RANGE} Å")
    dist, target = min(options, key=lambda o: (_depth(structure, o[1]) if surface else 0, o[0]))
    end = structure.copy()
    end.replace(ni_index, "Ni", coords=target, properties=end[ni_index].properties)
    vacancies = [f for f in structure.properties["li_vacancies"] if not np.allclose(f, target)]
    vacancies.append(structure.frac_coords[ni_index].tolist())
    depth = float(structure.cart_coords[ni_index, 2] - _depth(structure, target))
    info = {"moved_index": ni_index, "hop_distance": dist, "hop_depth": depth}
    start = structure.copy()
    start.properties = {**structure.properties, **info, "endpoint": "start"}
    end.properties = {**structure.properties, **info, "endpoint": "end", "li_vacancies": vacancies}
    return start, end


def _hold_remote_cpan(structure: Structure, free_radius: float | None) -> Structure:
    """Fix the cPAN atoms far from the coordinating N; the N's own group stays free."""
    if free_radius is None:
        return structure
    n_index = structure.properties["n_index"]
    first_molecule_site = len(structure) - len(structure.properties["cpan_species"])
    flags = [list(f) for f in structure.site_properties["selective_dynamics"]]
    for i in range(first_molecule_site, len(structure)):
        flags[i] = [structure.get_distance(i, n_index) <= free_radius] * 3
    out = structure.copy(site_properties={"selective_dynamics": flags})
    out.properties = {**structure.properties, "cpan_free_radius": free_radius}
    return out


def _surface_ni(structure: Structure) -> int:
    """The top-layer, movable Ni whose reachable vacancy lies deepest (subsurface if any)."""
    z = structure.cart_coords[:, 2]
    movable = structure.site_properties.get("selective_dynamics", [[True]] * len(structure))
    ni = [i for i, sp in enumerate(structure.species) if sp.symbol == "Ni" and movable[i][0]]
    top = max(z[i] for i in ni)
    ranked = [
        (min(_depth(structure, f) for _, f in near), i)
        for i in ni
        if z[i] > top - SURFACE_LAYER and (near := _vacancies_near(structure, i))
    ]
    if not ranked:
        raise ValueError("no surface Ni has a Li vacancy in hopping range")
    return min(ranked, key=lambda t: (round(t[0], 2), t[1]))[1]


def ni_hop_endpoints(
    model: str = "bulk", layers: int = 4, n_units: int = 3, degree: float = 0.67, seed: int = 0,
    free_radius: float | None = FREE_RADIUS,
) -> tuple[Structure, Structure]:
    """Start/end structures of the Ni hop for the ``bulk``, ``bare`` or ``cpan`` model.

    The default cPAN (3 units, one pyridinic ring + imine + one nitrile, index 0.67) is the
    largest that fits the bare model's (104) cell; cPAN-260's 0.80 (5 units) needs a cell twice
    as wide, i.e. twice the cost of every force call. cPAN atoms farther than ``free_radius``
    from the bound N are held (None frees them all): a free oligomer keeps rearranging for
    hundreds of optimizer steps (and with CHGNet even transfers H to the surface), which is
    noise on the Ni-hop barrier this model is for.
    """
    if model not in MODELS:
        raise ValueError(f"unknown migration model {model!r}: choose one of {', '.join(MODELS)}")
    bulk = li05nio2()
    if model == "bulk":
        ni = next(i for i, sp in enumerate(bulk.species) if sp.symbol == "Ni" and _vacancies_near(bulk, i))
        start, end = hop(bulk, ni, surface=False)
    else:
        surface = slab(bulk, "104", layers=layers)
        ni = _surface_ni(surface)
        if model == "cpan":
            target = hop(surface, ni, surface=True)[1][ni].coords  # where the Ni will go
            bound = interface(surface, cpan(n_units, degree, seed), ni_index=ni, keep_clear=[target])
            surface = _hold_remote_cpan(bound, free_radius)
            ni = surface.properties["ni_index"]
        start, end = hop(surface, ni, surface=True)
    for s in (start, end):
        s.properties["migration_model"] = model
    return start, end
