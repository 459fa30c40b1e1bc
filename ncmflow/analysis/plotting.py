"""One look for every analysis figure, so the paper's panels match without per-plot tweaking."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # analyses run on clusters and in CI: never ask for a display

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

DPI = 150
STYLE = {
    "font.size": 10,
    "axes.labelsize": 11,
    "axes.linewidth": 1.0,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
}
SPIN_STYLE = {"up": "-", "down": "--"}


@contextmanager
def figure(width: float = 4.5, height: float = 3.4, **subplots_kw) -> Iterator[tuple[Figure, object]]:
    """Yield a styled (figure, axes); the caller saves it with `save`."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(width, height), **subplots_kw)
        try:
            yield fig, ax
        finally:
            plt.close(fig)


def save(fig: Figure, path: str | Path) -> Path:
    """Write a PNG with tight layout at the project's dpi and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.05)
    return path


def fermi_line(ax, orientation: str = "vertical") -> None:
    """Dashed E_F = 0 line, the common reference of DOS and COHP plots."""
    line = ax.axvline if orientation == "vertical" else ax.axhline
    line(0.0, color="0.4", linestyle="--", linewidth=0.9, label=r"$E_\mathrm{F}$")
