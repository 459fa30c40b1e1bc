"""Does another density mixer shorten the DFT check's single points, and does it land in the same state?

The quick DFT check (README "DFT check") spends ~95 % of its wall time in GPAW LCAO SCF loops of
45–70 iterations on the reduced slabs; the energy swings by eV for the first ~25. This reruns one
stored single point (its geometry and start moments read back from its ``gpaw.txt``) with the
same settings and each mixer, DFT part only (D3 does not depend on the density), and prints the
iterations, wall time, energy and total moment beside the stored run's.

    python benchmarks/scf_mixer.py RUN_DIR/gpaw.txt [--mixers msr1 pulay ...]

Mixers: msr1 (GPAW 26's default, the baseline, run again in this process), pulay (GPAW's Pulay,
its defaults), pulay-sum (β 0.05, 5 old densities, weight 50: the classic magnetic-oxide choice),
pulay-slow (β 0.02).

Measured 2026-12-03 on the demonstration's store (`ncmflow study --quick --dft-check`), one
thread each, the DFT part (eV; M the total moment, μB). Stored = MSR1, the study's run:

| point | MSR1 iterations / E / M | Pulay iterations / E / M | Pulay − MSR1 |
|---|---|---|---|
| CHGNet bare start | 47 / −234.1093 / 7.83 | 25 / −234.0987 / 7.70 | +0.011 |
| CHGNet bare end | 45 / −231.0184 / 13.50 | 67 / −230.7117 / 11.19 | +0.307 |
| CHGNet cPAN start | 59 / −338.0292 / 6.12 | 24 / −338.0088 / 6.09 | +0.020 |
| CHGNet cPAN end | 48 / −334.1323 / 12.01 | 32 / −334.1282 / 12.03 | +0.004 |
| SevenNet bare start | 51 / −232.3645 / 6.41 | 23 / −232.3104 / 6.68 | +0.054 |
| SevenNet bare end | 47 / −229.3167 / 10.57 | 36 / −229.1064 / 9.08 | +0.210 |
| SevenNet cPAN start | 46 / −336.8317 / 5.98 | 25 / −336.7623 / 6.02 | +0.069 |
| SevenNet cPAN end | 70 / −333.8597 / 11.92 | 46 / −333.7373 / 8.54 | +0.122 |

On the CHGNet bare end also: MSR1 again 48 iterations, −231.0188 (0.4 meV from the stored run);
pulay-sum 56, −231.0150, M 13.55 (MSR1's state); pulay-slow not converged after 92 iterations
(−230.666, M 10.9). MSR1 found the lower state at all 8 points; Pulay is about twice as fast on
the start points but stops 0.12–0.31 eV higher on three of the four end points (lower moments).
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
from ase import Atoms

MIXERS = {
    "msr1": None,
    "pulay": {"name": "pulay"},
    "pulay-sum": {"name": "pulay", "beta": 0.05, "nmaxold": 5, "weight": 50.0},
    "pulay-slow": {"name": "pulay", "beta": 0.02, "nmaxold": 5, "weight": 50.0},
}
ROW = re.compile(r"^\|\s*\d+\s*\|\s*([A-Z][a-z]?)\s*\|\s*(\S+)\s*\|\s*(\S+)\s*\|\s*(\S+)\s*\|"
                 r"\s*\(\s*(\S+),\s*(\S+),\s*(\S+)\)")
CELL = re.compile(r"^\|\s*(yes|no)\s*\|\s*(\S+)\s*\|\s*(\S+)\s*\|\s*(\S+)\s*\|")


def stored_run(log: Path) -> tuple[Atoms, dict]:
    """The first geometry of a GPAW 26 text log, with start moments, and what that run got."""
    text = log.read_text().splitlines()
    rows, cell = [], []
    for line in text:
        if (m := ROW.match(line)) and len(cell) == 0:
            rows.append(m.groups())
        elif (m := CELL.match(line)) and len(cell) < 3 and rows:
            cell.append(m.groups())
        if len(cell) == 3:
            break
    atoms = Atoms([r[0] for r in rows], positions=[[float(x) for x in r[1:4]] for r in rows],
                  cell=[[float(x) for x in c[1:4]] for c in cell], pbc=[c[0] == "yes" for c in cell])
    atoms.set_initial_magnetic_moments([float(r[6]) for r in rows])
    joined = "\n".join(text)
    iters = re.findall(r"^\|iter:\s*(\d+)\|", joined, re.M)
    energy = re.findall(r"^\s*Extrapolated:\s*(\S+)", joined, re.M)
    moment = re.findall(r"^Total magnetic moment: \(.*, (\S+)\)", joined, re.M)
    loop = re.findall(r"SCF loop duration: (\S+) s", joined)
    return atoms, {"iterations": int(iters[-1]), "energy": float(energy[-1]),
                   "magmom": float(moment[-1]), "wall": float(loop[-1]) if loop else float("nan")}


def run(atoms: Atoms, mixer: dict | None, txt: Path) -> dict:
    from gpaw import GPAW

    from ncmflow.inputs.gpaw import gpaw_parameters
    from ncmflow.inputs.settings import PAPER
    from ncmflow.workflows.study import QUICK_DFT, QUICK_SCF

    # the quick DFT check's own parameters (as its energy job makes them), the log's start moments
    params = gpaw_parameters(atoms, PAPER, QUICK_DFT["dft_mode"], kpts=QUICK_DFT["dft_kpts"],
                             convergence=QUICK_SCF, symmetry="off",
                             magmoms=atoms.get_initial_magnetic_moments())
    if mixer is not None:
        params["mixer"] = mixer
    atoms = atoms.copy()
    atoms.calc = GPAW(**params, txt=str(txt))
    started = time.perf_counter()
    energy = atoms.get_potential_energy()
    calc = atoms.calc
    return {"iterations": int(calc.get_number_of_iterations()),
            "energy": float(energy), "magmom": float(calc.get_magnetic_moment()),
            "magmoms": np.round(calc.get_magnetic_moments(), 2),
            "wall": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="a stored single point's gpaw.txt")
    parser.add_argument("--mixers", nargs="+", default=list(MIXERS), choices=list(MIXERS))
    parser.add_argument("--out", type=Path, default=Path("scf_mixer"))
    args = parser.parse_args()
    atoms, stored = stored_run(args.log)
    args.out.mkdir(exist_ok=True)
    print(f"{args.log}: {len(atoms)} atoms {atoms.get_chemical_formula()}, stored run: "
          f"{stored['iterations']} iterations, {stored['wall']:.0f} s, E {stored['energy']:.4f} eV, "
          f"M {stored['magmom']:.2f} μB", flush=True)
    rows = []
    for name in args.mixers:
        got = run(atoms, MIXERS[name], args.out / f"{name}.txt")
        rows.append([name, got["iterations"], f"{got['wall']:.0f}", f"{got['energy']:.4f}",
                     f"{got['energy'] - stored['energy']:+.4f}", f"{got['magmom']:.2f}"])
        print(f"{name}: {got['iterations']} iterations, {got['wall']:.0f} s, E {got['energy']:.4f} eV, "
              f"M {got['magmom']:.2f} μB", flush=True)
    print("\n| mixer | iterations | wall (s) | E (eV) | E − stored | M (μB) |\n|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")


if __name__ == "__main__":
    main()
