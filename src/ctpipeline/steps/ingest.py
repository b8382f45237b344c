"""Ingest and gate: the next landed batch, its GX validation, and quarantine for what fails."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ctpipeline.core.quality import QualityResult
from ctpipeline.store.landing import Batch, landed_batches, quarantine_file, read_batch
from ctpipeline.store.state import BatchLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checked:
    """A batch read and validated: the frame and the GX verdict."""

    batch: Batch
    df: pd.DataFrame = field(repr=False, compare=False)
    quality: QualityResult

    @property
    def passed(self) -> bool:
        return bool(self.quality.success)


def next_batch(landing_dir: Path, batch_log: BatchLog) -> Batch | None:
    """The oldest landed batch not processed yet (same name and content), or None."""
    done = batch_log.processed()
    return next((b for b in landed_batches(landing_dir) if (b.name, b.sha256) not in done), None)


def check_quality(batch: Batch, suite_path: Path) -> Checked:
    """Read the batch and run the GX suite on it (DataError when the file cannot be read)."""
    from ctpipeline.adapters.gx import validate

    df = read_batch(batch)
    t0 = time.perf_counter()
    result = validate(df, suite_path)
    log.info("batch %s: %s (%.1fs)", batch.name, result.summary().splitlines()[0], time.perf_counter() - t0)
    return Checked(batch, df, result)


def quarantine(
    batch: Batch, qdir: Path, batch_log: BatchLog, *, quality=None, error: str | None = None, run_id: str | None = None
) -> Path:
    """Move a rejected batch beside its GX result (or the error that made it unusable) and record it."""
    report = (
        {"summary": quality.to_dict(), "gx_result": quality.raw}
        if quality is not None
        else {"summary": {"success": False, "error": error}}
    )
    target = quarantine_file(batch, qdir, report)
    failed = [f.describe() for f in quality.failed] if quality is not None else [error]
    batch_log.append(
        {
            "batch": batch.name,
            "sha256": batch.sha256,
            "status": "rejected",
            "run_id": run_id,
            "quarantined_to": str(target),
            "failed": failed,
        }
    )
    log.warning("batch %s quarantined to %s", batch.name, target)
    return target
