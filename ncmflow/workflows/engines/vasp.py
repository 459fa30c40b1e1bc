"""VASP through atomate2's makers (custodian with its VASP handlers), for clusters.

Inputs come from ncmflow's paper generators; the NEB result is translated into the same
BarrierDoc the local engines produce, so reports and queries do not care which engine ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from atomate2.vasp.jobs.core import RelaxMaker, StaticMaker
from atomate2.vasp.jobs.neb import NebFromImagesMaker
from emmet.core.neb import NebTaskDoc
from jobflow import Flow, Maker, job
from pymatgen.io.vasp import Incar

from ncmflow.inputs.settings import PAPER, DftSettings
from ncmflow.inputs.vasp import VTST_OPTIMIZERS, input_set_generator, write_vasp
from ncmflow.workflows.documents import BarrierDoc, ni_n_distances
from ncmflow.workflows.engines import Engine, Tolerances


def relax_maker(settings: DftSettings = PAPER, relax_cell: bool = False) -> RelaxMaker:
    """ISIF=3 for a bulk cell relax, ISIF=2 otherwise; EDIFFG = −fmax, NSW = relax_steps."""
    return RelaxMaker(input_set_generator=input_set_generator("relax", settings, bulk=relax_cell))


def static_maker(settings: DftSettings = PAPER) -> StaticMaker:
    return StaticMaker(input_set_generator=input_set_generator("static", settings))


@job(output_schema=BarrierDoc)
def barrier_from_vasp(neb: NebTaskDoc, model: str, fmax: float, info: dict | None = None,
                      iopt: int = 1) -> BarrierDoc:
    """atomate2's NEB task document as a BarrierDoc (climbing image = highest image)."""
    energies = list(neb.energies or [])
    forces = [c.output.ionic_steps[-1].forces if c and c.output.ionic_steps else None
              for c in (neb.calculations or [])]
    saddle = max(range(1, len(energies) - 1), key=energies.__getitem__) if len(energies) > 2 else None
    converged = getattr(neb.state, "value", neb.state) == "successful"
    info = {"path_method": f"{(info or {}).get('interpolation', 'idpp')}, {len(energies) - 2} images, "
                           f"VTST improved tangent, IOPT={iopt}", **(info or {})}
    return BarrierDoc(
        ni_n_distances=ni_n_distances(neb.images or [], info), **info,
        model=model, engine="vasp", images=neb.images, energies=energies, state=neb.state,
        neb_method="climbing_image", converged=converged, saddle_index=saddle, fmax=fmax,
        forward_barrier=energies[saddle] - energies[0] if saddle else None,
        reverse_barrier=energies[saddle] - energies[-1] if saddle else None,
        reaction_energy=energies[-1] - energies[0] if energies else None,
        forces=forces if all(f is not None for f in forces) and forces else None,
        reason=None if converged else "VASP NEB did not finish successfully", dir_name=neb.dir_name,
        optimizer=f"IBRION=3 IOPT={iopt} (VTST)", tangent="improved (VTST)",
    )


@dataclass
class VaspNebMaker(Maker):
    name: str = "vasp ci-neb"
    fmax: float = PAPER.neb_fmax
    iopt: int = 1
    neb: Maker = field(default_factory=NebFromImagesMaker)

    def make(self, images, model: str, info: dict | None = None) -> Flow:
        run = self.neb.make(images)
        doc = barrier_from_vasp(run.output, model, self.fmax, info, self.iopt)
        return Flow([run, doc], output=doc.output, name=f"{model} vasp neb")


def neb_maker(settings: DftSettings = PAPER, optimizer: str | None = None) -> VaspNebMaker:
    """VTST CI-NEB to ``settings.neb_fmax`` in ``neb_steps``; ``optimizer`` picks IOPT
    (L-BFGS by default). atomate2 sets the image count from the images it is given."""
    if optimizer is not None and optimizer.lower() not in VTST_OPTIMIZERS:
        raise ValueError(f"VTST has no optimizer {optimizer!r}: choose one of {', '.join(VTST_OPTIMIZERS)}")
    iopt = VTST_OPTIMIZERS[optimizer.lower()] if optimizer else 1
    generator = input_set_generator("neb", settings, iopt=iopt)
    return VaspNebMaker(fmax=settings.neb_fmax, iopt=iopt,
                        neb=NebFromImagesMaker(input_set_generator=generator))


def read_tolerances(job: str, folder: Path) -> Tolerances:
    """EDIFFG (negative: a force criterion) and NSW of the written INCAR, read by pymatgen."""
    incar = Incar.from_file(Path(folder) / "INCAR")
    return Tolerances(fmax=-float(incar["EDIFFG"]), steps=int(incar["NSW"]))


ENGINE = Engine(
    name="vasp",
    description="VASP 6 (+VTST for CI-NEB) via atomate2 and custodian, on a cluster",
    relax_maker=relax_maker,
    static_maker=static_maker,
    neb_maker=neb_maker,
    write_inputs=write_vasp,
    read_tolerances=read_tolerances,
    jobs=("relax", "static", "neb", "lobster"),
    programs=("vasp_std",),
    install_hint="run it where VASP is installed, with atomate2's VASP_CMD set",
)
