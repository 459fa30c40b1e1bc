"""The ncmflow config file: validation, one-line errors, secrets masked, no shell injection."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ncmflow.cli import app
from ncmflow.workflows.hpc_config import check_label, check_scheduler, load_config, mask
from ncmflow.workflows.submit import render_script, stage_command

HOSTILE = 'x"; touch /tmp/pwned; "'


def write_config(folder: Path, body: str, mode: int = 0o600) -> Path:
    path = folder / "ncmflow.yaml"
    path.write_text(body)
    path.chmod(mode)
    return path


SLURM = """
workers:
  local-slurm:
    scheduler: slurm
    work_dir: {work}
    resources: {{nodes: 1, cores: 2, walltime: "00:30:00", partition: debug, account: null}}
    pre_run: ["source /opt/venv/bin/activate"]
    modules: [vasp/6.4.2]
    environment: {{VASP_CMD: "srun vasp_std", MONGO_PASSWORD: s3cr3t-pw}}
  pbs-cluster:
    scheduler: pbs
    work_dir: {work}
    resources: {{nodes: 2, cores: 16, walltime: "1-00:00:00", partition: workq}}
jobflow_remote:
  queue: {{uri: "mongodb+srv://alice:hunter2@cluster0.example.org/?retryWrites=true"}}
"""


def test_valid_config_loads(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, SLURM.format(work=tmp_path)))
    slurm = config.worker("local-slurm")
    assert slurm.resources.seconds == 1800 and slurm.modules == ["vasp/6.4.2"]
    assert config.worker("pbs-cluster").resources.seconds == 86400
    assert set(config.secrets()) == {"s3cr3t-pw", "mongodb+srv://alice:hunter2@cluster0.example.org/?retryWrites=true"}


@pytest.mark.parametrize(("body", "expected"), [
    ("workers: {a: {scheduler: slurm, work_dir: /x, resources: {walltime: 30min}}}",
     "workers.a.resources.walltime"),
    ("workers: {a: {scheduler: lsf, work_dir: /x}}", "workers.a.scheduler"),
    ("workers: {a: {scheduler: slurm, work_dir: relative/dir}}", "absolute"),
    ("workers: {a: {scheduler: slurm, work_dir: /x, colour: red}}", "workers.a.colour"),
    ("workers: [a, b", "not valid YAML at line"),
    ("- just a list", "must be a mapping"),
    (f"workers: {{'{HOSTILE}': {{scheduler: slurm, work_dir: /x}}}}", "workers"),
    (f"workers: {{a: {{scheduler: slurm, work_dir: /x, resources: {{partition: '{HOSTILE}'}}}}}}",
     "partition"),
    (f"workers: {{a: {{scheduler: slurm, work_dir: /x, environment: {{'{HOSTILE}': v}}}}}}", "environment"),
    (f"workers: {{a: {{scheduler: slurm, work_dir: /x, modules: ['{HOSTILE}']}}}}", "workers.a.modules.0"),
    (f"workers: {{a: {{scheduler: pbs, work_dir: /x, resources: {{account: '{HOSTILE}'}}}}}}", "account"),
])
def test_malformed_config_is_one_line_naming_the_field(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(ValueError, match="config") as info:
        load_config(write_config(tmp_path, body))
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_unknown_worker_names_the_fix(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, SLURM.format(work=tmp_path)))
    with pytest.raises(ValueError, match=r"unknown worker 'gpu'.*local-slurm, pbs-cluster.*workers:"):
        config.worker("gpu")


def test_missing_config_says_where_to_write_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ValueError, match=r"ncmflow\.yaml"):
        load_config()


def test_secrets_readable_by_others_warn(tmp_path: Path) -> None:
    path = write_config(tmp_path, SLURM.format(work=tmp_path), mode=0o644)
    with pytest.warns(UserWarning, match="chmod 600"):
        load_config(path)
    path.chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(path)


def test_mask_hides_passwords_and_known_secrets() -> None:
    text = "uri mongodb://bob:pa55@db:27017/x and key /home/bob/.ssh/id_ed25519 and ok"
    masked = mask(text, ["/home/bob/.ssh/id_ed25519"])
    assert "pa55" not in masked and "id_ed25519" not in masked
    assert "mongodb://bob:****@db:27017/x" in masked and masked.endswith("and ok")


def test_labels_cannot_carry_shell() -> None:
    assert check_label("bulk") == "bulk"
    for bad in (HOSTILE, "a b", "$(id)", "../up", "", "x" * 65):
        with pytest.raises(ValueError, match="not allowed"):
            check_label(bad, "model name")


@pytest.mark.skipif(shutil.which("qsub") is not None, reason="PBS is installed here")
def test_missing_scheduler_command_is_reported(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, SLURM.format(work=tmp_path)))
    with pytest.raises(ValueError, match="'qsub' is not on PATH"):
        check_scheduler(config.worker("pbs-cluster"), "pbs-cluster")


def test_cli_bad_input_is_one_line_and_submits_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    config = write_config(tmp_path, SLURM.format(work=work))
    runner = CliRunner()
    cases = [
        (["--worker", "nope"], "unknown worker"),
        (["--worker", "local-slurm", "--models", HOSTILE], "model name"),
        (["--worker", "local-slurm", "--engine", "nonsense"], "unknown engine"),
    ]
    if shutil.which("qsub") is None:
        cases.append((["--worker", "pbs-cluster"], "qsub"))
    for args, expected in cases:
        result = runner.invoke(app, ["submit", "study", "--config", str(config), *args])
        assert result.exit_code == 2, result.output
        assert expected in result.output and "Traceback" not in result.output
    broken = write_config(tmp_path, "workers: {a: [")
    result = runner.invoke(app, ["submit", "study", "--config", str(broken), "--worker", "a"])
    assert result.exit_code == 2 and "not valid YAML" in result.output
    assert os.listdir(work) == []


# Shell in every config value that reaches the script body unvalidated (work_dir, environment
# values, python); no "/" so each `touch` would make a file named exactly PWNED in the cwd.
INERT = "x\"; touch PWNED; \"$(touch PWNED)`touch PWNED`'; touch PWNED; '"
FAKE_PYTHON = '#!/bin/bash\nprintf "%s\\0" "$LABEL" "$PWD" "$@" > "$RECORD"\n'


def test_hostile_config_values_are_inert_in_the_rendered_script(tmp_path: Path) -> None:
    """Load a config whose values carry shell, render the real batch script, run it with bash.

    Fails if render_script stopped quoting (the `touch` runs, or the values arrive mangled).
    The #SBATCH header is comments to bash; sbatch/qsub/srun/module are stubs that fail, so
    the script runs here as a scheduler would start it, with no scheduler present.
    """
    python = tmp_path / f"bin {INERT}" / "python"
    python.parent.mkdir()
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in ("sbatch", "qsub", "srun", "module"):
        (stubs / name).write_text("#!/bin/sh\nexit 97\n")
        (stubs / name).chmod(0o755)
    record = tmp_path / "record.bin"
    worker = {"scheduler": "slurm", "work_dir": f"{tmp_path}/work {INERT}", "python": str(python),
              "resources": {"partition": "debug"}, "environment": {"LABEL": INERT, "RECORD": str(record)}}
    config = load_config(write_config(tmp_path, yaml.safe_dump({"workers": {"w": worker}})))
    w = config.worker("w")
    assert w.environment["LABEL"] == INERT  # loaded verbatim: these fields are quoted, not refused
    folder = w.work_dir / "sub"
    folder.mkdir(parents=True)
    script = render_script(w, folder, "ncm-bulk", stage_command(w, folder, "bulk"), ["101"])
    assert "#SBATCH --dependency=afterok:101" in script.splitlines()
    (tmp_path / "job.sh").write_text(script)
    env = {"PATH": f"{stubs}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    result = subprocess.run(["bash", "job.sh"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert [p for p in tmp_path.rglob("*") if p.name == "PWNED"] == []
    assert result.returncode == 0, result.stderr
    label, cwd, *args = record.read_bytes().decode().split("\0")[:-1]
    assert label == INERT and Path(cwd) == folder  # the values arrived intact
    assert args == ["-m", "ncmflow", "run-jobs", "--submission", str(folder), "--stage", "bulk"]
