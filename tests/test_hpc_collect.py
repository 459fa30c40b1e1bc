"""Collecting batch jobs' run folders into the store: everything arrives once, reruns add nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ncmflow.workflows.collect import OUTPUTS, collect, export_store, memory_store, read_outputs
from ncmflow.workflows.store import embedded_store


def fake_stage(folder: Path, name: str, uuids: list[str]) -> None:
    """A stage folder as a batch job leaves it: output docs and their data blobs."""
    stage = folder / "stages" / name
    stage.mkdir(parents=True)
    docs = [{"uuid": u, "index": 1, "output": {"energy": -1.5 * i, "images": {"@class": "blob",
             "blob_uuid": f"blob-{u}", "store": "data"}}, "metadata": {"model": name}}
            for i, u in enumerate(uuids)]
    blobs = [{"blob_uuid": f"blob-{u}", "job_uuid": u, "job_index": 1, "data": [1.0, 2.0]} for u in uuids]
    (stage / OUTPUTS).write_text(json.dumps({"outputs": docs, "data": blobs}))


def counts(store) -> tuple[int, int]:
    return store.docs_store.count(), store.additional_stores["data"].count()


def test_collect_is_idempotent(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    fake_stage(sub, "bulk", ["a1", "a2", "a3"])
    fake_stage(sub, "compare", ["c1"])
    (sub / "stages" / "bare").mkdir()  # a stage that has not finished anything yet
    location = str(tmp_path / "store")
    store = embedded_store(tmp_path / "store")
    store.connect()
    assert collect(sub, location) == 8
    assert counts(store) == (4, 4)
    assert collect(sub, location) == 0
    assert counts(store) == (4, 4)
    fake_stage(sub, "late", ["d1"])
    assert collect(sub, location) == 2 and counts(store) == (5, 5)
    assert store.get_output("a2")["energy"] == -1.5


def test_concurrent_collects_store_each_document_once(tmp_path: Path) -> None:
    """Like `ncmflow status` on the login node racing the final collect batch job."""
    sub = tmp_path / "sub"
    fake_stage(sub, "bulk", [f"u{i}" for i in range(30)])
    embedded_store(tmp_path / "store").connect()
    code = ("import sys; from pathlib import Path; from ncmflow.workflows.collect import collect; "
            "print(collect(Path(sys.argv[1]), sys.argv[2]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(sub), str(tmp_path / "store")],
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    added = [int(p.communicate(timeout=120)[0]) for p in procs]
    store = embedded_store(tmp_path / "store")
    store.connect()
    assert sum(added) == 60 and counts(store) == (30, 30)


def test_stage_store_exports_only_its_own_documents(tmp_path: Path) -> None:
    fake_stage(tmp_path, "bulk", ["up1"])
    upstream = read_outputs(tmp_path / "stages" / "bulk")
    store = memory_store([upstream])
    store.docs_store.update([{"uuid": "mine", "index": 1, "output": 3.0}], key=["uuid", "index"])
    out = tmp_path / "mine.json"
    export_store(store, out, skip={"up1"})
    exported = json.loads(out.read_text())
    assert [d["uuid"] for d in exported["outputs"]] == ["mine"] and exported["data"] == []
    assert not list(tmp_path.glob(".*.tmp"))  # written by rename, no leftovers


def test_collect_waits_for_a_local_study_writing_the_store(tmp_path: Path) -> None:
    """A local study writes under the store's write lock; collect takes it too (it did not)."""
    import threading
    import time

    from ncmflow.workflows.store import WRITE_LOCK, embedded_folder, file_lock

    sub = tmp_path / "sub"
    fake_stage(sub, "bulk", ["w1", "w2"])
    store = embedded_store(tmp_path / "store")
    store.connect()
    held, release = threading.Event(), threading.Event()

    def study_writing() -> None:
        with file_lock(embedded_folder(tmp_path / "store") / WRITE_LOCK):
            held.set()
            release.wait(10)

    writer = threading.Thread(target=study_writing)
    writer.start()
    held.wait(10)
    timer = threading.Timer(1.0, release.set)
    timer.start()
    started = time.monotonic()
    assert collect(sub, str(tmp_path / "store")) == 4
    waited = time.monotonic() - started
    writer.join()
    assert waited >= 0.9  # it waited for the writer's lock, then wrote
    assert counts(store) == (2, 2)
