"""Faults of a local `ncmflow study`, fast: Ctrl-C, two processes on one store, a kill amid a write.

The study runs on a toy engine registered here ("fault": relaxations that pause as
``NCMFLOW_FAULT_SLEEP`` says, a flat energy surface on which every NEB converges at once), here
or in `ncmflow` processes: this file is also their entry point (``python test_faults_local.py
study --engine fault …``), so spawned workers import it and know the engine too.
Real signals to process groups, worker processes, kill -9 and the real engine (CHGNet + D3, the
NEB resumed from its checkpoint): ``test_faults_slow.py``.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from jobflow import Maker, job
from pydantic import BaseModel
from pymatgen.core import Structure

from ncmflow.inputs.settings import PAPER
from ncmflow.workflows.engines import Engine, Tolerances, register
from ncmflow.workflows.neb import CiNebMaker

HERE = Path(__file__).resolve()
STUDY = ["study", "--engine", "fault", "--quick", "--models", "bulk", "--sites", "1"]
JOBS = 7  # two relaxations, two paths (interpolation + NEB each), the comparison
INTERRUPTED = "interrupted; run the same command again to resume"


def _pause(what: str) -> None:
    """Wait as long as NCMFLOW_FAULT_SLEEP (JSON: {stage: seconds}) says for ``what``, or raise
    the signal it names there ("SIGINT": Ctrl-C at that moment)."""
    said = json.loads(os.environ.get("NCMFLOW_FAULT_SLEEP", "{}")).get(what, 0)
    if isinstance(said, str):
        signal.raise_signal(getattr(signal, said))
        return
    deadline = time.monotonic() + said
    while time.monotonic() < deadline:
        time.sleep(0.05)


class Flat(Calculator):
    """E = 0, F = 0: every NEB converges at once (after a pause, if asked for)."""

    implemented_properties = ("energy", "free_energy", "forces")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        _pause("neb")
        self.results = {"energy": 0.0, "free_energy": 0.0, "forces": np.zeros((len(self.atoms), 3))}


class Relaxed(BaseModel):
    structure: Structure
    state: str = "successful"


@dataclass
class SlowRelax(Maker):
    """Says it started (a file in its run folder), pauses, returns its input as relaxed."""

    name: str = "slow relax"

    @job
    def make(self, structure: Structure) -> Relaxed:
        from jobflow import CURRENT_JOB

        Path("started").write_text(str(os.getpid()))
        _pause(CURRENT_JOB.job.metadata.get("stage", ""))
        return Relaxed(structure=structure)


def _never(*args, **kwargs):
    raise AssertionError("not used here")


register(Engine(
    name="fault", description="a slow relaxation, a flat surface (fault tests)",
    relax_maker=lambda settings=PAPER, relax_cell=False: SlowRelax(),
    static_maker=_never, neb_maker=lambda settings=PAPER, optimizer=None: CiNebMaker(
        engine="fault", settings=settings),
    write_inputs=_never, read_tolerances=lambda job, folder: Tolerances(0.0, 0),
    calculator=lambda settings=PAPER, stress=True: Flat()))


# --- helpers -------------------------------------------------------------------------------------


def ncmflow(folder: Path, *args: str, sleep: dict | None = None, **popen) -> subprocess.Popen:
    """`ncmflow ARGS` (with the toy engine) in ``folder``, its own process group, output piped;
    ``sleep``: {stage: seconds} ("relax start", "relax end", "neb": per force call)."""
    env = {**os.environ, "NCMFLOW_FAULT_SLEEP": json.dumps(sleep or {}), "NCMFLOW_TORCH_THREADS": "1",
           "HOME": str(folder), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    env.pop("JOBFLOW_CONFIG_FILE", None)
    return subprocess.Popen([sys.executable, str(HERE), *args], cwd=folder, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            **popen)


def wait_for(predicate, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def started(folder: Path) -> list[Path]:
    return sorted((folder / "ncmflow_data" / "runs").glob("*/started"))


def documents(folder: Path) -> list[tuple[str, int]]:
    """(uuid, index) of every job document in the store (duplicates kept)."""
    from ncmflow.workflows.store import get_store

    store = get_store(folder / "ncmflow_data")
    return sorted((d["uuid"], d["index"]) for d in store.query({}, properties=["uuid", "index"]))


def read_line(stream, timeout: float) -> str:
    """The next line of a subprocess's pipe, waiting at most ``timeout`` s for it."""
    import select

    if not select.select([stream], [], [], timeout)[0]:
        raise AssertionError(f"no line in {timeout} s")
    return stream.readline().strip()


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """Python's own Ctrl-C handler, whatever pytest was started with: a shell's background job
    (`make test &`) starts with SIGINT ignored, and Python then never raises KeyboardInterrupt
    (seen running `make test` in the background as another user)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture
def here(tmp_path, monkeypatch):
    """`ncmflow` run in this process, in ``tmp_path`` with its default store; returns invoke."""
    from typer.testing import CliRunner

    from ncmflow.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("JOBFLOW_CONFIG_FILE", raising=False)
    return lambda *args: CliRunner().invoke(app, list(args))


# --- Ctrl-C --------------------------------------------------------------------------------------


def test_ctrl_c_one_line_exit_130_and_the_rerun_resumes(tmp_path, monkeypatch, here):
    """In this process: a Ctrl-C while the second end point relaxes (its job raises SIGINT);
    real Ctrl-C to a process group, with worker processes too: test_faults_slow.py."""
    monkeypatch.setenv("NCMFLOW_FAULT_SLEEP", json.dumps({"relax end": "SIGINT"}))
    first = here(*STUDY, "--workers", "1")
    assert first.exit_code == 130, first.output
    assert first.stderr.strip() == INTERRUPTED and "Traceback" not in first.output
    assert len(documents(tmp_path)) == 1  # the finished relaxation, nothing half-written

    monkeypatch.setenv("NCMFLOW_FAULT_SLEEP", "{}")
    again = here(*STUDY, "--workers", "1")
    assert again.exit_code == 0, again.output
    assert f"{JOBS - 1} jobs ran, 1 reused" in again.output
    assert len(documents(tmp_path)) == len(set(documents(tmp_path))) == JOBS


# --- collisions ----------------------------------------------------------------------------------


def test_the_same_study_twice_at_once_waits_then_reuses(tmp_path):
    """This process runs the study under its lock; `ncmflow study` started meanwhile waits."""
    from ncmflow.cli.study import study_config
    from ncmflow.workflows.runner import run_flow, saved_flow
    from ncmflow.workflows.store import get_store, resolve_store, study_lock
    from ncmflow.workflows.study import study_flow

    config = study_config("fault", True, "bulk", "subsurface", 1, "chgnet")
    where = resolve_store(tmp_path / "ncmflow_data")
    with study_lock(where, config.key):
        second = ncmflow(tmp_path, *STUDY, "--workers", "1")
        line = read_line(second.stderr, timeout=60)
        assert line == f"another ncmflow study is running this study (pid {os.getpid()}); waiting…"
        store = get_store(where)
        status = run_flow(saved_flow(store, config.key, lambda: study_flow(config)), store, where.run_dir)
        assert set(status.values()) == {"ran"} and second.poll() is None  # still waiting
    code, out, err = finish(second)
    assert code == 0, err
    assert f"0 jobs ran, {JOBS} reused" in out
    assert len(documents(tmp_path)) == len(set(documents(tmp_path))) == JOBS


def test_two_studies_at_once_on_one_store_both_finish(tmp_path, here):
    """Another study runs here while `ncmflow study` relaxes: no waiting, no document lost or
    doubled (a new store's first writes: test_two_processes_running_flows_on_one_new_store)."""
    other = ncmflow(tmp_path, *STUDY, "--hop", "in-plane", "--workers", "1",  # another key
                    sleep={"relax start": 1, "relax end": 1})
    wait_for(lambda: started(tmp_path), what="the other study")
    this = here(*STUDY, "--workers", "1")
    code, _, err = finish(other)
    assert (this.exit_code, code) == (0, 0), (this.output, err)
    assert "waiting" not in this.output + err
    docs = documents(tmp_path)
    assert len(docs) == len(set(docs)) == 2 * JOBS


def test_compare_while_a_study_writes_shows_whole_documents_only(tmp_path, here):
    study = ncmflow(tmp_path, *STUDY, "--workers", "1", sleep={"neb": 0.3})  # paths A, B: 2 NEBs
    tables: list[list[dict]] = []
    while study.poll() is None and not (tables and len(tables[-1]) == 2):  # until both paths are in
        result = here("compare", "--store", "ncmflow_data", "-o", "seen")
        if result.exit_code == 0:
            tables.append(list(csv.DictReader((tmp_path / "seen" / "barriers.csv").open())))
        else:  # nothing to compare yet: one line, never a traceback
            assert result.exit_code == 2 and "holds no NEB results" in result.output, result.output
    code, _, err = finish(study)
    assert code == 0, err
    final = {_row_key(r): r for r in csv.DictReader((tmp_path / "report" / "barriers.csv").open())}
    assert len(final) == 2 and any(len(t) < len(final) for t in tables), [len(t) for t in tables]
    for table in tables:  # a row is a whole document: every value as in the end
        for row in table:
            assert {k: v for k, v in row.items() if k != "selected"} == {
                k: v for k, v in final[_row_key(row)].items() if k != "selected"}


def _row_key(row: dict) -> tuple:
    return row["model"], row["site"], row["path"], row["potential"]


# --- in this process -----------------------------------------------------------------------------


def test_arrays_are_written_before_the_document_that_points_at_them(tmp_path):
    """A process killed between the two writes leaves a job that runs again, never a document
    whose arrays are missing (jobflow writes the document first)."""
    from jobflow import Flow

    from ncmflow.workflows.runner import run_flow
    from ncmflow.workflows.store import get_store

    @job(data=["big"])
    def arrays() -> dict:
        return {"big": list(range(50))}

    store = get_store(tmp_path / "store")
    data = store.additional_stores["data"]
    calls = []

    def dies(self, *args, **kwargs):
        calls.append(store.docs_store.count())
        raise SystemExit("killed")  # the process ends here

    flow = Flow([arrays()])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(data), "update", dies)
        with pytest.raises(SystemExit):
            run_flow(flow, store, tmp_path)
    assert calls == [0] and store.docs_store.count() == 0  # no document without its arrays
    assert run_flow(flow, store, tmp_path) == {flow[0].uuid: "ran"}
    assert store.query_one({"uuid": flow[0].uuid}, load=True)["output"]["big"] == list(range(50))


WRITER = """
import sys, time
from pathlib import Path
from jobflow import Flow, job
from ncmflow.workflows.runner import run_flow
from ncmflow.workflows.store import get_store

@job(data=["blob"])
def small(i):
    return {"i": i, "blob": list(range(300))}

from montydb.storage import sqlite as engine  # a slow disk: montydb's new file, its table later
create = engine.SQLiteKVEngine.create_table
def slow_create(self, db_file):
    open(db_file, "a").close()
    time.sleep(0.3)
    create(self, db_file)
engine.SQLiteKVEngine.create_table = slow_create

folder, n = Path(sys.argv[1]), int(sys.argv[2])
flow = Flow([small(i) for i in range(n)])
(folder.parent / f"ready-{sys.argv[3]}").touch()
while len(list(folder.parent.glob("ready-*"))) < 2:  # both imported: now at once
    time.sleep(0.01)
run_flow(flow, get_store(folder), folder.parent)
"""


def test_two_processes_running_flows_on_one_new_store(tmp_path):
    """The sequential runner's writes from two processes at once on a store neither has made,
    read meanwhile from here: every document once, every array loads, and no read fails (montydb
    made a collection's file before its table: a reader in between failed with "no such table:
    documents" — widened here to 0.3 s, as on a slow disk; see runner.ensure_collections)."""
    from ncmflow.workflows.store import get_store

    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "db"), "20", name],
                                stderr=subprocess.PIPE, text=True) for name in "ab"]
    store, reads = get_store(tmp_path / "db"), 0
    while any(w.poll() is None for w in writers):
        reads += len(list(store.query({}, properties=["uuid", "index"])))
        list(store.additional_stores["data"].query({}, properties=["blob_uuid"]))
    for writer in writers:
        assert writer.wait(120) == 0, writer.stderr.read()
    docs = [(d["uuid"], d["index"]) for d in store.query({}, properties=["uuid", "index"])]
    assert len(docs) == len(set(docs)) == 40 and reads > 0
    assert all(d["output"]["blob"] == list(range(300)) for d in store.query({}, load=True))


def test_the_sequential_runner_writes_under_the_write_lock(tmp_path):
    import fcntl

    from jobflow import Flow

    from ncmflow.workflows.runner import run_flow
    from ncmflow.workflows.store import WRITE_LOCK, get_store

    @job
    def one() -> int:
        return 1

    store, held = get_store(tmp_path / "db"), []
    real = type(store.docs_store).update

    def update(self, *args, **kwargs):
        with open(tmp_path / "db" / WRITE_LOCK, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
                held.append(False)
            except BlockingIOError:
                held.append(True)
        return real(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(store.docs_store), "update", update)
        run_flow(Flow([one()]), store, tmp_path)
    assert held == [True] and "update" not in store.__dict__  # locked in the run only


def test_ctrl_c_during_a_store_write_takes_effect_after_it(tmp_path):
    from ncmflow.workflows.store import write_lock

    done = []
    with pytest.raises(KeyboardInterrupt), write_lock(tmp_path):
        signal.raise_signal(signal.SIGINT)
        done.append("written")  # not cut short
    assert done == ["written"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_study_lock_waits_for_its_holder_and_names_it(tmp_path):
    import threading

    from ncmflow.workflows.store import resolve_store, study_lock

    where, said, order = resolve_store(tmp_path / "db"), [], []
    with study_lock(where, "study-1"):
        other = threading.Thread(target=lambda: _hold(where, "study-1", said.append, order))
        other.start()
        wait_for(lambda: said, timeout=10, what="the waiting notice")
        with study_lock(where, "study-2", waiting=said.append):  # another study: no wait
            order.append("first")
    other.join(10)
    assert said == [os.getpid()] and order == ["first", "second"]
    assert (tmp_path / "db" / ".study-study-1.lock").read_text() == f"{os.getpid()}\n"


def _hold(where, key, waiting, order):
    from ncmflow.workflows.store import study_lock

    with study_lock(where, key, waiting=waiting):
        order.append("second")


if __name__ == "__main__":  # the `ncmflow` of the subprocesses above, with the toy engine
    import test_faults_local  # noqa: F401 — its classes, not __main__'s, in the flows saved

    from ncmflow.cli import app

    app(prog_name="ncmflow")
