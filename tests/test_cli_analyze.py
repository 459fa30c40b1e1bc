"""`ncmflow analyze …` as a user runs it: numbers printed, plots and JSON written, bad input → exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from typer.testing import CliRunner

from ncmflow.analysis.cdd import DensityGrid
from ncmflow.cli import app

runner = CliRunner()
NACL = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "vasp_lobster_nacl"
needs_nacl = pytest.mark.skipif(not NACL.is_dir(), reason="../shared/testdata is not beside this clone")


@needs_nacl
def test_cohp_command_reports_icohplist_values(tmp_path):
    result = runner.invoke(
        app, ["analyze", "cohp", str(NACL), "--pair", "Na,Cl", "--max-length", "3", "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "−ICOHP(E_F) = 0.2831 eV" in result.output
    data = json.loads((tmp_path / "cohp.json").read_text())
    assert set(data["minus_icohp_at_ef"]) == {"up", "down"}
    assert (tmp_path / "cohp.png").stat().st_size > 10_000


@needs_nacl
def test_pdos_command_overlap_and_centre(tmp_path):
    result = runner.invoke(
        app,
        [
            "analyze",
            "pdos",
            str(NACL / "vasprun.xml.gz"),
            "--labels",
            "Na-p,Cl-p",
            "--overlap",
            "Na-p,Cl-p",
            "--centre",
            "Cl-p",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "pdos.json").read_text())
    assert 0.0 < data["overlap"] <= 1.0 and np.isfinite(data["band_centre_eV"])


def _cube(path: Path, shape: tuple[int, int, int], value: float) -> Path:
    atoms = Atoms("NiN", positions=[[2, 2, 2], [2, 2, 4]], cell=[5, 5, 7], pbc=True)
    DensityGrid(np.full(shape, value), atoms).write(path)
    return path


def test_cdd_command_writes_difference_and_plots(tmp_path):
    ab = _cube(tmp_path / "ab.cube", (20, 20, 28), 0.3)
    a = _cube(tmp_path / "a.cube", (20, 20, 28), 0.1)
    b = _cube(tmp_path / "b.cube", (20, 20, 28), 0.15)
    result = runner.invoke(
        app, ["analyze", "cdd", str(ab), str(a), str(b), "--ni", "0", "--n", "1", "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    delta = DensityGrid.from_cube(tmp_path / "out" / "delta_rho.cube")
    assert np.allclose(delta.data, 0.05, atol=1e-6)
    assert (tmp_path / "out" / "cdd_slice.png").is_file()


def test_cdd_refuses_mismatched_grids(tmp_path):
    ab = _cube(tmp_path / "ab.cube", (20, 20, 28), 0.3)
    a = _cube(tmp_path / "a.cube", (10, 10, 14), 0.1)
    result = runner.invoke(
        app, ["analyze", "cdd", str(ab), str(a), str(a), "--ni", "0", "--n", "1", "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 2 and "grid" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_neb_command_rejects_unknown_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["analyze", "neb", "not-a-uuid", "--store", "db"])
    assert result.exit_code == 2 and "neither a folder nor the uuid" in result.output
