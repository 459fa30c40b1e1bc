"""jobflow-remote backend: its project file generated from the ncmflow config, then submit_flow.

jobflow-remote keeps its queue in MongoDB (a server this machine cannot run), so everything
up to the connection is generated and validated here — the project is built as
jobflow-remote's own ``Project`` model, which is what ``jf project check`` validates — and the
submission scripts its runner would send are rendered with the same qtoolkit adapters.
The project file holds the database password: it is written mode 600 and printed masked.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from ncmflow.workflows.hpc_config import HpcConfig, JobflowRemoteSettings, MongoSettings, Worker, mask

SSH_FIELDS = ("user", "key_filename", "passphrase")


def _settings(config: HpcConfig) -> JobflowRemoteSettings:
    if config.jobflow_remote is None:
        raise ValueError("the config has no 'jobflow_remote:' section (queue MongoDB): add one, "
                         "see docs/hpc.md")
    return config.jobflow_remote


def _mongo(db: MongoSettings, collection: str, gridfs: bool = False) -> dict[str, Any]:
    timeout = {"serverSelectionTimeoutMS": 10000}
    if db.uri is not None:
        return {"type": "GridFSURIStore" if gridfs else "MongoURIStore", "uri": db.uri.get_secret_value(),
                "database": db.database, "collection_name": collection, "mongoclient_kwargs": timeout}
    spec = {"type": "GridFSStore" if gridfs else "MongoStore", "host": db.host, "port": db.port,
            "database": db.database, "collection_name": collection, "mongoclient_kwargs": timeout}
    if db.username:
        spec |= {"username": db.username,
                 "password": db.password.get_secret_value() if db.password else None}
    return spec


def _resources(worker: Worker) -> dict[str, Any]:
    """Values for qtoolkit's header template of the worker's scheduler."""
    r = worker.resources
    if worker.scheduler == "slurm":
        spec = {"nodes": r.nodes, "ntasks_per_node": r.cores, "time": r.walltime,
                "partition": r.partition, "account": r.account, "mem_per_cpu": r.memory_mb}
    else:
        spec = {"select": f"select={r.nodes}:ncpus={r.cores}:mpiprocs={r.cores}",
                "walltime": r.walltime, "queue": r.partition, "account": r.account}
    return {k: v for k, v in spec.items() if v is not None}


def _worker(worker: Worker) -> dict[str, Any]:
    pre_run = [f"module load {m}" for m in worker.modules]
    pre_run += [f"export {k}={shlex.quote(v)}" for k, v in worker.environment.items()]
    spec: dict[str, Any] = {
        "type": "local" if worker.host in ("localhost", "127.0.0.1") else "remote",
        "scheduler_type": worker.scheduler, "work_dir": str(worker.work_dir),
        "resources": _resources(worker), "pre_run": "\n".join([*pre_run, *worker.pre_run]) or None,
    }
    if spec["type"] == "remote":
        spec["host"] = worker.host
        for name in SSH_FIELDS:
            value = getattr(worker, name)
            if value is not None:
                spec[name] = value if isinstance(value, str) else value.get_secret_value()
    return spec


def project_dict(config: HpcConfig) -> dict[str, Any]:
    """The jobflow-remote project (secrets included: write it with :func:`write_project`)."""
    jr = _settings(config)
    db = jr.jobstore or jr.queue
    delay = jr.runner_delay
    return {
        "name": jr.project,
        "workers": {name: _worker(w) for name, w in config.workers.items()},
        "queue": {"store": _mongo(jr.queue, "jobs")},
        "jobstore": {"docs_store": _mongo(db, "outputs"),
                     "additional_stores": {"data": _mongo(db, "outputs_blobs", gridfs=True)}},
        "runner": {"delay_checkout": delay, "delay_check_run_status": delay,
                   "delay_advance_status": delay},
    }


def validate_project(spec: dict[str, Any]):
    """jobflow-remote's own ``Project`` model: what ``jf project check`` checks offline."""
    from jobflow_remote.config.base import Project
    from pydantic import ValidationError

    try:
        return Project.model_validate(spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).strip().splitlines()[-1]
        raise ValueError(f"jobflow-remote project: {where}: {message}") from None


def project_yaml(config: HpcConfig, masked: bool = True) -> str:
    import yaml

    text = yaml.safe_dump(project_dict(config), sort_keys=False)
    return mask(text, config.secrets()) if masked else text


def write_project(config: HpcConfig, folder: Path | None = None) -> Path:
    """Validate, then write ``<projects folder>/<project>.yaml`` readable by its owner only."""
    from jobflow_remote import SETTINGS

    validate_project(project_dict(config))
    folder = Path(folder or SETTINGS.projects_folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_settings(config).project}.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(project_yaml(config, masked=False))
    path.chmod(0o600)
    return path


def worker_script(config: HpcConfig, worker_name: str) -> str:
    """The batch script jobflow-remote's runner would submit for one job on this worker."""
    from qtoolkit.manager import QueueManager

    project = validate_project(project_dict(config))
    worker = project.workers[worker_name]
    manager = QueueManager(scheduler_io=worker.get_scheduler_io(), host=None)
    command = (worker.execution_cmd or "jf -fe execution run {}").format("<job run folder>")
    script = manager.get_submission_script(commands=command, options=worker.resources,
                                           pre_run=worker.pre_run)
    return mask(script, config.secrets())


def submit(flow, config: HpcConfig, worker_name: str) -> list[str]:
    """Queue the flow in jobflow-remote's database; ``jf runner start`` then runs it."""
    from jobflow_remote import submit_flow

    config.worker(worker_name)
    write_project(config)
    try:
        return list(submit_flow(flow, worker=worker_name, project=_settings(config).project))
    except Exception as exc:  # noqa: BLE001 — pymongo/paramiko errors: report one masked line
        said = mask(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    config.secrets())
        raise ValueError(f"jobflow-remote could not queue the flow: {said} — is its MongoDB "
                         "reachable? (see docs/hpc.md)") from None
