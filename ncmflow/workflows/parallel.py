"""Run a flow's independent jobs at once, each in a worker process of its own.

A job starts as soon as every job it references has finished (in this run, or earlier: it is in
the store) — the study's end-point relaxations, then its NEB paths, run ``workers`` at a time.
Workers are *spawned*, never forked (torch's thread pools do not survive a fork), and each sets
``NCMFLOW_TORCH_THREADS`` to its share of the idle cores before anything imports torch: on two
cores, two one-thread processes compute ~1.36× more than one two-thread process.

Each worker reopens the parent's store from its ``as_dict()`` (a store only in memory cannot be
shared: those flows run in order, in this process) and runs ``job.run(store)``, which writes the
output itself; writes to an embedded montydb store take a file lock, so two processes never
commit at once. What a job reports (NEB steps) goes back over a queue to the parent, whose main
thread hands it to the listeners (the live display, not thread-safe) between two looks at the
workers, together with the job started/done/reused events it reports itself as the sequential
runner does. A failed job stops new ones from starting; those running finish and are kept.

Stopping: the workers (and the event queue's manager) ignore Ctrl-C — a terminal sends it to the
whole process group; only the parent decides — and on ``KeyboardInterrupt`` the parent ends the
running jobs with SIGTERM (a job in a store write finishes the write first: ``store.write_lock``),
so the NEB checkpoints in ``runs/`` and every finished job are what a rerun resumes from. Each
worker watches its parent and ends itself when it is gone (``kill -9`` of ``ncmflow study``, the
OOM killer): no orphan keeps computing, or writes a checkpoint the rerun is reading.

What a job's Response asks for (new flows, stops, stored data: ``flowstate``) is decided in the
parent as the sequential runner decides it; a job stopped meanwhile is never sent to a worker,
and ``stop_jobflow`` lets the jobs already running finish (jobflow-remote does the same).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.managers
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ncmflow.workflows import progress
from ncmflow.workflows.cores import idle_cores
from ncmflow.workflows.store import CONNECT_LOCK, embedded_location, file_lock, lock_writes, store_folder

if TYPE_CHECKING:
    from jobflow import Flow, Job, JobStore

    from ncmflow.workflows.flowstate import FlowState

POLL = 0.2  # s between two looks at the workers' progress events
WATCH = 1.0  # s between two looks of a worker at its parent
STOP_GRACE = 10.0  # s a terminated worker may take to finish a store write before it is killed


def default_workers(location: str | Path | None) -> int:
    """Workers for `ncmflow study`: the idle cores with an embedded (montydb folder) store, else 1."""
    return idle_cores(sample=0.5) if embedded_location(location) is not None else 1


def _stores(store: JobStore) -> list[Any]:
    return [store.docs_store, *store.additional_stores.values()]


def reopenable(store: JobStore) -> dict | None:
    """A picklable spec that opens this very store in another process, or None (in memory only)."""
    from maggma.stores import MemoryStore, MontyStore

    for s in _stores(store):
        if isinstance(s, MontyStore):  # a MemoryStore subclass: in memory only if said so
            if s.database_path in (None, ":memory:") or s.storage == "memory":
                return None
        elif isinstance(s, MemoryStore):
            return None
    from monty.json import jsanitize

    return jsanitize(store.as_dict(), strict=True, allow_bson=True)


def open_store(spec: dict) -> JobStore:
    """The store ``reopenable`` described, connected (under the connect lock for montydb: maggma
    rewrites montydb's config file on every connect, see ``store.get_store``); writes to an
    embedded store are serialised between processes by a file lock (``store.lock_writes``)."""
    from jobflow import JobStore

    store = JobStore.from_dict(spec)
    folder = store_folder(store)
    if folder is None:
        store.connect()
    else:
        with file_lock(folder / CONNECT_LOCK):
            store.connect()
    return lock_writes(store)


# --- process lifetimes --------------------------------------------------------------------------


def _watch_parent(parent: int) -> None:
    """In a worker or the queue's manager: end this process (SIGTERM, so a store write in the main
    thread finishes first) once ``parent`` is gone — its parent is then init or a subreaper."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="ncmflow-parent-watch", daemon=True).start()


@contextlib.contextmanager
def _no_sigint() -> Iterator[None]:
    """Processes started in the block begin with Ctrl-C blocked (a spawned process inherits the
    signal mask of the thread starting it): no KeyboardInterrupt while one is still importing.
    A Ctrl-C meanwhile is not lost: it reaches this process at the end of the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _stop_workers(executor: ProcessPoolExecutor) -> None:
    """End the running jobs: SIGTERM (deferred by a store write until it is done), then SIGKILL."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


# --- in the worker processes --------------------------------------------------------------------

_store: JobStore | None = None
_listening: list[Any] = []


def _start_worker(spec: dict, threads: int, events: Any, parent: int) -> None:
    """Each worker once: Ctrl-C left to the parent, an eye on the parent, torch's threads (before
    torch is imported), its store, its reporting."""
    global _store
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked since the spawn
    _watch_parent(parent)
    os.environ.setdefault("NCMFLOW_TORCH_THREADS", str(threads))  # a value the user set wins
    _store = open_store(spec)
    if events is not None:  # for the life of the process (kept: collected, it would stop listening)
        _listening.append(progress.listening(events.put))
        _listening[-1].__enter__()


def _run_job(job_dict: dict, folder: str, flow: str) -> dict[str, Any]:
    """Run one job (its Response recorded before its output: ``flowstate.run_job``); its outcome
    as plain data (exceptions of any kind may not pickle)."""
    from jobflow import Job

    from ncmflow.workflows.flowstate import inside, run_job

    try:
        job = Job.from_dict(job_dict)
        with inside(Path(folder)):
            return {"response": run_job(job, _store, flow)}
    except Exception as exc:  # noqa: BLE001 — reported to the parent as the sequential runner does
        return {"error": _first_line(exc), "traceback": traceback.format_exc()}


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


# --- in the parent ------------------------------------------------------------------------------


class WorkerTraceback(RuntimeError):
    """The traceback of a job that failed in a worker process (the cause of ``JobFailed``)."""


@dataclass(eq=False)
class _Task:
    job: Job
    top: bool = True  # one of the flow's own jobs (in the returned status)
    parent: _Task | None = None  # the job whose replacement or detour this one is part of
    waiting: int = 0  # jobs of its replacement and detour not resolved yet
    outcome: str | None = None  # "ran" | "reused" | "stopped" once decided


class _Scheduler:
    """Jobs start when every parent in the run is resolved (finished, its replacement and detour
    included, or stopped); what a Response asks for is decided by ``FlowState`` as in the
    sequential runner, here in the parent process."""

    def __init__(self, state: FlowState, workdir: Path, workers: int, spec: dict) -> None:
        self.state, self.workdir, self.workers, self.spec = state, Path(workdir).resolve(), workers, spec
        self.store = state.store
        self.status: dict[str, str] = {}
        self.ours: set[str] = set()  # uuids of the run's jobs (references to others are not waited on)
        self.resolved: set[str] = set()  # finished (new flows included), found in the store, or stopped
        self.holding: set[str] = set()  # ran, but their replacement or detour has not finished
        self.pending: list[_Task] = []
        self.running: dict[Future, _Task] = {}

    def add(self, jobs: list[Job], top: bool = True, parent: _Task | None = None) -> None:
        from ncmflow.workflows.flowstate import finished

        done = finished(self.store, jobs)
        for job in jobs:
            self.ours.add(job.uuid)
            task = _Task(job, top, parent)
            if parent is not None:
                parent.waiting += 1
            if (job.uuid, job.index) in done:
                task.outcome = "reused"
                progress.report(**_meta(job), event="reused")
                self._expand(task, self.state.new_jobs(job))  # resumed, as the sequential runner
            else:
                self.pending.append(task)

    def _expand(self, task: _Task, new: list[tuple[str, list[Job]]]) -> None:
        """Add the jobs of the flows ``task`` returned; it resolves once its replacement and its
        detour have (its children wait for them; not for an addition)."""
        task.waiting += 1  # not resolved while its own jobs are being added
        for kind, jobs in new:
            self.add(jobs, top=False, parent=None if kind == "addition" else task)
        task.waiting -= 1
        if task.waiting:
            self.holding.add(task.job.uuid)
        else:
            self._resolve(task)

    def _resolve(self, task: _Task) -> None:
        uuid = task.job.uuid
        if task.parent is None or task.parent.job.uuid != uuid:
            self.holding.discard(uuid)
        if uuid not in self.holding:
            self.resolved.add(uuid)
        if task.top:
            self.status[uuid] = task.outcome
        if task.outcome == "ran":
            progress.report(**_meta(task.job), event="done")
        if task.parent is not None:
            task.parent.waiting -= 1
            if task.parent.waiting == 0:
                self._resolve(task.parent)

    def ready(self, task: _Task) -> bool:
        parents = self.state.graph.predecessors(task.job.uuid)
        return all(p not in self.ours or p in self.resolved for p in parents)

    def run(self) -> dict[str, str]:
        from ncmflow.workflows.flowstate import JobFailed

        failure: JobFailed | None = None
        with contextlib.ExitStack() as stack:
            pool: list[Any] = []  # [pool, events], made for the first job that must run
            try:
                while (self.pending and failure is None) or self.running:
                    if failure is None:
                        self._submit(pool, stack)
                    if not self.running:
                        continue
                    done, _ = wait(self.running, timeout=POLL, return_when=FIRST_COMPLETED)
                    _drain(pool[1])  # a job's own events before its "done"
                    for future in done:
                        failed = self._collect(future, self.running.pop(future))
                        failure = failure or failed  # siblings already running may finish
            except BaseException:  # Ctrl-C (or a bug here): the running jobs end now, not when done
                if pool:
                    _stop_workers(pool[0])
                    pool[0].shutdown(wait=True, cancel_futures=True)
                    pool.clear()
                raise
            finally:
                if pool:
                    pool[0].shutdown(wait=True, cancel_futures=True)
                    _drain(pool[1])
        if failure is not None:
            raise failure
        return self.status

    def _pool(self, pool: list[Any], stack: contextlib.ExitStack) -> ProcessPoolExecutor:
        if not pool:
            context = multiprocessing.get_context("spawn")
            self.workers = min(self.workers, len(self.pending) + 1)  # no idle processes
            threads = max(1, idle_cores(sample=0.5) // self.workers)
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):  # read by the workers' BLAS at start
                given = os.environ.get(var, "")
                if not given.isdigit() or int(given) > threads:  # the CLI set the whole machine's
                    os.environ[var] = str(threads)
            manager = multiprocessing.managers.SyncManager(ctx=context)
            with _no_sigint():
                manager.start(_watch_parent, (os.getpid(),))
            events = stack.enter_context(manager).Queue()
            pool += [ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                         initargs=(self.spec, threads, events, os.getpid())), events]
        return pool[0]

    def _submit(self, pool: list[Any], stack: contextlib.ExitStack) -> None:
        from monty.json import jsanitize

        while self.pending and len(self.running) < self.workers:
            task = next((t for t in self.pending if self.ready(t)), None)
            if task is None:
                if self.running:
                    return
                task = self.pending[0]  # nothing runs and nothing is ready: take the flow's order
            self.pending.remove(task)
            if (stop := self.state.stop_reason(task.job)) is not None:
                self.state.stop([stop])
                task.outcome = "stopped"
                progress.report(**_meta(task.job), event="stopped")
                self._resolve(task)
                continue
            progress.report(**_meta(task.job), event="start")
            folder = self.workdir / "runs" / task.job.uuid
            job_dict = jsanitize(task.job.as_dict(), strict=True, allow_bson=True)
            executor = self._pool(pool, stack)
            with _no_sigint():  # a worker may be started here
                self.running[executor.submit(_run_job, job_dict, str(folder), self.state.flow)] = task

    def _collect(self, future: Future, task: _Task) -> Exception | None:
        from ncmflow.workflows.flowstate import JobFailed

        name = task.job.name
        try:
            outcome = future.result()
        except BrokenProcessPool as exc:
            return JobFailed(f"job '{name}' failed: its worker process died ({_first_line(exc)})")
        except Exception as exc:  # noqa: BLE001 — e.g. a result that did not pickle
            return JobFailed(f"job '{name}' failed: {_first_line(exc)}")
        if "error" in outcome:
            failed = JobFailed(f"job '{name}' failed: {outcome['error']}")
            failed.__cause__ = WorkerTraceback(outcome["traceback"])
            return failed
        running = {t.job.uuid for t in self.running.values()}
        task.outcome = "ran"
        self._expand(task, self.state.record(task.job, outcome["response"], running))
        return None


def _meta(job: Job) -> dict[str, Any]:
    from ncmflow.workflows.flowstate import job_meta

    return job_meta(job)


def _drain(events: Any) -> None:
    while True:
        try:
            event = events.get_nowait()
        except (queue.Empty, EOFError, OSError):
            return
        progress.report(**event)


def run_parallel(flow: Flow, store: JobStore, workdir: Path, workers: int, spec: dict,
                 only: set[str] | None = None) -> dict[str, str]:
    """``run_flow`` with ``workers`` processes; the store must be ``reopenable`` (``spec``)."""
    from ncmflow.workflows.flowstate import FlowState

    scheduler = _Scheduler(FlowState(store, flow), workdir, workers, spec)
    scheduler.add([j for j, _ in flow.iterflow() if only is None or j.uuid in only])
    return scheduler.run()
