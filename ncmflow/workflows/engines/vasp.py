"""VASP through atomate2's makers (custodian with its VASP handlers), for clusters.

Inputs come from ncmflow's paper generators; the NEB result is translated into the same
BarrierDoc the local engines produce, so reports and queries do not care which engine ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from atomate2.vasp.jobs.core import RelaxMaker, StaticMaker
from atomate2.vasp.jobs.neb import NebFromImagesMaker
from emmet.core.neb import NebTaskDoc
from jobflow import Flow, Maker, job

from ncmflow.inputs.vasp import input_set_generator
from ncmflow.workflows.documents import BarrierDoc, ni_n_distances
from ncmflow.workflows.engines import Engine


def relax_maker(relax_cell: bool = False, fmax: float = 0.02, **_) -> RelaxMaker:
    """ISIF=3 for a bulk cell relax, ISIF=2 otherwise (EDIFFG = −fmax from the settings)."""
    return RelaxMaker(input_set_generator=input_set_generator("relax", bulk=relax_cell))


def static_maker(**_) -> StaticMaker:
    return StaticMaker(input_set_generator=input_set_generator("static"))


@job(output_schema=BarrierDoc)
def barrier_from_vasp(neb: NebTaskDoc, model: str, fmax: float, info: dict | None = None) -> BarrierDoc:
    """atomate2's NEB task document as a BarrierDoc (climbing image = highest image)."""
    energies = list(neb.energies or [])
    forces = [c.output.ionic_steps[-1].forces if c and c.output.ionic_steps else None
              for c in (neb.calculations or [])]
    saddle = max(range(1, len(energies) - 1), key=energies.__getitem__) if len(energies) > 2 else None
    converged = getattr(neb.state, "value", neb.state) == "successful"
    info = {"path_method": f"idpp, {len(energies) - 2} images, VTST improved tangent, IOPT=1",
            **(info or {})}
    return BarrierDoc(
        ni_n_distances=ni_n_distances(neb.images or [], info), **info,
        model=model, engine="vasp", images=neb.images, energies=energies, state=neb.state,
        neb_method="climbing_image", converged=converged, saddle_index=saddle, fmax=fmax,
        forward_barrier=energies[saddle] - energies[0] if saddle else None,
        reverse_barrier=energies[saddle] - energies[-1] if saddle else None,
        reaction_energy=energies[-1] - energies[0] if energies else None,
        forces=forces if all(f is not None for f in forces) and forces else None,
        reason=None if converged else "VASP NEB did not finish successfully", dir_name=neb.dir_name,
        optimizer="IBRION=3 IOPT=1 (VTST L-BFGS)", tangent="improved (VTST)",
    )


@dataclass
class VaspNebMaker(Maker):
    name: str = "vasp ci-neb"
    fmax: float = 0.05
    neb: Maker = field(default_factory=NebFromImagesMaker)

    def make(self, images, model: str, info: dict | None = None) -> Flow:
        run = self.neb.make(images)
        doc = barrier_from_vasp(run.output, model, self.fmax, info)
        return Flow([run, doc], output=doc.output, name=f"{model} vasp neb")


def neb_maker(fmax: float = 0.05, **_) -> VaspNebMaker:
    """atomate2 sets the image count on the generator from the images it is given."""
    return VaspNebMaker(fmax=fmax, neb=NebFromImagesMaker(input_set_generator=input_set_generator("neb")))


ENGINE = Engine(
    name="vasp",
    description="VASP 6 (+VTST for CI-NEB) via atomate2 and custodian, on a cluster",
    relax_maker=relax_maker,
    static_maker=static_maker,
    neb_maker=neb_maker,
    programs=("vasp_std",),
    install_hint="run it where VASP is installed, with atomate2's VASP_CMD set",
)
