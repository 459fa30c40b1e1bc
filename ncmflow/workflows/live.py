"""The rich live panel of `ncmflow study`: which model, which stage, NEB iteration, max force."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ncmflow.workflows import progress


class StudyDisplay:
    """Listens to progress events while the study runs and redraws one table.

    Without a terminal (redirected to a file, ``tee``, a CI log) a redrawn table shows nothing
    until the end, so each event becomes one plain line instead: job started, finished or
    reused, and a running job's steps (the NEB's iteration and max force, GPAW's SCF iteration) at
    most every ``PLAIN_INTERVAL`` seconds a row.
    """

    PLAIN_INTERVAL = 10.0  # s between two NEB-step lines of one row

    def __init__(self, console: Console, rows: tuple[str, ...]) -> None:
        self.rows: dict[str, dict[str, Any]] = {m: {"stage": "waiting", "detail": ""} for m in rows}
        self.started = time.perf_counter()
        self.console = console
        self.plain = not console.is_terminal
        self._last_step: dict[str, float] = {}
        self.live = Live(self._table(), console=console, refresh_per_second=4, transient=False)

    def _table(self) -> Table:
        table = Table("model", "stage", "progress", title=f"ncmflow study — {self._elapsed()}")
        for model, row in self.rows.items():
            table.add_row(model, row["stage"], row["detail"])
        return table

    def _elapsed(self) -> str:
        return f"{time.perf_counter() - self.started:5.0f} s"

    @staticmethod
    def _detail(event: dict[str, Any]) -> str | None:
        """A step of a running job (NEB iteration, SCF iteration …), or None for a job event."""
        if "step" in event:
            return f"NEB iteration {event['step']}, max force {event['fmax']:.3f} eV/Å"
        return event.get("detail")

    def _line(self, name: str, event: dict[str, Any]) -> None:
        detail = self._detail(event)
        if detail is not None:
            now = time.perf_counter()
            if now - self._last_step.get(name, -1e9) < self.PLAIN_INTERVAL:
                return
            self._last_step[name] = now
            text = f"{name}: {detail}"
        else:
            text = f"{name}: {event.get('stage')} {event.get('event')}"
        self.console.print(f"[{self._elapsed().strip():>6}] {text}", markup=False, highlight=False,
                           soft_wrap=True)
        self.console.file.flush()

    def __call__(self, event: dict[str, Any]) -> None:
        name = event.get("model") or "compare"
        if self.plain:
            self._line(name, event)
            return
        row = self.rows.setdefault(name, {"stage": "", "detail": ""})
        detail = self._detail(event)
        if detail is not None:
            row["detail"] = detail
        else:
            row["stage"] = f"{event.get('stage')}: {event.get('event')}"
            if event.get("event") == "start":
                row["detail"] = ""
        self.live.update(self._table())

    def __enter__(self) -> StudyDisplay:
        self._listening = progress.listening(self)
        self._listening.__enter__()
        if not self.plain:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.plain:
            self.live.__exit__(*exc)
        self._listening.__exit__(*exc)
