"""The receiver's state in SQLite (WAL): per-key and per-model last launches, pending launch ids, launch history.

Facts only: :func:`ctpipeline.core.admission.admit` decides. Every check-launch-record sequence runs inside
:meth:`WebhookState.transaction`: a per-model thread lock plus a SQLite write transaction (``BEGIN IMMEDIATE``),
so neither two request threads nor two receiver processes on the same file can both launch for one alert. The
state is committed before the receiver answers, so a restart keeps the dedupe keys and cooldowns.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctpipeline.core.admission import LastLaunch

SCHEMA = """
CREATE TABLE IF NOT EXISTS dedupe (
    model TEXT NOT NULL, dedupe_key TEXT NOT NULL, launched_at REAL NOT NULL, flow_run_id TEXT,
    PRIMARY KEY (model, dedupe_key));
CREATE TABLE IF NOT EXISTS model_launch (
    model TEXT PRIMARY KEY, launched_at REAL NOT NULL, flow_run_id TEXT, dedupe_key TEXT);
CREATE TABLE IF NOT EXISTS pending (
    model TEXT NOT NULL, dedupe_key TEXT NOT NULL, launch_id TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (model, dedupe_key));
CREATE TABLE IF NOT EXISTS launches (
    launched_at REAL NOT NULL, model TEXT NOT NULL, dedupe_key TEXT NOT NULL, flow_run_id TEXT NOT NULL,
    source TEXT, reason TEXT);
"""


@dataclass(frozen=True)
class PendingLaunch:
    """A launch id stored before a launch, kept when the launch failed (a retry reuses it)."""

    launch_id: str
    created_at: float


@dataclass(frozen=True)
class LaunchRecord:
    """One started run, as recorded."""

    model: str
    dedupe_key: str
    launched_at: float
    flow_run_id: str
    source: str
    reason: str


class StateTransaction:
    """Reads and writes inside one :meth:`WebhookState.transaction` (one SQLite write transaction)."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def _last(self, sql: str, params: tuple[str, ...]) -> LastLaunch | None:
        row = self._conn.execute(sql, params).fetchone()
        return LastLaunch(at=row[0], flow_run_id=row[1]) if row else None

    def last_for_key(self, model: str, dedupe_key: str) -> LastLaunch | None:
        """The last run this ``(model, dedupe_key)`` started, if any."""
        return self._last(
            "SELECT launched_at, flow_run_id FROM dedupe WHERE model = ? AND dedupe_key = ?", (model, dedupe_key)
        )

    def last_for_model(self, model: str) -> LastLaunch | None:
        """The last run started for `model` by any alert, if any."""
        return self._last("SELECT launched_at, flow_run_id FROM model_launch WHERE model = ?", (model,))

    def pending(self, model: str, dedupe_key: str) -> PendingLaunch | None:
        row = self._conn.execute(
            "SELECT launch_id, created_at FROM pending WHERE model = ? AND dedupe_key = ?", (model, dedupe_key)
        ).fetchone()
        return PendingLaunch(launch_id=row[0], created_at=row[1]) if row else None

    def set_pending(self, model: str, dedupe_key: str, pending: PendingLaunch) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?)",
            (model, dedupe_key, pending.launch_id, pending.created_at),
        )

    def record_launch(self, launch: LaunchRecord) -> None:
        """The run started: drop the pending id, set the key's and the model's last launch, add a history row."""
        c, m, k, t, run = self._conn, launch.model, launch.dedupe_key, launch.launched_at, launch.flow_run_id
        c.execute("DELETE FROM pending WHERE model = ? AND dedupe_key = ?", (m, k))
        c.execute("INSERT OR REPLACE INTO dedupe VALUES (?, ?, ?, ?)", (m, k, t, run))
        c.execute("INSERT OR REPLACE INTO model_launch VALUES (?, ?, ?, ?)", (m, t, run, k))
        c.execute("INSERT INTO launches VALUES (?, ?, ?, ?, ?, ?)", (t, m, k, run, launch.source, launch.reason))


class WebhookState:
    """The SQLite file of the receiver, shared by every receiver process on the same path."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        with closing(self.connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=60000")
        return conn

    def _lock_for(self, model: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(model, threading.Lock())

    @contextmanager
    def transaction(self, model: str) -> Iterator[StateTransaction]:
        """Serialise on `model` (thread lock) and on the file (``BEGIN IMMEDIATE``, which also holds off other
        receiver processes); commit when the block ends normally, roll back when it raises."""
        with self._lock_for(model), closing(self.connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield StateTransaction(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def launches(self, model: str | None = None) -> list[dict[str, Any]]:
        """Launch history (oldest first), for tests and inspection."""
        with closing(self.connect()) as conn:
            conn.row_factory = sqlite3.Row
            q = "SELECT * FROM launches" + (" WHERE model = ?" if model else "") + " ORDER BY launched_at"
            return [dict(r) for r in conn.execute(q, (model,) if model else ())]
