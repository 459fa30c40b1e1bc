"""A full disk while ncmflow writes a checkpoint or the store: one line naming the file.

Writing a checkpoint in place (``open(path, "w")``) truncates the previous one first: a full
disk then leaves neither. Checkpoints are written beside (``<name>.part``), flushed to disk,
and renamed over the previous one only once whole (:func:`replace_file`); a full disk leaves
the previous checkpoint as it was and raises :class:`DiskFull`, whose message is one line
naming the file — the job fails with it, and its rerun resumes from the checkpoint kept.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
NEARLY_FULL = 1 << 20  # bytes free under which SQLite's "disk I/O error" is the full disk


class DiskFull(OSError):
    """ENOSPC or EDQUOT: ``str()`` is one line naming the file and what was kept.

    An OSError with its ``filename``: the CLI reports it as one line (exit 2), not as a bug."""

    def __init__(self, code: int, path: str | Path, kept: str = "", doing: str = "writing") -> None:
        said = FULL.get(code, os.strerror(code))
        super().__init__(code, f"{said} ({kept})" if kept else said, str(path))
        self.line = f"{said} {doing} {path}" + (f"; {kept}" if kept else "")

    def __str__(self) -> str:
        return self.line


def is_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in FULL


def nearly_full(path: str | Path) -> bool:
    """Whether the file system holding ``path`` has (almost) no space left."""
    try:
        return shutil.disk_usage(path).free < NEARLY_FULL
    except OSError:
        return False


@contextlib.contextmanager
def naming(path: str | Path, kept: str = "") -> Iterator[None]:
    """A full disk in the block raised as :class:`DiskFull` naming ``path``; other errors as they are."""
    try:
        yield
    except DiskFull:
        raise
    except OSError as exc:
        if exc.errno not in FULL:
            raise
        raise DiskFull(exc.errno, path, kept) from exc


def replace_file(path: str | Path, write: Callable[[IO], None], kept: str, binary: bool = False) -> None:
    """``write`` a new version of the file ``path`` (text, or bytes when ``binary``) beside it,
    flushed to disk, then rename it over ``path``: an error (a full disk: :class:`DiskFull` naming
    ``path``, saying ``kept``) leaves the previous version as it was, and no partial file behind."""
    path = Path(path)
    part = path.with_name(f"{path.name}.part")
    try:
        with naming(path.resolve(), kept), open(part, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())  # whole on disk before it replaces the previous version
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink()
        raise
    part.replace(path)  # atomic: a kill never leaves half a file
