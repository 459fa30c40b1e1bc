"""Set-up without root: scripts/install_plan.py's decision, the Makefile acting on it, and the
command line working where GPAW is not installed (hidden from Python, as in such a venv)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ncmflow

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "scripts" / "install_plan.py"
FULL, NO_DFT = "mlip,dft,hpc,test", "mlip,hpc,test"


def plan(root: bool, libs: bool, provided: bool = False, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NCMFLOW_AS_ROOT": str(int(root)), "NCMFLOW_SYSTEM_LIBS": str(int(libs)),
           "NCMFLOW_GPAW_PROVIDED": str(int(provided))}
    proc = subprocess.run([sys.executable, str(PLAN), *args], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc


def decision(root: bool, libs: bool, provided: bool = False) -> dict[str, str]:
    """The shell assignments the Makefile evals, read back as a shell would."""
    pairs = (shlex.split(line)[0].partition("=") for line in plan(root, libs, provided).stdout.splitlines())
    return {key: value for key, _, value in pairs}


@pytest.mark.parametrize(("root", "libs", "apt", "extras"), [
    (True, True, "0", FULL),      # root, libraries there: build GPAW
    (False, True, "0", FULL),     # a user, libraries there (a workstation): build GPAW, no root needed
    (True, False, "1", FULL),     # root, libraries missing: apt-get them, then build GPAW
    (False, False, "0", NO_DFT),  # a login node: no apt-get, no GPAW, say so and go on
])
def test_root_times_libraries(root, libs, apt, extras):
    d = decision(root, libs)
    assert (d["APT"], d["EXTRAS"], d["VENV_FLAGS"]) == (apt, extras, "")
    assert d["PACKAGES"] == "libxc-dev libopenblas-dev" and d["NO_DFT_EXTRAS"] == NO_DFT
    if root or libs:
        assert d["NOTE"] == ""
    else:
        note = d["NOTE"]
        assert "\n" not in note and "GPAW (the `dft` extra" in note and "needs root" in note
        assert "apt-get install libxc-dev libopenblas-dev" in note and "a GPAW your cluster provides" in note
        assert "the main job (CHGNet + D3) does not need it" in note
    # only a root install may fail at apt-get; then it goes on as a user would, saying why
    assert bool(d["APT_FAILED_NOTE"]) == (apt == "1")
    if apt == "1":
        assert "apt-get install libxc-dev libopenblas-dev` failed" in d["APT_FAILED_NOTE"]


@pytest.mark.parametrize(("root", "libs"), [(True, True), (True, False), (False, True), (False, False)])
def test_a_gpaw_the_system_provides_is_used_not_built(root, libs):
    d = decision(root, libs, provided=True)
    assert (d["APT"], d["EXTRAS"], d["VENV_FLAGS"]) == ("0", NO_DFT, "--system-site-packages")
    assert "already importable" in d["NOTE"]


def test_explain_says_it_in_words():
    out = plan(False, False, False, "--explain").stdout.splitlines()
    assert out[0] == "root: no; libxc-dev libopenblas-dev: missing; GPAW importable already: no"
    assert out[1] == "plan: pip install -e '.[mlip,hpc,test]'"
    assert out[2].startswith("GPAW (the `dft` extra") and len(out) == 3
    assert plan(True, False, False, "--explain").stdout.splitlines()[1] == (
        "plan: apt-get install libxc-dev libopenblas-dev, then pip install -e '.[mlip,dft,hpc,test]'")


def test_bad_override_is_refused():
    env = {**os.environ, "NCMFLOW_AS_ROOT": "maybe"}
    proc = subprocess.run([sys.executable, str(PLAN)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "NCMFLOW_AS_ROOT='maybe'" in proc.stderr


def test_default_inputs_are_read_from_the_system():
    """Without overrides: root from the uid, the libraries from dpkg, GPAW from an import."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NCMFLOW_")}
    out = subprocess.run([sys.executable, str(PLAN), "--explain"], env=env, capture_output=True, text=True,
                         timeout=60).stdout
    assert out.startswith(f"root: {'yes' if os.geteuid() == 0 else 'no'}; ")


# --- the Makefile acting on the plan: python, pip and apt-get replaced by recorders ----------

FAKE_PY = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  shift 2; echo "venv $*" >> "$LOG"
  for last; do :; done
  mkdir -p "$last/bin"
  printf '#!/bin/sh\\necho "pip $*" >> "%s"\\n' "$LOG" > "$last/bin/pip"; chmod +x "$last/bin/pip"
  exit 0
fi
exec "$REAL_PY" "$@"
"""


@pytest.fixture
def make_install(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    for name in ("Makefile", "pyproject.toml", "constraints.txt", "scripts/install_plan.py"):
        shutil.copy(ROOT / name, project / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(FAKE_PY)
    (bin_dir / "apt-get").write_text('#!/bin/sh\necho "apt-get $*" >> "$LOG"\nexit "${APT_EXIT:-0}"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    log = tmp_path / "log"

    def run(root: bool, libs: bool, provided: bool = False, apt_exit: int = 0) -> tuple[str, list[str]]:
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "LOG": str(log),
               "REAL_PY": sys.executable, "APT_EXIT": str(apt_exit), "NCMFLOW_AS_ROOT": str(int(root)),
               "NCMFLOW_SYSTEM_LIBS": str(int(libs)), "NCMFLOW_GPAW_PROVIDED": str(int(provided))}
        shutil.rmtree(project / ".venv", ignore_errors=True)
        log.write_text("")
        proc = subprocess.run(["make", "install", f"PY={bin_dir / 'python'}"], cwd=project, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (project / ".venv" / ".installed").is_file()
        return proc.stdout, log.read_text().splitlines()

    return project, run


def test_make_install_follows_the_plan(make_install):
    project, run = make_install
    skipped = project / ".venv" / "gpaw-skipped"
    editable = "pip install -q -c constraints.txt -e .[{}]"

    out, calls = run(root=False, libs=False)  # a login node
    assert not any(c.startswith("apt-get") for c in calls)
    assert calls[0] == "venv .venv" and editable.format(NO_DFT) in calls
    note = skipped.read_text().strip()
    assert "needs root" in note and f"note: {note}" in out  # recorded for the tests, and said once

    out, calls = run(root=True, libs=False)  # root: the libraries, then everything
    assert calls[:2] == ["apt-get update -qq", "apt-get install -y -qq libxc-dev libopenblas-dev"]
    assert editable.format(FULL) in calls and not skipped.exists() and "note:" not in out

    out, calls = run(root=True, libs=False, apt_exit=100)  # apt-get fails (no network): go on without
    assert calls[0] == "apt-get update -qq" and editable.format(NO_DFT) in calls
    assert "failed" in skipped.read_text() and "note: GPAW" in out

    for root in (True, False):  # the libraries there: GPAW is built whoever installs
        out, calls = run(root=root, libs=True)
        assert not any(c.startswith("apt-get") for c in calls) and editable.format(FULL) in calls
        assert not skipped.exists()

    out, calls = run(root=False, libs=False, provided=True)
    assert calls[0] == "venv --system-site-packages .venv" and editable.format(NO_DFT) in calls
    assert "already importable" in skipped.read_text()
    assert "pip install -q torch==2.13.0" in calls


# --- the command line where GPAW is not installed ---------------------------------------------

def ncmflow_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ncmflow", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_gpaw_is_really_hidden(gpaw_hidden, tmp_path):
    probe = ("import importlib.util, sys\nprint(importlib.util.find_spec('gpaw'))\n"
             "try:\n    import gpaw\nexcept ImportError as e:\n    print(type(e).__name__)")
    proc = subprocess.run([sys.executable, "-c", probe], env=gpaw_hidden, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.split() == ["None", "ModuleNotFoundError"], proc.stdout + proc.stderr


@pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")
def test_cli_works_without_gpaw(gpaw_hidden, tmp_path):
    help_ = ncmflow_cli(gpaw_hidden, tmp_path, "--help")
    assert help_.returncode == 0 and "study" in help_.stdout and help_.stderr == "", help_.stderr
    version = ncmflow_cli(gpaw_hidden, tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.strip() == ncmflow.__version__
    built = ncmflow_cli(gpaw_hidden, tmp_path, "build", "li05nio2", "-o", "x.cif")
    assert built.returncode == 0, built.stdout + built.stderr
    from pymatgen.core import Composition, Structure

    assert Structure.from_file(tmp_path / "x.cif").composition == Composition("Li6Ni12O24")
    gpaw = ncmflow_cli(gpaw_hidden, tmp_path, "study", "--engine", "gpaw", "--quick")
    assert gpaw.returncode == 2 and "Traceback" not in gpaw.stderr, gpaw.stderr
    assert "engine 'gpaw' needs the Python package gpaw" in gpaw.stderr


def test_the_main_job_is_set_up_without_gpaw(gpaw_hidden, tmp_path):
    """`ncmflow study --quick`'s config, flow (37 jobs, as the README measures) and engine, with
    GPAW hidden; the README's Python example runs a whole study so (test_readme_python)."""
    probe = ("import sys\nfrom ncmflow.cli.study import study_config\n"
             "from ncmflow.workflows.engines import get_engine\n"
             "from ncmflow.workflows.study import study_flow\n"
             "config = study_config('mlip', True, 'bulk,bare,cpan', 'subsurface', None, 'chgnet')\n"
             "flow = study_flow(config)\nassert get_engine('mlip').missing() is None\n"
             "get_engine('mlip').calculator(config.settings('chgnet'), False)\n"
             "print(len(list(flow.iterflow())), 'gpaw' in sys.modules)")
    env = {**gpaw_hidden, "NCMFLOW_TORCH_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["37", "False"]
