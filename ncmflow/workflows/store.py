"""Where results live: a jobflow JobStore, chosen by one rule (:func:`resolve_store`).

Order of precedence: ``--store`` (a jobflow store file, .yaml/.json — or a jobflow config,
whose ``JOB_STORE`` is used — or a folder for an embedded store) → the user's jobflow
configuration (``JOBFLOW_CONFIG_FILE`` if set, and then it must exist; else
``~/.jobflow.yaml``) with a ``JOB_STORE``, MongoDB in production → an embedded montydb
(sqlite) store in ``./ncmflow_data``, created on first use. The resolved location is an
absolute path: a submission pins it, so its batch jobs (other folders, maybe another
environment) collect into the very store a local run would use. Large arrays go to the
``data`` additional store, never into the documents (MongoDB's 16 MB limit).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ~1 s to import: imported where a store is opened, so `ncmflow query` can do without
    from jobflow import JobStore
    from maggma.core import Store

DEFAULT_DIR = Path("ncmflow_data")
DATABASE, OUTPUTS = "ncmflow", "outputs"  # the embedded store's montydb database and job-output collection
CONNECT_LOCK = ".connect.lock"
WRITE_LOCK = ".write.lock"  # writers of one embedded store, across worker processes
FLOWS_COLLECTION = "ncmflow_flows"
STORE_FILES = (".yaml", ".yml", ".json")  # a store given as a file; anything else is a folder


def embedded_store(folder: Path) -> JobStore:
    """montydb on disk: a real embedded engine speaking MongoDB's query language; its files are
    checked first (``storecheck``): a damaged one is a ValueError naming it, and is left as it is."""
    from jobflow import JobStore

    from ncmflow.workflows.blobstore import FileMontyStore, KeyedMontyStore
    from ncmflow.workflows.storecheck import check_store

    folder = embedded_folder(folder)
    check_store(folder, DATABASE, lock=folder / CONNECT_LOCK)  # a damaged file: one line, nothing written
    common = {"database_path": str(folder.resolve()), "database_name": DATABASE, "storage": "sqlite"}
    # blobs (trajectories, NEB images and forces) are read and written by key in one row
    data = KeyedMontyStore(f"{OUTPUTS}_data", key="blob_uuid", **common)
    return JobStore(FileMontyStore(OUTPUTS, key="uuid", **common), additional_stores={"data": data})


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


@dataclass(frozen=True)
class StoreLocation:
    """Where results live, resolved once: an absolute path, the same store from any folder.

    ``str(location)`` is what batch jobs are given (``--store`` of a submission): resolved
    again there, from another folder and without the submitting shell's environment, it is
    the same location.
    """

    path: Path  # absolute: an embedded store's folder, or a store file / jobflow config (its JOB_STORE)
    embedded: bool
    source: str = field(default="--store", compare=False)  # how it was chosen, for messages

    def __str__(self) -> str:
        return str(self.path)

    @property
    def run_dir(self) -> Path:
        """Where jobs run here compute (``runs/<uuid>``): the embedded store's folder, else
        ./ncmflow_data."""
        return self.path if self.embedded else DEFAULT_DIR.resolve()


def resolve_store(location: str | Path | StoreLocation | None = None) -> StoreLocation:
    """The one rule for where results live (module docstring), without importing jobflow.

    An explicit location wins: a .yaml/.json file (a jobflow store spec, or a jobflow config
    whose JOB_STORE is used) or a folder (embedded montydb, created on first use). Else the
    user's jobflow config: ``JOBFLOW_CONFIG_FILE`` if set — a missing file is an error naming
    it, never a silent fallback — else ``~/.jobflow.yaml`` if it exists. Else ./ncmflow_data.
    """
    if isinstance(location, StoreLocation):
        return location
    if location is not None and str(location):
        path = Path(location).expanduser()
        if path.suffix.lower() in STORE_FILES:
            if not path.is_file():
                raise ValueError(f"store file {path} does not exist")
            return StoreLocation(path.resolve(), embedded=False)
        if path.exists() and not path.is_dir():
            raise ValueError(f"store path {path} is a file, not a folder: pass a folder or a store .yaml")
        return StoreLocation(path.resolve(), embedded=True)
    if env := os.environ.get("JOBFLOW_CONFIG_FILE"):
        path = Path(env).expanduser()
        if not path.is_file():
            raise ValueError(f"JOBFLOW_CONFIG_FILE names {env}, which does not exist: fix it, or unset it "
                             f"to use ~/.jobflow.yaml or ./{DEFAULT_DIR}")
        return StoreLocation(path.resolve(), embedded=False, source="JOBFLOW_CONFIG_FILE")
    if (home := Path.home() / ".jobflow.yaml").is_file():
        return StoreLocation(home.resolve(), embedded=False, source="~/.jobflow.yaml")
    return StoreLocation(DEFAULT_DIR.resolve(), embedded=True, source="default")


def embedded_location(location: str | Path | StoreLocation | None = None) -> Path | None:
    """The folder `get_store(location)` would open as an embedded montydb store, or None when
    the store comes from a store file or the user's jobflow config (MongoDB, usually).

    Decided without importing jobflow, so light commands (`ncmflow query`) can read the
    embedded store directly.
    """
    where = resolve_store(location)
    return where.path if where.embedded else None


def get_store(location: str | Path | StoreLocation | None = None) -> JobStore:
    """The JobStore at ``resolve_store(location)``, connected; bad locations raise one-line
    ValueErrors naming the file."""
    where = resolve_store(location)
    if where.embedded:
        store = embedded_store(where.path)
    else:
        store = _load_store_file(where.path, config=where.source != "--store")
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
        raise ValueError(f"cannot connect to the store {where}: {str(exc).splitlines()[0]}") from None
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


def _load_store_file(path: Path, config: bool = False) -> JobStore:
    """A jobflow store spec, or a jobflow config's JOB_STORE (which ``config`` files must have)."""
    from jobflow import JobStore
    from monty.serialization import loadfn

    def malformed(exc: Exception) -> ValueError:
        said = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        if isinstance(exc, UnicodeDecodeError):
            said = "binary data, not text"
        elif (mark := getattr(exc, "problem_mark", None)) is not None:  # YAML syntax (ruamel's, PyYAML's)
            said = f"not valid YAML at line {mark.line + 1} ({getattr(exc, 'problem', None) or said})"
        elif isinstance(exc, KeyError):
            said = f"no {exc.args[0]!r}: a field missing, or a store type jobflow does not know"
        return ValueError(f"malformed store config {path}: {said}")

    if path.is_file() and path.stat().st_size == 0:
        raise ValueError(f"store config {path} is empty")
    try:
        spec = loadfn(path)
    except Exception as exc:  # malformed YAML or JSON, binary file, unknown @class, …
        raise malformed(exc) from exc
    if isinstance(spec, dict) and "JOB_STORE" in spec:
        spec = spec["JOB_STORE"]
        if isinstance(spec, str):  # jobflow's JOB_STORE: a store file, relative to the config's folder
            return _load_store_file(path.parent / Path(spec).expanduser())
    elif config:
        raise ValueError(f"{path} has no JOB_STORE section")
    if not isinstance(spec, JobStore | dict) or (isinstance(spec, dict) and "docs_store" not in spec):
        raise ValueError(f"malformed store config {path}: no 'docs_store' (a jobflow store spec), nor "
                         "JOB_STORE (a jobflow config)")
    try:
        return spec if isinstance(spec, JobStore) else JobStore.from_dict_spec(spec)
    except Exception as exc:  # unknown store type, missing fields, …
        raise malformed(exc) from exc


def sibling_store(store: JobStore, collection: str) -> Store:
    """Another collection in the same database (flows, ingest log) whatever the backend."""
    from monty.json import MontyDecoder

    spec = store.docs_store.as_dict()
    spec["collection_name"] = collection
    spec["key"] = "key"
    sibling = MontyDecoder().process_decoded(spec)
    sibling.connect()
    return sibling


# --- runs that share a store: who writes when, and which study runs where -----------------------

if TYPE_CHECKING:
    from collections.abc import Callable


def store_folder(store: JobStore) -> Path | None:
    """The folder of an embedded montydb store on disk (where its lock files live), else None."""
    path = getattr(store.docs_store, "database_path", None)
    return None if path in (None, ":memory:") else Path(path)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM arriving in the block take effect at its end (in the main
    thread; elsewhere Python handles no signal): a store write is never cut in two by them."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda number, _: caught.append(number))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)  # as if it came now: KeyboardInterrupt, or the process ends


@contextlib.contextmanager
def write_lock(folder: Path | None) -> Iterator[None]:
    """One writer at a time on the embedded store in ``folder`` (all its writers take it), not cut
    by a signal; ``folder`` None (MongoDB, memory): the latter only."""
    with deferred_signals(), file_lock(folder / WRITE_LOCK) if folder else contextlib.nullcontext():
        yield


def lock_writes(store: JobStore) -> JobStore:
    """From now on ``store.update`` (a job's output) runs under :func:`write_lock` and writes the
    large arrays (additional stores) before the document pointing at them: jobflow writes the
    document first, so a kill -9 between the two left a finished job whose arrays are missing;
    now it leaves arrays no document points at, and the job runs again."""
    import functools

    if store.__dict__.get("_ncmflow_locked"):
        return store
    update, folder, docs = store.update, store_folder(store), store.docs_store

    @functools.wraps(update)
    def locked_update(*args: object, **kwargs: object) -> object:
        held: list[tuple[tuple, dict]] = []
        with write_lock(folder):
            own = docs.__dict__.get("update")
            docs.update = lambda *a, **k: held.append((a, k))
            try:
                result = update(*args, **kwargs)
            finally:
                docs.__dict__.pop("update") if own is None else setattr(docs, "update", own)
            for a, k in held:
                docs.update(*a, **k)
        return result

    store.update, store._ncmflow_locked = locked_update, True
    return store


@contextlib.contextmanager
def locked_writes(store: JobStore) -> Iterator[JobStore]:
    """:func:`lock_writes` for the block only (a run in this process); nested blocks add nothing."""
    if store.__dict__.get("_ncmflow_locked"):
        yield store
        return
    own = store.__dict__.get("update")
    try:
        yield lock_writes(store)
    finally:
        del store._ncmflow_locked
        store.__dict__.pop("update") if own is None else setattr(store, "update", own)


@contextlib.contextmanager
def study_lock(location: StoreLocation, key: str,
               waiting: Callable[[int | None], None] | None = None) -> Iterator[None]:
    """Run study ``key`` on the store at ``location`` in one process at a time.

    Embedded store: a lock file per study in its folder (``.study-<key>.lock``, holding its
    holder's pid). A second process on the study calls ``waiting(pid)`` once and waits for the
    first to end, however it ends (the kernel drops the lock of a process killed even by kill -9),
    then runs, reusing every job the first finished. Other studies take other locks and run at
    once; their writes are serialised by :func:`write_lock`.

    Any other store (MongoDB, from a store file or the jobflow config): no file is shared by every
    machine that may run the study, so nothing is locked. Two processes on one study then both
    compute the jobs not stored yet when they reach them; each (uuid, index) is upserted (one
    document per job, the last written — unless two upserts of one job race: without a unique
    index MongoDB may insert both); if both start before the study's flow is first saved, each
    saves and runs its own flow (other uuids) and the store holds the study's outputs twice. Run
    one process per study there (``ncmflow submit``: jobflow-remote's job states keep that rule).
    """
    import time

    if not location.embedded:
        yield
        return
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
    with open(embedded_folder(location.path) / f".study-{name}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            for _ in range(20):  # its holder writes its pid right after taking it
                handle.seek(0)
                if (pid := handle.read().strip()).isdigit():
                    break
                time.sleep(0.05)
            if waiting is not None:
                waiting(int(pid) if pid.isdigit() else None)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")  # appended ("a+"): at 0
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
