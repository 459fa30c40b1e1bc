"""Reading and writing model files; the format follows the file name, as in ASE and pymatgen."""

from __future__ import annotations

import json
from pathlib import Path

from pymatgen.core import Molecule, Structure

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
    try:
        if fmt == "json":
            return Structure.from_dict(json.loads(path.read_text()))
        if fmt in ("extxyz", "xyz"):
            from ase.io import read
            from pymatgen.io.ase import AseAtomsAdaptor

            atoms = read(path)
            struct = AseAtomsAdaptor.get_structure(atoms)
            struct.properties = json.loads(atoms.info.get("properties", "{}"))
            return struct
        return Structure.from_file(path)
    except Exception as exc:  # noqa: BLE001 — any parser failure means a bad file
        raise ValueError(f"{path.name} does not parse as {fmt}: {str(exc).splitlines()[0]}") from None
