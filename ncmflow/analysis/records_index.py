"""A summary of the job outputs beside montydb's own table, so `ncmflow query` stays fast.

Why: montydb answers a query by reading and decoding every stored document in Python. A
store of 10^4 job outputs (structures, trajectories: tens of kB each) takes seconds for
each `ncmflow query`, however selective. MongoDB stores get indexes instead
(`ensure_mongo_indexes`); montydb has none (its ``create_index`` is not implemented).

How: the embedded store is one SQLite file per collection, a table ``documents(k, v)`` of
encoded documents. Beside it, in the same file, this module keeps

- ``ncmflow_records``: one row per document (montydb key, rowid, the filtered fields as
  indexed columns, the finished record as JSON);
- ``ncmflow_changes``: the keys of documents inserted, replaced or deleted, written by SQLite
  triggers on ``documents``. Triggers live in the file, so every writer is logged — jobflow's
  ``run_locally``, ``ncmflow collect``, another process — without any of them knowing about
  the summary, and a document added after the summary was built is never missed. Only the
  documents named in the log are decoded again.

Safety: ``documents`` is only read, never written; the extra tables are ignored by montydb.
Setting up seeds the log with every existing key, so building and updating are the same step.
The slow part (decoding changed documents) runs in a read snapshot without locking out
writers (montydb waits only 5 s for a lock); the summary rows are then written in one short
transaction, unless another process has applied a newer state meanwhile (``applied``
watermark). Any SQLite error — read-only store, not a montydb file — returns None and the
caller falls back to the ordinary query, so a result is never missing, only slower (a damaged
file is then named by the store's check, `workflows.storecheck`, which `records.query_records`
runs first); a document that does not decode is a ValueError naming the file.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from ncmflow.analysis.records import record
from ncmflow.workflows.storecheck import corrupted

# bump when `records.record` changes: stored summaries are then rebuilt from the documents
VERSION = 1
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ncmflow_changes(seq INTEGER PRIMARY KEY AUTOINCREMENT, k NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS ncmflow_log_insert AFTER INSERT ON documents"
    " BEGIN INSERT INTO ncmflow_changes(k) VALUES (new.k); END",
    "CREATE TRIGGER IF NOT EXISTS ncmflow_log_update AFTER UPDATE ON documents"
    " BEGIN INSERT INTO ncmflow_changes(k) VALUES (old.k), (new.k); END",
    "CREATE TRIGGER IF NOT EXISTS ncmflow_log_delete AFTER DELETE ON documents"
    " BEGIN INSERT INTO ncmflow_changes(k) VALUES (old.k); END",
    "CREATE TABLE IF NOT EXISTS ncmflow_summary_meta(key TEXT PRIMARY KEY, value)",
    "DROP TABLE IF EXISTS ncmflow_records",
    "CREATE TABLE ncmflow_records(k PRIMARY KEY, doc_rowid INTEGER, kind TEXT, model TEXT, engine TEXT,"
    " completed_at TEXT, irregular INTEGER NOT NULL, record TEXT NOT NULL)",
    *(f"CREATE INDEX ncmflow_records_{name} ON ncmflow_records({columns})" for name, columns in (
        ("completed", "completed_at, doc_rowid"), ("model", "model"), ("engine", "engine"),
        ("kind", "kind"), ("irregular", "irregular"))),
)


def collection_file(store: Any) -> Path | None:
    """The SQLite file of a JobStore's outputs when they are in montydb on disk, else None."""
    docs = getattr(store, "docs_store", None)
    monty = "MontyStore" in {c.__name__ for c in type(docs).__mro__}  # maggma's, or the embedded store's
    if not monty or getattr(docs, "storage", None) != "sqlite":
        return None
    if getattr(docs, "database_path", ":memory:") == ":memory:":
        return None
    return Path(docs.database_path).resolve() / docs.database_name / f"{docs.collection_name}.collection"


def embedded_collection_file(folder: Path) -> Path:
    """The SQLite file of the embedded store's outputs (see `workflows.store.embedded_store`)."""
    from ncmflow.workflows.store import DATABASE, OUTPUTS

    return Path(folder).resolve() / DATABASE / f"{OUTPUTS}.collection"


def ensure_mongo_indexes(store: Any) -> None:
    """Index the fields `ncmflow query` filters on in a MongoDB store (a no-op once they exist)."""
    from ncmflow.analysis.records import INDEXED

    docs = getattr(store, "docs_store", None)
    if type(docs).__name__ not in ("MongoStore", "MongoURIStore"):
        return
    for key in INDEXED:
        try:
            docs.ensure_index(key)
        except Exception:  # noqa: BLE001 — a read-only user may not create indexes: query anyway
            return


def indexed_records(path: Path, kind: str | None = None, model: str | None = None,
                    engine: str | None = None, since: datetime | None = None) -> list[dict[str, Any]] | None:
    """Records as `records.scan_records` returns them, from the summary; None if it cannot be used."""
    if not path.is_file():
        return [] if not path.exists() else None  # no outputs written yet: montydb finds nothing
    try:
        with _connect(path) as conn:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'documents'").fetchone():
                return None
            if _version(conn) != VERSION:
                _set_up(conn)
            _update(conn, path)
            return _select(conn, kind, model, engine, since)
    except sqlite3.Error:  # a damaged file too: the store the fallback opens is checked (`storecheck`)
        return None


def _connect(path: Path) -> contextlib.closing[sqlite3.Connection]:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, timeout=30, isolation_level=None)
    return contextlib.closing(conn)


def _version(conn: sqlite3.Connection) -> int | None:
    try:
        row = conn.execute("SELECT value FROM ncmflow_summary_meta WHERE key = 'version'").fetchone()
    except sqlite3.OperationalError:  # not set up yet
        return None
    return row[0] if row and conn.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'ncmflow_records'").fetchone() else None


def _set_up(conn: sqlite3.Connection) -> None:
    """Tables, triggers, and every existing document logged as a change (a full build)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _version(conn) != VERSION:  # not set up by another process meanwhile
            for statement in _SCHEMA:
                conn.execute(statement)
            # a process still holding an older snapshot must not apply it: applied = the log's end
            end = conn.execute("SELECT coalesce(max(seq), 0) FROM ncmflow_changes").fetchone()[0]
            conn.execute("INSERT INTO ncmflow_changes(k) SELECT k FROM documents")
            conn.executemany("INSERT OR REPLACE INTO ncmflow_summary_meta VALUES (?, ?)",
                             [("version", VERSION), ("applied", end)])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _update(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the summary up to the documents as they are now (see the module docstring)."""
    conn.execute("BEGIN")  # a read snapshot: writers carry on meanwhile
    try:
        applied = conn.execute("SELECT value FROM ncmflow_summary_meta WHERE key = 'applied'").fetchone()[0]
        end = conn.execute("SELECT coalesce(max(seq), 0) FROM ncmflow_changes").fetchone()[0]
        rows, gone = [], []
        if end > applied:
            keys = [k for (k,) in conn.execute(
                "SELECT DISTINCT k FROM ncmflow_changes WHERE seq > ? AND seq <= ?", (applied, end))]
            for k in keys:
                found = conn.execute("SELECT rowid, v FROM documents WHERE k = ?", (k,)).fetchone()
                if found is None:
                    gone.append((k,))
                else:
                    rows.append((k, *_summary_row(found[0], _decode(path, found[1]))))
    finally:
        conn.execute("COMMIT")
    if end <= applied:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        now = conn.execute("SELECT value FROM ncmflow_summary_meta WHERE key = 'applied'").fetchone()[0]
        if now < end:  # else another process applied a newer state meanwhile
            conn.executemany("DELETE FROM ncmflow_records WHERE k = ?", gone)
            conn.executemany("INSERT OR REPLACE INTO ncmflow_records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            conn.execute("DELETE FROM ncmflow_changes WHERE seq <= ?", (end,))
            conn.execute("UPDATE ncmflow_summary_meta SET value = ? WHERE key = 'applied'", (end,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _decode(path: Path, value: bytes | str) -> dict[str, Any]:
    """A stored montydb document: BSON (maggma's default, ``use_bson``) or montydb's JSON."""
    import bson

    try:
        return json.loads(value) if isinstance(value, str) else bson.decode(bytes(value))
    except Exception as exc:  # noqa: BLE001 — InvalidBSON, JSONDecodeError …: bytes changed under SQLite
        raise corrupted(path, f"holds a document that does not decode ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def _summary_row(rowid: int, doc: dict[str, Any]) -> tuple:
    meta = doc.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    model, engine, done = meta.get("model"), meta.get("engine"), doc.get("completed_at")
    # MongoDB matches a list by its elements and orders types (null < numbers < strings): the
    # summary compares strings only, so such documents send the query the ordinary way
    irregular = (not isinstance(doc.get("metadata"), dict | None) or isinstance(model, list)
                 or isinstance(engine, list) or not isinstance(done, str | None))
    rec = record(doc)
    return (rowid, rec["kind"], model if isinstance(model, str) else None,
            engine if isinstance(engine, str) else None, done if isinstance(done, str) else None,
            int(irregular), json.dumps(rec))


def _select(conn: sqlite3.Connection, kind: str | None, model: str | None, engine: str | None,
            since: datetime | None) -> list[dict[str, Any]] | None:
    """The query, in the order of montydb's stable sort on completed_at (storage order for ties)."""
    where, args = ["1"], []
    for column, value in (("kind", kind), ("model", model), ("engine", engine)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if since:
        where.append("completed_at >= ?")
        args.append(since.isoformat())
    conn.execute("BEGIN")
    try:
        if conn.execute("SELECT 1 FROM ncmflow_records WHERE irregular LIMIT 1").fetchone():
            return None
        rows = conn.execute(f"SELECT record FROM ncmflow_records WHERE {' AND '.join(where)} "
                            "ORDER BY completed_at, doc_rowid", args).fetchall()
    finally:
        conn.execute("COMMIT")
    return [json.loads(r) for (r,) in rows]
