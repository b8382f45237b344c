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

    A batch counts as processed when its latest record for the same content hash is
    'accepted' or 'rejected'. A rejected batch that lands again with different content
    (fixed upstream) is picked up again.
    """

    def __init__(self, path: Path):
        self.path = path

    def records(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path)

    def append(self, record: dict[str, Any]) -> None:
        append_jsonl(self.path, {"at": now_iso(), **record})

    def processed(self) -> set[tuple[str, str]]:
        return {(r["batch"], r["sha256"]) for r in self.records() if r.get("status") in ("accepted", "rejected")}

    def accepted(self) -> list[str]:
        """Names of accepted batches, oldest first (by name, which sorts by period)."""
        latest: dict[str, str] = {}
        for r in self.records():
            if r.get("status") in ("accepted", "rejected"):
                latest[r["batch"]] = r["status"]
        return sorted(b for b, s in latest.items() if s == "accepted")
