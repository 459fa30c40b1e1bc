"""The Python API's own functions: what `ncmflow study` runs and the rows `ncmflow compare`
writes, for scripts and notebooks (``ncmflow.run_study``, ``ncmflow.barrier_table``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobflow import JobStore

    from ncmflow.workflows.store import StoreLocation
    from ncmflow.workflows.study import StudyConfig


def run_study(config: StudyConfig, store: str | os.PathLike | StoreLocation | None = None,
              workers: int | None = 1) -> dict[str, str]:
    """Run a study as `ncmflow study` does, without its display; returns {job uuid: "ran" |
    "reused" | "stopped"}.

    ``store``: a folder (embedded montydb, created on first use), a jobflow store file, or None
    for the CLI's default (the user's jobflow config, else ./ncmflow_data). The flow is saved
    under ``config.key`` the first time: a second call, or `ncmflow study` with the same options,
    reuses every finished job. ``workers`` > 1 runs ready jobs side by side in that many
    processes (an embedded store only). A job that fails raises ``JobFailed``; finished jobs stay.
    """
    from ncmflow.workflows.engines import get_engine
    from ncmflow.workflows.runner import run_flow, saved_flow
    from ncmflow.workflows.store import get_store, resolve_store, study_lock
    from ncmflow.workflows.study import study_flow

    problem = get_engine(config.engine).missing()
    if problem:
        raise RuntimeError(problem)
    where = resolve_store(store)
    job_store = get_store(where)
    with study_lock(where, config.key):
        flow = saved_flow(job_store, config.key, lambda: study_flow(config))
        return run_flow(flow, job_store, where.run_dir, workers=workers)


def barrier_table(store: JobStore | str | os.PathLike | None = None, **filters: Any) -> list[dict[str, Any]]:
    """The rows of ``barriers.csv`` as plain dicts (numbers as numbers; ``pandas.DataFrame(rows)``
    makes the table), one per NEB, the lowest converged saddle of each site ``selected``.

    ``store``: an open JobStore or a location as for ``run_study``; ``filters``: model, engine,
    potential, study (a ``StudyConfig.key``), since, hop — as `ncmflow compare`.
    """
    from ncmflow.analysis.barriers import COLUMNS, barrier_rows, load_barriers, not_run_rows
    from ncmflow.workflows.store import get_store

    job_store = store if hasattr(store, "query") else get_store(store)
    barriers = load_barriers(job_store, **filters)
    rows = barrier_rows(barriers) + not_run_rows(job_store, barriers, **filters)
    return [{column: getattr(row, column) for column in COLUMNS} for row in rows]
