"""CASTEP .cell/.param files, read back with ASE's CASTEP reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _inputs_fixtures import bulk, delithiated, molecules_in_box, ni_hop, slab
from ase import Atoms
from ase.io import read
from ase.io.castep import read_param

from ncmflow.inputs.settings import PAPER
from ncmflow.workflows.engines import write_inputs

# No CASTEP binary here: ASE warns that it cannot validate keywords.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def _read(tmp_path: Path) -> tuple[Atoms, dict[str, str]]:
    atoms = read(tmp_path / "ncmflow.cell", format="castep-cell", calculator_args={"keyword_tolerance": 3})
    calc = read_param(str(tmp_path / "ncmflow.param"))
    params = {k: str(opt.value) for k, opt in calc.param._options.items() if opt.value is not None}
    return atoms, params


def _same_structure(atoms: Atoms, structure) -> None:
    np.testing.assert_allclose(atoms.cell[:], structure.lattice.matrix, atol=1e-8)
    assert atoms.get_chemical_symbols() == [x.specie.symbol for x in structure]
    np.testing.assert_allclose(atoms.get_positions(), structure.cart_coords, atol=1e-8)


def test_bulk_geometry_optimization(tmp_path: Path) -> None:
    s = bulk()
    paths = write_inputs("castep", "relax", [s], tmp_path)
    assert [p.name for p in paths] == ["ncmflow.cell", "ncmflow.param"]
    atoms, params = _read(tmp_path)
    _same_structure(atoms, s)
    moms = atoms.get_initial_magnetic_moments()
    assert len(moms) == len(s)
    assert list(moms) == [1.0 if x.specie.symbol == "Ni" else 0.0 for x in s]
    assert atoms.calc.cell.kpoint_mp_spacing.value == "0.04 1/ang"
    assert atoms.calc.cell.fix_all_cell.value is None  # the cell relaxes
    assert not atoms.constraints
    assert params == {
        "task": "GeometryOptimization",
        "xc_functional": "PBE",
        "cut_off_energy": "520 eV",
        "spin_polarized": "true",
        "elec_energy_tol": "1e-05 eV",
        "smearing_width": "0.05 eV",
        "sedc_apply": "true",
        "sedc_scheme": "D3-BJ",
        "max_scf_cycles": "200",
        "geom_method": "BFGS",
        "geom_energy_tol": "1e-05 eV",
        "geom_force_tol": "0.02 ev/ang",
        "geom_stress_tol": "0.05 GPa",
        "geom_disp_tol": "0.001 ang",
        "geom_max_iter": "500",
    }


def test_slab_keeps_cell_and_fixed_atoms(tmp_path: Path) -> None:
    s = slab()
    write_inputs("castep", "relax", [s], tmp_path)
    atoms, _ = _read(tmp_path)
    _same_structure(atoms, s)
    assert atoms.calc.cell.fix_all_cell.value == "true"
    fixed = [i for i, f in enumerate(s.site_properties["selective_dynamics"]) if not any(f)]
    assert fixed and list(atoms.constraints[0].index) == fixed
    with pytest.raises(ValueError, match="slab given a bulk job"):
        write_inputs("castep", "relax", [s], tmp_path / "bulk", bulk=True)


def test_transition_state_search_has_the_product(tmp_path: Path) -> None:
    start = delithiated()
    end, ni = ni_hop(start)
    write_inputs("castep", "neb", [start, end], tmp_path)
    atoms, params = _read(tmp_path)
    _same_structure(atoms, start)
    assert params["task"] == "TransitionStateSearch"
    assert params["tssearch_method"] == "LSTQST"
    assert params["tssearch_force_tol"] == "0.05 ev/ang"  # the NEB criterion, settings.neb_fmax
    assert "geom_method" not in params
    product = [line.split() for line in atoms.calc.cell.positions_frac_product.value.split("\n")]
    assert [row[0] for row in product] == [x.specie.symbol for x in end]
    frac = np.array([[float(v) for v in row[1:4]] for row in product])
    np.testing.assert_allclose(frac, end.frac_coords, atol=1e-9)
    assert not np.allclose(frac[ni], start.frac_coords[ni])


@pytest.mark.parametrize(("dispersion", "scheme"), [("d3zero", "D3"), ("none", None)])
def test_dispersion_switch(tmp_path: Path, dispersion: str, scheme: str | None) -> None:
    write_inputs("castep", "static", [bulk()], tmp_path, settings=PAPER.with_changes(dispersion=dispersion))
    _, params = _read(tmp_path)
    assert params["task"] == "SinglePoint"
    assert params.get("sedc_scheme") == scheme
    assert params["sedc_apply"] == str(scheme is not None).lower()


def test_hubbard_u_block(tmp_path: Path) -> None:
    write_inputs("castep", "static", [bulk()], tmp_path, settings=PAPER.with_changes(hubbard_u=True))
    atoms, _ = _read(tmp_path)
    block = atoms.calc.cell.hubbard_u.value.split("\n")
    assert block == ["Ni d: 6.2", "Co d: 3.32", "Mn d: 3.9"]


def test_molecules_in_a_box(tmp_path: Path) -> None:
    s = molecules_in_box()
    write_inputs("castep", "relax", [s], tmp_path)
    atoms, _ = _read(tmp_path)
    _same_structure(atoms, s)
    assert not atoms.get_initial_magnetic_moments().any()
    assert atoms.calc.cell.fix_all_cell.value == "true"
