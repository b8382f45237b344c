"""`store.templates`: where database templates live, and a copy that never replaces a database."""

from __future__ import annotations

import os
import sqlite3
import sys
from importlib import metadata
from pathlib import Path

import pytest

from ctpipeline.store import templates


def _sqlite(path: Path, table: str = "t") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE {table} (x INTEGER)")
    return path


def _tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def test_the_folder_is_the_venvs_unless_the_variable_says_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv(templates.TEMPLATES_ENV, raising=False)
    assert templates.template_dir() == Path(sys.prefix) / "share" / "ctpipeline" / "db-templates"
    monkeypatch.setenv(templates.TEMPLATES_ENV, str(tmp_path))
    assert templates.template_path("mlflow") == tmp_path / f"mlflow-{metadata.version('mlflow')}.db"
    monkeypatch.setenv(templates.TEMPLATES_ENV, "")
    assert templates.template_dir() is None and templates.template_path("mlflow") is None
    assert not templates.seed(tmp_path / "new.db", "mlflow")
    with pytest.raises(ValueError, match="off"):
        templates.save(_sqlite(tmp_path / "built.db"), "mlflow")


def test_a_saved_template_is_copied_to_a_new_database_only(monkeypatch, tmp_path):
    monkeypatch.setenv(templates.TEMPLATES_ENV, str(tmp_path / "tpl"))
    saved = templates.save(_sqlite(tmp_path / "built.db", "from_template"), "mlflow")
    assert saved == templates.template_path("mlflow") and _tables(saved) == ["from_template"]

    target = tmp_path / "state" / "sub" / "mlflow.db"
    assert templates.seed(target, "mlflow")
    assert _tables(target) == ["from_template"]
    assert not templates.seed(target, "mlflow")  # it exists now
    existing = _sqlite(tmp_path / "state" / "other.db", "own")
    assert not templates.seed(existing, "mlflow")
    assert _tables(existing) == ["own"]  # never replaced
    assert sorted(p.name for p in target.parent.iterdir()) == ["mlflow.db"]  # no copy left behind


def test_a_copy_gets_the_mode_a_new_file_gets(monkeypatch, tmp_path):
    monkeypatch.setenv(templates.TEMPLATES_ENV, str(tmp_path / "tpl"))
    templates.save(_sqlite(tmp_path / "built.db"), "prefect")
    for umask, mode in ((0o027, 0o640), (0o002, 0o644)):  # as SQLite creates a database: never group-writable
        old = os.umask(umask)
        try:
            assert templates.seed(tmp_path / f"state-{umask:o}" / "prefect.db", "prefect")
        finally:
            os.umask(old)
        assert (tmp_path / f"state-{umask:o}" / "prefect.db").stat().st_mode & 0o777 == mode


def test_no_usable_template_means_the_tool_creates_its_database(monkeypatch, tmp_path):
    monkeypatch.setenv(templates.TEMPLATES_ENV, str(tmp_path / "tpl"))
    target = tmp_path / "state" / "mlflow.db"
    assert not templates.seed(target, "mlflow")  # none built
    bad = templates.template_path("mlflow")
    bad.parent.mkdir(parents=True)
    bad.write_text("not a database")
    assert not templates.seed(target, "mlflow")
    assert not target.exists()
    with pytest.raises(ValueError, match="not an SQLite database"):
        templates.save(bad, "mlflow")


def test_a_folder_that_cannot_be_written_is_no_error(monkeypatch, tmp_path):
    monkeypatch.setenv(templates.TEMPLATES_ENV, str(tmp_path / "tpl"))
    templates.save(_sqlite(tmp_path / "built.db"), "mlflow")
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    assert not templates.seed(blocked / "mlflow.db", "mlflow")


def test_the_database_file_of_an_sqlite_url():
    assert templates.sqlite_path("sqlite:////abs/mlflow.db?timeout=5", "sqlite:///") == Path("/abs/mlflow.db")
    assert templates.sqlite_path("sqlite+aiosqlite:////h/prefect.db", "sqlite+aiosqlite:///") == Path("/h/prefect.db")
    assert templates.sqlite_path("sqlite:///:memory:", "sqlite:///") is None
    assert templates.sqlite_path("postgresql://u@127.0.0.1/db", "sqlite:///") is None


def test_an_existing_database_is_seen_before_any_version_lookup(monkeypatch, tmp_path):
    existing = _sqlite(tmp_path / "mlflow.db")
    monkeypatch.setattr(templates, "template_path", lambda tool: pytest.fail("looked up a template"))
    assert not templates.seed(existing, "mlflow")
