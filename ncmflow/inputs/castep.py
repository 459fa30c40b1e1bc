"""CASTEP inputs (the paper's code): a ``.cell`` and a ``.param`` per job, via ASE's writers.

Keyword names follow the CASTEP manual (castep-docs, Groundstate/dftd.md for dispersion):
Grimme D3 is ``SEDC_SCHEME : D3-BJ`` (BJ damping) or ``D3`` (zero damping), available
from CASTEP 20 when built with ``GRIMMED3 := compile``; older builds only offer G06 (D2).
``GEOM_ENERGY_TOL`` is per atom in CASTEP, as in the paper. The transition-state task
(LST/QST) reads the product from ``POSITIONS_FRAC_PRODUCT`` in the same cell file; CASTEP
fixes the cell during it. Pseudopotentials are left to CASTEP's default on-the-fly
ultrasoft set, the paper's "ultrasoft pseudopotentials".
"""

from __future__ import annotations

from pathlib import Path

from ase.calculators.castep import Castep
from ase.io.castep import write_castep_cell, write_param
from pymatgen.core import Structure

from ncmflow.inputs.settings import (
    PAPER,
    DftSettings,
    check_elements,
    relaxes_cell,
    to_ase_atoms,
)

TASKS = {"relax": "GeometryOptimization", "static": "SinglePoint", "neb": "TransitionStateSearch"}
SEDC_SCHEMES = {"d3bj": "D3-BJ", "d3zero": "D3"}
PRECISION = 10  # digits for lattice and positions: the files must round-trip exactly


def castep_param(
    job: str, structure: Structure, settings: DftSettings = PAPER, bulk: bool | None = None
) -> dict[str, str]:
    """The .param keywords (lower case) and values, with explicit units."""
    params = {
        "task": TASKS[job],
        "xc_functional": settings.xc,
        "cut_off_energy": f"{settings.encut:g} eV",
        "spin_polarized": str(settings.spin_polarized).lower(),
        "elec_energy_tol": f"{settings.energy_tol:g} eV",
        "smearing_width": f"{settings.smearing:g} eV",
        "sedc_apply": str(settings.dispersion != "none").lower(),
        "max_scf_cycles": "200",
    }
    if settings.dispersion != "none":
        params["sedc_scheme"] = SEDC_SCHEMES[settings.dispersion]
    if job == "relax":
        relaxes_cell(structure, bulk)  # a slab given a bulk job fails here, as for VASP
        params |= {
            "geom_method": settings.optimizer,
            "geom_energy_tol": f"{settings.energy_tol:g} eV",
            "geom_force_tol": f"{settings.fmax:g} ev/ang",
            "geom_stress_tol": f"{settings.stress_tol:g} GPa",
            "geom_disp_tol": f"{settings.disp_tol:g} ang",
            "geom_max_iter": str(settings.relax_steps),
        }
    elif job == "static":
        params["write_formatted_density"] = "true"  # .den_fmt for charge-density differences
    elif job == "neb":
        params |= {
            "tssearch_method": "LSTQST",
            "tssearch_lstqst_protocol": "CompleteLSTQST",
            "tssearch_force_tol": f"{settings.neb_fmax:g} ev/ang",
            "tssearch_disp_tol": f"{settings.disp_tol:g} ang",
            "tssearch_energy_tol": f"{settings.energy_tol:g} eV",
        }
    return params


def write_castep(
    job: str,
    images: list[Structure],
    outdir: Path,
    settings: DftSettings = PAPER,
    bulk: bool | None = None,
    seed: str = "ncmflow",
) -> list[Path]:
    """Write ``seed.cell`` and ``seed.param``; for ``neb`` one LST/QST seed (first → last)."""
    for image in images:
        check_elements(image)
    reactant = images[0]
    calc = Castep(keyword_tolerance=3)  # no CASTEP binary here: accept keywords unchecked
    for key, value in castep_param(job, reactant, settings, bulk).items():
        setattr(calc.param, key, value)
    calc.cell.kpoint_mp_spacing = f"{settings.kpoint_spacing:g} 1/ang"
    if job == "relax" and not relaxes_cell(reactant, bulk):
        calc.cell.fix_all_cell = "true"
    if settings.hubbard_u:
        calc.cell.hubbard_u = [f"{el} d: {u:g}" for el, u in settings.u_values.items()]
    if job == "neb":
        product = images[-1]
        fmt = f"{{:s}} {{:.{PRECISION}f}} {{:.{PRECISION}f}} {{:.{PRECISION}f}}"
        calc.cell.positions_frac_product = [
            fmt.format(site.specie.symbol, *site.frac_coords) for site in product
        ]
    atoms = to_ase_atoms(reactant, settings)
    atoms.calc = calc
    outdir.mkdir(parents=True, exist_ok=True)
    cell_path, param_path = outdir / f"{seed}.cell", outdir / f"{seed}.param"
    with cell_path.open("w") as fd:
        write_castep_cell(fd, atoms, positions_frac=True, precision=PRECISION, magnetic_moments="initial")
    write_param(str(param_path), calc.param, force_write=True)
    return [cell_path, param_path]
