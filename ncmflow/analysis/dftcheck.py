"""DFT//ML: which ML potential the DFT single points favour, read from the store's DftCheckDocs.

Per path the ML and the DFT//ML barrier (E(saddle) − E(start)) and reaction energy on the same
ML geometries; per potential the mean absolute deviation |ML − DFT//ML| over both quantities of
every checked path — the potential with the smallest one is the one DFT favours on this system —
and the cPAN − bare difference in each, paired by site and path. Never computes anything.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jobflow import JobStore
from monty.json import MontyDecoder

from ncmflow.analysis.barrier_plots import MODEL_COLORS, POTENTIAL_COLORS
from ncmflow.analysis.plotting import figure, save
from ncmflow.analysis.statistics import mean_stderr, model_rank
from ncmflow.analysis.tables import Table, num
from ncmflow.workflows.documents import DftCheckDoc

QUANTITIES = {"barrier": ("ml_barrier", "dft_barrier"),
              "reaction energy": ("ml_reaction_energy", "dft_reaction_energy")}
MARKERS = {"bulk": "s", "bare": "o", "cpan": "^"}


def check_query(study: str | None = None, model: str | None = None, potential: str | None = None,
                engine: str | None = None, hop: str | None = None, **_: Any) -> dict[str, Any]:
    """The filter for DFT checks; the barrier report's filters (``since`` is not one here)."""
    query: dict[str, Any] = {"output.@class": "DftCheckDoc"}
    if hop:
        query["output.hop_kind"] = {"$in": [hop, "bulk"]}
    for name, value in (("metadata.study", study), ("output.model", model),
                        ("output.potential", potential), ("output.engine", engine)):
        if value:
            query[name] = value
    return query


def load_checks(store: JobStore, **filters: Any) -> list[DftCheckDoc]:
    """The newest check per (engine, potential, model, hop kind, site, path), in that order."""
    newest: dict[tuple, tuple[tuple, Any]] = {}
    decoder = MontyDecoder()
    for doc in store.query(check_query(**filters), properties=["uuid", "index", "completed_at", "output"]):
        check = decoder.process_decoded(doc["output"])
        check = check if isinstance(check, DftCheckDoc) else DftCheckDoc.model_validate(check)
        key = (check.engine, check.potential or "", model_rank(check.model), check.model,
               check.hop_kind or "", check.site, check.path)
        stamp = (doc.get("completed_at") or "", doc.get("index", 1), doc["uuid"])
        if key not in newest or stamp > newest[key][0]:
            newest[key] = (stamp, check)
    return [newest[k][1] for k in sorted(newest)]


def _label(c: DftCheckDoc) -> str:
    return c.potential or c.engine


@dataclass
class Agreement:
    """How far one potential's barriers and reaction energies are from DFT//ML on its own paths."""

    potential: str
    paths: int
    mad_barrier: float
    mad_reaction: float
    mad: float  # over both quantities of every path
    worst: float


def _deviation(c: DftCheckDoc, quantity: str) -> float:
    """|ML − DFT//ML| of one path's ``quantity`` (a key of QUANTITIES)."""
    ml, dft = QUANTITIES[quantity]
    return abs(getattr(c, ml) - getattr(c, dft))


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    """statistics.mean_stderr with nan where it has None (the tables print nan as no ±)."""
    mean, se = mean_stderr(list(values))
    return (float("nan") if mean is None else mean), (float("nan") if se is None else se)


def agreements(checks: list[DftCheckDoc]) -> list[Agreement]:
    """Per potential, smallest mean absolute deviation first."""
    out = []
    for label in sorted({_label(c) for c in checks}):
        own = [c for c in checks if _label(c) == label]
        dev = {q: np.array([_deviation(c, q) for c in own]) for q in QUANTITIES}
        both = np.concatenate(list(dev.values()))
        out.append(Agreement(label, len(own), float(dev["barrier"].mean()),
                             float(dev["reaction energy"].mean()), float(both.mean()), float(both.max())))
    return sorted(out, key=lambda a: (a.mad, a.potential))


def _gap(checks: list[DftCheckDoc], best: str, other: str) -> tuple[float, float, int]:
    """|ML − DFT//ML| of ``other`` minus ``best``'s, paired by (model, site, path, quantity):
    mean, standard error (nan for one pair) and the number of pairs."""
    devs = {label: {(c.model, c.site, c.path, q): _deviation(c, q)
                    for c in checks if _label(c) == label for q in QUANTITIES}
            for label in (best, other)}
    diffs = np.array([devs[other][k] - devs[best][k] for k in devs[best] if k in devs[other]])
    return (*_mean_se(diffs), len(diffs))


def verdict(checks: list[DftCheckDoc]) -> str:
    """One line: which potential DFT favours on these paths, and by how much — or that the
    difference is within twice its standard error over the paired paths (no winner)."""
    ranked = agreements(checks)
    if not ranked:
        return "no DFT check in the store: run `ncmflow study --dft-check`"
    best = ranked[0]
    said = (f"mean |ML − DFT//ML| {best.mad:.3f} eV over the barriers and reaction energies of its "
            f"{best.paths} paths (barriers {best.mad_barrier:.3f}, reaction energies "
            f"{best.mad_reaction:.3f} eV)")
    if len(ranked) == 1:
        return f"only {best.potential} was checked: {said}"
    rest = "; ".join(f"{a.potential} {a.mad:.3f} eV" for a in ranked[1:])
    gap, se, n = _gap(checks, best.potential, ranked[1].potential)
    further = f"{gap:.3f}" + ("" if np.isnan(se) else f" ± {se:.3f}") + f" eV further, {n} paired values"
    if not np.isnan(se) and gap < 2 * se:
        return (f"no potential is closer to DFT beyond the path-to-path scatter: {best.potential} "
                f"{said}; {rest} ({further})")
    return f"DFT favours {best.potential} on this system: {said}; {rest} ({further})"


def contrast_line(checks: list[DftCheckDoc]) -> str | None:
    """The study's own number, cPAN − bare barrier, per potential: ML against DFT//ML."""
    rows = [r for r in cpan_minus_bare(checks) if r[1] == "barrier"]
    if not rows:
        return None
    parts = [f"{p} ML {ml:+.3f} vs DFT//ML {dft:+.3f} eV "
             f"({'same sign' if np.sign(ml) == np.sign(dft) else 'opposite sign'}, {abs(ml - dft):.3f} off)"
             for p, _, _, ml, dft, _, _ in rows]
    return "cPAN − bare barrier: " + "; ".join(parts)


def cpan_minus_bare(checks: list[DftCheckDoc]) -> list[tuple[str, str, int, float, float, float, float]]:
    """Per potential and quantity: (potential, quantity, pairs, ML mean, DFT//ML mean, ML s.e.,
    DFT//ML s.e.) of cPAN − bare over the (site, path) pairs both models have."""
    rows = []
    for label in sorted({_label(c) for c in checks}):
        by = {(c.model, c.site, c.path): c for c in checks if _label(c) == label}
        pairs = [(by[("bare", s, p)], by[k]) for k in by if k[0] == "cpan" for s, p in [k[1:]]
                 if ("bare", s, p) in by]
        if not pairs:
            continue
        for quantity, (ml, dft) in QUANTITIES.items():
            diffs = {name: np.array([getattr(c, f) - getattr(b, f) for b, c in pairs]) for name, f in
                     (("ml", ml), ("dft", dft))}
            (ml_mean, ml_se), (dft_mean, dft_se) = _mean_se(diffs["ml"]), _mean_se(diffs["dft"])
            rows.append((label, quantity, len(pairs), ml_mean, dft_mean, ml_se, dft_se))
    return rows


def end_point_energies(checks: list[DftCheckDoc]) -> list[tuple[str, int, str, dict[str, float],
                                                                   dict[str, float | None]]]:
    """Per (model, site, start|end) point that two or more potentials relaxed: the DFT energy of
    each potential's geometry above the lowest of them (eV), and its DFT total moment (μB).
    Same atoms, same DFT: the lower energy is the geometry nearer DFT's own minimum (or a
    different spin state: hence the moments)."""
    points: dict[tuple, dict[str, tuple[float, float | None]]] = {}
    for c in checks:
        for which in ("start", "end"):
            if which not in c.dft_energies:
                continue
            moment = (c.dft_moments or {}).get(which)
            points.setdefault((c.model, c.site, which), {})[_label(c)] = (c.dft_energies[which], moment)
    rows = []
    order = {"start": 0, "end": 1}
    for (model, site, which), by in sorted(points.items(),
                                           key=lambda kv: (model_rank(kv[0][0]), kv[0][1], order[kv[0][2]])):
        if len(by) < 2:
            continue
        low = min(e for e, _ in by.values())
        rows.append((model, site, which, {p: e - low for p, (e, _) in sorted(by.items())},
                     {p: m for p, (_, m) in sorted(by.items())}))
    return rows


def _end_point_table(checks: list[DftCheckDoc]) -> Table | None:
    rows = end_point_energies(checks)
    if not rows:
        return None
    labels = sorted({p for *_, above, _ in rows for p in above})
    lowest = {p: sum(above.get(p) == 0.0 for *_, above, _ in rows) for p in labels}
    mean = {p: float(np.mean([above[p] for *_, above, _ in rows if p in above])) for p in labels}
    lead = ("DFT energy of each potential's relaxed end points, same atoms: "
            + "; ".join(f"{p} lowest in {lowest[p]} of {len(rows)}, on average {mean[p]:.3f} eV above the "
                        "lowest" for p in labels))
    return Table(
        "DFT check: DFT energy of each potential's relaxed end points",
        ("model", "site", "point", *(f"{p}: E − lowest (eV)" for p in labels),
         *(f"{p}: total moment (μB)" for p in labels)),
        [(m, str(k), w, *(num(above[p]) if p in above else "—" for p in labels),
          *(f"{moment[p]:.2f}" if moment.get(p) is not None else "—" for p in labels))
         for m, k, w, above, moment in rows],
        note="The DFT single points of the start and end each potential relaxed (the same atoms): "
             "lower is nearer DFT's minimum, unless the SCF found another spin state (see the moments).",
        lead=[lead])


def _pm(mean: float, se: float) -> str:
    return num(mean, signed=True) + ("" if np.isnan(se) else f" ± {num(se)}")


def dft_tables(checks: list[DftCheckDoc]) -> list[Table]:
    if not checks:
        return []
    dft = sorted({c.dft for c in checks})
    tables = [Table(
        "DFT check: which potential to believe", ("potential", "paths", "MAD barrier (eV)",
                                                  "MAD reaction energy (eV)", "MAD both (eV)", "worst (eV)"),
        [(a.potential, str(a.paths), num(a.mad_barrier), num(a.mad_reaction), num(a.mad), num(a.worst))
         for a in agreements(checks)],
        note="MAD: mean |ML − DFT//ML|. DFT//ML: " + "; ".join(dft) + " single points on each potential's "
             "own relaxed end points and climbing image (the saddle energy is an estimate on the ML path).",
        lead=[verdict(checks), *filter(None, [contrast_line(checks)])])]
    diffs = cpan_minus_bare(checks)
    if diffs:
        tables.append(Table(
            "DFT check: cPAN − bare, ML and DFT//ML", ("potential", "quantity", "pairs", "ML (eV)",
                                                       "DFT//ML (eV)"),
            [(p, q, str(n), _pm(m, sm), _pm(d, sd)) for p, q, n, m, d, sm, sd in diffs],
            note="Paired by site and path (± standard error of the mean over the pairs)."))
    end_points = _end_point_table(checks)
    if end_points:
        tables.append(end_points)
    tables.append(Table(
        "DFT check: every path", ("potential", "model", "site", "path", "ML barrier", "DFT//ML barrier",
                                  "ML ΔE", "DFT//ML ΔE", "NEB converged", "Ni moment start/saddle/end (μB)",
                                  "total moment start/saddle/end (μB)"),
        [(_label(c), c.model, str(c.site), c.path, num(c.ml_barrier), num(c.dft_barrier),
          num(c.ml_reaction_energy, signed=True), num(c.dft_reaction_energy, signed=True),
          "yes" if c.converged else "no",
          "/".join(f"{c.hopping_ni_moments[w]:.2f}" for w in ("start", "saddle", "end"))
          if c.hopping_ni_moments else "—",
          "/".join(f"{c.dft_moments[w]:.1f}" for w in ("start", "saddle", "end"))
          if c.dft_moments and len(c.dft_moments) == 3 else "—") for c in checks],
        note="Energies in eV; ΔE = E(end) − E(start); barrier = E(saddle) − E(start) on the ML path."))
    return tables


def plot_dft_check(checks: list[DftCheckDoc], path: str | Path) -> Path:
    """ML against DFT//ML, one point per path: barriers left, reaction energies right."""
    labels = sorted({_label(c) for c in checks})
    colors = {p: POTENTIAL_COLORS[i % len(POTENTIAL_COLORS)] for i, p in enumerate(labels)}
    with figure(8.4, 3.9, ncols=2) as (fig, axes):
        for ax, (quantity, (ml, dft)) in zip(axes, QUANTITIES.items(), strict=True):
            xs, ys = [getattr(c, dft) for c in checks], [getattr(c, ml) for c in checks]
            lo, hi = min(xs + ys), max(xs + ys)
            pad = 0.08 * (hi - lo or 1.0)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", linestyle="--", linewidth=0.9)
            for c in checks:
                ax.scatter(getattr(c, dft), getattr(c, ml), marker=MARKERS.get(c.model, "o"), s=36,
                           color=colors[_label(c)], edgecolor=MODEL_COLORS.get(c.model, "k"), linewidth=1.0,
                           alpha=0.9 if c.converged else 0.45)
            ax.set_xlim(lo - pad, hi + pad)
            ax.set_ylim(lo - pad, hi + pad)
            ax.set_xlabel(f"DFT//ML {quantity} (eV)")
            ax.set_ylabel(f"ML {quantity} (eV)")
        handles = [axes[0].scatter([], [], color=colors[p], label=p) for p in labels]
        handles += [axes[0].scatter([], [], marker=MARKERS.get(m, "o"), color="white",
                                    edgecolor=MODEL_COLORS.get(m, "k"), label=m)
                    for m in sorted({c.model for c in checks}, key=model_rank)]
        axes[1].legend(handles=handles, loc="best", fontsize=8)
        fig.suptitle("ML vs DFT single points on the ML paths (faded: NEB not converged)", fontsize=10)
        return save(fig, path)


def write_dft_check(store: JobStore, out: Path, **filters: Any) -> tuple[dict[str, Path], list[Table]]:
    """``dft_check.csv`` and ``dft_check.png`` in ``out`` and the report's tables, when the store
    holds DFT checks matching ``filters``; nothing otherwise."""
    checks = load_checks(store, **filters)
    if not checks:
        return {}, []
    out = Path(out)
    fields = ("potential", "model", "site", "path", "hop_kind", "dft", "converged", "ml_barrier",
              "dft_barrier", "ml_reaction_energy", "dft_reaction_energy")
    with open(out / "dft_check.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(fields)
        for c in checks:
            values = [getattr(c, f) for f in fields]
            writer.writerow(["" if v is None else f"{v:.6f}" if isinstance(v, float) else v for v in values])
    files = {"dft_csv": out / "dft_check.csv", "dft_plot": plot_dft_check(checks, out / "dft_check.png")}
    return files, dft_tables(checks)
