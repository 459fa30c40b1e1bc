"""Is an embedded (montydb) store readable? Checked before anything opens it.

montydb keeps each collection in one SQLite file (a table ``documents(k, v)``) and its
settings in two small files in the store folder: ``.monty.storage`` (the engine's name) and
``monty.storage.cfg`` (an INI file). Left to themselves, the libraries meet a damaged store
badly (measured): SQLite raises ``DatabaseError`` deep inside a query (a traceback), an empty
file becomes a new empty database (the evidence overwritten), maggma's connect rewrites both
settings files (a broken one silently replaced), and garbage in a page montydb does not read
goes unnoticed until a write makes it worse.

So a store is checked first, reading only: the settings files parse; each collection file
has SQLite's header, is as long as its header says, has montydb's table, and passes SQLite's
``quick_check``. Anything wrong is a ``ValueError`` naming the file and what is wrong (the
CLI prints it as one line, exit 2), and nothing has been written. ``quick_check`` reads the
whole file (~60 ms for 150 MB), so it is run once per change of a file: the files' identity
(size, mtime, ctime, inode) at their last clean check is kept in :data:`STAMPS`.

The standard library only (and ``diskfull``): ``ncmflow query`` checks without importing jobflow.
"""

from __future__ import annotations

import configparser
import contextlib
import errno
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from ncmflow.workflows.diskfull import DiskFull, nearly_full

MAGIC = b"SQLite format 3\x00"
WAL_MAGIC = (bytes.fromhex("377f0682"), bytes.fromhex("377f0683"))  # a write-ahead log's first bytes
ENGINE_FILE, CONFIG_FILE = ".monty.storage", "monty.storage.cfg"  # montydb.configure, montydb.storage
MONGO_VERSIONS = ("3.6", "4.0", "4.2", "4.4")  # montydb.configure.MONGO_COMPAT_VERSIONS
STAMPS = ".ncmflow_checked.json"  # in the store folder: collection files as of their last clean check
CORRUPT = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB (primary result codes)
IOERR, FULL = 10, 13  # SQLITE_IOERR, SQLITE_FULL
YOUNG, YOUNG_TRIES = 1.0, 10  # s: a collection file changed since may be being created
UNTOUCHED = "ncmflow left it untouched"
FRESH = f"{UNTOUCHED}: fix it, or delete it and ncmflow writes a fresh one"


def is_corruption(exc: sqlite3.Error) -> bool:
    """An SQLite error saying the file is damaged (not: locked, read-only, missing …)."""
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF in CORRUPT


def sqlite_error(exc: sqlite3.Error, path: Path, writing: bool = True) -> Exception | None:
    """What an SQLite error on the store file ``path`` says, as one line naming it: a damaged file
    (ValueError) or a full disk (``DiskFull``: SQLite rolled the write back); None for others."""
    if is_corruption(exc):
        return corrupted(path, f"is corrupted (SQLite: {exc})")
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    # SQLITE_FULL; or SQLITE_IOERR (SHMSIZE: its shared-memory file not grown) on a full disk
    if code == FULL or (code == IOERR and nearly_full(path.parent)):
        if writing:
            return DiskFull(errno.ENOSPC, path, "SQLite rolled this write back, every document written "
                                                "before is kept: free space and rerun")
        return DiskFull(errno.ENOSPC, path, "SQLite needs room beside it (its -wal and -shm files) even "
                                            "to read: free space and rerun", doing="reading")
    return None


def corrupted(path: Path, what: str, todo: str = "restore it from a backup or move it aside") -> ValueError:
    """The one-line error of a damaged store file."""
    return ValueError(f"store file {path} {what}; {UNTOUCHED}: {todo}")


def check_store(folder: Path, database: str, lock: Path | None = None) -> None:
    """Raise ValueError naming the first damaged file of the embedded store in ``folder``.

    ``lock``: the file whose flock writers of the settings files hold (maggma's connect rewrites
    them: read unlocked, one may be seen half written)."""
    folder = Path(folder)
    with _locked(lock):
        check_settings(folder)
    stamps = _read_stamps(folder)
    fresh = {}
    db = folder / database
    for path in sorted(db.glob("*.collection")) if db.is_dir() else []:
        stamp = _stamp(path)
        if check_collection(path, thorough=stamps.get(path.name) != stamp):
            fresh[path.name] = _stamp(path)  # after the check: a reader may have checkpointed the WAL
        else:
            fresh[path.name] = stamp
    if fresh != stamps:
        _write_stamps(folder, fresh)


def check_settings(folder: Path) -> None:
    """montydb's two settings files, when present, are what montydb writes for SQLite.

    An empty one passes: maggma truncates then writes them (a kill or a full disk in between
    leaves them empty), they hold nothing to recover, and its connect writes them again."""
    engine, config = folder / ENGINE_FILE, folder / CONFIG_FILE
    if engine.is_file() and engine.stat().st_size:
        text = _text(engine)
        if text.strip() != "sqlite":
            said = repr(text.strip()[:40]) if text.strip() else "nothing"
            raise ValueError(f"montydb settings file {engine} names {said}, not montydb's 'sqlite' storage; "
                             f"{FRESH}")
    if not config.is_file() or not config.stat().st_size:
        return
    parser = configparser.ConfigParser()
    try:
        parser.read_string(_text(config), str(config))
    except configparser.Error as exc:
        said = str(exc).splitlines()[0].rstrip(".")
        raise ValueError(f"montydb settings file {config} does not parse: {said}; {FRESH}") from None
    problem = None
    if not parser.has_section("sqlite"):
        problem = "has no [sqlite] section"
    elif (version := parser.get("sqlite", "mongo_version", fallback="4.0")) not in MONGO_VERSIONS:
        problem = f"names an unknown mongo_version {version!r}"
    if problem:
        raise ValueError(f"montydb settings file {config} {problem}; {FRESH}")


def check_collection(path: Path, thorough: bool = True) -> bool:
    """Raise ValueError if the montydb collection file ``path`` is damaged; read only.

    ``thorough``: SQLite's ``quick_check`` too (reads every page). Returns whether the file was
    checked thoroughly (False also when SQLite could not be asked: locked, unreadable …).

    montydb creates a collection as an empty file, then SQLite's header, then its table: a file
    changed in the last seconds that is empty or has no table yet is looked at again for a while
    before it is called damaged."""
    for _ in range(YOUNG_TRIES):
        try:
            return _check_collection(path, thorough, final=False)
        except Unfinished:
            if time.time() - path.stat().st_mtime > YOUNG:
                break
            time.sleep(YOUNG / YOUNG_TRIES)
    return _check_collection(path, thorough, final=True)


class Unfinished(ValueError):
    """An empty collection file, or one without its table: maybe being created right now."""


def _unfinished(path: Path, what: str, final: bool) -> ValueError:
    return corrupted(path, what) if final else Unfinished(what)


def _check_collection(path: Path, thorough: bool, final: bool) -> bool:
    size = path.stat().st_size
    wal = path.with_name(f"{path.name}-wal")
    # with a write-ahead log left (a checkpoint cut short) the file may be short: SQLite recovers it
    logged = wal.is_file() and wal.stat().st_size > 0
    if size == 0 and not logged:
        raise _unfinished(path, "is empty (0 bytes), not an SQLite database", final)
    if logged:
        with open(wal, "rb") as handle:  # SQLite would discard a log it does not recognise, unsaid
            if handle.read(4) not in WAL_MAGIC:
                raise corrupted(wal, "is not an SQLite write-ahead log (SQLite would discard it unsaid)",
                                "move it aside: SQLite reads nothing in it")
    with open(path, "rb") as handle:
        header = handle.read(100)
    if size and (len(header) < 100 or not header.startswith(MAGIC)):
        raise corrupted(path, "is not an SQLite database (its first bytes are not SQLite's header)")
    if not logged and (short := _short(path)):
        raise corrupted(path, short)
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)) as conn:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'documents'"
                                ).fetchone():
                raise _unfinished(path, "has no montydb 'documents' table: not a montydb collection", final)
            if not thorough:
                return False
            found = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.Error as exc:
        if is_corruption(exc):
            raise corrupted(path, f"is corrupted (SQLite: {exc})") from None
        return False  # not a verdict on the file: montydb will say what it is
    if found != "ok":  # "*** in database main ***\nPage 3: btreeInitPage() returns error code 11"
        said = [line for line in found.splitlines() if not line.startswith("***")] or [found]
        raise corrupted(path, f"is corrupted (SQLite's quick_check: {said[0]})")
    return True


def _short(path: Path) -> str | None:
    """How the file is shorter than its header says (truncated), or None.

    A checkpoint writes the header (page 1) before the pages that lengthen the file, with its
    write-ahead log still there: such a moment is looked at again, a truncation stays."""
    said = None
    for _ in range(3):
        with open(path, "rb") as handle:
            header = handle.read(100)
        size = path.stat().st_size
        wal = path.with_name(f"{path.name}-wal")
        if wal.is_file() and wal.stat().st_size:
            return None
        page = int.from_bytes(header[16:18], "big")
        page = 65536 if page == 1 else page
        pages = int.from_bytes(header[28:32], "big")  # valid when written by the same change (24, 92)
        if header[24:28] == header[92:96] and pages * page > size:
            said = f"is truncated: {size} bytes of the {pages * page} its header gives"
        elif page and size % page:
            said = f"is damaged: {size} bytes is not a whole number of {page}-byte pages"
        else:
            return None
        time.sleep(0.05)
    return said


def _text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ValueError(f"montydb settings file {path} is not text ({len(data)} bytes of binary); "
                         f"{FRESH}") from None


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _read_stamps(folder: Path) -> dict:
    try:
        stamps = json.loads((folder / STAMPS).read_text())
    except (OSError, ValueError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def _write_stamps(folder: Path, stamps: dict) -> None:
    """Best effort (a read-only folder, a full disk: the next open checks again)."""
    part = folder / f"{STAMPS}.{os.getpid()}.part"
    try:
        part.write_text(json.dumps(stamps))
        part.replace(folder / STAMPS)
    except OSError:
        with contextlib.suppress(OSError):
            part.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(lock: Path | None) -> Iterator[None]:
    """``lock``'s flock for the block; without it where the lock cannot be opened (read-only)."""
    try:
        handle = open(lock, "a") if lock is not None else None  # noqa: SIM115 — closed below
    except OSError:
        handle = None
    try:
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        if handle is not None:
            handle.close()  # releases the flock
