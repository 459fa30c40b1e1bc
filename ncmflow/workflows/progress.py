"""Progress events from running jobs to whoever displays them (the CLI's rich panel).

Jobs run in the caller's process when run locally, so a module-level listener is enough;
on a cluster nobody listens and reporting costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

Listener = Callable[[dict[str, Any]], None]
_listeners: list[Listener] = []
_current: dict[str, Any] = {}


def row_label(model: str | None, site: int | None = None, potential: str | None = None) -> str | None:
    """The display row of a job: 'cpan site 1 chgnet' (model alone for jobs without a site)."""
    if model is None:
        return None
    return model + (f" site {site}" if site is not None else "") + (f" {potential}" if potential else "")


def report(**event: Any) -> None:
    """Send an event, e.g. ``report(model="bare", stage="neb", step=12, fmax=0.31)``."""
    for listener in _listeners:
        listener(event)


@contextmanager
def running(meta: dict[str, Any]):
    """Within: ``say`` speaks for the job of ``meta`` (its display row and stage; the runners set it)."""
    before = dict(_current)
    _current.clear()
    _current.update(meta)
    try:
        yield
    finally:
        _current.clear()
        _current.update(before)


def say(detail: str) -> None:
    """A running job's progress on its own row, e.g. ``say("SCF iteration 12, …")``: jobs that
    do not know their row (a GPAW single point) report through the runner's ``running``."""
    report(**_current, detail=detail)


@contextmanager
def listening(listener: Listener):
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
