"""Crystal orbital Hamilton populations: is the Ni–N contact a bond, and how strong?

Sign convention throughout: −COHP > 0 is bonding, < 0 antibonding; −ICOHP at E_F (eV) is
the bond-strength number. Spin channels are kept apart as "up"/"down" (a non-spin-polarized
calculation has only "up"). Two sources: LOBSTER files (VASP) via pymatgen's readers, and
`lcao_cohp`, the same quantity from LCAO matrices for a GPAW engine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from monty.json import jsanitize

from ncmflow.analysis.plotting import SPIN_STYLE, fermi_line, figure, save
from ncmflow.workflows.lcao import lcao_cohp  # computed by the GPAW engine's job

__all__ = ["CohpResult", "lcao_cohp", "plot_cohp", "read_lobster_cohp"]


@dataclass
class CohpResult:
    """Pair-resolved −COHP of the selected bonds; energies are E − E_F (eV)."""

    energies: np.ndarray
    labels: list[str]  # LOBSTER bond numbers, as in ICOHPLIST.lobster ("21", …)
    atoms: list[tuple[str, str]]  # LOBSTER atom names of each bond, e.g. ("Cl2", "Na1")
    lengths: np.ndarray  # Å
    minus_cohp: dict[str, np.ndarray]  # spin -> (n_bonds, n_energies)
    minus_icohp_at_ef: dict[str, np.ndarray]  # spin -> (n_bonds,), eV, from ICOHPLIST

    def as_dict(self) -> dict:
        """Plain nested dict of lists for JSON stores (atom pairs become 2-lists)."""
        return jsanitize(asdict(self))


def _find(folder: Path, *names: str) -> Path:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"{folder}: none of {', '.join(names)} (or .gz) found")


def read_lobster_cohp(
    folder: str | Path,
    pair: tuple[str, str] | None = None,
    max_length: float | None = None,
    labels: list[str] | None = None,
) -> CohpResult:
    """Bonds of an element `pair` (e.g. ("Ni", "N")) and/or given `labels` from a LOBSTER run.

    Needs COHPCAR.lobster, ICOHPLIST.lobster and CONTCAR (or POSCAR), optionally gzipped.
    `max_length` (Å) keeps only first-shell contacts, which is usually what "the Ni–N bond"
    means. The −ICOHP at E_F is LOBSTER's own number from ICOHPLIST.
    """
    from pymatgen.core import Structure
    from pymatgen.io.lobster import Cohpcar, Icohplist

    from ncmflow.structures.files import parsing

    folder = Path(folder)
    files = {"structure": _find(folder, "CONTCAR", "POSCAR"), "cohp": _find(folder, "COHPCAR.lobster"),
             "icohp": _find(folder, "ICOHPLIST.lobster")}
    with parsing(files["structure"], "POSCAR"):
        structure = Structure.from_file(files["structure"])
    with parsing(files["cohp"], "COHPCAR.lobster"):
        cohpcar = Cohpcar(filename=str(files["cohp"]))
    with parsing(files["icohp"], "ICOHPLIST.lobster"):
        icohps = Icohplist(filename=str(files["icohp"])).icohplist
    names = [f"{site.specie.symbol}{i + 1}" for i, site in enumerate(structure)]

    chosen = []
    for label, bond in cohpcar.cohp_data.items():
        if label == "average" or (labels is not None and label not in labels):
            continue
        if max(bond["sites"]) >= len(structure):
            raise ValueError(f"{files['cohp']}: bond {label} joins site {max(bond['sites']) + 1}, but "
                             f"{files['structure']} has {len(structure)} sites: files of different runs?")
        elements = sorted(structure[i].specie.symbol for i in bond["sites"])
        if pair is not None and elements != sorted(pair):
            continue
        if max_length is not None and bond["length"] > max_length:
            continue
        if label not in icohps:
            raise ValueError(f"{files['icohp']} has no bond {label} of {files['cohp'].name}: cut short, "
                             "or of another run?")
        if abs(icohps[label]["length"] - bond["length"]) > 1e-3:
            raise ValueError(f"bond {label}: COHPCAR and ICOHPLIST disagree; different runs?")
        chosen.append(label)
    if not chosen:
        raise ValueError(f"{folder}: no bonds match pair={pair}, max_length={max_length}")

    spins = list(cohpcar.cohp_data[chosen[0]]["COHP"])
    short = [lb for lb in chosen if set(spins) - set(icohps[lb]["icohp"])]
    if short:
        raise ValueError(f"{files['icohp']}: bond {short[0]} lacks the spin channels of {files['cohp'].name} "
                         f"({', '.join(s.name for s in spins)}): cut short, or of another run?")
    return CohpResult(
        energies=np.asarray(cohpcar.energies, dtype=float),  # LOBSTER already puts E_F at 0
        labels=chosen,
        atoms=[tuple(names[i] for i in cohpcar.cohp_data[lb]["sites"]) for lb in chosen],
        lengths=np.array([cohpcar.cohp_data[lb]["length"] for lb in chosen]),
        minus_cohp={s.name: -np.array([cohpcar.cohp_data[lb]["COHP"][s] for lb in chosen])
                    for s in spins},
        minus_icohp_at_ef={s.name: -np.array([icohps[lb]["icohp"][s] for lb in chosen])
                           for s in spins},
    )


def plot_cohp(
    results: dict[str, CohpResult],
    path: str | Path,
    energy_range: tuple[float, float] = (-8.0, 4.0),
) -> Path:
    """−COHP per bond (mean of the selected bonds) on x, bonding to the right, E − E_F on y.

    The legend's −ICOHP is per bond, summed over spin channels.
    """
    with figure(width=3.8, height=4.6) as (fig, ax):
        for i, (name, res) in enumerate(results.items()):
            mask = (res.energies >= energy_range[0]) & (res.energies <= energy_range[1])
            icohp = sum(v.mean() for v in res.minus_icohp_at_ef.values())
            label = (f"{name}: {len(res.labels)}×{res.lengths.mean():.2f} Å\n"
                     f"−ICOHP = {icohp:.3f} eV/bond")
            for spin, curves in res.minus_cohp.items():
                ax.plot(curves.mean(axis=0)[mask], res.energies[mask], color=f"C{i}",
                        linestyle=SPIN_STYLE[spin], linewidth=1.2,
                        label=label if spin == "up" else None)
        if any(len(res.minus_cohp) == 2 for res in results.values()):
            ax.text(0.97, 0.08, "solid: spin up\ndashed: spin down", transform=ax.transAxes,
                    ha="right", fontsize=7, color="0.3")
        ax.axvline(0.0, color="k", linewidth=0.6)
        fermi_line(ax, orientation="horizontal")
        ax.set_ylim(*energy_range)
        ax.set_xlabel(r"$-$COHP (eV)")
        ax.set_ylabel(r"$E - E_\mathrm{F}$ (eV)")
        lim = max(abs(v) for v in ax.get_xlim())
        ax.set_xlim(-lim, lim)
        ax.text(0.97, 0.02, "bonding →", transform=ax.transAxes, ha="right", fontsize=8)
        ax.text(0.03, 0.02, "← antibonding", transform=ax.transAxes, ha="left", fontsize=8)
        ax.legend(loc="upper left", fontsize=7)
        return save(fig, path)
