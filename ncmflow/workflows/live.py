"""The rich live panel of `ncmflow study`: which model, which stage, NEB iteration, max force."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.table import Table

from ncmflow.workflows import progress


class StudyDisplay:
    """Listens to progress events while the study runs and redraws one table."""

    def __init__(self, console: Console, rows: tuple[str, ...]) -> None:
        self.rows: dict[str, dict[str, Any]] = {m: {"stage": "waiting", "detail": ""} for m in rows}
        self.started = time.perf_counter()
        self.live = Live(self._table(), console=console, refresh_per_second=4, transient=False)

    def _table(self) -> Table:
        table = Table("model", "stage", "progress", title=f"ncmflow study — {self._elapsed()}")
        for model, row in self.rows.items():
            table.add_row(model, row["stage"], row["detail"])
        return table

    def _elapsed(self) -> str:
        return f"{time.perf_counter() - self.started:5.0f} s"

    def __call__(self, event: dict[str, Any]) -> None:
        row = self.rows.setdefault(event.get("model") or "compare", {"stage": "", "detail": ""})
        if "step" in event:
            row["detail"] = f"NEB iteration {event['step']}, max force {event['fmax']:.3f} eV/Å"
        else:
            row["stage"] = f"{event.get('stage')}: {event.get('event')}"
            if event.get("event") == "start":
                row["detail"] = ""
        self.live.update(self._table())

    def __enter__(self) -> StudyDisplay:
        self._listening = progress.listening(self)
        self._listening.__enter__()
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(*exc)
        self._listening.__exit__(*exc)

    @staticmethod
    def summary(markdown: str) -> Markdown:
        return Markdown(markdown)
