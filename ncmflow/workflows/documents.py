"""Typed result documents: an emmet ``NebResult`` that knows which model and engine it is."""

from __future__ import annotations

from emmet.core.neb import NebResult
from pydantic import BaseModel, Field

PAPER_BARRIERS = {"bare": 2.83, "cpan": 3.36}  # eV, CASTEP PBE+D (Zheng et al. 2025)


class BarrierDoc(NebResult):
    """A Ni-hop CI-NEB result; barriers come from the climbing image, not a fit."""

    model: str = Field(description="Migration model: bulk, bare or cpan.")
    engine: str = Field(description="Engine that computed the energies (mlip, gpaw, vasp, …).")
    converged: bool = Field(False, description="Forces below fmax on every moving image.")
    reason: str | None = Field(None, description="Why the result is not a barrier, if it is not.")
    forces: list[list[list[float]]] | None = Field(None, description="Forces per image (eV/Å).")
    max_forces: list[float] | None = Field(None, description="Largest atomic force per image.")
    saddle_index: int | None = Field(None, description="Index of the climbing (highest) image.")
    reaction_energy: float | None = Field(None, description="E(end) − E(start) (eV).")
    force_calls: int = Field(0, description="Force evaluations on the moving images.")
    steps: int = Field(0, description="Optimizer iterations (of this attempt).")
    resumed: bool = Field(False, description="Started from the checkpoint of a killed attempt.")
    wall_time: float = Field(0.0, description="Seconds spent in the NEB optimisation.")
    fmax: float | None = Field(None, description="Force tolerance (eV/Å).")
    optimizer: str | None = None
    tangent: str | None = None
    interpolation: str | None = None
    hop_distance: float | None = Field(None, description="Moved-Ni displacement start→end (Å).")


class BarrierRow(BaseModel):
    """One row of the barrier comparison table."""

    model: str
    engine: str
    forward_barrier: float | None
    reverse_barrier: float | None
    reaction_energy: float | None
    converged: bool
    force_calls: int
    wall_time: float
    paper_barrier: float | None
    reason: str | None = None
    uuid: str | None = None


class BarrierTable(BaseModel):
    """Output of the study's comparison job: the rows the report is written from."""

    rows: list[BarrierRow]
    cpan_minus_bare: dict[str, float | None] = Field(default_factory=dict)
