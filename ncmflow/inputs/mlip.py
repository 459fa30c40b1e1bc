"""The embedded engine: a universal ML potential plus the paper's D3, as one ASE calculator.

Every potential in :data:`POTENTIALS` ships its weights inside its wheel (chgnet, sevenn), so
nothing is downloaded at run time; a model whose weights are not installed fails at once. The
potentials are trained without dispersion, so D3(BJ) from ``dftd3`` is summed in exactly as a
DFT-D3 code would add it, with the parameters of the functional each one was trained on (PBE,
or r2SCAN for CHGNet's r2SCAN model). Heavy imports (torch, chgnet, sevenn, dftd3) happen inside
the functions so importing ncmflow stays fast; torch's thread settings are left alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pymatgen.core import Structure

from ncmflow.inputs.settings import (
    PAPER,
    RUN_FILE,
    DftSettings,
    check_elements,
    job_tolerances,
    relaxes_cell,
    to_ase_atoms,
)

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

_D3_DAMPING = {"d3bj": "d3bj", "d3zero": "d3zero"}  # dftd3.ase names


@dataclass(frozen=True)
class Potential:
    """One offline ML potential: how to build its calculator and which D3 belongs to it."""

    loader: Callable[[], Calculator]  # a fresh calculator around the process-wide weights
    d3_method: str  # dftd3 functional: the one the training data were computed with
    description: str
    # several structures in one model call: frames -> [(energy eV, forces eV/Å)], no D3
    batch: Callable[[list[Any]], list[tuple[float, Any]]] | None = None


@lru_cache(maxsize=8)  # one entry per model name
def _chgnet_model(model_name: str) -> Any:
    """Load one CHGNet model once per process (≈2 s); calculators share the weights."""
    from chgnet.model import CHGNet

    with contextlib.redirect_stdout(io.StringIO()):  # "CHGNet v0.3.0 initialized with …"
        return CHGNet.load(model_name=model_name, verbose=False, use_device="cpu")


def _chgnet(model_name: str) -> Calculator:
    from chgnet.model.dynamics import CHGNetCalculator

    class LeanCHGNetCalculator(CHGNetCalculator):
        """CHGNet computing what ASE asks for, not always energy+forces+stress+moments.

        ``CHGNetCalculator.calculate`` runs task "efsm" on every call; the stress is a second
        backward pass that a fixed-cell relaxation or a NEB never reads. Measured (109-atom
        cPAN slab, 2 threads, 2026-12-02): efsm 0.92 s, ef 0.54 s; energies and forces identical.
        """

        def calculate(self, atoms=None, properties=None, system_changes=None, task=None) -> None:
            wanted = set(properties or ("energy", "forces", "stress", "magmoms"))
            task = task or ("ef" + "s" * ("stress" in wanted) + "m" * ("magmoms" in wanted))
            super().calculate(atoms, properties, system_changes, task=task)

    with contextlib.redirect_stdout(io.StringIO()):  # it prints "CHGNet will run on cpu"
        return LeanCHGNetCalculator(_chgnet_model(model_name), use_device="cpu")


def _chgnet_batch(model_name: str, frames: list[Any]) -> list[tuple[float, Any]]:
    """Energies and forces of ``frames`` in one batched CHGNet call (task "ef")."""
    from pymatgen.io.ase import AseAtomsAdaptor

    model = _chgnet_model(model_name)
    graphs = [model.graph_converter(AseAtomsAdaptor.get_structure(a)) for a in frames]
    predictions = model.predict_graph(graphs, task="ef", batch_size=len(graphs))
    predictions = predictions if isinstance(predictions, list) else [predictions]
    # e * n in CHGNet's float32, as CHGNetCalculator computes it: the same total to the bit
    return [(float(p["e"] * (len(a) if model.is_intensive else 1)), p["f"])
            for p, a in zip(predictions, frames, strict=True)]


def _sevennet_batch(name: str, frames: list[Any]) -> list[tuple[float, Any]]:
    """Energies and forces of ``frames`` in one batched SevenNet call (a torch_geometric Batch)."""
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import unlabeled_atoms_to_graph
    from torch_geometric.data import Batch

    model = _sevennet_model(name)
    cutoff = model.cutoff  # the model instance carries it (SevenNetCalculator reads it there)
    batch = Batch.from_data_list([
        AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(a, cutoff, with_shift=False))
        for a in frames])
    model.set_is_batch_data(True)  # the calculator's model is built for one structure at a time
    try:
        out = model(batch)
    finally:
        model.set_is_batch_data(False)
    ptr = out["ptr"].tolist()
    forces = out["inferred_force"].detach().numpy()
    energies = out["inferred_total_energy"].detach().numpy().reshape(-1)
    return [(float(energies[i]), forces[ptr[i]:ptr[i + 1]]) for i in range(len(frames))]


def _sevenn_key(name: str) -> str:
    """'7net-mf-0' → 'mf_0', the ``SEVENNET_MF_0`` constant of ``sevenn._const``, lower case."""
    return name.lower().removeprefix("sevennet-").removeprefix("7net-").replace("-", "_")


def sevennet_checkpoint(name: str) -> Path:
    """The checkpoint of sevenn's pretrained ``name`` inside the installed wheel.

    Resolved from ``sevenn._const`` without ``sevenn.util.pretrained_name_to_path``, which
    downloads missing weights (and leaves an empty folder in site-packages when it cannot).
    A model sevenn does not ship fails here, before anything touches the disk or the network.
    """
    try:
        from sevenn import _const
    except ImportError:
        raise ImportError(
            f"SevenNet model {name!r} needs the sevenn package: pip install sevenn"
        ) from None
    checkpoints = {
        key.lower().removeprefix("sevennet_"): Path(value)
        for key, value in vars(_const).items()
        if key.startswith("SEVENNET_") and isinstance(value, str) and value.endswith(".pth")
    }
    checkpoints.setdefault("0", checkpoints.get("0_11jul2024"))  # sevenn's alias for 7net-0
    path = checkpoints.get(_sevenn_key(name))
    if path is None or not path.is_file():
        from sevenn.util import get_available_pretrained_models

        shipped = [n for n in get_available_pretrained_models()
                   if (p := checkpoints.get(_sevenn_key(n))) is not None and p.is_file()]
        raise RuntimeError(
            f"SevenNet model {name!r} has no weights in the installed sevenn wheel and ncmflow "
            f"never downloads at run time; offline sevenn checkpoints: {', '.join(shipped)} "
            f"(ncmflow potentials: {', '.join(MODELS)})"
        )
    return path


@lru_cache(maxsize=8)  # one entry per model name
def _sevennet_model(name: str) -> Any:
    """Build one SevenNet model once per process; calculators share it."""
    from sevenn.checkpoint import SevenNetCheckpoint

    return SevenNetCheckpoint(str(sevennet_checkpoint(name))).build_model()


def _sevennet(name: str, modal: str | None = None) -> Calculator:
    model = _sevennet_model(name)  # fails fast, before sevenn's downloader could run
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():  # "No tensor product accelerator is enabled" (CUDA only)
        warnings.filterwarnings("ignore", message="No tensor product accelerator")
        return SevenNetCalculator(model, file_type="model_instance", device="cpu", modal=modal)


POTENTIALS: MappingProxyType[str, Potential] = MappingProxyType({
    "chgnet": Potential(
        partial(_chgnet, "0.3.0"), "pbe",
        "CHGNet 0.3.0 (MPtrj, PBE/PBE+U with MP2020 corrections) + D3(BJ)-PBE",
        partial(_chgnet_batch, "0.3.0"),
    ),
    "chgnet-r2scan": Potential(
        partial(_chgnet, "r2scan"), "r2scan",
        "CHGNet r2SCAN (transfer-learned on MP r2SCAN) + D3(BJ)-r2SCAN",
        partial(_chgnet_batch, "r2scan"),
    ),
    "sevennet": Potential(
        partial(_sevennet, "7net-0"), "pbe", "SevenNet-0 11Jul2024 (MPtrj, PBE/PBE+U) + D3(BJ)-PBE",
        partial(_sevennet_batch, "7net-0"),
    ),
    "sevennet-mf": Potential(
        partial(_sevennet, "7net-mf-0", "PBE"), "pbe",
        "SevenNet-MF-0, PBE head (MPtrj + MP r2SCAN) + D3(BJ)-PBE",
    ),
    "sevennet-l3i5": Potential(
        partial(_sevennet, "7net-l3i5"), "pbe",
        "SevenNet-l3i5 (MPtrj, PBE/PBE+U; l_max 3, 5 layers) + D3(BJ)-PBE",
        partial(_sevennet_batch, "7net-l3i5"),
    ),
})
MODELS: tuple[str, ...] = tuple(POTENTIALS)


def potential(model: str) -> Potential:
    """The registered potential ``model``; an unknown name lists the choices."""
    try:
        return POTENTIALS[model]
    except KeyError:
        raise ValueError(
            f"unknown ML model {model!r}; choose one of {', '.join(MODELS)} (all ship offline)"
        ) from None


def dispersion_calculator(settings: DftSettings = PAPER, method: str | None = None) -> Calculator | None:
    """The D3 term alone (None for ``dispersion="none"``) for functional ``method``.

    ``method`` defaults to ``settings.xc`` (PBE), the parameters the DFT engines use.
    """
    if settings.dispersion == "none":
        return None
    from dftd3.ase import DFTD3

    return DFTD3(method=method or settings.xc, damping=_D3_DAMPING[settings.dispersion])


def ml_calculator(settings: DftSettings = PAPER, model: str | None = None, stress: bool = True) -> Calculator:
    """ML potential (``settings.ml_model`` unless ``model`` is given) + its own D3.

    ``stress=False`` leaves stress out of the calculator's properties, so nothing computes it
    (atomate2's relaxation records the stress whenever the calculator offers one).
    """
    name = model or settings.ml_model
    chosen = potential(name)
    try:
        ml = chosen.loader()
    except ImportError as err:
        raise ImportError(f"ML model {name!r}: {err}") from None
    except (RuntimeError, FileNotFoundError) as err:  # weights missing from the wheel
        raise RuntimeError(f"ML model {name!r}: {err}") from None
    d3 = dispersion_calculator(settings, chosen.d3_method)
    if d3 is not None:
        from ase.calculators.mixing import SumCalculator

        ml = SumCalculator([ml, d3])
    if not stress:
        ml.implemented_properties = [p for p in ml.implemented_properties if p != "stress"]
    return ml


def ml_band_evaluator(settings: DftSettings = PAPER, model: str | None = None
                      ) -> Callable[[list[Any]], list[dict[str, Any]]]:
    """``frames -> [{"energy", "free_energy", "forces"}]``: the ML part of all frames in one
    batched model call, each frame's own D3 added as :func:`ml_calculator` adds it.

    For a NEB's moving images. Measured on 2 CPU cores at 109 atoms, 3 images (2026-12-02):
    CHGNet batched 2.15 s vs 1.40 s one by one, SevenNet-0 5.85 vs 3.82 s — the backward pass
    over the concatenated graph is slower on CPU, so the study does not batch by default.
    """
    name = model or settings.ml_model
    chosen = potential(name)
    if chosen.batch is None:
        raise ValueError(f"ML model {name!r} has no batched evaluation; run its images one by one")

    d3 = dispersion_calculator(settings, chosen.d3_method)  # one for the band, as per image

    def evaluate(frames: list[Any]) -> list[dict[str, Any]]:
        results = []
        for frame, (energy, forces) in zip(frames, chosen.batch(frames), strict=True):
            if d3 is not None:
                energy += d3.get_potential_energy(frame)
                forces = forces + d3.get_forces(frame)
            results.append({"energy": energy, "free_energy": energy, "forces": forces})
        return results

    return evaluate


def run_settings(
    job: str, structure: Structure, settings: DftSettings = PAPER, bulk: bool | None = None
) -> dict[str, Any]:
    """What the workflows layer needs to run ``job`` with the ML engine (JSON-ready)."""
    relax_cell = job == "relax" and relaxes_cell(structure, bulk)
    chosen = potential(settings.ml_model)
    return {
        "job": job,
        "calculator": settings.ml_model,
        "dispersion": settings.dispersion,
        "d3_method": None if settings.dispersion == "none" else chosen.d3_method,
        "optimizer": settings.optimizer,
        **job_tolerances(job, settings),
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
    xyz_path, json_path = outdir / "images.extxyz", outdir / RUN_FILE
    write(xyz_path, [to_ase_atoms(image, settings) for image in images], format="extxyz")
    json_path.write_text(json.dumps(run, indent=2) + "\n")
    return [xyz_path, json_path]
