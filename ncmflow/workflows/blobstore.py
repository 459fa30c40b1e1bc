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

Both collections of the embedded store are :class:`FileMontyStore` s: SQLite's errors name
their file — a damaged file is a ValueError, a full disk a ``DiskFull`` (SQLite rolls the
write back: every document written before is kept, measured) — and a connect leaves
montydb's settings files alone when they already say what maggma would write (maggma
rewrites them on every connect: a full disk or a kill between its truncation and its write
left them empty).
"""

from __future__ import annotations

import configparser
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from maggma.stores import MontyStore
from monty.json import jsanitize

from ncmflow.workflows.storecheck import CONFIG_FILE, ENGINE_FILE, sqlite_error

TABLE = "documents"  # montydb.storage.sqlite.SQLITE_RECORD_TABLE


class FileMontyStore(MontyStore):
    """A ``MontyStore`` on disk whose SQLite errors name its file (see the module docstring)."""

    @property
    def path(self) -> Path:
        return Path(self.database_path) / self.database_name / f"{self.collection_name}.collection"

    @contextlib.contextmanager
    def _named(self, writing: bool = False) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            said = sqlite_error(exc, self.path, writing) if self.storage == "sqlite" else None
            if said is None:
                raise
            raise said from exc

    def connect(self, force_reset: bool = False) -> None:
        if self.database_path == ":memory:" or (self._coll and not force_reset) or not self._settled():
            return super().connect(force_reset)
        from montydb import MontyClient  # the settings as maggma would write them: not rewritten

        self._coll = MontyClient(self.database_path, **self.client_kwargs)[self.database_name][
            self.collection_name]
        return None

    def _settled(self) -> bool:
        """montydb's settings files say what maggma's connect would write into them."""
        folder = Path(self.database_path)
        parser = configparser.ConfigParser()
        try:
            engine = (folder / ENGINE_FILE).read_text().strip()
            parser.read_string((folder / CONFIG_FILE).read_text())
            found = dict(parser.items(self.storage))
        except (OSError, UnicodeDecodeError, configparser.Error):
            return False
        wanted = {k: ("yes" if v else "") if isinstance(v, bool) else str(v)
                  for k, v in self.storage_kwargs.items()}
        return engine == self.storage and all(found.get(k) == v for k, v in wanted.items())

    def query(self, *args: Any, **kwargs: Any) -> Iterator[dict]:
        with self._named():
            yield from super().query(*args, **kwargs)

    def update(self, docs: list[dict] | dict, key: list | str | None = None) -> None:
        with self._named(writing=True):
            return super().update(docs, key)

    def count(self, *args: Any, **kwargs: Any) -> int:
        with self._named():
            return super().count(*args, **kwargs)

    def distinct(self, *args: Any, **kwargs: Any) -> list:
        with self._named():
            return super().distinct(*args, **kwargs)

    def remove_docs(self, *args: Any, **kwargs: Any) -> None:
        with self._named(writing=True):
            return super().remove_docs(*args, **kwargs)


class KeyedMontyStore(FileMontyStore):
    """A ``MontyStore`` whose documents live under ``_id`` = their (single-field) key."""

    def update(self, docs: list[dict] | dict, key: list | str | None = None) -> None:
        if (key or self.key) != self.key or not isinstance(self.key, str) or self.validator:
            return super().update(docs, key)
        from montydb.errors import DuplicateKeyError

        for doc in docs if isinstance(docs, list) else [docs]:
            doc = jsanitize(doc, allow_bson=True)
            doc["_id"] = str(doc[self.key])
            with self._named(writing=True):
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
        except sqlite3.Error as exc:
            if (said := sqlite_error(exc, path, writing=False)) is not None:
                raise said from exc
            return None  # read-only, locked …: maggma's query says what it is
        if len(rows) != len(encoded):
            return None
        options = self._collection.codec_options
        try:
            docs = {encoded[bytes(k)]: bson.document_decode(v, codec_options=options) for k, v in rows}
        except Exception as exc:  # noqa: BLE001 — InvalidBSON …: bytes changed under SQLite
            raise ValueError(f"store file {path} holds a blob that does not decode ({type(exc).__name__}): "
                             "restore it from a backup") from None
        return [docs[k] for k in keys]

