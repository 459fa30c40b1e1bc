"""Every field of jobflow's Response, in both runners, as jobflow's own run_locally treats it.

Worker runs (``workers=2``) need a store another process can open: an embedded store; the same
tests run sequentially (``workers=None``) on it too. A store only in memory runs in order.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from jobflow import Flow, JobStore, OnMissing, Response, job
from jobflow.managers.local import run_locally
from maggma.stores import MemoryStore
from monty.json import MontyDecoder, jsanitize

from ncmflow.workflows.flowstate import export_state, import_state, stopped_jobs, stored_data
from ncmflow.workflows.runner import JobFailed, run_flow
from ncmflow.workflows.store import get_store

pytestmark = [pytest.mark.filterwarnings("ignore:Some jobs are not connected"),
              pytest.mark.filterwarnings("ignore:cd is deprecated:FutureWarning")]  # run_locally's
BOTH = pytest.mark.parametrize("workers", [None, 2], ids=["sequential", "workers"])


@job
def add(a: int, b: int, seconds: float = 0.0) -> int:
    time.sleep(seconds)
    return a + b


@job
def split(a: int, b: int) -> Response:
    """Replaced by two jobs: the flow's output is theirs."""
    first, second = add(a, 0), add(b, 0)
    return Response(replace=Flow([first, second], output=[first.output, second.output]))


@job
def total(values: list[int]) -> int:
    return sum(values)


@job
def detoured(x: int) -> Response:
    """Its children wait for the detour (1 s), which runs before them."""
    return Response(output=x + 1, detour=Flow([add(x, 100, seconds=1.0)]))


@job
def extended(x: int) -> Response:
    return Response(output=x * 2, addition=Flow([add(x, 1000)]))


@job
def fails_softly(a: int) -> Response:
    """What atomate2's VASP jobs return when the calculation failed."""
    return Response(output={"failed": True, "a": a}, stop_children=True)


@job
def halt(a: int) -> Response:
    return Response(output=a, stop_jobflow=True)


@job
def keep(a: int) -> Response:
    return Response(output=a, stored_data={"note": f"kept {a}", "values": [a, a + 1]})


@job
def gather(values: list) -> list:
    return list(values)


@job
def flaky(x: int, marker: str) -> int:
    """Fails the first time it runs (the marker file does not exist yet)."""
    if not Path(marker).exists():
        Path(marker).touch()
        raise RuntimeError("first attempt fails")
    return x * 10


@job
def split_flaky(x: int, marker: str) -> Response:
    first = add(x, 1)
    second = flaky(first.output, marker)
    return Response(replace=Flow([first, second], output=second.output))


def tolerant(j):
    """A job that declares it can take missing inputs."""
    j.update_config({"on_missing_references": OnMissing.NONE})
    return j


def copies(flow: Flow, n: int) -> list[Flow]:
    """The same flow (same uuids) n times, as a saved flow is loaded again."""
    blob = jsanitize(flow.as_dict(), strict=True, allow_bson=True)
    return [MontyDecoder().process_decoded(blob) for _ in range(n)]


def memory() -> JobStore:
    store = JobStore(MemoryStore())
    store.connect()
    return store


def docs(store: JobStore) -> list[tuple[str, int, str]]:
    """Every stored output as (job name, index, output), sorted: comparable across runs, whose
    new jobs get new uuids (the references a replacement's output holds are resolved)."""
    found = store.query({}, properties=["uuid", "name", "index"])
    return sorted((d["name"], d["index"], json.dumps(store.get_output(d["uuid"], which=d["index"]),
                                                     sort_keys=True)) for d in found)


def outputs(store: JobStore) -> dict[str, object]:
    """{uuid: output of its highest index, references resolved}, as a child would read it."""
    return {u: store.get_output(u) for u in {d["uuid"] for d in store.query({}, properties=["uuid"])}}


def dynamic() -> Flow:
    s = split(2, 3)
    t = total(s.output)
    d = detoured(t.output)
    e = extended(d.output)
    return Flow([s, t, d, e, add(d.output, e.output)], name="dynamic")


@BOTH
def test_replace_detour_addition_give_run_locally_outputs_and_resume(tmp_path, workers):
    ours, theirs = copies(dynamic(), 2)
    reference = memory()
    run_locally(theirs, store=reference, log=False, root_dir=tmp_path / "local", ensure_success=True)
    store = get_store(tmp_path / "db")
    status = run_flow(ours, store, tmp_path / "work", workers=workers)
    s, t, d, e, last = ours.jobs
    assert status == dict.fromkeys([s.uuid, t.uuid, d.uuid, e.uuid, last.uuid], "ran")
    assert docs(store) == docs(reference)
    values = outputs(store)
    assert {u: values[u] for u in status} == {u: outputs(reference)[u] for u in status}
    assert [values[s.uuid], values[t.uuid], values[d.uuid], values[e.uuid], values[last.uuid]] == [
        [2, 3], 5, 6, 12, 18]
    assert ("add", 1, "105") in docs(store) and ("add", 1, "1006") in docs(store)  # detour, addition
    assert ("store_inputs", 2, "[2, 3]") in docs(store)  # the replacement's output: index 2
    completed = {d["output"]: d["completed_at"] for d in store.query({"name": {"$in": ["add", "extended"]}})}
    assert completed[105] < completed[12]  # the detour finished before the detoured job's child ran

    again = run_flow(copies(ours, 1)[0], get_store(tmp_path / "db"), tmp_path / "work", workers=workers)
    assert again == dict.fromkeys(status, "reused")
    assert docs(get_store(tmp_path / "db")) == docs(reference)  # nothing ran twice


def test_an_interrupted_replacement_resumes_its_own_jobs(tmp_path):
    flow = Flow([split_flaky(4, str(tmp_path / "marker"))])
    store = memory()
    with pytest.raises(JobFailed, match=r"^job 'flaky' failed: first attempt fails$"):
        run_flow(flow, store, tmp_path)
    first = {(d["name"], d["uuid"]) for d in store.query({}, properties=["name", "uuid"])}
    assert {name for name, _ in first} == {"split_flaky", "add"}
    assert run_flow(copies(flow, 1)[0], store, tmp_path) == {flow.jobs[0].uuid: "reused"}
    found = store.query({}, properties=["name", "uuid", "index"])
    after = {(d["name"], d["uuid"]): store.get_output(d["uuid"], which=d["index"]) for d in found}
    assert set(first) < set(after)  # the same replacement jobs (uuids), the finished one not rerun
    assert sorted((name, value) for (name, _), value in after.items()) == [
        ("add", 5), ("flaky", 50), ("split_flaky", None), ("store_inputs", 50)]
    assert outputs(store)[flow.jobs[0].uuid] == 50


def stopping() -> Flow:
    r = add(1, 1)
    bad = fails_softly(r.output)
    child = add(bad.output["a"], 1)
    grandchild = add(child.output, 1)
    direct = tolerant(gather([bad.output]))  # the stopper's own child: stopped all the same
    sibling = keep(r.output)
    nephew = add(sibling.output, 10)
    return Flow([r, bad, child, grandchild, direct, sibling, nephew], name="stopping")


@BOTH
def test_stop_children_stops_descendants_and_siblings_finish(tmp_path, workers):
    flow = stopping()
    r, bad, child, grandchild, direct, sibling, nephew = flow.jobs
    store = get_store(tmp_path / "db")
    status = run_flow(flow, store, tmp_path, workers=workers)
    assert status == {r.uuid: "ran", bad.uuid: "ran", child.uuid: "stopped", grandchild.uuid: "stopped",
                      direct.uuid: "stopped", sibling.uuid: "ran", nephew.uuid: "ran"}
    assert outputs(store) == {r.uuid: 2, bad.uuid: {"failed": True, "a": 2}, sibling.uuid: 2, nephew.uuid: 12}
    stops = stopped_jobs(store)
    assert {u: (s["by"], s["by_name"], s["reason"], s["parent"]) for u, s in stops.items()} == {
        child.uuid: (bad.uuid, "fails_softly", "stop_children", bad.uuid),
        direct.uuid: (bad.uuid, "fails_softly", "stop_children", bad.uuid),
        grandchild.uuid: (bad.uuid, "fails_softly", "stop_children", child.uuid)}
    assert stored_data(store, sibling.uuid) == {"note": "kept 2", "values": [2, 3]}
    assert stored_data(store, r.uuid) is None

    before = docs(store)
    again = run_flow(copies(flow, 1)[0], get_store(tmp_path / "db"), tmp_path, workers=workers)
    assert again == {**dict.fromkeys(status, "reused"), child.uuid: "stopped",
                     grandchild.uuid: "stopped", direct.uuid: "stopped"}
    assert docs(get_store(tmp_path / "db")) == before


def halting() -> tuple[Flow, list]:
    r = add(1, 1)
    h = halt(r.output)
    after = add(h.output, 1)
    m = add(r.output, 5)
    late = add(m.output, 1)  # no descendant of the halting job, yet after it
    return Flow([r, h, after, m, late]), [r, h, after, m, late]


def test_stop_jobflow_stops_everything_after_it(tmp_path):
    flow, (r, h, after, m, late) = halting()
    order = [j.uuid for j, _ in flow.iterflow()]
    store = memory()
    status = run_flow(flow, store, tmp_path)
    expected = {u: "ran" if order.index(u) <= order.index(h.uuid) else "stopped" for u in order}
    assert status == expected and status[after.uuid] == status[late.uuid] == "stopped"
    assert outputs(store) == {u: {r.uuid: 2, h.uuid: 2, m.uuid: 7}[u] for u in order if expected[u] == "ran"}
    assert {u: (s["by"], s["reason"]) for u, s in stopped_jobs(store).items()} == {
        u: (h.uuid, "stop_jobflow") for u in order if expected[u] == "stopped"}
    assert run_flow(copies(flow, 1)[0], store, tmp_path) == {
        u: "reused" if v == "ran" else v for u, v in status.items()}  # the same store object in memory


def test_stop_jobflow_with_workers_lets_running_jobs_finish(tmp_path):
    r, h = add(1, 1), None
    h = halt(r.output)
    after = add(h.output, 1)
    busy = add(3, 4, seconds=2.0)  # starts beside r, still running when h stops the flow
    late = add(busy.output, r.output)
    flow = Flow([r, h, after, busy, late])
    store = get_store(tmp_path / "db")
    status = run_flow(flow, store, tmp_path, workers=2)
    assert status == {r.uuid: "ran", h.uuid: "ran", busy.uuid: "ran", after.uuid: "stopped",
                      late.uuid: "stopped"}
    assert outputs(store) == {r.uuid: 2, h.uuid: 2, busy.uuid: 7}
    assert run_flow(copies(flow, 1)[0], get_store(tmp_path / "db"), tmp_path) == {
        **dict.fromkeys([r.uuid, h.uuid, busy.uuid], "reused"), after.uuid: "stopped", late.uuid: "stopped"}


def staged() -> tuple[Flow, list]:
    """A study in miniature: per model an end point, its interpolation, its NEB; then the table."""
    bad = fails_softly(1)
    interp = add(bad.output["a"], 1)
    neb = add(interp.output, 1)
    good = add(2, 3)
    good_neb = add(good.output, 1)
    compare = tolerant(gather([neb.output, good_neb.output]))
    return Flow([bad, interp, neb, good, good_neb, compare]), [bad, interp, neb, good, good_neb, compare]


def test_stages_in_separate_calls_honour_an_earlier_stop(tmp_path):
    """Each stage opens the store afresh, as a SLURM batch job does; the third stage runs before
    the second: the stop reaches it all the same. The table runs, its missing input None."""
    flow, (bad, interp, neb, good, good_neb, compare) = staged()
    stages = [{bad.uuid, good.uuid}, {neb.uuid}, {interp.uuid, good_neb.uuid}, {compare.uuid}]
    statuses = [run_flow(copies(flow, 1)[0], get_store(tmp_path / "db"), tmp_path, only=uuids)
                for uuids in stages]
    assert statuses == [{bad.uuid: "ran", good.uuid: "ran"}, {neb.uuid: "stopped"},
                        {interp.uuid: "stopped", good_neb.uuid: "ran"}, {compare.uuid: "ran"}]
    store = get_store(tmp_path / "db")
    assert outputs(store)[compare.uuid] == [None, 6]
    assert {u: (s["by"], s["parent"]) for u, s in stopped_jobs(store).items()} == {
        interp.uuid: (bad.uuid, bad.uuid), neb.uuid: (bad.uuid, interp.uuid)}
    reused = dict.fromkeys([bad.uuid, good.uuid, good_neb.uuid, compare.uuid], "reused")
    assert run_flow(flow, store, tmp_path) == {**reused, interp.uuid: "stopped", neb.uuid: "stopped"}


def test_stage_stores_in_memory_carry_the_stops_over(tmp_path):
    """collect.py's stages run on private in-memory stores: export_state/import_state carry the
    responses and stops from one to the next."""
    flow, (bad, interp, neb, good, good_neb, compare) = staged()
    first = memory()
    assert run_flow(flow, first, tmp_path, only={bad.uuid, good.uuid}) == {bad.uuid: "ran", good.uuid: "ran"}
    second = memory()
    second.docs_store.update([{k: v for k, v in d.items() if k != "_id"} for d in first.docs_store.query({})],
                             key=["uuid", "index"])
    import_state(second, export_state(first))
    assert run_flow(copies(flow, 1)[0], second, tmp_path) == {
        **dict.fromkeys([bad.uuid, good.uuid], "reused"), interp.uuid: "stopped", neb.uuid: "stopped",
        good_neb.uuid: "ran", compare.uuid: "ran"}
    assert outputs(second)[compare.uuid] == [None, 6]
