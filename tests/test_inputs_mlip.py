"""The ML engine: CHGNet + D3(BJ) calculator and its written inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _inputs_fixtures import delithiated, ni_hop, slab
from ase.io import read

from ncmflow.inputs.mlip import dispersion_calculator, ml_calculator
from ncmflow.inputs.settings import PAPER, to_ase_atoms
from ncmflow.inputs.write import write_inputs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_chgnet_plus_d3_on_li05nio2() -> None:
    pytest.importorskip("chgnet")
    pytest.importorskip("dftd3")
    from chgnet.model.dynamics import CHGNetCalculator
    from dftd3.ase import DFTD3

    atoms = to_ase_atoms(delithiated())
    calc = ml_calculator(PAPER)
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    forces, stress = atoms.get_forces(), atoms.get_stress()
    assert np.isfinite(energy) and np.isfinite(forces).all() and np.isfinite(stress).all()
    assert forces.shape == (len(atoms), 3) and stress.shape == (6,)

    ml_part, d3_part = calc.mixer.calcs
    assert isinstance(ml_part, CHGNetCalculator)
    d3_alone = atoms.copy()
    d3_alone.calc = DFTD3(method="PBE", damping="d3bj")
    e_d3 = d3_alone.get_potential_energy()
    assert e_d3 < -0.1  # dispersion binds: clearly nonzero for 42 atoms
    assert d3_part.results["energy"] == pytest.approx(e_d3, rel=1e-10)
    assert energy == pytest.approx(ml_part.results["energy"] + e_d3, rel=1e-10)
    np.testing.assert_allclose(forces, ml_part.results["forces"] + d3_alone.get_forces(), atol=1e-8)

    plain = ml_calculator(PAPER.with_changes(dispersion="none"))
    assert isinstance(plain, CHGNetCalculator)
    assert plain.model is ml_part.model  # the loaded weights are cached


def test_zero_damping_and_none() -> None:
    pytest.importorskip("dftd3")
    atoms = to_ase_atoms(delithiated())
    energies = {}
    for damping in ("d3bj", "d3zero"):
        atoms.calc = dispersion_calculator(PAPER.with_changes(dispersion=damping))
        energies[damping] = atoms.get_potential_energy()
    assert energies["d3bj"] != pytest.approx(energies["d3zero"])
    assert dispersion_calculator(PAPER.with_changes(dispersion="none")) is None


def test_model_errors() -> None:
    with pytest.raises(ValueError, match="unknown ML model 'mace'"):
        ml_calculator(model="mace")
    try:
        import sevenn  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pip install sevenn") as err:
            ml_calculator(model="sevennet")
        assert "\n" not in str(err.value)


def test_written_neb_inputs(tmp_path: Path) -> None:
    start = delithiated()
    end, ni = ni_hop(start)
    paths = write_inputs("mlip", "neb", [start, end], tmp_path, n_images=4)
    assert [p.name for p in paths] == ["images.extxyz", "settings.json"]
    frames = read(tmp_path / "images.extxyz", index=":")
    assert len(frames) == 6
    assert all(f.get_chemical_symbols() == frames[0].get_chemical_symbols() for f in frames)
    np.testing.assert_allclose(frames[0].positions, start.cart_coords, atol=1e-6)
    np.testing.assert_allclose(frames[-1].positions, end.cart_coords, atol=1e-6)
    assert not np.allclose(frames[2].positions[ni], frames[0].positions[ni])
    run = json.loads((tmp_path / "settings.json").read_text())
    assert run["job"] == "neb" and run["climbing_image"] is True
    assert (run["calculator"], run["dispersion"], run["fmax"]) == ("chgnet", "d3bj", 0.02)
    assert run["settings"]["encut"] == 520.0


def test_written_slab_relax_keeps_constraints(tmp_path: Path) -> None:
    s = slab()
    write_inputs("mlip", "relax", [s], tmp_path)
    (frame,) = read(tmp_path / "images.extxyz", index=":")
    fixed = [i for i, f in enumerate(s.site_properties["selective_dynamics"]) if not any(f)]
    assert list(frame.constraints[0].index) == fixed
    run = json.loads((tmp_path / "settings.json").read_text())
    assert run["relax_cell"] is False and run["optimizer"] == "BFGS"
    with pytest.raises(ValueError, match="slab given a bulk job"):
        write_inputs("mlip", "relax", [s], tmp_path / "bulk", bulk=True)
    assert not (tmp_path / "bulk").exists()
