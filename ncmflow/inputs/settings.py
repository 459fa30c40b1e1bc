"""The paper's DFT protocol as one frozen object that every engine reads.

Zheng et al., Nano-Micro Lett. 17:195 (2025), section 2.5: GGA-PBE with a Grimme dispersion
correction, spin-polarized, 520 eV cutoff, BFGS to 1e-5 eV/atom, 0.02 eV/Å, 0.05 GPa and
0.001 Å. Values the paper does not state (k-points, smearing, initial moments, U) are chosen
here once, with the reason beside them, so no engine module hard-codes a number twice.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from monty.json import MSONable

if TYPE_CHECKING:
    from ase import Atoms
    from pymatgen.core import Structure

SUPPORTED_ELEMENTS = ("Li", "Ni", "Co", "Mn", "O", "C", "N", "H")

# Initial moments (μB), ferromagnetic start. Ni 1: low-spin Ni3+ (t2g6 eg1) in LiNiO2; in
# Li0.5NiO2 the Ni4+ (low-spin d6, 0 μB) sites quench it during the SCF, whereas a high-spin
# start (2 μB) tends to trap a Ni2+-like state. Co 0.6: low-spin Co3+ is d6 (0 μB) but a zero
# start would forbid any moment (Co4+ is 1 μB); 0.6 is the Materials Project's low-spin start.
# Mn 3: Mn4+ d3. Li, O and the coating's C, N, H start non-magnetic.
INITIAL_MAGMOMS = {"Ni": 1.0, "Co": 0.6, "Mn": 3.0, "Li": 0.0, "O": 0.0, "C": 0.0, "N": 0.0, "H": 0.0}

# Materials Project GGA+U values (Dudarev, eV, on the d shell); used only with hubbard_u=True
# because the paper reports plain PBE(+D).
MP_HUBBARD_U = {"Ni": 6.2, "Co": 3.32, "Mn": 3.9}

Dispersion = Literal["d3bj", "d3zero", "none"]
DISPERSIONS: tuple[str, ...] = ("d3bj", "d3zero", "none")
OPTIMIZERS: tuple[str, ...] = ("BFGS", "LBFGS")

RUN_FILE = "settings.json"  # what the mlip and gpaw writers put beside the images
VACUUM_GAP = 8.0  # Å along c above which a cell is a slab (or a boxed molecule)


class FrozenMapping(dict):
    """A read-only dict: immutable like MappingProxyType, but it pickles, deep-copies and
    serialises, which jobflow needs to store Makers that carry the settings.

    Kept rather than a frozen pydantic model: pydantic freezes the attributes but not a dict
    field's items (``settings.magmoms["Ni"] = 5`` would pass), and ``MappingProxyType`` fails
    ``copy.deepcopy``/pickle, which jobflow and the worker processes use on every Maker."""

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("settings are frozen: use DftSettings.with_changes(...)")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def __reduce__(self) -> tuple:
        return (FrozenMapping, (dict(self),))


def _frozen(mapping: Mapping[str, float]) -> FrozenMapping:
    return FrozenMapping({str(k): float(v) for k, v in mapping.items()})


@dataclass(frozen=True)
class DftSettings(MSONable):
    """Everything an engine needs to reproduce the paper's calculations, stopping criteria
    included: every engine's makers and written inputs read their tolerances from here.

    Units: eV, Å, GPa. ``kpoint_spacing`` is CASTEP's ``kpoint_mp_spacing`` convention
    (1/Å without the 2π, i.e. in units of 2π/Å): 0.04 is Materials Studio's "fine" quality,
    the likely setting of a CASTEP study; VASP gets the same mesh from :func:`kpoint_mesh`.
    ``relax_steps``, ``neb_fmax`` and ``neb_steps`` are not in the paper (it states the
    relaxation criteria only): 0.05 eV/Å is the usual CI-NEB force criterion.
    """

    xc: Literal["PBE"] = "PBE"
    dispersion: Dispersion = "d3bj"
    spin_polarized: bool = True
    magmoms: Mapping[str, float] = field(default_factory=lambda: _frozen(INITIAL_MAGMOMS))
    encut: float = 520.0
    optimizer: str = "BFGS"
    energy_tol: float = 1e-5  # eV/atom, geometry and SCF
    fmax: float = 0.02  # eV/Å
    stress_tol: float = 0.05  # GPa
    disp_tol: float = 0.001  # Å
    relax_steps: int = 500  # ionic steps of a relaxation (VASP NSW, CASTEP geom_max_iter)
    neb_fmax: float = 0.05  # eV/Å on the climbing image
    neb_steps: int = 400  # NEB iterations (VASP NSW of the band)
    kpoint_spacing: float = 0.04  # 2π/Å (CASTEP kpoint_mp_spacing)
    smearing: float = 0.05  # eV, Gaussian; not stated in the paper, safe for metals too
    hubbard_u: bool = False
    u_values: Mapping[str, float] = field(default_factory=lambda: _frozen(MP_HUBBARD_U))
    ml_model: str = "chgnet"

    def __post_init__(self) -> None:
        if self.xc != "PBE":
            raise ValueError(f"xc must be 'PBE' (the paper's functional), got {self.xc!r}")
        if self.dispersion not in DISPERSIONS:
            raise ValueError(f"dispersion must be one of {DISPERSIONS}, got {self.dispersion!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("fmax", "neb_fmax", "relax_steps", "neb_steps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        missing = [el for el in SUPPORTED_ELEMENTS if el not in self.magmoms]
        if missing:
            raise ValueError(f"magmoms lacks an initial moment for {', '.join(missing)}")
        # Freeze mappings passed through with_changes(magmoms={...}) too.
        object.__setattr__(self, "magmoms", _frozen(self.magmoms))
        object.__setattr__(self, "u_values", _frozen(self.u_values))

    def with_changes(self, **changes: Any) -> DftSettings:
        """A copy with some fields changed (the original stays the paper's)."""
        return dataclasses.replace(self, **changes)

    def initial_magmoms(self, structure: Structure) -> list[float]:
        """Per-site start moments: a site's own ``magmom`` property wins over the defaults."""
        check_elements(structure)
        site_moms = structure.site_properties.get("magmom")
        return [
            float(site_moms[i])
            if site_moms is not None and site_moms[i] is not None
            else self.magmoms[site.specie.symbol]
            for i, site in enumerate(structure)
        ]


PAPER = DftSettings()


def job_tolerances(job: str, settings: DftSettings) -> dict[str, Any]:
    """The stopping criteria of ``job`` (fmax eV/Å, steps): a NEB's or a relaxation's; a
    single point takes no step."""
    if job == "neb":
        return {"fmax": settings.neb_fmax, "steps": settings.neb_steps}
    return {"fmax": settings.fmax, "steps": settings.relax_steps if job == "relax" else 0}


def written_tolerances(folder: Path) -> dict[str, Any]:
    """fmax and steps of a job written with a ``settings.json`` (mlip and gpaw engines)."""
    import json

    run = json.loads((Path(folder) / RUN_FILE).read_text())
    return {"fmax": float(run["fmax"]), "steps": int(run["steps"])}


def check_elements(structure: Structure) -> None:
    """Reject elements the settings have no moments, U or POTCAR choice for."""
    for el in sorted({site.specie.symbol for site in structure}):
        if el not in SUPPORTED_ELEMENTS:
            raise ValueError(
                f"element {el} is not supported (ncmflow covers {', '.join(SUPPORTED_ELEMENTS)})"
            )


def has_vacuum(structure: Structure, min_gap: float = VACUUM_GAP) -> bool:
    """True if the largest empty slab along c is thicker than ``min_gap`` Å.

    Gaps are measured perpendicular to the ab plane (fractional gap × d(001)), so a skewed
    c axis does not inflate them. Slabs and molecules in a box both qualify: neither may have
    its cell relaxed.
    """
    z = np.sort(np.mod(structure.frac_coords[:, 2], 1.0))
    gaps = np.diff(np.append(z, z[0] + 1.0))
    return float(gaps.max()) * structure.lattice.d_hkl((0, 0, 1)) > min_gap


def relaxes_cell(structure: Structure, bulk: bool | None = None) -> bool:
    """Whether a relaxation may change the cell: bulk yes; slabs no, or the vacuum collapses.

    ``bulk=None`` decides from the structure; ``bulk=True`` on a slab is a mistake to stop.
    """
    slab = has_vacuum(structure)
    if bulk and slab:
        raise ValueError(
            f"slab given a bulk job: {structure.reduced_formula} has > {VACUUM_GAP:g} Å of "
            "vacuum along c; relax it at fixed cell (bulk=False or None)"
        )
    return not slab if bulk is None else bulk


def kpoint_mesh(structure: Structure, spacing: float) -> tuple[int, int, int]:
    """Monkhorst-Pack divisions with at most ``spacing`` (2π/Å) between k-points, as CASTEP."""
    recip = structure.lattice.reciprocal_lattice_crystallographic.abc  # 1/Å, no 2π
    n1, n2, n3 = (max(1, math.ceil(b / spacing - 1e-6)) for b in recip)
    return n1, n2, n3


def to_ase_atoms(structure: Structure, settings: DftSettings = PAPER) -> Atoms:
    """ASE atoms (pymatgen's ``AseAtomsAdaptor``: selective dynamics become FixAtoms /
    FixCartesian) carrying the start moments of ``settings``; other site and structure
    properties are left out, so the atoms write to any ASE format."""
    from pymatgen.core import Structure as _Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    props = {"magmom": settings.initial_magmoms(structure)}
    if (flags := structure.site_properties.get("selective_dynamics")) is not None:
        props["selective_dynamics"] = [[bool(x) for x in f] for f in flags]
    bare = _Structure(structure.lattice, structure.species, structure.frac_coords, site_properties=props)
    return AseAtomsAdaptor.get_atoms(bare, msonable=False)
