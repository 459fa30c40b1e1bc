"""`ncmflow study`: the barrier study (or the electronic study) run here, and its report."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ncmflow.cli.utils import (
    ENGINES,
    CpanUnitsOption,
    DftCheckOption,
    DftModeOption,
    HopOption,
    LayersOption,
    MlModelsOption,
    ModelsOption,
    NcmflowTyper,
    SitesOption,
    StoreOption,
    UserError,
    console,
    err,
    out_option,
    print_markdown,
)

app = NcmflowTyper()
INTERRUPTED = "interrupted; run the same command again to resume"


@contextlib.contextmanager
def resumable() -> Iterator[None]:
    """Ctrl-C: one line on stderr and exit code 130 (128 + SIGINT, as shells report it), no
    traceback; the store keeps every finished job and the NEB checkpoints stay in ``runs/``."""
    try:
        yield
    except KeyboardInterrupt:
        err.print(INTERRUPTED, highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None


def _say_waiting(pid: int | None) -> None:
    err.print(f"another ncmflow study is running this study (pid {pid or '?'}); waiting…",
              highlight=False, soft_wrap=True)


@app.command()
def study(
    engine: Annotated[str, typer.Option(help=f"Engine that computes ({ENGINES}; mlip runs here).")] = "mlip",
    quick: Annotated[bool, typer.Option(help="3 images, looser forces: a first look in ~minutes.")] = False,
    models: ModelsOption = None,
    hop: HopOption = "subsurface",
    sites: SitesOption = None,
    ml_models: MlModelsOption = None,
    store: StoreOption = None,
    out: Annotated[Path, out_option("Report folder.")] = Path("report"),
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
    dft_check: DftCheckOption = False,
    dft_mode: DftModeOption = None,
    layers: LayersOption = None,
    cpan_units: CpanUnitsOption = None,
) -> None:
    """Run the Ni-migration barrier study and write the report.

    Interrupt it (Ctrl-C, or even kill -9) and run it again: finished jobs are reused from the store
    and a NEB goes on from its last step. Two runs of one study on one store folder never compute
    at once: the second waits for the first, then reuses what it finished. For engines that run
    elsewhere, `--write-inputs DIR` writes the study's input folders instead. With
    `--engine gpaw --electronic` it runs the electronic study of the Ni–N bond into OUT/electronic.

    Example: `ncmflow study --quick` then open `report/index.html`;
    `ncmflow study --engine castep --write-inputs castep_inputs`;
    `ncmflow study --engine gpaw --electronic`;
    `ncmflow study --quick --dft-check` (bare and cPAN, CHGNet and SevenNet, one site, reduced models)
    """
    sizes = {"dft_check": dft_check or None, "dft_mode": dft_mode, "layers": layers, "cpan_units": cpan_units}
    with resumable():
        _study(engine, quick, models, hop, sites, ml_models, store, out, write_inputs, electronic, workers,
               sizes)


def _study(engine: str, quick: bool, models: str, hop: str, sites: int | None, ml_models: str,
           store: str | None, out: Path, write_inputs: Path | None, electronic: bool,
           workers: int | None, sizes: dict | None = None) -> None:
    from ncmflow.analysis.barriers import write_report
    from ncmflow.workflows.engines import get_engine
    from ncmflow.workflows.runner import saved_flow
    from ncmflow.workflows.store import get_store, resolve_store, study_lock
    from ncmflow.workflows.study import study_flow

    if electronic:
        if engine != "gpaw" or write_inputs is not None:
            raise UserError("--electronic runs GPAW here: use `ncmflow study --engine gpaw --electronic`")
        _electronic_study(store, out / "electronic")
        return
    config = study_config(engine, quick, models, hop, sites, ml_models, **(sizes or {}))
    if write_inputs is not None:
        from ncmflow.workflows.study import write_study_inputs

        for path in write_study_inputs(config, write_inputs):
            console.print(f"wrote {path}")
        return
    problem = get_engine(engine).missing()
    if config.dft_check and not problem:
        problem = get_engine(config.dft_engine).missing()
    if problem:
        raise UserError(f"{problem} (or submit it to a cluster: ncmflow submit study --engine {engine})")
    where = resolve_store(store)
    job_store = get_store(where)
    from ncmflow.workflows.progress import row_label

    rows = tuple(row_label(m, k, p) for p in config.potentials for m in config.models
                 for k in range(config.site_count(m)))
    with study_lock(where, config.key, waiting=_say_waiting):
        flow = saved_flow(job_store, config.key, lambda: study_flow(config))
        _run_saved(flow, job_store, where, config.key, (*rows, "compare"), workers)
        files = write_report(job_store, out, study=config.key)
    print_markdown(files["md"].read_text())
    for path in files.values():
        console.print(f"wrote {path}")


def study_config(engine: str, quick: bool, models: str | None, hop: str, sites: int | None,
                 ml_models: str | None, **sizes: Any) -> Any:
    """The StudyConfig of the command-line options (shared with `ncmflow submit study`); ``sizes``:
    dft_check, dft_mode, layers, cpan_units; None anywhere: the study's default."""
    from ncmflow.workflows.study import StudyConfig

    def listed(text: str | None) -> tuple[str, ...] | None:
        return None if text is None else tuple(m.strip() for m in text.split(",") if m.strip())

    potentials = listed(ml_models)
    if engine == "mlip" and potentials is not None:
        from ncmflow.workflows.engines.mlip import potentials as known

        unknown = [p for p in potentials if p not in known()]
        if unknown:
            raise UserError(f"unknown ML potential {unknown[0]!r}: the offline ones are {', '.join(known())}")
    if sizes.get("dft_mode") not in (None, "pw", "lcao"):
        raise UserError(f"--dft-mode must be pw or lcao, not {sizes['dft_mode']!r}")
    return StudyConfig.create(engine, quick, models=listed(models), hop=hop, sites=sites,
                              ml_models=potentials, **sizes)


def _run_saved(flow: Any, job_store: Any, where: Any, key: str, rows: tuple[str, ...],
               workers: int | None = None) -> None:
    """Run a saved flow under the live display; a failed job is a user error, results are kept."""
    from ncmflow.workflows.live import StudyDisplay
    from ncmflow.workflows.parallel import default_workers
    from ncmflow.workflows.runner import JobFailed, run_flow

    try:
        with StudyDisplay(console, rows):
            status = run_flow(flow, job_store, where.run_dir,
                              workers=workers or default_workers(str(where)))
    except JobFailed as exc:
        raise UserError(f"{exc}; finished jobs are kept, rerun to resume") from None
    counts = {state: sum(v == state for v in status.values()) for state in ("ran", "reused", "stopped")}
    stopped = f", {counts['stopped']} stopped by an upstream job" if counts["stopped"] else ""
    console.print(f"\n{counts['ran']} jobs ran, {counts['reused']} reused from the store{stopped} ({key})")


def _electronic_study(store: str | None, out: Path) -> None:
    from ncmflow.analysis.electronic import load_electronic, write_electronic_report
    from ncmflow.workflows.electronic import ElectronicConfig, electronic_flow
    from ncmflow.workflows.engines import get_engine
    from ncmflow.workflows.runner import saved_flow
    from ncmflow.workflows.store import get_store, resolve_store, study_lock

    problem = get_engine("gpaw").missing()
    if problem:
        raise UserError(problem)
    config = ElectronicConfig()
    where = resolve_store(store)
    job_store = get_store(where)
    with study_lock(where, config.key, waiting=_say_waiting):
        flow = saved_flow(job_store, config.key, lambda: electronic_flow(config))
        _run_saved(flow, job_store, where, config.key, ("electronic",), workers=1)  # GPAW's BLAS
        files = write_electronic_report(load_electronic(job_store, config.key), out)
    print_markdown(files["md"].read_text())
    for path in files.values():
        console.print(f"wrote {path}")
