"""The main job as the README runs it: `ncmflow study --quick`, every model at n ≥ 2 sites."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
from typer.testing import CliRunner

from ncmflow.cli import app

pytestmark = pytest.mark.slow

# Forward barriers (eV) of every (model, site, path) of `ncmflow study --quick` on 2026-12-02
# (README, "The study's numbers"; report/barriers.csv). Three runs that day — 2 workers × 1 torch
# thread, 1 worker × 2 threads, and this test — agreed on every row to the printed 1 meV, so
# ±0.01 eV covers same-machine float noise (thread count changes torch's summation order);
# a change to the optimizers or the paths will move them further and must update this table.
KNOWN = {("bulk", "0", "A"): 2.353, ("bulk", "0", "B"): 2.145, ("bulk", "1", "A"): 2.176,
         ("bulk", "1", "B"): 2.108, ("bare", "0", "A"): 1.405, ("bare", "0", "B"): 1.383,
         ("bare", "1", "A"): 1.334, ("bare", "1", "B"): 1.314, ("cpan", "0", "A"): 1.597,
         ("cpan", "0", "B"): 1.576, ("cpan", "1", "A"): 1.491, ("cpan", "1", "B"): 1.465}
FLOAT_NOISE = 0.01  # eV


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
    barriers = {(r["model"], r["site"], r["path"]): float(r["forward_barrier"]) for r in rows}
    assert barriers == {k: pytest.approx(v, abs=FLOAT_NOISE) for k, v in KNOWN.items()}
    selected = [r for r in rows if r["selected"] == "True"]
    assert Counter(r["model"] for r in selected) == {"bulk": 2, "bare": 2, "cpan": 2}  # n ≥ 2 per model
    assert {r["path"] for r in selected} == {"B"}  # the lower saddle at every site (table above)
    for r in selected:
        assert r["hop_kind"] == ("bulk" if r["model"] == "bulk" else "subsurface")
        if r["model"] != "bulk":
            assert float(r["hop_depth"]) >= 1.5
        if r["model"] == "cpan":  # the subsurface hop breaks the Ni–N bond along the relaxed path
            assert float(r["ni_n_end"]) >= float(r["ni_n_start"]) + 1.0
    report = (tmp_path / "report" / "barriers.md").read_text()
    assert "cPAN − bare" in report and "+0.53" in report
    again = CliRunner().invoke(app, ["study", "--quick"])
    assert again.exit_code == 0 and "0 jobs ran" in again.output
