"""The ML engine: the offline potentials + their own D3(BJ), and the written inputs."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from _inputs_fixtures import delithiated, ni_hop, slab
from ase.io import read

from ncmflow.inputs import mlip
from ncmflow.inputs.mlip import MODELS, POTENTIALS, dispersion_calculator, ml_calculator
from ncmflow.inputs.settings import PAPER, to_ase_atoms
from ncmflow.structures.bulk import linio2
from ncmflow.workflows.engines import write_inputs

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad"),
    pytest.mark.filterwarnings("ignore:No tensor product accelerator"),
]

# What each registered name must be, written out here rather than read from the registry:
# (package, model inside it, SevenNet modal, the dftd3 functional of its training data)
EXPECTED = {
    "chgnet": ("chgnet", "0.3.0", None, "pbe"),
    "chgnet-r2scan": ("chgnet", "r2scan", None, "r2scan"),
    "sevennet": ("sevenn", "7net-0", None, "pbe"),
    "sevennet-mf": ("sevenn", "7net-mf-0", "PBE", "pbe"),
    "sevennet-l3i5": ("sevenn", "7net-l3i5", None, "pbe"),
}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One torch thread: OpenMP threads spin-wait, and a busy second core made calls 30× slower."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _rattled_primitive():
    """4-atom primitive LiNiO2, rattled so that the forces are not zero by symmetry."""
    atoms = to_ase_atoms(linio2().get_primitive_structure())
    assert len(atoms) == 4
    atoms.rattle(stdev=0.05, seed=1)
    return atoms


def _direct(model: str):
    """The package's own calculator for ``model``, built the package's way, not ncmflow's.

    CHGNet is loaded afresh (0.1 s). Building a SevenNet model takes seconds, so only the
    multi-head one goes through sevenn's own checkpoint route; the others reuse the weights.
    """
    package, name, modal, _ = EXPECTED[model]
    pytest.importorskip(package)
    if package == "chgnet":
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(CHGNet.load(model_name=name, verbose=False), use_device="cpu")
    from sevenn.calculator import SevenNetCalculator

    if modal is not None:
        return SevenNetCalculator(str(mlip.sevennet_checkpoint(name)), device="cpu", modal=modal)
    return SevenNetCalculator(mlip._sevennet_model(name), file_type="model_instance", device="cpu")


def test_registry_names() -> None:
    assert MODELS == tuple(POTENTIALS) == tuple(EXPECTED)
    assert {name: p.d3_method for name, p in POTENTIALS.items()} == {
        name: e[3] for name, e in EXPECTED.items()
    }
    with pytest.raises(TypeError):
        POTENTIALS["mace"] = POTENTIALS["chgnet"]  # read-only


@pytest.mark.parametrize("model", MODELS)
def test_each_potential_is_its_model_plus_its_d3(model: str) -> None:
    pytest.importorskip("dftd3")
    from dftd3.ase import DFTD3

    direct = _direct(model)
    atoms = _rattled_primitive()
    calc = ml_calculator(PAPER, model=model)
    atoms.calc = calc
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    assert np.isfinite(energy) and np.isfinite(forces).all() and np.isfinite(stress).all()
    assert np.abs(forces).max() > 0.1  # the rattle is felt: the sum rule below is not vacuous
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-4)

    ml_part, d3_part = calc.mixer.calcs
    assert isinstance(ml_part, type(direct))  # CHGNet: the lean subclass (no stress unless asked)
    if EXPECTED[model][2] is not None:
        assert ml_part.modal == EXPECTED[model][2]
    reference = atoms.copy()
    reference.calc = direct
    e_ml, f_ml = reference.get_potential_energy(), reference.get_forces()
    reference.calc = DFTD3(method=EXPECTED[model][3], damping="d3bj")
    e_d3, f_d3 = reference.get_potential_energy(), reference.get_forces()
    assert e_d3 < -0.3  # D3 binds LiNiO2 by 0.4-0.9 eV per 4 atoms
    assert d3_part.results["energy"] == pytest.approx(e_d3, abs=1e-10)
    assert energy == pytest.approx(e_ml + e_d3, abs=1e-6)
    np.testing.assert_allclose(forces, f_ml + f_d3, atol=1e-5)


def test_d3_follows_the_training_functional() -> None:
    pytest.importorskip("chgnet")
    pytest.importorskip("dftd3")
    from dftd3.ase import DFTD3

    atoms = _rattled_primitive()
    d3 = {}
    for model in ("chgnet", "chgnet-r2scan"):
        calc = ml_calculator(PAPER, model=model)
        atoms.calc = calc
        atoms.get_potential_energy()
        d3[model] = calc.mixer.calcs[1].results["energy"]
    direct = {}
    for method in ("PBE", "r2SCAN"):
        atoms.calc = DFTD3(method=method, damping="d3bj")
        direct[method] = atoms.get_potential_energy()
    assert d3["chgnet"] == pytest.approx(direct["PBE"], abs=1e-10)
    assert d3["chgnet-r2scan"] == pytest.approx(direct["r2SCAN"], abs=1e-10)
    # r2SCAN already holds some mid-range correlation, so its D3 is about half of PBE's
    assert d3["chgnet"] - d3["chgnet-r2scan"] == pytest.approx(direct["PBE"] - direct["r2SCAN"], abs=1e-10)
    assert d3["chgnet"] - d3["chgnet-r2scan"] < -0.3


def test_weights_are_loaded_once_per_model() -> None:
    pytest.importorskip("chgnet")
    pytest.importorskip("sevenn")
    plain = PAPER.with_changes(dispersion="none")
    first, second = ml_calculator(plain, "sevennet"), ml_calculator(plain, "sevennet")
    assert first is not second and first.model is second.model
    pbe, r2scan = ml_calculator(plain, "chgnet"), ml_calculator(plain, "chgnet-r2scan")
    assert pbe.model is not r2scan.model
    assert (pbe.model.version, r2scan.model.version) == ("0.3.0", "r2scan")


def test_sevennet_mf_uses_its_pbe_head() -> None:
    pytest.importorskip("sevenn")
    from sevenn.calculator import SevenNetCalculator

    atoms = _rattled_primitive()
    atoms.calc = ml_calculator(PAPER.with_changes(dispersion="none"), "sevennet-mf")
    e_pbe = atoms.get_potential_energy()
    atoms.calc = SevenNetCalculator(mlip._sevennet_model("7net-mf-0"), file_type="model_instance",
                                    device="cpu", modal="R2SCAN")
    assert abs(atoms.get_potential_energy() - e_pbe) > 0.1  # the head matters, and it is PBE's


def _tree(folder: Path) -> set[Path]:
    return set(folder.rglob("*")) if folder.exists() else set()


def test_sevennet_model_outside_the_wheel_fails_without_downloading(monkeypatch) -> None:
    pytest.importorskip("sevenn")
    import socket

    import sevenn.util
    from sevenn import _const

    omat = Path(_const.SEVENNET_omat)
    if omat.is_file():
        pytest.skip(f"{omat} exists here: 7net-omat is offline on this machine")

    downloads = []

    def no_download(path, url):
        downloads.append(url)
        raise OSError("download attempted")

    def no_network(*args, **kwargs):
        raise OSError("network used")

    monkeypatch.setattr(sevenn.util, "download_checkpoint", no_download)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    # sevenn's own name lookup would download it: the guard below is what prevents that
    with pytest.raises(OSError, match="download attempted"):
        sevenn.util.pretrained_name_to_path("7net-omat")
    assert downloads and downloads[0].endswith("checkpoint_sevennet_omat.pth")
    downloads.clear()

    site, cache = Path(_const._prefix), Path.home() / ".cache" / "sevennet"
    before = (_tree(site), _tree(cache))
    omat_potential = mlip.Potential(partial(mlip._sevennet, "7net-omat"), "pbe", "not shipped")
    monkeypatch.setattr(mlip, "POTENTIALS", {**POTENTIALS, "sevennet-omat": omat_potential})
    with pytest.raises(RuntimeError) as err:
        ml_calculator(PAPER, model="sevennet-omat")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("ML model 'sevennet-omat': SevenNet model '7net-omat' has no weights")
    assert "never downloads" in message and "7net-0, " in message and "7net-mf-0" in message
    assert ", ".join(EXPECTED) in message
    assert downloads == []
    assert (_tree(site), _tree(cache)) == before
    assert not omat.parent.exists()


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


def test_model_errors(monkeypatch) -> None:
    with pytest.raises(ValueError) as err:
        ml_calculator(model="mace")
    assert str(err.value) == (
        "unknown ML model 'mace'; choose one of chgnet, chgnet-r2scan, sevennet, sevennet-mf, "
        "sevennet-l3i5 (all ship offline)"
    )
    with pytest.raises(ValueError, match="unknown ML model '7net-0'"):  # sevenn's names are not ours
        ml_calculator(model="7net-0")
    with pytest.raises(RuntimeError, match="SevenNet model 'no-such-net' has no weights"):
        mlip.sevennet_checkpoint("no-such-net")
    # without sevenn installed: one line that says what to install
    monkeypatch.setitem(sys.modules, "sevenn", None)
    monkeypatch.setattr(mlip, "_sevennet_model", mlip._sevennet_model.__wrapped__)  # no cache
    with pytest.raises(ImportError, match=r"^ML model 'sevennet-mf': .*pip install sevenn$") as err:
        ml_calculator(model="sevennet-mf")
    assert "\n" not in str(err.value)


def test_engine_passes_the_model_on() -> None:
    from ncmflow.workflows.engines import get_engine
    from ncmflow.workflows.engines.mlip import neb_maker, potentials, relax_maker
    from ncmflow.workflows.neb import CiNebMaker

    engine = get_engine("mlip")
    assert potentials() == MODELS
    neb = neb_maker(PAPER.with_changes(ml_model="chgnet-r2scan"), optimizer="fire")
    assert isinstance(neb, CiNebMaker)
    assert (neb.engine, neb.fmax, neb.settings.neb_steps, neb.optimizer, neb.settings.ml_model) == (
        "mlip", 0.05, 400, "fire", "chgnet-r2scan")
    assert engine.neb_maker().settings.ml_model == "chgnet"
    relax = engine.relax_maker(PAPER.with_changes(fmax=0.03, ml_model="sevennet"), relax_cell=True)
    assert (relax.settings.ml_model, relax.relax_cell) == ("sevennet", True)
    assert relax.relax_kwargs == {"fmax": 0.03}
    assert relax_maker().settings.ml_model == "chgnet"
    mace = PAPER.with_changes(ml_model="mace")
    for make in (neb_maker, relax_maker, engine.static_maker, engine.calculator):
        with pytest.raises(ValueError, match="unknown ML model 'mace'"):
            make(mace)


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
    # a NEB stops at the NEB criterion, not the relaxation's
    assert (run["calculator"], run["dispersion"], run["fmax"], run["steps"]) == ("chgnet", "d3bj", 0.05, 400)
    assert run["d3_method"] == "pbe"
    assert run["settings"]["encut"] == 520.0


def test_written_inputs_name_the_potential_and_its_d3(tmp_path: Path) -> None:
    r2scan = PAPER.with_changes(ml_model="chgnet-r2scan")
    write_inputs("mlip", "relax", [delithiated()], tmp_path / "r2scan", settings=r2scan)
    run = json.loads((tmp_path / "r2scan" / "settings.json").read_text())
    assert (run["calculator"], run["d3_method"]) == ("chgnet-r2scan", "r2scan")
    plain = PAPER.with_changes(ml_model="sevennet-mf", dispersion="none")
    write_inputs("mlip", "static", [delithiated()], tmp_path / "plain", settings=plain)
    run = json.loads((tmp_path / "plain" / "settings.json").read_text())
    assert (run["calculator"], run["d3_method"]) == ("sevennet-mf", None)
    with pytest.raises(ValueError, match="unknown ML model 'mace'"):
        write_inputs("mlip", "relax", [delithiated()], tmp_path / "mace",
                     settings=PAPER.with_changes(ml_model="mace"))
    assert not (tmp_path / "mace").exists()


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
