"""Hop sites of the Ni migration: which Ni, which Li-layer octahedral site, which Li ordering.

A site is a (Ni, target) pair: a TM-layer Ni and a Li-layer octahedral site 2.5–3.5 Å away
(they share a face through the tetrahedral site between them). Pairs are enumerated on every
Li ordering sampled, equivalent ones are dropped (pymatgen's ``StructureMatcher`` on both end
points) and the rest are ranked by the formal-charge Ewald energy of the start, then of the
end — a physical ranking that knows nothing about barriers. Orderings are visited round-robin,
so site 0 and site 1 come from different Li arrangements.

Slab hops come in two kinds:

* ``subsurface`` — a top-layer Ni hops into a Li-layer site of the plane *below* the surface
  (≥ 1.5 Å deeper): inwards, away from the vacuum and from the N bound above it, the start
  of cation mixing that grows into the crystal. Where that site holds a Li, the Li moves to
  another vacancy (composition kept, the lowest-Ewald choice among vacancies not next to the
  target; recorded in ``li_move``).
* ``in-plane`` — the target is a vacant Li-layer site of the surface plane itself.
"""

from __future__ import annotations

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from ncmflow.structures.bulk import ewald_matrix, formal_charges

HOP_RANGE = (2.5, 3.5)  # Å, TM site to a neighbouring Li-layer octahedral site
HOP_KINDS = ("subsurface", "in-plane")
MIN_DEPTH = 1.5  # Å, a subsurface target lies at least this far below the hopping Ni
PLANE_TOL = 0.5  # Å, an in-plane target lies within this of the Ni's height
SURFACE_LAYER = 1.0  # Å, how far below the topmost Ni a Ni still counts as surface


class EwaldTable:
    """Formal-charge Ewald energy of any occupation of a structure's sites and Li vacancies.

    One Ewald sum with unit charges gives the pair matrix Φ; E(q) = qᵀΦq for every neutral
    charge vector q (checked against ``EwaldSummation`` to 1e-9 eV in the tests), so ranking
    hundreds of Li placements costs one sum instead of hundreds.
    """

    def __init__(self, structure: Structure) -> None:
        vac = vacancies(structure)
        self.n_atoms = len(structure)
        full = Structure(structure.lattice, [*structure.species, *["Li"] * len(vac)],
                         np.vstack([structure.frac_coords, vac]) if len(vac) else structure.frac_coords)
        self.phi = ewald_matrix(full)
        self.q0 = np.array(formal_charges(structure) + [0.0] * len(vac))

    def energy(self, moves: list[tuple[int, int]] = ()) -> float:
        """Energy after moving the charge of site i to site j for each (i, j), in order.

        Sites are numbered atoms first, then vacancies (``n_atoms + k`` is vacancy k).
        """
        q = self.q0.copy()
        for i, j in moves:
            q[j], q[i] = q[i], 0.0
        return float(q @ self.phi @ q)


def vacancies(structure: Structure) -> np.ndarray:
    return np.array(structure.properties.get("li_vacancies", []), dtype=float).reshape(-1, 3)


def _flags_at(structure: Structure, z: float) -> list[bool]:
    """Selective-dynamics flags of the plane at height ``z`` (a moved Li takes its new plane's)."""
    flags = structure.site_properties.get("selective_dynamics")
    if flags is None:
        return [True] * 3
    nearest = int(np.argmin(np.abs(structure.cart_coords[:, 2] - z)))
    return list(flags[nearest])


def move_li(structure: Structure, li_index: int, vacancy: int) -> Structure:
    """Move Li ``li_index`` into vacancy number ``vacancy``; its old site becomes a vacancy."""
    vac = vacancies(structure)
    out = structure.copy()
    old = structure.frac_coords[li_index].copy()
    props = dict(structure[li_index].properties)
    if "selective_dynamics" in props:
        z_new = structure.lattice.get_cartesian_coords(vac[vacancy])[2]
        props["selective_dynamics"] = _flags_at(structure, z_new)
    out.replace(li_index, "Li", coords=vac[vacancy], properties=props)
    kept = [v.tolist() for k, v in enumerate(vac) if k != vacancy]
    out.properties = {**structure.properties, "li_vacancies": [*kept, old.tolist()],
                      "li_move": {"index": li_index, "from": old.tolist(), "to": vac[vacancy].tolist()}}
    return out


def hop(structure: Structure, ni_index: int, target: np.ndarray, info: dict | None = None
        ) -> tuple[Structure, Structure]:
    """Move Ni ``ni_index`` to the vacant fractional position ``target``; return (start, end)."""
    vac = vacancies(structure)
    match = np.flatnonzero(np.linalg.norm(
        (vac - target - np.round(vac - target)) @ structure.lattice.matrix, axis=1) < 0.05)
    if not len(match):
        raise ValueError(f"the hop target {np.round(target, 3).tolist()} is not a Li vacancy")
    dist = float(structure.lattice.get_all_distances(structure.frac_coords[ni_index], target)[0, 0])
    end = structure.copy()
    end.replace(ni_index, "Ni", coords=target, properties=end[ni_index].properties)
    kept = [v.tolist() for k, v in enumerate(vac) if k != match[0]]
    base = {**structure.properties, "moved_index": ni_index, "hop_distance": dist, **(info or {})}
    start = structure.copy()
    start.properties = {**base, "endpoint": "start"}
    end.properties = {**base, "endpoint": "end",
                      "li_vacancies": [*kept, structure.frac_coords[ni_index].tolist()]}
    return start, end


def _near(structure: Structure, index: int, frac: np.ndarray) -> np.ndarray:
    """Indices of ``frac`` positions within hopping range of site ``index``."""
    if not len(frac):
        return np.array([], dtype=int)
    d = structure.lattice.get_all_distances(structure.frac_coords[index], frac)[0]
    return np.flatnonzero((d >= HOP_RANGE[0]) & (d <= HOP_RANGE[1]))


def label(rank: int, ni: int, target: np.ndarray, depth: float | None, li_move: dict | None) -> str:
    where = "(" + ", ".join(f"{x:.3f}" for x in target) + ")"
    text = f"ordering {rank}: Ni {ni} → Li site {where}"
    if depth is not None:
        text += f", {round(depth, 2) + 0.0:.2f} Å down"
    if li_move:
        text += f"; Li {li_move['index']} moved to (" + ", ".join(f"{x:.3f}" for x in li_move["to"]) + ")"
    return text


def bulk_candidates(bulk: Structure, rank: int) -> list[tuple[tuple, Structure, Structure]]:
    """Every (Ni, vacancy) hop of a bulk cell as (ranking key, start, end)."""
    ewald = EwaldTable(bulk)
    vac = vacancies(bulk)
    e_start = ewald.energy()
    out = []
    for i, sp in enumerate(bulk.species):
        if sp.symbol != "Ni":
            continue
        for k in _near(bulk, i, vac):
            e_end = ewald.energy([(i, ewald.n_atoms + k)])
            info = {"hop_kind": "bulk", "ordering_rank": rank,
                    "site_label": label(rank, i, vac[k], None, None)}
            start, end = hop(bulk, i, vac[k], info)
            out.append(((round(e_start, 3), round(e_end, 3), i, int(k)), start, end))
    return out


def slab_candidates(surface: Structure, kind: str, rank: int) -> list[tuple[tuple, Structure, Structure]]:
    """Every hop of ``kind`` from a top-layer, movable Ni of a slab, as (ranking key, start, end)."""
    if kind not in HOP_KINDS:
        raise ValueError(f"unknown hop kind {kind!r}: choose one of {', '.join(HOP_KINDS)}")
    z = surface.cart_coords[:, 2]
    flags = surface.site_properties.get("selective_dynamics", [[True]] * len(surface))
    ni = [i for i, sp in enumerate(surface.species) if sp.symbol == "Ni" and flags[i][0]]
    top = max(z[i] for i in ni)
    vac = vacancies(surface)
    li = np.array([i for i, sp in enumerate(surface.species) if sp.symbol == "Li"])
    ewald = EwaldTable(surface)
    out = []
    for i in (i for i in ni if z[i] > top - SURFACE_LAYER):
        targets = [("vacancy", int(k), vac[k]) for k in _near(surface, i, vac)]
        if kind == "subsurface":
            near_li = _near(surface, i, surface.frac_coords[li])
            targets += [("li", int(li[k]), surface.frac_coords[li[k]]) for k in near_li]
        for what, k, frac in targets:
            depth = float(z[i] - surface.lattice.get_cartesian_coords(frac)[2])
            if (kind == "subsurface" and depth < MIN_DEPTH) or (
                    kind == "in-plane" and abs(depth) > PLANE_TOL):
                continue
            host, moves = surface, []
            if what == "li":  # make the vacancy: this Li goes to the best vacancy not next to the target
                far = [v for v in range(len(vac))
                       if surface.lattice.get_all_distances(frac, vac[v])[0, 0] > HOP_RANGE[1]]
                if not far:
                    continue
                v = min(far, key=lambda v: (round(ewald.energy([(k, ewald.n_atoms + v)]), 6), v))
                moves = [(k, ewald.n_atoms + v)]
                host = move_li(surface, k, v)
            e_start = ewald.energy(moves)
            target_site = k if what == "li" else ewald.n_atoms + k
            e_end = ewald.energy([*moves, (i, target_site)])
            li_move = host.properties.get("li_move") if what == "li" else None
            info = {"hop_kind": kind, "hop_depth": depth, "ordering_rank": rank, "li_move": li_move,
                    "site_label": label(rank, i, frac, depth, li_move)}
            start, end = hop(host, i, frac, info)
            out.append(((round(e_start, 3), round(e_end, 3), i, what, k), start, end))
    return out


Candidate = tuple[tuple, Structure, Structure]


def distinct(candidates: list[Candidate]) -> list[Candidate]:
    """Candidates sorted by key, symmetry-equivalent (start, end) pairs dropped.

    Only candidates with equal Ewald energies can be equivalent, so StructureMatcher runs
    within those groups only. All candidates share one cell, so the matcher's Niggli/primitive
    reduction is skipped: with it, pymatgen's cache compared whole structures site by site and
    20 bulk candidates took 21 s instead of well under one.
    """
    matcher = StructureMatcher(primitive_cell=False, scale=False, attempt_supercell=False)
    kept: list[tuple[tuple, Structure, Structure]] = []
    for cand in sorted(candidates, key=lambda c: c[0]):
        twins = [k for k in kept if k[0][:2] == cand[0][:2]]
        if not any(matcher.fit(k[1], cand[1], skip_structure_reduction=True)
                   and matcher.fit(k[2], cand[2], skip_structure_reduction=True) for k in twins):
            kept.append(cand)
    return kept


def round_robin(per_ordering: list[list]) -> list:
    """First of each ordering, then the second of each, …"""
    out = []
    for depth in range(max((len(p) for p in per_ordering), default=0)):
        out += [p[depth] for p in per_ordering if depth < len(p)]
    return out
