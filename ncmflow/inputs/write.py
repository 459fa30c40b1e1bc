"""One entry point that writes any job's inputs for any engine.

Engines register a writer ``(job, images, outdir, settings, bulk) -> written paths`` in
:data:`ENGINE_WRITERS`; adding an engine is one module plus one line here. NEB images are
interpolated once, here, so every engine starts from the same IDPP path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from ncmflow.inputs.castep import write_castep
from ncmflow.inputs.gpaw import write_gpaw
from ncmflow.inputs.mlip import write_mlip
from ncmflow.inputs.settings import PAPER, DftSettings, check_elements, to_ase_atoms
from ncmflow.inputs.vasp import write_vasp

EngineWriter = Callable[[str, list[Structure], Path, DftSettings, bool | None], list[Path]]

ENGINE_WRITERS: dict[str, EngineWriter] = {
    "vasp": write_vasp,
    "castep": write_castep,
    "mlip": write_mlip,
    "gpaw": write_gpaw,
}
JOBS = ("relax", "static", "neb", "lobster")
JOB_ENGINES = {"lobster": ("vasp",)}  # jobs only some engines can do


def neb_images(
    start: Structure, end: Structure, n_images: int = 5, method: str = "idpp"
) -> list[Structure]:
    """Start, ``n_images`` interpolated images (IDPP, or ``linear``) and end, at fixed cell.

    IDPP (ASE) keeps interpolated atoms from overlapping, which matters for a Ni hop through
    the shared tetrahedral site. Site properties (selective dynamics, moments) follow the
    start structure.
    """
    from ase.mep import NEB

    start_species = [site.specie.symbol for site in start]
    end_species = [site.specie.symbol for site in end]
    if start_species != end_species:
        where = next(
            (
                f"site {i}: {a} vs {b}"
                for i, (a, b) in enumerate(zip(start_species, end_species, strict=False))
                if a != b
            ),
            f"{len(start)} vs {len(end)} sites",
        )
        raise ValueError(f"images have different atom ordering: {where}")
    if not np.allclose(start.lattice.matrix, end.lattice.matrix, atol=1e-3):
        raise ValueError("start and end cells differ: NEB runs at the start's fixed cell")
    frames = [to_ase_atoms(start) for _ in range(n_images + 1)] + [to_ase_atoms(end)]
    for frame in frames:
        frame.set_constraint()  # interpolate every atom; constraints return via site props
    if method not in ("idpp", "linear"):
        raise ValueError(f"unknown interpolation {method!r}: choose idpp or linear")
    NEB(frames, method="improvedtangent").interpolate(method=method, mic=True)
    return (
        [start.copy()]
        + [
            Structure(
                start.lattice,
                start.species,
                frame.get_scaled_positions(wrap=False),
                site_properties=start.site_properties,
            )
            for frame in frames[1:-1]
        ]
        + [end.copy()]
    )


def write_inputs(
    engine: str,
    job: str,
    structures: list[Structure],
    outdir: Path,
    settings: DftSettings = PAPER,
    n_images: int = 5,
    bulk: bool | None = None,
) -> list[Path]:
    """Write ``job`` inputs for ``engine`` under ``outdir``; return every written path.

    ``neb`` takes exactly (start, end). Other jobs take one or more structures; several go
    to numbered sub-folders ``00_<formula>``, … . ``bulk=True`` asks for a cell relaxation
    and is refused for slabs; ``None`` decides from the vacuum.
    """
    if engine not in ENGINE_WRITERS:
        raise ValueError(f"unknown engine {engine!r}; valid engines: {', '.join(ENGINE_WRITERS)}")
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; valid jobs: {', '.join(JOBS)}")
    if engine not in JOB_ENGINES.get(job, ENGINE_WRITERS):
        only = " or ".join(repr(e) for e in JOB_ENGINES[job])
        raise ValueError(f"job {job!r} is only available for engine {only}")
    if not structures:
        raise ValueError("no structures given")
    for structure in structures:
        check_elements(structure)
    writer = ENGINE_WRITERS[engine]
    outdir = Path(outdir)
    if job == "neb":
        if len(structures) != 2:
            raise ValueError(f"job 'neb' takes exactly two structures (start, end), got {len(structures)}")
        return writer(job, neb_images(*structures, n_images=n_images), outdir, settings, bulk)
    if len(structures) == 1:
        return writer(job, structures, outdir, settings, bulk)
    written = []
    for i, structure in enumerate(structures):
        subdir = outdir / f"{i:02d}_{structure.reduced_formula}"
        written += writer(job, [structure], subdir, settings, bulk)
    return written
