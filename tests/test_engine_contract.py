"""Every registered engine honours the tolerances it is given, in its makers and written inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ncmflow.inputs.settings import PAPER
from ncmflow.structures import ni_hop_endpoints
from ncmflow.workflows.engines import engine_names, get_engine, write_inputs
from ncmflow.workflows.study import StudyConfig, write_study_inputs

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

# odd values no engine would choose by itself, so a default cannot pass for them
ODD = PAPER.with_changes(fmax=0.037, relax_steps=123, neb_fmax=0.071, neb_steps=77)


def _neb_steps(engine, expected: int):
    """The NEB step budget an engine's inputs must carry (None: its method has none)."""
    return expected if engine.neb_uses_images else None


@pytest.mark.parametrize("name", engine_names())
def test_settings_tolerances_reach_the_written_inputs(name: str, tmp_path: Path) -> None:
    engine = get_engine(name)
    start, end = ni_hop_endpoints("bulk")
    write_inputs(name, "relax", [start], tmp_path / "relax", ODD, bulk=False)
    write_inputs(name, "neb", [start, end], tmp_path / "neb", ODD, n_images=3)
    assert engine.read_tolerances("relax", tmp_path / "relax") == (0.037, 123)
    assert engine.read_tolerances("neb", tmp_path / "neb") == (0.071, _neb_steps(engine, 77))


@pytest.mark.parametrize("name", engine_names())
def test_quick_study_inputs_carry_the_quick_tolerances(name: str, tmp_path: Path) -> None:
    """``ncmflow study --quick --engine X --write-inputs`` wrote the full study's EDIFFG before."""
    engine = get_engine(name)
    config = StudyConfig.create(name, quick=True, models=("bulk",), sites=1)
    write_study_inputs(config, tmp_path)
    site = tmp_path / "bulk" / "site0"
    assert engine.read_tolerances("relax", site / "relax_start") == (config.relax_fmax, PAPER.relax_steps)
    expected = (config.neb_fmax, _neb_steps(engine, config.neb_steps))
    assert engine.read_tolerances("neb", site / "neb") == expected
    assert (config.relax_fmax, config.neb_fmax, config.neb_steps) == (0.05, 0.1, 200)


@pytest.mark.parametrize("name", engine_names())
def test_factories_take_settings_and_refuse_unknown_keywords(name: str) -> None:
    engine = get_engine(name)
    for factory, args in ((engine.relax_maker, (ODD, False)), (engine.static_maker, (ODD,)),
                          (engine.neb_maker, (ODD, None))):
        assert factory(*args) is not None
        with pytest.raises(TypeError):
            factory(ODD, fmax=0.1)  # tolerances travel in the settings, never as loose keywords


def test_vasp_makers_generate_what_the_writer_writes() -> None:
    """The atomate2 makers a cluster runs use the same generators as ``write_inputs``."""
    vasp = get_engine("vasp")
    start, _ = ni_hop_endpoints("bulk")
    relax = vasp.relax_maker(ODD, False).input_set_generator.get_input_set(start, potcar_spec=True)
    assert (relax.incar["EDIFFG"], relax.incar["NSW"], relax.incar["ISIF"]) == (-0.037, 123, 2)
    neb = vasp.neb_maker(ODD, "fire")
    assert neb.fmax == 0.071 and neb.iopt == 7
    generator = neb.neb.input_set_generator
    assert generator.settings.neb_fmax == 0.071 and generator.settings.neb_steps == 77


@pytest.mark.parametrize("name", [n for n in engine_names() if get_engine(n).calculator is not None])
def test_local_makers_run_to_the_settings(name: str) -> None:
    relax = get_engine(name).relax_maker(ODD, False)
    assert (relax.relax_kwargs["fmax"], relax.steps) == (0.037, 123)
    assert relax.optimizer_kwargs["optimizer"] == "BFGS"
    neb = get_engine(name).neb_maker(ODD, "bfgs")
    assert (neb.settings.neb_fmax, neb.settings.neb_steps, neb.fmax) == (0.071, 77, 0.071)
    assert neb.optimizer == "bfgs"
