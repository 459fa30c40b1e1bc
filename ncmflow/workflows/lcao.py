"""GPAW LCAO results as documents the electronic analyses read: PDOS and pair COHP.

The GPAW engine's electronic-structure job computes these from its live calculator (or a
``.gpw`` written with ``mode="all"``: COHP needs the wave functions), so they live on the
workflows side; ``ncmflow.analysis.pdos``/``cohp`` read and plot them. Pair COHPs are only
right when the k-points were not reduced by the point group (a rotation maps an atom pair onto
another pair), so the LCAO job runs with ``symmetry={"point_group": False}`` and
:func:`lcao_inputs` refuses other runs; time reversal is harmless (the −k state gives the same
population). `PdosData` holds plain arrays relative to E_F, spin channels apart ("up"/"down"),
whatever code produced them (VASP via pymatgen's CompleteDos, or GPAW). Projection labels are
"<Element>-<l>" (all sites of the element, e.g. "Ni-d") or "<Element><index>-<l>" for one
site, index 0-based (e.g. "Ni12-d").
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase.units import Ha
from monty.json import jsanitize

SPINS = ("up", "down")
_LABEL = re.compile(r"^([A-Z][a-z]?)(\d*)-([spdf])$")


def parse_label(label: str, symbols: list[str]) -> tuple[str, list[int], str]:
    """'Ni-d' → every Ni site, 'Ni12-d' → site 12 (which must be Ni): (element, sites, orbital)."""
    match = _LABEL.match(label)
    if match is None:
        raise ValueError(f"projection label {label!r} is not like 'Ni-d' or 'Ni12-d'")
    element, index, orbital = match.groups()
    if index:
        found = symbols[int(index)] if int(index) < len(symbols) else "absent"
        if found != element:
            raise ValueError(f"{label}: no such {element} site (site {index} is {found}, not {element})")
        return element, [int(index)], orbital
    sites = [a for a, s in enumerate(symbols) if s == element]
    if not sites:
        raise ValueError(f"{label}: no such {element} site in this calculation")
    return element, sites, orbital


@dataclass
class PdosData:
    """DOS projections on a common energy grid; energies are E − E_F (eV), DOS in states/eV."""

    energies: np.ndarray
    efermi: float  # absolute Fermi energy of the source calculation, eV
    projections: dict[str, dict[str, np.ndarray]]  # label -> {"up": g, "down": g}
    total: dict[str, np.ndarray] = field(default_factory=dict)  # total DOS per spin, if known

    @classmethod
    def from_arrays(cls, energies, projections: dict, efermi: float, total: dict | None = None):
        """From absolute energies (eV) and {label: {spin: dos}}; spin keys "up"/"down" or 0/1."""
        def spins(d: dict) -> dict[str, np.ndarray]:
            return {SPINS[k] if isinstance(k, int) else str(k): np.asarray(v, dtype=float)
                    for k, v in d.items()}

        return cls(np.asarray(energies, dtype=float) - efermi, float(efermi),
                   {label: spins(d) for label, d in projections.items()}, spins(total or {}))

    @classmethod
    def from_complete_dos(cls, dos, labels: list[str] | None = None) -> PdosData:
        """From a pymatgen CompleteDos; `labels=None` takes every element's s, p and d."""
        from pymatgen.electronic_structure.core import OrbitalType

        structure = dos.structure
        if labels is None:
            labels = [f"{el}-{orb}" for el in structure.symbol_set for orb in "spd"]
        projections = {}
        for label in labels:
            element, sites, orbital = parse_label(label, [s.specie.symbol for s in structure])
            if _LABEL.match(label).group(2):
                spd = dos.get_site_spd_dos(structure[sites[0]])
            else:
                spd = dos.get_element_spd_dos(element)
            projected = spd.get(OrbitalType[orbital])
            if projected is None:
                raise ValueError(f"no {orbital} projection for {label} in this DOS")
            projections[label] = {s.name: np.asarray(g) for s, g in projected.densities.items()}
        total = {s.name: np.asarray(g) for s, g in dos.densities.items()}
        return cls(np.asarray(dos.energies) - dos.efermi, float(dos.efermi), projections, total)

    @classmethod
    def from_vasprun(cls, path: str | Path, labels: list[str] | None = None) -> PdosData:
        """From a vasprun.xml(.gz) written with LORBIT ≥ 10 (projected DOS present)."""
        from pymatgen.io.vasp import Vasprun

        from ncmflow.structures.files import parsing

        with parsing(path, "vasprun.xml"):
            run = Vasprun(str(path), parse_potcar_file=False, parse_eigen=False)
        if not run.pdos:
            raise ValueError(f"{path} has no projected DOS (VASP writes it with LORBIT = 11)")
        return cls.from_complete_dos(run.complete_dos, labels)

    def spin_summed(self, label: str) -> np.ndarray:
        """Up + down DOS of one projection (a non-spin-polarized run has only "up")."""
        return sum(self.projections[label].values())

    def as_dict(self) -> dict:
        """Plain nested dict of lists for JSON stores."""
        return jsanitize(asdict(self))



def lcao_cohp(H, S, coeffs, eigenvalues, weights, orbitals_a, orbitals_b, efermi: float,
              energies, width: float = 0.1) -> dict[str, np.ndarray | float]:
    """COHP and COOP between orbital sets A and B from LCAO matrices (one spin channel).

    COHP_AB(E) = Σ_nk w_k Σ_{μ∈A,ν∈B} Re[c*_nkμ (H_μν − E_F S_μν) c_nkν] δ(E − ε_nk), and COOP
    the same with S_μν. H is shifted by E_F·S because in a non-orthogonal basis the COHP
    depends on the energy zero (adding c·S to H adds c·COOP); referencing it to E_F makes the
    result independent of each code's arbitrary potential zero.
    Shapes (GPAW's C_nM convention, ψ_n = Σ_μ c_nμ φ_μ): H, S (nk, nao, nao); coeffs
    (nk, nbands, nao); eigenvalues (nk, nbands); weights (nk,) including spin degeneracy
    (as GPAW's kpt.weight). δ is a Gaussian of std `width` (eV). The integrated values use
    sharp occupations ε_nk ≤ E_F. The sum is over ordered pairs: the full A–B bond is
    COHP_AB + COHP_BA (= 2 COHP_AB), and Σ over all ordered atom pairs of ICOOP (Mulliken)
    is the electron count. Returns energies, cohp, coop, minus_cohp, icohp, icoop (eV, e).
    """
    H, S, c = (np.asarray(x, dtype=complex) for x in (H, S, coeffs))
    eps, w, energies = np.asarray(eigenvalues), np.asarray(weights), np.asarray(energies)
    a, b = np.asarray(orbitals_a), np.asarray(orbitals_b)
    ca, cb = c[:, :, a], c[:, :, b]

    def population(matrix: np.ndarray) -> np.ndarray:  # (nk, nbands) weights of each state
        block = matrix[:, a[:, None], b[None, :]]
        return np.einsum("knm,kmv,knv->kn", ca.conj(), block, cb).real

    cohp_nk = population(H - efermi * S)
    coop_nk = population(S)
    delta = np.exp(-0.5 * ((energies[:, None, None] - eps[None]) / width) ** 2)
    delta *= w[None, :, None] / (width * np.sqrt(2 * np.pi))
    occupied = w[:, None] * (eps <= efermi)
    cohp = np.einsum("ekn,kn->e", delta, cohp_nk)
    return {
        "energies": energies - efermi,
        "cohp": cohp,
        "minus_cohp": -cohp,
        "coop": np.einsum("ekn,kn->e", delta, coop_nk),
        "icohp": float((occupied * cohp_nk).sum()),
        "icoop": float((occupied * coop_nk).sum()),
    }


L_NAMES = "spdf"


def load(calc_or_gpw: Any) -> Any:
    """A GPAW calculator from itself or from a ``.gpw`` path."""
    if isinstance(calc_or_gpw, str | Path):
        from gpaw import GPAW

        from ncmflow.structures.files import parsing

        with parsing(calc_or_gpw, "GPAW .gpw file"):
            return GPAW(str(calc_or_gpw), txt=None)
    return calc_or_gpw


def _bound_ls(setup: Any) -> set[int]:
    return {ell for ell, n in zip(setup.l_j, setup.n_j, strict=True) if n > 0}


def gpaw_pdos(
    calc_or_gpw: Any,
    labels: list[str] | None = None,
    energies: np.ndarray | None = None,
    width: float = 0.1,
) -> PdosData:
    """PDOS on the PAW projectors, labelled as in :mod:`ncmflow.analysis.pdos`.

    ``labels`` like "Ni-d" (all Ni sites) or "Ni12-d" (site 12); ``None`` takes every
    element's bound valence channels (N: s, p; Ni: s, d). A spin-paired run gives only "up" holding
    both spins, as pymatgen does for VASP. ``energies`` are absolute (eV); the default spans
    all bands ±1 eV in 0.01 eV steps. ``width`` is the Gaussian std (eV).
    """
    calc = load(calc_or_gpw)
    dc = calc.dos(shift_fermi_level=False)
    symbols = calc.atoms.get_chemical_symbols()
    if energies is None:
        eig = dc.eig_skn
        energies = np.arange(eig.min() - 1.0, eig.max() + 1.0, 0.01)
    if labels is None:  # the bound valence channels (n > 0), not the extra projectors
        labels = [f"{el}-{L_NAMES[ell]}" for el in dict.fromkeys(symbols)
                  for ell in sorted(_bound_ls(calc.setups[symbols.index(el)]))]
    nspins = calc.get_number_of_spins()
    spins = [0, 1] if nspins == 2 else [None]

    def channel(atoms: list[int], ell: int, spin: int | None) -> np.ndarray:
        return sum(dc.raw_pdos(energies, a=a, l=ell, spin=spin, width=width) for a in atoms)

    projections = {}
    for label in labels:
        element, atoms, orbital = parse_label(label, symbols)
        ell = L_NAMES.index(orbital)
        if ell not in calc.setups[atoms[0]].l_j:
            raise ValueError(f"{label}: the {element} PAW setup has no {orbital} projectors")
        projections[label] = {SPINS[i]: channel(atoms, ell, s) for i, s in enumerate(spins)}
    total = {SPINS[i]: dc.raw_dos(energies, spin=s, width=width) for i, s in enumerate(spins)}
    return PdosData.from_arrays(energies, projections, dc.fermi_level, total)


def orbital_indices(calc_or_gpw: Any, atom: int) -> list[int]:
    """LCAO basis-function indices M of one atom (functions are stored atom by atom)."""
    calc = load(calc_or_gpw)
    start = sum(calc.setups[a].nao for a in range(atom))
    return list(range(start, start + calc.setups[atom].nao))


def _check_no_point_group(calc: Any) -> None:
    bz, ibz = calc.get_bz_k_points(), calc.get_ibz_k_points()
    for k in bz:
        d = np.concatenate([k - ibz, k + ibz])
        if not np.isclose(d - np.round(d), 0.0, atol=1e-6).all(axis=1).any():
            raise ValueError("k-points were reduced by point-group symmetry: pair COHP would be "
                             "wrong; rerun with symmetry={'point_group': False}")


def lcao_inputs(calc_or_gpw: Any) -> dict[str, Any]:
    """H, S, coefficients, eigenvalues (eV) and weights per spin ("up"/"down"), and E_F.

    Layouts as :func:`ncmflow.analysis.cohp.lcao_cohp` takes them: H, S (nk, nao, nao),
    coeffs (nk, nbands, nao), eigenvalues (nk, nbands), weights (nk,) with spin degeneracy.
    """
    from gpaw.lcao.tools import get_lcao_hamiltonian

    calc = load(calc_or_gpw)
    if calc.parameters.mode.name != "lcao":
        raise ValueError("COHP needs an LCAO calculation (mode='lcao')")
    _check_no_point_group(calc)
    H_skMM, S_kMM = get_lcao_hamiltonian(calc)
    out: dict[str, Any] = {"efermi": float(calc.get_fermi_level()), "spins": {}}
    for s in range(calc.get_number_of_spins()):
        kpts = sorted((kpt for kpt in calc.wfs.kpt_u if kpt.s == s), key=lambda kpt: kpt.k)
        out["spins"][SPINS[s]] = {
            "H": H_skMM[s], "S": S_kMM,
            "coeffs": np.array([kpt.C_nM for kpt in kpts]),
            "eigenvalues": np.array([kpt.eps_n for kpt in kpts]) * Ha,
            "weights": np.array([kpt.weight for kpt in kpts]),
        }
    return out


def gpaw_cohp(
    calc_or_gpw: Any,
    atom_a: int,
    atom_b: int,
    energies: np.ndarray | None = None,
    width: float = 0.1,
) -> dict[str, dict[str, Any]]:
    """−COHP/COOP of the a–b pair per spin channel, for the whole bond (a→b plus b→a).

    ``energies`` are absolute (eV; default E_F − 30 … E_F + 10). Returns per spin the
    :func:`lcao_cohp` dict with curves and integrals doubled (the bond counts both orders).
    """
    if atom_a == atom_b:
        raise ValueError("a bond needs two different atoms")
    calc = load(calc_or_gpw)
    inputs = lcao_inputs(calc)
    ef = inputs["efermi"]
    energies = np.arange(ef - 30.0, ef + 10.0, 0.01) if energies is None else energies
    a, b = orbital_indices(calc, atom_a), orbital_indices(calc, atom_b)
    out = {}
    for spin, m in inputs["spins"].items():
        res = lcao_cohp(m["H"], m["S"], m["coeffs"], m["eigenvalues"], m["weights"], a, b,
                        ef, energies, width)
        out[spin] = {k: v if k == "energies" else 2 * v for k, v in res.items()}
    return out
