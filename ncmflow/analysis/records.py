"""What the store holds, one plain record per job output (for `ncmflow query`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobflow import JobStore

KINDS = ("relax", "static", "neb", "electronic")


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


def list_records(store: JobStore, kind: str | None = None, model: str | None = None,
                 engine: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
    """Records sorted by completion time; filters are applied in the store query."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: choose one of {', '.join(KINDS)}")
    query: dict[str, Any] = {}
    if model:
        query["metadata.model"] = model
    if engine:
        query["metadata.engine"] = engine
    if since:
        query["completed_at"] = {"$gte": since.isoformat()}
    fields = ["uuid", "name", "completed_at", "metadata", "output.@class", "output.converged",
              "output.forward_barrier", "output.reason", "output.output.energy", "output.energy",
              "output.magmom"]
    records = []
    for doc in store.query(query, properties=fields, sort={"completed_at": 1}):
        rec_kind = _kind(doc)
        if kind is not None and rec_kind != kind:
            continue
        meta = doc.get("metadata") or {}
        records.append({"uuid": doc["uuid"], "kind": rec_kind, "model": meta.get("model"),
                        "site": meta.get("site"), "potential": meta.get("potential"),
                        "path": meta.get("path"),
                        "engine": meta.get("engine"), "stage": meta.get("stage"), "study": meta.get("study"),
                        "result": _result(doc), "completed_at": doc.get("completed_at", "")})
    return records
