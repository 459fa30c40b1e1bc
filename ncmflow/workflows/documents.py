"""Typed result documents: an emmet ``NebResult`` that knows which model, site and potential it is."""

from __future__ import annotations

from emmet.core.neb import NebResult
from pydantic import BaseModel, Field

PAPER_BARRIERS = {"bare": 2.83, "cpan": 3.36}  # eV, CASTEP PBE+D (Zheng et al. 2025)


class BarrierDoc(NebResult):
    """A Ni-hop CI-NEB result; barriers come from the climbing image, not a fit.

    One document per NEB: every site is run along two independent paths (``path`` "A", the
    study's band, and "B", a denser band with another optimizer); the report keeps the lowest
    converged saddle of the two per site and says which path found it.
    """

    model: str = Field(description="Migration model: bulk, bare or cpan.")
    engine: str = Field(description="Engine that computed the energies (mlip, gpaw, vasp, …).")
    potential: str | None = Field(None, description="ML potential of the mlip engine (chgnet, sevennet, …).")
    site: int = Field(0, description="Hop site of this model (0, 1, …; see ncmflow.structures.migration).")
    site_label: str | None = Field(None, description="Which Ni, which vacancy, which Li ordering.")
    hop_kind: str | None = Field(None, description="bulk, subsurface or in-plane.")
    path: str = Field("A", description="Which of the site's independent NEB paths this is.")
    path_method: str | None = Field(None, description="Interpolation, images, tangent and optimizer.")
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
    moved_index: int | None = Field(None, description="Index of the hopping Ni.")
    hop_distance: float | None = Field(None, description="Moved-Ni displacement start→end (Å).")
    hop_depth: float | None = Field(
        None, description="How far the Ni moves down, into the slab, start→end (Å; > 0 is inwards).")
    n_index: int | None = Field(None, description="Index of the cPAN N bound to the hopping Ni.")
    ni_n_distances: list[float] | None = Field(None, description="Ni–N distance per image (Å).")


def ni_n_distances(images: list, info: dict) -> list[float] | None:
    """Distance (Å, minimum image) of the hopping Ni to the bound cPAN N along the path."""
    ni, n = info.get("moved_index"), info.get("n_index")
    if ni is None or n is None:
        return None
    return [float(s.get_distance(ni, n)) for s in images]


class BarrierRow(BaseModel):
    """One NEB of the barrier comparison (``barriers.csv`` has one such row per NEB)."""

    model: str
    site: int = 0
    hop_kind: str | None = None
    engine: str
    potential: str | None = None
    path: str = "A"
    path_method: str | None = None
    forward_barrier: float | None
    reverse_barrier: float | None
    reaction_energy: float | None
    converged: bool
    selected: bool = False
    force_calls: int
    wall_time: float
    hop_depth: float | None = None
    ni_n_start: float | None = None
    ni_n_end: float | None = None
    paper_barrier: float | None
    reason: str | None = None
    uuid: str | None = None

    @property
    def potential_label(self) -> str:
        """What computed the energies: the ML potential for mlip, else the engine (vasp, gpaw…)."""
        return self.potential or self.engine

    @classmethod
    def not_run(cls, model: str, engine: str, reason: str, **identity) -> BarrierRow:
        """The row of a NEB that never ran (stopped upstream): no numbers, the reason."""
        return cls(model=model, engine=engine, forward_barrier=None, reverse_barrier=None,
                   reaction_energy=None, converged=False, force_calls=0, wall_time=0.0,
                   paper_barrier=PAPER_BARRIERS.get("bare" if model == "bulk" else model),
                   reason=reason, **identity)

    @classmethod
    def from_doc(cls, doc: BarrierDoc, uuid: str | None = None) -> BarrierRow:
        """A row; barriers are only reported when the NEB converged."""
        ok = doc.converged
        nin = doc.ni_n_distances or []
        return cls(
            model=doc.model, site=doc.site, hop_kind=doc.hop_kind, engine=doc.engine,
            potential=doc.potential, path=doc.path, path_method=doc.path_method, converged=ok,
            forward_barrier=doc.forward_barrier if ok else None,
            reverse_barrier=doc.reverse_barrier if ok else None,
            reaction_energy=doc.reaction_energy if ok else None, force_calls=doc.force_calls,
            wall_time=doc.wall_time, hop_depth=doc.hop_depth,
            ni_n_start=nin[0] if nin else None, ni_n_end=nin[-1] if nin else None,
            paper_barrier=PAPER_BARRIERS.get("bare" if doc.model == "bulk" else doc.model),
            reason=doc.reason, uuid=uuid,
        )


def mark_selected(rows: list[BarrierRow]) -> list[BarrierRow]:
    """Per site (engine, potential, model, hop kind, site), the converged path with the lowest
    forward barrier is ``selected``: the lowest saddle found, not the first one."""
    best: dict[tuple, BarrierRow] = {}
    for row in rows:
        key = (row.engine, row.potential_label, row.model, row.hop_kind, row.site)
        if row.converged and row.forward_barrier is not None and (
            key not in best or (row.forward_barrier, row.path) < (best[key].forward_barrier, best[key].path)
        ):
            best[key] = row
    chosen = {id(r) for r in best.values()}
    return [r.model_copy(update={"selected": id(r) in chosen}) for r in rows]


class BarrierTable(BaseModel):
    """Output of the study's comparison job: one row per NEB, the report is written from them."""

    rows: list[BarrierRow]


class DftCheckDoc(BaseModel):
    """DFT single points on one ML NEB's relaxed end points and climbing image (DFT//ML).

    The geometry is the ML potential's; only the energies are DFT's. ``dft_barrier`` is
    E_DFT(ML saddle) − E_DFT(ML start): an estimate, not a DFT saddle (the DFT saddle lies at or
    below the DFT energy of any point on the ML path's ridge only if the paths coincide).
    """

    model: str
    site: int = 0
    path: str = "A"
    engine: str = Field(description="Engine of the NEB (mlip, …).")
    potential: str | None = Field(None, description="ML potential of the NEB.")
    hop_kind: str | None = None
    dft: str = Field(description="What computed the single points (engine, mode, k-points, functional).")
    converged: bool = Field(False, description="The ML NEB converged (else the saddle is its highest image).")
    saddle_index: int | None = None
    ml_energies: dict[str, float] = Field(description="ML energies of start, saddle and end (eV).")
    dft_energies: dict[str, float] = Field(description="DFT energies of start, saddle and end (eV).")
    ml_barrier: float
    ml_reaction_energy: float
    dft_barrier: float = Field(description="E_DFT(ML saddle) − E_DFT(ML start) (eV).")
    dft_reaction_energy: float = Field(description="E_DFT(ML end) − E_DFT(ML start) (eV).")
    hopping_ni_moments: dict[str, float] | None = Field(
        None, description="DFT magnetic moment of the hopping Ni at start, saddle and end (μB).")
    dft_moments: dict[str, float] | None = Field(
        None, description="DFT total magnetic moment at start, saddle and end (μB): a different spin "
                          "state, not only the geometry, can be in a DFT//ML energy difference.")
    dft_wall_time: float = Field(0.0, description="Seconds of the three single points (shared ones counted).")
