"""The CLI's error rule: the user's errors are one line and exit 2, bugs a traceback and exit 1,
and `--debug` / NCMFLOW_DEBUG=1 show the traceback of both."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

import ncmflow.analysis.records
from ncmflow.cli import app

runner = CliRunner()


class Settings(BaseModel):
    cores: int


def invalid_settings() -> Exception:
    try:
        Settings(cores="many")
    except ValueError as exc:
        return exc
    raise AssertionError("validated")


@pytest.fixture
def query_raises(monkeypatch, tmp_path):
    """`ncmflow query` with the library raising the given exception."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NCMFLOW_DEBUG", raising=False)

    def arrange(exc: BaseException) -> None:
        def raise_it(*args, **kwargs):
            raise exc

        monkeypatch.setattr(ncmflow.analysis.records, "query_records", raise_it)

    return arrange


@pytest.mark.parametrize(("exc", "message"), [
    (KeyError("metadata"), "KeyError"),
    (AttributeError("'NoneType' object has no attribute 'uuid'"), "AttributeError"),
    (ConnectionResetError(104, "Connection reset by peer"), "ConnectionResetError"),  # no file named
])
def test_a_bug_prints_its_traceback_and_exits_1(query_raises, exc, message):
    query_raises(exc)
    result = runner.invoke(app, ["query", "--store", "db"])
    assert result.exit_code == 1, result.output
    assert "Traceback (most recent call last)" in result.output and message in result.output
    assert "error:" not in result.output


@pytest.mark.parametrize(("exc", "message"), [
    (ValueError("unknown kind 'dos': choose one of relax, static\nsecond line"), "error: unknown kind 'dos'"),
    (FileNotFoundError(2, "No such file or directory", "hop/start.vasp"),
     "error: No such file or directory: hop/start.vasp"),
    (PermissionError(13, "Permission denied", "/data/db"), "error: Permission denied: /data/db"),
    (FileNotFoundError("vasp_neb: no OUTCAR in image folder(s) 02"), "error: vasp_neb: no OUTCAR"),
    (invalid_settings(), "error: invalid Settings: cores: Input should be a valid integer"),
])
def test_a_user_error_is_one_line_and_exits_2(query_raises, exc, message):
    query_raises(exc)
    result = runner.invoke(app, ["query", "--store", "db"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == message or result.output.startswith(message), result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_failed_job_is_a_user_error(query_raises):
    from ncmflow.workflows.runner import JobFailed

    query_raises(JobFailed("bulk site 0: neb A failed: SCF did not converge"))
    result = runner.invoke(app, ["query", "--store", "db"])
    assert result.exit_code == 2 and result.output.startswith("error: bulk site 0: neb A failed")


@pytest.mark.parametrize("how", ["--debug", "NCMFLOW_DEBUG=1"])
def test_debug_shows_the_traceback_of_user_errors_too(query_raises, monkeypatch, how):
    query_raises(ValueError("unknown kind 'dos'"))
    if how == "--debug":
        result = runner.invoke(app, ["--debug", "query", "--store", "db"])
    else:
        monkeypatch.setenv("NCMFLOW_DEBUG", "1")
        result = runner.invoke(app, ["query", "--store", "db"])
    assert result.exit_code == 2  # unchanged
    assert "Traceback (most recent call last)" in result.output and "raise_it" in result.output
    assert result.output.strip().splitlines()[-1] == "error: unknown kind 'dos'"


@pytest.mark.parametrize(("args", "message"), [
    (["query", "--bogus"], "No such option: --bogus"),
    (["--bogus"], "No such option: --bogus"),
    (["study", "--workers", "0"], "Invalid value for '--workers'"),
    (["analyze", "cdd", "a.cube"], "Missing argument"),
    (["build"], "Missing argument 'KIND'"),
])
def test_usage_errors_are_one_line_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message.lower() in result.output.lower() and "--help'" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_broken_submission_record_names_the_file(tmp_path):
    (tmp_path / "submission.json").write_text('{"id": "x", "worker": "w"}')
    result = runner.invoke(app, ["collect", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path / 'submission.json'} is not a submission record" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_help_and_version_are_not_errors():
    assert runner.invoke(app, ["--version"]).output.strip() == "0.1.0"
    for args in ([], ["submit"], ["analyze"]):
        result = runner.invoke(app, args)
        assert "Usage:" in result.output and "error:" not in result.output, args
