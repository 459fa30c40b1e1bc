"""DFT CI-NEB seeded with the ML-potential path vs started from IDPP, on a small Ni-hop cell.

Cell: the one-layer cell of LiNiO2 (a1, a2 in-plane and the rhombohedral stacking vector, as
ncmflow.structures.ncm811 builds it; experimental a, c; 4 atoms, 2.88 × 2.88 × 5.01 Å) as a
``--supercell`` (default 2×2×1: Li4Ni4O8, 16 atoms) with one Li removed (Li3Ni4O8, 15 atoms,
i.e. Li0.75NiO2); the lowest-index Ni hops 2.89 Å from its TM site into the adjacent Li-layer
vacancy (ncmflow.structures.migration.hop), through the shared tetrahedral face. The hopping
Ni's periodic copies are 5.76 Å (in-plane) and 5.01 Å apart. (2×1×1, 7 atoms, makes a Ni row
hop together; there CHGNet's ODE CI-NEB stalls with 1.5 eV/Å left, so it is not the default.)
Both DFT NEBs (GPAW PW + D3(BJ), spin-polarized from the paper's start moments; cheap settings:
300 eV, Γ only, no symmetry, SCF to 1e-4 eV and 1e-3 density change per electron, 1e-6
eigenstates, as the moments can slosh near a saddle for hundreds of iterations) use ncmflow's NEB settings
(ase.mep NEB, improved tangent, climbing image, NEBOptimizer ODE, fresh calculator per image)
and share the end points, relaxed once with DFT (BFGS, from the CHGNet ones):
(a) images by IDPP between the DFT end points;
(b) the CHGNet + D3 CI-NEB images (converged on the same end points relaxed with CHGNet), each
    shifted by the end-point displacements (DFT − ML) interpolated along the path.
Force calls are DFT evaluations at new geometries (SCF runs) of the moving images.
Target: (b) ≤ 0.4× the force calls of (a), the same barrier within 0.05 eV. One core:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NCMFLOW_TORCH_THREADS=1 \\
        python benchmarks/dft_neb_seeding.py [--supercell 2,2,1] [--images 3] [--fmax 0.1] \\
        [--encut 300] [--kpts 1,1,1] [--scf-energy 1e-4] [--steps 40]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from ase.calculators.calculator import all_changes
from ase.calculators.singlepoint import SinglePointCalculator
from ase.mep import NEB
from ase.mep.neb import NEBOptimizer
from ase.optimize import BFGS
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure

from ncmflow.inputs.settings import PAPER, to_ase_atoms
from ncmflow.structures import linio2
from ncmflow.structures.path import neb_images
from ncmflow.structures.sites import HOP_RANGE, hop
from ncmflow.workflows.engines import get_engine
from ncmflow.workflows.neb import BarrierFlowMaker, CountingCalculator


def triple(kind: type):
    def parse(text: str) -> tuple:
        n = tuple(kind(x) for x in text.split(","))
        if len(n) != 3:
            raise argparse.ArgumentTypeError(f"need three comma-separated numbers, got {text!r}")
        return n

    return parse


def small_hop(supercell: tuple[int, int, int]) -> tuple[Structure, Structure]:
    """(start, end) of a Ni hop in a one-layer LiNiO2 supercell with one Li removed."""
    hexa = linio2()
    h = hexa.lattice.matrix
    layer = Structure(Lattice([h[0], h[1], (2 * h[0] + h[1] + h[2]) / 3]), hexa.species,
                      hexa.cart_coords, coords_are_cartesian=True, to_unit_cell=True)
    layer.merge_sites(tol=0.05, mode="delete")
    layer.make_supercell(list(supercell))
    layer = layer.get_sorted_structure(key=lambda site: ("Li", "Ni", "O").index(site.specie.symbol))
    li = next(i for i, sp in enumerate(layer.species) if sp.symbol == "Li")
    vacancy = layer.frac_coords[li].tolist()
    layer.remove_sites([li])
    layer.properties = {"model": f"Li{len(layer.indices_from_symbol('Li'))}Ni"
                        f"{len(layer.indices_from_symbol('Ni'))}O{len(layer.indices_from_symbol('O'))}",
                        "li_vacancies": [vacancy]}
    d = layer.lattice.get_all_distances(layer.frac_coords, vacancy)[:, 0]  # the first Ni next to it hops
    ni = next(i for i, sp in enumerate(layer.species)
              if sp.symbol == "Ni" and HOP_RANGE[0] <= d[i] <= HOP_RANGE[1])
    return hop(layer, ni, np.array(vacancy), {"hop_kind": "bulk"})


def bare(structure: Structure) -> Structure:
    """No site properties: the paper's start moments apply (CHGNet leaves its own behind)."""
    return Structure(structure.lattice, structure.species, structure.frac_coords)


class ScfCounter(CountingCalculator):
    """CountingCalculator that counts a geometry once (energy after forces is no new SCF)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        before = self.calls
        super().calculate(atoms, properties, system_changes)
        if not system_changes:
            self.calls = before


def dft_calc(args: argparse.Namespace, txt: str | None):
    # no symmetry: NEB images move off any symmetry an image starts with (SymmetryBrokenError)
    return get_engine("gpaw").calculator(PAPER.with_changes(encut=args.encut),
                                         kpts={"size": args.kpts, "gamma": True},
                                         symmetry="off",
                                         convergence={"energy": args.scf_energy, "density": 1e-3,
                                                      "eigenstates": 1e-6},
                                         txt=txt)


def ml_path(start: Structure, end: Structure, args: argparse.Namespace):
    engine = get_engine("mlip")
    flow = BarrierFlowMaker(
        relax_maker=engine.relax_maker(PAPER.with_changes(fmax=0.02)),
        neb_maker=engine.neb_maker(PAPER.with_changes(neb_fmax=args.ml_fmax, neb_steps=1000)),
        n_images=args.images,
    ).make(start, end, "small")
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    with tempfile.TemporaryDirectory() as tmp:
        responses = run_locally(flow, store=store, root_dir=tmp, log=False, ensure_success=True)
    return responses[flow.output[0].uuid][1].output  # path A (no confirm_maker: the only one)


def dft_relax(structure: Structure, args: argparse.Namespace, name: str):
    atoms = to_ase_atoms(bare(structure))
    calc = ScfCounter(dft_calc(args, f"seeding_{name}.txt"))
    atoms.calc = calc
    t0 = time.perf_counter()
    opt = BFGS(atoms, logfile="-")
    print(f"--- DFT relax {name}", flush=True)
    converged = opt.run(fmax=args.fmax, steps=args.relax_steps)
    wall = time.perf_counter() - t0
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    moments = calc.inner.dft.get_magnetic_moments()
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)  # NEB never moves it
    return atoms, {"calls": calc.calls, "wall": wall, "converged": bool(converged), "moments": moments}


def dft_neb(start, end, middle: list[np.ndarray], args: argparse.Namespace, label: str) -> dict:
    """CI-NEB (ncmflow's settings) with fresh GPAW calculators on the intermediate images."""
    frames = [start]
    counters = []
    for i, positions in enumerate(middle):
        frame = start.copy()
        frame.set_initial_magnetic_moments(start.get_initial_magnetic_moments())
        frame.positions = positions
        counters.append(ScfCounter(dft_calc(args, f"seeding_{label}_image{i + 1}.txt")))
        frame.calc = counters[-1]
        frames.append(frame)
    frames.append(end)
    neb = NEB(frames, climb=True, method="improvedtangent", allow_shared_calculator=False)
    opt = NEBOptimizer(neb, method="ode", logfile="-")
    steps = {"n": 0}

    def observe() -> None:
        steps["n"] += 1
        e0 = start.get_potential_energy()
        print(f"  [{label}] step {steps['n']}: {sum(c.calls for c in counters)} force calls, "
              f"residual {float(neb.get_residual()):.3f} eV/Å, "
              f"E − E0 {np.round([f.get_potential_energy() - e0 for f in frames], 3)}",
              flush=True)

    opt.attach(observe, interval=1)
    print(f"--- DFT CI-NEB ({label})", flush=True)
    t0 = time.perf_counter()
    opt.run(fmax=args.fmax, steps=args.steps)
    wall = time.perf_counter() - t0
    energies = np.array([f.get_potential_energy() for f in frames]) - start.get_potential_energy()
    return {"calls": sum(c.calls for c in counters), "wall": wall, "steps": steps["n"],
            "converged": float(neb.get_residual()) <= args.fmax, "residual": float(neb.get_residual()),
            "energies": energies, "barrier": float(energies[1:-1].max()),
            "moments": [f.calc.inner.dft.get_magnetic_moment() for f in frames[1:-1]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supercell", type=triple(int), default=(2, 2, 1),
                        help="of the 4-atom one-layer LiNiO2 cell (2.88, 2.88, 5.01 Å)")
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--fmax", type=float, default=0.1, help="eV/Å, DFT end points and NEBs")
    parser.add_argument("--ml-fmax", type=float, default=0.03, help="eV/Å, the CHGNet NEB")
    parser.add_argument("--encut", type=float, default=300.0)
    parser.add_argument("--kpts", type=triple(int), default=(1, 1, 1), help="Γ-centred mesh")
    parser.add_argument("--scf-energy", type=float, default=1e-4,
                        help="GPAW SCF energy criterion, eV per valence electron (paper: 1e-5)")
    parser.add_argument("--steps", type=int, default=40, help="NEB step limit (each)")
    parser.add_argument("--relax-steps", type=int, default=30)
    args = parser.parse_args()

    start, end = small_hop(args.supercell)
    print(f"cell {start.composition.reduced_formula} ({len(start)} atoms, {start.lattice.abc}), "
          f"Ni {start.properties['moved_index']} hops {start.properties['hop_distance']:.2f} Å", flush=True)
    ml = ml_path(start, end, args)
    print(f"CHGNet + D3 CI-NEB: converged {ml.converged} ({ml.reason}), barrier {ml.forward_barrier:.3f} eV, "
          f"{ml.force_calls} force calls, {ml.wall_time:.1f} s", flush=True)
    path = [unwrapped(image, ml.images[0]) for image in ml.images]  # one periodic copy
    ml_start, ml_end = path[0], path[-1]

    dft_start, relax_start = dft_relax(ml_start, args, "start")
    dft_end, relax_end = dft_relax(ml_end, args, "end")

    n = args.images
    idpp = neb_images(_structure(dft_start, ml_start), _structure(dft_end, ml_end), n, "idpp")
    idpp_middle = [s.cart_coords for s in idpp[1:-1]]
    shift0 = dft_start.positions - ml_start.cart_coords
    shift1 = dft_end.positions - ml_end.cart_coords
    seeded_middle = [path[i].cart_coords + (1 - i / (n + 1)) * shift0 + i / (n + 1) * shift1
                     for i in range(1, n + 1)]
    # the seeded run first: the cheap one is done even if the IDPP run is stopped early
    seeded = dft_neb(dft_start, dft_end, seeded_middle, args, "ml")
    runs = {"(a) IDPP": dft_neb(dft_start, dft_end, idpp_middle, args, "idpp"), "(b) ML-seeded": seeded}

    a, b = runs["(a) IDPP"], runs["(b) ML-seeded"]
    print("\n=== summary ===")
    print(f"Ni hop in {start.composition.reduced_formula} ({len(start)} atoms, supercell "
          f"{args.supercell} of the one-layer LiNiO2 cell, experimental a, c), {n} images; GPAW PBE + "
          f"D3(BJ), PW {args.encut:g} eV, Γ-centred {args.kpts}, spin-polarized, SCF {args.scf_energy:g} "
          f"eV/electron; NEB fmax {args.fmax} eV/Å, "
          f"≤ {args.steps} steps; CHGNet NEB fmax {args.ml_fmax}")
    print(f"DFT end-point relaxations (shared): start {relax_start['calls']} calls "
          f"{relax_start['wall']:.0f} s, end {relax_end['calls']} calls {relax_end['wall']:.0f} s; "
          f"E(end) − E(start) {dft_end.get_potential_energy() - dft_start.get_potential_energy():.3f} eV "
          f"(CHGNet {ml.reaction_energy:.3f})")
    print(f"{'':16}{'force calls':>12}{'steps':>7}{'wall (s)':>10}{'barrier (eV)':>14}"
          f"{'residual':>10}{'converged':>11}")
    print(f"{'CHGNet + D3':16}{ml.force_calls:>12}{ml.steps:>7}{ml.wall_time:>10.1f}"
          f"{ml.forward_barrier:>14.3f}{'':>10}{ml.converged!s:>11}")
    for name, r in runs.items():
        print(f"{name:16}{r['calls']:>12}{r['steps']:>7}{r['wall']:>10.0f}{r['barrier']:>14.3f}"
              f"{r['residual']:>10.3f}{r['converged']!s:>11}")
    for name, r in runs.items():
        print(f"{name} E − E(start) (eV): {np.round(r['energies'], 3)}; image moments (μB): "
              f"{np.round(r['moments'], 2)}")
    ratio = b["calls"] / a["calls"]
    diff = abs(b["barrier"] - a["barrier"])
    print(f"force-call ratio (b)/(a) {ratio:.2f} (target ≤ 0.40: {'met' if ratio <= 0.4 else 'NOT met'}); "
          f"wall-time ratio {b['wall'] / a['wall']:.2f}; barrier difference {diff:.3f} eV "
          f"(target ≤ 0.05: {'met' if diff <= 0.05 else 'NOT met'})"
          + ("" if a["converged"] and b["converged"] else "; NOT all NEBs converged"))


def unwrapped(image: Structure, reference: Structure) -> Structure:
    """``image`` with every atom at its periodic copy nearest the reference's."""
    d = image.frac_coords - reference.frac_coords
    return Structure(image.lattice, image.species, reference.frac_coords + d - np.round(d))


def _structure(atoms, like: Structure) -> Structure:
    return Structure(like.lattice, like.species, atoms.positions, coords_are_cartesian=True)


if __name__ == "__main__":
    main()
