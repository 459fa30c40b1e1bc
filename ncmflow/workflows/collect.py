"""Batch jobs write into their own folders; one locked, idempotent step ingests them.

Concurrent batch jobs never share a database file: each runs its stage against an in-memory
JobStore pre-loaded from the upstream stages' ``outputs.json`` (and its own, from an earlier
attempt), and rewrites its ``outputs.json`` atomically after every finished job, so a killed
batch job loses at most the job it was running. :func:`collect` copies every stage's
documents into the main store, skipping those already there (running it twice adds nothing),
under a file lock so ``ncmflow status`` and the final collect batch job cannot interleave.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from jobflow import Flow, JobStore
from maggma.stores import MemoryStore
from monty.json import MontyDecoder, jsanitize

from ncmflow.workflows.flowstate import export_state, import_state

if TYPE_CHECKING:
    from ncmflow.workflows.store import StoreLocation

OUTPUTS = "outputs.json"
ERROR = "error.txt"
DATA = "data"


def read_outputs(stage_dir: Path) -> dict[str, list[dict]]:
    """The documents a stage has finished so far ({} before its first job ends)."""
    path = Path(stage_dir) / OUTPUTS
    if not path.is_file():
        return {"outputs": [], DATA: [], "state": {}}
    return json.loads(path.read_text())


def write_json_atomic(path: Path, obj: object) -> None:
    """Write-then-rename: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, default=str))
    os.replace(tmp, path)


def _plain(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("_id", "last_updated")}


def memory_store(preload: list[dict[str, list[dict]]]) -> JobStore:
    """A private JobStore holding the given stages' documents."""
    store = JobStore(MemoryStore("stage_outputs", key="uuid"),
                     additional_stores={DATA: MemoryStore("stage_outputs_data", key="blob_uuid")})
    store.connect()
    for outputs in preload:
        if outputs["outputs"]:
            store.docs_store.update(outputs["outputs"], key=["uuid", "index"])
        if outputs[DATA]:
            store.additional_stores[DATA].update(outputs[DATA], key="blob_uuid")
        import_state(store, outputs.get("state", {}))  # stops and new flows of earlier stages
    return store


def export_store(store: JobStore, path: Path, skip: set[str]) -> None:
    """Everything this stage computed (not the upstream documents it was given)."""
    docs = [_plain(d) for d in store.docs_store.query({"uuid": {"$nin": sorted(skip)}})]
    data = [_plain(d) for d in store.additional_stores[DATA].query({"job_uuid": {"$nin": sorted(skip)}})]
    state = export_state(store)  # what Responses decided: stops, replace/detour/addition flows
    write_json_atomic(path, jsanitize({"outputs": docs, DATA: data, "state": state}, strict=False))


class Terminated(Exception):
    """The scheduler sent SIGTERM (time limit, scancel, preemption)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated("terminated by the scheduler (time limit reached, or cancelled)")


def run_stage(submission: Path, stage: dict, upstream: list[Path]) -> None:
    """Run one stage's jobs on the compute node; a failure leaves ``error.txt`` with the reason."""
    from ncmflow.workflows.runner import run_flow

    stage_dir = submission / "stages" / stage["name"]
    (stage_dir / ERROR).unlink(missing_ok=True)
    flow: Flow = MontyDecoder().process_decoded(json.loads((submission / "flow.json").read_text()))
    given = [read_outputs(d) for d in upstream]
    skip = {d["uuid"] for outputs in given for d in outputs["outputs"]}
    store = memory_store([*given, read_outputs(stage_dir)])
    signal.signal(signal.SIGTERM, _terminate)
    try:
        for uuid in stage["uuids"]:
            run_flow(flow, store, submission, only={uuid})
            export_store(store, stage_dir / OUTPUTS, skip)
    except Exception as exc:  # every failure (and SIGTERM) leaves its reason, then re-raises
        (stage_dir / ERROR).write_text(str(exc).strip().splitlines()[0] if str(exc).strip()
                                       else type(exc).__name__)
        raise


def _missing(store, docs: list[dict], keys: tuple[str, ...]) -> list[dict]:
    if not docs:
        return []
    first = keys[0]
    have = {tuple(d.get(k) for k in keys)
            for d in store.query({first: {"$in": sorted({d[first] for d in docs})}}, properties=list(keys))}
    return [d for d in docs if tuple(d.get(k) for k in keys) not in have]


def _lock_file(submission: Path, where: StoreLocation) -> Path:
    """Embedded stores lock their own folder, so collects of different submissions into one
    store never ingest the same document twice (connects are locked in ``get_store``)."""
    from ncmflow.workflows.store import embedded_folder

    if where.embedded:
        return embedded_folder(where.path) / "ncmflow.lock"
    return submission / "collect.lock"


def collect(submission: Path, location: str | None) -> int:
    """Ingest every stage's documents into the store at ``location`` (a submission's pinned
    store: see ``store.resolve_store``); returns how many were new."""
    from ncmflow.workflows.store import file_lock, get_store, resolve_store, store_folder, write_lock

    added = 0
    where = resolve_store(location)
    with file_lock(_lock_file(submission, where)):
        store = get_store(where)
        if DATA not in store.additional_stores:
            raise ValueError(f"the store has no '{DATA}' additional store: add one (see docs/hpc.md)")
        for stage_dir in sorted((submission / "stages").iterdir()):
            outputs = read_outputs(stage_dir)
            docs = _missing(store.docs_store, outputs["outputs"], ("uuid", "index"))
            blobs = _missing(store.additional_stores[DATA], outputs[DATA], ("blob_uuid",))
            with write_lock(store_folder(store)):  # a local study may be writing this store
                if blobs:  # arrays before the documents pointing at them, as the runners write
                    store.additional_stores[DATA].update(blobs, key="blob_uuid")
                if docs:
                    store.docs_store.update(docs, key=["uuid", "index"])
            added += len(docs) + len(blobs)
            import_state(store, outputs.get("state", {}))  # idempotent: documents are keyed
    return added
