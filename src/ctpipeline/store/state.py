"""The embedded state folder and the per-pipeline batch log.

Layout (default root `.ctp/`, override with `--state-dir` or `CTP_HOME`)::

    .ctp/mlflow.db                  MLflow tracking + registry (SQLite)
    .ctp/mlartifacts/               MLflow artifact root
    .ctp/prefect/                   PREFECT_HOME: Prefect's SQLite database for the ephemeral server
    .ctp/landing/<pipeline>/        new batches arrive here (one Parquet file per period)
    .ctp/quarantine/<pipeline>/     rejected batches, each beside its GX result
    .ctp/pipelines/<pipeline>/batches.jsonl   append-only record of every batch processed
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ctpipeline.faults import checkpoint

DEFAULT_STATE_DIR = ".ctp"


def resolve_state_dir(state_dir: str | Path | None = None) -> Path:
    return Path(state_dir or os.environ.get("CTP_HOME") or DEFAULT_STATE_DIR).expanduser().resolve()


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def artifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def prefect_home(self) -> Path:
        return self.root / "prefect"

    def landing(self, pipeline: str) -> Path:
        return self.root / "landing" / pipeline

    def quarantine(self, pipeline: str) -> Path:
        return self.root / "quarantine" / pipeline

    def pipeline_dir(self, pipeline: str) -> Path:
        return self.root / "pipelines" / pipeline


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of an append-only JSON-lines file. A line that is not JSON (a write torn by a crash; later
    appends start on a fresh line) is skipped with a warning naming the file and line."""
    import logging

    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            logging.getLogger(__name__).warning(
                "%s:%d: skipping a line that is not JSON (%s): probably a write interrupted by a crash",
                path,
                n,
                exc.msg,
            )
    return out


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Append one record and fsync it. After a torn last line the record starts on a fresh line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        torn = False
        if f.tell():
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
        f.write((b"\n" if torn else b"") + (json.dumps(row, sort_keys=True, default=str) + "\n").encode())
        checkpoint(f"jsonl-write:{path.stem}")  # tests/faults: killed with the row still in this buffer
        f.flush()
        os.fsync(f.fileno())


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class BatchLog:
    """Append-only JSON-lines record of what happened to each batch.

    Statuses: 'accepted' and 'rejected' (quarantined) mark a batch as processed; 'released' (moved back from
    quarantine by `ctp release`) makes it pending again; 'failed' records a cycle that crashed on it.
    A batch counts as processed when its latest accepted / rejected / released record for the same content hash
    is 'accepted' or 'rejected'. A rejected batch that lands again with different content (fixed upstream) is
    picked up again.
    """

    DECISIVE = ("accepted", "rejected", "released")

    def __init__(self, path: Path):
        self.path = path

    def records(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path)

    def append(self, record: dict[str, Any]) -> None:
        append_jsonl(self.path, {"at": now_iso(), **record})

    def processed(self) -> set[tuple[str, str]]:
        latest: dict[tuple[str, str], str] = {}
        for r in self.records():
            if r.get("status") in self.DECISIVE:
                latest[(r["batch"], r["sha256"])] = r["status"]
        return {k for k, s in latest.items() if s != "released"}

    def accepted(self) -> list[str]:
        """Names of accepted batches, oldest first (by name, which sorts by period)."""
        latest: dict[str, str] = {}
        for r in self.records():
            if r.get("status") in self.DECISIVE:
                latest[r["batch"]] = r["status"]
        return sorted(b for b, s in latest.items() if s == "accepted")

    def failures(self, batch: str, sha256: str) -> int:
        """Cycles that crashed on this batch content since it was last released (or ever)."""
        n = 0
        for r in self.records():
            if r.get("batch") == batch and r.get("sha256") == sha256:
                n = n + 1 if r.get("status") == "failed" else (0 if r.get("status") == "released" else n)
        return n

    def last_rejection(self, batch: str) -> dict[str, Any] | None:
        """The latest record that quarantined `batch`, unless it was released since."""
        last = None
        for r in self.records():
            if r.get("batch") == batch and r.get("status") in ("rejected", "released"):
                last = r if r["status"] == "rejected" else None
        return last


def state_dir_problem(root: Path) -> str | None:
    """None when the state folder exists or can be created, and can be written to; else why not."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the state folder {root}: {exc.strerror or exc}"
    try:
        fd, probe = tempfile.mkstemp(prefix=".ctp-write-check-", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write in the state folder {root}: {exc.strerror or exc}"
    return None


def sqlite_problem(path: Path, timeout: float = 2.0) -> str | None:
    """None when `path` is absent or a readable SQLite database; else why it is not (corrupt, locked)."""
    import sqlite3

    if not path.exists():
        return None
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return f"{path} is locked by another process ({exc}); wait for it to finish and run the command again"
        return (
            f"{path} is not a readable SQLite database ({exc}): restore it from a backup, or move it away "
            "to start with an empty store"
        )
    return None
