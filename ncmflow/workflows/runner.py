"""Run a flow in this process, reusing every job the store already holds.

A flow is saved (with its job uuids) the first time it is run under a key; running the
same key again loads that flow, so finished jobs are found by uuid and skipped — an
interrupted study resumes where it stopped, computes nothing twice and stores no duplicates.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from jobflow import Flow, Job, JobStore
from monty.json import MontyDecoder, jsanitize

from ncmflow.workflows import progress
from ncmflow.workflows.store import FLOWS_COLLECTION, sibling_store


class JobFailed(RuntimeError):
    """A job raised; the results of the jobs before it are kept."""


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


def finished(store: JobStore, jobs: list[Job]) -> set[tuple[str, int]]:
    """(uuid, index) of the jobs the store holds: a replacement's last job shares the uuid of the
    job it replaces, one index further, and is not done just because that job is."""
    stored: dict[str, int] = {}
    for d in store.query({"uuid": {"$in": [j.uuid for j in jobs]}}, properties=["uuid", "index"]):
        stored[d["uuid"]] = max(stored.get(d["uuid"], 0), d.get("index", 1))
    return {(j.uuid, j.index) for j in jobs if stored.get(j.uuid, 0) >= j.index}


@contextlib.contextmanager
def _inside(folder: Path):
    here = Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)


def job_meta(job) -> dict[str, str | None]:
    """The progress fields of a job: its display row and stage."""
    m = job.metadata
    stage = " ".join(filter(None, (m.get("stage", job.name), m.get("part"), m.get("path"))))
    return {"model": progress.row_label(m.get("model"), m.get("site"), m.get("potential")), "stage": stage}


def run_flow(flow: Flow, store: JobStore, workdir: Path, only: set[str] | None = None,
             workers: int | None = None) -> dict[str, str]:
    """Run the flow's jobs in order; return {uuid: "reused" | "ran"}.

    ``only`` restricts the run to some job uuids (a batch job on a cluster runs its stage).
    ``workers`` > 1 runs jobs whose inputs are ready at once in that many processes (see
    ``ncmflow.workflows.parallel``) when the store can be opened from another process; a store
    only in memory, or ``workers`` None or 1, runs them one after another here.
    """
    if workers is not None and workers > 1:
        from ncmflow.workflows.parallel import reopenable, run_parallel

        spec = reopenable(store)
        if spec is not None:
            return run_parallel(flow, store, workdir, workers, spec, only=only)
    jobs = [j for j, _ in flow.iterflow() if only is None or j.uuid in only]
    done = finished(store, jobs)
    status = {}
    for job in jobs:
        meta = job_meta(job)
        if (job.uuid, job.index) in done:
            status[job.uuid] = "reused"
            progress.report(**meta, event="reused")
            continue
        progress.report(**meta, event="start")
        with _inside(Path(workdir).resolve() / "runs" / job.uuid):
            try:
                response = job.run(store=store)
            except Exception as exc:
                raise JobFailed(f"job '{job.name}' failed: {str(exc).splitlines()[0]}") from exc
        if response.replace is not None:
            replacement = response.replace if isinstance(response.replace, Flow) else Flow(response.replace)
            run_flow(replacement, store, workdir)
        status[job.uuid] = "ran"
        progress.report(**meta, event="done")
    return status
