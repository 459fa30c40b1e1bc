"""Run a flow in this process, reusing every job the store already holds.

A flow is saved (with its job uuids) the first time it is run under a key; running the
same key again loads that flow, so finished jobs are found by uuid and skipped — an
interrupted study resumes where it stopped, computes nothing twice and stores no duplicates.

Writes to an embedded store take its write lock (``store.write_lock``) in either runner, so
another study's process and its workers never interleave with them; a job's arrays are written
before its document (``store.lock_writes``), so a process killed at any moment leaves either a
finished job or one that runs again. Two processes on the *same* study are kept apart one level
up (``store.study_lock``, taken by `ncmflow study`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from jobflow import Flow, Job, JobStore
from monty.json import MontyDecoder, jsanitize

from ncmflow.workflows import progress
from ncmflow.workflows.flowstate import (
    RESPONSES_COLLECTION,
    STOPPED_COLLECTION,
    FlowState,
    JobFailed,
    finished,
    inside,
    job_meta,
    run_job,
)
from ncmflow.workflows.store import (
    CONNECT_LOCK,
    FLOWS_COLLECTION,
    file_lock,
    locked_writes,
    sibling_store,
    store_folder,
    write_lock,
)


def saved_flow(store: JobStore, key: str, build: Callable[[], Flow]) -> Flow:
    """The flow stored under ``key``, or a new one from ``build()`` saved under it.

    Two processes saving one key at once would each run their own flow: `ncmflow study` holds
    the study's lock (``store.study_lock``) around this and the run."""
    folder = store_folder(store)
    ensure_collections(store, FLOWS_COLLECTION)
    with file_lock(folder / CONNECT_LOCK) if folder else contextlib.nullcontext():
        flows = sibling_store(store, FLOWS_COLLECTION)
    doc = flows.query_one({"key": key})
    if doc is not None:
        return MontyDecoder().process_decoded(doc["flow"])
    flow = build()
    with write_lock(folder):
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
    ensure_collections(store, RESPONSES_COLLECTION, STOPPED_COLLECTION)
    if workers is not None and workers > 1:
        from ncmflow.workflows.parallel import reopenable, run_parallel

        spec = reopenable(store)
        if spec is not None:
            return run_parallel(flow, store, workdir, workers, spec, only=only)
    with locked_writes(store):
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
            fields = run_job(job, state.store, state.flow)
        except Exception as exc:
            raise JobFailed(f"job '{job.name}' failed: {str(exc).splitlines()[0]}") from exc
    for _, jobs in state.record(job, fields):
        _run_jobs(state, jobs, workdir)
    progress.report(**meta, event="done")
    return "ran"


def ensure_collections(store: JobStore, *siblings: str) -> None:
    """Create the embedded store's collection files not there yet (the job store's own and the
    ``siblings``), each whole or not at all.

    montydb creates a collection on its first write: an SQLite file, then its table. A process
    reading it in between (another study deciding what is finished, `ncmflow compare`) failed
    with "no such table: documents" (two studies starting on a new store). Here the file is made
    aside, table included, and linked into place: never over one another process made meanwhile.
    """
    import os
    import sqlite3

    from maggma.stores import MontyStore
    from montydb.storage.sqlite import CREATE_TABLE, SQLITE_DB_EXT, SQLITE_RECORD_TABLE

    from ncmflow.workflows.diskfull import naming
    from ncmflow.workflows.storecheck import sqlite_error

    docs = store.docs_store
    if store_folder(store) is None:
        return
    nothing = "nothing was written"
    wanted = [(s, s.collection_name) for s in (docs, *store.additional_stores.values())]
    for owner, name in [*wanted, *((docs, name) for name in siblings)]:
        if not isinstance(owner, MontyStore) or owner.storage != "sqlite":
            continue
        path = Path(owner.database_path) / owner.database_name / f"{name}{SQLITE_DB_EXT}"
        if path.is_file():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{name}.{os.getpid()}.new")
        try:
            with naming(path, nothing), contextlib.closing(sqlite3.connect(aside)) as conn, conn:
                conn.execute(CREATE_TABLE.format(SQLITE_RECORD_TABLE))
            with naming(path, nothing), contextlib.suppress(FileExistsError):
                os.link(aside, path)
        except sqlite3.Error as exc:  # a full disk: one line naming the store file
            raise sqlite_error(exc, path) or exc from exc
        finally:
            aside.unlink(missing_ok=True)
