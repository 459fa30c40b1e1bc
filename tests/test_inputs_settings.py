"""The settings object, the slab test and the engine-independent dispatch in write_inputs."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from _inputs_fixtures import bulk, delithiated, foreign, molecules_in_box, ni_hop, slab

from ncmflow.inputs.settings import (
    PAPER,
    check_elements,
    has_vacuum,
    kpoint_mesh,
    relaxes_cell,
    to_ase_atoms,
)
from ncmflow.structures.path import neb_images
from ncmflow.workflows.engines import engine_names, write_inputs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # spglib, via builders

NOWHERE = Path("/nonexistent/never-written")  # errors must come before anything is written


def test_paper_values() -> None:
    assert (PAPER.xc, PAPER.dispersion, PAPER.spin_polarized) == ("PBE", "d3bj", True)
    assert PAPER.encut == 520.0 and PAPER.optimizer == "BFGS"
    assert (PAPER.energy_tol, PAPER.fmax, PAPER.stress_tol, PAPER.disp_tol) == (1e-5, 0.02, 0.05, 0.001)
    assert PAPER.hubbard_u is False
    assert dict(PAPER.u_values) == {"Ni": 6.2, "Co": 3.32, "Mn": 3.9}
    assert PAPER.magmoms["Ni"] == 1.0 and PAPER.magmoms["O"] == 0.0


def test_settings_are_frozen_and_changes_make_copies() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PAPER.encut = 400.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        PAPER.magmoms["Ni"] = 5.0  # type: ignore[index]
    zero = PAPER.with_changes(dispersion="d3zero", magmoms={**PAPER.magmoms, "Ni": 2.0})
    assert zero.dispersion == "d3zero" and zero.magmoms["Ni"] == 2.0
    assert PAPER.dispersion == "d3bj" and PAPER.magmoms["Ni"] == 1.0
    with pytest.raises(TypeError):
        zero.magmoms["Ni"] = 5.0  # type: ignore[index]
    assert zero.as_dict()["magmoms"]["Ni"] == 2.0


@pytest.mark.parametrize(
    "change", [{"dispersion": "d4"}, {"optimizer": "FIRE"}, {"xc": "LDA"}, {"magmoms": {"Ni": 1.0}}]
)
def test_invalid_settings_are_refused(change: dict) -> None:
    with pytest.raises(ValueError):
        PAPER.with_changes(**change)


@pytest.mark.parametrize("element", ["Fe", "Xe"])
def test_unknown_element_is_named(element: str) -> None:
    with pytest.raises(ValueError, match=f"element {element} is not supported") as err:
        check_elements(foreign(element))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=element):
        write_inputs("mlip", "static", [foreign(element)], NOWHERE)


def test_has_vacuum() -> None:
    assert not has_vacuum(bulk())
    assert not has_vacuum(delithiated())
    assert has_vacuum(slab())
    assert has_vacuum(molecules_in_box())


def test_slab_given_a_bulk_job() -> None:
    assert relaxes_cell(bulk()) is True
    assert relaxes_cell(slab()) is False
    assert relaxes_cell(bulk(), bulk=False) is False
    with pytest.raises(ValueError, match="slab given a bulk job") as err:
        relaxes_cell(slab(), bulk=True)
    assert "\n" not in str(err.value)


def test_kpoint_mesh_follows_castep_spacing() -> None:
    s = bulk()
    # hexagonal a: |b1| = 1/d(100); c: 1/c — the mesh must not exceed the spacing
    expect_a = math.ceil(1 / (s.lattice.d_hkl((1, 0, 0)) * PAPER.kpoint_spacing))
    expect_c = math.ceil(1 / (s.lattice.c * PAPER.kpoint_spacing))
    assert kpoint_mesh(s, PAPER.kpoint_spacing) == (expect_a, expect_a, expect_c) == (11, 11, 2)
    assert kpoint_mesh(slab(), PAPER.kpoint_spacing)[2] == 1
    assert kpoint_mesh(molecules_in_box(), PAPER.kpoint_spacing) == (2, 2, 2)


def test_initial_moments_and_site_override() -> None:
    s = delithiated()
    moms = PAPER.initial_magmoms(s)
    assert len(moms) == len(s)
    assert {m for m, site in zip(moms, s, strict=True) if site.specie.symbol == "Ni"} == {1.0}
    s.add_site_property("magmom", [0.5] * len(s))
    assert set(PAPER.initial_magmoms(s)) == {0.5}


def test_ase_atoms_carry_constraints() -> None:
    s = slab()
    atoms = to_ase_atoms(s)
    fixed = [i for i, f in enumerate(s.site_properties["selective_dynamics"]) if not any(f)]
    assert list(atoms.constraints[0].index) == fixed
    np.testing.assert_allclose(atoms.cell[:], s.lattice.matrix)


def test_neb_images_interpolate_and_keep_order() -> None:
    start = delithiated()
    end, ni = ni_hop(start)
    images = neb_images(start, end, n_images=5)
    assert len(images) == 7
    assert all([x.specie for x in im] == [x.specie for x in start] for im in images)
    middle = images[3].cart_coords[ni]
    a, b = start.cart_coords[ni], end.cart_coords[ni]
    assert np.linalg.norm(middle - a) == pytest.approx(0.4, abs=0.1)
    assert np.linalg.norm(middle - b) == pytest.approx(0.4, abs=0.1)
    assert np.allclose(images[0].cart_coords, start.cart_coords)
    assert np.allclose(images[-1].cart_coords, end.cart_coords)


@pytest.mark.parametrize(
    ("engine", "job", "message"),
    [
        ("gaussian", "relax", "unknown engine 'gaussian': choose one of {engines}"),
        ("vasp", "md", "unknown job 'md'; valid jobs: relax, static, neb, lobster"),
        ("castep", "lobster", "job 'lobster' is only available for engine 'vasp'"),
        ("mlip", "lobster", "job 'lobster' is only available for engine 'vasp'"),
    ],
)
def test_dispatch_errors(engine: str, job: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        write_inputs(engine, job, [bulk()], NOWHERE)
    # engines registered by other test modules count too: the names are read when it runs
    assert str(err.value) == message.format(engines=", ".join(engine_names()))


def test_neb_needs_two_images_with_the_same_ordering() -> None:
    start = bulk()
    with pytest.raises(ValueError, match="exactly two structures"):
        write_inputs("vasp", "neb", [start], NOWHERE)
    shuffled = start.get_sorted_structure(key=lambda site: -site.specie.Z)
    with pytest.raises(ValueError, match="images have different atom ordering: site 0") as err:
        write_inputs("vasp", "neb", [start, shuffled], NOWHERE)
    assert "\n" not in str(err.value)


def test_several_structures_go_to_numbered_folders(tmp_path: Path) -> None:
    paths = write_inputs("mlip", "static", [bulk(), molecules_in_box()], tmp_path)
    assert sorted({p.parent.name for p in paths}) == ["00_LiNiO2", "01_H4CN2"]
    assert len(paths) == 4


def test_idpp_keeps_swapping_atoms_apart() -> None:
    """A linear path brings two swapping atoms to 0.2 Å halfway; IDPP must keep them apart."""
    from pymatgen.core import Lattice, Structure

    box = Lattice.cubic(10.0)
    start = Structure(box, ["N", "N"], [[5, 5, 4], [5, 5.2, 6]], coords_are_cartesian=True)
    end = Structure(box, ["N", "N"], [[5, 5, 6], [5, 5.2, 4]], coords_are_cartesian=True)
    middle = neb_images(start, end, n_images=3)[2]
    assert np.isfinite(middle.cart_coords).all()
    assert middle.get_distance(0, 1) > 0.8
