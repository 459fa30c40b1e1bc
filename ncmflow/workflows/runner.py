"""Run a flow in this process, reusing every job the store already holds.

A flow is saved (with its job uuids) the first time it is run under a key; running the
same key again loads that flow, so finished jobs are found by uuid and skipped — an
interrupted study resumes where it stopped, computes nothing twice and stores no duplicates.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from jobflow import Flow, Job, JobStore
from monty.json import MontyDecoder, jsanitize

from ncmflow.workflows import progress
from ncmflow.workflows.flowstate import FlowState, JobFailed, finished, inside, job_meta, response_fields
from ncmflow.workflows.store import FLOWS_COLLECTION, sibling_store


def saved_flow(store: JobStore, key: str, build: Callable[[], Flow]) -> Flow:
    """The flow stored under ``key``, or a new one from ``build()`` saved under it."""
    flows = sibling_store(store, FLOWS_COLLECTION)
    doc = flows.query_one({"key": key})
    if doc is not None:
        return MontyDecoder().process_decoded(doc["flow"])
    flow = build()
    flows.update([{"key": key, "flow": jsanitize(flow.as_dict(), strict=True, allow_bson=True),
                   "name": flow.name, "uuid": flow.uuid,
                   "created": datetime.now(UTC).isoformat()}], key="key")
    return flow


def run_flow(flow: Flow, store: JobStore, workdir: Path, only: set[str] | None = None,
             workers: int | None = None) -> dict[str, str]:
    """Run the flow's jobs in order; return {uuid: "reused" | "ran" | "stopped"}.

    ``only`` restricts the run to some job uuids (a batch job on a cluster runs its stage).
    ``workers`` > 1 runs jobs whose inputs are ready at once in that many processes (see
    ``ncmflow.workflows.parallel``) when the store can be opened from another process; a store
    only in memory, or ``workers`` None or 1, runs them one after another here.

    Every field of a job's ``Response`` is honoured as jobflow's ``run_locally`` does (see
    ``ncmflow.workflows.flowstate``): the flows it returns run right after it and resume by
    (uuid, index) on a rerun; the jobs it stops are recorded in the store, so a rerun, or a later
    stage's ``run_flow(..., only=...)``, reports them "stopped" and never runs them. The status
    covers the flow's own jobs, not those of the flows they returned.
    """
    if workers is not None and workers > 1:
        from ncmflow.workflows.parallel import reopenable, run_parallel

        spec = reopenable(store)
        if spec is not None:
            return run_parallel(flow, store, workdir, workers, spec, only=only)
    state = FlowState(store, flow)
    jobs = [j for j, _ in flow.iterflow() if only is None or j.uuid in only]
    return _run_jobs(state, jobs, Path(workdir).resolve())


def _run_jobs(state: FlowState, jobs: list[Job], workdir: Path) -> dict[str, str]:
    done = finished(state.store, jobs)
    return {job.uuid: _run_job(state, job, (job.uuid, job.index) in done, workdir) for job in jobs}


def _run_job(state: FlowState, job: Job, done: bool, workdir: Path) -> str:
    """Reuse, stop or run one job, then the flows it returned (run_locally's order)."""
    meta = job_meta(job)
    if done:
        progress.report(**meta, event="reused")
        for _, jobs in state.new_jobs(job):  # resumed: an earlier run may have stopped amid them
            _run_jobs(state, jobs, workdir)
        return "reused"
    if (stop := state.stop_reason(job)) is not None:
        state.stop([stop])
        progress.report(**meta, event="stopped")
        return "stopped"
    progress.report(**meta, event="start")
    with inside(workdir / "runs" / job.uuid):
        try:
            fields = response_fields(job.run(store=state.store))
        except Exception as exc:
            raise JobFailed(f"job '{job.name}' failed: {str(exc).splitlines()[0]}") from exc
    for _, jobs in state.record(job, fields):
        _run_jobs(state, jobs, workdir)
    progress.report(**meta, event="done")
    return "ran"
