"""Ingest and gate: the next landed batch, its checks (name, size, columns, GX suite, time column, usability),
quarantine for what fails, release from quarantine, and the give-up rule for a batch every cycle crashes on."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ctpipeline.config.columns import absent_columns
from ctpipeline.config.schema import PipelineConfig
from ctpipeline.core import batch_checks
from ctpipeline.core.quality import QualityResult
from ctpipeline.errors import ConfigError, DataError
from ctpipeline.store.landing import (
    Batch,
    batch_files,
    iter_landed_batches,
    parquet_columns,
    parquet_rows,
    quarantine_file,
    read_batch,
    release_file,
    stray_files,
)
from ctpipeline.store.state import BatchLog

MAX_FAILURES = 3  # cycles that may crash on one batch before it is quarantined, so later batches are reached

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checked:
    """A batch read and validated: the frame and the GX verdict."""

    batch: Batch
    df: pd.DataFrame = field(repr=False, compare=False)
    quality: QualityResult
    spark: Any = field(default=None, repr=False, compare=False)  # engine spark: steps.spark_engine.SparkBatch

    @property
    def passed(self) -> bool:
        return bool(self.quality.success)


def next_batch(landing_dir: Path, batch_log: BatchLog) -> Batch | None:
    """The oldest landed batch not processed yet (same name and content), or None. Files that are not Parquet
    batches are named in a warning (they are never processed)."""
    stray = stray_files(landing_dir)
    if stray:
        log.warning(
            "the landing folder %s holds %d file(s) that are not Parquet batches and are not processed: %s "
            "(write each batch as <period>.parquet)",
            landing_dir,
            len(stray),
            ", ".join(stray),
        )
    done = batch_log.processed()
    return next((b for b in iter_landed_batches(landing_dir) if (b.name, b.sha256) not in done), None)


def config_problems(cfg: PipelineConfig, landing_dir: Path, file: str | Path = "<config>") -> None:
    """ConfigError when a configured column is in no landed batch and no expectation names it: the config is
    wrong, not the data, so nothing may be quarantined for it."""
    landed = [set(cols) for path in batch_files(landing_dir) if (cols := parquet_columns(path)) is not None]
    problems = absent_columns(cfg, cfg.suite_path, landed)
    if problems:
        raise ConfigError(str(file), problems)


def _before_reading(batch: Batch, cfg: PipelineConfig, now: datetime) -> None:
    d = cfg.data
    problem = batch_checks.name_problem(batch.name, d.granularity, d.timezone, now)
    if problem:
        raise DataError(f"batch {batch.name}: {problem}")
    rows = parquet_rows(batch.path)
    if d.max_batch_rows is not None and rows is not None and rows > d.max_batch_rows:
        raise DataError(
            f"batch {batch.name} has {rows} rows, more than data.max_batch_rows {d.max_batch_rows}: not read "
            "(split it into smaller periods, or raise the limit)"
        )


def _after_gate(batch: Batch, df: pd.DataFrame, cfg: PipelineConfig, now: datetime, times=None) -> None:
    """`times`: the frame whose time column is checked (default `df`; engine spark: every row's, `df` a sample)."""
    d = cfg.data
    times = df if times is None else times
    try:
        problems = batch_checks.usability_problems(df, cfg)
        if d.time_column in times.columns:
            problems += batch_checks.time_problems(times, batch.name, d.time_column, d.granularity, d.timezone, now)
        else:
            problems.append(f"time column {d.time_column!r} is missing from the batch")
    except Exception as exc:  # data so odd that a check cannot even run on it is unusable too
        problems = [f"its columns cannot be checked ({type(exc).__name__}: {exc})"]
    if problems:
        raise DataError(f"batch {batch.name} passed the quality gate but cannot be used: " + "; ".join(problems))


def check_quality(
    batch: Batch,
    suite_path: Path,
    cfg: PipelineConfig | None = None,
    landing_dir: Path | None = None,
    now: datetime | None = None,
    config_file: str | Path = "<config>",
) -> Checked:
    """Read the batch and run the GX suite on it. With `cfg`, also: the name is a period that has begun and the
    size within `data.max_batch_rows` (before reading); the configured columns exist in the landed batches
    (ConfigError otherwise: nothing is quarantined); and, once the gate passed, the time column and the model
    inputs are usable. DataError for a batch that cannot be used (the caller quarantines it)."""
    from ctpipeline.adapters.gx import validate

    now = now or datetime.now(UTC)
    if cfg is not None:
        _before_reading(batch, cfg, now)
    sb = None
    if cfg is not None and cfg.engine == "spark":  # imported here: the pandas engine never loads pyspark
        from ctpipeline.steps.spark_engine import read_batch as read_on_spark

        df, sb = read_on_spark(batch, cfg, config_file)
    else:
        df = read_batch(batch)
    if cfg is not None and landing_dir is not None:
        config_problems(cfg, landing_dir, config_file)
    t0 = time.perf_counter()
    result = sb.validate(suite_path) if sb is not None else validate(df, suite_path)
    log.info("batch %s: %s (%.1fs)", batch.name, result.summary().splitlines()[0], time.perf_counter() - t0)
    if cfg is not None and result.success:
        _after_gate(batch, df if sb is None else sb.sample, cfg, now, None if sb is None else df)
    return Checked(batch, df, result, sb)


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


def release(name: str, qdir: Path, landing_dir: Path, batch_log: BatchLog) -> tuple[Path, Path]:
    """Move quarantined batch `name` back into the landing folder, record it as released (the next run processes
    it), keep its quarantine report. Returns (from, to). LookupError when no such batch is in quarantine,
    FileExistsError when the landing folder holds a file of that name already."""
    record = batch_log.last_rejection(name)
    source = Path(record["quarantined_to"]) if record and record.get("quarantined_to") else qdir / f"{name}.parquet"
    if not source.exists() and not source.is_symlink():
        held = sorted({p.name.split(".")[0] for p in qdir.glob("*.parquet")}) if qdir.is_dir() else []
        raise LookupError(
            f"no quarantined batch named {name!r} in {qdir}" + (f" (quarantined: {', '.join(held)})" if held else "")
        )
    target = release_file(source, landing_dir, name)
    batch_log.append(
        {
            "batch": name,
            "sha256": record["sha256"] if record else "",
            "status": "released",
            "released_from": str(source),
            "to": str(target),
        }
    )
    log.info("batch %s released from %s to %s", name, source, target)
    return source, target


def record_failure(batch: Batch, batch_log: BatchLog, error: BaseException, run_id: str | None) -> int:
    """Record a cycle that crashed on `batch`; returns how many have, for this content, since its last release."""
    batch_log.append(
        {
            "batch": batch.name,
            "sha256": batch.sha256,
            "status": "failed",
            "run_id": run_id,
            "error": f"{type(error).__name__}: {error}"[:2000],
        }
    )
    return batch_log.failures(batch.name, batch.sha256)
