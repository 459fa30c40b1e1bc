"""The embedded store's data collection, where a blob is read and written by its key in one row.

montydb answers every query by decoding every document of the collection (it has no indexes),
and maggma's ``MontyStore.update`` finds the document to replace with such a query. jobflow
writes each blob once and reads blobs only as ``{"blob_uuid": {"$in": [...]}}``, once per
resolved reference — so with montydb every job paid a scan of all stored trajectories, images
and forces, growing with the store. Measured (60 blobs of a 40-frame, 109-atom trajectory,
2026-12-02): 0.46 s a lookup, 0.53 s a write; ``benchmarks/store_blobs.py`` prints both ways.

Here a blob is stored under montydb's ``_id`` = its ``blob_uuid``: a new blob is one INSERT,
and a lookup by key reads just those rows of montydb's SQLite table (``documents(k, v)``,
``k`` = montydb's encoding of ``_id``) and decodes them with montydb's own codec. Anything
else — other criteria, sorting, a key not found that way (a blob written by a plain
``MontyStore``, e.g. an older store) — takes maggma's ordinary query, so nothing stored is
ever missed; the fast path is only taken when it finds every requested key.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from maggma.stores import MontyStore
from monty.json import jsanitize

TABLE = "documents"  # montydb.storage.sqlite.SQLITE_RECORD_TABLE


class KeyedMontyStore(MontyStore):
    """A ``MontyStore`` whose documents live under ``_id`` = their (single-field) key."""

    def update(self, docs: list[dict] | dict, key: list | str | None = None) -> None:
        if (key or self.key) != self.key or not isinstance(self.key, str) or self.validator:
            return super().update(docs, key)
        from montydb.errors import DuplicateKeyError

        for doc in docs if isinstance(docs, list) else [docs]:
            doc = jsanitize(doc, allow_bson=True)
            doc["_id"] = str(doc[self.key])
            try:
                self._collection.insert_one(doc)
            except DuplicateKeyError:  # the same key written again: replace that one row
                self._collection.replace_one({"_id": doc["_id"]}, doc)
        return None

    def query(self, criteria: dict | None = None, properties: dict | list | None = None,
              sort: dict | None = None, skip: int = 0, limit: int = 0) -> Iterator[dict]:
        keys = self._keys(criteria)
        found = self._read(keys) if keys is not None and not (sort or skip or limit) else None
        if found is None:
            yield from super().query(criteria=criteria, properties=properties, sort=sort, skip=skip,
                                     limit=limit)
            return
        wanted = list(properties) if isinstance(properties, list | tuple) else (
            [k for k, v in properties.items() if v] if isinstance(properties, dict) else None)
        for doc in found:
            yield doc if wanted is None else {k: doc[k] for k in ("_id", *wanted) if k in doc}

    def _keys(self, criteria: dict | None) -> list[str] | None:
        """The keys of ``{key: value}`` or ``{key: {"$in": [...]}}`` criteria, else None."""
        if not isinstance(self.key, str) or not criteria or set(criteria) != {self.key}:
            return None
        value = criteria[self.key]
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict) and set(value) == {"$in"}:
            keys = value["$in"]
            return list(dict.fromkeys(keys)) if all(isinstance(k, str) for k in keys) else None
        return None

    def _file(self) -> Path | None:
        if self.storage != "sqlite" or self.database_path == ":memory:":
            return None
        path = Path(self.database_path) / self.database_name / f"{self.collection_name}.collection"
        return path if path.is_file() else None

    def _read(self, keys: list[str]) -> list[dict] | None:
        """Documents stored under ``_id`` in ``keys`` (in that order), or None if any is not."""
        from montydb.types import bson

        path = self._file()
        if path is None or not keys:
            return None if path is None else []
        encoded = {bson.id_encode(k): k for k in keys}
        try:
            uri = f"{path.as_uri()}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
                marks = ",".join("?" * len(encoded))
                sql = f"SELECT k, v FROM {TABLE} WHERE k IN ({marks})"
                rows = conn.execute(sql, list(encoded)).fetchall()
        except sqlite3.Error:
            return None
        if len(rows) != len(encoded):
            return None
        options = self._collection.codec_options
        docs = {encoded[bytes(k)]: bson.document_decode(v, codec_options=options) for k, v in rows}
        return [docs[k] for k in keys]

