"""Clusters: `ncmflow submit study`, then `status`, `retry`, `cancel`, `collect` (see docs/hpc.md).

`run-jobs` (hidden) is what the batch scripts run on the compute nodes.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ncmflow.cli.study import study_config
from ncmflow.cli.utils import (
    ConfigOption,
    CpanUnitsOption,
    DftCheckOption,
    DftModeOption,
    EngineOption,
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
)

app = NcmflowTyper()
submit_app = NcmflowTyper(help="Submit a flow to a cluster (see docs/hpc.md).", no_args_is_help=True)
app.add_typer(submit_app, name="submit")
SubmissionArgument = Annotated[Path, typer.Argument(help="Submission folder.")]


class Backend(StrEnum):
    direct = "direct"
    jobflow_remote = "jobflow-remote"


def _hpc_config(path: Path | None) -> Any:
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
def submit_study(
    worker: Annotated[str, typer.Option(help="Worker name from the config's 'workers:'.")],
    engine: EngineOption = "mlip",
    quick: Annotated[bool, typer.Option(help="3 images, looser forces.")] = False,
    models: ModelsOption = None,
    hop: HopOption = "subsurface",
    sites: SitesOption = None,
    ml_models: MlModelsOption = None,
    dry_run: Annotated[bool, typer.Option(help="Print the batch scripts; submit nothing.")] = False,
    backend: Annotated[Backend, typer.Option(help="direct (qtoolkit) or jobflow-remote.")] = Backend.direct,
    config: ConfigOption = None,
    store: StoreOption = None,
    electronic: Annotated[
        bool, typer.Option(help="The Ni–N electronic study (GPAW LCAO) as one batch job instead.")
    ] = False,
    dft_check: DftCheckOption = False,
    dft_mode: DftModeOption = None,
    layers: LayersOption = None,
    cpan_units: CpanUnitsOption = None,
) -> None:
    """Submit the barrier study: one batch job per model, then the comparison, chained afterok.

    The batch jobs collect into the store this command resolves (printed), whatever their
    working folder and environment.

    Example: `ncmflow submit study --engine mlip --worker local-slurm --quick --dry-run`;
    `ncmflow submit study --engine gpaw --electronic --worker my-cluster`
    """
    from ncmflow.workflows import jfremote
    from ncmflow.workflows.engines import get_engine
    from ncmflow.workflows.hpc_config import check_label, check_scheduler, mask
    from ncmflow.workflows.runner import saved_flow
    from ncmflow.workflows.store import get_store, resolve_store
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
        for m in (models or "").split(","):
            if m.strip():
                check_label(m.strip(), "model name")
        study = study_config(engine, quick, models, hop, sites, ml_models, dft_check=dft_check or None,
                             dft_mode=dft_mode, layers=layers, cpan_units=cpan_units)
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
    where = resolve_store(store)
    flow = saved_flow(get_store(where), study.key, build)
    folder, _ = new_submission(flow, worker, target, pinned_store(where), study.key)
    console.print(
        f"submitted {study.key} to {worker}: {folder}\nresults go to the store {where}\n"
        f"watch: ncmflow status {folder}", highlight=False
    )


@app.command()
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
def retry(submission: SubmissionArgument, config: ConfigOption = None) -> None:
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
def cancel(submission: SubmissionArgument) -> None:
    """Cancel a submission's queued and running batch jobs; finished results stay.

    Example: `ncmflow cancel /scratch/me/ncmflow/study-0123abcd-20261130-101500-ab12`
    """
    from ncmflow.workflows.submit import load_record
    from ncmflow.workflows.watch import cancel as cancel_stages

    cancelled = cancel_stages(submission.resolve(), load_record(submission))
    console.print(f"cancelled: {', '.join(cancelled)}" if cancelled else "nothing left to cancel")


@app.command()
def collect(submission: SubmissionArgument) -> None:
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

    It opens no store: the stage runs against the outputs of its upstream stages, and the
    final batch job (`ncmflow collect`) copies everything into the submission's store.
    Every failure prints its traceback (the batch job's log) and exits 1.

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
