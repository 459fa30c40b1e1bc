"""The electronic study end to end on a tiny real system: O=Ni←NH3 in a box, GPAW LCAO.

The flow (ML relax → split → three LCAO single points) runs into a montydb store, and the
report is read back from that store: the same path `ncmflow study --engine gpaw --electronic`
takes with the 60-atom cPAN@slab model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from ncmflow.analysis.cdd import charge_density_difference
from ncmflow.analysis.electronic import cohp_from_output, load_electronic, write_electronic_report
from ncmflow.structures import electronic_model
from ncmflow.structures.interface import cpan_sites, split_interface
from ncmflow.workflows.electronic import ElectronicConfig, electronic_flow, reference_oxygen
from ncmflow.workflows.runner import run_flow
from ncmflow.workflows.store import get_store

pytestmark = [pytest.mark.requires_gpaw,  # skipped with the reason where GPAW is not installed
              pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")]
BOX = 9.0


def complex_() -> Structure:
    """O=Ni←NH3: the "slab" part is NiO, the "cPAN" part NH3 bound through the N lone pair."""
    c = BOX / 2
    coords = [[c, c, c], [c, c, c - 1.65], [c, c, c + 2.0],
              [c + 0.94, c, c + 2.35], [c - 0.47, c + 0.81, c + 2.35], [c - 0.47, c - 0.81, c + 2.35]]
    s = Structure(Lattice.cubic(BOX), ["Ni", "O", "N", "H", "H", "H"], coords, coords_are_cartesian=True)
    s.properties = {"ni_index": 0, "n_index": 2, "cpan_species": ["N", "H", "H", "H"]}
    return s


def test_electronic_model_and_its_parts() -> None:
    model = electronic_model()
    assert len(model) == 60 and model.composition == Composition("Li6Ni12O24C6N2H10")
    ni, n = model.properties["ni_index"], model.properties["n_index"]
    assert model[ni].specie.symbol == "Ni" and model[n].specie.symbol == "N"
    assert model.get_distance(ni, n) == pytest.approx(2.0, abs=1e-6)
    slab, cpan = split_interface(model)
    assert len(slab) + len(cpan) == 60 and cpan.composition == Composition("C6N2H10")
    assert slab.lattice == cpan.lattice == model.lattice  # one cell: one density grid
    np.testing.assert_allclose(cpan.cart_coords, model.cart_coords[cpan_sites(model)])
    assert model[reference_oxygen(model, ni)].specie.symbol == "O"
    with pytest.raises(ValueError, match="not a cPAN@slab"):
        split_interface(slab)


@pytest.fixture(scope="module")
def electronic_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("electronic")
    store = get_store(str(folder / "store"))
    config = ElectronicConfig(kpts=(1, 1, 1), h=0.25, relax_fmax=0.1)
    status = run_flow(electronic_flow(config, complex_()), store, folder)
    return store, config, status


def test_flow_report_from_the_store(electronic_store, tmp_path) -> None:
    store, config, status = electronic_store
    assert list(status.values()) == ["ran"] * 5  # relax, split, three single points
    run = load_electronic(store)
    assert run.study == config.key and (run.ni, run.n, run.o) == (0, 2, 1)
    interface, ni_o, nh3 = (run.parts[p] for p in ("interface", "slab", "cpan"))
    assert interface["n_sites"] == 6 and ni_o["n_sites"] == 2 and nh3["n_sites"] == 4
    assert nh3["magmom"] == pytest.approx(0.0, abs=0.05)  # closed-shell NH3

    ni_n, ni_o_bond = (cohp_from_output(interface, b) for b in ("Ni0-N2", "Ni0-O1"))
    assert ni_n.lengths[0] == pytest.approx(2.0, abs=0.3)
    total = {k: sum(v[0] for v in r.minus_icohp_at_ef.values()) for k, r in
             (("N", ni_n), ("O", ni_o_bond))}
    assert 0 < total["N"] < total["O"]  # a dative bond, weaker than Ni=O

    files = write_electronic_report(run, tmp_path)
    summary = json.loads(files["json"].read_text())
    cdd = summary["charge_density_difference"]
    assert abs(cdd["total"]) < 0.05  # Δρ conserves charge
    assert summary["overlap_ni_d_n_p"] > 0
    for key in ("pdos", "cohp", "slice", "plane_average"):
        assert files[key].stat().st_size > 10_000
    assert "Ni0-N2" in files["md"].read_text()
    with pytest.raises(ValueError, match="no complete electronic study"):
        load_electronic(store, study="electronic-000000000000")


def test_density_difference_of_non_interacting_molecules_is_zero(tmp_path, monkeypatch) -> None:
    """Two N2 6 Å apart do not bond: Δρ = ρ(both) − ρ(one) − ρ(other) must vanish."""
    from ncmflow.analysis.cdd import DensityGrid
    from ncmflow.workflows.engines.gpaw import gpaw_electronic_structure

    c = 4.0
    both = Structure(Lattice.orthorhombic(8.0, 8.0, 13.0), ["N"] * 4,
                     [[c, c, 3.0], [c, c, 4.1], [c, c, 10.1], [c, c, 11.2]], coords_are_cartesian=True)
    grids = []
    for name, sites in (("both", [0, 1, 2, 3]), ("one", [0, 1]), ("other", [2, 3])):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        part = Structure.from_sites([both[i] for i in sites])
        out = gpaw_electronic_structure.original(part, kpts=(1, 1, 1), spinpol=False, h=0.25)
        grids.append(DensityGrid.from_cube(out["density_cube"]))
    assert grids[0].data.sum() * grids[0].voxel_volume == pytest.approx(28.0, abs=0.1)  # all e⁻
    cdd = charge_density_difference(*grids, 0, 1, tmp_path / "cdd")
    delta = DensityGrid.from_cube(cdd["files"]["delta_rho"])
    moved = np.abs(delta.data).sum() * delta.voxel_volume
    assert moved < 0.02 * 28  # ∫|Δρ| is a small fraction of the electrons
    assert abs(cdd["total"]) < 1e-3
    assert all(abs(q) < 0.01 for q in cdd["sphere_charges"].values())


def test_query_lists_the_electronic_single_points(electronic_store) -> None:
    from ncmflow.analysis.records import list_records

    records = list_records(electronic_store[0], kind="electronic")
    assert sorted(r["result"].split(":")[0] for r in records) == ["cpan", "interface", "slab"]
    assert all(r["model"] == "electronic" and r["engine"] == "gpaw" for r in records)
    assert "μB" in records[0]["result"]


def test_electronic_study_needs_the_gpaw_engine(tmp_path) -> None:
    from typer.testing import CliRunner

    from ncmflow.cli import app

    result = CliRunner().invoke(app, ["study", "--electronic", "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and "--engine gpaw --electronic" in result.output
    assert not (tmp_path / "s").exists()  # refused before anything was stored


def test_analyze_electronic_regenerates_the_report_from_the_store(electronic_store, tmp_path) -> None:
    from typer.testing import CliRunner

    from ncmflow.cli import app

    folder = electronic_store[0].docs_store.database_path
    out = str(tmp_path / "r")
    result = CliRunner().invoke(app, ["analyze", "electronic", "--store", folder, "--out", out])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["ni_index"] == 0
    # no terminal here: the report's Markdown as written, tables whole (not fitted to 80 columns)
    tables = [line for line in next((tmp_path / "r").glob("*.md")).read_text().splitlines()
              if line.startswith("| ")]
    assert tables and all(line in result.output.splitlines() for line in tables)
    empty = CliRunner().invoke(app, ["analyze", "electronic", "--store", str(tmp_path / "empty")])
    assert empty.exit_code == 2 and "no complete electronic study" in empty.output
