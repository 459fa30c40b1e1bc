"""The report's tables: one structure, rendered as Markdown and as HTML, and its number format."""

from __future__ import annotations

import html
from dataclasses import dataclass, field


def num(value: float | None, signed: bool = False, empty: str = "—") -> str:
    """Three decimals, never "-0.000" (so regenerated files do not differ by a sign of zero)."""
    if value is None:
        return empty
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    return text.replace("-0.000", "+0.000" if signed else "0.000")


@dataclass
class Table:
    """One table of the report, rendered both as Markdown and as HTML."""

    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    note: str = ""
    lead: list[str] = field(default_factory=list)

    def markdown(self) -> list[str]:
        cells = [[c.replace("|", "\\|").replace("\n", " ") for c in row] for row in self.rows]
        lines = [f"## {self.title}", ""]
        for text in self.lead:
            lines += [text, ""]
        lines += ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return [*lines, "", *([self.note, ""] if self.note else [])]

    def html(self) -> str:
        parts = [f"<h2>{html.escape(self.title)}</h2>", *(f"<p>{html.escape(t)}</p>" for t in self.lead)]
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in self.header) + "</tr>"
                     + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                               for row in self.rows) + "</table>")
        if self.note:
            parts.append(f"<p class='note'>{html.escape(self.note)}</p>")
        return "".join(parts)
