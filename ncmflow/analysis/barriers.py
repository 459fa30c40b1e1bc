"""The barrier comparison, regenerated from a store query: the users' main report.

Reads BarrierDocs (never computes), keeps the newest result per (model, engine), and writes
barriers.csv / barriers.md (deterministic: rerunning with nothing new gives identical bytes),
the profile and bar-chart PNGs, an HTML page embedding them, and the relaxed end points.
"""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jobflow import JobStore
from monty.json import MontyDecoder

from ncmflow.analysis.neb import BarrierProfile, plot_profiles, profile_from_arrays
from ncmflow.analysis.plotting import figure, save
from ncmflow.structures import MODELS
from ncmflow.workflows.documents import PAPER_BARRIERS, BarrierDoc, BarrierTable
from ncmflow.workflows.study import barrier_row, barrier_table

PAPER_DIFFERENCE = round(PAPER_BARRIERS["cpan"] - PAPER_BARRIERS["bare"], 2)  # +0.53 eV
COLUMNS = ("model", "engine", "forward_barrier", "reverse_barrier", "reaction_energy", "converged",
           "force_calls", "wall_time", "paper_barrier", "reason")


@dataclass
class StoredBarrier:
    uuid: str
    completed_at: str
    study: str | None
    doc: BarrierDoc


def barrier_query(model: str | None = None, engine: str | None = None, study: str | None = None,
                  since: datetime | None = None) -> dict[str, Any]:
    """The MongoDB-language filter for NEB results (works on montydb and MongoDB alike)."""
    query: dict[str, Any] = {"output.@class": "BarrierDoc"}
    if model:
        query["output.model"] = model
    if engine:
        query["output.engine"] = engine
    if study:
        query["metadata.study"] = study
    if since:
        query["completed_at"] = {"$gte": since.isoformat()}
    return query


def load_barriers(store: JobStore, **filters: Any) -> list[StoredBarrier]:
    """Newest BarrierDoc per (model, engine) matching the filters, with its arrays loaded."""
    newest: dict[tuple[str, str], dict] = {}
    for doc in store.query(barrier_query(**filters), properties=["uuid", "completed_at", "output.model",
                                                                  "output.engine", "metadata"]):
        key = (doc["output"]["model"], doc["output"]["engine"])
        if key not in newest or doc["completed_at"] > newest[key]["completed_at"]:
            newest[key] = doc
    out = []
    order = {m: i for i, m in enumerate(MODELS)}
    for key in sorted(newest, key=lambda k: (order.get(k[0], len(order)), k)):
        meta = newest[key]
        full = store.query_one({"uuid": meta["uuid"]}, load=True)
        out.append(StoredBarrier(meta["uuid"], meta["completed_at"], meta.get("metadata", {}).get("study"),
                                 MontyDecoder().process_decoded(full["output"])))
    return out


def comparison(barriers: list[StoredBarrier]) -> BarrierTable:
    return barrier_table([barrier_row(b.doc, b.uuid) for b in barriers])


def profile(doc: BarrierDoc) -> BarrierProfile:
    """Splined profile of a stored NEB (tangential forces, as ASE's NEBTools)."""
    return profile_from_arrays(doc.energies, doc.forces, [s.cart_coords for s in doc.images],
                               cell=doc.images[0].lattice.matrix)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def table_csv(table: BarrierTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in table.rows:
        writer.writerow(["" if getattr(row, c) is None else _fmt(getattr(row, c)) for c in COLUMNS])
    return buffer.getvalue()


def table_markdown(table: BarrierTable) -> str:
    head = ["model", "engine", "E_a forward (eV)", "E_a reverse (eV)", "ΔE (eV)", "converged",
            "force calls", "wall (s)", "paper (eV)"]
    lines = ["# Ni migration barriers", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for r in table.rows:
        cells = [r.model, r.engine, r.forward_barrier, r.reverse_barrier, r.reaction_energy,
                 "yes" if r.converged else f"no ({r.reason})", r.force_calls, r.wall_time, r.paper_barrier]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    lines += ["", "cPAN − bare (eV): "
              + ", ".join(f"{e} {_fmt(d)}" for e, d in table.cpan_minus_bare.items())
              + f"; paper +{PAPER_DIFFERENCE:.2f} (2.83 → 3.36 eV, CASTEP PBE+D).", ""]
    return "\n".join(lines)


def plot_comparison(table: BarrierTable, path: Path) -> Path:
    """Bars per model and engine beside the paper's barrier for that model (bulk/bare: 2.83 eV)."""
    engines = sorted({r.engine for r in table.rows})
    models = [m for m in ("bulk", "bare", "cpan") if any(r.model == m for r in table.rows)]
    paper = {r.model: r.paper_barrier for r in table.rows}
    width = 0.8 / (len(engines) + 1)
    labelled: set[str] = set()
    with figure(5.0, 3.4) as (fig, ax):
        for i, engine in enumerate([*engines, "paper"]):
            for j, model in enumerate(models):
                row = next((r for r in table.rows if r.model == model and r.engine == engine), None)
                value = paper.get(model) if engine == "paper" else (row.forward_barrier if row else None)
                if value is None:
                    continue
                bar = ax.bar(j + (i - len(engines) / 2) * width, value, width,
                             color="0.65" if engine == "paper" else f"C{i}",
                             label=None if engine in labelled else engine)
                labelled.add(engine)
                ax.bar_label(bar, fmt="%.2f", fontsize=8)
        ax.set_xticks(range(len(models)), models)
        ax.set_ylabel("Ni migration barrier (eV)")
        ax.margins(y=0.15)
        ax.legend(fontsize=9)
        return save(fig, path)


def write_report(store: JobStore, out: Path, **filters: Any) -> dict[str, Path]:
    """Query, tabulate, plot and write the report folder; returns what was written."""
    barriers = load_barriers(store, **filters)
    if not barriers:
        raise ValueError("the store holds no NEB results matching the query: run `ncmflow study` first")
    out = Path(out)
    (out / "structures").mkdir(parents=True, exist_ok=True)
    table = comparison(barriers)
    files = {"csv": out / "barriers.csv", "md": out / "barriers.md"}
    files["csv"].write_text(table_csv(table))
    files["md"].write_text(table_markdown(table))
    profiles = {f"{b.doc.model} ({b.doc.engine})": profile(b.doc) for b in barriers
                if b.doc.energies and b.doc.forces}
    if profiles:
        files["profiles"] = plot_profiles(profiles, out / "neb_profiles.png")
    files["bars"] = plot_comparison(table, out / "barrier_comparison.png")
    for b in barriers:
        if b.doc.images:
            for name, image in (("start", b.doc.images[0]), ("end", b.doc.images[-1])):
                image.to(filename=str(out / "structures" / f"{b.doc.model}_{b.doc.engine}_{name}.cif"))
    files["html"] = out / "index.html"
    files["html"].write_text(_html(table, [files[k] for k in ("profiles", "bars") if k in files]))
    return files


def _html(table: BarrierTable, images: list[Path]) -> str:
    rows = "".join("<tr>" + "".join(f"<td>{_fmt(getattr(r, c))}</td>" for c in COLUMNS) + "</tr>"
                   for r in table.rows)
    pictures = "".join(f'<img alt="{p.stem}" src="data:image/png;base64,'
                       f'{base64.b64encode(p.read_bytes()).decode()}">' for p in images)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Ni migration barriers</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 8px;border:1px solid #ccc}"
            "table{border-collapse:collapse}img{max-width:48%;margin:1em 1%}</style></head><body>"
            "<h1>Ni migration barriers</h1><table><tr>"
            + "".join(f"<th>{c}</th>" for c in COLUMNS) + f"</tr>{rows}</table>"
            f"<p>Paper (CASTEP PBE+D): bare 2.83 eV, cPAN 3.36 eV, difference +{PAPER_DIFFERENCE} eV.</p>"
            f"{pictures}</body></html>\n")
