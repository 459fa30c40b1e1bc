"""Ni-migration barriers: relax both end points → interpolate → CI-NEB → BarrierDoc.

atomate2's ``ForceFieldNebFromEndpointsMaker.make`` has the images-only signature (0.1.5) and
its ``run_neb`` keeps neither forces nor force-call counts, so the NEB step for calculator
engines is written here once, on ASE's ``NEB`` (improved tangent, climbing image) and its
``NEBOptimizer`` (ODE), which needs about half the force calls of plain ASE + BFGS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from jobflow import Flow, Job, Maker, job
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from ncmflow.inputs.settings import PAPER, DftSettings
from ncmflow.structures.path import neb_images
from ncmflow.workflows import progress
from ncmflow.workflows.diskfull import replace_file
from ncmflow.workflows.documents import BarrierDoc, ni_n_distances
from ncmflow.workflows.engines import get_engine

CHECKPOINT = "neb_checkpoint.extxyz"
NEB_OPTIMIZERS = ("ode", "static", "krylov", "bfgs", "fire")  # NEBOptimizer methods, ase.optimize
EXPLODED = 0.7  # Å: closer than any bond, an end point relaxation went wrong
DRIFT_LIMIT = 1.0  # Å: an end point whose hopping Ni ends closer than this to the start fell back
PATHS = ("A", "B")  # a barrier flow's NEBs: the main path, then the confirming one (if any)


class CountingCalculator(Calculator):
    """Wraps a calculator and counts its evaluations (the NEB cost that matters)."""

    def __init__(self, inner: Calculator) -> None:
        super().__init__()
        self.inner = inner
        self.implemented_properties = list(inner.implemented_properties)
        self.calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        self.inner.calculate(self.atoms, properties, system_changes)
        self.results = dict(self.inner.results)
        self.calls += 1


def band_neb(images: list[Any], band: Any = None, **kwargs: Any) -> Any:
    """ASE's ``NEB``; with ``band`` (frames -> results) every step's moving images are evaluated
    in one call before ASE reads them from each image's calculator, so tangents, the climbing
    image, the optimizers and the checkpoint work exactly as one image at a time."""
    from ase.mep import NEB

    class BandNEB(NEB):
        def get_forces(self):
            stale = [im for im in self.images[1:-1]
                     if im.calc.check_state(im) or "forces" not in im.calc.results]
            if stale:
                for image, results in zip(stale, band(stale), strict=True):
                    image.calc.atoms = image.copy()
                    image.calc.results = dict(results)
                    image.calc.calls += 1
            return super().get_forces()

    return (BandNEB if band is not None else NEB)(images, **kwargs)


@job
def interpolate_images(
    start: Structure, end: Structure, n_images: int, method: str = "idpp"
) -> list[Structure]:
    """Images between relaxed end points (IDPP by default, ``linear`` on request)."""
    return neb_images(start, end, n_images, method=method)


def _hopping_distance(start: Structure, end: Structure) -> tuple[int, float]:
    """Index and periodic displacement of the atom that moves most between the end points."""
    d = np.array([start[i].distance(end[i]) for i in range(len(start))])
    return int(d.argmax()), float(d.max())


def _broken_end_point(start: Structure, end: Structure, idx: int, hop: float) -> str | None:
    """Why relaxed end points cannot bound this hop (None when they can)."""
    for name, s in (("start", start), ("end", end)):
        closest = (s.distance_matrix + np.diag([np.inf] * len(s))).min()
        if closest < EXPLODED:
            return f"{name} relaxation exploded: two atoms {closest:.2f} Å apart"
    if hop < DRIFT_LIMIT:
        return f"end point drifted back: hopping atom {idx} is {hop:.2f} Å from its start after relaxation"
    return None


@dataclass
class CiNebMaker(Maker):
    """Climbing-image NEB with any local ASE calculator of the engine registry, to
    ``settings.neb_fmax`` in at most ``settings.neb_steps`` iterations."""

    name: str = "ci-neb"
    engine: str = "mlip"
    settings: DftSettings = PAPER
    optimizer: str = "ode"  # ASE NEBOptimizer method; "bfgs"/"fire" use ase.optimize
    tangent: str = "improvedtangent"
    engine_options: dict = field(default_factory=dict)  # more keywords for the engine's calculator
    potential: str | None = None  # what computes the energies, for engines with several (mlip)
    batch: bool = False  # moving images in one model call (engines with a band_evaluator)

    def __post_init__(self) -> None:
        if self.optimizer not in NEB_OPTIMIZERS:
            raise ValueError(f"unknown NEB optimizer {self.optimizer!r}: "
                             f"choose one of {', '.join(NEB_OPTIMIZERS)}")

    @property
    def fmax(self) -> float:
        return self.settings.neb_fmax

    @job(data=["images", "initial_images", "forces"], output_schema=BarrierDoc)
    def make(self, images: list[Structure], model: str, info: dict | None = None) -> BarrierDoc:
        """Run the NEB; a NEB that stops early is stored as unconverged with the reason.

        ``info`` carries the site's identity into the document (site, hop kind, potential, path,
        the hopping Ni and the bound N: see ``BarrierDoc``).
        """
        engine = get_engine(self.engine)
        if self.batch and engine.band_evaluator is None:
            raise ValueError(f"engine '{self.engine}' evaluates NEB images one at a time: batch=False")
        idx, hop = _hopping_distance(images[0], images[-1])
        info = {"interpolation": "idpp", "potential": self.potential, **(info or {})}
        info = {"path_method": f"{info['interpolation']}, {len(images) - 2} images, {self.tangent}, "
                               f"{self.optimizer}", **info}
        common = {"model": model, "engine": self.engine, "fmax": self.fmax, "hop_distance": hop,
                  "optimizer": self.optimizer, "tangent": self.tangent, "initial_images": images, **info}
        reason = _broken_end_point(images[0], images[-1], idx, hop)
        if reason:
            return BarrierDoc(images=images, state="failed", converged=False, reason=reason, **common)
        frames, done = self._frames(images)
        counters = []
        for frame in frames:
            counters.append(CountingCalculator(engine.calculator(self.settings, **self.engine_options)))
            frame.calc = counters[-1]
        for frame in (frames[0], frames[-1]):
            frame.get_forces()
        result = self._optimize(frames, progress.row_label(model, info.get("site"), info.get("potential")),
                                engine.band_evaluator(self.settings) if self.batch else None, done)
        energies = [float(f.get_potential_energy()) for f in frames]
        forces = [f.get_forces(apply_constraint=True) for f in frames]
        max_forces = [float(np.linalg.norm(f, axis=1).max()) for f in forces]
        saddle = int(np.argmax(energies[1:-1])) + 1
        converged, steps, wall = result
        reason = None if converged else (
            f"NEB not converged: {steps} steps, max force {max(max_forces[1:-1]):.3f} > "
            f"{self.fmax} eV/Å")
        adaptor = AseAtomsAdaptor()
        final = [adaptor.get_structure(f) for f in frames]
        return BarrierDoc(
            ni_n_distances=ni_n_distances(final, info),
            images=final, image_indices=list(range(len(final))), energies=energies,
            state="successful" if converged else "failed", neb_method="climbing_image",
            forward_barrier=energies[saddle] - energies[0],
            reverse_barrier=energies[saddle] - energies[-1],
            reaction_energy=energies[-1] - energies[0], saddle_index=saddle,
            forces=[f.tolist() for f in forces], max_forces=max_forces, converged=converged,
            reason=reason, force_calls=done["calls"] + sum(c.calls for c in counters[1:-1]), steps=steps,
            wall_time=wall, dir_name=str(Path.cwd()), resumed=done["resumed"],
            **common,
        )

    def _frames(self, images: list[Structure]) -> tuple[list[Any], dict]:
        """ASE images, from the checkpoint a killed run of this job left if there is one, and what
        that run had done (steps, moving-image force calls, seconds: the counts go on from there;
        ``h``: ODE's step size at that point)."""
        from ase.io import read

        adaptor = AseAtomsAdaptor()
        frames = [adaptor.get_atoms(s) for s in images]
        if Path(CHECKPOINT).is_file():
            saved = read(CHECKPOINT, index=":")
            if len(saved) == len(frames):
                for frame, old in zip(frames, saved, strict=True):
                    frame.positions = old.positions
                done = {k: saved[0].info.get(f"neb_{k}", 0) for k in ("steps", "calls", "wall")}
                return frames, {**done, "h": saved[0].info.get("neb_h"), "resumed": True}
        return frames, {"steps": 0, "calls": 0, "wall": 0.0, "h": None, "resumed": False}

    def _optimize(self, frames: list[Any], model: str, band: Any = None,
                  done: dict | None = None) -> tuple[bool, int, float]:
        """(converged, iterations, seconds) counted from ``done`` (a killed attempt's). The images
        go to a checkpoint with the counts so far — at each step, and for ODE before each trial
        force call with the step size it tries — and the optimizer's memory beside it
        (``nebopt``): a resumed NEB takes the steps the killed one would have taken."""
        from ase.io import write

        from ncmflow.workflows.nebopt import neb_optimizer

        done = done or {"steps": 0, "calls": 0, "wall": 0.0, "h": None, "resumed": False}
        neb = band_neb(frames, band, climb=True, method=self.tangent, allow_shared_calculator=False)
        step = {"n": int(done["steps"])}
        t0 = time.perf_counter()

        def checkpoint(moving: np.ndarray | None = None, h: float | None = None) -> None:
            band_now = [f.copy() for f in frames]  # the images, without their calculators
            if moving is not None:  # ODE's last accepted point (the frames hold its trial)
                for image, pos in zip(band_now[1:-1], moving.reshape(len(frames) - 2, -1, 3), strict=True):
                    image.positions = pos
            info = {"neb_steps": step["n"], "neb_wall": done["wall"] + time.perf_counter() - t0,
                    "neb_calls": done["calls"] + sum(f.calc.calls for f in frames[1:-1])}
            band_now[0].info.update(info, **({"neb_h": h} if h is not None else {}))
            # whole or not at all: a kill or a full disk leaves the previous checkpoint as it was
            replace_file(CHECKPOINT, lambda handle: write(handle, band_now, format="extxyz"),
                         kept="the previous checkpoint is kept: free space and rerun to resume from it")

        opt = neb_optimizer(self.optimizer, neb, done["resumed"], done["h"], step["n"], save=checkpoint)
        counted_by_ase = self.optimizer in ("bfgs", "fire")  # ase.optimize: nsteps is the count

        def observe() -> None:
            n = opt.nsteps if counted_by_ase else step["n"] + 1
            if n == step["n"]:  # ase.optimize reporting the band it starts from: no step yet
                return
            step["n"] = n
            fmax = float(np.sqrt((neb.get_forces() ** 2).sum(axis=1).max()))
            progress.report(model=model, stage="neb", step=step["n"], fmax=fmax)
            if self.optimizer != "ode":  # ODE saves before its next trial, with the step size
                checkpoint()

        opt.attach(observe, interval=1)
        opt.run(fmax=self.fmax, steps=max(self.settings.neb_steps - step["n"], 0))
        # judged here, not by the optimizer's return value: ODE's step budget counts only
        # accepted steps and can report success on a path that is still far from converged
        converged = float(neb.get_residual()) <= self.fmax
        return converged, step["n"], done["wall"] + time.perf_counter() - t0


@dataclass
class BarrierFlowMaker(Maker):
    """Relax both end points at fixed cell, interpolate, and run the engine's NEB maker.

    ``confirm_maker`` (optional) runs an independent second path on the same relaxed end points
    (a denser band of ``confirm_images``, another optimizer): a NEB converges to *a* saddle, and
    the report keeps the lowest converged one of the two, saying which path found it.
    """

    name: str = "ni-hop barrier"
    relax_maker: Maker | None = None
    neb_maker: Maker | None = None
    n_images: int = 5
    interpolation: str = "idpp"
    confirm_maker: Maker | None = None
    confirm_images: int = 5

    def relax(self, structure: Structure, model: str, site: int, potential: str | None, which: str) -> Job:
        """One end point's relaxation, named and tagged as the study's display and stages expect."""
        r = self.relax_maker.make(structure)
        r.name = f"{progress.row_label(model, site, potential)} relax {which}"
        r.update_metadata({"model": model, "site": site, "potential": potential, "stage": f"relax {which}"})
        return r

    def make(self, start: Structure, end: Structure, model: str, info: dict | None = None,
             relaxed: tuple[Job, Job] | None = None) -> Flow:
        """The site's barrier flow; ``relaxed`` reuses end-point relaxations owned elsewhere
        (several sites sharing one start), otherwise they are part of this flow."""
        info = dict(info or {})
        tag = progress.row_label(model, info.get("site", 0), info.get("potential"))
        meta = {"model": model, "site": info.get("site", 0), "potential": info.get("potential")}
        own = [] if relaxed else [self.relax(s, model, meta["site"], meta["potential"], w)
                                  for s, w in ((start, "start"), (end, "end"))]
        ends = relaxed or own
        jobs, outputs = list(own), []
        paths = [(PATHS[0], self.neb_maker, self.n_images)]
        if self.confirm_maker is not None:
            paths.append((PATHS[1], self.confirm_maker, self.confirm_images))
        for path, maker, n in paths:
            images = interpolate_images(ends[0].output.structure, ends[1].output.structure, n,
                                        self.interpolation)
            images.name = f"{tag} interpolate {path}"
            images.update_metadata({**meta, "stage": "interpolate", "path": path})
            neb = maker.make(images.output, model,
                             {**info, "path": path, "interpolation": self.interpolation})
            neb.name = f"{tag} ci-neb {path}"
            neb.update_metadata({**meta, "stage": "neb", "path": path})
            jobs += [images, neb]
            outputs.append(neb.output)
        return Flow(jobs, output=outputs, name=f"{tag} barrier")
