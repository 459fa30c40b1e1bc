"""End points of the Ni hop: TM-layer octahedral site → Li-layer octahedral vacancy.

Three models: ``bulk`` (Li0.5NiO2), ``bare`` (its (104) slab) and ``cpan`` (the same slab with
a cPAN oligomer bound by its ring N to the hopping Ni). Each has several hop sites
(:mod:`ncmflow.structures.sites`): site ``k`` of ``bare`` and of ``cpan`` is the same slab, the
same Ni, the same vacancy (and the same Li move) in the same cell — the bare model *is* the
cPAN model with the molecule taken away, so the cPAN is the only difference between them.

Slab hops are ``subsurface`` (default: the Ni leaves the TM layer for the Li layer below the
surface plane, inwards — the mechanism the paper's coating is said to suppress) or
``in-plane`` (into the Li-layer site of the surface plane itself; the project's first model).
Start and end have identical atom ordering, so they are NEB-ready.

The default slab models (4 layers, 3-unit cPAN: 84 / 109 atoms) are sized for the ML potential.
``REDUCED`` (``ni_hop_endpoints("cpan", **REDUCED)``) is the smallest model that still has the
subsurface hop of an N-bound Ni, for local DFT single points: 2 (104) layers (bottom one fixed)
and the two-unit fully cyclized fragment of :func:`~ncmflow.structures.interface.electronic_model`
(C6N2H10, bound by its ring N) — Li6Ni12O24, 42 atoms bare, 60 with cPAN, 14 subsurface sites
over the two Li orderings (2 of ordering 0, 12 of ordering 1).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pymatgen.core import Structure

from ncmflow.structures.bulk import li05nio2
from ncmflow.structures.cpan import cpan, reacted_nitriles
from ncmflow.structures.interface import cpan_sites, interface
from ncmflow.structures.sites import (
    HOP_KINDS,
    HOP_RANGE,
    bulk_candidates,
    distinct,
    hop,
    label,
    round_robin,
    slab_candidates,
    vacancies,
)
from ncmflow.structures.slab import slab

MODELS = ("bulk", "bare", "cpan")
ORDERINGS = 2  # Li0.5NiO2 vacancy orderings sampled: the lowest and the next-lowest Ewald energy
FREE_RADIUS = 3.0  # Å around the bound N within which cPAN atoms relax in the migration model
# The reduced (local-DFT) slab model: 2 layers and the electronic model's C6N2H10 fragment. Two
# units need degree 1.0 (0.67 of 2 units is one reacted nitrile, which closes no ring).
REDUCED = {"layers": 2, "n_units": 2, "degree": 1.0}

__all__ = ["FREE_RADIUS", "HOP_KINDS", "HOP_RANGE", "MODELS", "ORDERINGS", "REDUCED", "fixed_layers",
           "hop_sites", "ni_hop_endpoints"]


@lru_cache(maxsize=8)
def _bulk_sites(orderings: int) -> tuple[tuple[Structure, Structure], ...]:
    per = [distinct(bulk_candidates(li05nio2(rank=r), r)) for r in range(orderings)]
    return tuple((s, e) for _, s, e in round_robin(per))


def _hold_remote_cpan(structure: Structure, free_radius: float | None) -> Structure:
    """Fix the cPAN atoms far from the coordinating N; the N's own group stays free."""
    if free_radius is None:
        return structure
    n_index = structure.properties["n_index"]
    flags = [list(f) for f in structure.site_properties["selective_dynamics"]]
    for i in cpan_sites(structure):
        flags[i] = [bool(structure.get_distance(i, n_index) <= free_radius)] * 3
    out = structure.copy(site_properties={"selective_dynamics": flags})
    out.properties = {**structure.properties, "cpan_free_radius": free_radius}
    return out


def _bind(start: Structure, end: Structure, n_units: int, degree: float, seed: int,
          free_radius: float | None) -> tuple[Structure, ...] | None:
    """(cpan start, cpan end, bare start, bare end) of one slab site in one cell, or None when
    the oligomer does not fit the slab's own cell (a larger cell would change the coverage)."""
    ni = start.properties["moved_index"]
    target = end.cart_coords[ni]
    molecule = cpan(n_units, degree, seed)  # outside the try: a bad n_units/degree is an error, not "no site"
    try:
        bound = interface(start, molecule, ni_index=ni, keep_clear=[target], max_grow=0)
    except ValueError:
        return None
    shift = bound.cart_coords[ni] - start.cart_coords[ni]
    vac = vacancies(bound)
    d = bound.lattice.get_all_distances(bound.lattice.get_fractional_coords(target + shift), vac)[0]
    p = start.properties
    move = p.get("li_move")
    if move:  # into the interface's cell (taller, shifted)
        move = {**move, **{k: bound.lattice.get_fractional_coords(
            start.lattice.get_cartesian_coords(move[k]) + shift).tolist() for k in ("from", "to")}}
    target_frac = vac[int(np.argmin(d))]
    info = {"hop_kind": p["hop_kind"], "hop_depth": p["hop_depth"], "ordering_rank": p["ordering_rank"],
            "li_move": move, "site_label": label(p["ordering_rank"], ni, target_frac, p["hop_depth"], move)}
    c_start, c_end = hop(_hold_remote_cpan(bound, free_radius), ni, target_frac, info)
    molecule = set(cpan_sites(bound))
    bare = []
    for s in (c_start, c_end):
        b = Structure.from_sites([s[i] for i in range(len(s)) if i not in molecule])
        b.properties = {key: v for key, v in s.properties.items()
                        if not key.startswith("cpan") and key not in ("n_index", "n_kind", "ni_n_distance")}
        b.properties["model"] = start.properties.get("model")
        bare.append(b)
    return c_start, c_end, *bare


def fixed_layers(layers: int) -> int:
    """Bottom (104) layers held in a migration slab of ``layers`` layers: 2, and 1 in a 2-layer slab.

    Four or more layers keep 2 fixed (the models as they always were): the hop goes from the top
    layer into the one below it, both free, over two bulk-like fixed layers. A 2-layer slab can
    hold only its bottom layer (``slab`` needs one free layer, and the top layer holds the
    hopping Ni). That is also the layer the subsurface target lies in: the hopping Ni keeps its
    free flags, so do the Li moved into the top layer, while the O and Li around the target stay at
    their bulk positions, as in :func:`~ncmflow.structures.interface.electronic_model`. Fixing
    nothing instead would leave two surfaces and no bulk-like part to hold the slab's shape.
    """
    if layers < 2:
        raise ValueError(f"a migration slab needs layers >= 2 (got {layers})")
    return min(2, layers - 1)


@lru_cache(maxsize=8)
def _slab_candidates(kind: str, layers: int, rank: int) -> tuple:
    surface = slab(li05nio2(rank=rank), "104", layers=layers, fixed_layers=fixed_layers(layers))
    return tuple(distinct(slab_candidates(surface, kind, rank)))


@lru_cache(maxsize=256)
def _bound(kind: str, layers: int, rank: int, index: int,
           cpan_options: tuple) -> tuple[Structure, ...] | None:
    _, start, end = _slab_candidates(kind, layers, rank)[index]
    return _bind(start, end, *cpan_options)


def _paired_sites(kind: str, layers: int, cpan_options: tuple, orderings: int,
                  limit: int | None = None) -> list[tuple[Structure, ...]]:
    """Slab sites where the cPAN binds the hopping Ni in the slab's own cell, round-robin over
    the Li orderings (first ``limit`` only: binding costs ~1 s a site); site k of the bare and
    of the cPAN model is the same hop."""
    pointers = [0] * orderings
    sites: list[tuple[Structure, ...]] = []
    while limit is None or len(sites) < limit:
        found = False
        for rank in range(orderings):
            candidates = _slab_candidates(kind, layers, rank)
            while pointers[rank] < len(candidates):
                pointers[rank] += 1
                pair = _bound(kind, layers, rank, pointers[rank] - 1, cpan_options)
                if pair is not None:
                    sites.append(pair)
                    found = True
                    break
            if limit is not None and len(sites) >= limit:
                break
        if not found:
            break
    return sites


def hop_sites(model: str = "bulk", hop_kind: str = "subsurface", layers: int = 4, n_units: int = 3,
              degree: float = 0.67, seed: int = 0, free_radius: float | None = FREE_RADIUS,
              orderings: int = ORDERINGS) -> int:
    """How many symmetry-distinct hop sites the model has (over the sampled Li orderings).

    Slab sites count only where the cPAN oligomer binds the hopping Ni in the slab's own cell,
    for the bare model too: its sites are the cPAN model's, molecule removed.
    """
    _check(model, hop_kind, n_units, degree)
    if model == "bulk":
        return len(_bulk_sites(orderings))
    return len(_paired_sites(hop_kind, layers, (n_units, degree, seed, free_radius), orderings))


def _check(model: str, hop_kind: str, n_units: int, degree: float) -> None:
    if model not in MODELS:
        raise ValueError(f"unknown migration model {model!r}: choose one of {', '.join(MODELS)}")
    if hop_kind not in HOP_KINDS:
        raise ValueError(f"unknown hop kind {hop_kind!r}: choose one of {', '.join(HOP_KINDS)}")
    # slab sites are where the cPAN binds, bare ones too: say why there would be none
    if model != "bulk" and reacted_nitriles(n_units, degree) < 2:
        raise ValueError(f"cPAN of {n_units} units at degree {degree} has no ring, so no pyridinic N "
                         f"to bind the Ni")


def ni_hop_endpoints(
    model: str = "bulk", hop_kind: str = "subsurface", site: int = 0, layers: int = 4, n_units: int = 3,
    degree: float = 0.67, seed: int = 0, free_radius: float | None = FREE_RADIUS,
    orderings: int = ORDERINGS,
) -> tuple[Structure, Structure]:
    """Start/end structures of hop site ``site`` of the ``bulk``, ``bare`` or ``cpan`` model.

    ``hop_kind`` applies to the slab models (bulk hops have no surface to go in from). The
    default cPAN (3 units, one pyridinic ring + imine + one nitrile, index 0.67) is the largest
    that fits the bare model's (104) cell; cPAN-260's 0.80 (5 units) needs a cell twice as
    wide, i.e. twice the cost of every force call. cPAN atoms farther than ``free_radius`` from
    the bound N are held (None frees them all): a free oligomer keeps rearranging for hundreds
    of optimizer steps, which is noise on the Ni-hop barrier this model is for.

    ``layers=2, n_units=2, degree=1.0`` (``**REDUCED``) is the local-DFT model (42 / 60 atoms);
    a 2-layer slab holds only its bottom layer (:func:`fixed_layers`).
    """
    _check(model, hop_kind, n_units, degree)
    options = (n_units, degree, seed, free_radius)
    sites = _bulk_sites(orderings) if model == "bulk" else _paired_sites(hop_kind, layers, options, orderings,
                                                                          site + 1)
    if not 0 <= site < len(sites):
        count = hop_sites(model, hop_kind, layers, n_units, degree, seed, free_radius, orderings)
        raise ValueError(f"the {model} model has {count} distinct {hop_kind if model != 'bulk' else 'bulk'} "
                         f"hop sites: site {site} does not exist")
    pair = sites[site]
    start, end = (s.copy() for s in (pair[:2] if model in ("bulk", "cpan") else pair[2:]))
    for s in (start, end):
        s.properties.update(migration_model=model, site=site)
    return start, end
