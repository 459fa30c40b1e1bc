"""`ncmflow study/compare/query/show` end to end on the embedded default (bulk model, --quick)."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from ncmflow.cli import app
from ncmflow.workflows.store import get_store

runner = CliRunner()


STUDY = ["study", "--quick", "--models", "bulk", "--sites", "1"]
JOBS = 7  # two end-point relaxations, two paths (interpolation + NEB each), the comparison


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.delenv("JOBFLOW_CONFIG_FILE", raising=False)
        mp.setenv("HOME", str(folder))  # no user jobflow config: the embedded store is used
        first = runner.invoke(app, STUDY)
        assert first.exit_code == 0, first.output
        reports = {p.name: p.read_bytes() for p in (folder / "report").glob("barriers.*")}
        count = get_store("ncmflow_data").count()
        second = runner.invoke(app, STUDY)
        yield {"dir": folder, "first": first.output, "second": second, "reports": reports,
               "count": count, "mp": mp}


def test_report_holds_both_paths_and_selects_the_lower_saddle(study_dir):
    rows = list(csv.DictReader((study_dir["dir"] / "report" / "barriers.csv").open()))
    assert [(r["model"], r["site"], r["path"], r["potential"], r["hop_kind"]) for r in rows] == [
        ("bulk", "0", "A", "chgnet", "bulk"), ("bulk", "0", "B", "chgnet", "bulk")]
    assert all(r["converged"] == "True" and r["engine"] == "mlip" and int(r["force_calls"]) > 0 for r in rows)
    barriers = {r["path"]: float(r["forward_barrier"]) for r in rows}
    # CHGNet + D3 has two saddles for this hop (benchmarks/lowest_saddle.py): ODE on 3 images
    # stops at the upper one, BFGS on 5 images finds the lower one; the report keeps the lower
    assert barriers["A"] == pytest.approx(2.35, abs=0.03) and barriers["B"] == pytest.approx(2.14, abs=0.03)
    assert [r["selected"] for r in rows] == ["False", "True"]
    assert all(float(r["paper_barrier"]) == 2.83 for r in rows)
    for name in ("neb_profiles.png", "barrier_distribution.png", "index.html"):
        assert (study_dir["dir"] / "report" / name).stat().st_size > 1000
    assert (study_dir["dir"] / "report" / "structures" / "bulk_chgnet_site0_start.cif").is_file()


def test_rerun_computes_nothing_and_duplicates_nothing(study_dir):
    second = study_dir["second"]
    assert second.exit_code == 0, second.output
    assert f"0 jobs ran, {JOBS} reused" in second.output
    assert "bulk site 0 chgnet: relax start reused" in second.output  # plain progress lines: no terminal


def test_redirected_output_shows_progress_lines(study_dir):
    lines = study_dir["first"].splitlines()
    assert any(line.endswith("bulk site 0 chgnet: relax start start") for line in lines)
    assert any("bulk site 0 chgnet: neb A done" in line for line in lines)
    steps = [line for line in lines if "NEB iteration" in line]
    assert steps and "max force" in steps[0]
    assert len(steps) < 100  # throttled: at most one line every few seconds per row
    # the report's tables as written, every cell whole (rendered, rich cuts them to 80 columns)
    table = [line for line in (study_dir["dir"] / "report" / "barriers.md").read_text().splitlines()
             if line.startswith("| potential |")]
    assert table and all(line in lines for line in table)
    assert get_store(study_dir["dir"] / "ncmflow_data").count() == study_dir["count"] == JOBS
    now = {p.name: p.read_bytes() for p in (study_dir["dir"] / "report").glob("barriers.*")}
    assert now == study_dir["reports"]


def test_compare_regenerates_identical_tables(study_dir, monkeypatch):
    monkeypatch.chdir(study_dir["dir"])
    result = runner.invoke(app, ["compare", "--store", "ncmflow_data", "--out", "again"])
    assert result.exit_code == 0, result.output
    for name in ("barriers.csv", "barriers.md"):
        assert (study_dir["dir"] / "again" / name).read_bytes() == study_dir["reports"][name]
    listed = runner.invoke(app, ["query", "--json", "--kind", "neb", "--store", "ncmflow_data"]).output
    key = json.loads(listed.splitlines()[0])["study"]
    one = runner.invoke(app, ["compare", "--store", "ncmflow_data", "--study", key, "-o", "one"])
    assert one.exit_code == 0, one.output
    assert (study_dir["dir"] / "one" / "barriers.csv").read_bytes() == study_dir["reports"]["barriers.csv"]
    other = runner.invoke(app, ["compare", "--store", "ncmflow_data", "--study", "study-000000000000"])
    assert other.exit_code == 2 and "holds no NEB results matching study=study-000000000000" in other.output
    assert "+0.53" in (study_dir["dir"] / "again" / "barriers.md").read_text()


def test_query_and_show(study_dir, monkeypatch):
    monkeypatch.chdir(study_dir["dir"])
    result = runner.invoke(app, ["query", "--json", "--store", "ncmflow_data"])
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["stage"] for r in records][:2] == ["relax start", "relax end"]
    neb = [r for r in records if r["kind"] == "neb"]
    assert len(neb) == 2 and {r["model"] for r in neb} == {"bulk"}
    rows = {r["uuid"]: r for r in csv.DictReader((study_dir["dir"] / "report" / "barriers.csv").open())}
    for record in neb:
        doc = json.loads(runner.invoke(app, ["show", record["uuid"], "--store", "ncmflow_data"]).output)
        assert doc["output"]["forward_barrier"] == pytest.approx(
            float(rows[record["uuid"]]["forward_barrier"]), abs=1e-3)
        images = 5 if doc["output"]["path"] == "A" else 7
        assert len(doc["output"]["forces"]) == images  # loaded back from the data store


def test_large_arrays_live_in_the_data_store(study_dir):
    store = get_store(study_dir["dir"] / "ncmflow_data")
    raw = store.query_one({"output.@class": "BarrierDoc"})
    assert "blob_uuid" in json.dumps(raw["output"]["forces"])
    assert "blob_uuid" in json.dumps(raw["output"]["images"])


@pytest.mark.parametrize(("args", "message"), [
    (["study", "--engine", "qe"], "unknown engine 'qe'"),
    (["study", "--engine", "vasp"], "needs the program vasp_std"),
    (["show", "no-such-uuid", "--store", "db"], "no document with uuid"),
    (["query", "--kind", "dos", "--store", "db"], "unknown kind"),
    (["compare", "--store", "db"], "holds no NEB results"),
    (["study", "--ml-models", "chgnet,mace"], "unknown ML potential 'mace': the offline ones are chgnet"),
    (["study", "--hop", "sideways"], "unknown hop kind 'sideways'"),
    (["study", "--sites", "0"], "--sites must be at least 1"),
])
def test_bad_input_one_line_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_study_writes_cluster_inputs(tmp_path):
    result = runner.invoke(app, ["study", "--engine", "vasp", "--models", "bulk", "--write-inputs",
                                 str(tmp_path / "vasp")])
    assert result.exit_code == 0, result.output
    from pymatgen.io.vasp import Incar

    assert sorted(p.name for p in (tmp_path / "vasp" / "bulk").iterdir()) == [f"site{k}" for k in range(4)]
    relax = Incar.from_file(tmp_path / "vasp" / "bulk" / "site0" / "relax_start" / "INCAR")
    assert relax["ISIF"] == 2 and relax["ENCUT"] == 520 and relax["IVDW"] == 12
    neb = tmp_path / "vasp" / "bulk" / "site0" / "neb"
    assert Incar.from_file(neb / "INCAR")["IMAGES"] == 5
    assert sorted(p.name for p in neb.iterdir() if p.is_dir()) == [f"{i:02d}" for i in range(7)]
