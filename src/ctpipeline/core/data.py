"""Data: build the raw history from a source, cut it into time batches, land them as Parquet,
find the next unprocessed batch, and assemble training windows and model inputs.

Everything here is plain pandas; nothing knows which dataset it is handling.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ctpipeline.config.schema import DataConfig, PipelineConfig, SourceConfig
from ctpipeline.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """One landed batch file, identified by name (its period, e.g. '2013-03') and content hash."""

    name: str
    path: Path
    sha256: str


# --------------------------------------------------------------------------- source -> batches


def _table(module, attr: str, where: str) -> pd.DataFrame:
    obj = getattr(module, attr, None)
    if obj is None:
        raise DataError(f"{where}: module {module.__name__!r} has no table {attr!r}")
    if callable(obj) and not isinstance(obj, pd.DataFrame):
        obj = obj()
    if not isinstance(obj, pd.DataFrame):
        raise DataError(f"{where}: {module.__name__}.{attr} is not a pandas DataFrame")
    return obj


def to_utc(series: pd.Series) -> pd.Series:
    """Parse a time column to tz-aware UTC datetimes (naive values are taken as UTC)."""
    s = pd.to_datetime(series, utc=True, errors="coerce")
    if s.isna().any() and not series.isna().all():
        bad = series[s.isna() & series.notna()]
        if len(bad):
            raise DataError(f"time column {series.name!r}: {len(bad)} values are not timestamps, e.g. {bad.iloc[0]!r}")
    return s


def load_source(source: SourceConfig, data: DataConfig, base_dir: Path | None = None) -> pd.DataFrame:
    """The whole raw history described by `source`, with its time column parsed to UTC."""
    if source.kind == "python_tables":
        try:
            mod = importlib.import_module(source.module)
        except ImportError as exc:
            raise DataError(f"source.module: cannot import {source.module!r}: {exc}") from None
        df = _table(mod, source.table, "source.table")
        for i, j in enumerate(source.joins):
            right = _table(mod, j.table, f"source.joins.{i}.table")
            missing = [k for k in j.by if k not in df.columns or k not in right.columns]
            if missing:
                raise DataError(f"source.joins.{i}.by: key columns {missing} are not in both tables")
            cols = j.columns if j.columns is not None else [c for c in right.columns if c not in df.columns]
            right = right[[*j.by, *[c for c in cols if c not in j.by]]].drop_duplicates(subset=j.by, keep="last")
            df = df.merge(right, on=j.by, how="left", validate="many_to_one")
    else:
        path = Path(source.path)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise DataError(f"source.path: file not found: {path}")
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if data.time_column not in df.columns:
        raise DataError(f"data.time_column: column {data.time_column!r} is not in the source table")
    df = df.copy()
    df[data.time_column] = to_utc(df[data.time_column])
    return df.sort_values(data.time_column, kind="stable").reset_index(drop=True)


def period_names(times: pd.Series, granularity: str, timezone: str = "UTC") -> pd.Series:
    """Batch name per timestamp, cut in `timezone`: '2013-03' (month), '2013-W09' (ISO week) or '2013-03-01' (day)."""
    t = times.dt.tz_convert(timezone) if times.dt.tz is not None else times
    if granularity == "month":
        return t.dt.strftime("%Y-%m")
    if granularity == "day":
        return t.dt.strftime("%Y-%m-%d")
    iso = t.dt.isocalendar()
    return iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)


def split_batches(df: pd.DataFrame, data: DataConfig) -> dict[str, pd.DataFrame]:
    names = period_names(df[data.time_column], data.granularity, data.timezone)
    return {name: part.reset_index(drop=True) for name, part in df.groupby(names, sort=True)}


def write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write next to the target and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def land(batches: dict[str, pd.DataFrame], landing_dir: Path, overwrite: bool = False) -> list[Path]:
    """Write one Parquet file per batch into the landing folder; existing files are kept unless overwrite."""
    written = []
    for name, part in batches.items():
        path = landing_dir / f"{name}.parquet"
        if path.exists() and not overwrite:
            continue
        write_parquet_atomic(part, path)
        written.append(path)
    return written


# --------------------------------------------------------------------------- landing -> next batch


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def landed_batches(landing_dir: Path) -> list[Batch]:
    if not landing_dir.is_dir():
        return []
    files = sorted(p for p in landing_dir.glob("*.parquet") if not p.name.startswith("."))
    return [Batch(p.stem, p, file_sha256(p)) for p in files]


def read_batch(batch: Batch) -> pd.DataFrame:
    try:
        return pd.read_parquet(batch.path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"batch {batch.name}: cannot read {batch.path}: {exc}") from None


# --------------------------------------------------------------------------- model inputs


_COMPARE = {
    ">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal,
    "==": np.equal, "!=": np.not_equal,
}


def make_xy(df: pd.DataFrame, cfg: PipelineConfig) -> tuple[pd.DataFrame, pd.Series]:
    """Model inputs and labels from a batch-shaped frame. Rows without a label are dropped."""
    from ctpipeline.core.models import feature_names

    tcol = cfg.target.column
    if tcol not in df.columns:
        raise DataError(f"target column {tcol!r} is missing")
    df = df[df[tcol].notna()]
    y = df[tcol]
    if cfg.target.positive_when:
        (op, value), = cfg.target.positive_when.items()
        y = pd.Series(_COMPARE[op](y.to_numpy(), value).astype("int8"), index=df.index, name=tcol)
    elif cfg.target.task == "classification":
        bad = sorted(set(pd.unique(y)) - {0, 1, True, False}, key=str)
        if bad:
            raise DataError(f"target column {tcol!r} must hold 0/1 labels (or set target.positive_when); "
                            f"found {bad[:5]}")
        y = y.astype("int8")
    else:
        y = y.astype("float64")
    X = pd.DataFrame(index=df.index)
    numeric, categorical = feature_names(cfg)
    time = df[cfg.data.time_column] if cfg.features.datetime_parts else None
    for col in numeric:
        prefix = f"{cfg.data.time_column}_"
        if time is not None and col.startswith(prefix) and col[len(prefix):] in cfg.features.datetime_parts:
            part = col[len(prefix):]
            t = pd.to_datetime(time, utc=True).dt.tz_convert(cfg.data.timezone)  # local hour and weekday
            X[col] = (t.dt.isocalendar().week if part == "weekofyear" else getattr(t.dt, part)).astype("float64")
        else:
            if col not in df.columns:
                raise DataError(f"feature column {col!r} is missing from the batch")
            try:
                X[col] = pd.to_numeric(df[col], errors="raise").astype("float64")
            except (TypeError, ValueError) as exc:
                raise DataError(f"feature column {col!r} is not numeric: {exc}") from None
    for col in categorical:
        if col not in df.columns:
            raise DataError(f"feature column {col!r} is missing from the batch")
        X[col] = df[col].astype("object").where(df[col].notna(), None)
    return X.reset_index(drop=True), y.reset_index(drop=True)


def training_frame(frames: list[pd.DataFrame], cfg: PipelineConfig) -> pd.DataFrame:
    """Concatenate window batches, keeping at most `max_train_rows` newest rows."""
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    cap = cfg.training.max_train_rows
    if cap and len(df) > cap:
        df = df.sort_values(cfg.data.time_column, kind="stable").tail(cap).reset_index(drop=True)
    return df
