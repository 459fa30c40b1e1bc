"""The study: every (potential, model, site) Ni hop through the barrier flow, then the table.

One flow holds it all, so rerun/resume/submit work as for a single barrier: per ML potential
(mlip engine) and model (bulk, bare, cpan), ``sites`` hop sites, each run along two
independent NEB paths on the same relaxed end points. End-point relaxations that are the same
structure (the bulk sites of one Li ordering share their start) run once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from jobflow import Flow, OnMissing, job
from monty.json import jsanitize

from ncmflow.inputs.settings import PAPER, DftSettings
from ncmflow.structures import MODELS, ni_hop_endpoints
from ncmflow.structures.migration import HOP_KINDS, REDUCED
from ncmflow.workflows import progress
from ncmflow.workflows.documents import BarrierDoc, BarrierRow, BarrierTable, mark_selected
from ncmflow.workflows.engines import get_engine, write_inputs
from ncmflow.workflows.neb import PATHS, BarrierFlowMaker

if TYPE_CHECKING:
    from ncmflow.workflows.dftcheck import DftCheckMaker

SITE_INFO = ("site_label", "hop_kind", "hop_depth", "moved_index", "n_index")
FLOW_SCHEMA = 2  # in the key: a flow saved by an older ncmflow (other Maker fields) is not reloaded
SINCE_SCHEMA_2 = ("layers", "cpan_units", "cpan_degree", "dft_check", "dft_engine", "dft_mode", "dft_kpts")
QUICK_SCF = {"energy": 1e-4, "density": 1e-3}  # GPAW: eV and electrons per valence electron
# the quick DFT check's reduced models and cheap single points (README: "DFT check")
# and two potentials to arbitrate between, on one site of the slab models (~1 h on 2 cores)
QUICK_DFT = {"layers": REDUCED["layers"], "cpan_units": REDUCED["n_units"], "cpan_degree": REDUCED["degree"],
             "dft_mode": "lcao", "dft_kpts": (1, 1, 1),
             "models": ("bare", "cpan"), "ml_models": ("chgnet", "sevennet"), "sites": 1}


@dataclass(frozen=True)
class StudyConfig:
    """What defines a study run; its hash keys the saved flow so reruns resume it.

    Path B is 5 images + ASE's BFGS because the bulk hop has two saddles and the optimizer
    decides which one a band finds (CHGNet + D3, bulk site 0, same relaxed end points,
    fmax 0.1 unless said, 2026-12-02): ODE 3 images 2.334 eV, ODE 5 images 2.365, FIRE 5 images
    2.319 (2.140 at fmax 0.05), BFGS 5 images 2.142 (295 force calls).
    """

    engine: str = "mlip"
    quick: bool = False
    models: tuple[str, ...] = MODELS
    n_images: int = 5
    neb_fmax: float = 0.05
    relax_fmax: float = 0.02
    neb_steps: int = 400
    interpolation: str = "idpp"
    hop: str = "subsurface"
    sites: int = 4
    ml_models: tuple[str, ...] = ("chgnet",)
    confirm: bool = True  # a second, independent path per site (denser band, BFGS)
    confirm_images: int = 5
    confirm_optimizer: str = "bfgs"
    # fields added since FLOW_SCHEMA 2 are in the key only when set (older studies keep their key)
    layers: int = 4  # (104) planes of the slab models
    cpan_units: int = 3  # units of the cPAN oligomer
    cpan_degree: float = 0.67  # its cyclization index
    dft_check: bool = False  # DFT single points on every NEB's end points and saddle (DFT//ML)
    dft_engine: str = "gpaw"
    dft_mode: str = "pw"  # GPAW: "pw" (the paper's 520 eV) or "lcao" (dzp)
    dft_kpts: tuple[int, int, int] | None = None  # None: the paper's k-point spacing

    def __post_init__(self) -> None:
        if self.hop not in HOP_KINDS:
            raise ValueError(f"unknown hop kind {self.hop!r}: choose one of {', '.join(HOP_KINDS)}")
        if self.sites < 1:
            raise ValueError(f"--sites must be at least 1 (got {self.sites})")
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise ValueError(f"unknown migration model {unknown[0]!r}: choose from {', '.join(MODELS)}")

    @classmethod
    def create(cls, engine: str = "mlip", quick: bool = False, **changes) -> StudyConfig:
        """The full study, or ``quick``'s looser one; a quick DFT check runs on the reduced
        models (``QUICK_DFT``: thinner slab, shorter cPAN, LCAO at Γ) so it finishes here."""
        changes = {k: v for k, v in changes.items() if v is not None}
        base = ({"n_images": 3, "neb_fmax": 0.1, "relax_fmax": 0.05, "neb_steps": 200, "sites": 2}
                if quick else {})
        if quick and changes.get("dft_check"):
            base |= QUICK_DFT
        return cls(engine=engine, quick=quick, **{**base, **changes})

    def endpoints(self, model: str, site: int) -> tuple:
        """The start and end point of ``site`` of ``model`` at this study's model sizes."""
        return ni_hop_endpoints(model, self.hop, site, layers=self.layers, n_units=self.cpan_units,
                                degree=self.cpan_degree)

    @property
    def dft_label(self) -> str:
        """What the DFT check computes with, as its documents and the report say it."""
        kpts = "×".join(map(str, self.dft_kpts)) if self.dft_kpts else "the paper's k spacing"
        scf = ", SCF 1e-4 eV/e" if self.quick else ""
        return f"{self.dft_engine} {self.dft_mode.upper()}, k {kpts}, PBE+D3(BJ), spin-polarized{scf}"

    @property
    def potentials(self) -> tuple[str | None, ...]:
        """ML potentials for the mlip engine; other engines compute their own energies."""
        return self.ml_models if self.engine == "mlip" else (None,)

    def settings(self, potential: str | None = None) -> DftSettings:
        """The study's tolerances (and ML potential) as the settings every engine reads."""
        return PAPER.with_changes(fmax=self.relax_fmax, neb_fmax=self.neb_fmax, neb_steps=self.neb_steps,
                                  **({"ml_model": potential} if potential else {}))

    @property
    def key(self) -> str:
        defaults = {f.name: f.default for f in fields(self)}
        given = {k: v for k, v in asdict(self).items() if k not in SINCE_SCHEMA_2 or v != defaults[k]}
        blob = json.dumps({**given, "schema": FLOW_SCHEMA}, sort_keys=True)
        return "study-" + hashlib.sha1(blob.encode()).hexdigest()[:12]

    def site_count(self, model: str) -> int:
        """``sites``, or fewer when the model has fewer distinct sites."""
        for site in range(self.sites - 1, -1, -1):
            try:
                self.endpoints(model, site)
                return site + 1
            except ValueError:
                continue
        return 0


NOT_RUN = "not run: an upstream job (an end-point relaxation) stopped its children"


@job(output_schema=BarrierTable)
def compare_barriers(docs: list[BarrierDoc | None], slots: list[dict] | None = None,
                     checks: list | None = None) -> BarrierTable:
    """The study's last job: one row per NEB, the lowest saddle of each site marked. ``checks``
    (the DFT checks' outputs, not read) make it wait for them: a submitted study's compare batch
    job then runs after the ``<model>-dft`` ones and its report has them.

    It runs even when some NEBs did not (its ``on_missing_references`` is ``NONE``: a
    relaxation that returned ``stop_children`` stops its model's interpolation and NEB, not the
    study); ``slots`` say which model, site and path each missing NEB was, and its row says why.
    """
    rows = [BarrierRow.from_doc(d) if d is not None else BarrierRow.not_run(reason=NOT_RUN, **slot)
            for d, slot in zip(docs, slots or [{}] * len(docs), strict=True)]
    return BarrierTable(rows=mark_selected(rows))


def write_study_inputs(config: StudyConfig, folder: Path) -> list[Path]:
    """Every model's and site's end-point relaxations and NEB as input folders for the engine.

    The NEB folder interpolates the unrelaxed end points; on a cluster, ``ncmflow submit`` runs
    the real flow, which interpolates between the relaxed ones. Every folder carries the
    study's tolerances (``--quick`` writes the quick criteria).
    """
    settings = config.settings(config.potentials[0])
    if not Path(folder).parent.is_dir():
        raise ValueError(f"output folder {Path(folder).parent} does not exist")
    written = []
    for model in config.models:
        for site in range(config.site_count(model)):
            start, end = config.endpoints(model, site)
            base = Path(folder) / model / f"site{site}"
            for which, structure in (("start", start), ("end", end)):
                written += write_inputs(config.engine, "relax", [structure], base / f"relax_{which}",
                                        settings, bulk=False)
            written += write_inputs(config.engine, "neb", [start, end], base / "neb", settings,
                                    n_images=config.n_images)
    return written


def _makers(config: StudyConfig, potential: str | None) -> BarrierFlowMaker:
    engine = get_engine(config.engine)
    settings = config.settings(potential)
    confirm = None
    if config.confirm and engine.neb_uses_images:
        confirm = engine.neb_maker(settings.with_changes(neb_steps=2 * config.neb_steps),
                                   config.confirm_optimizer)
    return BarrierFlowMaker(
        relax_maker=engine.relax_maker(settings, False), neb_maker=engine.neb_maker(settings, None),
        n_images=config.n_images, interpolation=config.interpolation,
        confirm_maker=confirm, confirm_images=config.confirm_images,
    )


def _dft_checker(config: StudyConfig) -> DftCheckMaker:
    from ncmflow.workflows.dftcheck import DftCheckMaker

    options: dict = {"mode": config.dft_mode, **({"kpts": config.dft_kpts} if config.dft_kpts else {})}
    if config.quick:  # the reduced cPAN model's SCF wandered ±0.05 eV for 83 cycles at the paper's 1e-5
        options["convergence"] = QUICK_SCF
    return DftCheckMaker(config.dft_engine, PAPER, options, config.dft_label)


def _fingerprint(structure) -> str:
    species = [str(s) for s in structure.species]
    blob = json.dumps(jsanitize([structure.lattice.matrix, structure.frac_coords, species]))
    return hashlib.sha1(blob.encode()).hexdigest()


def study_flow(config: StudyConfig) -> Flow:
    """Relaxations (shared where the structure is the same), per-site barrier flows, the table."""
    flows, outputs, slots, checks = [], [], [], []
    checker = _dft_checker(config) if config.dft_check else None
    for potential in config.potentials:
        maker = _makers(config, potential)
        shared: dict[str, object] = {}
        for model in config.models:
            for site in range(config.site_count(model)):
                start, end = config.endpoints(model, site)
                info = {"site": site, "potential": potential,
                        **{k: start.properties.get(k) for k in SITE_INFO}}
                relaxed = []
                for s, which in ((start, "start"), (end, "end")):
                    key = _fingerprint(s)
                    if key not in shared:
                        shared[key] = maker.relax(s, model, site, potential, which)
                        flows.append(shared[key])
                    relaxed.append(shared[key])
                barrier = maker.make(start, end, model, info, relaxed=tuple(relaxed))
                flows.append(barrier)
                outputs += barrier.output
                slots += [{"model": model, "site": site, "path": path, "engine": config.engine,
                           "potential": potential, "hop_kind": info.get("hop_kind")}
                          for path in PATHS[:len(barrier.output)]]
                if checker is not None:
                    meta = {"row": progress.row_label(model, site, potential),
                            "tags": {"model": model, "site": site, "potential": potential,
                                     "batch": f"{model}-dft"}}  # their own batch jobs (submit)
                    made, done = checker.jobs(tuple(relaxed), barrier.output, PATHS, meta)
                    flows += made
                    checks += done
    table = compare_barriers(outputs, slots, checks or None)
    table.config.on_missing_references = OnMissing.NONE
    table.name = "compare barriers"
    table.metadata.update(stage="compare")
    flow = Flow([*flows, table], output=table.output, name=f"ncmflow study {config.engine}")
    for j, _ in flow.iterflow():
        j.metadata.update(study=config.key, engine=config.engine)
    return flow
