"""A damaged embedded store: every command that opens it says one line naming the file, exit 2,
no traceback, and writes nothing into it (the damaged bytes are there to be recovered).

Faults: garbage over a collection file, in its header, in a page in the middle, in its last
page; the file truncated, or empty; the data collection damaged; montydb's settings files
broken; a write-ahead log of garbage. Commands: `query` (reads SQLite itself, through the
summary), `show`, `compare`, `study` (which must stop before computing anything).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncmflow.analysis.records import query_records
from ncmflow.cli import app
from ncmflow.workflows import storecheck
from ncmflow.workflows.store import DATABASE, get_store
from ncmflow.workflows.storecheck import STAMPS, check_store

runner = CliRunner()
PAGE = 4096
UUID = str(uuid.UUID(int=1))


def job(i: int) -> dict:
    """A relaxation's document as jobflow stores it (big enough to fill several pages)."""
    sites = [{"xyz": [0.1 * k, 0.2, 0.3], "species": "Ni"} for k in range(40)]
    return {"uuid": str(uuid.UUID(int=i + 1)), "index": 1, "name": "relax_start",
            "completed_at": f"2026-03-01T00:{i:02d}:00",
            "metadata": {"model": "bulk", "engine": "mlip", "site": i, "stage": "relax start"},
            "output": {"@class": "ForceFieldTaskDocument", "output": {"energy": -500.0 - i},
                       "structure": {"sites": sites}}}


@pytest.fixture(scope="module")
def healthy(tmp_path_factory) -> Path:
    """A store folder as a study leaves it: documents, blobs, the query summary built."""
    folder = tmp_path_factory.mktemp("healthy") / "db"
    store = get_store(folder)
    store.docs_store.update([job(i) for i in range(24)])
    store.additional_stores["data"].update([{"blob_uuid": f"b{i}", "data": list(range(3000))}
                                            for i in range(6)])
    assert len(query_records(folder)) == 24
    return folder


def overwrite(path: Path, offset: int, size: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset:offset + size] = os.urandom(size)
    path.write_bytes(bytes(data))


def outputs(db: Path) -> Path:
    return db / DATABASE / "outputs.collection"


def data(db: Path) -> Path:
    return db / DATABASE / "outputs_data.collection"


# fault: (damage the store folder, the file named, what the line says)
FAULTS = {
    "garbage over the file": (lambda db: overwrite(outputs(db), 0, outputs(db).stat().st_size),
                              "outputs.collection", "is not an SQLite database"),
    "garbage in the header": (lambda db: overwrite(outputs(db), 0, 100), "outputs.collection",
                              "is not an SQLite database"),
    "garbage in a middle page": (lambda db: overwrite(outputs(db), 2 * PAGE, 3000), "outputs.collection",
                                 "is corrupted"),
    "garbage in the last page": (lambda db: overwrite(outputs(db), outputs(db).stat().st_size - PAGE, PAGE),
                                 "outputs.collection", "is corrupted"),
    "truncated to half": (lambda db: os.truncate(outputs(db), outputs(db).stat().st_size // 2),
                          "outputs.collection", "is truncated"),
    "truncated mid-page": (lambda db: os.truncate(outputs(db), 1000), "outputs.collection", "is truncated"),
    "empty": (lambda db: os.truncate(outputs(db), 0), "outputs.collection", "is empty (0 bytes)"),
    "data: garbage in a page": (lambda db: overwrite(data(db), 3 * PAGE, 3000), "outputs_data.collection",
                                "is corrupted"),
    "data: truncated": (lambda db: os.truncate(data(db), data(db).stat().st_size // 2),
                        "outputs_data.collection", "is truncated"),
    "settings: binary garbage": (lambda db: overwrite(db / "monty.storage.cfg", 0, 64), "monty.storage.cfg",
                                 "is not text"),
    "settings: not INI": (lambda db: (db / "monty.storage.cfg").write_text("[sqlite\nuse_bson = yes\n"),
                          "monty.storage.cfg", "does not parse"),
    "settings: unknown mongo_version": (
        lambda db: (db / "monty.storage.cfg").write_text("[sqlite]\nuse_bson = yes\nmongo_version = 9\n"),
        "monty.storage.cfg", "unknown mongo_version"),
    "settings: another engine": (lambda db: (db / ".monty.storage").write_text("flatfile"), ".monty.storage",
                                 "names 'flatfile'"),
    "write-ahead log of garbage": (lambda db: (db / DATABASE / "outputs.collection-wal").write_bytes(
        os.urandom(8192)), "outputs.collection-wal", "is not an SQLite write-ahead log"),
}
COMMANDS = {
    "query": ["query"],
    "query --json": ["query", "--json"],
    "show": ["show", UUID],
    "compare": ["compare", "-o", "report"],
    "study": ["study", "--quick", "--models", "bulk", "--sites", "1", "-o", "report"],
}


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def damaged(healthy: Path, where: Path, fault: str) -> tuple[Path, dict[str, str]]:
    """A copy of the healthy store with the fault, found an hour later (a collection file changed
    in the last second may be one montydb is creating: the check waits for it a while)."""
    db = where / "db"
    shutil.copytree(healthy, db)
    FAULTS[fault][0](db)
    an_hour_ago = time.time() - 3600
    for path in db.rglob("*"):
        os.utime(path, (an_hour_ago, an_hour_ago))
    return db, digests(db)


@pytest.mark.parametrize("fault", FAULTS)
def test_every_command_says_one_line_naming_the_file_and_writes_nothing(healthy, tmp_path, monkeypatch,
                                                                        fault):
    monkeypatch.delenv("NCMFLOW_DEBUG", raising=False)
    _, name, said = FAULTS[fault]
    for command, args in COMMANDS.items():
        where = tmp_path / command.replace(" ", "_")
        where.mkdir()
        db, before = damaged(healthy, where, fault)
        monkeypatch.chdir(where)
        result = runner.invoke(app, [*args, "--store", "db"])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, (command, result.output)
        assert len(lines) == 1 and lines[0].startswith("error: "), (command, result.output)
        assert f"{db.resolve()}" in lines[0] and name in lines[0] and said in lines[0], (command, lines[0])
        after = digests(db)
        # SQLite's read-only connection may add its empty -wal and -shm beside a collection
        assert {k: after[k] for k in before} == before, command
        assert not (where / "report").exists() and not (db / "runs").exists(), command  # nothing computed


def test_the_real_command_prints_no_traceback(healthy, tmp_path):
    """As a user sees it: `ncmflow query` (SQLite read directly) and `ncmflow show` (montydb)."""
    db, before = damaged(healthy, tmp_path, "garbage in a middle page")
    for args in (["query"], ["show", UUID]):
        done = subprocess.run([sys.executable, "-m", "ncmflow", *args, "--store", "db"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        line, = done.stderr.strip().splitlines()
        assert line.startswith("error: store file ") and "outputs.collection is corrupted" in line
    assert {k: v for k, v in digests(db).items() if k in before} == before


def test_a_healthy_store_is_checked_once_per_change_of_its_files(healthy, tmp_path, monkeypatch):
    db = tmp_path / "db"
    shutil.copytree(healthy, db)
    (db / STAMPS).unlink(missing_ok=True)
    checks = []
    real = storecheck.check_collection

    def counted(path: Path, thorough: bool = True) -> bool:
        checks.append((path.name, thorough))
        return real(path, thorough)

    monkeypatch.setattr(storecheck, "check_collection", counted)
    check_store(db, DATABASE)
    assert all(thorough for _, thorough in checks) and len(checks) == 2
    checks.clear()
    check_store(db, DATABASE)  # nothing changed: SQLite's quick_check is not run again
    assert checks == [("outputs.collection", False), ("outputs_data.collection", False)]
    checks.clear()
    overwrite(outputs(db), 2 * PAGE, 3000)  # changed since: checked again, and found damaged
    with pytest.raises(ValueError, match=r"outputs\.collection is corrupted"):
        check_store(db, DATABASE)


def test_a_connect_leaves_valid_settings_alone_and_rewrites_empty_ones(healthy, tmp_path):
    db = tmp_path / "db"
    shutil.copytree(healthy, db)
    settings = [db / ".monty.storage", db / "monty.storage.cfg"]
    before = [p.stat().st_mtime_ns for p in settings]
    assert get_store(db).docs_store.count() == 24
    assert [p.stat().st_mtime_ns for p in settings] == before  # maggma rewrote them on every connect
    for path in settings:  # what a kill or a full disk amid maggma's rewrite left: nothing to recover
        path.write_bytes(b"")
    assert get_store(db).docs_store.count() == 24
    assert (db / ".monty.storage").read_text() == "sqlite" and "[sqlite]" in settings[1].read_text()


def test_a_log_left_by_a_killed_writer_is_no_damage(healthy, tmp_path):
    """A writer killed before its checkpoint leaves a write-ahead log with committed documents,
    and a database file shorter than those: SQLite recovers them, the check must not refuse."""
    db = tmp_path / "db"
    shutil.copytree(healthy, db)
    code = ("import os, sqlite3, sys; from ncmflow.workflows.store import get_store\n"
            "docs = get_store(sys.argv[1]).docs_store\n"
            "conn = sqlite3.connect(sys.argv[2]); conn.execute('PRAGMA journal_mode=WAL')\n"
            "conn.execute('CREATE TABLE pad(x)'); conn.executemany('INSERT INTO pad VALUES (?)',"
            " [(os.urandom(3000),)] * 50); conn.commit()\n"
            "os._exit(0)  # no checkpoint\n")
    subprocess.run([sys.executable, "-c", code, str(db), str(outputs(db))], check=True, timeout=120)
    wal = outputs(db).with_name("outputs.collection-wal")
    assert wal.stat().st_size > 0
    (db / STAMPS).unlink(missing_ok=True)  # checked thoroughly, through the log
    check_store(db, DATABASE)
    assert get_store(db).docs_store.count() == 24
    with sqlite3.connect(outputs(db)) as conn:
        assert conn.execute("SELECT count(*) FROM pad").fetchone() == (50,)


def test_a_collection_being_created_is_waited_for(healthy, tmp_path):
    """montydb creates a collection as an empty file, then its table: a reader in between waits."""
    db = tmp_path / "db"
    shutil.copytree(healthy, db)
    fresh = db / DATABASE / "fresh.collection"
    fresh.write_bytes(b"")

    def create() -> None:
        time.sleep(0.3)
        with sqlite3.connect(fresh) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE documents(k text NOT NULL, v text NOT NULL, PRIMARY KEY(k))")
        conn.close()

    creator = threading.Thread(target=create)
    creator.start()
    started = time.perf_counter()
    check_store(db, DATABASE)
    creator.join()
    assert 0.2 < time.perf_counter() - started < 3
