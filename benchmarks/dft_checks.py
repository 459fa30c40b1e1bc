"""The ML potential checked against DFT: LiNiO2 lattice parameters and the bulk Ni-hop barrier.

(a) Lattice: primitive LiNiO2 (4 atoms) with CHGNet + D3(BJ), relaxed in full (cell and ions;
    ASE FrechetCellFilter + BFGS), and with GPAW PBE + D3(BJ) (plane waves, the paper's 520 eV
    against Pulay stress); hexagonal a, c of each beside experiment (a = 2.878, c = 14.19 Å).
    GPAW 26.7's PW stress is wrong here (+10 GPa at 520 eV, +60 GPa at 400 eV where E(V)
    gives ~1 GPa; a relaxation on it shrinks a by 3 % while the energy rises), so by default
    GPAW's a, c are the minimum of a quadratic fit of E(a, c) on a 3×3 grid of cells scaled
    from experiment, O relaxed at each point: no stress used (``--gpaw-lattice stress`` relaxes).
(b) DFT//MLIP: the mlip barrier flow on the bulk (Li0.5NiO2, 42 atoms) hop, then GPAW PW + D3
    single points on the converged images, spin-polarized from the paper's start moments (by
    default one calculator walks the path start → end, each SCF starting from the previous
    image's wave functions; ``--fresh`` starts every image anew): the DFT energy profile along
    the ML path and its barrier (max − start) beside the ML one.
No target: the numbers go in the README. One core:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NCMFLOW_TORCH_THREADS=1 \\
        python benchmarks/dft_checks.py [--skip-lattice] [--skip-barrier] [--encut 520] \\
        [--kpts 6,6,4] [--gpaw-lattice energy] [--barrier-encut 350] [--barrier-kpts 1,1,1] \\
        [--images 3] [--fmax 0.05] [--fresh] [--save-path ml_path.extxyz]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time

import numpy as np
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from ncmflow.inputs.settings import PAPER, to_ase_atoms
from ncmflow.structures import linio2, ni_hop_endpoints
from ncmflow.structures.bulk import A_EXP, C_EXP
from ncmflow.workflows.engines import get_engine
from ncmflow.workflows.neb import BarrierFlowMaker


def kpts(text: str) -> tuple[int, int, int]:
    n = tuple(int(x) for x in text.split(","))
    if len(n) != 3:
        raise argparse.ArgumentTypeError(f"k-point mesh must be n1,n2,n3, got {text!r}")
    return n  # type: ignore[return-value]


def bare(structure: Structure) -> Structure:
    """The structure without site properties, so the paper's start moments apply to every site
    (CHGNet's relaxations leave their own moments behind)."""
    return Structure(structure.lattice, structure.species, structure.frac_coords)


def hexagonal_ac(atoms) -> tuple[float, float]:
    """Hexagonal a, c of a (relaxed) R-3m LiNiO2 cell in any setting."""
    s = AseAtomsAdaptor.get_structure(atoms)
    for symprec in (1e-3, 1e-2, 0.1):
        sga = SpacegroupAnalyzer(s, symprec=symprec)
        if sga.get_space_group_symbol() == "R-3m":
            conv = sga.get_conventional_standard_structure()
            return float(conv.lattice.a), float(conv.lattice.c)
    # symmetry lost: a from the shortest Ni–Ni distance (in-plane), c from the volume per LiNiO2
    ni = [i for i, x in enumerate(s.species) if x.symbol == "Ni"]
    a = min(s.get_distance(i, j, jimage=image) for i in ni for j in ni
            for image in itertools.product((-1, 0, 1), repeat=3) if (i, j, image) != (i, i, (0, 0, 0)))
    c = 3 * s.volume / len(ni) / (np.sqrt(3) / 2 * a**2)
    return a, c


def relax_cell(calc, fmax: float, steps: int, label: str) -> dict:
    """Full relaxation of primitive LiNiO2; the cell starts from experiment."""
    atoms = to_ase_atoms(linio2().get_primitive_structure())
    atoms.calc = calc
    t0 = time.perf_counter()
    opt = BFGS(FrechetCellFilter(atoms), logfile="-", trajectory=None)
    print(f"--- {label} cell relaxation (fmax {fmax} eV/Å)", flush=True)
    converged = opt.run(fmax=fmax, steps=steps)
    a, c = hexagonal_ac(atoms)
    stress = atoms.get_stress() * 160.21766  # eV/Å³ → GPa
    out = {"a": a, "c": c, "converged": bool(converged), "steps": opt.nsteps,
           "wall": time.perf_counter() - t0, "stress_gpa": stress, "energy": atoms.get_potential_energy()}
    if hasattr(calc, "dft"):
        out["ni_moment"] = float(calc.dft.get_magnetic_moments()[atoms.get_chemical_symbols().index("Ni")])
    return out


def energy_grid(calc, fa: list[float], fc: list[float], fmax: float, label: str) -> dict:
    """a, c at the minimum of a quadratic fit of E(a, c) on a grid of primitive cells scaled from
    experiment (in-plane by fa, along c by fc), O z relaxed at each point; stress is not used."""
    atoms0 = to_ase_atoms(linio2().get_primitive_structure())  # a1, a2 in-plane, c along z
    atoms = atoms0.copy()
    atoms.calc = calc
    print(f"--- {label}: E(a, c) grid, O relaxed to {fmax} eV/Å at each point", flush=True)
    t0 = time.perf_counter()
    rows = []
    for i, ya in enumerate(fa):
        for yc in fc if i % 2 == 0 else fc[::-1]:  # snake: each cell close to the previous one
            atoms.set_cell(atoms0.cell @ np.diag([ya, ya, yc]), scale_atoms=True)
            BFGS(atoms, logfile=None).run(fmax=fmax, steps=20)
            rows.append((A_EXP * ya, C_EXP * yc, atoms.get_potential_energy()))
            print(f"a {rows[-1][0]:.4f} c {rows[-1][1]:.3f}: E {rows[-1][2]:.5f} eV "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    a, c, e = np.array(rows).T
    x, y = a - A_EXP, c - C_EXP
    design = np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y])
    k = np.linalg.lstsq(design, e, rcond=None)[0]
    hess = np.array([[2 * k[3], k[4]], [k[4], 2 * k[5]]])
    dx, dy = np.linalg.solve(hess, -k[1:3])
    a_min, c_min = A_EXP + dx, C_EXP + dy
    inside = a.min() <= a_min <= a.max() and c.min() <= c_min <= c.max()
    rms = float(np.sqrt(np.mean((design @ k - e) ** 2)))
    print(f"fit: a {a_min:.4f} Å, c {c_min:.3f} Å, rms residual {1000 * rms:.2f} meV"
          + ("" if inside else " (minimum OUTSIDE the grid: extrapolated)"), flush=True)
    out = {"a": float(a_min), "c": float(c_min), "converged": bool(inside), "steps": len(rows),
           "wall": time.perf_counter() - t0, "stress_gpa": np.full(6, np.nan), "method": "E(a, c) fit"}
    if hasattr(calc, "dft"):
        out["ni_moment"] = float(calc.dft.get_magnetic_moments()[atoms.get_chemical_symbols().index("Ni")])
    return out


def lattice_check(args: argparse.Namespace) -> dict:
    results = {}
    step_a, step_c = args.grid_steps
    grid = [1 - step_a, 1, 1 + step_a], [1 - step_c, 1, 1 + step_c]
    results["CHGNet + D3"] = relax_cell(get_engine("mlip").calculator(), args.lattice_fmax, 500,
                                        "CHGNet + D3")
    # the same E(a, c) fit as GPAW's: shows what the fit itself does to a, c
    results["CHGNet, E fit"] = energy_grid(get_engine("mlip").calculator(), *grid, args.lattice_fmax,
                                           "CHGNet + D3")
    if not args.skip_gpaw_lattice:
        calc = get_engine("gpaw").calculator(PAPER.with_changes(encut=args.encut),
                                             kpts={"size": args.kpts, "gamma": True},
                                             txt="dft_checks_lattice_gpaw.txt")
        label = f"GPAW PBE + D3, PW({args.encut:g}), k {args.kpts}"
        if args.gpaw_lattice == "stress":
            results["GPAW PBE + D3"] = relax_cell(calc, args.lattice_fmax, 200, label)
        else:
            results["GPAW PBE + D3"] = energy_grid(calc, *grid, args.lattice_fmax, label)
    return results


def ml_barrier(n_images: int, fmax: float):
    """The mlip barrier flow on the bulk hop, as benchmarks/neb_efficiency.py runs it."""
    engine = get_engine("mlip")
    flow = BarrierFlowMaker(
        relax_maker=engine.relax_maker(PAPER.with_changes(fmax=0.02)),
        neb_maker=engine.neb_maker(PAPER.with_changes(neb_fmax=fmax, neb_steps=1000)),
        n_images=n_images,
    ).make(*ni_hop_endpoints("bulk"), "bulk")
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    with tempfile.TemporaryDirectory() as tmp:
        responses = run_locally(flow, store=store, root_dir=tmp, log=False, ensure_success=True)
    return responses[flow.output[0].uuid][1].output  # path A (no confirm_maker: the only one)


def dft_on_path(images: list[Structure], encut: float, mesh: tuple[int, int, int],
                moved: int, reuse: bool, density: float) -> list[dict]:
    """GPAW PW + D3 single points from the paper's start moments; with ``reuse`` one calculator
    walks the path (start → end), each SCF starting from the previous image's wave functions."""
    calculator = get_engine("gpaw").calculator
    points = []
    calc = None
    for i, image in enumerate(images):
        atoms = to_ase_atoms(bare(image))
        if calc is None or not reuse:  # symmetry off: images differ in symmetry, reuse moves atoms
            calc = calculator(PAPER.with_changes(encut=encut), kpts={"size": mesh, "gamma": True},
                              symmetry="off",
                              convergence={"energy": PAPER.energy_tol, "density": density,
                                           "eigenstates": 1e-6},
                              txt="dft_checks_path.txt" if reuse else f"dft_checks_image{i}.txt")
        atoms.calc = calc
        t0 = time.perf_counter()
        energy = float(atoms.get_potential_energy())
        wall = time.perf_counter() - t0
        moments = calc.dft.get_magnetic_moments()
        points.append({"energy": energy, "wall": wall, "magmom": float(calc.dft.get_magnetic_moment()),
                       "moved_ni": float(moments[moved])})
        print(f"image {i}: E {energy:.4f} eV, {wall:.0f} s, total moment {points[-1]['magmom']:.2f} μB, "
              f"hopping Ni {moments[moved]:.2f} μB", flush=True)
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-lattice", action="store_true")
    parser.add_argument("--skip-barrier", action="store_true")
    parser.add_argument("--skip-gpaw-lattice", action="store_true", help="CHGNet lattice only")
    parser.add_argument("--encut", type=float, default=520.0, help="eV, lattice relaxation")
    parser.add_argument("--kpts", type=kpts, default=(6, 6, 4),
                        help="Γ-centred mesh of the primitive cell (a, a, 5.01 Å)")
    parser.add_argument("--gpaw-lattice", choices=("energy", "stress"), default="energy",
                        help="GPAW a, c from an E(a, c) fit (default) or a FrechetCellFilter "
                             "relaxation on GPAW's stress (wrong in GPAW 26.7 here: see README)")
    parser.add_argument("--grid-steps", type=lambda t: tuple(float(x) for x in t.split(",")),
                        default=(0.015, 0.02), help="relative a, c steps of the 3×3 E(a, c) grid")
    parser.add_argument("--lattice-fmax", type=float, default=0.03)
    parser.add_argument("--barrier-encut", type=float, default=350.0)
    parser.add_argument("--barrier-kpts", type=kpts, default=(1, 1, 1),
                        help="Γ-centred mesh of the 42-atom cell (5.76 × 5.76 × 14.19 Å)")
    parser.add_argument("--scf-density", type=float, default=1e-3,
                        help="GPAW SCF density criterion of the 42-atom single points (with "
                             "eigenstates 1e-6: at the ML saddle the moments slosh and GPAW's "
                             "defaults were not met in 120 iterations, the energy steady to 2 meV)")
    parser.add_argument("--save-path", default=None, help="write the ML images here (extxyz)")
    parser.add_argument("--fresh", action="store_true",
                        help="a fresh calculator (paper's start moments) per image; default: the "
                             "first image's calculator walks the path")
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--fmax", type=float, default=0.05, help="eV/Å, ML NEB")
    args = parser.parse_args()

    lattice = {} if args.skip_lattice else lattice_check(args)
    barrier = None
    if not args.skip_barrier:
        neb = ml_barrier(args.images, args.fmax)
        moved = int(np.argmax([neb.images[0][i].distance(neb.images[-1][i])
                               for i in range(len(neb.images[0]))]))
        print(f"ML NEB: converged {neb.converged}, {neb.force_calls} force calls, barrier "
              f"{neb.forward_barrier:.3f} eV; DFT single points on {len(neb.images)} images", flush=True)
        if args.save_path:
            from ase.io import write

            write(args.save_path, [to_ase_atoms(bare(s)) for s in neb.images], format="extxyz")
        barrier = (neb, dft_on_path(neb.images, args.barrier_encut, args.barrier_kpts, moved,
                                    not args.fresh, args.scf_density))

    print("\n=== summary ===")
    if lattice:
        print(f"(a) LiNiO2 lattice (hexagonal setting): CHGNet full relaxation to {args.lattice_fmax} "
              f"eV/Å; GPAW PW {args.encut:g} eV, Γ-centred {args.kpts} on the primitive cell, "
              + ("full relaxation on its stress" if args.gpaw_lattice == "stress" else
                 f"minimum of E(a, c) on a 3×3 grid (±{args.grid_steps[0]:.1%} a, "
                 f"±{args.grid_steps[1]:.1%} c), O relaxed"))
        print(f"{'':16}{'a (Å)':>8}{'Δa':>8}{'c (Å)':>8}{'Δc':>8}{'points':>7}{'wall (s)':>10}"
              f"{'|σ| max (GPa)':>15}")
        print(f"{'experiment':16}{A_EXP:>8.3f}{'':>8}{C_EXP:>8.2f}")
        for name, r in lattice.items():
            print(f"{name:16}{r['a']:>8.3f}{100 * (r['a'] / A_EXP - 1):>+7.1f}%{r['c']:>8.2f}"
                  f"{100 * (r['c'] / C_EXP - 1):>+7.1f}%{r['steps']:>7}{r['wall']:>10.0f}"
                  f"{np.abs(r['stress_gpa']).max():>15.2f}"
                  + ("" if r["converged"] else "  NOT converged / extrapolated"))
        if "ni_moment" in lattice.get("GPAW PBE + D3", {}):
            print(f"GPAW Ni moment {lattice['GPAW PBE + D3']['ni_moment']:.2f} μB")
    if barrier:
        neb, points = barrier
        e_ml = np.subtract(neb.energies, neb.energies[0])
        e_dft = np.array([p["energy"] for p in points]) - points[0]["energy"]
        print(f"(b) bulk Ni hop (Li0.5NiO2, {len(neb.images[0])} atoms), CHGNet + D3 CI-NEB "
              f"({args.images} images, fmax {args.fmax}, converged {neb.converged}); DFT//ML: GPAW "
              f"PW {args.barrier_encut:g} eV, Γ-centred {args.barrier_kpts}, PBE + D3(BJ), "
              f"spin-polarized from the paper's start moments, SCF energy {PAPER.energy_tol:g} "
              f"eV/electron, density {args.scf_density:g}, eigenstates 1e-6, "
              + ("fresh per image" if args.fresh else "one calculator along the path"))
        print(f"{'image':>6}{'E_ML − E0':>11}{'E_DFT − E0':>12}{'M (μB)':>8}{'Ni_hop (μB)':>12}"
              f"{'wall (s)':>10}")
        for i, (em, ed, p) in enumerate(zip(e_ml, e_dft, points, strict=True)):
            print(f"{i:>6}{em:>11.3f}{ed:>12.3f}{p['magmom']:>8.2f}{p['moved_ni']:>12.2f}{p['wall']:>10.0f}")
        dft_barrier = float(e_dft[1:-1].max())
        print(f"barrier (max − start): ML {neb.forward_barrier:.3f} eV, DFT//ML {dft_barrier:.3f} eV "
              f"(DFT − ML {dft_barrier - neb.forward_barrier:+.3f} eV); reaction energy: ML "
              f"{e_ml[-1]:.3f}, DFT//ML {e_dft[-1]:.3f} eV")


if __name__ == "__main__":
    main()
