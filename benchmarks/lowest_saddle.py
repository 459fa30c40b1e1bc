"""Is the study's reported bulk barrier the lowest saddle? Against an independent plain-ASE NEB.

Runs the study's barrier flow for one bulk site (the two paths of ``ncmflow study``: A, the
study's band; B, a denser band with another optimizer; the report keeps the lower converged
one), then an independent plain-ASE CI-NEB on the same relaxed end points: IDPP, improved
tangent, 5 images, FIRE, fmax 0.05 eV/Å. Acceptance (issue 11): reported ≤ reference + 0.05 eV.

    python benchmarks/lowest_saddle.py [--full] [--site 0] [--ml-model chgnet]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from ase.mep import NEB
from ase.optimize import FIRE
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.io.ase import AseAtomsAdaptor

from ncmflow.inputs.settings import PAPER
from ncmflow.structures import ni_hop_endpoints
from ncmflow.workflows.engines import get_engine
from ncmflow.workflows.neb import CountingCalculator
from ncmflow.workflows.study import StudyConfig, _makers


def study_paths(config: StudyConfig, site: int, potential: str):
    start, end = ni_hop_endpoints("bulk", site=site)
    flow = _makers(config, potential).make(start, end, "bulk", {"site": site, "potential": potential})
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    with tempfile.TemporaryDirectory() as tmp:
        responses = run_locally(flow, store=store, root_dir=tmp, log=False, ensure_success=True)
    return [responses[ref.uuid][1].output for ref in flow.output]


def reference(start, end, potential: str, n_images: int = 5, fmax: float = 0.05) -> dict:
    calculator = get_engine("mlip").calculator
    frames = [AseAtomsAdaptor.get_atoms(s) for s in [start] * (n_images + 1) + [end]]
    counters = [CountingCalculator(calculator(PAPER.with_changes(ml_model=potential))) for _ in frames]
    for frame, counter in zip(frames, counters, strict=True):
        frame.calc = counter
    neb = NEB(frames, climb=True, method="improvedtangent", allow_shared_calculator=False)
    neb.interpolate("idpp", mic=True)
    t0 = time.perf_counter()
    FIRE(neb, logfile=None).run(fmax=fmax, steps=2000)
    energies = [f.get_potential_energy() for f in frames]
    return {"barrier": max(energies[1:-1]) - energies[0], "converged": neb.get_residual() <= fmax,
            "force_calls": sum(c.calls for c in counters[1:-1]), "wall": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full study's settings (default: --quick's)")
    parser.add_argument("--site", type=int, default=0)
    parser.add_argument("--ml-model", default="chgnet")
    args = parser.parse_args()
    config = StudyConfig.create("mlip", quick=not args.full)
    docs = study_paths(config, args.site, args.ml_model)
    ref = reference(docs[0].images[0], docs[0].images[-1], args.ml_model)
    print(f"bulk site {args.site}, {args.ml_model} + D3(BJ), study settings: "
          f"{'full' if args.full else 'quick'} (fmax {config.neb_fmax} eV/Å)")
    print(f"{'':44}{'barrier (eV)':>13}{'converged':>11}{'force calls':>13}{'wall (s)':>10}")
    for d in docs:
        label = f"study path {d.path}: {d.path_method}"
        print(f"{label:44}{d.forward_barrier:>13.3f}{d.converged!s:>11}{d.force_calls:>13}{d.wall_time:>10.1f}")
    label = "plain ASE: idpp, 5 images, FIRE, fmax 0.05"
    print(f"{label:44}{ref['barrier']:>13.3f}{ref['converged']!s:>11}{ref['force_calls']:>13}{ref['wall']:>10.1f}")
    ok = [d for d in docs if d.converged]
    if not ok:
        print("no converged study path: nothing to report")
        return
    best = min(ok, key=lambda d: d.forward_barrier)
    above = best.forward_barrier - ref["barrier"]
    print(f"reported (lowest converged, path {best.path}) {best.forward_barrier:.3f} eV; "
          f"{above:+.3f} eV against the reference (target ≤ +0.05: {'met' if above <= 0.05 else 'NOT met'})")


if __name__ == "__main__":
    main()
