"""What the store holds, one plain record per job output (for `ncmflow query`).

Two ways to the same records: `list_records` asks any JobStore (MongoDB, montydb, …) with a
MongoDB query; `query_records` is the command's way, which reads an embedded montydb store
through its summary table (`records_index`) without importing jobflow, and falls back to
`list_records` for every other store. Both return exactly the same list.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobflow import JobStore

KINDS = ("relax", "static", "neb", "electronic")
# the document fields a record is made of: the store query's projection
FIELDS = ["uuid", "name", "completed_at", "metadata", "output.@class", "output.converged",
          "output.forward_barrier", "output.reason", "output.output.energy", "output.energy",
          "output.magmom"]
# fields `ncmflow query` filters on: indexed in a MongoDB store, columns of the montydb summary
INDEXED = ("metadata.model", "metadata.engine", "completed_at")


def _output(doc: dict[str, Any]) -> dict[str, Any]:
    out = doc.get("output")
    return out if isinstance(out, dict) else {}


def _kind(doc: dict[str, Any]) -> str:
    cls = _output(doc).get("@class", "")
    stage = (doc.get("metadata") or {}).get("stage", "")
    if cls == "BarrierDoc":
        return "neb"
    if stage == "lcao":
        return "electronic"
    if stage.startswith("relax"):
        return "relax"
    if "static" in doc.get("name", ""):
        return "static"
    return stage or cls or "other"


def _result(doc: dict[str, Any]) -> str:
    out = _output(doc)
    if out.get("@class") == "BarrierDoc":
        if out.get("converged"):
            return f"E_a = {out.get('forward_barrier'):.3f} eV"
        return f"not converged: {out.get('reason')}"
    if (doc.get("metadata") or {}).get("stage") == "lcao":
        part = doc["metadata"].get("part")
        return f"{part}: E = {out.get('energy'):.4f} eV, M = {out.get('magmom'):.2f} μB"
    energy = (out.get("output") or {}).get("energy")
    if isinstance(energy, float):
        return f"E = {energy:.4f} eV"
    return str(out.get("@class") or type(doc.get("output")).__name__)


def record(doc: dict[str, Any]) -> dict[str, Any]:
    """The record of one stored job document (whole, or projected on FIELDS)."""
    meta = doc.get("metadata") or {}
    return {"uuid": doc["uuid"], "kind": _kind(doc), "model": meta.get("model"),
            "site": meta.get("site"), "potential": meta.get("potential"), "path": meta.get("path"),
            "engine": meta.get("engine"), "stage": meta.get("stage"), "study": meta.get("study"),
            "result": _result(doc), "completed_at": doc.get("completed_at", "")}


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: choose one of {', '.join(KINDS)}")


def list_records(store: JobStore, kind: str | None = None, model: str | None = None,
                 engine: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
    """Records sorted by completion time; filters are applied in the store query.

    An embedded montydb store is read through its summary table (see `records_index`); any
    other store gets the MongoDB query, with the filtered fields indexed first on MongoDB.
    """
    from ncmflow.analysis import records_index

    _check_kind(kind)
    if (path := records_index.collection_file(store)) is not None:
        found = records_index.indexed_records(path, kind=kind, model=model, engine=engine, since=since)
        if found is not None:
            return found
    records_index.ensure_mongo_indexes(store)
    return scan_records(store, kind=kind, model=model, engine=engine, since=since)


def scan_records(store: JobStore, kind: str | None = None, model: str | None = None,
                 engine: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
    """The records from a MongoDB query on the store (montydb decodes every document for it)."""
    _check_kind(kind)
    query: dict[str, Any] = {}
    if model:
        query["metadata.model"] = model
    if engine:
        query["metadata.engine"] = engine
    if since:
        query["completed_at"] = {"$gte": since.isoformat()}
    records = []
    for doc in store.query(query, properties=FIELDS, sort={"completed_at": 1}):
        rec = record(doc)
        if kind is None or rec["kind"] == kind:
            records.append(rec)
    return records


def query_records(location: str | Path | None = None, kind: str | None = None, model: str | None = None,
                  engine: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
    """`list_records` of the store `get_store(location)` opens, without importing jobflow when
    that is the embedded montydb store (`ncmflow query` answers in a fraction of a second)."""
    from ncmflow.analysis import records_index
    from ncmflow.workflows.store import CONNECT_LOCK, DATABASE, embedded_folder, embedded_location
    from ncmflow.workflows.storecheck import check_store

    _check_kind(kind)
    if (folder := embedded_location(location)) is not None:
        folder = embedded_folder(folder)
        check_store(folder, DATABASE, lock=folder / CONNECT_LOCK)  # as get_store does: one line
        path = records_index.embedded_collection_file(folder)
        found = records_index.indexed_records(path, kind=kind, model=model, engine=engine, since=since)
        if found is not None:
            return found
    from ncmflow.workflows.store import get_store

    return list_records(get_store(location), kind=kind, model=model, engine=engine, since=since)
