"""The embedded engine: a universal ML potential plus the paper's D3, as one ASE calculator.

The potentials are trained on PBE(+U) data without dispersion, so D3 from ``dftd3`` is summed
in exactly as a PBE-D3 code would add it. Heavy imports (torch, chgnet, dftd3) happen inside
the functions so importing ncmflow stays fast; torch's thread settings are left alone.
"""

from __future__ import annotations

import contextlib
import io
import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymatgen.core import Structure

from ncmflow.inputs.settings import (
    PAPER,
    DftSettings,
    check_elements,
    relaxes_cell,
    to_ase_atoms,
)

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

MODELS = ("chgnet", "sevennet")
SEVENNET_MODEL = "7net-0"
_D3_DAMPING = {"d3bj": "d3bj", "d3zero": "d3zero"}  # dftd3.ase names


@lru_cache(maxsize=1)
def _chgnet_model() -> Any:
    """Load CHGNet once per process (≈2 s); calculators share the weights."""
    from chgnet.model import CHGNet

    return CHGNet.load(verbose=False, use_device="cpu")


def _potential(model: str) -> Calculator:
    if model == "chgnet":
        from chgnet.model.dynamics import CHGNetCalculator

        with contextlib.redirect_stdout(io.StringIO()):  # it prints "CHGNet will run on cpu"
            return CHGNetCalculator(_chgnet_model(), use_device="cpu")
    if model == "sevennet":
        try:
            from sevenn.calculator import SevenNetCalculator
        except ImportError:
            raise ImportError("model 'sevennet' needs the sevenn package: pip install sevenn") from None
        return SevenNetCalculator(SEVENNET_MODEL, device="cpu")
    raise ValueError(f"unknown ML model {model!r}; choose one of {', '.join(MODELS)}")


def dispersion_calculator(settings: DftSettings = PAPER) -> Calculator | None:
    """The D3 term alone (None for ``dispersion="none"``), same parameters as the DFT engines."""
    if settings.dispersion == "none":
        return None
    from dftd3.ase import DFTD3

    return DFTD3(method=settings.xc, damping=_D3_DAMPING[settings.dispersion])


def ml_calculator(settings: DftSettings = PAPER, model: str | None = None) -> Calculator:
    """ML potential (``settings.ml_model`` unless ``model`` is given) + D3, as in PBE-D3."""
    potential = _potential(model or settings.ml_model)
    d3 = dispersion_calculator(settings)
    if d3 is None:
        return potential
    from ase.calculators.mixing import SumCalculator

    return SumCalculator([potential, d3])


def run_settings(
    job: str, structure: Structure, settings: DftSettings = PAPER, bulk: bool | None = None
) -> dict[str, Any]:
    """What the workflows layer needs to run ``job`` with the ML engine (JSON-ready)."""
    relax_cell = job == "relax" and relaxes_cell(structure, bulk)
    return {
        "job": job,
        "calculator": settings.ml_model,
        "dispersion": settings.dispersion,
        "optimizer": settings.optimizer,
        "fmax": settings.fmax,
        "relax_cell": relax_cell,
        "stress_tol_gpa": settings.stress_tol,
        "climbing_image": job == "neb",
        "settings": settings.as_dict(),
    }


def write_mlip(
    job: str,
    images: list[Structure],
    outdir: Path,
    settings: DftSettings = PAPER,
    bulk: bool | None = None,
) -> list[Path]:
    """Write ``images.extxyz`` (all frames; fixed atoms as FixAtoms) and ``settings.json``."""
    from ase.io import write

    for image in images:
        check_elements(image)
    run = run_settings(job, images[0], settings, bulk)  # validates before anything is written
    outdir.mkdir(parents=True, exist_ok=True)
    xyz_path, json_path = outdir / "images.extxyz", outdir / "settings.json"
    write(xyz_path, [to_ase_atoms(image, settings) for image in images], format="extxyz")
    json_path.write_text(json.dumps(run, indent=2) + "\n")
    return [xyz_path, json_path]
