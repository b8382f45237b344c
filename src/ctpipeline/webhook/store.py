"""The receiver's state in SQLite (WAL): per-key and per-model last launches, pending launch ids, launch history.

Facts only: :func:`ctpipeline.core.admission.admit` decides. A launch takes two short
:meth:`WebhookState.transaction` blocks (a per-model thread lock plus a SQLite write transaction, ``BEGIN
IMMEDIATE``), and neither is held while the orchestrator is called:

1. check and **claim**: the pending launch id with a lease (``in_flight_until``), so neither another request
   thread nor another receiver process on the same file launches for the same alert meanwhile;
2. then, after the call, **record** the run (the claim is dropped), or **release** the claim of a failed launch
   (its launch id stays, for the retry).

The state is committed before the receiver answers, so a restart keeps the dedupe keys and cooldowns.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctpipeline.core.admission import InFlight, LastLaunch

SCHEMA = """
CREATE TABLE IF NOT EXISTS dedupe (
    model TEXT NOT NULL, dedupe_key TEXT NOT NULL, launched_at REAL NOT NULL, flow_run_id TEXT,
    PRIMARY KEY (model, dedupe_key));
CREATE TABLE IF NOT EXISTS model_launch (
    model TEXT PRIMARY KEY, launched_at REAL NOT NULL, flow_run_id TEXT, dedupe_key TEXT);
CREATE TABLE IF NOT EXISTS pending (
    model TEXT NOT NULL, dedupe_key TEXT NOT NULL, launch_id TEXT NOT NULL, created_at REAL NOT NULL,
    in_flight_until REAL, PRIMARY KEY (model, dedupe_key));
CREATE TABLE IF NOT EXISTS launches (
    launched_at REAL NOT NULL, model TEXT NOT NULL, dedupe_key TEXT NOT NULL, flow_run_id TEXT NOT NULL,
    source TEXT, reason TEXT, sender TEXT);
"""
# columns added after the first release: (table, column, declaration), added to older state files on open
ADDED_COLUMNS = (("pending", "in_flight_until", "REAL"), ("launches", "sender", "TEXT"))


@dataclass(frozen=True)
class PendingLaunch:
    """A launch id stored before a launch, kept when the launch failed (a retry reuses it); ``in_flight_until``:
    the end of the claim's lease while the launch is under way, None once it failed."""

    launch_id: str
    created_at: float
    in_flight_until: float | None = None

    @property
    def in_flight(self) -> InFlight | None:
        return InFlight(self.in_flight_until) if self.in_flight_until is not None else None


@dataclass(frozen=True)
class LaunchRecord:
    """One started run, as recorded."""

    model: str
    dedupe_key: str
    launched_at: float
    flow_run_id: str
    source: str
    reason: str
    sender: str = ""


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
            "SELECT launch_id, created_at, in_flight_until FROM pending WHERE model = ? AND dedupe_key = ?",
            (model, dedupe_key),
        ).fetchone()
        return PendingLaunch(launch_id=row[0], created_at=row[1], in_flight_until=row[2]) if row else None

    def in_flight_for_model(self, model: str) -> InFlight | None:
        """The claim of `model`'s launch under way that lasts longest (any alert), if any."""
        row = self._conn.execute(
            "SELECT MAX(in_flight_until) FROM pending WHERE model = ? AND in_flight_until IS NOT NULL", (model,)
        ).fetchone()
        return InFlight(until=row[0]) if row and row[0] is not None else None

    def set_pending(self, model: str, dedupe_key: str, pending: PendingLaunch) -> None:
        """Store the launch id; with ``in_flight_until`` set, this is the claim of a launch about to be made."""
        self._conn.execute(
            "INSERT OR REPLACE INTO pending (model, dedupe_key, launch_id, created_at, in_flight_until) "
            "VALUES (?, ?, ?, ?, ?)",
            (model, dedupe_key, pending.launch_id, pending.created_at, pending.in_flight_until),
        )

    def release(self, model: str, dedupe_key: str, launch_id: str) -> None:
        """The launch failed: the claim ends, the launch id stays for the retry."""
        self._conn.execute(
            "UPDATE pending SET in_flight_until = NULL WHERE model = ? AND dedupe_key = ? AND launch_id = ?",
            (model, dedupe_key, launch_id),
        )

    def record_launch(self, launch: LaunchRecord) -> None:
        """The run started: drop the pending id, set the key's and the model's last launch, add a history row."""
        c, m, k, t, run = self._conn, launch.model, launch.dedupe_key, launch.launched_at, launch.flow_run_id
        c.execute("DELETE FROM pending WHERE model = ? AND dedupe_key = ?", (m, k))
        c.execute("INSERT OR REPLACE INTO dedupe VALUES (?, ?, ?, ?)", (m, k, t, run))
        c.execute("INSERT OR REPLACE INTO model_launch VALUES (?, ?, ?, ?)", (m, t, run, k))
        c.execute(
            "INSERT INTO launches (launched_at, model, dedupe_key, flow_run_id, source, reason, sender) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (t, m, k, run, launch.source, launch.reason, launch.sender),
        )


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a state file written by an older receiver up to date (under a write lock: two receivers may open it)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table, column, decl in ADDED_COLUMNS:
            if column not in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


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
            _add_missing_columns(conn)

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
