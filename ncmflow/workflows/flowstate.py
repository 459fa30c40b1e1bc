"""What a run knows about its jobs besides their outputs: the Responses they returned, the stops.

A job's ``Response`` can ask for more than storing its output (jobflow's ``run_locally`` is the
reference; both runners, ``runner.run_flow`` and ``parallel.run_parallel``, follow it):

- ``replace``, ``detour``, ``addition``: new flows, run in that order. A replacement's last job has
  the replaced job's uuid, one index further, so the replaced job's children resolve their
  references to it (jobflow's ``prepare_replace``) and wait for it. A detour runs before the job's
  children: its leaves become extra parents of those children (jobflow-remote's ``_append_flow``,
  FireWorks' detours), so a stop inside the detour reaches them. An addition runs beside them.
- ``stop_children``: the job's children are stopped, and so is every job downstream of a stopped
  one (jobflow-remote stops the children; their own children then wait forever). The flows the
  job itself returned still run (``run_locally`` runs them).
- ``stop_jobflow``: every job of the flow not finished nor running is stopped, new ones too.
- ``stored_data``: kept (``run_locally`` only warns that it is unsupported; jobflow-remote keeps it
  on its job document); read it back with :func:`stored_data`.

All of it lives in two sibling collections of the job store, so a later ``run_flow`` on the same
store — a rerun, or the next SLURM stage (``only=``) in another process — sees what an earlier
one decided, and the jobs of the new flows resume by (uuid, index) like the flow's own:

- ``ncmflow_responses``: one document per job that returned more than an output, keyed
  ``"uuid:index"``: the new flows (serialised), ``stop_children``, ``stop_jobflow``, ``stored_data``.
- ``ncmflow_stopped``: one document per stopped job, keyed ``"uuid:index"``: ``by`` (uuid of the job
  that stopped it) and ``by_name``, ``reason`` (``"stop_children"`` or ``"stop_jobflow"``),
  ``parent`` (the stopped or stopping parent it was stopped through, None for ``stop_jobflow``);
  and one ``"flow:<flow uuid>"`` document per flow a job stopped whole.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monty.json import MontyDecoder, jsanitize

from ncmflow.workflows import progress
from ncmflow.workflows.store import CONNECT_LOCK, file_lock, sibling_store, store_folder, write_lock

if TYPE_CHECKING:
    from jobflow import Flow, Job, JobStore, Response
    from maggma.core import Store

class JobFailed(RuntimeError):
    """A job raised; the results of the jobs before it are kept."""


def finished(store: JobStore, jobs: list[Job]) -> set[tuple[str, int]]:
    """(uuid, index) of the jobs the store holds: a replacement's last job shares the uuid of the
    job it replaces, one index further, and is not done just because that job is."""
    stored: dict[str, int] = {}
    for d in store.query({"uuid": {"$in": [j.uuid for j in jobs]}}, properties=["uuid", "index"]):
        stored[d["uuid"]] = max(stored.get(d["uuid"], 0), d.get("index", 1))
    return {(j.uuid, j.index) for j in jobs if stored.get(j.uuid, 0) >= j.index}


@contextlib.contextmanager
def inside(folder: Path):
    here = Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)


def job_meta(job) -> dict[str, str | None]:
    """The progress fields of a job: its display row and stage."""
    m = job.metadata
    stage = " ".join(filter(None, (m.get("stage", job.name), m.get("part"), m.get("path"))))
    return {"model": progress.row_label(m.get("model"), m.get("site"), m.get("potential")), "stage": stage}


RESPONSES_COLLECTION = "ncmflow_responses"
STOPPED_COLLECTION = "ncmflow_stopped"
NEW_FLOWS = ("replace", "detour", "addition")  # the order run_locally runs them in


def _key(uuid: str, index: int) -> str:
    return f"{uuid}:{index}"


def state_store(store: JobStore, collection: str) -> Store:
    """The sibling collection, one per JobStore object: a store only in memory (a MemoryStore,
    the SLURM stage's store) gives a new, empty sibling each time it is opened."""
    cache = store.__dict__.setdefault("_ncmflow_state", {})
    if collection not in cache:
        folder = store_folder(store)
        if folder is None:
            cache[collection] = sibling_store(store, collection)
        else:
            with file_lock(folder / CONNECT_LOCK):
                cache[collection] = sibling_store(store, collection)
    return cache[collection]


def _write(store: JobStore, collection: str, docs: list[dict]) -> None:
    """Write under the store's write lock: worker processes, or another study, may be writing
    meanwhile; a Ctrl-C waits for the end of the write."""
    target = state_store(store, collection)
    with write_lock(store_folder(store)):
        target.update(docs, key="key")


def _plain(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("_id", "last_updated")}


def response_fields(response: Response) -> dict[str, Any]:
    """What the runners keep of a Response besides its output, as plain data (it crosses
    processes and goes into the store)."""

    def plain(value: Any) -> Any:
        if value is None:
            return None
        value = value.as_dict() if hasattr(value, "as_dict") else value
        return jsanitize(value, strict=True, enum_values=True, allow_bson=True)

    fields = {kind: plain(getattr(response, kind)) for kind in NEW_FLOWS}
    return {**fields, "stop_children": bool(response.stop_children),
            "stop_jobflow": bool(response.stop_jobflow), "stored_data": plain(response.stored_data)}


def _response_doc(job: Job, flow: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"key": _key(job.uuid, job.index), "uuid": job.uuid, "index": job.index,
            "name": job.name, "flow": flow, **fields}


def run_job(job: Job, store: JobStore, flow: str) -> dict[str, Any]:
    """``job.run(store)`` with its Response recorded *before* its output document; the Response's
    fields (``response_fields``) are returned.

    jobflow's ``Job.run`` writes the output and then returns the Response: a process killed
    between that write and the record of the Response left a finished job whose new flows and
    stops were lost for good (the rerun reuses the job). Here the output's write is held until the
    Response is recorded: a kill in between leaves a record and no output, the job runs again and
    its record is overwritten."""
    held: list[tuple[tuple, dict]] = []
    own = store.__dict__.get("update")
    store.update = lambda *args, **kwargs: held.append((args, kwargs))
    try:
        with progress.running(job_meta(job)):
            response = job.run(store=store)
    finally:
        store.__dict__.pop("update") if own is None else setattr(store, "update", own)
    fields = response_fields(response)
    if any(fields.values()):
        _write(store, RESPONSES_COLLECTION, [_response_doc(job, flow, fields)])
    for args, kwargs in held:
        store.update(*args, **kwargs)
    return fields


def stored_data(store: JobStore, uuid: str, index: int | None = None) -> Any:
    """The ``stored_data`` a job's Response gave (its last run unless ``index``), or None."""
    query: dict[str, Any] = {"uuid": uuid, **({} if index is None else {"index": index})}
    docs = sorted(state_store(store, RESPONSES_COLLECTION).query(query), key=lambda d: d["index"])
    return docs[-1].get("stored_data") if docs else None


def stopped_jobs(store: JobStore) -> dict[str, dict]:
    """Every job recorded as stopped: {uuid: its record (by, by_name, reason, parent, index)}."""
    docs = state_store(store, STOPPED_COLLECTION).query({"uuid": {"$exists": True}})
    return {d["uuid"]: _plain(d) for d in docs}


def export_state(store: JobStore) -> dict[str, list[dict]]:
    """Both collections as plain documents (a SLURM stage carries them in its outputs.json)."""
    return {c: [_plain(d) for d in state_store(store, c).query({})]
            for c in (RESPONSES_COLLECTION, STOPPED_COLLECTION)}


def import_state(store: JobStore, state: dict[str, list[dict]]) -> None:
    """Add what :func:`export_state` gave (documents already there are overwritten, not doubled)."""
    for collection, docs in state.items():
        if docs:
            _write(store, collection, docs)


def _accepts_missing(job: Job) -> bool:
    from jobflow import OnMissing

    return OnMissing(job.config.on_missing_references) != OnMissing.ERROR


class FlowState:
    """The flow's job graph (new flows included) and what the store says was returned or stopped.

    A job is stopped (:meth:`stop_reason`) when

    - a job stopped the whole flow (``stop_jobflow``);
    - a parent returned ``stop_children`` (whatever the job accepts: the parent asked for it);
    - a parent was stopped, unless the job declares it can take missing inputs
      (``job.config.on_missing_references`` is not ``OnMissing.ERROR``): then it runs, and its
      references to the stopped job resolve as its config says (None for ``OnMissing.NONE``).
      This mirrors jobflow's rule for the children of a job that *errored* (``run_locally`` and
      jobflow-remote run those when ``on_missing_references`` is NONE or PASS); for a *stopped*
      parent both never run the job, whatever it accepts. It lets a summary job (the study's
      ``compare_barriers``) still run when one branch stopped, and say which inputs are missing.
    """

    def __init__(self, store: JobStore, flow: Flow) -> None:
        self.store, self.flow = store, flow.uuid
        import networkx as nx

        self.graph = nx.DiGraph()
        self.jobs: dict[str, Job] = {}  # uuid -> its job of the highest index known
        self.new: dict[str, list[tuple[str, list[Job]]]] = {}  # "uuid:index" -> (kind, jobs), in order
        self.stoppers: dict[str, str] = {}  # uuid -> name of the jobs that stopped their children
        self.halted: dict | None = None  # the record of a stop_jobflow
        self._add(flow)
        self._load()

    # --- the graph --------------------------------------------------------------------------

    def _add(self, flow: Flow) -> list[Job]:
        jobs = []
        for job, parents in flow.iterflow():
            self.graph.add_node(job.uuid)
            self.graph.add_edges_from((p, job.uuid) for p in parents)
            if job.uuid not in self.jobs or self.jobs[job.uuid].index < job.index:
                self.jobs[job.uuid] = job
            jobs.append(job)
        return jobs

    def _expand(self, doc: dict) -> list[tuple[str, list[Job]]]:
        """Add a job's new flows to the graph (a detour's leaves before the job's children)."""
        key = _key(doc["uuid"], doc["index"])
        if key in self.new:
            return self.new[key]
        children = list(self.graph.successors(doc["uuid"]))
        self.new[key] = []
        for kind in NEW_FLOWS:
            if doc.get(kind) is None:
                continue
            flow = MontyDecoder().process_decoded(doc[kind])
            jobs = self._add(flow)
            if kind == "detour":
                uuids = {j.uuid for j in jobs}
                leaves = [u for u in uuids if not uuids.intersection(self.graph.successors(u))]
                self.graph.add_edges_from((leaf, c) for leaf in leaves for c in children)
            self.new[key].append((kind, jobs))
        if doc.get("stop_children"):
            self.stoppers[doc["uuid"]] = doc.get("name", doc["uuid"])
        if doc.get("stop_jobflow") and self.halted is None:  # recorded, its stops not written yet
            self.halted = {"key": f"flow:{self.flow}", "flow": self.flow, "by": doc["uuid"],
                           "by_name": doc.get("name", doc["uuid"]), "reason": "stop_jobflow"}
        return self.new[key]

    def _load(self) -> None:
        stops = state_store(self.store, STOPPED_COLLECTION)
        self.halted = stops.query_one({"key": f"flow:{self.flow}"})
        responses = state_store(self.store, RESPONSES_COLLECTION)
        seen: set[str] = set()
        while todo := sorted(set(self.graph) - seen):
            seen.update(todo)
            for doc in sorted(responses.query({"uuid": {"$in": todo}}), key=lambda d: d["index"]):
                self._expand(doc)
        self.stopped = {d["key"]: _plain(d) for d in stops.query({"uuid": {"$in": sorted(self.graph)}})}

    def new_jobs(self, job: Job) -> list[tuple[str, list[Job]]]:
        """(kind, jobs) of the flows ``job`` returned, as recorded: replace, detour, addition."""
        return self.new.get(_key(job.uuid, job.index), [])

    # --- stops --------------------------------------------------------------------------------

    def _stopped_uuid(self, uuid: str) -> dict | None:
        return next((d for d in self.stopped.values() if d["uuid"] == uuid), None)

    def stop_reason(self, job: Job) -> dict | None:
        """Why ``job`` must not run (its stop record), or None (see the class docstring)."""
        if (doc := self.stopped.get(_key(job.uuid, job.index))) is not None:
            return doc
        if self.halted is not None:
            return self._doc(job, self.halted["by"], self.halted["by_name"], "stop_jobflow", None)
        parents = sorted(self.graph.predecessors(job.uuid))
        for p in parents:
            if p in self.stoppers:
                return self._doc(job, p, self.stoppers[p], "stop_children", p)
        if not _accepts_missing(job):
            for p in parents:
                if (doc := self._stopped_uuid(p)) is not None:
                    return self._doc(job, doc["by"], doc["by_name"], doc["reason"], p)
        return None

    def _doc(self, job: Job, by: str, by_name: str, reason: str, parent: str | None) -> dict:
        return {"key": _key(job.uuid, job.index), "uuid": job.uuid, "index": job.index,
                "name": job.name, "by": by, "by_name": by_name, "reason": reason, "parent": parent}

    def stop(self, docs: list[dict]) -> None:
        """Record stopped jobs (documents from :meth:`stop_reason`)."""
        docs = [d for d in docs if d["key"] not in self.stopped]
        if docs:
            _write(self.store, STOPPED_COLLECTION, docs)
            self.stopped.update({d["key"]: d for d in docs})

    def _unfinished(self, uuids: set[str], running: set[str]) -> list[Job]:
        stored: dict[str, int] = {}
        for d in self.store.query({"uuid": {"$in": sorted(uuids)}}, properties=["uuid", "index"]):
            stored[d["uuid"]] = max(stored.get(d["uuid"], 0), d.get("index", 1))
        return [self.jobs[u] for u in sorted(uuids - running)
                if stored.get(u, 0) < self.jobs[u].index]

    # --- after a job ran ----------------------------------------------------------------------

    def record(self, job: Job, fields: dict[str, Any],
               running: set[str] = frozenset()) -> list[tuple[str, list[Job]]]:
        """Act on what ``job``'s Response asked for (``response_fields``, recorded by
        :func:`run_job`): stop what it stops, in the whole known flow — jobs of later stages too —
        except ``running`` ones; return (kind, jobs) of its new flows, to run next (those of a flow
        stopped whole are stopped in turn)."""
        if not any(fields.values()):
            return []
        new = self._expand(_response_doc(job, self.flow, fields))
        if fields.get("stop_jobflow"):
            self.halted = {"key": f"flow:{self.flow}", "flow": self.flow, "by": job.uuid,
                           "by_name": job.name, "reason": "stop_jobflow"}
            _write(self.store, STOPPED_COLLECTION, [self.halted])
            rest = self._unfinished(set(self.graph) - {job.uuid}, running)
            self.stop([self._doc(j, job.uuid, job.name, "stop_jobflow", None) for j in rest])
        elif fields.get("stop_children"):
            self._stop_downstream(job, running)
        return new

    def _stop_downstream(self, job: Job, running: set[str]) -> None:
        import networkx as nx

        below = nx.descendants(self.graph, job.uuid)
        via = {c: job.uuid for c in self.graph.successors(job.uuid)}
        changed = True
        while changed:  # a fixed point, not a topological order: a replacement may close a cycle
            changed = False
            for u in sorted(below - set(via)):
                parent = next((p for p in sorted(self.graph.predecessors(u)) if p in via), None)
                if parent is not None and not _accepts_missing(self.jobs[u]):
                    via[u], changed = parent, True
        self.stop([self._doc(j, job.uuid, job.name, "stop_children", via[j.uuid])
                   for j in self._unfinished(set(via), running)])
