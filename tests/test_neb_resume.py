"""A NEB killed mid-step and run again takes the steps the uninterrupted NEB took.

ASE's EMT on ASE's Au-on-Al(100) hop (3 images, the toy engine's test system); the "kill" is an
exception no ``except Exception`` catches, raised inside a force call — what the process sees of
a SIGKILL is nothing at all, and nothing after that call runs here either. Before the optimizers'
memory was checkpointed (``ncmflow.workflows.nebopt``) the resumed ODE band ended 1.4 meV away
on the quick study's bulk hop and took another number of steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT
from test_toy_engine import au_on_al100, read_emt, relax_maker, static_maker, write_emt

from ncmflow.inputs.settings import PAPER
from ncmflow.structures.path import neb_images
from ncmflow.workflows.engines import Engine, register
from ncmflow.workflows.neb import CHECKPOINT, CiNebMaker
from ncmflow.workflows.nebopt import STATE

SETTINGS = PAPER.with_changes(neb_fmax=0.02, neb_steps=300)


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so no handler on the way up writes anything."""


class Dying(EMT):
    """EMT that dies at the ``at``-th force call of the process (0: never)."""

    at = 0
    calls = 0

    def calculate(self, *args, **kwargs) -> None:
        Dying.calls += 1
        if Dying.at and Dying.calls == Dying.at:
            raise Killed
        super().calculate(*args, **kwargs)


register(Engine(
    name="emt-dying", description="EMT killed at a chosen force call (tests)", relax_maker=relax_maker,
    static_maker=static_maker, write_inputs=write_emt, read_tolerances=read_emt,
    neb_maker=lambda settings=PAPER, optimizer=None: CiNebMaker(
        engine="emt-dying", settings=settings, **({"optimizer": optimizer} if optimizer else {})),
    calculator=lambda settings=PAPER, stress=True: Dying()))


def run_neb(folder: Path, optimizer: str, monkeypatch, die_at: int = 0):
    folder.mkdir(exist_ok=True)
    monkeypatch.chdir(folder)
    Dying.at, Dying.calls = die_at, 0
    start, end = au_on_al100()
    maker = CiNebMaker(engine="emt-dying", settings=SETTINGS, optimizer=optimizer)
    return CiNebMaker.make.original(maker, neb_images(start, end, 3, method="idpp"), "au-al100", {"site": 0})


@pytest.mark.parametrize("optimizer", ["ode", "bfgs"])
@pytest.mark.parametrize("when", [0.3, 0.75])  # of the uninterrupted run's force calls
def test_a_killed_neb_resumes_on_the_uninterrupted_path(tmp_path, monkeypatch, optimizer, when):
    whole = run_neb(tmp_path / "whole", optimizer, monkeypatch)
    assert whole.converged and not whole.resumed
    print(f"{optimizer}: {whole.steps} steps, {Dying.calls} force calls, {whole.forward_barrier:.9f} eV")
    with pytest.raises(Killed):
        run_neb(tmp_path / "killed", optimizer, monkeypatch, die_at=int(when * Dying.calls))
    assert (tmp_path / "killed" / CHECKPOINT).is_file()
    assert (tmp_path / "killed" / STATE).is_file() == (optimizer == "bfgs")
    again = run_neb(tmp_path / "killed", optimizer, monkeypatch)
    assert again.converged and again.resumed
    # the same steps to the same band: measured equal to ~1e-9 eV (the checkpoint keeps 1e-8 Å)
    assert again.steps == whole.steps
    assert again.forward_barrier == pytest.approx(whole.forward_barrier, abs=1e-6)
    assert np.allclose(again.energies, whole.energies, atol=1e-6)
    # the killed call's band is evaluated again once: a few force calls more, never fewer
    assert whole.force_calls <= again.force_calls <= whole.force_calls + 2 * 3


def test_fire_resumes_with_ase_restart_data(tmp_path, monkeypatch):
    """FIRE's velocity and time step come back (ASE's restart data); its mixing parameter and
    step counter since the last uphill step do not (ASE does not save them): close, not equal."""
    whole = run_neb(tmp_path / "whole", "fire", monkeypatch)
    with pytest.raises(Killed):
        run_neb(tmp_path / "killed", "fire", monkeypatch, die_at=40)
    assert (tmp_path / "killed" / STATE).is_file()
    again = run_neb(tmp_path / "killed", "fire", monkeypatch)
    assert again.converged and again.resumed and whole.converged
    assert again.forward_barrier == pytest.approx(whole.forward_barrier, abs=5e-3)


def test_a_fresh_run_ignores_a_stale_optimizer_state(tmp_path, monkeypatch):
    """Optimizer data without a checkpoint beside it (another job's, a hand copy) is not read."""
    folder = tmp_path / "stale"
    folder.mkdir()
    (folder / STATE).write_bytes(b"not a pickle")
    doc = run_neb(folder, "bfgs", monkeypatch)
    assert doc.converged and not doc.resumed
