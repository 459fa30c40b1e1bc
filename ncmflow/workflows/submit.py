"""Direct backend: each stage of a flow is one batch job, chained with afterok dependencies.

A submission is a folder on the shared file system: ``submission.json`` (stages, scheduler
ids), ``flow.json`` (the flow with its uuids), ``stages/<name>/`` (script, scheduler log,
``outputs.json``) and ``runs/<job uuid>/`` (where each job computes — a retried NEB finds its
checkpoint there). Scripts are rendered by qtoolkit; every value from the user that reaches
them is validated (hpc_config) or shell-quoted here.
"""

from __future__ import annotations

import secrets
import shlex
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from jobflow import Flow
from monty.json import jsanitize
from pydantic import BaseModel, ValidationError

from ncmflow.workflows.collect import ERROR, read_outputs, write_json_atomic
from ncmflow.workflows.hpc_config import Worker, check_label

RECORD = "submission.json"
COLLECT = "collect"
DEPENDENCY = {"slurm": "#SBATCH --dependency={kind}:{ids}", "pbs": "#PBS -W depend={kind}:{ids}"}


class StageRecord(BaseModel):
    name: str
    uuids: list[str]
    jobs: list[dict[str, str]]
    after: list[str] = []
    job_id: str | None = None
    attempts: int = 0
    last_state: tuple[str, str] | None = None


class SubmissionRecord(BaseModel):
    id: str
    worker: str
    scheduler: str
    store: str | None  # pinned_store(): absolute (None in records older than that: the user's default)
    flow_name: str
    created: str
    stages: list[StageRecord]
    collect_job_id: str | None = None

    def stage(self, name: str) -> StageRecord:
        return next(s for s in self.stages if s.name == name)

    def save(self, folder: Path) -> None:
        write_json_atomic(folder / RECORD, self.model_dump())


def load_record(folder: Path) -> SubmissionRecord:
    path = Path(folder).resolve() / RECORD
    if not path.is_file():
        raise ValueError(f"{folder} is not a submission folder (no {RECORD}): pass the folder "
                         "'ncmflow submit' printed")
    try:
        return SubmissionRecord.model_validate_json(path.read_text())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ValueError(f"{path} is not a submission record ({where or 'file'}: {first['msg']})") from None


def plan_stages(flow: Flow) -> list[StageRecord]:
    """One stage per model (its relax/interpolate/NEB chain) or per ``batch`` a job names (the DFT
    check's single points: GPAW jobs, not the ML ones), then the jobs that join them."""
    stages: dict[str, StageRecord] = {}
    stage_of: dict[str, str] = {}
    for job, _ in flow.iterflow():
        # a job's own batch (the DFT check's single points), else its model's
        name = check_label(job.metadata.get("batch") or job.metadata.get("model") or job.metadata.get("stage")
                           or "final", "model name")
        stage = stages.setdefault(name, StageRecord(name=name, uuids=[], jobs=[]))
        stage.uuids.append(job.uuid)
        stage.jobs.append({"uuid": job.uuid, "name": job.name,
                           "stage": str(job.metadata.get("stage", job.name))})
        stage_of[job.uuid] = name
        for ref in job.input_references:
            upstream = stage_of.get(ref.uuid)
            if upstream and upstream != name and upstream not in stage.after:
                stage.after.append(upstream)
    return list(stages.values())


def queue_manager(scheduler: str):
    from qtoolkit.host.local import LocalHost
    from qtoolkit.io.pbs import PBSIO
    from qtoolkit.io.slurm import SlurmIO
    from qtoolkit.manager import QueueManager

    return QueueManager(scheduler_io=SlurmIO() if scheduler == "slurm" else PBSIO(), host=LocalHost())


def render_script(worker: Worker, folder: Path, job_name: str, command: list[str],
                  after: list[str], kind: str = "afterok") -> str:
    """The batch script for one stage; ``after`` are scheduler ids (or placeholders)."""
    from qtoolkit.core.data_objects import QResources

    r = worker.resources
    verbatim = DEPENDENCY[worker.scheduler].format(kind=kind, ids=":".join(after)) if after else ""
    options = QResources(
        nodes=r.nodes, processes_per_node=r.cores, time_limit=r.seconds, queue_name=r.partition,
        account=r.account, memory_per_thread=r.memory_mb, job_name=check_label(job_name, "job name"),
        output_filepath="scheduler.out", error_filepath="scheduler.err",
        scheduler_kwargs={"qverbatim": verbatim} if verbatim else None,
    )
    lines = ["set -e"]
    if worker.modules:
        lines += ["module purge", *(f"module load {m}" for m in worker.modules)]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in worker.environment.items()]
    lines += [*worker.pre_run, f"cd {shlex.quote(str(folder))}", shlex.join(command)]
    return queue_manager(worker.scheduler).scheduler_io.get_submission_script(lines, options) + "\n"


def stage_command(worker: Worker, folder: Path, stage: str) -> list[str]:
    python = worker.python or sys.executable
    if stage == COLLECT:
        return [python, "-m", "ncmflow", "collect", str(folder)]
    return [python, "-m", "ncmflow", "run-jobs", "--submission", str(folder), "--stage", stage]


def _sbatch(worker: Worker, script: str, stage_dir: Path) -> str:
    """Write the script and hand it to the scheduler; a refusal is a one-line error."""
    qm = queue_manager(worker.scheduler)
    stage_dir.mkdir(parents=True, exist_ok=True)
    path = stage_dir.resolve() / "job.sh"
    path.write_text(script)
    path.chmod(0o700)
    cmd = qm.scheduler_io.get_submit_cmd(shlex.quote(str(path)))
    stdout, stderr, code = qm.execute_cmd(cmd, stage_dir)
    result = qm.scheduler_io.parse_submit_output(exit_code=code, stdout=stdout, stderr=stderr)
    if result.job_id is None:
        said = (stderr or stdout or "").strip().splitlines()
        raise ValueError(f"{worker.submit_command} refused the job: {said[-1] if said else 'no output'} "
                         "— check the worker's resources in the config")
    return str(result.job_id)


def submit_stages(record: SubmissionRecord, worker: Worker, folder: Path, names: list[str],
                  live: dict[str, str], dry_run: bool = False) -> dict[str, str]:
    """Submit ``names`` in order, each after its upstream stages still in ``live``; scripts by stage.

    On a refusal the stages already submitted by this call are cancelled: nothing is left
    half-submitted.
    """
    scripts, submitted = {}, []
    try:
        for name in [*names, COLLECT]:
            after = (sorted(set(live.values())) if name == COLLECT
                     else [live[u] for u in record.stage(name).after if u in live])
            kind = "afterany" if name == COLLECT else "afterok"
            script = render_script(worker, folder, f"ncm-{name}", stage_command(worker, folder, name),
                                   after, kind)
            scripts[name] = script
            if dry_run:
                live[name] = f"<{name}>"
                continue
            live[name] = _sbatch(worker, script, folder / ("stages" if name != COLLECT else "") / name)
            submitted.append(live[name])
            if name == COLLECT:
                record.collect_job_id = live[name]
            else:
                record.stage(name).job_id = live[name]
                record.stage(name).attempts += 1
                record.stage(name).last_state = None
    except ValueError:
        qm = queue_manager(worker.scheduler)
        for job_id in submitted:
            qm.cancel(job_id)
        raise
    return scripts


def new_submission(flow: Flow, worker_name: str, worker: Worker, store: str | None,
                   label: str, dry_run: bool = False) -> tuple[Path, dict[str, str]]:
    """Create the submission folder and submit every stage (or, for a dry run, only render).

    ``store`` is pinned (:func:`pinned_store`): the collect batch job opens the store a local
    run here would, whatever its folder and environment.
    """
    if not dry_run:
        store = pinned_store(store)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    sub_id = f"{check_label(label, 'flow label')}-{stamp}-{secrets.token_hex(2)}"
    folder = worker.work_dir / sub_id
    record = SubmissionRecord(id=sub_id, worker=worker_name, scheduler=worker.scheduler, store=store,
                              flow_name=flow.name, created=stamp, stages=plan_stages(flow))
    names = [s.name for s in record.stages]
    if dry_run:
        return folder, submit_stages(record, worker, folder, names, {}, dry_run=True)
    (folder / "stages").mkdir(parents=True)
    write_json_atomic(folder / "flow.json", jsanitize(flow.as_dict(), strict=True))
    for name in names:
        (folder / "stages" / name).mkdir()
    record.save(folder)
    try:
        scripts = submit_stages(record, worker, folder, names, {})
    except ValueError:
        shutil.rmtree(folder)  # its batch jobs were cancelled: leave no half-made submission
        raise
    record.save(folder)
    return folder, scripts


def upstream_dirs(folder: Path, record: SubmissionRecord, stage: str) -> list[Path]:
    """Every stage this one depends on, transitively (their outputs are its inputs)."""
    seen: list[str] = []
    todo = list(record.stage(stage).after)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.append(name)
            todo += record.stage(name).after
    return [folder / "stages" / name for name in seen]


def finished_uuids(folder: Path, stage: StageRecord, stopped: set[str] | None = None) -> set[str]:
    """The stage's jobs that are done: finished, or stopped by an upstream job (stop_children).
    ``stopped``: :func:`stopped_uuids` when the caller has it (it reads every stage's outputs)."""
    done = {d["uuid"] for d in read_outputs(folder / "stages" / stage.name)["outputs"]}
    return done | ((stopped_uuids(folder) if stopped is None else stopped) & set(stage.uuids))


def stopped_uuids(folder: Path) -> set[str]:
    """Jobs a Response stopped, as recorded by any stage of the submission (see flowstate)."""
    from ncmflow.workflows.flowstate import STOPPED_COLLECTION

    stages = Path(folder) / "stages"
    return {d["uuid"] for stage_dir in (sorted(stages.iterdir()) if stages.is_dir() else [])
            for d in read_outputs(stage_dir).get("state", {}).get(STOPPED_COLLECTION, [])
            if d.get("uuid")}  # not the "flow:<uuid>" markers of stop_jobflow


def error_reason(folder: Path, stage: StageRecord) -> str | None:
    path = folder / "stages" / stage.name / ERROR
    return path.read_text().strip() if path.is_file() else None


def pinned_store(location: str | Path | None) -> str:
    """The store as batch jobs must open it: `resolve_store`'s absolute location, so they find
    the same one as a local run from any folder, whatever their environment."""
    from ncmflow.workflows.store import resolve_store

    return str(resolve_store(location))


def latest_submission(work_dirs: list[Path]) -> Path:
    records = [p for d in work_dirs if d.is_dir() for p in d.glob(f"*/{RECORD}")]
    if not records:
        raise ValueError("no submissions found in the workers' work_dir: pass the submission folder")
    return max(records, key=lambda p: p.stat().st_mtime).parent
