"""GPAW LCAO results as the inputs of the code-independent analyses (PDOS, LCAO-COHP).

Accepts a live calculator or a ``.gpw`` file written with ``mode="all"`` (the wave functions
are needed for COHP). Pair COHPs are only right when the k-points were not reduced by the
point group (a rotation maps an atom pair onto another pair), so the LCAO job runs with
``symmetry={"point_group": False}`` and :func:`lcao_inputs` refuses other runs; time
reversal is harmless (the −k state gives the same population).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase.units import Ha

from ncmflow.analysis.cohp import lcao_cohp
from ncmflow.analysis.pdos import SPINS, PdosData, parse_label

L_NAMES = "spdf"


def load(calc_or_gpw: Any) -> Any:
    """A GPAW calculator from itself or from a ``.gpw`` path."""
    if isinstance(calc_or_gpw, str | Path):
        from gpaw import GPAW

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
