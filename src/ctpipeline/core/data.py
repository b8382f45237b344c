"""Data rules: time columns to UTC, periods and batches, training windows and model inputs (labels, features).

Everything here is plain pandas; nothing knows which dataset it is handling.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ctpipeline.config.schema import DataConfig, PipelineConfig
from ctpipeline.errors import DataError

log = logging.getLogger(__name__)


def to_utc(series: pd.Series) -> pd.Series:
    """Parse a time column to tz-aware UTC datetimes (naive values are taken as UTC)."""
    s = pd.to_datetime(series, utc=True, errors="coerce")
    if s.isna().any() and not series.isna().all():
        bad = series[s.isna() & series.notna()]
        if len(bad):
            raise DataError(f"time column {series.name!r}: {len(bad)} values are not timestamps, e.g. {bad.iloc[0]!r}")
    return s


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


# --------------------------------------------------------------------------- model inputs


_COMPARE = {
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
    "==": np.equal,
    "!=": np.not_equal,
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
        ((op, value),) = cfg.target.positive_when.items()
        y = pd.Series(_COMPARE[op](y.to_numpy(), value).astype("int8"), index=df.index, name=tcol)
    elif cfg.target.task == "classification":
        bad = sorted(set(pd.unique(y)) - {0, 1}, key=str)
        if bad:
            raise DataError(
                f"target column {tcol!r} must hold 0/1 labels (or set target.positive_when); found {bad[:5]}"
            )
        y = y.astype("int8")
    else:
        y = y.astype("float64")
    X = pd.DataFrame(index=df.index)
    numeric, categorical = feature_names(cfg)
    time = df[cfg.data.time_column] if cfg.features.datetime_parts else None
    for col in numeric:
        prefix = f"{cfg.data.time_column}_"
        if time is not None and col.startswith(prefix) and col[len(prefix) :] in cfg.features.datetime_parts:
            part = col[len(prefix) :]
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


def labelled(df: pd.DataFrame, cfg: PipelineConfig) -> pd.DataFrame:
    """The rows of `df` that carry a label."""
    return df[df[cfg.target.column].notna()].reset_index(drop=True)
