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

from jobflow import Flow, JobStore
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


def finished(store: JobStore, uuids: list[str]) -> set[str]:
    return {d["uuid"] for d in store.query({"uuid": {"$in": uuids}}, properties=["uuid"])}


@contextlib.contextmanager
def _inside(folder: Path):
    here = Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)


def run_flow(flow: Flow, store: JobStore, workdir: Path, only: set[str] | None = None) -> dict[str, str]:
    """Run the flow's jobs in order; return {uuid: "reused" | "ran"}.

    ``only`` restricts the run to some job uuids (a batch job on a cluster runs its stage).
    """
    jobs = [j for j, _ in flow.iterflow() if only is None or j.uuid in only]
    done = finished(store, [j.uuid for j in jobs])
    status = {}
    for job in jobs:
        m = job.metadata
        stage = " ".join(filter(None, (m.get("stage", job.name), m.get("part"), m.get("path"))))
        row = progress.row_label(m.get("model"), m.get("site"), m.get("potential"))
        meta = {"model": row, "stage": stage}
        if job.uuid in done:
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
