"""run_flow with worker processes: independent jobs run at once, results match the sequential run."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from jobflow import Flow, JobStore, Response, job
from maggma.stores import MemoryStore
from monty.json import MontyDecoder, jsanitize

from ncmflow.workflows import progress
from ncmflow.workflows.parallel import default_workers, open_store, reopenable
from ncmflow.workflows.runner import JobFailed, run_flow
from ncmflow.workflows.store import get_store

pytestmark = pytest.mark.filterwarnings("ignore:Some jobs are not connected")


@job
def slow_add(a: int, b: int, seconds: float = 1.0) -> dict:
    start = time.time()
    progress.report(model="branch", stage="add", step=a, fmax=0.5)
    time.sleep(seconds)
    return {"value": a + b, "start": start, "end": time.time(), "pid": os.getpid()}


@job
def meet(name: str, folder: str, other: str) -> dict:
    """Wait (≤ 30 s) until the job named ``other`` has started too: only jobs run at once meet."""
    start = time.time()
    Path(folder, name).touch()
    while not Path(folder, other).exists() and time.time() < start + 30:
        time.sleep(0.05)
    time.sleep(0.2)
    return {"value": 1, "start": start, "end": time.time(), "pid": os.getpid()}


@job
def total(*parts: dict) -> int:
    return sum(p["value"] for p in parts)


@job
def combine(c: int, parts: list[dict]) -> int:
    return c + sum(p["value"] for p in parts)


@job
def split(a: int, b: int) -> Response:
    """Replaced by two jobs: the flow's output is theirs."""
    first, second = slow_add(a, 0, seconds=0), slow_add(b, 0, seconds=0)
    return Response(replace=Flow([first, second], output=[first.output, second.output]))


@job
def blas_threads(name: str) -> dict:
    """What a worker's BLAS was told at its start (the environment it was spawned with)."""
    return {var: os.environ.get(var) for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}


@job
def boom(a: int) -> int:
    raise ValueError("kaboom\nsecond line")


def copies(flow: Flow, n: int) -> list[Flow]:
    """The same flow (same uuids) n times, as a saved flow is loaded again."""
    blob = jsanitize(flow.as_dict(), strict=True, allow_bson=True)
    return [MontyDecoder().process_decoded(blob) for _ in range(n)]


def branches() -> Flow:
    a, b = slow_add(1, 2, seconds=0.3), slow_add(3, 4, seconds=0.3)
    parts = split(5, 6)
    c = total(a.output, b.output)
    return Flow([a, b, parts, c, combine(c.output, parts.output)], name="branches")


def stored(store: JobStore) -> dict[tuple[str, int], object]:
    docs = store.query({}, properties=["uuid", "index", "output"])
    return {(d["uuid"], d["index"]): d["output"] for d in docs}


def test_workers_match_the_sequential_run_events_and_replacements_included(tmp_path):
    sequential, parallel = copies(branches(), 2)
    events, reported = [], []
    with progress.listening(reported.append):
        one = run_flow(sequential, get_store(tmp_path / "one"), tmp_path / "one")
    store = get_store(tmp_path / "two")
    with progress.listening(events.append):
        two = run_flow(parallel, store, tmp_path / "two", workers=2)
    assert one == two and set(two.values()) == {"ran"}
    a, _, _, c, last = parallel.jobs
    docs, reference = stored(store), stored(get_store(tmp_path / "one"))
    assert docs[(c.uuid, 1)] == reference[(c.uuid, 1)] == 10
    assert docs[(last.uuid, 1)] == reference[(last.uuid, 1)] == 21
    assert len(docs) == len(reference)  # the replacement's jobs and the job storing its output
    assert (tmp_path / "two" / "runs" / a.uuid).is_dir()
    assert reference[(a.uuid, 1)]["pid"] == os.getpid() != docs[(a.uuid, 1)]["pid"]  # in a worker
    assert [e["step"] for e in events if "step" in e and e["step"] in (1, 3)] in ([1, 3], [3, 1])
    assert sorted(map(str, events)) == sorted(map(str, reported))  # the same events, NEB-like steps too
    assert sum(e.get("event") == "start" for e in events) == 8  # 5 jobs, the replacement's 2 + its output

    again = run_flow(copies(parallel, 1)[0], store, tmp_path / "two", workers=2)  # the flow saved
    assert again == dict.fromkeys(two, "reused")


def test_independent_jobs_run_at_the_same_time(tmp_path):
    a, b = meet("a", str(tmp_path), "b"), meet("b", str(tmp_path), "a")
    flow = Flow([a, b, total(a.output, b.output)])
    store = get_store(tmp_path / "store")
    assert run_flow(flow, store, tmp_path, workers=2) == dict.fromkeys((a.uuid, b.uuid, flow[2].uuid), "ran")
    docs = stored(store)
    first, second = docs[(a.uuid, 1)], docs[(b.uuid, 1)]
    assert first["start"] < second["end"] and second["start"] < first["end"]
    assert docs[(flow[2].uuid, 1)] == 2


def test_a_failing_job_keeps_the_finished_ones(tmp_path):
    ok, bad = slow_add(1, 1, seconds=1.5), boom(0)
    after = total(ok.output, bad.output)
    flow = Flow([bad, ok, after])
    store = get_store(tmp_path / "store")
    with pytest.raises(JobFailed, match=r"^job 'boom' failed: kaboom$") as info:
        run_flow(flow, store, tmp_path, workers=2)
    assert "ValueError: kaboom" in str(info.value.__cause__)  # the worker's traceback
    assert set(stored(store)) == {(ok.uuid, 1)}  # the sibling running beside it finished


def test_stores_only_in_memory_run_in_order_here(tmp_path):
    memory = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    assert reopenable(memory) is None
    memory.connect()
    a, b = slow_add(1, 2, seconds=0), slow_add(3, 4, seconds=0)
    status = run_flow(Flow([a, b, total(a.output, b.output)]), memory, tmp_path, workers=2)
    assert list(status.values()) == ["ran"] * 3
    spec = tmp_path / "s.yaml"  # a store file (MongoDB, usually): one worker
    spec.write_text("docs_store: {'@module': maggma.stores, '@class': MemoryStore}\n")
    assert default_workers(tmp_path / "folder") >= 1 and default_workers(spec) == 1


def _write_many(args: tuple[dict, int]) -> int:
    spec, n = args
    store = open_store(spec)
    for i in range(20):
        store.update({"uuid": f"{n}-{i}", "index": 1, "output": list(range(200))}, key=["uuid", "index"])
    return n


def test_two_processes_writing_to_one_embedded_store(tmp_path):
    from multiprocessing import get_context

    spec = reopenable(get_store(tmp_path / "store"))
    with get_context("spawn").Pool(2) as pool:
        assert pool.map(_write_many, [(spec, 0), (spec, 1)]) == [0, 1]
    assert len(stored(get_store(tmp_path / "store"))) == 40


def test_idle_cores_sampled_now_sees_a_busy_process():
    """The 1-minute load average lags; a sample of /proc/stat sees a core taken right now."""
    import os
    import subprocess
    import sys

    from ncmflow.workflows.cores import idle_cores

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert idle_cores(sample=0.5) <= max(1, (os.cpu_count() or 1) - 1)
    finally:
        busy.kill()


@pytest.mark.parametrize("var", ["SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE", "NCPUS"])
def test_idle_cores_in_a_batch_job_are_its_allocation(monkeypatch, var):
    from ncmflow.workflows.cores import ALLOCATION, idle_cores

    for name in ALLOCATION:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(var, "1")
    assert idle_cores(sample=0.2) == 1
    monkeypatch.setenv(var, "512")  # never more than the machine has
    assert idle_cores() == (os.cpu_count() or 1)


def test_workers_share_the_blas_threads_the_cli_gave_the_machine(tmp_path, monkeypatch):
    """The CLI sets OPENBLAS/OMP threads to the idle cores for its own process; two GPAW workers
    each taking them all spin against each other (an LCAO SCF cycle 8× slower). Each worker gets
    its share; a smaller number the user gave is kept."""
    from ncmflow.workflows.cores import idle_cores

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "64")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    flow = Flow([blas_threads("a"), blas_threads("b")])
    store = get_store(tmp_path / "db")
    share = max(1, idle_cores(sample=0.5) // 2)
    run_flow(flow, store, tmp_path, workers=2)
    seen = [store.get_output(j.uuid) for j in flow.jobs]
    assert all(int(s["OPENBLAS_NUM_THREADS"]) <= max(share, 1) for s in seen), seen
    assert all(s["OMP_NUM_THREADS"] == "1" for s in seen)
