"""The embedded default: CHGNet (weights in its wheel) + D3(BJ) from dftd3, on the CPU.

Other offline potentials (CHGNet r2SCAN, SevenNet) are chosen by name: :func:`potentials`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from functools import lru_cache

from atomate2.ase.jobs import AseRelaxMaker

from ncmflow.inputs.mlip import MODELS, potential, write_mlip
from ncmflow.inputs.settings import PAPER, DftSettings, written_tolerances
from ncmflow.workflows.cores import idle_cores
from ncmflow.workflows.engines import Engine, Tolerances
from ncmflow.workflows.neb import CiNebMaker


@lru_cache(maxsize=1)
def torch_threads() -> int:
    """Threads for torch, chosen once per process from the cores that are idle at the start.

    torch's OpenMP threads spin-wait: with another busy process on a 2-core machine, two threads
    made a 42-atom CHGNet call 8.2 s instead of 0.73 s with one; on an idle machine two threads
    are 1.5× faster than one (109 atoms: 0.87 vs 1.33 s). ``NCMFLOW_TORCH_THREADS`` overrides.
    """
    if "NCMFLOW_TORCH_THREADS" in os.environ:
        return max(1, int(os.environ["NCMFLOW_TORCH_THREADS"]))
    return idle_cores(sample=0.5)  # once per process: measured now, not the last minute's load


def potentials() -> tuple[str, ...]:
    """The names ``settings.ml_model`` accepts: the offline potentials of ``ncmflow.inputs.mlip``."""
    return MODELS


def calculator(settings: DftSettings = PAPER, stress: bool = True):
    """The potential ``settings.ml_model`` + D3 with the functional it was trained on (torch
    threads set); ``stress=False`` for runs at fixed cell, which then never pay for it.

    Not atomate2's ``forcefields.utils.ase_calculator``: its CHGNet calculator computes energy,
    forces, stress and moments on every call (0.92 s vs 0.54 s for "ef", 109 atoms) and adds
    no D3; the weights are shared across calculators here (see ``ncmflow.inputs.mlip``).
    """
    import torch

    from ncmflow.inputs.mlip import ml_calculator

    potential(settings.ml_model)  # an unknown name fails before torch is touched
    # CHGNet converts a grad-tracking tensor on every call; harmless, and it floods the terminal
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
    torch.set_num_threads(torch_threads())
    return ml_calculator(settings, stress=stress)


def band_evaluator(settings: DftSettings = PAPER):
    """All moving images of a NEB step in one batched model call (see ``ml_band_evaluator``)."""
    import torch

    from ncmflow.inputs.mlip import ml_band_evaluator

    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
    torch.set_num_threads(torch_threads())
    return ml_band_evaluator(settings)


@dataclass
class MlipRelaxMaker(AseRelaxMaker):
    """atomate2's ASE relaxation with the settings' optimizer (BFGS) on ``ml_model`` + D3."""

    name: str = "mlip relax"
    settings: DftSettings = PAPER

    def _get_calculator(self):
        return calculator(self.settings, stress=self.relax_cell)


@dataclass
class MlipStaticMaker(MlipRelaxMaker):
    """A single point, the way atomate2's static makers are relaxations of one step."""

    name: str = "mlip static"
    relax_cell: bool = False
    steps: int = 1

    def _get_calculator(self):
        return calculator(self.settings)  # a single point reports its stress


def relax_maker(settings: DftSettings = PAPER, relax_cell: bool = False) -> MlipRelaxMaker:
    potential(settings.ml_model)  # a misspelt model fails when the flow is built, not when it runs
    return MlipRelaxMaker(settings=settings, relax_cell=relax_cell, steps=settings.relax_steps,
                          relax_kwargs={"fmax": settings.fmax},
                          optimizer_kwargs={"optimizer": settings.optimizer})


def static_maker(settings: DftSettings = PAPER) -> MlipStaticMaker:
    potential(settings.ml_model)
    return MlipStaticMaker(settings=settings)


def neb_maker(settings: DftSettings = PAPER, optimizer: str | None = None) -> CiNebMaker:
    potential(settings.ml_model)
    return CiNebMaker(engine="mlip", settings=settings, potential=settings.ml_model,
                      **({"optimizer": optimizer} if optimizer else {}))


ENGINE = Engine(
    name="mlip",
    description="CHGNet + D3(BJ) on the CPU (embedded default; also CHGNet r2SCAN, SevenNet)",
    relax_maker=relax_maker,
    static_maker=static_maker,
    neb_maker=neb_maker,
    write_inputs=write_mlip,
    read_tolerances=lambda job, folder: Tolerances(**written_tolerances(folder)),
    calculator=calculator,
    band_evaluator=band_evaluator,
    python_modules=("chgnet", "dftd3"),
    install_hint="pip install 'ncmflow[mlip]' (after pip install torch==2.13.0)",
)
