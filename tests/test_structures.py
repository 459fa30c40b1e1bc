"""Structure builders: compositions, distances, determinism, file round trips."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure

from ncmflow import structures as st
from ncmflow.structures.cpan import bond_counts
from ncmflow.structures.files import read_structure, write_structure
from ncmflow.summary import key_distances


def shortest(obj, a: str, b: str) -> float:
    return key_distances(obj)[f"{a}–{b} shortest"]


@pytest.fixture(scope="module")
def li05():
    return st.li05nio2()


@pytest.fixture(scope="module")
def hops():
    return {m: st.ni_hop_endpoints(m) for m in st.MODELS}


def test_linio2_geometry():
    s = st.linio2()
    assert s.composition.reduced_formula == "LiNiO2"
    assert s.lattice.a == pytest.approx(2.878) and s.lattice.c == pytest.approx(14.19)
    assert shortest(s, "Ni", "O") == pytest.approx(1.97, abs=0.01)
    li = s.indices_from_symbol("Li")[0]
    assert min(n.nn_distance for n in s.get_neighbors(s[li], 2.5)) == pytest.approx(2.11, abs=0.01)


def test_li05nio2_half_delithiated_and_recorded(li05):
    comp = li05.composition
    assert comp["Li"] * 2 == comp["Ni"] == 12 and comp["O"] == 24
    info = li05.properties["vacancy_ordering"]
    assert info["n_distinct"] > 1 and "Ewald" in info["criterion"]
    assert info["ewald_energy_eV"] <= info["next_ewald_energy_eV"]
    assert len(li05.properties["li_vacancies"]) == 6


def test_ncm811_exact_ratio_and_dispersed():
    s = st.ncm811(seed=0)
    c = s.composition
    assert (c["Ni"], c["Mn"], c["Co"], c["Li"], c["O"]) == (8, 1, 1, 10, 20)
    mn, co = s.indices_from_symbol("Mn")[0], s.indices_from_symbol("Co")[0]
    assert s.get_distance(mn, co) > 3.0  # not nearest neighbours (2.878 Å)
    assert 1.85 <= shortest(s, "Ni", "O") <= 2.10


def test_ncm811_deterministic_for_seed():
    assert st.ncm811(seed=3) == st.ncm811(seed=3)


@pytest.mark.parametrize("facet", ["104", "003"])
def test_slab_vacuum_stoichiometry_and_fixed_layers(li05, facet):
    s = st.slab(li05, facet, layers=4, vacuum=15.0, fixed_layers=2)
    assert s.composition.reduced_composition == li05.composition.reduced_composition
    z = s.cart_coords[:, 2]
    assert s.lattice.c - np.ptp(z) >= 15.0 - 1e-6
    fixed = np.array([not sd[0] for sd in s.site_properties["selective_dynamics"]])
    assert 0 < fixed.sum() < len(s)
    assert z[fixed].max() < z[~fixed].min()  # the fixed atoms are the bottom ones


def test_slab_104_of_linio2_is_non_polar():
    s = st.slab(st.linio2(), "104")
    assert abs(s.properties["dipole_eA"]) < 1e-6


def test_cpan_chemistry():
    m = st.cpan(5, 0.8, seed=1)
    p = m.properties
    assert (p["nitrile_CN"], p["ring_CN"], p["imine_CN"]) == (1, 3, 1)
    assert p["cyclization_index"] == pytest.approx(0.8)
    assert bond_counts(p["smiles"]) == {k: p[k] for k in ("nitrile_CN", "ring_CN", "imine_CN")}
    assert 1.13 <= shortest(m, "C", "N") <= 1.18  # the C≡N
    assert shortest(m, "C", "C") >= 1.35 and max_bonded(m, "C", "C") <= 1.56
    assert 1.07 <= shortest(m, "C", "H") <= 1.12
    ring_cn = [m.get_distance(i, j) for i in m.indices_from_symbol("C")
               for j in m.indices_from_symbol("N") if 1.2 < m.get_distance(i, j) < 1.33]
    assert len(ring_cn) == 4 and all(1.27 <= d <= 1.36 for d in ring_cn)  # 3 ring + 1 imine C=N


def max_bonded(m, a: str, b: str) -> float:
    return max(m.get_distance(i, j) for i in m.indices_from_symbol(a)
               for j in m.indices_from_symbol(b) if i != j and m.get_distance(i, j) < 1.7)


def test_cpan_uncyclized_and_deterministic():
    p = st.cpan(4, 0.0).properties
    assert (p["nitrile_CN"], p["ring_CN"], p["cyclization_index"]) == (4, 0, 0.0)
    a, b = st.cpan(4, 0.5, seed=7), st.cpan(4, 0.5, seed=7)
    assert np.allclose(a.cart_coords, b.cart_coords)


@pytest.mark.parametrize(("n", "degree", "msg"), [(1, 0.5, "n >= 2"), (5, 1.2, "[0, 1]"),
                                                  (5, 0.2, "closes no ring")])
def test_cpan_bad_input(n, degree, msg):
    with pytest.raises(ValueError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        st.cpan(n, degree)


def test_interface_ni_n_bond_and_clearances(li05):
    s = st.interface(st.slab(li05, "104"), st.cpan(4, 0.75))
    p = s.properties
    assert s.get_distance(p["ni_index"], p["n_index"]) == pytest.approx(2.0, abs=0.1)
    n_slab = len(s) - 32
    mol = list(range(n_slab, len(s)))
    others = [i for i in mol if i != p["n_index"]]
    d = s.distance_matrix
    assert d[np.ix_(others, range(n_slab))].min() >= 1.8
    assert p["cpan_image_gap"] >= 3.0


def test_no_close_contacts_anywhere(hops):
    for start, end in hops.values():
        for s in (start, end):
            assert key_distances(s)["closest contact"] > 0.9


@pytest.mark.parametrize("model", st.MODELS)
def test_migration_endpoints_differ_in_one_ni(hops, model):
    start, end = hops[model]
    assert start.species == end.species
    moved = [i for i in range(len(start))
             if start[i].distance(end[i]) > 1e-6]
    assert len(moved) == 1 and start[moved[0]].specie.symbol == "Ni"
    assert 2.5 <= start[moved[0]].distance(end[moved[0]]) <= 3.5
    assert 1.85 <= min(n.nn_distance for n in end.get_neighbors(end[moved[0]], 2.6)) <= 2.3


def test_cpan_model_coordinates_the_hopping_ni(hops):
    start, _ = hops["cpan"]
    p = start.properties
    assert p["ni_index"] == p["moved_index"]
    assert start.get_distance(p["ni_index"], p["n_index"]) == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("ext", [".cif", ".vasp", ".extxyz", ".json"])
def test_round_trip_every_writer(tmp_path, li05, ext):
    path = write_structure(li05, tmp_path / f"model{ext}")
    back = read_structure(path)
    assert back.composition == li05.composition
    assert np.allclose(back.lattice.abc, li05.lattice.abc, atol=1e-4)
    assert Structure.matches(back, li05)


def test_broken_cif_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.cif"
    bad.write_text("data_x\n_cell_length_a 3\nloop_\n_atom_site_label\nNi 0 0\n")
    with pytest.raises(ValueError, match="does not parse"):
        read_structure(bad)


@pytest.mark.parametrize("facet", ["104", "003"])
def test_ncm811_slab_keeps_ratio_and_dopants_apart(facet):
    s = st.slab(st.ncm811(seed=0), facet)
    c = s.composition
    assert c["Ni"] == 8 * c["Mn"] == 8 * c["Co"] and c["Li"] == c["Ni"] + c["Mn"] + c["Co"]
    dopants = [i for i, sp in enumerate(s.species) if sp.symbol in ("Mn", "Co")]
    d = s.distance_matrix[np.ix_(dopants, dopants)] + np.diag([np.inf] * len(dopants))
    assert d.min() > 3.0  # no Mn/Co pair on nearest-neighbour TM sites (2.88 Å)
    assert st.slab(st.ncm811(seed=0), facet) == s  # deterministic for the seed
