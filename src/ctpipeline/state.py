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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class BatchLog:
    """Append-only JSON-lines record of what happened to each batch.

    A batch counts as processed when its latest record for the same content hash is
    'accepted' or 'rejected'. A rejected batch that lands again with different content
    (fixed upstream) is picked up again.
    """

    def __init__(self, path: Path):
        self.path = path

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rec = {"at": now_iso(), **record}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, sort_keys=True, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def processed(self) -> set[tuple[str, str]]:
        return {(r["batch"], r["sha256"]) for r in self.records() if r.get("status") in ("accepted", "rejected")}

    def accepted(self) -> list[str]:
        """Names of accepted batches, oldest first (by name, which sorts by period)."""
        latest: dict[str, str] = {}
        for r in self.records():
            if r.get("status") in ("accepted", "rejected"):
                latest[r["batch"]] = r["status"]
        return sorted(b for b, s in latest.items() if s == "accepted")
