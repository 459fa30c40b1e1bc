"""Reading and writing model files; the format follows the file name, as in ASE and pymatgen.

:func:`parsing` is every reader's boundary (structures here; vasprun.xml, LOBSTER, CHGCAR, cube,
OUTCAR downstream): a file a parser fails on is one ValueError naming the file and what is wrong.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import sys
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

from pymatgen.core import Molecule, Structure

# What parsers raise on a file that is not what they expect: bad or missing values and fields,
# XML syntax (lxml's and ElementTree's errors are SyntaxErrors), bytes that are not text, a cut
# or corrupt gzip stream, a warning class raised (pymatgen's BadPoscarWarning), and ASE's own
# (by module and name, looked up only when loaded). Caught around a parser's call only: from
# ncmflow's own code the same classes would be bugs.
PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, IndexError, KeyError, StopIteration, SyntaxError, UnicodeError, EOFError,
    zlib.error, gzip.BadGzipFile, Warning,
)
ASE_ERRORS = (("ase.io", "ParseError"), ("ase.io.extxyz", "XYZError"), ("ase.io.ulm", "InvalidULMFileError"))
_XML_WHERE = re.compile(r",? line \d+, column \d+$")


@contextlib.contextmanager
def parsing(path: str | Path, what: str) -> Iterator[None]:
    """Parse ``path`` as ``what`` (e.g. "vasprun.xml") in the block: a parser's failure raises one
    ValueError naming the file and what is wrong, the parser's exception chained.

    An empty file fails before any parser runs. The warnings of a parse that fails are dropped
    (the error says it all); those of a parse that succeeds are passed on.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (expected {what})")
    loaded = (getattr(sys.modules.get(module), name, None) for module, name in ASE_ERRORS)
    errors = PARSE_ERRORS + tuple(cls for cls in loaded if isinstance(cls, type))
    with warnings.catch_warnings(record=True) as caught:
        try:
            yield
        except errors as exc:
            raise ValueError(_what_is_wrong(path, what, exc)) from exc
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def _what_is_wrong(path: Path, what: str, exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines()] or [""]
    said = " ".join(lines[:2]) if lines[0].endswith(":") else lines[0]  # "… on this line:" and the line
    if isinstance(exc, EOFError):
        return f"{path}: not a complete {what} (the compressed file ends early)"
    xml = isinstance(exc, SyntaxError) and type(exc).__module__.split(".")[0] in ("lxml", "xml")
    if xml and exc.lineno and _ends_at(path, exc.lineno):
        return f"{path}: not a complete {what} (XML ended early at line {exc.lineno})"
    if xml and exc.lineno:
        said = f"XML error at line {exc.lineno}: {_XML_WHERE.sub('', exc.msg or said)}"
    elif isinstance(exc, zlib.error | gzip.BadGzipFile):
        said = f"corrupt compressed data ({said})"
    elif isinstance(exc, UnicodeDecodeError):
        said = f"binary data, not text (byte {exc.object[exc.start]:#04x})"
    elif isinstance(exc, IndexError | KeyError | StopIteration):  # messages that say nothing of the file
        said = f"fields missing ({type(exc).__name__}): cut short, or another kind of file"
    elif "\ufffd" in said or not said.isprintable():  # a parser quoting the bytes it decoded loosely
        said = "binary data, not text"
    elif "inhomogeneous shape" in said:  # numpy's words for rows of different lengths
        said = "rows of unequal length: cut short, or another kind of file"
    said = said if len(said) <= 120 else said[:119] + "…"
    return f"{path} does not parse as {what}: {said or type(exc).__name__}"


def _ends_at(path: Path, line: int) -> bool:
    """Is ``line`` the last line of the (maybe compressed) file? False when it cannot be read."""
    from monty.io import zopen

    count, last = 0, b"\n"
    try:
        with zopen(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                count, last = count + chunk.count(b"\n"), chunk[-1:]
    except (OSError, EOFError, zlib.error):
        return False
    return line >= count + (last != b"\n")


FORMATS = {".cif": "cif", ".vasp": "poscar", ".json": "json", ".extxyz": "extxyz", ".xyz": "xyz"}


def structure_format(path: Path) -> str:
    """The writer for a path: by suffix, or POSCAR/CONTCAR by name."""
    if path.name.upper() in ("POSCAR", "CONTCAR"):
        return "poscar"
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unknown structure format {path.suffix!r}: use {', '.join(FORMATS)}")
    return fmt


def write_structure(obj: Structure | Molecule, path: Path) -> Path:
    """Write a model; ``properties`` survive in .json (pymatgen) and .extxyz (ASE info)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"output folder {path.parent} does not exist")
    fmt = structure_format(path)
    if fmt == "json":
        path.write_text(json.dumps(obj.as_dict()))
    elif fmt == "extxyz":
        from ase.io import write
        from pymatgen.io.ase import AseAtomsAdaptor

        atoms = AseAtomsAdaptor.get_atoms(obj)
        atoms.info.clear()
        atoms.info["properties"] = json.dumps(obj.properties, default=float)
        write(path, atoms, format="extxyz")
    elif isinstance(obj, Molecule):
        if fmt != "xyz":
            raise ValueError(f"a molecule has no cell: write it as .xyz, .extxyz or .json, not {fmt}")
        obj.to(filename=str(path), fmt="xyz")
    else:
        obj.to(filename=str(path), fmt=fmt)
    return path


def read_structure(path: Path) -> Structure:
    """Read a periodic structure; a file that does not parse raises ValueError in one line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such structure file: {path}")
    fmt = structure_format(path)
    if fmt == "json":
        with parsing(path, "a pymatgen Structure (.json)"):
            data = json.loads(path.read_text())
            if not (isinstance(data, dict) and {"lattice", "sites"} <= set(data)):
                raise ValueError("no 'lattice' and 'sites': not a Structure's as_dict()")
            return Structure.from_dict(data)
    if fmt in ("extxyz", "xyz"):
        from ase.io import read
        from pymatgen.io.ase import AseAtomsAdaptor

        with parsing(path, fmt):
            atoms = read(path)
            properties = json.loads(atoms.info.get("properties", "{}"))
        if atoms.cell.rank < 3:
            raise ValueError(f"{path} has no cell: a periodic structure is needed, not a molecule")
        struct = AseAtomsAdaptor.get_structure(atoms)
        struct.properties = properties
        return struct
    with parsing(path, "CIF" if fmt == "cif" else "POSCAR"):
        return Structure.from_file(path)
