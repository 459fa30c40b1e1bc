"""Watching a direct submission: states from the scheduler and the stage folders; retry; cancel.

A stage's results are the truth (``outputs.json`` holds every job it finished); the scheduler
says what is happening now (qtoolkit ``get_job`` → scontrol / qstat). Once the scheduler
forgets a job (SLURM's MinJobAge), the last failure seen and the stage's ``error.txt`` keep
the reason.
"""

from __future__ import annotations

from pathlib import Path

from ncmflow.workflows.hpc_config import Worker
from ncmflow.workflows.submit import (
    StageRecord,
    SubmissionRecord,
    error_reason,
    finished_uuids,
    queue_manager,
    stopped_uuids,
    submit_stages,
)

State = tuple[str, str]  # (state, reason)
LIVE = ("running", "queued", "waiting")


def _clock(seconds: int | None) -> str:
    if not seconds:
        return "its walltime"
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _from_scheduler(job, folder: Path, stage: StageRecord, states: dict[str, State]) -> State:
    state = job.state.name
    if state in ("QUEUED", "QUEUED_HELD", "REQUEUED"):
        failed = [u for u in stage.after if states[u][0] == "failed"]
        if failed:
            return "waiting", f"upstream {', '.join(failed)} failed: run ncmflow retry"
        pending = [u for u in stage.after if states[u][0] != "completed"]
        return ("waiting", f"for {', '.join(pending)}") if pending else ("queued", "")
    if state == "RUNNING":
        return "running", ""
    sub = job.sub_state.name if job.sub_state is not None else ""
    if sub == "TIMEOUT":
        return "failed", f"time limit {_clock(job.info.time_limit if job.info else None)} reached"
    if sub == "CANCELLED":
        return "failed", "cancelled (scancel or ncmflow cancel)"
    if state in ("DONE", "FAILED"):
        return "failed", error_reason(folder, stage) or f"batch job ended ({sub or state}) without results"
    return state.lower(), sub.lower()


def stage_states(folder: Path, record: SubmissionRecord) -> dict[str, State]:
    """Each stage's state, upstream first (a stage's state depends on its upstream's)."""
    qm = queue_manager(record.scheduler)
    states: dict[str, State] = {}
    stopped = stopped_uuids(folder)  # once: it reads every stage's outputs.json
    for stage in record.stages:
        if finished_uuids(folder, stage, stopped) >= set(stage.uuids):
            states[stage.name] = ("completed", "")
            continue
        job = qm.get_job(stage.job_id) if stage.job_id else None
        if job is not None:
            states[stage.name] = _from_scheduler(job, folder, stage, states)
        elif stage.last_state is not None:
            states[stage.name] = stage.last_state
        elif (reason := error_reason(folder, stage)) is not None:
            states[stage.name] = ("failed", reason)
        elif stage.job_id is None:
            states[stage.name] = ("not submitted", "")
        else:
            states[stage.name] = ("failed", "no longer known to the scheduler and left no results")
        if states[stage.name][0] == "failed":
            stage.last_state = states[stage.name]
    return states


def job_rows(folder: Path, record: SubmissionRecord, states: dict[str, State]) -> list[dict[str, str]]:
    """One row per flow job: a stage's state shows on its first unfinished job."""
    rows = []
    stopped = stopped_uuids(folder)
    for stage in record.stages:
        done = finished_uuids(folder, stage, stopped)
        state, reason = states[stage.name]
        first = True
        for job in stage.jobs:
            if job["uuid"] in stopped:
                row_state, row_reason = "stopped", "an upstream job stopped its children"
            elif job["uuid"] in done:
                row_state, row_reason = "completed", ""
            elif first:
                row_state, row_reason, first = state, reason, False
            else:
                row_state, row_reason = ("not run" if state == "failed" else "waiting"), ""
            rows.append({"batch": f"{stage.name} #{stage.job_id or '-'}", "job": job["name"],
                         "state": row_state, "reason": row_reason})
    return rows


def _downstream(record: SubmissionRecord, names: set[str]) -> set[str]:
    grown = set(names)
    for stage in record.stages:  # flow order: upstream stages come first
        if grown.intersection(stage.after):
            grown.add(stage.name)
    return grown


def retry(folder: Path, record: SubmissionRecord, worker: Worker) -> list[str]:
    """Resubmit failed stages and those waiting on them; running and finished ones stay."""
    states = stage_states(folder, record)
    failed = {n for n, (s, _) in states.items() if s in ("failed", "not submitted")}
    if not failed:
        return []
    redo = [s.name for s in record.stages
            if s.name in _downstream(record, failed) and states[s.name][0] != "completed"]
    qm = queue_manager(record.scheduler)
    for name in redo:
        if states[name][0] in LIVE and record.stage(name).job_id:
            qm.cancel(record.stage(name).job_id)
    if record.collect_job_id and (job := qm.get_job(record.collect_job_id)) is not None \
            and job.state.name != "DONE":
        qm.cancel(record.collect_job_id)
    live = {n: record.stage(n).job_id for n, (s, _) in states.items() if s in LIVE and n not in redo}
    submit_stages(record, worker, folder, redo, live)
    record.save(folder)
    return redo


def cancel(folder: Path, record: SubmissionRecord) -> list[str]:
    """Cancel every stage still queued or running (and the collect job)."""
    states = stage_states(folder, record)
    qm = queue_manager(record.scheduler)
    cancelled = [s.name for s in record.stages if states[s.name][0] in LIVE and s.job_id]
    for name in cancelled:
        qm.cancel(record.stage(name).job_id)
    if record.collect_job_id and (job := qm.get_job(record.collect_job_id)) is not None \
            and job.state.name in ("QUEUED", "RUNNING"):
        qm.cancel(record.collect_job_id)
    record.save(folder)
    return cancelled
