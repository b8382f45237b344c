"""Prefect's empty SQLite database as a template (`ctpipeline.store.templates`): built once with Prefect's own
migrations, copied where the embedded server's database does not exist yet.

The ephemeral server migrates a new database from empty to head as it starts (~2.5 s of the 2-core machine's CPU,
while the command is landing data and importing its libraries on the other core). With the copy in place its
start finds the database at head and goes on; the block types are registered at start as before.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from ctpipeline.store import templates

TOOL = "prefect"
_SQLITE = "sqlite+aiosqlite:///"
_MIGRATE = (
    "import asyncio\n"
    "from prefect.server.database import provide_database_interface\n"
    "asyncio.run(provide_database_interface().create_db())\n"
)


def database_file() -> Path | None:
    """The SQLite file of this process's Prefect server database setting (by default PREFECT_HOME/prefect.db);
    None for another database (PostgreSQL)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    url = url.get_secret_value() if hasattr(url, "get_secret_value") else url
    return templates.sqlite_path(str(url), _SQLITE) if url else None


def seed() -> bool:
    """Copy the template to the embedded server's database if that is an SQLite file that does not exist yet."""
    db = database_file()
    return db is not None and templates.seed(db, TOOL)


def build() -> Path:
    """Build the template for the installed Prefect (its migrations, in a process of their own, on a database of
    their own) and return its path."""
    with tempfile.TemporaryDirectory(prefix="ctp-prefect-template-") as tmp:
        db = Path(tmp) / "prefect.db"
        env = {
            **os.environ,
            "PREFECT_HOME": tmp,
            "PREFECT_API_DATABASE_CONNECTION_URL": f"{_SQLITE}{db}",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        env.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL", None)
        done = subprocess.run(
            [sys.executable, "-c", _MIGRATE], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"Prefect's migrations failed: {done.stderr.strip()[-2000:]}")
        with contextlib.closing(sqlite3.connect(db)) as conn:  # one self-contained file: the write-ahead log folded in
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        if str(mode).lower() != "delete":
            raise RuntimeError(f"Prefect's template database stayed in journal mode {mode!r}")
        return templates.save(db, TOOL)
