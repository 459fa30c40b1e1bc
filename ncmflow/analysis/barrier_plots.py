"""Figures of the barrier comparison: the spread over sites, and the profiles with the Ni–N distance.

Both take plain data (``BarrierRow``s, ``BarrierProfile``s) and write one PNG; nothing is computed
here but positions on the page. Every point is placed deterministically (the jitter is a function
of the site index), so a regenerated figure shows the same picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from ncmflow.analysis.neb import BarrierProfile, draw_profiles
from ncmflow.analysis.plotting import figure, save
from ncmflow.analysis.statistics import (
    PAPER_DIFFERENCE,
    model_rank,
    paired_differences,
    paper_barrier,
    pooled_difference,
    potential_labels,
    selected_rows,
)
from ncmflow.workflows.documents import BarrierRow

MODEL_COLORS = {"bulk": "0.15", "bare": "C0", "cpan": "C3"}
MODEL_NAMES = {"bulk": "bulk", "bare": "bare slab", "cpan": "cPAN@slab"}
POTENTIAL_COLORS = ("C2", "C1", "C4", "C9", "C5", "C8", "C6", "C7")  # not the models' C0/C3
SITE_STYLES = ("-", "--", ":", "-.", (0, (6, 1.5, 1, 1.5, 1, 1.5)), (0, (1, 3)), (0, (9, 2)),
               (0, (3, 1, 1, 1)))
PAPER_STYLE = {"color": "0.25", "linestyle": (0, (4, 2)), "linewidth": 1.2}


def jitter(site: int, width: float) -> float:
    """Deterministic offset in [−width/2, width/2) for a site (golden-ratio sequence: no two close)."""
    return ((site * 0.6180339887498949 + 0.5) % 1.0 - 0.5) * width


def site_style(site: int) -> str | tuple:
    return SITE_STYLES[site % len(SITE_STYLES)]


@dataclass(frozen=True)
class ProfileEntry:
    """The selected path of one site, ready to draw."""

    potential: str
    model: str
    site: int
    path: str
    profile: BarrierProfile
    ni_n: tuple[float, ...] | None = None  # Ni–N distance per image (cPAN), Å


def plot_distribution(rows: list[BarrierRow], path: str | Path) -> Path:
    """Every selected site's forward barrier as a point per model and potential, means as bars, the
    paper's barriers as dashed marks; beside it, cPAN − bare per paired site with mean ± s.e."""
    chosen = selected_rows(rows)
    models = sorted({r.model for r in chosen}, key=lambda m: (model_rank(m), m))
    potentials = potential_labels(chosen)
    diffs = paired_differences(rows)
    colors = {p: POTENTIAL_COLORS[i % len(POTENTIAL_COLORS)] for i, p in enumerate(potentials)}
    width = 2.0 + 1.1 * max(1, len(models)) * max(1, len(potentials)) ** 0.5
    ratios = [2.4, 1.0 + 0.25 * len(potentials)]
    kwargs = {"ncols": 2, "gridspec_kw": {"width_ratios": ratios}} if diffs else {}
    with figure(width + (2.6 if diffs else 0.0), 3.8, **kwargs) as (fig, axes):
        ax = axes[0] if diffs else axes
        slot = 0.8 / max(1, len(potentials))
        for j, model in enumerate(models):
            for k, potential in enumerate(potentials):
                centre = j + (k - (len(potentials) - 1) / 2) * slot
                group = [r for r in chosen if r.model == model and r.potential_label == potential]
                if not group:
                    continue
                values = [r.forward_barrier for r in group]
                ax.scatter([centre + jitter(r.site, 0.6 * slot) for r in group], values, s=22,
                           color=colors[potential], edgecolor="k", linewidth=0.4, zorder=3)
                ax.hlines(np.mean(values), centre - 0.42 * slot, centre + 0.42 * slot, color="k",
                          linewidth=2.0, zorder=4)
            if paper_barrier(model) is not None:
                ax.hlines(paper_barrier(model), j - 0.45, j + 0.45, zorder=2, **PAPER_STYLE)
        ax.set_xticks(range(len(models)), [
            MODEL_NAMES.get(m, m) + (f"\npaper {paper_barrier(m):.2f} eV" if paper_barrier(m) else "")
            for m in models])
        ax.set_xlim(-0.6, len(models) - 0.25)
        ax.set_ylabel("Forward Ni-hop barrier (eV)")
        ax.margins(y=0.12)
        if not chosen:
            ax.text(0.5, 0.5, "no converged barrier", transform=ax.transAxes, ha="center", color="0.4")
        handles = [Line2D([], [], marker="o", linestyle="", color=colors[p], markeredgecolor="k",
                          markeredgewidth=0.4, label=p) for p in potentials]
        handles.append(Line2D([], [], color="k", linewidth=2.0, label="mean over sites"))
        if diffs:
            _draw_differences(axes[1], rows, diffs, colors)
            handles.append(Line2D([], [], marker="s", color="k", markersize=4,
                                  label="cPAN − bare mean ± s.e."))
        handles.append(Line2D([], [], label="paper (CASTEP PBE+D)", **PAPER_STYLE))
        fig.tight_layout()
        fig.legend(handles=handles, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0),
                   ncols=len(handles) if len(handles) <= 8 else (len(handles) + 1) // 2)
        return save(fig, path)


def _draw_differences(ax, rows: list[BarrierRow], diffs, colors: dict[str, str]) -> None:
    """cPAN − bare forward barrier per site, per potential and pooled, beside the paper's +0.53 eV."""
    labels = [d.potential for d in diffs]
    for i, d in enumerate(diffs):
        ax.scatter([i + jitter(s, 0.4) for s in d.sites], d.values, s=20, color=colors[d.potential],
                   edgecolor="k", linewidth=0.4, zorder=3)
        ax.errorbar(i + 0.32, d.mean, yerr=d.stderr or 0.0, fmt="s", color="k", markersize=4,
                    capsize=3, zorder=4)
    if len(diffs) > 1:
        pooled = pooled_difference(rows)
        ax.errorbar(len(diffs), pooled.mean, yerr=pooled.stderr or 0.0, fmt="D", color="k",
                    markersize=5, capsize=3, zorder=4)
        labels.append("pooled")
    ax.axhline(PAPER_DIFFERENCE, **PAPER_STYLE)
    ax.annotate(f"+{PAPER_DIFFERENCE:.2f}", (1.0, PAPER_DIFFERENCE), xycoords=("axes fraction", "data"),
                xytext=(3, 0), textcoords="offset points", va="center", fontsize=8, color="0.25")
    ax.axhline(0.0, color="0.6", linewidth=0.8, zorder=0)
    ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 2 else 0,
                  ha="right" if len(labels) > 2 else "center")
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_ylabel("cPAN − bare, paired by site (eV)")
    ax.margins(y=0.15)


def plot_site_profiles(entries: list[ProfileEntry], path: str | Path) -> Path:
    """One column per potential: the energy profile of every selected site (colour per model, line
    style per site, saddle marked) and, under it on the same reaction coordinate, the Ni–N distance of
    the cPAN paths with their saddle marked."""
    potentials = sorted({e.potential for e in entries})
    with_ni_n = any(e.ni_n for e in entries)
    nrows = 2 if with_ni_n else 1
    kwargs = {"gridspec_kw": {"height_ratios": [2.2, 1.0]}} if with_ni_n else {}
    with figure(0.6 + 3.8 * len(potentials), 3.4 + 1.6 * with_ni_n, nrows=nrows, ncols=len(potentials),
                sharex="col", sharey="row", squeeze=False, **kwargs) as (fig, axes):
        for col, potential in enumerate(potentials):
            ax = axes[0][col]
            mine = [e for e in entries if e.potential == potential]
            names = {id(e): f"{e.model} site {e.site}" for e in mine}
            draw_profiles(ax, {names[id(e)]: e.profile for e in mine},
                          colors={names[id(e)]: MODEL_COLORS.get(e.model, "C7") for e in mine},
                          linestyles={names[id(e)]: site_style(e.site) for e in mine},
                          annotate=len(mine) <= 3, labelled=False)
            for e in mine:
                ax.plot(e.profile.saddle_x, e.profile.forward_barrier, marker="^", markersize=6,
                        color=MODEL_COLORS.get(e.model, "C7"), markeredgecolor="k", markeredgewidth=0.5)
            ax.set_title(potential, fontsize=10)
            ax.margins(y=0.15)
            if col == 0:
                ax.set_ylabel("E − E(start) (eV)")
            if with_ni_n:
                _draw_ni_n(axes[1][col], [e for e in mine if e.ni_n], first=col == 0)
            axes[-1][col].set_xlabel("Reaction coordinate (Å)")
        fig.tight_layout()
        _profile_legend(fig, entries)
        return save(fig, path)


def _draw_ni_n(ax, entries: list[ProfileEntry], first: bool) -> None:
    for e in entries:
        x, d = e.profile.path_coords, np.asarray(e.ni_n, dtype=float)
        if len(d) != len(x):
            continue
        ax.plot(x, d, marker="o", markersize=3.5, color=MODEL_COLORS["cpan"], linestyle=site_style(e.site))
        ax.plot(e.profile.saddle_x, np.interp(e.profile.saddle_x, x, d), marker="^", markersize=7,
                color=MODEL_COLORS["cpan"], markeredgecolor="k", markeredgewidth=0.5)
        ax.axvline(e.profile.saddle_x, color=MODEL_COLORS["cpan"], linewidth=0.6, alpha=0.5, zorder=0,
                   linestyle=site_style(e.site))
    if not entries:
        ax.text(0.5, 0.5, "no cPAN path", transform=ax.transAxes, ha="center", va="center", color="0.5")
    ax.margins(y=0.15)
    if first:
        ax.set_ylabel("Ni–N (Å)")


def _profile_legend(fig, entries: list[ProfileEntry]) -> None:
    """Compact proxy legend: one entry per model (colour), per site (line style) and the saddle."""
    models = sorted({e.model for e in entries}, key=lambda m: (model_rank(m), m))
    sites = sorted({e.site for e in entries})
    handles = [Line2D([], [], color=MODEL_COLORS.get(m, "C7"), label=MODEL_NAMES.get(m, m)) for m in models]
    if len(sites) > 1:
        handles += [Line2D([], [], color="0.6", linestyle=site_style(s), label=f"site {s}") for s in sites]
    handles.append(Line2D([], [], marker="^", linestyle="", color="0.6", markeredgecolor="k", label="saddle"))
    fig.legend(handles=handles, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0),
               ncols=len(handles) if len(handles) <= 10 else (len(handles) + 1) // 2)
