"""The wheel works on its own: built (sdist, then the wheel from it) with `python -m build`,
installed into a fresh venv offline, and run from a folder outside the repository.

The fresh venv borrows the dependencies of this one (a .pth naming its site-packages: the
editable install's finder there is not activated that way), so nothing is downloaded and the
ncmflow that runs is the wheel's.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def run(*args: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    pytest.importorskip("build", reason="`build` (the test extra) is not installed: rerun `make install`")
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the source to build is taken from git ls-files")
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # the working tree's files (tracked and new, not ignored): no build/ in the repo
    files = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT).stdout
    for name in filter(None, files.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    out = tmp / "dist"
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, source, cwd=tmp)
    return out


def test_build_makes_an_sdist_and_a_wheel_with_every_package_file(dist):
    assert sorted(p.name for p in dist.iterdir()) == [f"ncmflow-{VERSION}-py3-none-any.whl",
                                                     f"ncmflow-{VERSION}.tar.gz"]
    with zipfile.ZipFile(dist / f"ncmflow-{VERSION}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        entry_points = wheel.read(f"ncmflow-{VERSION}.dist-info/entry_points.txt").decode()
    # everything under ncmflow/ that the source has — modules and any data read at run time
    # (engines are found by listing the package's folder) — is inside the wheel
    shipped = {p.relative_to(dist.parent / "source").as_posix()
               for p in (dist.parent / "source" / "ncmflow").rglob("*") if p.is_file()}
    assert shipped and shipped <= names, sorted(shipped - names)
    assert "ncmflow/workflows/engines/mlip.py" in names
    assert "ncmflow = ncmflow.cli:app" in entry_points


@pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")
def test_the_wheel_installs_into_a_fresh_venv_and_runs(dist, tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
               cwd=tmp_path).stdout.strip()
    (Path(site) / "borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    wheel = dist / f"ncmflow-{VERSION}-py3-none-any.whl"
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel,
        cwd=tmp_path)

    work = tmp_path / "elsewhere"  # not the repository: its ncmflow/ folder must not be what imports
    work.mkdir()
    where = run(python, "-c", "import ncmflow; print(ncmflow.__file__)", cwd=work).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    assert run(venv / "bin" / "ncmflow", "--version", cwd=work).stdout.strip() == VERSION
    run(venv / "bin" / "ncmflow", "build", "li05nio2", "-o", "x.cif", cwd=work)
    from pymatgen.core import Composition, Structure

    structure = Structure.from_file(work / "x.cif")
    assert structure.composition == Composition("Li6Ni12O24")  # 2x2x1 LiNiO2 with 6 of 12 Li removed
    assert structure.composition.reduced_formula == "Li(NiO2)2" and len(structure) == 42
