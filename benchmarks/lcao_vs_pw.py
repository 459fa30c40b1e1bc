"""GPAW LCAO (dzp) vs plane-wave energy differences along a small Ni hop, and the cost of one
LCAO single point of the reduced cPAN migration model.

Question: may the reduced Ni-hop model (``ncmflow.structures.migration.REDUCED``: 2 (104) layers
and the two-unit cPAN fragment, 60 atoms) get its DFT single points from LCAO? Only if LCAO's
energy *differences* along a hop agree with plane waves'. Tested on the small Ni-hop cell of
``benchmarks/dft_neb_seeding.py``: the one-layer LiNiO2 cell (4 atoms) as a 2×2×1 supercell with
one Li removed (Li3Ni4O8, 15 atoms); the lowest-index Ni next to the vacancy hops 2.89 Å into it
(``ncmflow.structures.sites.hop``). Start and end are relaxed with CHGNet + D3 (fixed cell, fmax
0.05 eV/Å; ``--no-ml-relax`` keeps the ideal sites), the midpoint is their linear interpolation.

Each image gets a fresh GPAW calculator (``ncmflow.inputs.gpaw.gpaw_calculator``: PBE + D3(BJ),
spin-polarized from the paper's start moments, Fermi-Dirac 0.05 eV) with the seeding
benchmark's cheap settings: Γ only, no symmetry, SCF to ``--scf-energy`` eV per valence electron
and 1e-3 density change per electron (1e-6 eigenstates in PW). Printed: E(mid) − E(start),
E(end) − E(start) for LCAO and for PW at each ``--encuts``, LCAO − PW, wall time, SCF
iterations and total moment per single point. Finished single points are kept in
``--out``/single_points.json, so a rerun with another cut-off added computes only that one.

Then (unless ``--skip-reduced``) one LCAO Γ-point single point of the reduced cPAN start
structure (site 0, as built, not relaxed) with the study's settings: the paper's SCF criterion
(1e-5 eV per electron), dipole layer, default symmetry — ``gpaw_calculator(structure, PAPER,
mode="lcao", kpts=...)``. One core each, one at a time:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NCMFLOW_TORCH_THREADS=1 \\
        python benchmarks/lcao_vs_pw.py [--encuts 300,520] [--h 0.2] [--skip-reduced | --reduced-only]
        [--reduced-scf 1e-4,1e-3]

Measured 2026-12-02 on this 2-core machine, one core, another study on the other core
(CHGNet end points; the Ni hops 2.84 Å; moments start/mid/end 3.0 / 1.2 / 1.0 μB in every mode):

    E − E(start) (eV)    mid      end     s / point   SCF iterations
    LCAO dzp (h 0.2)    5.200    2.848      126        13 / 18 / 40
    PW 300 eV           5.316    3.378       28        17 / 28 / 41
    PW 520 eV           4.973    2.977       50        20 / 32 / 53
    LCAO − PW 520      +0.226   −0.129;  PW 300 − PW 520: +0.343 / +0.401

LCAO is closer to PW 520 than PW 300 is, but 0.13–0.23 eV off on 3–5 eV differences, and on
this 15-atom cell slower than PW (4.8 s per LCAO SCF step). Reduced cPAN start (60 atoms, grid
28 × 88 × 116, 820 basis functions, Γ): 12.9 s per SCF step; with the paper's SCF criterion not
converged after 83 steps (18 min; the energy wanders ±0.05 eV, the moment 5.7–6.1 μB, from the
unrelaxed built geometry); with ``--reduced-scf 1e-4,1e-3`` converged in 50 steps, 575 s
(E −341.093 eV, 6.04 μB): 16 such points ≈ 2.6 h on one core, ≈ 1.3 h on two idle cores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import time
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

from ncmflow.inputs.gpaw import gpaw_calculator, slab_boundaries
from ncmflow.inputs.settings import PAPER, to_ase_atoms
from ncmflow.structures import linio2
from ncmflow.structures.migration import REDUCED, ni_hop_endpoints
from ncmflow.structures.sites import HOP_RANGE, hop


def small_hop() -> tuple[Structure, Structure]:
    """(start, end) of the seeding benchmark's Ni hop: Li3Ni4O8, 2×2×1 one-layer cells, one Li out."""
    hexa = linio2()
    h = hexa.lattice.matrix
    layer = Structure(Lattice([h[0], h[1], (2 * h[0] + h[1] + h[2]) / 3]), hexa.species,
                      hexa.cart_coords, coords_are_cartesian=True, to_unit_cell=True)
    layer.merge_sites(tol=0.05, mode="delete")
    layer.make_supercell([2, 2, 1])
    layer = layer.get_sorted_structure(key=lambda site: ("Li", "Ni", "O").index(site.specie.symbol))
    li = next(i for i, sp in enumerate(layer.species) if sp.symbol == "Li")
    vacancy = layer.frac_coords[li].copy()
    layer.remove_sites([li])
    layer.properties = {"model": "Li3Ni4O8", "li_vacancies": [vacancy.tolist()]}
    d = layer.lattice.get_all_distances(layer.frac_coords, vacancy)[:, 0]
    ni = next(i for i, sp in enumerate(layer.species)
              if sp.symbol == "Ni" and HOP_RANGE[0] <= d[i] <= HOP_RANGE[1])
    return hop(layer, ni, vacancy, {"hop_kind": "bulk"})


def ml_relaxed(structure: Structure, fmax: float) -> Structure:
    """CHGNet + D3 relaxation at fixed cell (the paper's start moments play no part)."""
    from ase.optimize import BFGS

    from ncmflow.workflows.engines.mlip import calculator

    atoms = to_ase_atoms(structure)
    atoms.calc = calculator(PAPER, stress=False)
    BFGS(atoms, logfile=None).run(fmax=fmax, steps=300)
    out = Structure(structure.lattice, structure.species, atoms.positions, coords_are_cartesian=True)
    out.properties = dict(structure.properties)
    return out


def midpoint(start: Structure, end: Structure) -> Structure:
    d = end.frac_coords - start.frac_coords
    d -= np.round(d)  # the nearest periodic copy: the hop, not a jump across the cell
    return Structure(start.lattice, start.species, start.frac_coords + d / 2)


def scf_iterations(txt: Path) -> int:
    return len(re.findall(r"^\|?iter:\s*\d+", txt.read_text(), flags=re.M))


def single_point(structure: Structure, mode: str, txt: Path, **overrides) -> dict:
    atoms = slab_boundaries(to_ase_atoms(structure))
    atoms.calc = gpaw_calculator(structure, PAPER, mode=mode, txt=txt, **overrides)
    t0 = time.perf_counter()
    energy = atoms.get_potential_energy()
    wall = time.perf_counter() - t0
    dft = getattr(atoms.calc, "dft", atoms.calc)
    return {"energy": float(energy), "wall": wall, "iterations": scf_iterations(txt),
            "moment": float(dft.get_magnetic_moment())}


def cheap(mode: str, args: argparse.Namespace, encut: float | None = None) -> dict:
    convergence = {"energy": args.scf_energy, "density": 1e-3}
    if mode == "pw":
        extra = {"encut": encut, "convergence": convergence | {"eigenstates": 1e-6}}
    else:
        extra = {"convergence": convergence} | ({"h": args.h} if args.h else {})
    return {"kpts": {"size": (1, 1, 1), "gamma": True}, "symmetry": "off", **extra}


def compare(args: argparse.Namespace, out: Path) -> None:
    start, end = small_hop()
    print(f"cell {start.composition.formula} ({len(start)} atoms, a b c {np.round(start.lattice.abc, 3)}), "
          f"Ni {start.properties['moved_index']} hops {start.properties['hop_distance']:.2f} Å", flush=True)
    if args.ml_relax:
        t0 = time.perf_counter()
        start, end = ml_relaxed(start, args.ml_fmax), ml_relaxed(end, args.ml_fmax)
        i = start.properties["moved_index"]
        hop_length = 2 * np.linalg.norm(midpoint(start, end).cart_coords[i] - start.cart_coords[i])
        print(f"CHGNet + D3 end points relaxed in {time.perf_counter() - t0:.0f} s; the Ni now hops "
              f"{hop_length:.2f} Å", flush=True)
    images = {"start": start, "mid": midpoint(start, end), "end": end}
    runs = [("lcao", None)] + [("pw", e) for e in args.encuts]
    results: dict[str, dict[str, dict]] = {}
    done = out / "single_points.json"
    cache = json.loads(done.read_text()) if done.is_file() else {}
    for mode, encut in runs:
        name = "LCAO dzp" + (f" h {args.h:g}" if args.h else "") if mode == "lcao" else f"PW {encut:g} eV"
        results[name] = {}
        for key, image in images.items():
            txt = out / f"{mode}{'' if encut is None else int(encut)}_{key}.txt"
            tag = f"{name}|{key}|scf {args.scf_energy:g}|ml {args.ml_relax}"
            if tag not in cache:  # a rerun with one more cut-off reuses the points already done
                cache[tag] = single_point(image, mode, txt, **cheap(mode, args, encut))
                done.write_text(json.dumps(cache, indent=1))
            r = results[name][key] = cache[tag]
            if txt.is_file():  # the log is the record (a cached count may predate a parser fix)
                r["iterations"] = scf_iterations(txt)
            print(f"  {name:18} {key:5} E {r['energy']:12.4f} eV  {r['wall']:7.1f} s  "
                  f"{r['iterations']:3d} SCF  moment {r['moment']:6.2f} μB", flush=True)

    print("\n=== LCAO vs PW, Ni hop in Li3Ni4O8 (15 atoms; PBE + D3(BJ), spin-polarized, Γ only, "
          f"SCF {args.scf_energy:g} eV/electron) ===")
    print(f"{'':18}{'E(mid)−E(start)':>17}{'E(end)−E(start)':>17}{'s / point':>11}{'SCF iters':>11}")
    diffs = {}
    for name, r in results.items():
        d = (r["mid"]["energy"] - r["start"]["energy"], r["end"]["energy"] - r["start"]["energy"])
        diffs[name] = d
        wall = np.mean([x["wall"] for x in r.values()])
        iters = "/".join(str(x["iterations"]) for x in r.values())
        print(f"{name:18}{d[0]:>17.3f}{d[1]:>17.3f}{wall:>11.1f}{iters:>11}")
    lcao = next(k for k in diffs if k.startswith("LCAO"))
    for name in diffs:
        if name != lcao:
            print(f"{lcao} − {name}: {diffs[lcao][0] - diffs[name][0]:+.3f} (mid), "
                  f"{diffs[lcao][1] - diffs[name][1]:+.3f} (end) eV")
    pws = [k for k in diffs if k.startswith("PW")]
    for a, b in itertools.pairwise(pws):
        print(f"{a} − {b}: {diffs[a][0] - diffs[b][0]:+.3f} (mid), {diffs[a][1] - diffs[b][1]:+.3f} (end) eV")


def reduced_timing(args: argparse.Namespace, out: Path) -> None:
    start, _ = ni_hop_endpoints("cpan", "subsurface", 0, **REDUCED)
    print(f"\nreduced cPAN start: {start.composition.formula} ({len(start)} atoms, "
          f"a b c {np.round(start.lattice.abc, 2)} Å), {start.properties['site_label']}", flush=True)
    extra = {"h": args.h} if args.h else {}
    scf = "PAPER SCF (1e-5 eV/electron)"
    if args.reduced_scf:
        extra["convergence"] = {"energy": args.reduced_scf[0], "density": args.reduced_scf[1]}
        scf = f"SCF {args.reduced_scf[0]:g} eV/electron, density {args.reduced_scf[1]:g}"
    txt = out / ("reduced_cpan_lcao.txt" if not args.reduced_scf else "reduced_cpan_lcao_scf.txt")
    r = single_point(start, "lcao", txt, kpts={"size": tuple(args.reduced_kpts), "gamma": True}, **extra)
    print(f"=== reduced cPAN start, GPAW LCAO dzp{f' h {args.h:g}' if args.h else ''}, "
          f"{tuple(args.reduced_kpts)} k, {scf}: E {r['energy']:.4f} eV, "
          f"{r['iterations']} SCF iterations, {r['wall']:.0f} s ({r['wall'] / max(r['iterations'], 1):.1f} s "
          f"per iteration), moment {r['moment']:.2f} μB; 16 such points ≈ {16 * r['wall'] / 3600:.1f} h on "
          "one core", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encuts", type=lambda t: [float(x) for x in t.split(",")], default=[300.0],
                        help="PW cut-offs (eV), comma-separated, e.g. 300,520")
    parser.add_argument("--h", type=float, default=None, help="LCAO grid spacing (Å); GPAW's default 0.2")
    parser.add_argument("--scf-energy", type=float, default=1e-4, help="eV per valence electron (small cell)")
    parser.add_argument("--ml-fmax", type=float, default=0.05)
    parser.add_argument("--no-ml-relax", dest="ml_relax", action="store_false")
    parser.add_argument("--reduced-kpts", type=lambda t: [int(x) for x in t.split(",")], default=[1, 1, 1])
    parser.add_argument("--reduced-scf", type=lambda t: [float(x) for x in t.split(",")], default=None,
                        help="ENERGY,DENSITY SCF criteria of the reduced point (default: the paper's)")
    parser.add_argument("--out", type=Path, default=Path("lcao_vs_pw_out"), help="GPAW text logs")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--skip-reduced", action="store_true")
    which.add_argument("--reduced-only", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.reduced_only:
        compare(args, args.out)
    if not args.skip_reduced:
        reduced_timing(args, args.out)


if __name__ == "__main__":
    main()
