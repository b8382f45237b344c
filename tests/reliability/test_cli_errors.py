"""Failures of the environment give one `error:` line and the right exit code, never a traceback: a state folder
that cannot be created or written, an MLflow database that is corrupt or locked, a target that is not a column."""

import os
import sqlite3

import pytest
import yaml

from conftest import run_ctp as ctp
from conftest import write_pipeline_config


def one_error_line(out: str, *fragments: str) -> str:
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in out, out
    for f in fragments:
        assert f in out, out
    return errors[0]


@pytest.mark.parametrize("command", ["land", "run", "status", "replay"])
def test_a_state_folder_under_a_file_is_one_error_line(tmp_path, command):
    cfg = write_pipeline_config(tmp_path)
    (tmp_path / "afile").write_text("")
    rc, out = ctp(command, "--config", str(cfg), "--state-dir", str(tmp_path / "afile" / "state"))
    assert rc == 2
    one_error_line(out, str(tmp_path / "afile" / "state"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_state_folder_is_one_error_line(tmp_path):
    cfg = write_pipeline_config(tmp_path)
    state = tmp_path / "state"
    state.mkdir(mode=0o500)
    rc, out = ctp("land", "--config", str(cfg), "--state-dir", str(state))
    assert rc == 2
    one_error_line(out, "cannot write in the state folder")


@pytest.mark.parametrize("command", ["status", "history", "rollback", "run"])
def test_a_corrupt_mlflow_db_is_one_error_line(tmp_path, command):
    cfg = write_pipeline_config(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    (state / "mlflow.db").write_bytes(b"not a database at all, just text " * 64)
    rc, out = ctp(command, "--config", str(cfg), "--state-dir", str(state))
    assert rc == 1
    one_error_line(out, "mlflow.db is not a readable SQLite database", "restore it from a backup")


def test_a_locked_mlflow_db_is_one_error_line(tmp_path):
    cfg = write_pipeline_config(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    con = sqlite3.connect(state / "mlflow.db")
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write
    try:
        rc, out = ctp("status", "--config", str(cfg), "--state-dir", str(state))
    finally:
        con.rollback()
        con.close()
    assert rc == 1
    one_error_line(out, "is locked by another process")


def test_a_database_error_deep_in_a_tool_is_one_error_line(tmp_path, monkeypatch):
    import sqlalchemy.exc

    from ctpipeline.cli import champion

    def status(args):
        try:
            raise sqlite3.OperationalError("database is locked")
        except sqlite3.OperationalError as exc:
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, exc) from exc

    monkeypatch.setattr(champion, "cmd_status", status)
    rc, out = ctp("status", "--config", str(write_pipeline_config(tmp_path)))
    assert rc == 1
    one_error_line(out, "database is locked")
    from ctpipeline.cli.main import known_failure

    assert known_failure(ValueError("a bug")) is None  # anything else still shows its traceback


def test_a_target_typo_stops_run_with_exit_2_naming_the_key(tmp_path):
    cfg = write_pipeline_config(tmp_path)
    d = yaml.safe_load(cfg.read_text())
    d["target"]["column"] = "arr_dealy"
    cfg.write_text(yaml.safe_dump(d))
    rc, out = ctp("run", "--config", str(cfg), "--state-dir", str(tmp_path / "state"))
    assert rc == 2
    one_error_line(out, "target.column", "did you mean 'arr_delay'", str(cfg))
