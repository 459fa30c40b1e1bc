"""Batch scripts rendered through qtoolkit for SLURM and PBS: resources, dependencies, quoting."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ncmflow.cli import app
from ncmflow.workflows.hpc_config import Resources, Worker
from ncmflow.workflows.study import StudyConfig, study_flow
from ncmflow.workflows.submit import new_submission, plan_stages, render_script, stage_command


@pytest.fixture(scope="module")
def flow():
    return study_flow(StudyConfig.create("mlip", quick=True, models=("bulk", "bare"), sites=1))


def slurm_worker(work: Path, **changes) -> Worker:
    return Worker(scheduler="slurm", work_dir=work, modules=["vasp/6.4.2"],
                  resources=Resources(nodes=1, cores=4, walltime="02:00:00", partition="debug",
                                      account="chem123"),
                  environment={"VASP_CMD": "srun vasp_std"}, pre_run=["source /opt/venv/bin/activate"],
                  **changes)


def test_one_stage_per_model_then_compare(flow) -> None:
    stages = plan_stages(flow)
    assert [s.name for s in stages] == ["bulk", "bare", "compare"]
    assert [len(s.uuids) for s in stages] == [6, 6, 1]  # per model: 2 relaxations, 2 paths × 2 jobs
    assert stages[0].after == [] and stages[1].after == []
    assert sorted(stages[2].after) == ["bare", "bulk"]
    assert [j["stage"] for j in stages[0].jobs] == ["relax start", "relax end", "interpolate", "interpolate",
                                                    "neb", "neb"]


def test_slurm_script(tmp_path: Path) -> None:
    worker = slurm_worker(tmp_path)
    script = render_script(worker, tmp_path / "sub", "ncm-compare",
                           stage_command(worker, tmp_path / "sub", "compare"), ["101", "102"])
    for line in ("#SBATCH --partition=debug", "#SBATCH --job-name=ncm-compare", "#SBATCH --nodes=1",
                 "#SBATCH --ntasks-per-node=4", "#SBATCH --time=0-2:0:0", "#SBATCH --account=chem123",
                 "#SBATCH --dependency=afterok:101:102", "module load vasp/6.4.2",
                 "export VASP_CMD='srun vasp_std'", "source /opt/venv/bin/activate"):
        assert line in script.splitlines(), line
    assert script.splitlines()[-1].endswith("run-jobs --submission " f"{tmp_path}/sub --stage compare")
    assert script.index("module load") < script.index("source /opt") < script.index("run-jobs")


def test_pbs_script(tmp_path: Path) -> None:
    worker = Worker(scheduler="pbs", work_dir=tmp_path,
                    resources=Resources(nodes=2, cores=16, walltime="1-00:00:00", partition="workq"))
    script = render_script(worker, tmp_path, "ncm-bulk", ["true"], ["7.pbs01"])
    for line in ("#PBS -q workq", "#PBS -N ncm-bulk", "#PBS -l select=2:ncpus=16:mpiprocs=16",
                 "#PBS -l walltime=24:0:0", "#PBS -W depend=afterok:7.pbs01", "#PBS -o scheduler.out"):
        assert line in script.splitlines(), line
    assert "#SBATCH" not in script


def test_hostile_values_are_quoted_not_run(tmp_path: Path) -> None:
    """A work_dir, environment value or python path full of shell stays inert."""
    hostile = 'x"; touch PWNED; "$(touch PWNED)`touch PWNED`'
    folder = tmp_path / hostile
    folder.mkdir()
    worker = Worker(scheduler="slurm", work_dir=tmp_path, environment={"LABEL": hostile}, python="true")
    script = render_script(worker, folder, "ncm-bulk", stage_command(worker, folder, "bulk"), [])
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.rglob("PWNED"))


def test_dry_run_prints_scripts_masked_and_creates_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    config = tmp_path / "ncmflow.yaml"
    config.write_text(f"""
workers:
  local-slurm:
    scheduler: slurm
    work_dir: {work}
    resources: {{cores: 2, walltime: "00:30:00", partition: debug}}
    environment: {{MONGO_PASSWORD: s3cr3t-pw, DB_URI: "mongodb://u:hunter2@db/x"}}
""")
    config.chmod(0o600)
    result = CliRunner().invoke(app, ["submit", "study", "--worker", "local-slurm", "--quick",
                                      "--models", "bulk", "--dry-run", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "#SBATCH --dependency=afterok:<bulk>" in result.output
    assert "#SBATCH --dependency=afterany:<bulk>:<compare>" in result.output
    assert "s3cr3t-pw" not in result.output and "hunter2" not in result.output
    assert "export MONGO_PASSWORD=****" in result.output
    assert "nothing submitted" in result.output and not work.exists()


def test_dry_run_renders_without_a_scheduler(tmp_path: Path, flow) -> None:
    worker = slurm_worker(tmp_path / "work")
    folder, scripts = new_submission(flow, "w", worker, None, "study-test", dry_run=True)
    assert list(scripts) == ["bulk", "bare", "compare", "collect"]
    assert "afterok:<bulk>:<bare>" in scripts["compare"] or "afterok:<bare>:<bulk>" in scripts["compare"]
    assert not folder.exists()


@pytest.mark.skipif(shutil.which("sbatch") is None
                    or subprocess.run(["sinfo"], capture_output=True).returncode != 0,
                    reason="no SLURM here: run scripts/slurm-local.sh (as root) first")
def test_scheduler_refusal_leaves_nothing_submitted(tmp_path: Path) -> None:
    work = tmp_path / "work"
    config = tmp_path / "ncmflow.yaml"
    config.write_text(f"workers:\n  big:\n    scheduler: slurm\n    work_dir: {work}\n"
                      "    resources: {cores: 999, walltime: '00:05:00', partition: debug}\n")
    queued = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout
    result = CliRunner().invoke(app, ["submit", "study", "--worker", "big", "--quick", "--models", "bulk",
                                      "--config", str(config), "--store", str(tmp_path / "store")])
    assert result.exit_code == 2 and "sbatch refused the job" in result.output, result.output
    assert len(result.output.strip().splitlines()) <= 3 and "Traceback" not in result.output
    assert not list(work.iterdir())
    assert subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout == queued


def test_electronic_study_dry_run_is_one_gpaw_stage(tmp_path: Path) -> None:
    config = tmp_path / "ncmflow.yaml"
    config.write_text(f"""
workers:
  cluster:
    scheduler: slurm
    work_dir: {tmp_path / "work"}
    resources: {{cores: 8, walltime: "02:00:00"}}
""")
    args = ["submit", "study", "--worker", "cluster", "--dry-run", "--config", str(config), "--electronic"]
    result = CliRunner().invoke(app, [*args, "--engine", "gpaw"])
    assert result.exit_code == 0, result.output
    assert "electronic →" in result.output and "--stage electronic" in result.output
    assert "#SBATCH --dependency=afterany:<electronic>" in result.output  # then collect
    refused = CliRunner().invoke(app, [*args, "--engine", "vasp"])
    assert refused.exit_code == 2 and "--electronic runs GPAW" in refused.output
