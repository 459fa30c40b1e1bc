"""The README's Python example, run as written (a quick bulk study of one site, CHGNet + D3), with
GPAW hidden as in a venv installed without the `dft` extra; and the public API's import promises."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ncmflow

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The first ```python block of the README's "Python API" section."""
    text = README.read_text()
    section = text[text.index("\n## Python API\n"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's Python API section has no ```python block"
    return blocks[0]


def run_example(folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", readme_example()], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    hide = folder / "hide_gpaw"
    hide.mkdir()
    from conftest import HIDE_GPAW

    (hide / "sitecustomize.py").write_text(HIDE_GPAW)
    env = {k: v for k, v in os.environ.items() if k != "JOBFLOW_CONFIG_FILE"}
    env.update(HOME=str(folder), PYTHONPATH=os.pathsep.join(filter(None, [str(hide), env.get("PYTHONPATH")])),
               NCMFLOW_TORCH_THREADS="1", MPLBACKEND="Agg")
    work = folder / "work"
    work.mkdir()
    first = run_example(work, env)
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_example(work, env)
    return {"dir": work, "first": first, "second": second}


def test_the_readme_example_runs_the_study_and_reads_it_back(example):
    out, folder = example["first"].stdout, example["dir"]
    config = ncmflow.StudyConfig.create("mlip", quick=True, models=("bulk",), sites=1)
    assert f"{config.key} 7 jobs" in out  # the CLI's `--quick --models bulk --sites 1` study
    assert "['ran', 'ran', 'ran', 'ran', 'ran', 'ran', 'ran']" in out
    assert re.search(r"^Li\(NiO2\)2 42 atoms$", out, flags=re.M), out
    # the DataFrame printed: both paths of bulk site 0, path B (BFGS, 5 images) on the lower saddle
    lines = [line.split() for line in out.splitlines() if re.match(r"^\d+\s+bulk\s+0\s+[AB]\s", line)]
    assert [(p[3], p[5], p[6]) for p in lines] == [("A", "True", "False"), ("B", "True", "True")], out
    barrier = float(re.search(r"forward barrier (\d+\.\d+) eV", out).group(1))
    assert barrier == pytest.approx(float(lines[1][4]), abs=1e-3)
    assert barrier == pytest.approx(2.14, abs=0.03)  # CHGNet + D3's lower bulk saddle (test_study_cli)
    assert (folder / "profile.png").stat().st_size > 1000
    assert (folder / "start.cif").read_text().count("Ni") > 1
    csv_rows = list(csv.DictReader((folder / "report" / "barriers.csv").open()))
    assert [(r["path"], r["selected"]) for r in csv_rows] == [("A", "False"), ("B", "True")]
    assert float(csv_rows[1]["forward_barrier"]) == pytest.approx(barrier, abs=1e-3)


def test_running_the_example_again_reuses_every_job(example):
    second = example["second"]
    assert second.returncode == 0, second.stdout + second.stderr
    assert "['reused', 'reused', 'reused', 'reused', 'reused', 'reused', 'reused']" in second.stdout


def test_import_ncmflow_is_cheap_and_every_public_name_resolves():
    probe = ("import sys, ncmflow; heavy = ('torch', 'jobflow', 'pymatgen', 'gpaw', 'matplotlib'); "
             "print(sorted(m for m in heavy if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    for name in ncmflow.__all__:
        assert getattr(ncmflow, name) is not None, name
    assert ncmflow.StudyConfig is __import__("ncmflow.workflows.study").workflows.study.StudyConfig
    with pytest.raises(AttributeError):
        _ = ncmflow.no_such_name
