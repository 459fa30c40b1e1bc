"""The jobflow-remote project generated from the ncmflow config, validated by jobflow-remote itself."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from jobflow_remote.config.base import LocalWorker, Project, RemoteWorker
from maggma.stores import MongoStore, MongoURIStore

from ncmflow.workflows.hpc_config import HpcConfig
from ncmflow.workflows.jfremote import (
    project_dict,
    project_yaml,
    validate_project,
    worker_script,
    write_project,
)


def config(tmp_path: Path, queue: dict | None = None) -> HpcConfig:
    return HpcConfig.model_validate({
        "workers": {
            "local-slurm": {"scheduler": "slurm", "work_dir": str(tmp_path / "jf"),
                            "resources": {"cores": 2, "walltime": "00:30:00", "partition": "debug"},
                            "pre_run": ["source /opt/venv/bin/activate"],
                            "environment": {"VASP_CMD": "srun vasp_std"}},
            "archer": {"scheduler": "pbs", "host": "login.archer.example.org", "user": "alice",
                       "key_filename": "/home/alice/.ssh/id_archer", "passphrase": "open sesame",
                       "work_dir": "/work/alice/jf", "modules": ["vasp/6.4.2"],
                       "resources": {"nodes": 2, "cores": 128, "walltime": "12:00:00",
                                     "partition": "standard", "account": "e89"}},
        },
        "jobflow_remote": {"project": "ncmflow-test", "runner_delay": 5,
                           "queue": queue or {"host": "db.example.org", "username": "jf",
                                              "password": "hunter2"}},
    })


def test_project_is_valid_for_jobflow_remote(tmp_path: Path) -> None:
    project = validate_project(project_dict(config(tmp_path)))
    assert isinstance(project, Project) and project.name == "ncmflow-test"
    assert isinstance(project.workers["local-slurm"], LocalWorker)
    remote = project.workers["archer"]
    assert isinstance(remote, RemoteWorker) and remote.host == "login.archer.example.org"
    assert remote.resources["select"] == "select=2:ncpus=128:mpiprocs=128"
    assert "module load vasp/6.4.2" in remote.pre_run
    queue = project.get_queue_store()
    assert isinstance(queue, MongoStore) and queue.host == "db.example.org"  # built, not connected
    assert project.runner.delay_checkout == 5
    assert project.get_jobstore().additional_stores["data"].__class__.__name__ == "GridFSStore"


def test_uri_queue(tmp_path: Path) -> None:
    uri = "mongodb+srv://jf:hunter2@cluster0.example.org/?retryWrites=true"
    project = validate_project(project_dict(config(tmp_path, {"uri": uri, "database": "ncm"})))
    assert isinstance(project.get_queue_store(), MongoURIStore)
    assert "hunter2" not in project_yaml(config(tmp_path, {"uri": uri}))


def test_printed_project_and_scripts_hide_secrets(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    text = project_yaml(cfg) + worker_script(cfg, "archer") + worker_script(cfg, "local-slurm")
    for secret in ("hunter2", "open sesame", "/home/alice/.ssh/id_archer"):
        assert secret not in text
    assert "password: '****'" in text or "password: ****" in text


def test_rendered_worker_scripts(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    slurm = worker_script(cfg, "local-slurm").splitlines()
    for line in ("#SBATCH --partition=debug", "#SBATCH --ntasks-per-node=2", "#SBATCH --time=00:30:00",
                 "export VASP_CMD='srun vasp_std'", "jf -fe execution run <job run folder>"):
        assert line in slurm, line
    pbs = worker_script(cfg, "archer").splitlines()
    for line in ("#PBS -q standard", "#PBS -A e89", "#PBS -l select=2:ncpus=128:mpiprocs=128",
                 "#PBS -l walltime=12:00:00"):
        assert line in pbs, line


def test_project_file_is_private_and_complete(tmp_path: Path) -> None:
    path = write_project(config(tmp_path), tmp_path / "projects")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "hunter2" in path.read_text()  # jf needs it; the file is the one place it lives


def test_invalid_project_is_one_line(tmp_path: Path) -> None:
    spec = project_dict(config(tmp_path))
    spec["workers"]["local-slurm"]["scheduler_type"] = "lsf"
    with pytest.raises(ValueError, match=r"^jobflow-remote project: workers.*lsf") as info:
        validate_project(spec)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="jobflow_remote:"):
        project_dict(HpcConfig())
