"""The main job as the README runs it: `ncmflow study --quick`, every model at n ≥ 2 sites."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
from typer.testing import CliRunner

from ncmflow.cli import app

pytestmark = pytest.mark.slow


@pytest.mark.timeout(5400)
def test_quick_study_gives_paired_distributions_and_reruns_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JOBFLOW_CONFIG_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["study", "--quick"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "report" / "barriers.csv").open()))
    assert Counter((r["model"], r["path"]) for r in rows) == {
        (m, p): 2 for m in ("bulk", "bare", "cpan") for p in ("A", "B")}
    selected = [r for r in rows if r["selected"] == "True"]
    assert Counter(r["model"] for r in selected) == {"bulk": 2, "bare": 2, "cpan": 2}  # n ≥ 2 per model
    for r in selected:
        assert r["hop_kind"] == ("bulk" if r["model"] == "bulk" else "subsurface")
        assert 1.0 < float(r["forward_barrier"]) < 5.0, r
        if r["model"] != "bulk":
            assert float(r["hop_depth"]) >= 1.5
        if r["model"] == "cpan":  # the subsurface hop breaks the Ni–N bond along the relaxed path
            assert float(r["ni_n_end"]) >= float(r["ni_n_start"]) + 1.0
    report = (tmp_path / "report" / "barriers.md").read_text()
    assert "cPAN − bare" in report and "+0.53" in report
    again = CliRunner().invoke(app, ["study", "--quick"])
    assert again.exit_code == 0 and "0 jobs ran" in again.output
