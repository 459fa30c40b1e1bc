"""The ncmflow command line: thin wrappers over the library, heavy imports inside commands."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ncmflow.deferred import defer_typer_help_imports

defer_typer_help_imports()  # help is rich markup (brackets escaped), not markdown: see ncmflow.deferred
app = typer.Typer(
    help="Build, run and analyse the cPAN@NCM811 Ni-migration study.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


class UserError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


def friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn bad input into a one-line error and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (UserError, ValueError, FileNotFoundError, KeyError) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """Build, run and analyse the cPAN@NCM811 Ni-migration study."""
    _limit_blas_threads()
    if version:
        from ncmflow import __version__

        console.print(__version__)
        raise typer.Exit()


def _limit_blas_threads() -> None:
    """BLAS threads = cores idle at the start, set before numpy/GPAW load OpenBLAS.

    OpenBLAS threads spin-wait: with the cores already busy, GPAW's LCAO SCF cycle of the
    60-atom electronic model took 140 s instead of 17 s with one thread. The user's own
    OMP_NUM_THREADS / OPENBLAS_NUM_THREADS win.
    """
    from ncmflow import idle_cores

    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, str(idle_cores()))


class Kind(StrEnum):
    linio2 = "linio2"
    li05nio2 = "li05nio2"
    ncm811 = "ncm811"
    slab = "slab"
    cpan = "cpan"
    interface = "interface"
    migration = "migration"


class Bulk(StrEnum):
    linio2 = "linio2"
    li05nio2 = "li05nio2"
    ncm811 = "ncm811"


@app.command()
@friendly
def build(
    kind: Annotated[Kind, typer.Argument(help="Which model to build.")],
    output: Annotated[
        Path,
        typer.Option(
            "-o", "--output", help="File (.cif .vasp POSCAR .extxyz .json); for migration a folder."
        ),
    ],
    bulk: Annotated[Bulk, typer.Option(help="Bulk a slab/interface is cut from.")] = Bulk.li05nio2,
    facet: Annotated[str, typer.Option(help="Slab facet, hexagonal setting: 104 or 003.")] = "104",
    layers: Annotated[int, typer.Option(help="Slab thickness in (hkl) planes.")] = 4,
    vacuum: Annotated[float, typer.Option(help="Vacuum thickness (Å).")] = 15.0,
    fixed_layers: Annotated[int, typer.Option(help="Bottom planes held fixed.")] = 2,
    n_units: Annotated[
        int | None, typer.Option("--n-units", help="cPAN repeat units \\[default: 5; migration: 3].")
    ] = None,
    degree: Annotated[
        float | None,
        typer.Option(help="cPAN cyclization degree, 0…1 \\[default: 0.80 as cPAN-260; migration: 0.67]."),
    ] = None,
    n_kind: Annotated[str, typer.Option(help="N bound to Ni: pyridinic or nitrile.")] = "pyridinic",
    model: Annotated[str, typer.Option(help="Migration model: bulk, bare or cpan.")] = "bulk",
    hop: Annotated[
        str, typer.Option(help="Slab hop: subsurface (into the Li layer below) or in-plane.")
    ] = "subsurface",
    site: Annotated[int, typer.Option(help="Migration hop site (0, 1, …; see `ncmflow study --sites`).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed for NCM811 ordering ties and cPAN embedding.")] = 0,
) -> None:
    """Build a model and print its summary.

    Example: `ncmflow build migration --model cpan -o hop_cpan/`,
    `ncmflow build slab --facet 003 -o slab.cif`
    """
    from ncmflow import structures as st
    from ncmflow.structures.files import write_structure
    from ncmflow.summary import summarize

    if kind is Kind.migration:
        ext = output.suffix or ".vasp"
        folder = output.with_suffix("") if output.suffix else output
        if not folder.parent.is_dir():
            raise UserError(f"output folder {folder.parent} does not exist")
        folder.mkdir(exist_ok=True)
        cpan_options = {"n_units": n_units or 3, "degree": 0.67 if degree is None else degree}
        start, end = st.ni_hop_endpoints(model, hop, site, seed=seed, **cpan_options)
        for name, s in (("start", start), ("end", end)):
            write_structure(s, folder / f"{name}{ext}")
        summarize(console, start, f"Ni hop ({model}, site {site}): start", folder / f"start{ext}")
        depth = start.properties.get("hop_depth")
        console.print(
            f"end point: {folder / ('end' + ext)} — Ni #{start.properties['moved_index']} moved "
            f"{start.properties['hop_distance']:.2f} Å"
            + (f", {depth:.2f} Å into the slab" if depth is not None else "")
            + f" ({start.properties['site_label']}; {st.hop_sites(model, hop)} sites)", highlight=False,
        )
        return
    builders = {"linio2": st.linio2, "li05nio2": st.li05nio2, "ncm811": lambda: st.ncm811(seed)}
    if kind.value in builders:
        obj = builders[kind.value]()
    elif kind is Kind.cpan:
        obj = st.cpan(n_units or 5, 0.8 if degree is None else degree, seed)
    else:
        obj = st.slab(builders[bulk.value](), facet, layers, vacuum, fixed_layers)
        if kind is Kind.interface:
            obj = st.interface(
                obj, st.cpan(n_units or 5, 0.8 if degree is None else degree, seed), n_kind=n_kind
            )
    write_structure(obj, output)
    summarize(console, obj, kind.value, output)


inputs_app = typer.Typer(help="Write ready-to-run input folders for an engine.", no_args_is_help=True)
app.add_typer(inputs_app, name="inputs")


@inputs_app.command("write")
@friendly
def inputs_write(
    structures: Annotated[list[Path], typer.Argument(help="Structure file(s); NEB: start and end.")],
    engine: Annotated[str, typer.Option(help="vasp, castep, mlip, …")] = "vasp",
    job: Annotated[str, typer.Option(help="relax, static, neb or lobster.")] = "relax",
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder to write.")] = Path("inputs"),
    n_images: Annotated[int, typer.Option(help="NEB images between the end points.")] = 5,
    bulk: Annotated[
        bool | None, typer.Option("--bulk/--no-bulk", help="Force a cell relax (bulk) or fixed cell.")
    ] = None,
) -> None:
    """Write the paper's PBE+D3 inputs for one job.

    Example: `ncmflow inputs write --engine vasp --job neb hop/start.vasp hop/end.vasp -o neb_vasp`
    """
    from ncmflow.inputs.write import write_inputs
    from ncmflow.structures.files import read_structure

    models = [read_structure(p) for p in structures]
    if not output.parent.is_dir():
        raise UserError(f"output folder {output.parent} does not exist")
    written = write_inputs(engine, job, models, output, n_images=n_images, bulk=bulk)
    for path in written:
        console.print(f"wrote {path}")
    if any(p.name == "POTCAR.spec" for p in written):
        console.print("[yellow]no POTCARs configured (PMG_VASP_PSP_DIR): wrote POTCAR.spec instead[/]")


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Store: a folder (embedded montydb) or a jobflow store .yaml; "
        "default: your jobflow config, else ./ncmflow_data.",
    ),
]


@app.command()
@friendly
def study(
    engine: Annotated[str, typer.Option(help="Engine that computes (mlip runs here).")] = "mlip",
    quick: Annotated[bool, typer.Option(help="3 images, looser forces: a first look in ~minutes.")] = False,
    models: Annotated[str, typer.Option(help="Comma-separated migration models.")] = "bulk,bare,cpan",
    hop: HopOption = "subsurface",
    sites: SitesOption = None,
    ml_models: MlModelsOption = "chgnet",
    store: StoreOption = None,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("report"),
    write_inputs: Annotated[
        Path | None,
        typer.Option(
            "--write-inputs", help="Only write every model's relax and NEB inputs for the engine here."
        ),
    ] = None,
    electronic: Annotated[
        bool, typer.Option(help="The Ni–N electronic study instead (GPAW LCAO): PDOS, COHP, Δρ.")
    ] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="Jobs run at once, each in a process "
                   "\\[default: the idle cores with a store folder, else 1].")] = None,
) -> None:
    """Run the Ni-migration barrier study and write the report.

    Interrupt it and run it again: finished jobs are reused from the store. For engines that run
    elsewhere, `--write-inputs DIR` writes the study's input folders instead. With
    `--engine gpaw --electronic` it runs the electronic study of the Ni–N bond into OUT/electronic.

    Example: `ncmflow study --quick` then open `report/index.html`;
    `ncmflow study --engine castep --write-inputs castep_inputs`;
    `ncmflow study --engine gpaw --electronic`
    """
    from ncmflow.analysis.barriers import write_report
    from ncmflow.workflows.engines import get_engine
    from ncmflow.workflows.runner import saved_flow
    from ncmflow.workflows.store import get_store
    from ncmflow.workflows.study import study_flow

    if electronic:
        if engine != "gpaw" or write_inputs is not None:
            raise UserError("--electronic runs GPAW here: use `ncmflow study --engine gpaw --electronic`")
        _electronic_study(store, out / "electronic")
        return
    config = _study_config(engine, quick, models, hop, sites, ml_models)
    if write_inputs is not None:
        from ncmflow.workflows.study import write_study_inputs

        for path in write_study_inputs(config, write_inputs):
            console.print(f"wrote {path}")
        return
    problem = get_engine(engine).missing()
    if problem:
        raise UserError(f"{problem} (or submit it to a cluster: ncmflow submit study --engine {engine})")
    job_store = get_store(store)
    flow = saved_flow(job_store, config.key, lambda: study_flow(config))
    from ncmflow.workflows.progress import row_label

    rows = tuple(row_label(m, k, p) for p in config.potentials for m in config.models
                 for k in range(config.site_count(m)))
    display = _run_saved(flow, job_store, store, config.key, (*rows, "compare"), workers)
    files = write_report(job_store, out, study=config.key)
    console.print(display.summary(files["md"].read_text()))
    for path in files.values():
        console.print(f"wrote {path}")


HopOption = Annotated[str, typer.Option(help="Slab hop kind: subsurface (the Ni goes into the Li layer "
                                       "below the surface plane) or in-plane.")]
SitesOption = Annotated[
    int | None, typer.Option(help="Hop sites per model \\[default: 2 with --quick, else 4].")
]
MlModelsOption = Annotated[str, typer.Option(
    "--ml-models", help="Comma-separated offline ML potentials for the mlip engine: chgnet, chgnet-r2scan, "
    "sevennet, sevennet-mf.")]


def _study_config(engine: str, quick: bool, models: str, hop: str, sites: int | None, ml_models: str) -> Any:
    from ncmflow.workflows.study import StudyConfig

    potentials = tuple(m.strip() for m in ml_models.split(",") if m.strip())
    if engine == "mlip":
        from ncmflow.workflows.engines.mlip import potentials as known

        unknown = [p for p in potentials if p not in known()]
        if unknown:
            raise UserError(f"unknown ML potential {unknown[0]!r}: the offline ones are {', '.join(known())}")
    return StudyConfig.create(engine, quick, models=tuple(m.strip() for m in models.split(",")), hop=hop,
                              sites=sites, ml_models=potentials)


def _run_saved(flow: Any, job_store: Any, store: str | None, key: str, rows: tuple[str, ...],
               workers: int | None = None) -> Any:
    """Run a saved flow under the live display; a failed job is a UserError, results are kept."""
    from ncmflow.workflows.live import StudyDisplay
    from ncmflow.workflows.parallel import default_workers
    from ncmflow.workflows.runner import JobFailed, run_flow

    workdir = (
        Path(store)
        if store and Path(store).suffix not in (".yaml", ".yml", ".json")
        else Path("ncmflow_data")
    )
    try:
        with StudyDisplay(console, rows) as display:
            status = run_flow(flow, job_store, workdir, workers=workers or default_workers(store))
    except JobFailed as exc:
        raise UserError(f"{exc}; finished jobs are kept, rerun to resume") from None
    ran = sum(v == "ran" for v in status.values())
    console.print(f"\n{ran} jobs ran, {len(status) - ran} reused from the store ({key})")
    return display


def _electronic_study(store: str | None, out: Path) -> None:
    from ncmflow.analysis.electronic import load_electronic, write_electronic_report
    from ncmflow.workflows.electronic import ElectronicConfig, electronic_flow
    from ncmflow.workflows.engines import get_engine
    from ncmflow.workflows.runner import saved_flow
    from ncmflow.workflows.store import get_store

    problem = get_engine("gpaw").missing()
    if problem:
        raise UserError(problem)
    config = ElectronicConfig()
    job_store = get_store(store)
    flow = saved_flow(job_store, config.key, lambda: electronic_flow(config))
    display = _run_saved(flow, job_store, store, config.key, ("electronic",), workers=1)  # GPAW's BLAS
    files = write_electronic_report(load_electronic(job_store, config.key), out)
    console.print(display.summary(files["md"].read_text()))
    for path in files.values():
        console.print(f"wrote {path}")


@app.command()
@friendly
def compare(
    store: StoreOption = None,
    model: Annotated[str | None, typer.Option(help="Only this model (bulk, bare, cpan).")] = None,
    engine: Annotated[str | None, typer.Option(help="Only this engine.")] = None,
    potential: Annotated[
        str | None, typer.Option(help="Only this ML potential (chgnet, sevennet, …).")
    ] = None,
    hop: Annotated[str | None, typer.Option(help="Only slab hops of a kind (subsurface, in-plane).")] = None,
    flow: Annotated[str | None, typer.Option(help="Only this study key (see `ncmflow query`).")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only results finished since (ISO date).")] = None,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("report"),
) -> None:
    """Regenerate the barrier comparison (bare vs cPAN, per engine, beside the paper) from the store.

    Example: `ncmflow compare --engine mlip --out report_mlip`
    """
    from ncmflow.analysis.barriers import write_report
    from ncmflow.workflows.store import get_store

    files = write_report(get_store(store), out, model=model, engine=engine, potential=potential, study=flow,
                         since=since, hop=hop)
    console.print(files["md"].read_text(), markup=False, highlight=False, soft_wrap=True)
    for path in files.values():
        console.print(f"wrote {path}")


@app.command()
@friendly
def query(
    kind: Annotated[str | None, typer.Option(help="relax, static, neb or electronic.")] = None,
    model: Annotated[str | None, typer.Option(help="bulk, bare or cpan.")] = None,
    engine: Annotated[str | None, typer.Option(help="Engine name.")] = None,
    since: Annotated[datetime | None, typer.Option(help="Finished since (ISO date).")] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
    limit: Annotated[int | None, typer.Option(min=0, help="Show the newest N (0: all) "
                                              "\\[default: 100 in the table, all with --json].")] = None,
    store: StoreOption = None,
) -> None:
    """List what the store holds, with uuids for `ncmflow show`.

    Example: `ncmflow query --kind neb --engine mlip` or `ncmflow query --json | jq .uuid`
    """
    import json

    from rich.table import Table

    from ncmflow.analysis.records import query_records

    records = query_records(store, kind=kind, model=model, engine=engine, since=since)
    # like `jf job list`: a table of 10^4 rows takes rich 7 s to lay out and nobody reads it
    shown = (0 if json_lines else 100) if limit is None else limit
    hidden = max(0, len(records) - shown) if shown else 0
    records = records[hidden:]
    if json_lines:
        for rec in records:
            typer.echo(json.dumps(rec, sort_keys=True))
        return
    table = Table(title="ncmflow store")
    table.add_column("uuid", no_wrap=True, min_width=36)
    for column in ("stage", "model", "site", "engine", "result", "finished"):
        table.add_column(column)
    for rec in records:
        table.add_row(
            rec["uuid"],
            " ".join(filter(None, (rec["stage"] or rec["kind"], rec["path"]))),
            rec["model"] or "",
            "" if rec["site"] is None else str(rec["site"]),
            " ".join(filter(None, (rec["engine"], rec["potential"]))),
            rec["result"],
            rec["completed_at"][:16].replace("T", " "),
        )
    # redirected to a file there is no width to fit: keep each row on one line
    (console if console.is_terminal else Console(width=160)).print(table)
    if hidden:
        console.print(f"the newest {shown} of {shown + hidden} records; --limit 0 shows all, "
                      "--kind/--model/--engine/--since narrow them")


@app.command()
@friendly
def show(
    uuid: Annotated[str, typer.Argument(help="Job uuid (from `ncmflow query`).")],
    store: StoreOption = None,
) -> None:
    """Print one stored document as JSON (arrays from the data store included).

    Example: `ncmflow show 3f2a…`
    """
    import json

    from ncmflow.workflows.store import get_store

    doc = get_store(store).query_one({"uuid": uuid}, load=True)
    if doc is None:
        raise UserError(f"no document with uuid {uuid} in the store")
    doc.pop("_id", None)
    typer.echo(json.dumps(doc, indent=1, default=str))


# --- HPC: submit to a cluster, watch, recover (issue 6) -----------------------------------


class Backend(StrEnum):
    direct = "direct"
    jobflow_remote = "jobflow-remote"


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="ncmflow config (workers); default ./ncmflow.yaml, ~/.config/ncmflow/config.yaml."
    ),
]
submit_app = typer.Typer(help="Submit a flow to a cluster (see docs/hpc.md).", no_args_is_help=True)
app.add_typer(submit_app, name="submit")


def _hpc_config(path: Path | None):
    """The config, with its warnings (e.g. secrets readable by others) as one-line notes."""
    import warnings

    from ncmflow.workflows.hpc_config import load_config

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = load_config(path)
    for warning in caught:
        err.print(f"[yellow]warning:[/] {warning.message}", highlight=False)
    return config


@submit_app.command("study")
@friendly
def submit_study(
    worker: Annotated[str, typer.Option(help="Worker name from the config's 'workers:'.")],
    engine: Annotated[str, typer.Option(help="mlip, vasp, castep, …")] = "mlip",
    quick: Annotated[bool, typer.Option(help="3 images, looser forces.")] = False,
    models: Annotated[str, typer.Option(help="Comma-separated migration models.")] = "bulk,bare,cpan",
    hop: HopOption = "subsurface",
    sites: SitesOption = None,
    ml_models: MlModelsOption = "chgnet",
    dry_run: Annotated[bool, typer.Option(help="Print the batch scripts; submit nothing.")] = False,
    backend: Annotated[Backend, typer.Option(help="direct (qtoolkit) or jobflow-remote.")] = Backend.direct,
    config: ConfigOption = None,
    store: StoreOption = None,
    electronic: Annotated[
        bool, typer.Option(help="The Ni–N electronic study (GPAW LCAO) as one batch job instead.")
    ] = False,
) -> None:
    """Submit the barrier study: one batch job per model, then the comparison, chained afterok.

    Example: `ncmflow submit study --engine mlip --worker local-slurm --quick --dry-run`;
    `ncmflow submit study --engine gpaw --electronic --worker my-cluster`
    """
    from ncmflow.workflows import jfremote
    from ncmflow.workflows.engines import get_engine
    from ncmflow.workflows.hpc_config import check_label, check_scheduler, mask
    from ncmflow.workflows.runner import saved_flow
    from ncmflow.workflows.store import get_store
    from ncmflow.workflows.study import study_flow
    from ncmflow.workflows.submit import new_submission, pinned_store

    hpc = _hpc_config(config)
    target = hpc.worker(worker)
    get_engine(engine)
    if electronic:
        from ncmflow.workflows.electronic import ElectronicConfig, electronic_flow

        if engine != "gpaw":
            raise UserError("--electronic runs GPAW: use --engine gpaw")
        study: Any = ElectronicConfig()
        build = functools.partial(electronic_flow, study)
    else:
        for m in models.split(","):
            check_label(m.strip(), "model name")
        study = _study_config(engine, quick, models, hop, sites, ml_models)
        build = functools.partial(study_flow, study)
    if backend is Backend.jobflow_remote:
        if dry_run:
            typer.echo(jfremote.project_yaml(hpc))
            typer.echo(jfremote.worker_script(hpc, worker))
            return
        ids = jfremote.submit(saved_flow(get_store(store), study.key, build), hpc, worker)
        console.print(
            f"queued {len(ids)} jobs in jobflow-remote project {hpc.jobflow_remote.project}; "
            "run `jf runner start`, watch with `jf job list`"
        )
        return
    if dry_run:
        folder, scripts = new_submission(build(), worker, target, None, study.key, dry_run=True)
        for name, script in scripts.items():
            console.rule(f"{name} → {folder}")
            typer.echo(mask(script, hpc.secrets()))
        console.print("dry run: nothing submitted")
        return
    check_scheduler(target, worker)
    job_store = get_store(store)
    flow = saved_flow(job_store, study.key, build)
    folder, _ = new_submission(flow, worker, target, pinned_store(store), study.key)
    console.print(
        f"submitted {study.key} to {worker}: {folder}\nwatch: ncmflow status {folder}", highlight=False
    )


@app.command()
@friendly
def status(
    submission: Annotated[Path | None, typer.Argument(help="Submission folder; default the newest.")] = None,
    config: ConfigOption = None,
) -> None:
    """Show each job of a submission: waiting, queued, running, completed or failed (with why).

    Collects finished results into the store first.

    Example: `ncmflow status /scratch/me/ncmflow/study-0123abcd-20261130-101500-ab12`
    """
    from rich.table import Table

    from ncmflow.workflows.collect import collect
    from ncmflow.workflows.submit import latest_submission, load_record
    from ncmflow.workflows.watch import job_rows, stage_states

    if submission is None:
        submission = latest_submission([w.work_dir for w in _hpc_config(config).workers.values()])
    submission = submission.resolve()
    record = load_record(submission)
    added = collect(submission, record.store)
    states = stage_states(submission, record)
    record.save(submission)
    table = Table(title=f"{record.id} on {record.worker}")
    for column in ("batch job", "job", "state", "reason"):
        table.add_column(column)
    colours = {"completed": "green", "failed": "red", "running": "cyan"}
    for row in job_rows(submission, record, states):
        colour = colours.get(row["state"], "yellow")
        table.add_row(row["batch"], row["job"], f"[{colour}]{row['state']}[/]", row["reason"])
    console.print(table)
    console.print(f"{added} new documents collected into the store")
    if any(s == "failed" for s, _ in states.values()):
        console.print(f"retry the failed jobs: ncmflow retry {submission}", highlight=False)


@app.command()
@friendly
def retry(
    submission: Annotated[Path, typer.Argument(help="Submission folder.")],
    config: ConfigOption = None,
) -> None:
    """Resubmit failed or killed batch jobs (and those waiting on them); finished jobs are kept.

    A NEB resumes from its last saved images.

    Example: `ncmflow retry /scratch/me/ncmflow/study-0123abcd-20261130-101500-ab12`
    """
    from ncmflow.workflows.hpc_config import check_scheduler
    from ncmflow.workflows.submit import load_record
    from ncmflow.workflows.watch import retry as retry_stages

    submission = submission.resolve()
    record = load_record(submission)
    worker = _hpc_config(config).worker(record.worker)
    check_scheduler(worker, record.worker)
    redone = retry_stages(submission, record, worker)
    if not redone:
        console.print("nothing to retry: no failed jobs")
        return
    for name in redone:
        stage = record.stage(name)
        console.print(f"resubmitted {name} as batch job {stage.job_id} (attempt {stage.attempts})")


@app.command()
@friendly
def cancel(submission: Annotated[Path, typer.Argument(help="Submission folder.")]) -> None:
    """Cancel a submission's queued and running batch jobs; finished results stay.

    Example: `ncmflow cancel /scratch/me/ncmflow/study-0123abcd-20261130-101500-ab12`
    """
    from ncmflow.workflows.submit import load_record
    from ncmflow.workflows.watch import cancel as cancel_stages

    cancelled = cancel_stages(submission.resolve(), load_record(submission))
    console.print(f"cancelled: {', '.join(cancelled)}" if cancelled else "nothing left to cancel")


@app.command()
@friendly
def collect(submission: Annotated[Path, typer.Argument(help="Submission folder.")]) -> None:
    """Copy a submission's finished results into the store (idempotent; `status` does it too).

    Example: `ncmflow collect /scratch/me/ncmflow/study-0123abcd-20261130-101500-ab12`
    """
    from ncmflow.workflows.collect import collect as collect_outputs
    from ncmflow.workflows.submit import load_record

    added = collect_outputs(submission.resolve(), load_record(submission).store)
    console.print(f"{added} new documents collected into the store")


@app.command("run-jobs", hidden=True)
def run_jobs(
    submission: Annotated[Path, typer.Option(help="Submission folder.")],
    stage: Annotated[str, typer.Option(help="Stage (batch job) to run.")],
) -> None:
    """Run one stage of a submission on a compute node (what the batch scripts call).

    Example: `ncmflow run-jobs --submission DIR --stage bulk`
    """
    import traceback

    from ncmflow.workflows import progress
    from ncmflow.workflows.collect import run_stage
    from ncmflow.workflows.submit import load_record, upstream_dirs

    def log(event: dict) -> None:
        if "event" in event or event.get("step", 0) % 10 == 1:
            typer.echo(" ".join(f"{k}={v}" for k, v in event.items()))

    submission = submission.resolve()
    record = load_record(submission)
    try:
        with progress.listening(log):
            run_stage(submission, record.stage(stage).model_dump(), upstream_dirs(submission, record, stage))
    except BaseException as exc:  # noqa: BLE001 — the batch job must fail with its reason
        traceback.print_exc()
        err.print(f"error: {exc}", highlight=False, markup=False)
        raise typer.Exit(1) from None


analyze_app = typer.Typer(help="Analyse finished calculations (never runs one).", no_args_is_help=True)
app.add_typer(analyze_app, name="analyze")
OutOption = Annotated[Path, typer.Option("-o", "--out", help="Output folder for plots and data.")]


def _write_json(path: Path, data: dict) -> None:
    import json

    path.write_text(json.dumps(data, indent=1, default=float))
    console.print(f"wrote {path}")


@analyze_app.command("electronic")
@friendly
def analyze_electronic(
    store: StoreOption = None,
    study: Annotated[str | None, typer.Option(help="Study key (default: the newest complete one).")] = None,
    out: OutOption = Path("report/electronic"),
) -> None:
    """The electronic report (PDOS, Ni–N/Ni–O COHP, Δρ) regenerated from the store.

    For results collected from a cluster (`ncmflow collect`); reads the density cubes where
    the jobs wrote them. Example: `ncmflow analyze electronic --out report/electronic`
    """
    from rich.markdown import Markdown

    from ncmflow.analysis.electronic import load_electronic, write_electronic_report
    from ncmflow.workflows.store import get_store

    files = write_electronic_report(load_electronic(get_store(store), study), out)
    console.print(Markdown(files["md"].read_text()))
    for path in files.values():
        console.print(f"wrote {path}")


@analyze_app.command("neb")
@friendly
def analyze_neb(
    source: Annotated[str, typer.Argument(help="A VASP NEB folder (00…N+1 with OUTCARs) or a store uuid.")],
    store: StoreOption = None,
    out: OutOption = Path("analysis"),
) -> None:
    """Splined energy profile (tangential forces), barriers, saddle position.

    Example: `ncmflow analyze neb vasp_neb/` or `ncmflow analyze neb 3f2a… -o neb_bare`
    """
    from ncmflow.analysis.neb import plot_profiles, profile_from_vasp_neb

    if Path(source).is_dir():
        prof, label = profile_from_vasp_neb(source), Path(source).name
    else:
        from monty.json import MontyDecoder

        from ncmflow.analysis.barriers import profile
        from ncmflow.workflows.store import get_store

        doc = get_store(store).query_one({"uuid": source, "output.@class": "BarrierDoc"}, load=True)
        if doc is None:
            raise UserError(f"{source} is neither a folder nor the uuid of a stored NEB result")
        barrier = MontyDecoder().process_decoded(doc["output"])
        prof, label = profile(barrier), f"{barrier.model} ({barrier.engine})"
    out.mkdir(parents=True, exist_ok=True)
    console.print(
        f"{label}: forward {prof.forward_barrier:.3f} eV, reverse {prof.reverse_barrier:.3f} eV, "
        f"ΔE {prof.reaction_energy:.3f} eV, saddle at {prof.saddle_x:.2f} Å (image {prof.saddle_index})"
    )
    console.print(f"wrote {plot_profiles({label: prof}, out / 'neb_profile.png')}")
    _write_json(out / "neb_profile.json", prof.as_dict())


@analyze_app.command("pdos")
@friendly
def analyze_pdos(
    vasprun: Annotated[Path, typer.Argument(help="vasprun.xml(.gz) with projections (LORBIT=11).")],
    labels: Annotated[
        str, typer.Option(help="Projections, e.g. Ni-d,N-p,O-p or Ni12-d for one site.")
    ] = "Ni-d,N-p,O-p",
    overlap: Annotated[
        str | None, typer.Option(help="Two labels whose overlap near E_F to report, e.g. Ni-d,N-p.")
    ] = None,
    centre: Annotated[
        str | None, typer.Option(help="Label whose band centre to report, e.g. Ni12-d.")
    ] = None,
    out: OutOption = Path("analysis"),
) -> None:
    """Element/orbital-projected DOS (spin up/down), d-band centre, PDOS overlap in [E_F−2, E_F+1] eV.

    Example: `ncmflow analyze pdos vasprun.xml --labels Ni-d,N-p --overlap Ni-d,N-p --centre Ni12-d`
    """
    from ncmflow.analysis.pdos import PdosData, band_centre, pdos_overlap, plot_pdos

    wanted = [x.strip() for x in labels.split(",") if x.strip()]
    pdos = PdosData.from_vasprun(vasprun, labels=wanted)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"efermi": pdos.efermi}
    if centre:
        result["band_centre_eV"] = band_centre(pdos, centre)
        console.print(f"{centre} band centre: {result['band_centre_eV']:.3f} eV (relative to E_F)")
    if overlap:
        a, b = (x.strip() for x in overlap.split(","))
        result["overlap"] = pdos_overlap(pdos, a, b)
        console.print(f"{a}/{b} overlap in [E_F−2, E_F+1] eV: {result['overlap']:.3f}")
    console.print(f"wrote {plot_pdos(pdos, out / 'pdos.png', labels=wanted)}")
    _write_json(out / "pdos.json", {**result, **pdos.as_dict()})


@analyze_app.command("cohp")
@friendly
def analyze_cohp(
    folder: Annotated[Path, typer.Argument(help="LOBSTER run folder (COHPCAR, ICOHPLIST, CONTCAR).")],
    pair: Annotated[str, typer.Option(help="Element pair, e.g. Ni,N.")] = "Ni,N",
    max_length: Annotated[float | None, typer.Option(help="Only bonds up to this length (Å).")] = None,
    out: OutOption = Path("analysis"),
) -> None:
    """−COHP(E) and −ICOHP at E_F of the chosen pair, spin-resolved; plot with bonding to the right.

    Example: `ncmflow analyze cohp lobster_run/ --pair Ni,N --max-length 2.3`
    """
    from ncmflow.analysis.cohp import plot_cohp, read_lobster_cohp

    elements = tuple(x.strip() for x in pair.split(","))
    if len(elements) != 2:
        raise UserError(f"--pair needs two elements like Ni,N (got {pair!r})")
    result = read_lobster_cohp(folder, pair=elements, max_length=max_length)
    out.mkdir(parents=True, exist_ok=True)
    for spin, values in result.minus_icohp_at_ef.items():
        for label, atoms, length, value in zip(
            result.labels, result.atoms, result.lengths, values, strict=True
        ):
            console.print(
                f"{'–'.join(atoms)} ({length:.3f} Å, bond {label}) spin {spin}: −ICOHP(E_F) = {value:.4f} eV"
            )
    console.print(f"wrote {plot_cohp({'–'.join(elements): result}, out / 'cohp.png')}")
    _write_json(out / "cohp.json", result.as_dict())


@analyze_app.command("cdd")
@friendly
def analyze_cdd(
    combined: Annotated[Path, typer.Argument(help="Density of cPAN@slab (CHGCAR or .cube).")],
    slab_density: Annotated[Path, typer.Argument(help="Density of the slab alone, same grid.")],
    molecule_density: Annotated[Path, typer.Argument(help="Density of cPAN alone, same grid.")],
    ni: Annotated[int, typer.Option(help="Index of the Ni of the Ni–N bond.")],
    n: Annotated[int, typer.Option(help="Index of the N of the Ni–N bond.")],
    radius: Annotated[float, typer.Option(help="Sphere radius for the charge moved (Å).")] = 1.0,
    out: OutOption = Path("analysis"),
) -> None:
    """Δρ = ρ(cPAN@slab) − ρ(slab) − ρ(cPAN): a file for VESTA, a slice through Ni–N, Δρ(z), ΔQ(z).

    Example: `ncmflow analyze cdd CHGCAR_ab CHGCAR_slab CHGCAR_cpan --ni 60 --n 96`
    """
    from ncmflow.analysis.cdd import DensityGrid, charge_density_difference

    def load(path: Path) -> DensityGrid:
        return DensityGrid.from_cube(path) if path.suffix == ".cube" else DensityGrid.from_chgcar(path)

    result = charge_density_difference(load(combined), load(slab_density), load(molecule_density), ni, n,
                                       out, radius, suffix=".cube" if combined.suffix == ".cube" else ".vasp")
    for name, value in result["sphere_charges"].items():
        console.print(f"Δq in {radius:.1f} Å around {name}: {value:+.4f} e")
    console.print(f"across the plane midway between Ni and N: {result['transfer_to_slab']:+.4f} e "
                  "moved to the slab side")
    for path in result.pop("files").values():
        console.print(f"wrote {path}")
    average = result.pop("plane_average")
    _write_json(out / "cdd.json", result | {k: v.tolist() if hasattr(v, "tolist") else v
                                            for k, v in average.items()})
