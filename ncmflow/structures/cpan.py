"""Partially cyclized polyacrylonitrile (cPAN) oligomers, built with RDKit.

Chemistry: in an n-unit PAN chain H-[CH2-CH(C≡N)]n-H, a run of m neighbouring nitriles
cyclizes into the ladder -C(H)=N-C(=N-)-…: nitrile N_i bonds to nitrile C_{i+1}, closing
m-1 fused six-membered rings (pyridinic ring C=N); the last reacted nitrile ends as an
exocyclic imine C=NH. The cyclization degree is m/n, the fraction of reacted nitriles —
the quantity the paper's FTIR index I_C measures (reacted C=N vs remaining C≡N).
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Molecule

MIN_UNITS = 2


def reacted_nitriles(n_units: int, degree: float) -> int:
    """Number m of nitriles in the ladder: round(degree·n), never the impossible m = 1."""
    if n_units < MIN_UNITS:
        raise ValueError(f"a PAN oligomer needs n >= {MIN_UNITS} repeat units (got {n_units})")
    if not 0.0 <= degree <= 1.0:
        raise ValueError(f"cyclization degree must lie in [0, 1] (got {degree})")
    m = int(np.floor(degree * n_units + 0.5))
    if m == 1:
        raise ValueError(
            f"degree {degree} of {n_units} units leaves one reacted nitrile, which closes no ring"
        )
    return m


def cpan_smiles(n_units: int = 5, degree: float = 0.8) -> str:
    """Canonical SMILES of the oligomer; the ladder sits in the middle of the chain."""
    from rdkit import Chem

    m = reacted_nitriles(n_units, degree)
    first = (n_units - m) // 2
    mol = Chem.RWMol()
    alpha, nitrile_c, nitrile_n = [], [], []
    prev = None
    for i in range(n_units):
        beta = mol.AddAtom(Chem.Atom(6))  # CH2
        if prev is not None:
            mol.AddBond(prev, beta, Chem.BondType.SINGLE)
        a = mol.AddAtom(Chem.Atom(6))  # CH
        mol.AddBond(beta, a, Chem.BondType.SINGLE)
        c = mol.AddAtom(Chem.Atom(6))
        n = mol.AddAtom(Chem.Atom(7))
        mol.AddBond(a, c, Chem.BondType.SINGLE)
        reacted = first <= i < first + m
        mol.AddBond(c, n, Chem.BondType.DOUBLE if reacted else Chem.BondType.TRIPLE)
        alpha.append(a)
        nitrile_c.append(c)
        nitrile_n.append(n)
        prev = a
    for i in range(first, first + m - 1):
        mol.AddBond(nitrile_n[i], nitrile_c[i + 1], Chem.BondType.SINGLE)
    out = mol.GetMol()
    Chem.SanitizeMol(out)
    return Chem.MolToSmiles(out)


def bond_counts(smiles: str) -> dict[str, int]:
    """C≡N, ring C=N and exocyclic C=N counts read back from the molecule itself."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    counts = {"nitrile_CN": 0, "ring_CN": 0, "imine_CN": 0}
    for bond in mol.GetBonds():
        if {bond.GetBeginAtom().GetSymbol(), bond.GetEndAtom().GetSymbol()} != {"C", "N"}:
            continue
        if bond.GetBondType() == Chem.BondType.TRIPLE:
            counts["nitrile_CN"] += 1
        elif bond.GetBondType() == Chem.BondType.DOUBLE:
            counts["ring_CN" if bond.IsInRing() else "imine_CN"] += 1
    return counts


def cyclization_index(counts: dict[str, int]) -> float:
    """Fraction of nitriles that reacted: (ring + imine C=N) / all C–N multiple bonds."""
    reacted = counts["ring_CN"] + counts["imine_CN"]
    return reacted / (reacted + counts["nitrile_CN"])


def cpan(n_units: int = 5, degree: float = 0.8, seed: int = 0) -> Molecule:
    """A hydrogen-terminated cPAN oligomer: SMILES → sanitize → ETKDG embedding → MMFF94."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    smiles = cpan_smiles(n_units, degree)
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        raise RuntimeError(f"RDKit could not embed {smiles}")
    AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    pos = mol.GetConformer().GetPositions()
    species = [a.GetSymbol() for a in mol.GetAtoms()]
    counts = bond_counts(smiles)
    # Pyridinic (ring) and nitrile N are the two kinds that can coordinate Ni.
    n_kind = {
        a.GetIdx(): ("pyridinic" if a.IsInRing() else "nitrile" if a.GetDegree() == 1 and
                     a.GetTotalNumHs() == 0 else "imine")
        for a in mol.GetAtoms() if a.GetSymbol() == "N"
    }
    return Molecule(
        species, pos - pos.mean(axis=0),
        properties={
            "model": "cPAN", "smiles": smiles, "n_units": n_units,
            "cyclization_degree": degree, "seed": seed, **counts,
            "cyclization_index": cyclization_index(counts),
            "n_sites": {str(k): v for k, v in n_kind.items()},
        },
    )
