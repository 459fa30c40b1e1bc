"""One rule for where results live: a local run and a submission's batch jobs open the same store.

Each case submits a one-job flow (the scheduler stubbed), makes its batch job's output, and runs
`ncmflow collect` the way the final batch job does: from the submission folder, with the node's
own environment. The documents must arrive in the store a local run here opens.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jobflow import Flow, job
from typer.testing import CliRunner

from ncmflow.cli import app
from ncmflow.workflows import submit
from ncmflow.workflows.hpc_config import Resources, Worker
from ncmflow.workflows.store import get_store, resolve_store
from ncmflow.workflows.submit import load_record, new_submission, pinned_store

runner = CliRunner()
CASES = ["no config", "JOBFLOW_CONFIG_FILE", "~/.jobflow.yaml", "--store folder", "--store yaml"]


@job
def add(a: int, b: int) -> int:
    return a + b


def store_spec(db: Path) -> dict:
    def monty(name: str) -> dict:
        return {"type": "MontyStore", "collection_name": name, "database_path": str(db), "storage": "sqlite"}

    return {"docs_store": monty("outputs"), "additional_stores": {"data": monty("blobs")}}


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The submitting folder, a compute node's folder and a shared HOME without a jobflow config."""
    paths = {name: tmp_path / name for name in ("here", "node", "home", "configs")}
    for path in paths.values():
        path.mkdir()
    monkeypatch.setenv("HOME", str(paths["home"]))
    monkeypatch.delenv("JOBFLOW_CONFIG_FILE", raising=False)
    monkeypatch.chdir(paths["here"])
    return paths


def arrange(case: str, places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> str | None:
    """Set up ``case`` in the submitting folder; the --store argument it passes (None: none)."""
    configs = places["configs"]
    if case == "JOBFLOW_CONFIG_FILE":
        (configs / "jobflow.yaml").write_text(yaml.safe_dump({"JOB_STORE": store_spec(configs / "env_db")}))
        monkeypatch.setenv("JOBFLOW_CONFIG_FILE", "../configs/jobflow.yaml")  # relative, as users do
    elif case == "~/.jobflow.yaml":
        home_config = {"JOB_STORE": store_spec(configs / "home_db")}
        (places["home"] / ".jobflow.yaml").write_text(yaml.safe_dump(home_config))
    elif case == "--store yaml":
        (places["here"] / "store.yaml").write_text(yaml.safe_dump(store_spec(configs / "yaml_db")))
        return "store.yaml"
    elif case == "--store folder":
        return "db"
    return None


def stub_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(range(100, 200))
    monkeypatch.setattr(submit, "_sbatch", lambda worker, script, stage_dir: str(next(ids)))


def batch_job_output(folder: Path, stage: str, uuid: str) -> None:
    """What a finished batch job leaves: its stage's documents (one job output, one blob)."""
    doc = {"uuid": uuid, "index": 1, "output": {"@module": "jobflow.core.store", "@class": "BlobReference",
                                                 "blob_uuid": f"blob-{uuid}", "store": "data"},
           "metadata": {"model": stage}, "completed_at": "2026-12-01T10:00:00"}
    blob = {"blob_uuid": f"blob-{uuid}", "job_uuid": uuid, "job_index": 1, "data": [1.0, 2.0]}
    (folder / "stages" / stage / "outputs.json").write_text(json.dumps({"outputs": [doc], "data": [blob]}))


@pytest.mark.parametrize("case", CASES)
def test_a_local_run_and_the_batch_jobs_open_the_same_store(case, places, monkeypatch):
    store = arrange(case, places, monkeypatch)
    local = resolve_store(store)  # what `ncmflow study` opens here
    first = add(1, 2)
    first.metadata["model"] = "bulk"  # its stage (batch job)
    flow = Flow([first])
    stub_scheduler(monkeypatch)
    worker = Worker(scheduler="slurm", work_dir=places["node"], resources=Resources(cores=1))
    folder, scripts = new_submission(flow, "w", worker, store, "study-test")
    record = load_record(folder)
    assert record.store == pinned_store(store) == str(local) and Path(record.store).is_absolute()
    assert f"-m ncmflow collect {folder}" in scripts["collect"]  # the store comes from the record
    batch_job_output(folder, "bulk", first.uuid)

    # the collect batch job: in the submission folder, with the node's own jobflow config
    monkeypatch.chdir(folder)
    node_config = places["configs"] / "node.yaml"
    node_config.write_text(yaml.safe_dump({"JOB_STORE": store_spec(places["configs"] / "node_db")}))
    monkeypatch.setenv("JOBFLOW_CONFIG_FILE", str(node_config))
    assert resolve_store(record.store) == local
    result = runner.invoke(app, ["collect", str(folder)])
    assert result.exit_code == 0, result.output
    assert "2 new documents collected" in result.output

    # back where the local run is: the batch job's result is in its store, and only there
    monkeypatch.chdir(places["here"])
    monkeypatch.delenv("JOBFLOW_CONFIG_FILE")
    arrange(case, places, monkeypatch)
    assert resolve_store(store) == local
    assert get_store(store).get_output(first.uuid, load=True) == [1.0, 2.0]
    listed = runner.invoke(app, ["query", "--json", *(["--store", store] if store else [])])
    assert first.uuid in listed.output, listed.output
    assert not (places["configs"] / "node_db").exists()
    assert not (places["node"] / "ncmflow_data").exists() and not (folder / "ncmflow_data").exists()


def test_the_default_store_follows_the_working_folder_until_pinned(places, monkeypatch):
    here = resolve_store()
    assert here.embedded and here.path == places["here"] / "ncmflow_data"
    monkeypatch.chdir(places["node"])
    assert resolve_store().path == places["node"] / "ncmflow_data"
    assert resolve_store(str(here)) == here  # a pinned location is the same from anywhere


def test_a_jobflow_config_without_job_store_names_the_file(places, monkeypatch):
    (places["home"] / ".jobflow.yaml").write_text("JOB_STORE_TYPO: {}\n")
    with pytest.raises(ValueError, match=r"\.jobflow\.yaml has no JOB_STORE section"):
        get_store()


def test_a_missing_jobflow_config_file_is_a_user_error_naming_it(places, monkeypatch):
    monkeypatch.setenv("JOBFLOW_CONFIG_FILE", "missing.yaml")
    with pytest.raises(ValueError, match=r"JOBFLOW_CONFIG_FILE names missing\.yaml, which does not exist"):
        resolve_store()
    with pytest.raises(ValueError, match=r"missing\.yaml"):
        pinned_store(None)  # never None: batch jobs would have read another store
    stub_scheduler(monkeypatch)
    worker = Worker(scheduler="slurm", work_dir=places["node"], resources=Resources(cores=1))
    with pytest.raises(ValueError, match=r"missing\.yaml"):
        new_submission(Flow([add(1, 2)]), "w", worker, None, "study-test")
    for args in (["query"], ["query", "--json"], ["show", "some-uuid"], ["compare"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "missing.yaml" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (places["here"] / "ncmflow_data").exists()  # no silent fallback
    assert not any(places["node"].iterdir())
    explicit = runner.invoke(app, ["query", "--json", "--store", "db"])  # an explicit store still works
    assert explicit.exit_code == 0, explicit.output
