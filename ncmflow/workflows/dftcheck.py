"""The study's DFT check: single points of a DFT engine on every ML NEB's end points and saddle.

The offline ML potentials disagree with each other by more than the cPAN effect the study
measures; DFT single points on their own geometries (DFT//ML) say which to believe. Per
(potential, model, site): the two relaxed end points (shared by the site's paths, and by sites
sharing a start) and each path's climbing image, each its own job — a killed run resumes
without recomputing a finished point — then one :class:`DftCheckDoc` per path.
"""

from __future__ import annotations

from typing import Any

from jobflow import Job, Response, job
from pymatgen.core import Structure

from ncmflow.inputs.settings import DftSettings
from ncmflow.workflows.documents import BarrierDoc, DftCheckDoc
from ncmflow.workflows.engines import get_engine

POINTS = ("start", "saddle", "end")


@job
def saddle_image(neb: BarrierDoc) -> Structure | Response:
    """The NEB's climbing image; a NEB without one (its end points broke) stops its check."""
    if not neb.energies or neb.saddle_index is None:
        return Response(stop_children=True)
    return neb.images[neb.saddle_index]


@job(output_schema=DftCheckDoc)
def dft_check(neb: BarrierDoc, start: dict, saddle: dict, end: dict, dft: str) -> DftCheckDoc:
    """ML and DFT//ML barrier and reaction energy of one NEB path."""
    k = neb.saddle_index
    ml = {"start": neb.energies[0], "saddle": neb.energies[k], "end": neb.energies[-1]}
    points = {"start": start, "saddle": saddle, "end": end}
    e = {w: float(p["energy"]) for w, p in points.items()}
    ni = neb.moved_index
    moments = ({w: float(p["magmoms"][ni]) for w, p in points.items() if p.get("magmoms")}
               if ni is not None else None)
    return DftCheckDoc(
        model=neb.model, site=neb.site, path=neb.path, engine=neb.engine, potential=neb.potential,
        hop_kind=neb.hop_kind, dft=dft, converged=neb.converged, saddle_index=k,
        ml_energies=ml, dft_energies=e, ml_barrier=ml["saddle"] - ml["start"],
        ml_reaction_energy=ml["end"] - ml["start"], dft_barrier=e["saddle"] - e["start"],
        dft_reaction_energy=e["end"] - e["start"], hopping_ni_moments=moments or None,
        dft_moments={w: float(p["magmom"]) for w, p in points.items() if p.get("magmom") is not None} or None,
        dft_wall_time=sum(float(p.get("wall_time") or 0.0) for p in points.values()),
    )


class DftCheckMaker:
    """Builds the check jobs of a study: ``engine``'s single points with ``settings`` and
    ``options`` (e.g. ``mode="lcao"``, ``kpts=(1, 1, 1)``), end-point jobs shared by uuid."""

    def __init__(self, engine: str, settings: DftSettings, options: dict[str, Any], label: str) -> None:
        energy = get_engine(engine).energy_job
        if energy is None:
            raise ValueError(f"engine '{engine}' has no single-point energy job: the DFT check "
                             "needs one (gpaw has)")
        self.energy, self.settings, self.options, self.label = energy, settings, options, label
        self.shared: dict[str, Job] = {}

    def _point(self, structure: Any, meta: dict, which: str, path: str | None = None) -> Job:
        point = self.energy(structure, self.settings, **self.options)
        point.name = f"{meta['row']} dft {which}" + (f" {path}" if path else "")
        point.update_metadata({**meta["tags"], "stage": f"dft {which}", **({"path": path} if path else {})})
        return point

    def jobs(self, relaxed: tuple[Job, Job], nebs: list[Any], paths: tuple[str, ...],
             meta: dict) -> tuple[list[Job], list[Any]]:
        """(new jobs, check outputs) for one site: ``relaxed`` its end-point relaxations,
        ``nebs`` its NEB outputs (one per path), ``meta`` {"row": display label, "tags": metadata}."""
        made: list[Job] = []
        ends = []
        for which, relax in zip(("start", "end"), relaxed, strict=True):
            if relax.uuid not in self.shared:
                self.shared[relax.uuid] = self._point(relax.output.structure, meta, which)
                made.append(self.shared[relax.uuid])
            ends.append(self.shared[relax.uuid])
        outputs = []
        for path, neb in zip(paths, nebs, strict=False):
            saddle = saddle_image(neb)
            saddle.name = f"{meta['row']} saddle {path}"
            saddle.update_metadata({**meta["tags"], "stage": "saddle image", "path": path})
            point = self._point(saddle.output, meta, "saddle", path)
            check = dft_check(neb, ends[0].output, point.output, ends[1].output, self.label)
            check.name = f"{meta['row']} dft check {path}"
            check.update_metadata({**meta["tags"], "stage": "dft check", "path": path})
            made += [saddle, point, check]
            outputs.append(check.output)
        return made, outputs
