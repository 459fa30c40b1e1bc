"""Every file-reading command, every bad file: one line naming the file, exit code 2, no traceback,
and the store untouched.

The bad files are made from good ones: the real VASP/LOBSTER outputs in ../shared/testdata and
files ncmflow writes itself (structures, densities, store and cluster configs). Each is given
empty, cut at 10 %, 50 % and 90 %, without its last byte, as binary garbage and as a valid file
of another kind (gzipped sources also as a cut .gz); each case runs through the real CLI.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from ncmflow.cli import app

NACL = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "vasp_lobster_nacl"
needs_nacl = pytest.mark.skipif(not NACL.is_dir(), reason="../shared/testdata is not beside this clone")
KINDS = ("empty", "cut 10%", "cut 50%", "cut 90%", "one byte short", "binary garbage", "wrong kind")
GZ_KINDS = ("gz cut 50%", "gz one byte short")
# Cut there, these files are still complete and valid (the last number lost its last digit, a
# YAML value its last letters): no reader can tell, and the command runs as on any good file.
STILL_VALID = {(reader, "one byte short") for reader in (
    "cohp COHPCAR", "cohp ICOHPLIST", "cohp CONTCAR", "cdd CHGCAR", "cdd cube", "neb OUTCAR", "inputs POSCAR",
    "inputs extxyz", "--config ncmflow.yaml")} | {("--config ncmflow.yaml", "cut 90%")}
runner = CliRunner()


def bad_version(good: bytes, wrong: bytes, kind: str) -> bytes:
    """One bad version of a good file (gzipped: cut in its text, or as .gz for the "gz" kinds)."""
    if kind.startswith("gz "):
        return good[: len(good) // 2] if kind == "gz cut 50%" else good[:-1]
    body = gzip.decompress(good) if good[:2] == b"\x1f\x8b" else good
    cuts = {"cut 10%": 10, "cut 50%": 50, "cut 90%": 90}
    if kind in cuts:
        return body[: len(body) * cuts[kind] // 100]
    return {
        "empty": lambda: b"",
        "one byte short": lambda: body.rstrip()[:-1],  # the last byte that is not a trailing newline
        "binary garbage": lambda: np.random.default_rng(14).bytes(4096),
        "wrong kind": lambda: wrong,
        # a vasprun.xml of a run without LORBIT: complete, valid, and no projections to plot
        "no projected DOS": lambda: re.sub(rb"<partial>.*?</partial>", b"", body, flags=re.S),
    }[kind]()


def unzipped(name: str) -> bytes:
    return gzip.decompress((NACL / name).read_bytes())


class Sources:
    """The good files, each made once: real ones from the test data, the rest written by ncmflow."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.store = folder / "store"

    vasprun = cached_property(lambda self: (NACL / "vasprun.xml.gz").read_bytes())
    cohpcar = cached_property(lambda self: (NACL / "spin" / "COHPCAR.lobster.gz").read_bytes())
    icohplist = cached_property(lambda self: unzipped("spin/ICOHPLIST.lobster.gz"))
    contcar = cached_property(lambda self: unzipped("spin/CONTCAR.gz"))
    chgcar = cached_property(lambda self: self._density("CHGCAR"))
    cube = cached_property(lambda self: self._density("density.cube"))
    cif = cached_property(lambda self: self._structure(".cif"))
    poscar = cached_property(lambda self: self._structure(".vasp"))
    extxyz = cached_property(lambda self: self._structure(".extxyz"))
    structure_json = cached_property(lambda self: self._structure(".json"))

    def _density(self, name: str) -> bytes:
        """A NaCl density (the real CONTCAR's cell) as ncmflow writes it, CHGCAR or cube."""
        from pymatgen.core import Structure
        from pymatgen.io.ase import AseAtomsAdaptor

        from ncmflow.analysis.cdd import DensityGrid

        atoms = AseAtomsAdaptor.get_atoms(Structure.from_str(self.contcar.decode(), fmt="poscar"))
        frac = np.stack(np.meshgrid(*[np.arange(10) / 10] * 3, indexing="ij"), axis=-1)
        data = np.exp(-8 * np.sum((frac - 0.5) ** 2, axis=-1))
        return DensityGrid(data, atoms).write(self.folder / name).read_bytes()

    def _structure(self, suffix: str) -> bytes:
        """Li0.5NiO2 as `ncmflow build li05nio2 -o model<suffix>` writes it."""
        from ncmflow.structures import li05nio2
        from ncmflow.structures.files import write_structure

        return write_structure(li05nio2(), self.folder / f"li05nio2{suffix}").read_bytes()

    @cached_property
    def outcar(self) -> bytes:
        from test_analysis_neb import make_images, outcar_text

        return outcar_text(make_images(2.0, -0.5, n=5)[2]).encode()

    @cached_property
    def store_yaml(self) -> bytes:
        """A jobflow store spec of the embedded store the commands are given."""
        def monty(name: str) -> dict:
            return {"type": "MontyStore", "collection_name": name, "database_path": str(self.store),
                    "database_name": "ncmflow", "storage": "sqlite"}

        return yaml.safe_dump({"docs_store": monty("outputs"),
                               "additional_stores": {"data": monty("outputs_data")}}).encode()

    @cached_property
    def store_json(self) -> bytes:
        return json.dumps(yaml.safe_load(self.store_yaml)).encode()

    @cached_property
    def hpc_config(self) -> bytes:
        return yaml.safe_dump({"workers": {"cluster": {
            "scheduler": "slurm", "work_dir": str(self.folder / "scratch"),
            "resources": {"nodes": 1, "cores": 4, "walltime": "02:00:00", "partition": "debug"},
            "environment": {"VASP_CMD": "srun vasp_std"}}}}).encode()


@dataclass(frozen=True)
class Reader:
    """A command reading one file: its good bytes, a valid file of another kind, and the call."""

    good: str  # Sources attribute
    wrong: str  # Sources attribute: a valid file, of another kind
    command: Callable[[Sources, Path, Path], list[str]]  # (sources, bad file, case folder) -> argv
    name: Callable[[str], str]  # bad file's name, given the kind


def link_cohp_folder(src: Sources, bad: Path, folder: Path) -> list[str]:
    for name in ("COHPCAR.lobster.gz", "ICOHPLIST.lobster.gz", "CONTCAR.gz"):
        stem = name.removesuffix(".gz")
        if not (folder / stem).exists() and not (folder / name).exists():
            (folder / name).symlink_to(NACL / "spin" / name)
    return ["analyze", "cohp", str(folder), "--pair", "Na,Cl", "-o", str(folder / "out")]


def three_densities(src: Sources, bad: Path, folder: Path) -> list[str]:
    good = folder / f"good{bad.suffix or '_CHGCAR'}"
    good.write_bytes(src.cube if bad.suffix == ".cube" else src.chgcar)
    return ["analyze", "cdd", str(good), str(bad), str(good), "--ni", "0", "--n", "1",
            "-o", str(folder / "out")]


def neb_folder(src: Sources, bad: Path, folder: Path) -> list[str]:
    from test_analysis_neb import make_images, outcar_text

    for i, atoms in enumerate(make_images(2.0, -0.5, n=5)):
        (folder / f"{i:02d}").mkdir(exist_ok=True)
        if i != 2:
            (folder / f"{i:02d}" / "OUTCAR").write_text(outcar_text(atoms))
    return ["analyze", "neb", str(folder), "--store", str(src.store), "-o", str(folder / "out")]


def structure_reader(good: str, wrong: str, suffix: str) -> Reader:
    return Reader(good, wrong, lambda src, bad, folder: [
        "inputs", "write", str(bad), "--engine", "vasp", "--job", "static", "-o", str(folder / "out")],
        lambda kind: f"model{suffix}")


def gz(name: str) -> Callable[[str], str]:
    return lambda kind: name + ".gz" if kind.startswith("gz ") else name


READERS = {
    "pdos vasprun.xml": Reader("vasprun", "chgcar", lambda src, bad, folder: [
        "analyze", "pdos", str(bad), "--labels", "Na-p,Cl-p", "-o", str(folder / "out")], gz("vasprun.xml")),
    "cohp COHPCAR": Reader("cohpcar", "icohplist", link_cohp_folder, gz("COHPCAR.lobster")),
    "cohp ICOHPLIST": Reader("icohplist", "contcar", link_cohp_folder, gz("ICOHPLIST.lobster")),
    "cohp CONTCAR": Reader("contcar", "icohplist", link_cohp_folder, gz("CONTCAR")),
    "cdd CHGCAR": Reader("chgcar", "cube", three_densities, lambda kind: "slab_CHGCAR"),
    "cdd cube": Reader("cube", "chgcar", three_densities, lambda kind: "slab.cube"),
    "neb OUTCAR": Reader("outcar", "contcar", neb_folder, lambda kind: "02/OUTCAR"),
    "inputs CIF": structure_reader("cif", "poscar", ".cif"),
    "inputs POSCAR": structure_reader("poscar", "cif", ".vasp"),
    "inputs extxyz": structure_reader("extxyz", "cif", ".extxyz"),
    "inputs json": structure_reader("structure_json", "store_json", ".json"),
    "--store yaml": Reader("store_yaml", "hpc_config", lambda src, bad, folder: [
        "show", "0" * 32, "--store", str(bad)], lambda kind: "store.yaml"),
    "--config ncmflow.yaml": Reader("hpc_config", "store_yaml", lambda src, bad, folder: [
        "submit", "study", "--worker", "cluster", "--config", str(bad), "--store", str(src.store),
        "--dry-run"], lambda kind: "ncmflow.yaml"),
}
GZIPPED = {"pdos vasprun.xml", "cohp COHPCAR"}
EXTRA = {"pdos vasprun.xml": ("no projected DOS",)}
# the STILL_VALID cases run their whole command (plots, inputs, batch scripts): slow, and not errors
CASES = [pytest.param(reader, kind, id=f"{reader}: {kind}",
                      marks=[pytest.mark.slow] if (reader, kind) in STILL_VALID else [])
         for reader in READERS
         for kind in KINDS + (GZ_KINDS if reader in GZIPPED else ()) + EXTRA.get(reader, ())]


def lcao_output(cube: Path) -> dict:
    """A GPAW electronic job's output as the store holds it (PDOS, two bond COHPs, a cube)."""
    energies = np.linspace(-10.0, 5.0, 151)
    dos = np.exp(-((energies + 2.0) ** 2)).tolist()
    projections = {label: {"up": dos} for label in ("Ni0-d", "N1-p", "O1-p")}
    cohp = {bond: {"length": 2.0, "up": {"energies": energies.tolist(), "minus_cohp": dos, "icohp": -0.5}}
            for bond in ("Ni0-N1", "Ni0-O1")}
    return {"energy": -1.0, "efermi": 0.0, "density_cube": str(cube), "cohp": cohp,
            "pdos": {"energies": energies.tolist(), "efermi": 0.0, "projections": projections,
                     "total": {"up": dos}}}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Sources:
    """The good files, and an embedded store holding one electronic study per bad cube kind."""
    from ncmflow.workflows.store import get_store

    src = Sources(tmp_path_factory.mktemp("sources"))
    cubes = tmp_path_factory.mktemp("cubes")
    (cubes / "good.cube").write_bytes(src.cube)
    docs = []
    for k, kind in enumerate(KINDS):
        (cubes / f"{k}.cube").write_bytes(bad_version(src.cube, src.chgcar, kind))
        for part in ("interface", "slab", "cpan"):
            cube = cubes / (f"{k}.cube" if part == "slab" else "good.cube")
            meta = {"stage": "lcao", "part": part, "study": f"electronic-{k:012d}", "ni_index": 0,
                    "n_index": 1, "o_index": 1, "kind": kind}
            docs.append({"uuid": f"{k}-{part}", "index": 1, "completed_at": f"2026-01-01T00:00:{k:02d}",
                         "metadata": meta, "output": lcao_output(cube)})
    store = get_store(str(src.store))
    store.docs_store.update(docs, key="uuid")
    store.close()
    get_store(str(src.store)).close()  # opened once more, as after any command: its checks are current
    return src


# montydb's own config files, rewritten with the same bytes on every connect (maggma's MontyStore):
# a command that opens the store touches them, whatever it then reads
REWRITTEN_ON_CONNECT = {"monty.storage.cfg", ".monty.storage"}


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of the store folder: its bytes' hash and mtime (0 for montydb's configs), but
    not SQLite's transient files of an open connection: the -shm index, an empty -wal log."""
    def transient(p: Path) -> bool:
        return p.name.endswith("-shm") or (p.name.endswith("-wal") and p.stat().st_size == 0)

    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                         0 if p.name in REWRITTEN_ON_CONNECT else p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and not transient(p)}


def run_cli(argv: list[str], store: Path, monkeypatch, exit_code: int = 2) -> str:
    """The command's output as a user sees it: stdout, stderr and any warning (one line each)."""
    monkeypatch.delenv("NCMFLOW_DEBUG", raising=False)
    before = snapshot(store)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, argv)
    assert snapshot(store) == before, "the store changed"
    said = result.output + "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
    assert "Traceback" not in said, said
    assert result.exit_code == exit_code, f"exit {result.exit_code}:\n{said}"
    return said


def check_one_line(said: str, bad: Path) -> None:
    lines = said.strip().splitlines()
    assert len(lines) == 1, said
    assert lines[0].startswith("error: "), said
    assert str(bad) in lines[0] or bad.name in lines[0], f"{bad.name} not named: {said}"


@needs_nacl
@pytest.mark.parametrize(("reader", "kind"), CASES)
def test_a_bad_file_is_one_line_naming_it(reader, kind, sources, tmp_path, monkeypatch):
    spec = READERS[reader]
    data = bad_version(getattr(sources, spec.good), getattr(sources, spec.wrong), kind)
    bad = tmp_path / spec.name(kind)
    bad.parent.mkdir(exist_ok=True)
    bad.write_bytes(data)
    argv = spec.command(sources, bad, tmp_path)
    monkeypatch.chdir(tmp_path)
    if (reader, kind) in STILL_VALID:
        said = run_cli(argv, sources.store, monkeypatch, exit_code=0)
        assert not any(line.startswith("error:") for line in said.splitlines()), said
    else:
        check_one_line(run_cli(argv, sources.store, monkeypatch), bad)
    assert not (tmp_path / "ncmflow_data").exists()  # no default store made on the way


@needs_nacl
@pytest.mark.parametrize("kind", ["empty", "cut 50%", "binary garbage", "wrong kind"])
def test_a_bad_density_cube_in_the_store_is_one_line(kind, sources, tmp_path, monkeypatch):
    """`analyze electronic` reads the cubes the GPAW jobs wrote (paths in the store)."""
    k = KINDS.index(kind)
    monkeypatch.chdir(tmp_path)
    said = run_cli(["analyze", "electronic", "--store", str(sources.store), "--study",
                    f"electronic-{k:012d}", "-o", str(tmp_path / "out")], sources.store, monkeypatch)
    check_one_line(said, Path(f"{k}.cube"))
    assert not (tmp_path / "out").exists()  # every file read before anything is written


@needs_nacl
def test_the_good_files_read(sources, tmp_path):
    """The controls: each good file, as the table's commands lay it out, reads."""
    from ncmflow.analysis.cdd import DensityGrid
    from ncmflow.analysis.cohp import read_lobster_cohp
    from ncmflow.analysis.neb import profile_from_vasp_neb
    from ncmflow.structures.files import read_structure
    from ncmflow.workflows.hpc_config import load_config
    from ncmflow.workflows.lcao import PdosData
    from ncmflow.workflows.store import get_store

    assert PdosData.from_vasprun(NACL / "vasprun.xml.gz", ["Na-p"]).projections["Na-p"]["up"].any()
    assert read_lobster_cohp(NACL / "spin", pair=("Na", "Cl")).labels
    for name, good in (("x.cube", sources.cube), ("CHGCAR", sources.chgcar)):
        (tmp_path / name).write_bytes(good)
        grid = (DensityGrid.from_cube if name.endswith("cube") else DensityGrid.from_chgcar)(tmp_path / name)
        assert grid.data.shape == (10, 10, 10) and len(grid.atoms) == 2
    neb_folder(sources, tmp_path / "02" / "OUTCAR", tmp_path)
    (tmp_path / "02" / "OUTCAR").write_bytes(sources.outcar)
    assert profile_from_vasp_neb(tmp_path).forward_barrier > 1.0
    for attr, suffix in (("cif", ".cif"), ("poscar", ".vasp"), ("extxyz", ".extxyz"),
                         ("structure_json", ".json")):
        (tmp_path / f"m{suffix}").write_bytes(getattr(sources, attr))
        assert read_structure(tmp_path / f"m{suffix}").composition.reduced_formula == "Li(NiO2)2"
    (tmp_path / "store.yaml").write_bytes(sources.store_yaml)
    assert get_store(str(tmp_path / "store.yaml")).docs_store.count({"metadata.stage": "lcao"}) > 0
    (tmp_path / "ncmflow.yaml").write_bytes(sources.hpc_config)
    assert load_config(tmp_path / "ncmflow.yaml").worker("cluster").resources.cores == 4


@needs_nacl
def test_a_truncated_vasprun_in_a_real_process(tmp_path):
    """The issue's report, end to end: stderr of a real `ncmflow` process, warnings included."""
    bad = tmp_path / "vasprun.xml"
    bad.write_bytes(gzip.decompress((NACL / "vasprun.xml.gz").read_bytes())[:1_000_000])
    proc = subprocess.run([sys.executable, "-m", "ncmflow", "analyze", "pdos", str(bad), "-o", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    check_one_line(proc.stderr, bad)


@pytest.fixture(scope="module")
def gpw(tmp_path_factory) -> bytes:
    """A real GPAW restart file (H2, LCAO, with wave functions as the electronic job writes it)."""
    gpaw = pytest.importorskip("gpaw")
    from ase import Atoms

    atoms = Atoms("H2", positions=[[3, 3, 3], [3, 3, 3.74]], cell=[6, 6, 6.74], pbc=True)
    atoms.calc = gpaw.GPAW(mode="lcao", basis="sz(dzp)", h=0.3, txt=None, symmetry={"point_group": False})
    atoms.get_potential_energy()
    path = tmp_path_factory.mktemp("gpw") / "h2.gpw"
    atoms.calc.write(path, mode="all")
    return path.read_bytes()


@pytest.mark.requires_gpaw
@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_gpw_file_is_one_error_naming_it(kind, gpw, tmp_path):
    """No command reads a .gpw; the GPAW jobs' reader (``lcao.load``) is held to the same rule."""
    from ncmflow.workflows.lcao import load

    bad = tmp_path / "run.gpw"
    bad.write_bytes(bad_version(gpw, b"Na1 Cl1\n1.0\n", kind))
    with pytest.raises(ValueError, match=re.escape(str(bad))) as caught:
        load(bad)
    assert len(str(caught.value).splitlines()) == 1
