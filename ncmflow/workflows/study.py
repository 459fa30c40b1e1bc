"""The study: the three Ni-hop models through the barrier flow, then the comparison table."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from jobflow import Flow, job

from ncmflow.structures import MODELS, ni_hop_endpoints
from ncmflow.workflows.documents import PAPER_BARRIERS, BarrierDoc, BarrierRow, BarrierTable
from ncmflow.workflows.engines import get_engine
from ncmflow.workflows.neb import BarrierFlowMaker


@dataclass(frozen=True)
class StudyConfig:
    """What defines a study run; its hash keys the saved flow so reruns resume it."""

    engine: str = "mlip"
    quick: bool = False
    models: tuple[str, ...] = MODELS
    n_images: int = 5
    neb_fmax: float = 0.05
    relax_fmax: float = 0.02
    neb_steps: int = 400
    interpolation: str = "idpp"

    @classmethod
    def create(cls, engine: str = "mlip", quick: bool = False, **changes) -> StudyConfig:
        base = {"n_images": 3, "neb_fmax": 0.1, "relax_fmax": 0.05, "neb_steps": 200} if quick else {}
        return cls(engine=engine, quick=quick, **{**base, **changes})

    @property
    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True)
        return "study-" + hashlib.sha1(blob.encode()).hexdigest()[:12]


def barrier_row(doc: BarrierDoc, uuid: str | None = None) -> BarrierRow:
    """A table row; a barrier is only reported when the NEB converged."""
    ok = doc.converged
    paper = PAPER_BARRIERS.get("bare" if doc.model == "bulk" else doc.model)
    return BarrierRow(
        model=doc.model, engine=doc.engine, converged=ok,
        forward_barrier=doc.forward_barrier if ok else None,
        reverse_barrier=doc.reverse_barrier if ok else None,
        reaction_energy=doc.reaction_energy, force_calls=doc.force_calls, wall_time=doc.wall_time,
        paper_barrier=paper, reason=doc.reason, uuid=uuid,
    )


def barrier_table(rows: list[BarrierRow]) -> BarrierTable:
    """Rows in model order plus the cPAN − bare difference per engine (the paper: +0.53 eV)."""
    order = {m: i for i, m in enumerate(MODELS)}
    rows = sorted(rows, key=lambda r: (r.engine, order.get(r.model, 99)))
    diff: dict[str, float | None] = {}
    for engine in sorted({r.engine for r in rows}):
        by_model = {r.model: r.forward_barrier for r in rows if r.engine == engine}
        bare, cpan = by_model.get("bare"), by_model.get("cpan")
        diff[engine] = cpan - bare if bare is not None and cpan is not None else None
    return BarrierTable(rows=rows, cpan_minus_bare=diff)


@job(output_schema=BarrierTable)
def compare_barriers(docs: list[BarrierDoc]) -> BarrierTable:
    """The study's last job: the barrier table from the three NEB results."""
    return barrier_table([barrier_row(d) for d in docs])


def write_study_inputs(config: StudyConfig, folder: Path) -> list[Path]:
    """Every model's end-point relaxations and NEB as input folders for ``config.engine``.

    The NEB folder interpolates the unrelaxed end points; on a cluster, ``ncmflow submit`` runs
    the real flow, which interpolates between the relaxed ones.
    """
    from ncmflow.inputs.write import write_inputs

    if not Path(folder).parent.is_dir():
        raise ValueError(f"output folder {Path(folder).parent} does not exist")
    written = []
    for model in config.models:
        start, end = ni_hop_endpoints(model)
        base = Path(folder) / model
        written += write_inputs(config.engine, "relax", [start], base / "relax_start", bulk=False)
        written += write_inputs(config.engine, "relax", [end], base / "relax_end", bulk=False)
        written += write_inputs(config.engine, "neb", [start, end], base / "neb", n_images=config.n_images)
    return written


def study_flow(config: StudyConfig) -> Flow:
    engine = get_engine(config.engine)
    maker = BarrierFlowMaker(
        relax_maker=engine.relax_maker(relax_cell=False, fmax=config.relax_fmax),
        neb_maker=engine.neb_maker(fmax=config.neb_fmax, steps=config.neb_steps,
                                   interpolation=config.interpolation),
        n_images=config.n_images, interpolation=config.interpolation,
    )
    flows = [maker.make(*ni_hop_endpoints(model), model) for model in config.models]
    table = compare_barriers([f.output for f in flows])
    table.name = "compare barriers"
    table.metadata.update(stage="compare")
    flow = Flow([*flows, table], output=table.output, name=f"ncmflow study {config.engine}")
    for j, _ in flow.iterflow():
        j.metadata.update(study=config.key, engine=config.engine)
    return flow
