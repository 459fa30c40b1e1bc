"""Slabs of the layered models, cut in the hexagonal R-3m setting.

The slab is cut from the 12-atom LiNiO2 parent (fast, and the facet means the same thing
for every model), then decorated with the given bulk's species: Li vacancies and TM
identities are copied site by site, so a Li0.5NiO2 or NCM811 slab keeps its bulk ordering.
Of the registries of that ordering against the surface, the stoichiometric ones with the
smallest formal-charge dipole (non-polar where one exists) are kept, then the one with the
lowest Ewald energy.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.core.surface import SlabGenerator

from ncmflow.structures.bulk import C_EXP, Z_O, ewald_matrix, formal_charges, linio2

VACANCY = "vacancy"
DOPANTS = ("Mn", "Co")
FACETS = {"104": (1, 0, 4), "003": (0, 0, 3)}


def parse_facet(facet: str | tuple[int, int, int]) -> tuple[int, int, int]:
    """'104' or (1, 0, 4) → (1, 0, 4); only the two facets the study uses are known."""
    key = "".join(str(i) for i in facet) if not isinstance(facet, str) else facet.strip("()")
    if key not in FACETS:
        raise ValueError(f"unknown facet {facet!r}: choose one of {', '.join(FACETS)}")
    return FACETS[key]


def _hex_parent(bulk: Structure) -> Structure:
    """The 12-atom LiNiO2 cell with the bulk's hexagonal a and c (all TM sites as Ni)."""
    h = np.array(bulk.properties.get("hexagonal_lattice", linio2().lattice.matrix))
    a, c = np.linalg.norm(h[0]), np.linalg.norm(h[2])
    return linio2(a, c if c else C_EXP, Z_O)


def _full_bulk(bulk: Structure) -> tuple[np.ndarray, list[str]]:
    """Fractional coordinates and labels of every cation/anion site, vacancies included."""
    labels = [sp.symbol for sp in bulk.species]
    frac = bulk.frac_coords
    vac = np.array(bulk.properties.get("li_vacancies", []), dtype=float).reshape(-1, 3)
    return np.vstack([frac, vac]), labels + [VACANCY] * len(vac)


def _commensurate(vector: np.ndarray, lattice: Lattice, max_mult: int = 6) -> int:
    """Smallest multiple of an in-plane vector that is a lattice vector of the bulk cell."""
    f = lattice.get_fractional_coords(vector)
    for k in range(1, max_mult + 1):
        if np.allclose(k * f, np.round(k * f), atol=1e-3):
            return k
    raise ValueError("slab vector is incommensurate with the bulk ordering")


def _decorate(slab: Structure, bulk: Structure, anchor: int) -> Structure | None:
    """Copy bulk species onto slab sites, aligning slab site 0 with bulk site ``anchor``."""
    frac, labels = _full_bulk(bulk)
    offset = bulk.lattice.get_cartesian_coords(frac[anchor]) - slab.cart_coords[0]
    f = bulk.lattice.get_fractional_coords(slab.cart_coords + offset)
    d = f[:, None, :] - frac[None, :, :]
    d -= np.round(d)
    dist = np.linalg.norm(d @ bulk.lattice.matrix, axis=2)
    match = dist.argmin(axis=1)
    if dist[np.arange(len(slab)), match].max() > 0.1:
        return None
    species = [labels[m] for m in match]
    li_site = [s in ("Li", VACANCY) for s in species]
    if li_site != [p.symbol == "Li" for p in slab.species]:
        return None
    out = slab.copy()
    vacancies = [i for i, s in enumerate(species) if s == VACANCY]
    for i, s in enumerate(species):
        if s != VACANCY:
            out.replace(i, s)
    vac_frac = out.frac_coords[vacancies]
    out.remove_sites(vacancies)
    out.properties["li_vacancies"] = vac_frac.tolist()
    return out


def _layer_index(slab: Structure, spacing: float) -> np.ndarray:
    """Atomic planes counted from the bottom, by height along the surface normal."""
    a, b, _ = slab.lattice.matrix
    normal = np.cross(a, b) / np.linalg.norm(np.cross(a, b))
    z = slab.cart_coords @ normal
    return np.floor((z - z.min()) / spacing + 0.25).astype(int)


def _dipole(slab: Structure) -> float:
    """Formal-charge dipole along the normal (e·Å); ~0 for a non-polar termination."""
    z = slab.cart_coords[:, 2]
    return float(np.dot(formal_charges(slab), z - z.mean()))


def _standard_frame(slab: Structure, vacuum: float) -> Structure:
    """Rotate so that a lies along x and the normal along z; centre with exactly ``vacuum``."""
    a, b, gamma = *slab.lattice.abc[:2], slab.lattice.gamma
    flat = Lattice.from_parameters(a, b, slab.lattice.c, 90, 90, gamma)
    vac = np.array(slab.properties.get("li_vacancies", []), dtype=float).reshape(-1, 3)
    cart = flat.get_cartesian_coords(np.vstack([slab.frac_coords, vac]))
    z_atoms = cart[: len(slab), 2]
    span = np.ptp(z_atoms)
    cart[:, 2] += (span + vacuum) / 2 - (z_atoms.min() + span / 2)
    lattice = Lattice.from_parameters(a, b, span + vacuum, 90, 90, gamma)
    frac = lattice.get_fractional_coords(cart)
    properties = {**slab.properties, "li_vacancies": frac[len(slab):].tolist()}
    return Structure(lattice, slab.species, frac[: len(slab)], properties=properties)


def _cut(bulk: Structure, hkl: tuple[int, int, int], layers: int, vacuum: float,
         in_plane: tuple[int, int]) -> Structure:
    """The stoichiometric, least polar, lowest-Ewald slab carrying ``bulk``'s ordering."""
    parent = _hex_parent(bulk)
    spacing = parent.lattice.d_hkl(hkl)
    gen = SlabGenerator(
        parent, hkl, min_slab_size=(layers - 0.5) * spacing, min_vacuum_size=vacuum,
        center_slab=True, lll_reduce=True, primitive=True, reorient_lattice=False,
    )
    candidates = [s for s in gen.get_slabs() if not s.is_polar()] or gen.get_slabs()
    target = bulk.composition.reduced_composition
    n_full = len(_full_bulk(bulk)[1])
    best: tuple[tuple[float, float], Structure] | None = None
    for candidate in candidates:
        cut = Structure.from_sites(candidate.get_orthogonal_c_slab())
        layer = _layer_index(cut, spacing)
        cut = Structure.from_sites([cut[i] for i in np.flatnonzero(layer >= layer.max() - layers + 1)])
        mult = [_commensurate(cut.lattice.matrix[i], bulk.lattice) * in_plane[i] for i in range(2)]
        cut.make_supercell([mult[0], mult[1], 1])
        phi, where = None, {tuple(np.round(f, 6)): i for i, f in enumerate(cut.frac_coords)}
        for anchor in range(n_full):
            trial = _decorate(cut, bulk, anchor)
            if trial is None or trial.composition.reduced_composition != target:
                continue
            phi = ewald_matrix(cut) if phi is None else phi  # one Ewald sum per cut, not per registry
            q = np.zeros(len(cut))
            q[[where[tuple(np.round(f, 6))] for f in trial.frac_coords]] = formal_charges(trial)
            key = (round(abs(_dipole(trial)), 3), round(float(q @ phi @ q), 6))
            if best is None or key < best[0]:
                best = (key, trial)
    if best is None:
        raise ValueError(f"no stoichiometric {hkl} slab of {bulk.composition.reduced_formula}")
    return best[1]


def _dope(cut: Structure, bulk: Structure, fractions: dict[str, float]) -> Structure:
    """Replace Ni by Mn/Co in the bulk's ratio, seeded, with no two dopants nearest neighbours.

    The slab grows along a until the TM count allows the exact ratio (10 TM sites per repeat for
    NCM811); sites are visited in a seeded random order and taken unless next to a dopant.
    """
    ni = [i for i, sp in enumerate(cut.species) if sp.symbol == "Ni"]
    grow = next(k for k in range(1, 11) if all(abs(f * len(ni) * k - round(f * len(ni) * k)) < 1e-6
                                                 for f in fractions.values()))
    cut = cut.copy()
    cut.make_supercell([grow, 1, 1])
    ni = [i for i, sp in enumerate(cut.species) if sp.symbol == "Ni"]
    counts = {el: round(f * len(ni)) for el, f in fractions.items()}
    rng = np.random.default_rng(bulk.properties.get("seed", 0))
    dist = cut.distance_matrix
    need = sum(counts.values())
    for _ in range(200):  # seeded random sequential placement, skipping nearest neighbours
        picks: list[int] = []
        for site in rng.permutation(ni):
            if all(dist[site, p] > 3.0 for p in picks):
                picks.append(int(site))
            if len(picks) == need:
                break
        if len(picks) == need:
            break
    else:
        raise ValueError("could not place the dopants apart: use more layers or a wider slab")
    elements = [el for el, n in counts.items() for _ in range(n)]
    for index, element in zip(picks, elements, strict=True):
        cut.replace(index, element)
    cut.properties["tm_ordering"] = {"criterion": "seeded draw, no Mn/Co nearest neighbours",
                                     "seed": bulk.properties.get("seed", 0)}
    return cut


def slab(
    bulk: Structure,
    facet: str | tuple[int, int, int] = "104",
    layers: int = 4,
    vacuum: float = 15.0,
    fixed_layers: int = 2,
    in_plane: tuple[int, int] = (1, 1),
) -> Structure:
    """A symmetric, stoichiometric slab of ``bulk`` with its bottom layers fixed.

    ``layers`` counts (hkl) planes; ``fixed_layers`` of them at the bottom get
    ``selective_dynamics`` = False. ``in_plane`` multiplies the smallest in-plane cell that
    carries the bulk ordering. Li vacancies go to ``properties["li_vacancies"]``.
    """
    hkl = parse_facet(facet)
    if layers < 2 or not 0 <= fixed_layers < layers:
        raise ValueError(f"need layers >= 2 and 0 <= fixed_layers < layers (got {layers}, {fixed_layers})")
    if vacuum <= 0:
        raise ValueError(f"vacuum must be positive (got {vacuum})")
    comp = bulk.composition
    tm = sum(comp[el] for el in ("Ni", *DOPANTS))
    dopants = {el: comp[el] / tm for el in DOPANTS if el in comp}  # fraction of the TM sites
    if dopants:  # NCM811's 10-TM cell is incommensurate with the slab cells: dope the LiNiO2 slab
        cut = _dope(_cut(_hex_parent(bulk), hkl, layers, vacuum, in_plane), bulk, dopants)
    else:
        cut = _cut(bulk, hkl, layers, vacuum, in_plane)
    spacing = _hex_parent(bulk).lattice.d_hkl(hkl)
    out = _standard_frame(cut.get_sorted_structure(key=lambda s: s.specie.X), vacuum)
    layer = _layer_index(out, spacing)
    out.add_site_property("selective_dynamics", [[bool(n >= fixed_layers)] * 3 for n in layer])
    out.properties.update(
        model=f"{bulk.properties.get('model', bulk.composition.reduced_formula)} "
        f"({''.join(map(str, hkl))}) slab",
        facet=list(hkl), layers=layers, fixed_layers=fixed_layers, vacuum=vacuum,
        layer_spacing=spacing, hexagonal_lattice=bulk.properties.get("hexagonal_lattice"),
        dipole_eA=_dipole(out),
    )
    return out
