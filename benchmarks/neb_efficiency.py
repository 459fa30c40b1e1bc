"""ncmflow's barrier flow vs a plain ASE NEB on the bulk Ni hop, same ML potential, one process.

Baseline: linear interpolation, ASE's default NEB (aseneb tangent, climbing image), BFGS.
ncmflow: IDPP, improved tangent, climbing image, NEBOptimizer (ODE). Both start from the
same relaxed end points and stop at the same fmax. Target: ≤ 0.5× the baseline's force calls,
the same barrier within 0.05 eV.

    python benchmarks/neb_efficiency.py [--images 5] [--fmax 0.05]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from ase.mep import NEB
from ase.optimize import BFGS
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.io.ase import AseAtomsAdaptor

from ncmflow.inputs.settings import PAPER
from ncmflow.structures import ni_hop_endpoints
from ncmflow.workflows.engines import get_engine
from ncmflow.workflows.neb import BarrierFlowMaker, CountingCalculator


def ncmflow_run(n_images: int, fmax: float, interpolation: str):
    engine = get_engine("mlip")
    flow = BarrierFlowMaker(
        relax_maker=engine.relax_maker(PAPER.with_changes(fmax=0.02)),
        neb_maker=engine.neb_maker(PAPER.with_changes(neb_fmax=fmax, neb_steps=1000)),
        n_images=n_images,
        interpolation=interpolation,
    ).make(*ni_hop_endpoints("bulk"), "bulk")
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    with tempfile.TemporaryDirectory() as tmp:
        responses = run_locally(flow, store=store, root_dir=tmp, log=False, ensure_success=True)
    return responses[flow.output[0].uuid][1].output  # path A (no confirm_maker: the only one)


def baseline_run(start, end, n_images: int, fmax: float) -> dict:
    calculator = get_engine("mlip").calculator
    adaptor = AseAtomsAdaptor()
    frames = [adaptor.get_atoms(start)] + [adaptor.get_atoms(start) for _ in range(n_images)]
    frames.append(adaptor.get_atoms(end))
    counters = [CountingCalculator(calculator()) for _ in frames]
    for frame, counter in zip(frames, counters, strict=True):
        frame.calc = counter
    neb = NEB(frames, climb=True)  # method="aseneb", ASE's default
    neb.interpolate(mic=True)
    t0 = time.perf_counter()
    converged = BFGS(neb, logfile=None).run(fmax=fmax, steps=1000)
    wall = time.perf_counter() - t0
    energies = [f.get_potential_energy() for f in frames]
    return {
        "force_calls": sum(c.calls for c in counters[1:-1]),
        "wall_time": wall,
        "barrier": max(energies[1:-1]) - energies[0],
        "converged": converged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--interpolation", default="idpp", choices=("idpp", "linear"))
    args = parser.parse_args()
    ours = ncmflow_run(args.images, args.fmax, args.interpolation)
    base = baseline_run(ours.images[0], ours.images[-1], args.images, args.fmax)
    print(
        f"bulk Ni hop, CHGNet + D3(BJ), {args.images} images, fmax {args.fmax} eV/Å, "
        f"ncmflow interpolation {args.interpolation}"
    )
    print(f"{'':24}{'force calls':>12}{'wall (s)':>10}{'barrier (eV)':>14}{'converged':>11}")
    print(
        f"{'plain ASE (baseline)':24}{base['force_calls']:>12}{base['wall_time']:>10.1f}"
        f"{base['barrier']:>14.3f}{base['converged']!s:>11}"
    )
    print(
        f"{'ncmflow barrier flow':24}{ours.force_calls:>12}{ours.wall_time:>10.1f}"
        f"{ours.forward_barrier:>14.3f}{ours.converged!s:>11}"
    )
    ratio = ours.force_calls / base["force_calls"]
    diff = abs(ours.forward_barrier - base["barrier"])
    print(
        f"force-call ratio {ratio:.2f} (target ≤ 0.50: {'met' if ratio <= 0.5 else 'NOT met'}); "
        f"wall-time ratio {ours.wall_time / base['wall_time']:.2f}; "
        f"barrier difference {diff:.3f} eV (target ≤ 0.05: {'met' if diff <= 0.05 else 'NOT met'})"
    )
    print(f"image energies − E(start), ncmflow: {np.round(np.subtract(ours.energies, ours.energies[0]), 3)}")


if __name__ == "__main__":
    main()
