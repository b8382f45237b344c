"""Database templates (`ctp prepare`) on the real tools: a copied database is the one the tool would build, the
tool works on it, and a database that exists is left alone."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from ctpipeline.store import templates

pytestmark = pytest.mark.integration


def _clauses(sql: str | None) -> tuple[str, ...]:
    """A statement's lines as a set: MLflow's own migrations list a table's constraints in a different order from
    one run to the next (the same schema)."""
    return tuple(sorted(line.strip().rstrip(",").strip() for line in (sql or "").splitlines()))


def _schema(path) -> set[tuple]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
        schema = {(kind, name, table, _clauses(sql)) for kind, name, table, sql in rows}
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return schema | {("alembic_version", *v) for v in version}


@pytest.fixture()
def template_dir(monkeypatch, tmp_path):
    folder = tmp_path / "templates"
    monkeypatch.setenv(templates.TEMPLATES_ENV, str(folder))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)
    return folder


def test_mlflow_on_a_copied_database_is_mlflow_on_one_it_built(template_dir, tmp_path, monkeypatch):
    from ctpipeline.adapters.mlflow import LazyClient, dbtemplate, sqlite_tracking_uri

    built = dbtemplate.build()
    assert built == templates.template_path("mlflow") and templates.is_sqlite(built)
    with sqlite3.connect(built) as conn:  # tables only: the Default experiment comes from the store that opens it
        assert conn.execute("SELECT COUNT(*) FROM experiments").fetchone() == (0,)

    seeded_uri = sqlite_tracking_uri(tmp_path / "seeded" / "mlflow.db")
    seeded = LazyClient(seeded_uri).get()
    monkeypatch.setenv(templates.TEMPLATES_ENV, "")  # the same, built by MLflow itself
    own_uri = sqlite_tracking_uri(tmp_path / "own" / "mlflow.db")
    own = LazyClient(own_uri).get()

    assert _schema(tmp_path / "seeded" / "mlflow.db") == _schema(tmp_path / "own" / "mlflow.db")
    for client in (seeded, own):
        default = client.get_experiment("0")
        assert default.name == "Default" and default.artifact_location.endswith("mlruns/0")
        exp = client.create_experiment("e", artifact_location=str(tmp_path / "art"))
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "m", 1.0)
        client.create_registered_model("model")
        version = client.create_model_version("model", f"runs:/{run.info.run_id}/model", run.info.run_id)
        client.set_registered_model_alias("model", "champion", version.version)
        assert str(client.get_model_version_by_alias("model", "champion").version) == "1"
    assert not dbtemplate.seed(seeded_uri)  # it exists: never replaced
    assert not dbtemplate.seed("postgresql://u@127.0.0.1/mlflow")
    assert dbtemplate.sqlite_file("sqlite:///:memory:") is None


def test_prefect_finds_a_copied_database_at_its_head_revision(template_dir, tmp_path, monkeypatch):
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, PREFECT_HOME, temporary_settings

    from ctpipeline.adapters.prefect import dbtemplate

    built = dbtemplate.build()
    assert built == templates.template_path("prefect")
    home = tmp_path / "prefect-home"
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL", raising=False)
    monkeypatch.delenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", raising=False)
    # this process's settings, as the server gets them (a test harness earlier on this worker may have set a database)
    with temporary_settings(updates={PREFECT_HOME: str(home)}, restore_defaults={PREFECT_API_DATABASE_CONNECTION_URL}):
        assert dbtemplate.database_file() == home / "prefect.db"
        assert dbtemplate.seed() and not dbtemplate.seed()
    before = _schema(home / "prefect.db")

    # Prefect's own start-up step on it (the server runs it before serving): nothing is left to migrate
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    code = (
        "import asyncio\n"
        "from prefect.server.database import provide_database_interface\n"
        "asyncio.run(provide_database_interface().create_db())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _schema(home / "prefect.db") == before

    with temporary_settings(updates={PREFECT_API_DATABASE_CONNECTION_URL: "postgresql+asyncpg://u@127.0.0.1/p"}):
        assert dbtemplate.database_file() is None and not dbtemplate.seed()


def test_ctp_prepare_builds_both_once(template_dir):
    env = {**os.environ, templates.TEMPLATES_ENV: str(template_dir)}
    cmd = [sys.executable, "-m", "ctpipeline", "prepare"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert {p.name.split("-")[0] for p in template_dir.iterdir()} == {"mlflow", "prefect"}
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.count("built before") == 2
    off = subprocess.run(cmd, env={**env, templates.TEMPLATES_ENV: ""}, capture_output=True, text=True, timeout=600)
    assert off.returncode == 0 and "off" in off.stdout
