"""Where results live: a jobflow JobStore.

Order of precedence: ``--store`` (a jobflow store file, .yaml/.json, or a folder for an
embedded store) → the user's jobflow configuration (``JOBFLOW_CONFIG_FILE`` or
``~/.jobflow.yaml`` with a ``JOB_STORE``, MongoDB in production) → an embedded montydb
(sqlite) store in ``./ncmflow_data``, created on first use. Large arrays go to the ``data``
additional store, never into the documents (MongoDB's 16 MB limit).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ~1 s to import: imported where a store is opened, so `ncmflow query` can do without
    from jobflow import JobStore
    from maggma.core import Store

DEFAULT_DIR = Path("ncmflow_data")
DATABASE, OUTPUTS = "ncmflow", "outputs"  # the embedded store's montydb database and job-output collection
CONNECT_LOCK = ".connect.lock"
FLOWS_COLLECTION = "ncmflow_flows"


def embedded_store(folder: Path) -> JobStore:
    """montydb on disk: a real embedded engine speaking MongoDB's query language."""
    from jobflow import JobStore
    from maggma.stores import MontyStore

    from ncmflow.workflows.blobstore import KeyedMontyStore

    folder = embedded_folder(folder)
    common = {"database_path": str(folder.resolve()), "database_name": DATABASE, "storage": "sqlite"}
    # blobs (trajectories, NEB images and forces) are read and written by key in one row
    data = KeyedMontyStore(f"{OUTPUTS}_data", key="blob_uuid", **common)
    return JobStore(MontyStore(OUTPUTS, key="uuid", **common), additional_stores={"data": data})


def embedded_folder(folder: str | Path) -> Path:
    """The folder of an embedded store, created if missing; a file there is a one-line error."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"store path {folder} is a file, not a folder: pass a folder or a store .yaml")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the store folder {folder}: {exc.strerror}") from None
    return folder


def embedded_location(location: str | Path | None = None) -> Path | None:
    """The folder `get_store(location)` would open as an embedded montydb store, or None when
    the store comes from a store file or the user's jobflow config (MongoDB, usually).

    Decided without importing jobflow, so light commands (`ncmflow query`) can read the
    embedded store directly.
    """
    if location is not None:
        path = Path(location)
        return None if path.suffix in (".yaml", ".yml", ".json") else path
    return None if _user_config() is not None else DEFAULT_DIR


def _user_config() -> Path | None:
    env = os.environ.get("JOBFLOW_CONFIG_FILE")
    path = Path(env) if env else Path.home() / ".jobflow.yaml"
    return path if path.is_file() else None


def get_store(location: str | Path | None = None) -> JobStore:
    """The JobStore to use, connected; bad locations raise one-line ValueErrors."""
    if location is not None:
        path = Path(location)
        if path.suffix in (".yaml", ".yml", ".json"):
            if not path.is_file():
                raise ValueError(f"store file {path} does not exist")
            store = _load_store_file(path)
        else:
            store = embedded_store(path)
    elif (config := _user_config()) is not None:
        store = _load_store_file(config, key="JOB_STORE")
    else:
        store = embedded_store(DEFAULT_DIR)
    folder = getattr(store.docs_store, "database_path", None)  # a MontyStore on disk
    try:
        # maggma's MontyStore rewrites its montydb config file on every connect: two processes
        # connecting at once (a collect batch job and `ncmflow status`) read it half-written
        if folder in (None, ":memory:"):
            store.connect()
        else:
            Path(folder).mkdir(parents=True, exist_ok=True)
            with file_lock(Path(folder) / CONNECT_LOCK):
                store.connect()
    except Exception as exc:  # noqa: BLE001 — any backend failure means the store is unusable
        raise ValueError(f"cannot connect to the store: {str(exc).splitlines()[0]}") from None
    return store


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (fcntl), held for the ``with`` block."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load_store_file(path: Path, key: str | None = None) -> JobStore:
    from jobflow import JobStore
    from monty.serialization import loadfn

    try:
        spec = loadfn(path)
        if key is not None:
            if key not in spec:
                raise ValueError(f"{path} has no {key} section")
            spec = spec[key]
        return spec if isinstance(spec, JobStore) else JobStore.from_dict_spec(spec)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 — malformed YAML, unknown store type, …
        raise ValueError(f"malformed store config {path}: {str(exc).splitlines()[0]}") from None


def sibling_store(store: JobStore, collection: str) -> Store:
    """Another collection in the same database (flows, ingest log) whatever the backend."""
    from monty.json import MontyDecoder

    spec = store.docs_store.as_dict()
    spec["collection_name"] = collection
    spec["key"] = "key"
    sibling = MontyDecoder().process_decoded(spec)
    sibling.connect()
    return sibling
