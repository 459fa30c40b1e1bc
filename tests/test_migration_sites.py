"""Hop sites: subsurface vs in-plane, bare and cPAN paired, several sites and Li orderings."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher

from ncmflow import structures as st
from ncmflow.structures.bulk import ewald_energy
from ncmflow.structures.sites import EwaldTable, move_li
from ncmflow.summary import key_distances


def moved_ni(start, end) -> int:
    moved = [i for i in range(len(start)) if start[i].distance(end[i]) > 1e-6]
    assert len(moved) == 1 and start[moved[0]].specie.symbol == "Ni"
    return moved[0]


@pytest.fixture(scope="module")
def pairs():
    return {(m, hop, k): st.ni_hop_endpoints(m, hop, k)
            for m in ("bare", "cpan") for hop in st.HOP_KINDS for k in (0, 1)}


@pytest.mark.parametrize("site", [0, 1])
def test_subsurface_hop_goes_down_with_the_same_ni_and_vacancy_in_both_models(pairs, site):
    (bs, be), (cs, ce) = pairs["bare", "subsurface", site], pairs["cpan", "subsurface", site]
    i = moved_ni(bs, be)
    assert moved_ni(cs, ce) == i == bs.properties["moved_index"] == cs.properties["moved_index"]
    depth = bs.cart_coords[i, 2] - be.cart_coords[i, 2]
    assert depth >= 1.5 and depth == pytest.approx(bs.properties["hop_depth"], abs=1e-6)
    assert np.allclose(be.cart_coords[i], ce.cart_coords[i], atol=1e-8)  # the same vacancy
    n_slab = len(bs)  # the bare model is the cPAN model without its molecule: same cell, same atoms
    assert np.allclose(cs.cart_coords[:n_slab], bs.cart_coords) and cs.lattice == bs.lattice
    assert [sp.symbol for sp in cs.species[n_slab:]] == cs.properties["cpan_species"]
    assert 2.5 <= bs.properties["hop_distance"] <= 3.5


@pytest.mark.parametrize("model", ["bare", "cpan"])
def test_subsurface_and_in_plane_models_have_the_same_composition(pairs, model):
    sub, flat = pairs[model, "subsurface", 0][0], pairs[model, "in-plane", 0][0]
    assert sub.composition == flat.composition
    start, end = pairs[model, "in-plane", 0]
    i = moved_ni(start, end)
    assert abs(start.cart_coords[i, 2] - end.cart_coords[i, 2]) < 0.5  # stays in the surface plane


def test_the_li_that_made_the_vacancy_is_recorded_and_composition_kept(pairs):
    start, end = pairs["bare", "subsurface", 0]  # site 0: lowest-Ewald ordering, no subsurface vacancy
    move = start.properties["li_move"]
    assert move is not None and start.properties["ordering_rank"] == 0
    i = start.properties["moved_index"]
    origin = start.lattice.get_cartesian_coords(move["from"])
    assert start.lattice.get_all_distances(end.frac_coords[i], move["from"])[0, 0] < 1e-6
    li = start[move["index"]]
    assert li.specie.symbol == "Li" and np.allclose(li.frac_coords, move["to"])
    assert np.linalg.norm(li.coords - origin) > 3.5  # it went to a vacancy away from the hop
    assert start.composition == st.slab(st.li05nio2(), "104", layers=4).composition


def test_sites_sample_two_li_orderings_and_are_not_equivalent(pairs):
    a, b = pairs["bare", "subsurface", 0], pairs["bare", "subsurface", 1]
    assert {a[0].properties["ordering_rank"], b[0].properties["ordering_rank"]} == {0, 1}
    bulk = [st.ni_hop_endpoints("bulk", site=k) for k in range(3)]
    matcher = StructureMatcher(primitive_cell=False, scale=False, attempt_supercell=False)
    assert not matcher.fit(bulk[0][1], bulk[2][1])  # site 2 is a distinct end point of ordering 0
    assert bulk[0][0].properties["ordering_rank"] == bulk[2][0].properties["ordering_rank"] == 0
    assert bulk[1][0].properties["ordering_rank"] == 1


def test_no_close_contacts_at_any_sampled_site(pairs):
    for start, end in pairs.values():
        for s in (start, end):
            assert key_distances(s)["closest contact"] > 0.9


def test_ewald_table_equals_a_full_ewald_sum():
    surface = st.slab(st.li05nio2(), "104", layers=4)
    table = EwaldTable(surface)
    li = next(i for i, sp in enumerate(surface.species) if sp.symbol == "Li")
    moved = move_li(surface, li, 3)
    assert table.energy() == pytest.approx(ewald_energy(surface), abs=1e-6)
    assert table.energy([(li, table.n_atoms + 3)]) == pytest.approx(ewald_energy(moved), abs=1e-6)


def test_li_orderings_are_ranked_by_ewald_energy():
    energies = [st.li05nio2(rank=r).properties["vacancy_ordering"]["ewald_energy_eV"] for r in range(3)]
    assert energies == sorted(energies) and energies[0] == pytest.approx(-1437.3905474, abs=1e-5)
    assert st.li05nio2(rank=1).properties["li_vacancies"] != st.li05nio2().properties["li_vacancies"]
    with pytest.raises(ValueError, match="17 distinct orderings"):
        st.li05nio2(rank=17)


def test_bad_hop_kind_and_site_are_clear_errors():
    with pytest.raises(ValueError, match="unknown hop kind 'sideways'"):
        st.ni_hop_endpoints("bare", "sideways")
    with pytest.raises(ValueError, match=r"has \d+ distinct bulk hop sites: site 99"):
        st.ni_hop_endpoints("bulk", site=99)
