"""cPAN on a slab, bound through one N lone pair to a surface Ni (the paper's Ni–N bond)."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Molecule, Structure
from scipy.spatial.transform import Rotation

NI_N = 2.0  # Å, Ni–N coordination bond
MIN_CLEARANCE = 1.8  # Å, any other cPAN atom to any slab atom
MIN_IMAGE_GAP = 3.0  # Å, molecule to its own periodic image
MAX_TILTS = (10.0, 20.0, 30.0)  # degrees the N lone pair may lean off the Ni–N axis


def grow(slab: Structure, na: int, nb: int) -> Structure:
    """In-plane supercell that keeps the Li-vacancy list and per-site flags consistent."""
    vac = np.array(slab.properties.get("li_vacancies", []), dtype=float).reshape(-1, 3)
    vac_cart = slab.lattice.get_cartesian_coords(vac)
    out = slab.copy()
    out.make_supercell([na, nb, 1])
    a, b = slab.lattice.matrix[:2]
    cart = [v + i * a + j * b for v in vac_cart for i in range(na) for j in range(nb)]
    out.properties = {**slab.properties, "li_vacancies":
                      out.lattice.get_fractional_coords(np.array(cart).reshape(-1, 3)).tolist()}
    return out


def open_direction(slab: Structure, index: int) -> np.ndarray:
    """Unit vector from a surface cation towards its missing ligand (away from its O)."""
    neighbours = slab.get_neighbors(slab[index], 2.4)
    vec = -sum((n.coords - slab[index].coords) / n.nn_distance for n in neighbours)
    if np.linalg.norm(vec) < 0.3 or vec[2] <= 0:
        return np.array([0.0, 0.0, 1.0])
    return vec / np.linalg.norm(vec)


def lone_pair_direction(mol: Molecule, index: int) -> np.ndarray:
    """Direction of an N lone pair: opposite to the sum of its bond vectors."""
    neighbours = mol.get_neighbors(mol[index], 1.7)
    vec = -sum((n.coords - mol[index].coords) / n.nn_distance for n in neighbours)
    return vec / np.linalg.norm(vec)


def _align(u: np.ndarray, v: np.ndarray) -> Rotation:
    """The rotation taking unit vector u onto unit vector v."""
    rot, _ = Rotation.align_vectors([v], [u])
    return rot


def _clearances(slab: Structure, mol_cart: np.ndarray, skip: int, avoid: np.ndarray) -> tuple[float, float]:
    """(closest cPAN–slab contact except the bound N, closest cPAN–own-image contact).

    ``avoid`` are extra points (fractional) to treat as atoms, scaled so that NI_N counts
    as MIN_CLEARANCE: the site a Ni will hop into must not be crowded by the molecule.
    """
    lat = slab.lattice
    others = np.delete(mol_cart, skip, axis=0)
    frac = lat.get_fractional_coords(others)
    d_slab = lat.get_all_distances(frac, slab.frac_coords).min()
    if len(avoid):
        d_slab = min(d_slab, lat.get_all_distances(frac, avoid).min() * MIN_CLEARANCE / NI_N)
    a, b = lat.matrix[:2]
    shifts = [i * a + j * b for i in (-1, 0, 1) for j in (-1, 0, 1) if i or j]
    d_img = min(np.linalg.norm(mol_cart[:, None] - (mol_cart + s)[None], axis=2).min() for s in shifts)
    return float(d_slab), float(d_img)


def interface(
    slab: Structure, molecule: Molecule, n_index: int | None = None, ni_index: int | None = None,
    n_kind: str = "pyridinic", max_grow: int = 4, keep_clear: list | None = None,
) -> Structure:
    """cPAN@slab with N ``n_index`` (default: the first ``n_kind`` N) bound to Ni ``ni_index``.

    The N sits 2.0 Å from the Ni along the Ni's open coordination direction with its lone pair
    pointing at the Ni (leaning up to 30° off that axis only if nothing fits otherwise); of the
    spins about the axis that fit, the one with the largest clearance to the slab wins. The
    slab grows in-plane (shorter axis first) until no other cPAN atom is within 1.8 Å of the
    slab and the molecule is ≥ 3 Å from its periodic image (``max_grow=0``: never grow, raise if
    it does not fit). ``keep_clear`` (Cartesian points,
    e.g. the vacancy a Ni will hop into) must stay ≥ 2.0 Å from every cPAN atom.
    """
    kinds = molecule.properties.get("n_sites", {})
    if n_index is None:
        picks = sorted(int(i) for i, k in kinds.items() if k == n_kind)
        if not picks:
            raise ValueError(f"the molecule has no {n_kind} N (has: {sorted(set(kinds.values()))})")
        n_index = picks[0]
    if molecule[n_index].specie.symbol != "N":
        raise ValueError(f"molecule site {n_index} is {molecule[n_index].specie}, not N")
    if ni_index is None:
        ni = [i for i, sp in enumerate(slab.species) if sp.symbol == "Ni"]
        ni_index = max(ni, key=lambda i: (round(slab.cart_coords[i, 2], 2), -i))
    na = nb = 1
    for _ in range(max(1, 2 * max_grow)):  # max_grow=0: the slab's own cell or nothing
        host = grow(slab, na, nb)
        avoid = host.lattice.get_fractional_coords(np.array(keep_clear or [], dtype=float).reshape(-1, 3))
        placed = _place(host, molecule, n_index, ni_index * na * nb, avoid)
        if placed is not None:
            return placed
        if host.lattice.a <= host.lattice.b:
            na += 1
        else:
            nb += 1
    raise ValueError("cPAN does not fit: grow the slab or use a shorter oligomer")


def _tilts(u: np.ndarray) -> list[Rotation]:
    """Lone-pair tilts away from the Ni–N axis, untilted first: 0°, then 10–30° all round."""
    side = np.cross(u, [1.0, 0.0, 0.0] if abs(u[0]) < 0.9 else [0.0, 1.0, 0.0])
    side /= np.linalg.norm(side)
    out = [Rotation.identity()]
    for degrees in MAX_TILTS:
        for phi in np.linspace(0, 2 * np.pi, 8, endpoint=False):
            axis = Rotation.from_rotvec(phi * u).apply(side)
            out.append(Rotation.from_rotvec(np.radians(degrees) * axis))
    return out


def _place(
    host: Structure, molecule: Molecule, n_index: int, ni_index: int, avoid: np.ndarray
) -> Structure | None:
    u = open_direction(host, ni_index)
    target = host.cart_coords[ni_index] + NI_N * u
    base = _align(lone_pair_direction(molecule, n_index), -u)
    rel = base.apply(molecule.cart_coords - molecule.cart_coords[n_index])
    best = None
    for tilt in _tilts(u):
        for angle in np.linspace(0, 2 * np.pi, 36, endpoint=False):
            cart = (tilt * Rotation.from_rotvec(angle * u)).apply(rel) + target
            d_slab, d_img = _clearances(host, cart, n_index, avoid)
            if d_slab >= MIN_CLEARANCE and d_img >= MIN_IMAGE_GAP and (best is None or d_slab > best[1]):
                best = (cart, d_slab, d_img)
        if best is not None:
            break  # the least tilted orientation that fits wins
    if best is None:
        return None
    cart, d_slab, d_img = best
    z_all = np.concatenate([host.cart_coords[:, 2], cart[:, 2]])
    vacuum = host.properties.get("vacuum", 15.0)
    lat = host.lattice
    lattice = Lattice([lat.matrix[0], lat.matrix[1], [0, 0, np.ptp(z_all) + vacuum]])
    shift = np.array([0, 0, vacuum / 2 - z_all.min()])
    species = list(host.species) + list(molecule.species)
    coords = np.vstack([host.cart_coords, cart]) + shift
    fixed = host.site_properties.get("selective_dynamics", [[True] * 3] * len(host))
    vac = lat.get_cartesian_coords(np.array(host.properties.get("li_vacancies", [])).reshape(-1, 3))
    out = Structure(
        lattice, species, coords, coords_are_cartesian=True,
        site_properties={"selective_dynamics": list(fixed) + [[True] * 3] * len(molecule)},
    )
    out.properties = {
        **host.properties, "model": f"cPAN@{host.properties.get('model', 'slab')}",
        "li_vacancies": lattice.get_fractional_coords(vac + shift).tolist(),
        "ni_index": ni_index, "n_index": len(host) + n_index,
        "n_kind": molecule.properties.get("n_sites", {}).get(str(n_index), "N"),
        "ni_n_distance": float(np.linalg.norm(coords[ni_index] - coords[len(host) + n_index])),
        "cpan_slab_clearance": d_slab, "cpan_image_gap": d_img,
        "cpan": {k: v for k, v in molecule.properties.items() if k != "n_sites"},
        "cpan_species": [sp.symbol for sp in molecule.species],
    }
    return out


def cpan_sites(structure: Structure) -> list[int]:
    """Indices of the cPAN atoms of an :func:`interface` structure (they follow the slab's)."""
    n_mol = len(structure.properties.get("cpan_species", []))
    if not n_mol:
        raise ValueError("not a cPAN@slab structure: no 'cpan_species' in its properties")
    return list(range(len(structure) - n_mol, len(structure)))


def split_interface(structure: Structure) -> tuple[Structure, Structure]:
    """(slab, cPAN) cut out of cPAN@slab in its cell and positions: the charge density
    difference needs the three densities on one grid, so the parts keep the whole cell."""
    mol = cpan_sites(structure)
    slab_part = Structure.from_sites([structure[i] for i in range(mol[0])])
    cpan_part = Structure.from_sites([structure[i] for i in mol])
    slab_part.properties = {"model": "slab part",
                            "li_vacancies": structure.properties.get("li_vacancies", [])}
    cpan_part.properties = {"model": "cPAN part"}
    return slab_part, cpan_part


def electronic_model(layers: int = 2, n_units: int = 2, degree: float = 1.0, seed: int = 0) -> Structure:
    """The smallest cPAN@Li0.5NiO2(104) that keeps the Ni–N bond: the local-DFT model.

    Two (104) layers (42 atoms, the bottom one fixed) and a two-unit fully cyclized cPAN
    fragment (one pyridinic ring with its imine, C6N2H10) bound through the ring N: 60 atoms,
    small enough for spin-polarized GPAW LCAO on a laptop. It answers what the bond does to the
    electrons, not the barrier: that is the migration models' job.
    """
    from ncmflow.structures.bulk import li05nio2
    from ncmflow.structures.cpan import cpan
    from ncmflow.structures.slab import slab

    surface = slab(li05nio2(), "104", layers=layers, fixed_layers=1)
    return interface(surface, cpan(n_units, degree, seed))
