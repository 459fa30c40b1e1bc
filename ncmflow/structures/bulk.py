"""Layered R-3m bulk models: LiNiO2, ordered Li0.5NiO2 and NCM811.

Vacant Li sites of delithiated models are kept in ``structure.properties["li_vacancies"]``
(fractional coordinates) so that slabs and the Ni-hop end points can find them again.
"""

from __future__ import annotations

import itertools

import numpy as np
from pymatgen.analysis.ewald import EwaldSummation
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

A_EXP = 2.878  # Å, experimental LiNiO2
C_EXP = 14.19  # Å
Z_O = 0.2586  # O 6c z with Ni on 3a (0,0,0): Ni–O 1.97 Å, Li–O 2.11 Å

# Formal charges for Ewald ranking; Ni takes whatever keeps the cell neutral.
FORMAL_CHARGE = {"Li": 1.0, "O": -2.0, "Mn": 4.0, "Co": 3.0}


def linio2(a: float = A_EXP, c: float = C_EXP, z_o: float = Z_O) -> Structure:
    """Conventional hexagonal LiNiO2 (12 atoms): Ni 3a, Li 3b, O 6c."""
    s = Structure.from_spacegroup(
        "R-3m", Lattice.hexagonal(a, c), ["Ni", "Li", "O"], [[0, 0, 0], [0, 0, 0.5], [0, 0, z_o]]
    )
    s = s.get_sorted_structure(key=lambda site: ("Li", "Ni", "O").index(site.specie.symbol))
    s.properties = {"model": "LiNiO2", "hexagonal_lattice": s.lattice.matrix.tolist()}
    return s


def formal_charges(structure: Structure) -> list[float]:
    """Formal charges with Ni balancing the rest (Ni3.5+ in Li0.5NiO2)."""
    fixed = sum(FORMAL_CHARGE.get(sp.symbol, 0.0) for sp in structure.species)
    n_ni = sum(sp.symbol == "Ni" for sp in structure.species)
    q_ni = -fixed / n_ni
    return [FORMAL_CHARGE.get(sp.symbol, q_ni) for sp in structure.species]


def ewald_energy(structure: Structure) -> float:
    """Ewald energy (eV) of the formal-charge point-ion model, the ordering criterion."""
    charged = structure.copy()
    charged.add_oxidation_state_by_site(formal_charges(structure))
    return EwaldSummation(charged).total_energy


def _distinct_orderings(
    parent: Structure, sites: list[int], choose: int
) -> list[tuple[int, ...]]:
    """Symmetrically distinct ways of picking ``choose`` of ``sites`` (parent symmetry)."""
    ops = SpacegroupAnalyzer(parent, symprec=1e-3).get_symmetry_operations()
    frac = parent.frac_coords
    perms = []
    for op in ops:
        moved = op.operate_multi(frac)
        diff = moved[:, None, :] - frac[None, :, :]
        diff -= np.round(diff)
        perms.append(np.argmin(np.linalg.norm(diff @ parent.lattice.matrix, axis=2), axis=1))
    seen: set[tuple[int, ...]] = set()
    distinct = []
    for combo in itertools.combinations(sites, choose):
        if combo in seen:
            continue
        distinct.append(combo)
        for p in perms:
            seen.add(tuple(sorted(int(p[i]) for i in combo)))
    return distinct


def li05nio2(
    supercell: tuple[int, int, int] = (2, 2, 1), a: float = A_EXP, c: float = C_EXP, rank: int = 0
) -> Structure:
    """Li0.5NiO2: a LiNiO2 supercell with half the Li removed in the lowest-Ewald ordering.

    All symmetrically distinct vacancy orderings of the supercell are enumerated and ranked
    by the Ewald energy of formal charges (Li+, O2-, Ni3.5+); ``rank`` picks the ordering
    (0 the lowest, 1 the next, …: the barrier statistics sample more than one). The choice and
    its rank data are recorded in ``properties``. Ties are broken by the lexicographically
    first ordering, so the result is deterministic.
    """
    parent = linio2(a, c)
    parent.make_supercell(supercell)
    li_sites = [i for i, sp in enumerate(parent.species) if sp.symbol == "Li"]
    if len(li_sites) % 2:
        raise ValueError(f"supercell {supercell} has an odd number of Li sites")
    orderings = _distinct_orderings(parent, li_sites, len(li_sites) // 2)
    ranked = _ranked(parent, orderings)
    if not 0 <= rank < len(ranked):
        raise ValueError(
            f"Li0.5NiO2 {supercell} has {len(ranked)} distinct orderings: rank {rank} does not exist")
    energy, removed = ranked[rank]
    result = _remove(parent, removed)
    result.properties = {
        "model": "Li0.5NiO2",
        "hexagonal_lattice": linio2(a, c).lattice.matrix.tolist(),
        "supercell": list(supercell),
        "li_vacancies": parent.frac_coords[list(removed)].tolist(),
        "vacancy_ordering": {
            "criterion": "lowest Ewald energy of formal charges (Li+, O2-, Ni3.5+)",
            "n_distinct": len(orderings),
            "rank": rank,
            "ewald_energy_eV": float(energy),
            "lowest_ewald_energy_eV": float(ranked[0][0]),
            "next_ewald_energy_eV": float(ranked[rank + 1][0]) if len(ranked) > rank + 1 else None,
        },
    }
    return result


def ewald_matrix(structure: Structure) -> np.ndarray:
    """Φ with E = qᵀΦq for any neutral charge vector q on these sites (one Ewald sum with unit
    charges; ranking orderings this way agrees with ``ewald_energy`` to 1e-9 eV, 17× faster)."""
    unit = structure.copy()
    unit.add_oxidation_state_by_site([1.0] * len(unit))
    return EwaldSummation(unit).total_energy_matrix


def _ranked(parent: Structure, orderings: list[tuple[int, ...]]) -> list[tuple[float, tuple[int, ...]]]:
    """(Ewald energy, removed sites) per ordering, lowest first, ties by the sites."""
    phi = ewald_matrix(parent)
    out = []
    for removed in orderings:
        q = np.zeros(len(parent))
        kept = [i for i in range(len(parent)) if i not in removed]
        q[kept] = formal_charges(_remove(parent, removed))
        out.append((float(q @ phi @ q), removed))
    return sorted(out, key=lambda t: (round(t[0], 6), t[1]))


def _remove(parent: Structure, indices: tuple[int, ...]) -> Structure:
    s = parent.copy()
    s.remove_sites(list(indices))
    return s


def ncm811(seed: int = 0, a: float = A_EXP, c: float = C_EXP) -> Structure:
    """LiNi0.8Mn0.1Co0.1O2 in the smallest cell with exactly 8:1:1 (10 formula units, 40 atoms).

    The cell is a 5×2 in-plane supercell of the one-layer primitive cell of LiNiO2. Of all
    Mn/Co placements, the ones with the lowest Ewald energy (Mn4+, Co3+, Ni balancing) are
    kept — they keep Mn and Co apart — and ``seed`` picks among those degenerate in energy.
    """
    hexa = linio2(a, c)
    # one-layer cell: in-plane a1, a2 of the hexagonal cell and the rhombohedral stacking vector
    h = hexa.lattice.matrix
    layer = Structure(
        Lattice([h[0], h[1], (2 * h[0] + h[1] + h[2]) / 3]),
        hexa.species,
        hexa.cart_coords,
        coords_are_cartesian=True,
        to_unit_cell=True,
    )
    layer.merge_sites(tol=0.05, mode="delete")
    layer.make_supercell([5, 2, 1])
    tm = [i for i, sp in enumerate(layer.species) if sp.symbol == "Ni"]
    scored = []
    for mn, co in itertools.permutations(tm, 2):
        trial = layer.copy()
        trial.replace(mn, "Mn")
        trial.replace(co, "Co")
        scored.append((round(ewald_energy(trial), 4), mn, co, trial))
    best = min(e for e, *_ in scored)
    ties = [t for t in scored if t[0] == best]
    ties = StructureMatcher().group_structures([t[3] for t in ties])
    choice = ties[np.random.default_rng(seed).integers(len(ties))][0]
    choice = choice.get_sorted_structure(
        key=lambda site: ("Li", "Ni", "Mn", "Co", "O").index(site.specie.symbol)
    )
    choice.properties = {
        "model": "NCM811",
        "hexagonal_lattice": hexa.lattice.matrix.tolist(),
        "seed": seed,
        "tm_ordering": {
            "criterion": "lowest Ewald energy (Mn4+, Co3+, Ni balancing); seed picks among ties",
            "n_lowest_distinct": len(ties),
            "ewald_energy_eV": float(best),
        },
    }
    return choice
