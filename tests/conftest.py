"""Shared test set-up: the GPAW tests run only where GPAW imports, and say why they are skipped.

A test (or a whole module, ``pytestmark``) marked ``requires_gpaw`` is skipped when ``gpaw``
cannot be imported, with one reason: the line `make install` wrote to ``.venv/gpaw-skipped``
when it installed without the `dft` extra (no root to install libxc-dev/libopenblas-dev), else
the import error. The reason is printed in pytest's ``-rs`` summary and once at the end of the run.

``gpaw_hidden`` gives an environment in which Python cannot find GPAW at all (as in a venv
installed without the `dft` extra), for subprocesses that must work without it.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest

SKIP_NOTE = Path(sys.prefix) / "gpaw-skipped"  # written by `make install` (scripts/install_plan.py)
HIDDEN = ("gpaw", "_gpaw", "gpaw_data")

# imported first by every Python started with it on PYTHONPATH: GPAW's modules are not found,
# so `import gpaw` fails and importlib.util.find_spec("gpaw") is None, as in a venv without it
HIDE_GPAW = f'''
import sys
from importlib.machinery import PathFinder

HIDDEN = {HIDDEN!r}


class _WithoutGpaw(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        return PathFinder.find_spec(name, path, target)


sys.meta_path[:] = [_WithoutGpaw if f is PathFinder else f for f in sys.meta_path]
# GPAW's ASE plugin is still registered (its metadata is there): not so where GPAW is not installed
import warnings
warnings.filterwarnings("ignore", message="Failed to register external IO format gpaw")
'''


@functools.cache
def gpaw_missing() -> str | None:
    """Why the GPAW tests cannot run here (None when they can)."""
    try:
        import _gpaw  # noqa: F401 — the compiled part: a GPAW without it is no GPAW
        import gpaw  # noqa: F401
    except ImportError as exc:
        if SKIP_NOTE.is_file() and SKIP_NOTE.read_text().strip():
            return SKIP_NOTE.read_text().strip().splitlines()[0]
        return (f"GPAW is not importable ({exc}): install the `dft` extra (`make install` does, given "
                "libxc-dev and libopenblas-dev; see the README's Quick start)")
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires_gpaw: needs GPAW (the `dft` extra); skipped with the "
                            "reason when it cannot be imported")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = gpaw_missing()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"GPAW tests skipped: {reason}")
    for item in items:
        if item.get_closest_marker("requires_gpaw"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    reason = gpaw_missing()
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if "GPAW tests skipped" in str(r.longrepr)]
    if reason is not None and skipped:
        terminalreporter.write_line(f"{len(skipped)} GPAW tests skipped: {reason}")


@pytest.fixture
def gpaw_hidden(tmp_path: Path) -> dict[str, str]:
    """os.environ for a subprocess in which GPAW cannot be found (a sitecustomize on PYTHONPATH)."""
    folder = tmp_path / "hide_gpaw"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(HIDE_GPAW)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}
