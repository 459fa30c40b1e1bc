"""The ncmflow config file: where the study may run (workers) and the jobflow-remote queue.

Everything that reaches a batch script or a path is validated here (labels, partitions,
walltimes), so a typo or a hostile value is a one-line error before anything is submitted.
Secrets (passwords, URIs with credentials, SSH key paths and passphrases) are ``SecretStr``:
they never print, and :func:`mask` scrubs them from any text shown to the user.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import warnings
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
WALLTIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|URI", re.IGNORECASE)
URI_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?=@)")
SUBMIT_COMMANDS = {"slurm": "sbatch", "pbs": "qsub"}
DEFAULT_PATHS = (Path("ncmflow.yaml"), Path.home() / ".config" / "ncmflow" / "config.yaml")


def check_label(value: str, what: str = "label") -> str:
    """Names that become job names, folder names or script words: letters, digits, . _ -."""
    if not LABEL.match(value):
        raise ValueError(f"{what} {value!r} is not allowed: use letters, digits, '.', '_' or '-' "
                         "(at most 64 characters, starting with a letter or digit)")
    return value


Label = Annotated[str, Field(pattern=LABEL.pattern)]


class Resources(BaseModel):
    """What one batch job asks the scheduler for."""

    model_config = ConfigDict(extra="forbid")
    nodes: int = Field(1, ge=1)
    cores: int = Field(1, ge=1, description="Tasks (MPI ranks) per node.")
    walltime: str = Field("01:00:00", description="[D-]HH:MM:SS")
    partition: Label | None = Field(None, description="SLURM partition or PBS queue.")
    account: Label | None = None
    memory_mb: int | None = Field(None, ge=1, description="Memory per core (MB).")

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, value: str) -> str:
        if not WALLTIME.match(value):
            raise ValueError(f"walltime {value!r} must look like HH:MM:SS or D-HH:MM:SS")
        return value

    @property
    def seconds(self) -> int:
        days, _, clock = self.walltime.rpartition("-")
        h, m, s = (int(x) for x in clock.split(":"))
        return int(days or 0) * 86400 + h * 3600 + m * 60 + s


class Worker(BaseModel):
    """A machine whose scheduler runs the batch jobs."""

    model_config = ConfigDict(extra="forbid")
    scheduler: Literal["slurm", "pbs"]
    host: str = "localhost"
    user: Label | None = None
    key_filename: SecretStr | None = Field(None, description="SSH key (jobflow-remote only).")
    passphrase: SecretStr | None = None
    work_dir: Path = Field(description="Absolute folder on the worker for submissions.")
    resources: Resources = Field(default_factory=Resources)
    modules: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/+-]*$")]] = []
    pre_run: list[str] = Field([], description="Shell lines run before the job (trusted).")
    environment: dict[str, str] = Field({}, description="Variables exported in the batch script "
                                        "(e.g. VASP_CMD, ATOMATE2_* settings).")
    python: str | None = Field(None, description="Python with ncmflow on the worker "
                               "(default: this interpreter, for a shared file system).")

    @field_validator("work_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"work_dir {value} must be an absolute path")
        return value

    @field_validator("environment")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not ENV_NAME.match(k)]
        if bad:
            raise ValueError(f"environment variable names {bad} are not valid shell names")
        return value

    @property
    def submit_command(self) -> str:
        return SUBMIT_COMMANDS[self.scheduler]


class MongoSettings(BaseModel):
    """A MongoDB database (jobflow-remote's queue, and the job store it writes to)."""

    model_config = ConfigDict(extra="forbid")
    uri: SecretStr | None = Field(None, description="mongodb[+srv]://user:password@host/…")
    host: str = "localhost"
    port: int = 27017
    database: Label = "ncmflow"
    username: str | None = None
    password: SecretStr | None = None


class JobflowRemoteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: Label = "ncmflow"
    queue: MongoSettings = Field(default_factory=MongoSettings)
    jobstore: MongoSettings | None = Field(None, description="Default: the queue database.")
    runner_delay: float = Field(30.0, gt=0, description="Seconds between runner checks.")


class HpcConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workers: dict[Label, Worker] = {}
    jobflow_remote: JobflowRemoteSettings | None = None

    def worker(self, name: str) -> Worker:
        if name not in self.workers:
            known = ", ".join(sorted(self.workers)) or "none"
            raise ValueError(f"unknown worker {name!r} (configured: {known}): add it under "
                             "'workers:' in the ncmflow config (see docs/hpc.md)")
        return self.workers[name]

    def secrets(self) -> list[str]:
        """Every secret value in the config, for :func:`mask`."""
        found = []
        for worker in self.workers.values():
            found += [s.get_secret_value() for s in (worker.key_filename, worker.passphrase) if s]
            found += [v for k, v in worker.environment.items() if SECRET_NAME.search(k) and v]
        if self.jobflow_remote:
            for db in (self.jobflow_remote.queue, self.jobflow_remote.jobstore):
                if db is not None:
                    found += [s.get_secret_value() for s in (db.uri, db.password) if s]
        return [s for s in found if s]


def mask(text: str, secrets: list[str] = ()) -> str:
    """Text safe to print: known secrets and passwords inside URIs become ****."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "****")
    return URI_PASSWORD.sub(r"\g<head>****", text)


def find_config(path: Path | None) -> Path:
    if path is not None:
        if not path.is_file():
            raise ValueError(f"config file {path} does not exist")
        return path
    for candidate in DEFAULT_PATHS:
        if candidate.is_file():
            return candidate
    raise ValueError("no ncmflow config found: write ./ncmflow.yaml or ~/.config/ncmflow/config.yaml "
                     "with a 'workers:' section (see docs/hpc.md), or pass --config")


def load_config(path: Path | None = None) -> HpcConfig:
    """The validated config; malformed files raise a one-line ValueError naming the field."""
    import yaml

    path = find_config(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except UnicodeDecodeError as exc:
        raise ValueError(f"config {path} is binary data, not YAML text") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = f" ({exc.problem})" if getattr(exc, "problem", None) else ""
        raise ValueError(f"config {path} is not valid YAML{where}{problem}: fix the syntax") from exc
    if raw is None:
        raise ValueError(f"config {path} is empty: give it a 'workers:' section (see docs/hpc.md)")
    if not isinstance(raw, dict):
        raise ValueError(f"config {path} must be a mapping with a 'workers:' section")
    try:
        config = HpcConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"config {path}: {where}: {first['msg']}") from exc
    if config.secrets() and os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(f"{path} holds secrets and is readable by others: chmod 600 {path}", stacklevel=2)
    return config


def check_scheduler(worker: Worker, name: str) -> None:
    """Fail before submitting anything when the scheduler's command is not here."""
    if worker.host not in ("localhost", "127.0.0.1"):
        raise ValueError(f"worker {name!r} is on {worker.host}: the direct backend submits from "
                         "the cluster's login node; run ncmflow there or use --backend jobflow-remote")
    if shutil.which(worker.submit_command) is None:
        raise ValueError(f"worker {name!r} uses {worker.scheduler} but '{worker.submit_command}' is not "
                         "on PATH: load the scheduler's module or fix 'scheduler:' in the config")
