"""Which optimizer relaxes the Ni-hop end points fastest to the same minimum (issue 12)?

Every end point of the quick study's site 0 (bulk, bare, cpan; start and end), at fixed cell
with the slab's fixed layers, on the embedded default (CHGNet + D3(BJ), no stress computed),
relaxed by each optimizer to the study's fmax. Printed per structure: force calls, wall time,
final energy and its difference to the BFGS minimum (the baseline, the paper's optimizer).
An optimizer is usable only where every final energy is within 1 meV of BFGS's.

    python benchmarks/endpoint_optimizers.py [--fmax 0.05] [--models bulk,bare,cpan] [--sites 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

TOLERANCE = 1e-3  # eV: "the same minimum"


def optimizers() -> dict:
    from ase.optimize import BFGS, FIRE, LBFGS, BFGSLineSearch
    from ase.optimize.precon import Exp, PreconLBFGS

    return {
        "BFGS": lambda a: BFGS(a, logfile=None),
        "LBFGS": lambda a: LBFGS(a, logfile=None),
        "FIRE": lambda a: FIRE(a, logfile=None),
        "BFGSLineSearch": lambda a: BFGSLineSearch(a, logfile=None),
        "PreconLBFGS(Exp)": lambda a: PreconLBFGS(a, precon=Exp(), use_armijo=True, logfile=None),
    }


def relax(structure, make_optimizer, fmax: float, steps: int = 500) -> tuple[int, float, float, bool]:
    from pymatgen.io.ase import AseAtomsAdaptor

    from ncmflow.inputs.settings import PAPER
    from ncmflow.workflows.engines.mlip import calculator
    from ncmflow.workflows.neb import CountingCalculator

    atoms = AseAtomsAdaptor().get_atoms(structure)
    atoms.calc = counter = CountingCalculator(calculator(PAPER, stress=False))
    t0 = time.perf_counter()
    converged = bool(make_optimizer(atoms).run(fmax=fmax, steps=steps))
    return counter.calls, time.perf_counter() - t0, float(atoms.get_potential_energy()), converged


def main() -> None:
    from ncmflow.structures import ni_hop_endpoints

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fmax", type=float, default=0.05, help="0.05 = quick study, 0.02 = full")
    parser.add_argument("--models", default="bulk,bare,cpan")
    parser.add_argument("--sites", default="0")
    args = parser.parse_args()
    chosen = optimizers()
    totals = {name: [0, 0.0, 0.0] for name in chosen}  # calls, seconds, worst |ΔE|
    print(f"end-point relaxations at fixed cell, fmax {args.fmax} eV/Å, CHGNet + D3(BJ)")
    print(f"{'structure':14} {'optimizer':17} {'calls':>6} {'wall s':>8} {'E (eV)':>13} {'ΔE vs BFGS':>11}")
    for model in args.models.split(","):
        for site in (int(s) for s in args.sites.split(",")):
            for which, structure in zip(("start", "end"), ni_hop_endpoints(model, "subsurface", site),
                                        strict=True):
                reference = None
                for name, make in chosen.items():
                    calls, wall, energy, converged = relax(structure, make, args.fmax)
                    reference = energy if reference is None else reference
                    delta = energy - reference
                    totals[name][0] += calls
                    totals[name][1] += wall
                    totals[name][2] = max(totals[name][2], abs(delta) if converged else np.inf)
                    print(f"{model + ' s' + str(site) + ' ' + which:14} {name:17} {calls:6d} {wall:8.1f} "
                          f"{energy:13.4f} {delta * 1000:+9.1f} meV{'' if converged else '  NOT CONVERGED'}",
                          flush=True)
    base = totals["BFGS"]
    print("\ntotal over all end points (ratio = optimizer / BFGS, same process)")
    for name, (calls, wall, worst) in totals.items():
        same = "same minima" if worst <= TOLERANCE else f"differs by up to {worst * 1000:.1f} meV"
        print(f"{name:17} calls {calls:5d} ({calls / base[0]:.2f}×)  wall {wall:7.1f} s "
              f"({wall / base[1]:.2f}×)  {same}")


if __name__ == "__main__":
    main()
