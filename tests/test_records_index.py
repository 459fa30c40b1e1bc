"""`ncmflow query` through the montydb summary table: the same records as the full query."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime, timedelta

import pytest

from ncmflow.analysis.records import list_records, query_records, scan_records
from ncmflow.analysis.records_index import embedded_collection_file, indexed_records
from ncmflow.workflows.store import get_store

START = datetime(2026, 3, 1)
FILTERS = [{}, {"kind": "neb"}, {"kind": "relax"}, {"model": "cpan"}, {"engine": "gpaw"},
           {"model": "bare", "engine": "mlip", "kind": "neb"}, {"since": START + timedelta(hours=1)},
           {"kind": "electronic", "since": START}, {"model": "nothing"}]


def job(i: int, **meta) -> dict:
    """A job document as jobflow writes it: relaxations, NEB results, GPAW single points."""
    stage = meta.pop("stage", ("relax start", "neb", "lcao", "static")[i % 4])
    metadata = {"model": ("bulk", "bare", "cpan")[i % 3], "engine": ("mlip", "gpaw")[i % 2],
                "site": i % 3, "potential": "chgnet", "stage": stage, "study": "s1", **meta}
    if stage == "neb":
        output = {"@module": "ncmflow.workflows.documents", "@class": "BarrierDoc", "converged": i % 5 != 0,
                  "forward_barrier": 1.0 + i / 100, "reason": "max steps", "energies": [-1.0] * 7}
    elif stage == "lcao":
        metadata["part"] = "slab"
        output = {"energy": -800.0 - i, "magmom": 3.2, "density_cube": "x.cube"}
    else:
        output = {"@class": "ForceFieldTaskDocument", "output": {"energy": -500.5 - i, "n_steps": 3},
                  "structure": {"sites": [{"xyz": [0.1 * k, 0, 0], "species": "Ni"} for k in range(20)]}}
    # ties in completed_at (pairs): the order must still be the store's
    return {"uuid": str(uuid.UUID(int=i + 1)), "index": 1, "name": stage.replace(" ", "_"), "output": output,
            "completed_at": (START + timedelta(minutes=7 * (i // 2))).isoformat(), "metadata": metadata}


def same_everywhere(store, folder) -> list:
    """Every filter: summary (by folder and by JobStore) == the MongoDB query on the store."""
    for filters in FILTERS:
        expected = scan_records(store, **filters)
        assert query_records(folder, **filters) == expected, filters
        assert list_records(store, **filters) == expected, filters
    return scan_records(store)


def test_summary_matches_the_full_query_as_documents_come_and_go(tmp_path):
    folder = tmp_path / "db"
    store = get_store(folder)
    assert query_records(folder) == []  # nothing written yet
    store.docs_store.update([job(i) for i in range(40)])
    first = same_everywhere(store, folder)
    assert len(first) == 40 and len({r["kind"] for r in first}) == 4
    conn_file = embedded_collection_file(folder)
    assert conn_file.is_file()

    # written after the summary was built, by jobflow's own store: added, replaced, removed
    store.docs_store.update([job(i) for i in range(40, 55)])
    changed = job(3, model="cpan", engine="gpaw")
    changed["completed_at"] = (START + timedelta(days=9)).isoformat()
    store.docs_store.update([changed])
    store.docs_store.remove_docs({"uuid": job(10)["uuid"]})
    now = same_everywhere(store, folder)
    assert len(now) == 54 and now[-1]["uuid"] == changed["uuid"] and now[-1]["model"] == "cpan"
    assert job(10)["uuid"] not in {r["uuid"] for r in now}

    # a second store object (another process) sees the same; stored documents are untouched
    assert same_everywhere(get_store(folder), folder) == now
    assert store.docs_store.query_one({"uuid": job(5)["uuid"]})["output"] == job(5)["output"]


def test_documents_the_summary_cannot_compare_take_the_full_query(tmp_path):
    folder = tmp_path / "db"
    store = get_store(folder)
    odd = job(1)
    odd["metadata"]["model"] = ["bare", "cpan"]  # MongoDB matches a list by its elements
    store.docs_store.update([job(0), odd, job(2)])
    same_everywhere(store, folder)
    assert indexed_records(embedded_collection_file(folder)) is None  # the store's own query answered


def test_a_file_that_is_not_a_montydb_collection_is_not_summarised(tmp_path):
    path = tmp_path / "outputs.collection"
    path.write_text("not sqlite")
    assert indexed_records(path) is None
    assert path.read_text() == "not sqlite"


def test_query_cli_json_lines_come_from_the_summary(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ncmflow.cli import app

    store = get_store(tmp_path / "db")
    store.docs_store.update([job(i) for i in range(8)])
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["query", "--json", "--kind", "neb", "--store", "db"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.output.splitlines()] == scan_records(store, kind="neb")


@pytest.mark.parametrize("args", [["--help"], ["query", "--store", "db"],
                                  ["query", "--json", "--store", "db"]])
def test_help_and_query_import_nothing_heavy(tmp_path, args):
    get_store(tmp_path / "db").docs_store.update([job(i) for i in range(4)])
    code = ("import sys\nfrom ncmflow.cli import app\n"
            f"sys.argv = ['ncmflow', *{args!r}]\n"
            "try:\n    app()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "heavy = ('torch', 'pymatgen', 'jobflow', 'maggma', 'montydb', 'numpy', 'markdown_it')\n"
            "print('HEAVY', sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         check=True)
    assert "HEAVY []" in out.stdout, out.stdout[-500:] + out.stderr[-2000:]


def test_query_table_shows_the_newest_hundred_and_says_so(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ncmflow.cli import app

    store = get_store(tmp_path / "db")
    store.docs_store.update([job(i) for i in range(130)])
    monkeypatch.chdir(tmp_path)
    newest = scan_records(store)[-100:]
    out = CliRunner().invoke(app, ["query", "--store", "db"]).output
    assert "the newest 100 of 130 records; --limit 0 shows all" in out
    shown = [line.split()[1] for line in out.splitlines() if line.count("-") >= 4 and line.startswith("│")]
    assert shown == [r["uuid"] for r in newest]
    out = CliRunner().invoke(app, ["query", "--store", "db", "--limit", "0"]).output
    assert "newest" not in out and sum(r["uuid"] in out for r in scan_records(store)) == 130
    lines = CliRunner().invoke(app, ["query", "--json", "--store", "db"]).output.splitlines()
    assert len(lines) == 130  # --json: everything unless --limit says otherwise
    lines = CliRunner().invoke(app, ["query", "--json", "--limit", "5", "--store", "db"]).output.splitlines()
    assert [json.loads(line)["uuid"] for line in lines] == [r["uuid"] for r in newest[-5:]]
