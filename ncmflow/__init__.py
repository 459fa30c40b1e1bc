"""ncmflow: the cPAN@NCM811 Ni-migration DFT study as reproducible workflows.

The Python API is the objects the command line uses (README, "Python API"; docs/python.md):
the builders (``li05nio2``, ``ni_hop_endpoints``, …), ``StudyConfig`` and ``study_flow``,
``run_study`` (what `ncmflow study` runs), ``get_store``, ``barrier_table`` /
``load_barriers`` / ``profile`` / ``plot_profiles`` and ``write_report`` (what `ncmflow
compare` writes). They are imported on first use: ``import ncmflow`` stays cheap and never
imports torch, jobflow or GPAW.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it, imported on first access (PEP 562)
_LAZY = {
    **dict.fromkeys(("linio2", "li05nio2", "ncm811", "slab", "cpan", "interface", "electronic_model",
                     "ni_hop_endpoints", "hop_sites", "MODELS", "HOP_KINDS"), "ncmflow.structures"),
    **dict.fromkeys(("StudyConfig", "study_flow"), "ncmflow.workflows.study"),
    **dict.fromkeys(("get_store", "resolve_store"), "ncmflow.workflows.store"),
    **dict.fromkeys(("saved_flow", "run_flow"), "ncmflow.workflows.runner"),
    **dict.fromkeys(("load_barriers", "barrier_rows", "profile", "write_report", "COLUMNS"),
                    "ncmflow.analysis.barriers"),
    **dict.fromkeys(("plot_profiles", "BarrierProfile"), "ncmflow.analysis.neb"),
    **dict.fromkeys(("run_study", "barrier_table"), "ncmflow.api"),
    "idle_cores": "ncmflow.workflows.cores",
}
__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ncmflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
