"""A full disk while a checkpoint or the store is written: the previous checkpoint survives, the
job fails with one line naming the file, and a rerun with space resumes from the checkpoint.

The disk is a small tmpfs mounted for each test (root with CAP_SYS_ADMIN, as in CI's
container); where mounting is not allowed the tests are skipped, saying why. It is filled
mid-run by a file written until ENOSPC. Calculators are ASE's EMT (the toy engine of
tests/test_toy_engine.py for the NEB): seconds, not CHGNet or DFT.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk as ase_bulk
from ase.calculators.emt import EMT
from ase.io.trajectory import TrajectoryWriter
from jobflow import Flow, job
from pymatgen.io.ase import AseAtomsAdaptor
from test_toy_engine import au_on_al100  # registers the "emt" engine

from ncmflow.inputs.settings import PAPER
from ncmflow.structures.path import neb_images
from ncmflow.workflows import progress
from ncmflow.workflows.diskfull import DiskFull
from ncmflow.workflows.engines.gpaw import OPTIMIZER_STATE, RELAX_STEPS, GpawRelaxMaker
from ncmflow.workflows.flowstate import JobFailed
from ncmflow.workflows.neb import CHECKPOINT, CiNebMaker
from ncmflow.workflows.runner import run_flow
from ncmflow.workflows.store import DATABASE, get_store
from ncmflow.workflows.storecheck import STAMPS, check_store


def mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` at ``path``; why not, when it cannot be."""
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root (CAP_SYS_ADMIN): not root here"
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return f"cannot run mount: {exc}"
    said = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0]
    return f"mount -t tmpfs refused ({said})" if done.returncode else None


@pytest.fixture
def disk(tmp_path):
    """A 2 MB tmpfs at tmp_path/disk, with ``disk.fill()`` and ``disk.free()``."""
    where = tmp_path / "disk"
    where.mkdir()
    reason = mount_tmpfs(where, "2m")
    if reason:
        pytest.skip(reason)
    try:
        yield Disk(where)
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


@dataclass
class Disk:
    path: Path

    def fill(self, leave: int = 0) -> None:
        """Write a file until the disk is full, then give back ``leave`` bytes."""
        filler = self.path / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for chunk in (1 << 16, 1 << 12):
                try:
                    while True:
                        os.write(fd, bytes(chunk))
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        if leave:
            os.truncate(filler, filler.stat().st_size - leave)

    def free(self) -> None:
        (self.path / "filler").unlink()


# --- the NEB checkpoint --------------------------------------------------------------------------

def neb_flow() -> tuple[Flow, str]:
    start, end = au_on_al100()
    maker = CiNebMaker(engine="emt", settings=PAPER.with_changes(neb_fmax=0.02))
    neb = maker.make(neb_images(start, end, 3, method="idpp"), "au-al100", {"site": 0})
    return Flow([neb]), neb.uuid


def steps_seen(events: list[dict]) -> list[tuple[int, float]]:
    return [(e["step"], e["fmax"]) for e in events if e.get("stage") == "neb"]


def test_neb_checkpoint_survives_a_full_disk_and_the_rerun_resumes(disk, tmp_path):
    flow, neb = neb_flow()
    store = get_store(tmp_path / "db")  # the store has room: only the run folder is full
    checkpoint = disk.path / "runs" / neb / CHECKPOINT
    kept: dict[str, bytes] = {}
    events: list[dict] = []

    def fill_at_step_4(event: dict) -> None:
        events.append(event)
        if event.get("stage") == "neb" and event["step"] == 4:  # reported before step 4 is written
            kept["checkpoint"] = checkpoint.read_bytes()
            disk.fill()

    with progress.listening(fill_at_step_4), pytest.raises(JobFailed) as failed:
        run_flow(flow, store, disk.path)
    line = str(failed.value)
    assert line.splitlines() == [line]
    assert f"no space left on device writing {checkpoint}" in line and "previous checkpoint is kept" in line
    assert checkpoint.read_bytes() == kept["checkpoint"]  # the checkpoint of step 3, whole
    assert not checkpoint.with_name(f"{CHECKPOINT}.part").exists()
    first = steps_seen(events)
    assert [s for s, _ in first] == [1, 2, 3, 4]

    disk.free()
    events.clear()
    with progress.listening(events.append):
        assert run_flow(flow, store, disk.path) == {neb: "ran"}
    doc = store.query_one({"uuid": neb}, load=True)["output"]
    assert doc["resumed"] and doc["converged"]
    # it went on from the band of step 3, not from the interpolation
    assert steps_seen(events)[0][1] < first[0][1]
    assert store.count({"uuid": neb}) == 1

    fresh_flow, fresh = neb_flow()  # the same NEB never interrupted: the same barrier
    run_flow(fresh_flow, store, tmp_path / "fresh")
    barrier = store.query_one({"uuid": fresh}, load=True)["output"]["forward_barrier"]
    assert doc["forward_barrier"] == pytest.approx(barrier, abs=1e-3)


# --- the GPAW relaxation's trajectory and optimizer state ----------------------------------------

@dataclass
class EmtGpawRelax(GpawRelaxMaker):
    """The GPAW engine's relaxation (its checkpoint files) with EMT forces."""

    name: str = "emt as gpaw relax"

    def _get_calculator(self) -> EMT:
        return EMT()


def rattled_ni():
    atoms = ase_bulk("Ni", "fcc", a=3.52, cubic=True) * (2, 2, 2)
    atoms.rattle(0.08, seed=3)
    return AseAtomsAdaptor.get_structure(atoms)


def relax_maker(steps: int = 200) -> EmtGpawRelax:
    return EmtGpawRelax(settings=PAPER, relax_cell=False, steps=steps, relax_kwargs={"fmax": 0.01},
                        optimizer_kwargs={"optimizer": "BFGS"})


@pytest.mark.parametrize("full_at", ["trajectory", "optimizer state"])
def test_relaxation_steps_survive_a_full_disk_and_the_rerun_resumes(disk, tmp_path, monkeypatch, full_at):
    from ncmflow.workflows.engines import gpaw

    work = disk.path / "relax"
    work.mkdir()
    monkeypatch.chdir(work)
    calls = {"frames": 0, "dumps": 0}
    real_write, real_replace = TrajectoryWriter.write, gpaw.replace_file

    def write(self, *args, **kwargs):  # step 4's frame (the 5th) onto a full disk
        calls["frames"] += 1
        if full_at == "trajectory" and calls["frames"] == 5:
            disk.fill()
        return real_write(self, *args, **kwargs)

    def replace_file(*args, **kwargs):  # step 4's optimizer state onto a full disk
        calls["dumps"] += 1
        if full_at == "optimizer state" and calls["dumps"] == 4:
            disk.fill()
        return real_replace(*args, **kwargs)

    monkeypatch.setattr(TrajectoryWriter, "write", write)
    monkeypatch.setattr(gpaw, "replace_file", replace_file)
    with pytest.raises(DiskFull) as failed:
        relax_maker().run_ase(rattled_ni())
    named = work / (RELAX_STEPS if full_at == "trajectory" else OPTIMIZER_STATE)
    assert str(failed.value) == (f"no space left on device writing {named}; the steps done are kept: "
                                 "free space and rerun to resume from the last one")
    from ase.io import read

    kept = read(RELAX_STEPS, index=":")
    assert len(kept) == 4  # the start and steps 1–3 (step 4's frame was never written whole)
    state = json.loads(Path(OPTIMIZER_STATE).read_text())  # whole: the state of step 3 or 4
    assert not list(work.glob("*.part"))
    disk.free()

    resumed = relax_maker().run_ase(rattled_ni())
    assert resumed.converged and state
    assert len(read(RELAX_STEPS, index=":")) > len(kept)  # appended to the steps kept
    energies = [f["energy"] for f in resumed.trajectory.frame_properties]
    monkeypatch.chdir(tmp_path)
    fresh = [f["energy"] for f in relax_maker().run_ase(rattled_ni()).trajectory.frame_properties]
    # the rerun's first step goes on from step 3 (ASE records no restart point), downhill of it;
    # a fresh run starts from the rattled start again; both end in the same minimum
    assert energies[0] < kept[-1].get_potential_energy() < kept[0].get_potential_energy() == fresh[0]
    assert energies[-1] == pytest.approx(fresh[-1], abs=1e-4)
    assert len(energies) + len(kept) - 1 <= len(fresh) + 2  # no step done twice (BFGS's state kept)


# --- the store itself ----------------------------------------------------------------------------

def document(i: int) -> dict:
    return {"uuid": str(uuid.UUID(int=i + 1)), "index": 1, "name": f"doc {i}", "output": {"x": i},
            "completed_at": f"2026-03-01T00:00:{i:02d}", "metadata": {"model": "bulk"}}


@job(data=["positions"])
def _frames(n: int) -> dict:
    return {"n": n, "positions": np.zeros((n, 3)).tolist()}


@pytest.mark.parametrize("room", [0, 48 * 1024], ids=["nothing left", "48 kB left"])
def test_a_full_disk_under_the_store_rolls_the_write_back(disk, room):
    """SQLite refuses the write (its shared-memory file cannot grow: "disk I/O error"; or the
    log cannot: "database or disk is full") and rolls it back: one line naming the store file,
    and every document written before is there when the store is opened again."""
    db = disk.path / "db"
    store = get_store(db)
    run_flow(Flow([_frames(1)]), store, disk.path / "runs")  # a study's collections made
    store.docs_store.update([document(i) for i in range(20)])
    blobs = [{"blob_uuid": f"kept-{i}", "data": list(range(500))} for i in range(5)]
    store.additional_stores["data"].update(blobs)
    disk.fill(leave=room)
    for write, name in ((lambda: [store.docs_store.update(document(100 + i)) for i in range(40)],
                         "outputs.collection"),
                        (lambda: [store.additional_stores["data"].update(
                            {"blob_uuid": f"n{i}", "data": list(range(5000))}) for i in range(40)],
                         "outputs_data.collection")):
        with pytest.raises(DiskFull) as failed:
            write()
        assert str(failed.value).startswith(f"no space left on device writing {db / DATABASE / name}; "
                                            "SQLite rolled this write back")
    try:  # montydb sets WAL mode on each connection: a read may need room for SQLite's -shm file
        assert get_store(db).docs_store.count({"uuid": document(3)["uuid"]}) == 1
    except DiskFull as exc:
        assert str(exc).startswith(f"no space left on device reading {db / DATABASE}")
    # a run on the full store fails with such a line too (reading what is done, or storing the
    # job's output); the rerun stores the output once
    flow = Flow([_frames(200)])
    said = r"no space left on device (reading|writing) \S*\.collection"
    with pytest.raises((JobFailed, DiskFull), match=said):
        run_flow(flow, get_store(db), disk.path / "runs")
    disk.free()
    (db / STAMPS).unlink(missing_ok=True)
    check_store(db, DATABASE)  # SQLite's quick_check: ok
    again = get_store(db)
    assert again.docs_store.count({"name": {"$regex": "^doc "}}) >= 20
    assert all(again.docs_store.count({"uuid": document(i)["uuid"]}) == 1 for i in range(20))
    assert again.additional_stores["data"].count({"blob_uuid": {"$regex": "^kept-"}}) == 5
    assert run_flow(flow, again, disk.path / "runs") == {flow.jobs[0].uuid: "ran"}
    assert again.query_one({"uuid": flow.jobs[0].uuid}, load=True)["output"]["positions"] == [[0.0] * 3] * 200


@pytest.mark.parametrize("room", [0, 20 * 1024], ids=["nothing left", "20 kB left"])
def test_a_new_store_on_a_full_disk_is_one_line(disk, room):
    """The collection files a run makes first (``runner.ensure_collections``): SQLite's "database
    or disk is full" came out as a traceback; now one line naming the file, and nothing left
    half made."""
    db = disk.path / "db"
    store = get_store(db)
    disk.fill(leave=room)
    said = rf"^no space left on device writing {db / DATABASE}/\S+\.collection; "
    with pytest.raises(DiskFull, match=said):
        run_flow(Flow([_frames(3)]), store, disk.path / "runs")
    assert not list((db / DATABASE).glob(".*.new"))  # no file made aside is left
    disk.free()
    flow = Flow([_frames(3)])
    assert run_flow(flow, get_store(db), disk.path / "runs") == {flow.jobs[0].uuid: "ran"}
