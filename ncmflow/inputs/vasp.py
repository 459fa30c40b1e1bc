"""VASP inputs: atomate2's input-set generators with the paper's settings layered on top.

Each generator keeps its atomate2 parent's job tags (NSW, LORBIT, IMAGES, ...) and overrides
the physics with :class:`~ncmflow.inputs.settings.DftSettings`, so the same objects can be
handed to atomate2 Makers (``input_set_generator=...``) or written to folders here.

Optimizer mapping (VASP has no plain BFGS): relaxations use IBRION=1 (RMM-DIIS quasi-Newton,
the BFGS-like option built into VASP); climbing-image NEB needs the VTST patch anyway (LCLIMB),
so it uses VTST's L-BFGS (IOPT=1, IBRION=3, POTIM=0). VASP stops geometry on forces
(EDIFFG=-fmax); it has no stress or displacement criterion, and EDIFF carries the paper's
1e-5 eV/atom as a total (× number of atoms).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atomate2.vasp.sets.base import VaspInputGenerator
from atomate2.vasp.sets.core import NebSetGenerator, RelaxSetGenerator, StaticSetGenerator
from pymatgen.core import SETTINGS, Structure
from pymatgen.io.lobster import Lobsterin
from pymatgen.io.vasp import Kpoints, Poscar

from ncmflow.inputs.settings import (
    PAPER,
    DftSettings,
    check_elements,
    has_vacuum,
    kpoint_mesh,
    relaxes_cell,
)

POTCAR_SYMBOLS = {
    "Li": "Li_sv",
    "Ni": "Ni_pv",
    "Co": "Co",
    "Mn": "Mn_pv",
    "O": "O",
    "C": "C",
    "N": "N",
    "H": "H",
}  # the Materials Project's choices for these elements
POTCAR_FUNCTIONAL = "PBE_54"
_VDW = {"d3bj": "dftd3-bj", "d3zero": "dftd3", "none": None}  # pymatgen names: IVDW 12 / 11
_ORBITALS = {"s": 1, "p": 3, "d": 5, "f": 7}
COHP_RANGE = (1.5, 2.3)  # Å: Ni–N coordination bond and Ni–O octahedral bonds (1.97 Å)


def _config_dict(settings: DftSettings) -> dict[str, Any]:
    """Base config: per-element moments and U need pymatgen's per-site logic.

    LASPH (aspherical PAW terms, advised for 3d oxides, +U and vdW) sits here rather than in
    :func:`paper_incar` because pymatgen checks it before the generator updates apply.
    """
    incar: dict[str, Any] = {"MAGMOM": dict(settings.magmoms), "LASPH": True}
    if settings.hubbard_u:
        incar |= {
            "LDAU": True,
            "LDAUTYPE": 2,
            "LDAUU": dict(settings.u_values),
            "LDAUL": dict.fromkeys(settings.u_values, 2),
            "LDAUJ": dict.fromkeys(settings.u_values, 0),
        }
    return {
        "INCAR": incar,
        "KPOINTS": {},
        "POTCAR": dict(POTCAR_SYMBOLS),
        "POTCAR_FUNCTIONAL": POTCAR_FUNCTIONAL,
    }


def paper_incar(settings: DftSettings, structure: Structure) -> dict[str, Any]:
    """The scalar INCAR tags every job shares; they override the atomate2 parents' choices."""
    tags: dict[str, Any] = {
        "ENCUT": settings.encut,
        "GGA": "PE",
        "PREC": "Accurate",
        "ALGO": "Normal",
        "ISPIN": 2 if settings.spin_polarized else 1,
        "EDIFF": float(f"{settings.energy_tol * len(structure):.6g}"),
        "EDIFFG": -settings.fmax,
        "ISMEAR": 0,
        "SIGMA": settings.smearing,
        "LREAL": False,
        "NELM": 200,
    }
    if has_vacuum(structure):  # slab: cancel the spurious field across the vacuum
        tags |= {"LDIPOL": True, "IDIPOL": 3}
    return tags


@dataclass
class _PaperSet:
    """Mixin putting the paper's settings over an atomate2 generator's job tags."""

    settings: DftSettings = PAPER
    bulk: bool | None = None
    sort_structure: bool = False  # keep the caller's atom order (NEB images, hop indices)

    def __post_init__(self) -> None:
        self.config_dict = _config_dict(self.settings)
        self.vdw = _VDW[self.settings.dispersion]
        super().__post_init__()  # type: ignore[misc]

    def job_updates(self) -> dict[str, Any]:
        return {}

    @property
    def incar_updates(self) -> dict[str, Any]:
        check_elements(self.structure)
        parent = super().incar_updates  # type: ignore[misc]
        return parent | paper_incar(self.settings, self.structure) | self.job_updates()

    @property
    def kpoints_updates(self) -> Kpoints:
        return Kpoints.gamma_automatic(kpoint_mesh(self.structure, self.settings.kpoint_spacing))


@dataclass
class PaperRelaxSetGenerator(_PaperSet, RelaxSetGenerator):
    """Relaxation: full cell (ISIF=3) for bulk, ions only (ISIF=2) for slabs."""

    def job_updates(self) -> dict[str, Any]:
        isif = 3 if relaxes_cell(self.structure, self.bulk) else 2
        return {"ISIF": isif, "IBRION": 1, "POTIM": 0.5, "NSW": self.settings.relax_steps}


@dataclass
class PaperStaticSetGenerator(_PaperSet, StaticSetGenerator):
    """Static run for PDOS (LORBIT=11) and charge-density differences (CHGCAR + AECCAR)."""

    def job_updates(self) -> dict[str, Any]:
        return {"NSW": 0, "LORBIT": 11, "NEDOS": 3001, "LCHARG": True, "LAECHG": True}


@dataclass
class PaperNebSetGenerator(_PaperSet, NebSetGenerator):
    """Climbing-image NEB at fixed cell (VTST: LCLIMB, IOPT), to the settings' NEB criteria."""

    iopt: int = 1  # VTST optimizer: 1 L-BFGS, 2 CG, 3 quick-min, 7 FIRE

    def job_updates(self) -> dict[str, Any]:
        return {
            "IMAGES": self.num_images,
            "SPRING": -5,
            "LCLIMB": True,
            "IBRION": 3,
            "POTIM": 0,
            "IOPT": self.iopt,
            "ISIF": 2,
            "EDIFFG": -self.settings.neb_fmax,
            "NSW": self.settings.neb_steps,
        }


@dataclass
class PaperLobsterSetGenerator(_PaperSet, StaticSetGenerator):
    """Static run LOBSTER can project: no symmetry, all basis-function bands, WAVECAR kept."""

    def job_updates(self) -> dict[str, Any]:
        return {
            "NSW": 0,
            "ISYM": 0,
            "LWAVE": True,
            "LCHARG": False,
            "LORBIT": 11,
            "NBANDS": lobster_nbands(self.structure),
        }


GENERATORS: dict[str, type[VaspInputGenerator]] = {
    "relax": PaperRelaxSetGenerator,
    "static": PaperStaticSetGenerator,
    "neb": PaperNebSetGenerator,
    "lobster": PaperLobsterSetGenerator,
}


VTST_OPTIMIZERS = {"bfgs": 1, "lbfgs": 1, "cg": 2, "quickmin": 3, "fire": 7}  # name -> IOPT


def input_set_generator(
    job: str, settings: DftSettings = PAPER, bulk: bool | None = None, n_images: int = 1,
    iopt: int = 1,
) -> VaspInputGenerator:
    """The configured atomate2 generator for ``job`` (usable by atomate2 VASP Makers)."""
    kwargs: dict[str, Any] = {"num_images": n_images, "iopt": iopt} if job == "neb" else {}
    return GENERATORS[job](settings=settings, bulk=bulk, **kwargs)


def potcar_symbols(structure: Structure) -> list[str]:
    """POTCAR symbols in POSCAR species order (consecutive runs, as Poscar writes them)."""
    return [POTCAR_SYMBOLS[el] for el in Poscar(structure).site_symbols]


def lobster_basis(structure: Structure) -> list[str]:
    """pymatgen's standard LOBSTER basis (pbeVaspFit2015) for our POTCARs."""
    return Lobsterin.get_basis(structure, sorted(set(potcar_symbols(structure))))


def lobster_nbands(structure: Structure) -> int:
    """Number of basis functions: LOBSTER needs at least as many bands to project onto."""
    per_element = {
        line.split()[0]: sum(_ORBITALS[orb[-1]] for orb in line.split()[1:])
        for line in lobster_basis(structure)
    }
    return sum(per_element[site.specie.symbol] for site in structure)


def lobsterin(structure: Structure, settings: DftSettings = PAPER) -> Lobsterin:
    """COHP of every Ni–N pair within 1.5–2.3 Å, and the Ni–O bonds of those Ni as reference.

    Without N (the bare slab) the Ni–O bonds are the generated set. Ni–O pairs are written
    as ``cohpbetween`` lines; LOBSTER takes the shortest periodic image, which for a bond of
    ≤ 2.3 Å in cells wider than 4.6 Å is the bond itself.
    """
    lo, hi = COHP_RANGE
    partner = "N" if "N" in structure.symbol_set else "O"
    settings_dict: dict[str, Any] = {
        "COHPstartEnergy": -15.0,
        "COHPendEnergy": 5.0,
        "gaussianSmearingWidth": settings.smearing,
        "basisSet": "pbeVaspFit2015",
        "basisfunctions": lobster_basis(structure),
        "cohpGenerator": f"from {lo} to {hi} type Ni type {partner}",
    }
    if partner == "N":
        pairs = set()
        for i, site in enumerate(structure):
            if site.specie.symbol != "Ni":
                continue
            neighbors = structure.get_neighbors(site, hi)
            if any(n.specie.symbol == "N" and n.nn_distance >= lo for n in neighbors):
                pairs |= {
                    (i + 1, n.index + 1) for n in neighbors if n.specie.symbol == "O" and n.nn_distance >= lo
                }
        if pairs:
            settings_dict["cohpbetween"] = [f"atom {i} atom {j}" for i, j in sorted(pairs)]
    return Lobsterin(settings_dict)


def write_vasp(
    job: str,
    images: list[Structure],
    outdir: Path,
    settings: DftSettings = PAPER,
    bulk: bool | None = None,
) -> list[Path]:
    """Write one VASP job; for NEB, ``images`` are all frames and go to 00 … N+1.

    Without ``PMG_VASP_PSP_DIR`` a ``POTCAR.spec`` (one symbol per line) replaces the
    POTCAR, so inputs can be prepared on machines without the licensed files.
    """
    for image in images:
        check_elements(image)
    first = images[0].copy()  # pymatgen may edit site magmoms in place
    generator = input_set_generator(job, settings, bulk=bulk, n_images=len(images) - 2)
    vasp_input = generator.get_input_set(first, potcar_spec=not SETTINGS.get("PMG_VASP_PSP_DIR"))
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, obj in vasp_input.items():
        if job == "neb" and name == "POSCAR":
            continue
        path = outdir / name
        path.write_text(obj if isinstance(obj, str) else str(obj))
        written.append(path)
    if job == "neb":
        for i, image in enumerate(images):
            (outdir / f"{i:02d}").mkdir(exist_ok=True)
            path = outdir / f"{i:02d}" / "POSCAR"
            Poscar(image).write_file(path)
            written.append(path)
    if job == "lobster":
        path = outdir / "lobsterin"
        lobsterin(first, settings).write_lobsterin(path)
        written.append(path)
    return written
