"""`ncmflow build` as a user runs it: files written, summaries printed, bad input → exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ncmflow.cli import app
from ncmflow.structures.files import read_structure

runner = CliRunner()


@pytest.mark.parametrize("kind", ["linio2", "li05nio2", "ncm811", "slab", "interface"])
def test_build_writes_readable_file(tmp_path, kind):
    out = tmp_path / f"{kind}.json"
    result = runner.invoke(app, ["build", kind, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "formula" in result.output
    assert len(read_structure(out)) > 0


def test_build_cpan_and_migration(tmp_path):
    assert runner.invoke(app, ["build", "cpan", "-o", str(tmp_path / "c.xyz")]).exit_code == 0
    result = runner.invoke(app, ["build", "migration", "--model", "bare", "-o", str(tmp_path / "hop")])
    assert result.exit_code == 0, result.output
    start, end = (read_structure(tmp_path / "hop" / f"{n}.vasp") for n in ("start", "end"))
    assert start.species == end.species


def test_build_migration_subsurface_site_for_bare_and_cpan_share_the_hop(tmp_path):
    written = {}
    for model in ("bare", "cpan"):
        out = tmp_path / f"hop_{model}.json"
        result = runner.invoke(app, ["build", "migration", "--model", model, "--hop", "subsurface",
                                     "--site", "1", "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert "into the slab" in result.output and "ordering 1" in result.output
        written[model] = [read_structure(tmp_path / f"hop_{model}" / f"{n}.json") for n in ("start", "end")]
    (bs, be), (cs, ce) = written["bare"], written["cpan"]
    i = bs.properties["moved_index"]
    assert cs.properties["moved_index"] == i and cs.properties["site"] == 1
    assert bs.cart_coords[i, 2] - be.cart_coords[i, 2] >= 1.5  # down, into the slab
    assert be.cart_coords[i] == pytest.approx(ce.cart_coords[i], abs=1e-6)  # the same vacancy
    assert len(cs) - len(bs) == len(cs.properties["cpan_species"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["slab", "--facet", "110"], "unknown facet"),
        (["cpan", "--degree", "1.5"], "[0, 1]"),
        (["cpan", "--n-units", "1"], "n >= 2"),
        (["linio2", "-o", "/no/such/dir/x.cif"], "does not exist"),
        (["migration", "--model", "surface"], "unknown migration model"),
        (["migration", "--model", "bare", "--hop", "sideways"], "unknown hop kind"),
        (["migration", "--site", "500"], "distinct bulk hop sites"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    if "-o" not in args:
        args = [*args, "-o", str(tmp_path / "x.cif")]
    result = runner.invoke(app, ["build", *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_help_is_fast():
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ncmflow", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    heavy = ("torch", "jobflow", "pymatgen")
    assert not [line for line in out.stderr.splitlines() if any(m in line for m in heavy)]


def _commands(group, path=()):
    for name, command in group.commands.items():
        if not command.hidden:
            if hasattr(command, "commands"):
                yield from _commands(command, (*path, name))
            else:
                yield (*path, name), command


def test_every_command_has_an_example_and_lists_the_registered_engines(monkeypatch):
    from typer.main import get_command

    import ncmflow.workflows.engines

    commands = dict(_commands(get_command(app)))
    assert {("build",), ("inputs", "write"), ("analyze", "cdd"), ("submit", "study")} <= set(commands)
    monkeypatch.setattr(ncmflow.workflows.engines, "engine_names", lambda: ["alpha-engine", "omega-engine"])
    with_engines = set()
    for path, command in commands.items():
        out = runner.invoke(app, [*path, "--help"]).output
        assert "Example" in out, path
        assert "{engines}" not in out, path
        if any(p.name == "engine" for p in command.params):
            assert "alpha-engine" in out and "omega-engine" in out, path  # from the registry
            with_engines.add(path)
    assert with_engines == {("inputs", "write"), ("study",), ("query",), ("compare",), ("submit", "study")}
    params = [p for c in commands.values() for p in c.params]
    assert all("--out" in p.opts for p in params if "-o" in p.opts)  # one name per meaning
    assert not {"--output", "--flow"} & {o for p in params for o in p.opts}


def test_inputs_write_neb_folders_and_errors(tmp_path):
    hop = tmp_path / "hop"
    assert runner.invoke(app, ["build", "migration", "-o", str(hop)]).exit_code == 0
    ends = [str(hop / "start.vasp"), str(hop / "end.vasp")]
    result = runner.invoke(
        app,
        [
            "inputs",
            "write",
            "--engine",
            "vasp",
            "--job",
            "neb",
            "--n-images",
            "3",
            *ends,
            "-o",
            str(tmp_path / "neb"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "neb").iterdir() if p.is_dir()) == [
        "00",
        "01",
        "02",
        "03",
        "04",
    ]
    assert "POTCAR.spec" in result.output
    bad = runner.invoke(app, ["inputs", "write", "--engine", "qe", *ends, "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1
