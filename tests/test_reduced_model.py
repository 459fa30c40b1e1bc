"""The reduced Ni-hop model for local DFT (2 layers, 2-unit cPAN) and the unchanged default models."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from ncmflow.structures.migration import REDUCED, fixed_layers, hop_sites, ni_hop_endpoints

N_SLAB = 42  # Li6Ni12O24: two (104) layers of the Li0.5NiO2 slab
N_CPAN = 18  # C6N2H10: the electronic model's two-unit, fully cyclized fragment


def fingerprint(s) -> str:
    """Lattice, species, positions (1e-4 Å), selective dynamics and Li vacancies, hashed."""
    h = hashlib.sha256()
    h.update(np.round(s.lattice.matrix, 4).tobytes())
    h.update(" ".join(sp.symbol for sp in s.species).encode())
    h.update(np.round(s.cart_coords, 4).tobytes())
    h.update(json.dumps([[bool(x) for x in f] for f in s.site_properties["selective_dynamics"]]).encode())
    h.update(json.dumps(np.round(s.properties.get("li_vacancies", []), 4).tolist()).encode())
    return h.hexdigest()[:16]


# Taken before the reduced model was added (layers=4, n_units=3, site 0 and 1; start, end).
DEFAULT = {
    ("bare", 0): (84, "66b72856040322bc", "60afd65e8485baae", 30),
    ("bare", 1): (84, "97038af7f22a2086", "2c101d167d5615bc", 31),
    ("cpan", 0): (109, "61fbfc4646df5525", "87d255db95768f31", 30),
    ("cpan", 1): (109, "d8a69bc48022efe8", "a09e8164fcf034fb", 31),
}


def moved(start, end) -> int:
    idx = [i for i in range(len(start)) if start[i].distance(end[i]) > 1e-6]
    assert len(idx) == 1 and start[idx[0]].specie.symbol == "Ni"
    return idx[0]


@pytest.fixture(scope="module")
def reduced():
    return {(m, k): ni_hop_endpoints(m, "subsurface", k, **REDUCED) for m in ("bare", "cpan") for k in (0, 1)}


def test_fixed_layers_keep_two_and_hold_only_the_bottom_of_a_two_layer_slab():
    assert [fixed_layers(n) for n in (2, 3, 4, 6)] == [1, 2, 2, 2]
    with pytest.raises(ValueError, match="layers >= 2"):
        fixed_layers(1)


@pytest.mark.parametrize("model", ["bare", "cpan"])
def test_reduced_models_have_subsurface_sites(model):
    assert hop_sites(model, "subsurface", **REDUCED) == 14  # 2 of ordering 0, 12 of ordering 1


@pytest.mark.parametrize("site", [0, 1])
def test_reduced_model_sizes(reduced, site):
    (bs, be), (cs, ce) = reduced["bare", site], reduced["cpan", site]
    assert len(bs) == len(be) == N_SLAB and bs.composition.formula == "Li6 Ni12 O24"
    assert len(cs) == len(ce) == N_SLAB + N_CPAN and cs.composition.formula == "Li6 Ni12 H10 C6 N2 O24"
    for s in (bs, cs):
        assert s.properties["hop_kind"] == "subsurface" and s.properties["layers"] == 2
        assert s.properties["fixed_layers"] == 1
    assert cs.properties["cpan"]["n_units"] == 2 and cs.properties["cpan"]["cyclization_degree"] == 1.0


@pytest.mark.parametrize("site", [0, 1])
def test_the_cpan_n_is_bound_to_the_hopping_ni(reduced, site):
    start, end = reduced["cpan", site]
    i, n = start.properties["moved_index"], start.properties["n_index"]
    assert moved(start, end) == i == start.properties["ni_index"]
    assert start[n].specie.symbol == "N" and start.properties["n_kind"] == "pyridinic"
    assert start.get_distance(i, n) == pytest.approx(2.0, abs=0.05)
    others = [j for j, sp in enumerate(start.species) if sp.symbol == "N" and j != n]
    assert all(start.get_distance(i, j) > 2.5 for j in others)  # the ring N, not the imine, binds
    assert end.get_distance(i, n) > start.get_distance(i, n) + 1.0  # the Ni leaves the N on the hop


@pytest.mark.parametrize("model", ["bare", "cpan"])
@pytest.mark.parametrize("site", [0, 1])
def test_the_ni_leaves_the_top_layer_for_a_li_site_below(reduced, model, site):
    start, end = reduced[model, site]
    i = moved(start, end)
    z = start.cart_coords[:, 2]
    ni = [j for j, sp in enumerate(start.species) if sp.symbol == "Ni"]
    top = max(z[j] for j in ni)
    assert z[i] == pytest.approx(top, abs=0.5)  # from the top TM plane
    top_ni = [j for j in ni if z[j] > top - 1.0]
    depth = z[i] - end.cart_coords[i, 2]
    assert depth == pytest.approx(start.properties["hop_depth"], abs=1e-6) and depth > 1.5
    assert end.cart_coords[i, 2] < min(z[j] for j in top_ni) - 1.5  # into the plane below
    vac = np.array(start.properties["li_vacancies"])
    assert start.lattice.get_all_distances(end.frac_coords[i], vac).min() < 1e-6  # a Li-layer site
    li = [j for j, sp in enumerate(start.species) if sp.symbol == "Li"]
    assert np.abs(z[li] - end.cart_coords[i, 2]).min() < 0.1  # the Li plane below the surface
    assert 2.5 <= start.properties["hop_distance"] <= 3.5
    flags = start.site_properties["selective_dynamics"]
    assert flags[i] == [True] * 3 and end.site_properties["selective_dynamics"][i] == [True] * 3
    bottom = [j for j in range(N_SLAB) if z[j] < z[:N_SLAB].min() + 0.5]
    assert bottom and not any(flags[j][0] for j in bottom)  # the bottom plane is held


@pytest.mark.parametrize("site", [0, 1])
def test_bare_and_cpan_are_the_same_hop(reduced, site):
    (bs, be), (cs, ce) = reduced["bare", site], reduced["cpan", site]
    assert bs.lattice == cs.lattice and bs.properties["site_label"] == cs.properties["site_label"]
    assert bs.properties["moved_index"] == cs.properties["moved_index"]
    for b, c in ((bs, cs), (be, ce)):
        assert [sp.symbol for sp in c.species[:N_SLAB]] == [sp.symbol for sp in b.species]
        assert np.allclose(c.cart_coords[:N_SLAB], b.cart_coords, atol=1e-8)
        assert c.site_properties["selective_dynamics"][:N_SLAB] == b.site_properties["selective_dynamics"]
    assert [sp.symbol for sp in cs.species[N_SLAB:]] == cs.properties["cpan_species"]


def test_reduced_sites_are_the_first_of_each_ordering(reduced):
    assert [reduced["bare", k][0].properties["ordering_rank"] for k in (0, 1)] == [0, 1]


def test_two_units_need_a_ring():
    with pytest.raises(ValueError, match="closes no ring"):  # 0.67 of 2 units: one reacted nitrile
        ni_hop_endpoints("cpan", layers=2, n_units=2)
    with pytest.raises(ValueError, match="n >= 2"):
        ni_hop_endpoints("bare", layers=2, n_units=1)
    with pytest.raises(ValueError, match="no pyridinic N"):
        hop_sites("cpan", layers=2, n_units=3, degree=0.0)


@pytest.mark.parametrize(("model", "site"), list(DEFAULT))
def test_default_models_unchanged(model, site):
    start, end = ni_hop_endpoints(model, "subsurface", site)
    n, fp_start, fp_end, ni = DEFAULT[model, site]
    assert len(start) == n and start.properties["moved_index"] == ni
    assert (fingerprint(start), fingerprint(end)) == (fp_start, fp_end)
