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


def report(**event: Any) -> None:
    """Send an event, e.g. ``report(model="bare", stage="neb", step=12, fmax=0.31)``."""
    for listener in _listeners:
        listener(event)


@contextmanager
def listening(listener: Listener):
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
