"""The barrier comparison, regenerated from a store query: the users' main report.

Reads ``BarrierDoc``s (never computes): the newest result per (engine, potential, model, hop kind,
site, path); per site the lowest converged saddle of its paths is selected; the statistics are in
``ncmflow.analysis.statistics`` and the figures in ``ncmflow.analysis.barrier_plots``. Writes
``barriers.csv`` (one row per NEB) and ``barriers.md`` (deterministic: nothing new in the store
gives identical bytes), the PNGs, an HTML page embedding them, and the selected paths' relaxed end
points.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jobflow import JobStore
from monty.json import MontyDecoder

from ncmflow.analysis.barrier_plots import ProfileEntry, plot_distribution, plot_site_profiles
from ncmflow.analysis.dftcheck import write_dft_check
from ncmflow.analysis.neb import BarrierProfile, profile_from_arrays
from ncmflow.analysis.statistics import (
    PAPER_DIFFERENCE,
    QUANTITIES,
    attribution,
    distributions,
    model_rank,
    paired_differences,
    pooled_difference,
    site_pairs,
)
from ncmflow.analysis.tables import Table
from ncmflow.analysis.tables import num as _num
from ncmflow.workflows.documents import PAPER_BARRIERS, BarrierDoc, BarrierRow, BarrierTable, mark_selected

COLUMNS = ("model", "site", "hop_kind", "engine", "potential", "path", "path_method", "forward_barrier",
           "reverse_barrier", "reaction_energy", "converged", "selected", "force_calls", "wall_time",
           "hop_depth", "ni_n_start", "ni_n_end", "paper_barrier", "reason", "uuid")
# what load_barriers reads before deciding which documents to load in full
KEY_PROPERTIES = ("completed_at", "metadata.study", "output.engine", "output.potential", "output.model",
                  "output.hop_kind", "output.site", "output.path")
PAPER_LINE = (f"paper (CASTEP PBE+D, one site): bare {PAPER_BARRIERS['bare']:.2f} eV, cPAN "
              f"{PAPER_BARRIERS['cpan']:.2f} eV, difference +{PAPER_DIFFERENCE:.2f} eV")


@dataclass
class StoredBarrier:
    uuid: str
    completed_at: str
    study: str | None
    doc: BarrierDoc
    index: int = 1


def barrier_query(model: str | None = None, engine: str | None = None, potential: str | None = None,
                  study: str | None = None, since: datetime | None = None,
                  hop: str | None = None) -> dict[str, Any]:
    """The MongoDB-language filter for NEB results (works on montydb and MongoDB alike).

    ``hop`` keeps the slab results of one hop kind (bulk results have no surface and stay)."""
    query: dict[str, Any] = {"output.@class": "BarrierDoc"}
    if hop:
        query["output.hop_kind"] = {"$in": [hop, "bulk"]}
    for name, value in (("output.model", model), ("output.engine", engine),
                        ("output.potential", potential), ("metadata.study", study)):
        if value:
            query[name] = value
    if since:
        query["completed_at"] = {"$gte": since.isoformat()}
    return query


def _sort_key(key: tuple) -> tuple:
    engine, potential, model, hop_kind, site, path = key
    return engine, potential or "", model_rank(model), model, site, hop_kind or "", path


def load_barriers(store: JobStore, **filters: Any) -> list[StoredBarrier]:
    """Newest BarrierDoc per (engine, potential, model, hop kind, site, path) matching the filters,
    arrays loaded, in (engine, potential, bulk/bare/cpan, site, path) order."""
    newest: dict[tuple, tuple[tuple, dict]] = {}
    for meta in store.query(barrier_query(**filters), properties=list(KEY_PROPERTIES)):
        out = meta.get("output", {})
        key = (out.get("engine", ""), out.get("potential"), out.get("model", ""), out.get("hop_kind"),
               out.get("site", 0), out.get("path", "A"))
        stamp = (meta.get("completed_at") or "", meta.get("index", 1), meta["uuid"])
        if key not in newest or stamp > newest[key][0]:
            newest[key] = (stamp, meta)
    chosen = [newest[key][1] for key in sorted(newest, key=_sort_key)]
    wanted = {(m["uuid"], m.get("index", 1)) for m in chosen}
    full = {}
    for doc in store.query({"uuid": {"$in": sorted({u for u, _ in wanted})}},
                           properties=["output"], load=True):
        if (doc["uuid"], doc.get("index", 1)) in wanted:
            full[(doc["uuid"], doc.get("index", 1))] = doc["output"]
    decoder = MontyDecoder()
    barriers = []
    for meta in chosen:
        doc = decoder.process_decoded(full[(meta["uuid"], meta.get("index", 1))])
        barriers.append(StoredBarrier(
            uuid=meta["uuid"], completed_at=meta.get("completed_at") or "",
            study=(meta.get("metadata") or {}).get("study"), index=meta.get("index", 1),
            doc=doc if isinstance(doc, BarrierDoc) else BarrierDoc.model_validate(doc)))
    return barriers


def barrier_rows(barriers: list[StoredBarrier]) -> list[BarrierRow]:
    """One row per NEB, in the barriers' order, with the selected path of every site marked."""
    return mark_selected([BarrierRow.from_doc(b.doc, b.uuid) for b in barriers])


def not_run_rows(store: JobStore, barriers: list[StoredBarrier], **filters: Any) -> list[BarrierRow]:
    """Rows of NEBs a study's table lists as never run (a relaxation stopped its children), from
    the newest study table of each study the filters match, unless a NEB result exists now."""
    query: dict[str, Any] = {"output.@class": "BarrierTable"}
    if filters.get("study"):
        query["metadata.study"] = filters["study"]
    have = {(b.doc.engine, b.doc.potential, b.doc.model, b.doc.site, b.doc.path) for b in barriers}
    newest: dict[str, dict] = {}
    for doc in store.query(query, properties=["output", "metadata", "completed_at"]):
        study = (doc.get("metadata") or {}).get("study", "")
        if study not in newest or (doc.get("completed_at") or "") > (newest[study].get("completed_at") or ""):
            newest[study] = doc
    rows = [BarrierRow.model_validate(r) for doc in newest.values() for r in doc["output"]["rows"]]
    keep = {k: filters.get(k) for k in ("model", "engine", "potential") if filters.get(k)}
    return [r for r in rows if r.uuid is None and (r.reason or "").startswith("not run")
            and (r.engine, r.potential, r.model, r.site, r.path) not in have
            and all(getattr(r, k) == v for k, v in keep.items())]


def comparison(barriers: list[StoredBarrier]) -> BarrierTable:
    return BarrierTable(rows=barrier_rows(barriers))


def profile(doc: BarrierDoc) -> BarrierProfile:
    """Splined profile of a stored NEB (tangential forces, as ASE's NEBTools)."""
    return profile_from_arrays(doc.energies, doc.forces, [s.cart_coords for s in doc.images],
                               cell=doc.images[0].lattice.matrix)


def _pm(mean: float | None, stderr: float | None) -> str:
    if mean is None:
        return "—"
    return f"{_num(mean, signed=True)} ± {_num(stderr)}" if stderr is not None else _num(mean, signed=True)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return _num(value)
    return str(value)


def table_csv(rows: list[BarrierRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(getattr(row, c)) for c in COLUMNS])
    return buffer.getvalue()


def _site_groups(rows: list[BarrierRow]) -> dict[tuple, list[BarrierRow]]:
    groups: dict[tuple, list[BarrierRow]] = {}
    for r in rows:
        groups.setdefault((r.engine, r.potential_label, r.model, r.hop_kind, r.site), []).append(r)
    return groups


def summary_tables(rows: list[BarrierRow]) -> list[Table]:
    """The report's tables: distributions, paired differences, paired sites, every site, failures."""
    tables = [Table(
        "Forward barrier per potential and model", ("potential", "model", "sites", "mean (eV)", "std (eV)",
                                                    "min (eV)", "max (eV)", "paper (eV)"),
        [(d.potential, d.model, str(d.n), _num(d.mean), _num(d.std), _num(d.min), _num(d.max), _num(d.paper))
         for d in distributions(rows)],
        note="Selected path per site (the lowest converged saddle); std is the sample standard deviation.")]
    per = {q: {d.potential: d for d in paired_differences(rows, q)} for q in QUANTITIES}
    diff_rows = [(p, str(per["forward_barrier"][p].n),
                  *(_pm(per[q][p].mean, per[q][p].stderr) if p in per[q] else "—" for q in QUANTITIES))
                 for p in sorted(per["forward_barrier"])]
    if len(per["forward_barrier"]) > 1:
        pooled = {q: pooled_difference(rows, q) for q in QUANTITIES}
        diff_rows.append(("all, pooled pairs", str(pooled["forward_barrier"].n_pairs),
                          *(_pm(pooled[q].mean, pooled[q].stderr) for q in QUANTITIES)))
        diff_rows.append((f"all, mean of {pooled['forward_barrier'].n_potentials} potential means", "—",
                          *(_pm(pooled[q].mean_of_means, pooled[q].stderr_of_means) for q in QUANTITIES)))
    diff_rows.append(("paper (CASTEP PBE+D)", "—", _num(PAPER_DIFFERENCE, signed=True), "—", "—"))
    tables.append(Table(
        "cPAN − bare, paired site by site", ("potential", "pairs", "Δ E_a forward (eV)",
                                             "Δ E_a reverse (eV)", "Δ E_reaction (eV)"),
        diff_rows, lead=[attribution(rows)],
        note="Mean ± standard error over sites whose bare and cPAN paths both converged (same slab, "
             "Ni and vacancy). Δ forward = Δ reverse + Δ reaction."))
    pairs = site_pairs(rows)
    tables.append(Table(
        "Paired sites", ("potential", "site", "bare E_a (eV)", "cPAN E_a (eV)", "Δ forward (eV)",
                         "Δ reverse (eV)", "Δ reaction (eV)"),
        [(p.potential, str(p.site), _num(p.bare.forward_barrier), _num(p.cpan.forward_barrier),
          *(_num(p.difference(q), signed=True) for q in QUANTITIES)) for p in pairs]))
    paths = sorted({r.path for r in rows})
    failed = [r for r in rows if not r.converged]
    site_rows = []
    for (_, potential, model, hop_kind, site), group in _site_groups(rows).items():
        by_path = {r.path: r for r in group}
        best = next((r for r in group if r.selected), None)
        has_nin = best is not None and best.ni_n_start is not None
        nin = f"{_num(best.ni_n_start)} → {_num(best.ni_n_end)}" if has_nin else "—"
        site_rows.append((
            potential, model, str(site), hop_kind or "—",
            *(("n.c." if not by_path[p].converged else _num(by_path[p].forward_barrier))
              if p in by_path else "—" for p in paths),
            best.path if best else "none", *(_num(getattr(best, q) if best else None) for q in QUANTITIES),
            _num(best.hop_depth if best else None), nin, _num(group[0].paper_barrier)))
    tables.append(Table(
        "Every site", ("potential", "model", "site", "hop", *(f"path {p} E_a" for p in paths), "selected",
                       "E_a fwd (eV)", "E_a rev (eV)", "ΔE (eV)", "depth (Å)", "Ni–N start → end (Å)",
                       "paper (eV)"),
        site_rows, note="n.c.: not converged (reason below)." if failed else ""))
    if failed:
        tables.append(Table("Not converged", ("potential", "model", "site", "path", "reason"),
                            [(r.potential_label, r.model, str(r.site), r.path, r.reason or "—")
                             for r in failed]))
    return [t for t in tables if t.rows]


def headline(rows: list[BarrierRow]) -> str:
    """One line: cPAN − bare per potential beside the paper's difference."""
    diffs = paired_differences(rows)
    parts = [f"{d.potential} {_pm(d.mean, d.stderr)} ({d.n} site{'s' if d.n != 1 else ''})" for d in diffs]
    return (f"cPAN − bare (eV, paired by site): {'; '.join(parts) or 'no paired site'}; "
            f"paper +{PAPER_DIFFERENCE:.2f} ({PAPER_BARRIERS['bare']:.2f} → {PAPER_BARRIERS['cpan']:.2f} eV, "
            "CASTEP PBE+D).")


HOP_TEXT = {"subsurface": "subsurface (the Ni leaves the surface TM site for the Li layer below)",
            "in-plane": "in-plane (the Ni moves into the Li-layer site of the surface plane)"}


def hop_line(rows: list[BarrierRow]) -> str:
    """Which slab hop the report is about (a report never mixes kinds: see ``write_report``)."""
    kinds = sorted({r.hop_kind for r in rows if r.hop_kind not in (None, "bulk")})
    return "Slab hop: " + ", ".join(HOP_TEXT.get(k, k) for k in kinds) + "." if kinds else ""


def table_markdown(rows: list[BarrierRow], extra: Iterable[Table] = ()) -> str:
    lines = ["# Ni migration barriers", "", *([hop_line(rows), ""] if hop_line(rows) else []),
             headline(rows), ""]
    for table in [*summary_tables(rows), *extra]:
        lines += table.markdown()
    return "\n".join(lines)


def _html(rows: list[BarrierRow], images: Iterable[Path], extra: Iterable[Table] = ()) -> str:
    parts = [f"<p>{html.escape(hop_line(rows))}</p>", f"<p>{html.escape(headline(rows))}</p>"]
    pictures = "".join(f'<img alt="{p.stem}" src="data:image/png;base64,'
                       f'{base64.b64encode(p.read_bytes()).decode()}">' for p in images)
    parts.append(f"<div>{pictures}</div>")
    parts += [table.html() for table in [*summary_tables(rows), *extra]]
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Ni migration barriers</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}"
            "td,th{padding:3px 8px;border:1px solid #ccc;text-align:right}"
            "td:first-child,th:first-child{text-align:left}table{border-collapse:collapse}"
            ".note{color:#555;font-size:90%}img{max-width:100%;margin:1em 0;display:block}</style>"
            "</head><body><h1>Ni migration barriers</h1>" + "".join(parts)
            + f"<p>{html.escape(PAPER_LINE)}.</p></body></html>\n")


def _selected(barriers: list[StoredBarrier],
              rows: list[BarrierRow]) -> list[tuple[StoredBarrier, BarrierRow]]:
    by_uuid = {b.uuid: b for b in barriers}
    return [(by_uuid[r.uuid], r) for r in rows if r.selected]


def profile_entries(barriers: list[StoredBarrier], rows: list[BarrierRow]) -> list[ProfileEntry]:
    """The selected path of every site that has the arrays for a profile."""
    entries = []
    for b, r in _selected(barriers, rows):
        doc = b.doc
        if not (doc.energies and doc.forces and doc.images) or len(doc.energies) < 3:
            continue
        nin = tuple(doc.ni_n_distances) if doc.model == "cpan" and doc.ni_n_distances else None
        entries.append(ProfileEntry(r.potential_label, doc.model, doc.site, doc.path, profile(doc), nin))
    return entries


def write_structures(barriers: list[StoredBarrier], rows: list[BarrierRow], folder: Path) -> list[Path]:
    """The relaxed end points of every selected path: {model}_{potential}_site{k}_{start,end}.cif."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for b, r in _selected(barriers, rows):
        if b.doc.images:
            for name, image in (("start", b.doc.images[0]), ("end", b.doc.images[-1])):
                target = folder / f"{r.model}_{r.potential_label}_site{r.site}_{name}.cif"
                image.to(filename=str(target))
                written.append(target)
    return written


def write_report(store: JobStore, out: Path, **filters: Any) -> dict[str, Path]:
    """Query, tabulate, plot and write the report folder; returns what was written.

    ``filters``: model, engine, potential, study, since, hop (see ``barrier_query``).
    """
    barriers = load_barriers(store, **filters)
    if not barriers:
        given = ", ".join(f"{k}={v}" for k, v in sorted(filters.items()) if v)
        raise ValueError(f"the store holds no NEB results{' matching ' + given if given else ''}: "
                         "run `ncmflow study` first")
    kinds = sorted({b.doc.hop_kind for b in barriers if b.doc.hop_kind not in (None, "bulk")})
    if len(kinds) > 1:  # site k of one kind is not site k of the other: never pair or pool them
        raise ValueError(f"the store holds slab hops of several kinds ({', '.join(kinds)}): "
                         "choose one with --hop or one study with --study")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = barrier_rows(barriers) + not_run_rows(store, barriers, **filters)
    files = {"csv": out / "barriers.csv", "md": out / "barriers.md"}
    checked, dft_tables = write_dft_check(store, out, **filters)  # the study's DFT check, if it ran
    files["csv"].write_text(table_csv(rows))
    files["md"].write_text(table_markdown(rows, dft_tables))
    files["distribution"] = plot_distribution(rows, out / "barrier_distribution.png")
    entries = profile_entries(barriers, rows)
    if entries:
        files["profiles"] = plot_site_profiles(entries, out / "neb_profiles.png")
    if write_structures(barriers, rows, out / "structures"):
        files["structures"] = out / "structures"
    files |= checked
    files["html"] = out / "index.html"
    images = [files[k] for k in ("distribution", "profiles", "dft_plot") if k in files]
    files["html"].write_text(_html(rows, images, dft_tables))
    return files
