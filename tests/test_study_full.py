"""The main job as the README runs it: all three models, --quick, three converged barriers."""

from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from ncmflow.cli import app

pytestmark = pytest.mark.slow


def test_quick_study_gives_three_converged_barriers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JOBFLOW_CONFIG_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["study", "--quick"])
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in csv.DictReader((tmp_path / "report" / "barriers.csv").open())}
    assert set(rows) == {"bulk", "bare", "cpan"}
    for model, row in rows.items():
        assert row["converged"] == "True", (model, row["reason"])
        assert 0.3 < float(row["forward_barrier"]) < 5.0
    assert float(rows["cpan"]["paper_barrier"]) == 3.36
    assert "cPAN − bare (eV): mlip" in (tmp_path / "report" / "barriers.md").read_text()
