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


def as_utc(values, errors: str = "raise"):
    """``pd.to_datetime(values, utc=True, errors=errors)``, without pandas' cache when `values` are datetimes already.

    The cache (on by default) pays off only for repeated strings: on datetime values it costs a Python pass over a
    sample of them, then a hash of every value, 15-20 ms per month of flights, several times a cycle. The result is
    the same either way."""
    datetimes = pd.api.types.is_datetime64_any_dtype(getattr(values, "dtype", None))
    return pd.to_datetime(values, utc=True, errors=errors, cache=not datetimes)


def to_utc(series: pd.Series) -> pd.Series:
    """Parse a time column to tz-aware UTC datetimes (naive values are taken as UTC)."""
    s = as_utc(series, errors="coerce")
    if s.isna().any() and not series.isna().all():
        bad = series[s.isna() & series.notna()]
        if len(bad):
            raise DataError(f"time column {series.name!r}: {len(bad)} values are not timestamps, e.g. {bad.iloc[0]!r}")
    return s


def utc_times(df: pd.DataFrame, time_column: str | None = None) -> pd.DataFrame:
    """One time convention, however the data arrives (`ctp land`, a file dropped into the landing folder, a
    sample for `ctp check`): every datetime column tz-aware UTC, naive values taken as UTC and other zones
    converted; `time_column`, when given, parsed from text as well. Returns `df` itself when nothing changes."""
    changes = {}
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_datetime64_any_dtype(s) and str(getattr(s.dt, "tz", None)) != "UTC":
            changes[col] = s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")
        elif col == time_column and not pd.api.types.is_datetime64_any_dtype(s):
            changes[col] = to_utc(s)
    if not changes:
        return df
    out = df.copy(deep=False)
    for col, values in changes.items():
        out[col] = values
    return out


def _iso_week_code(t: pd.Series) -> pd.Series:
    iso = t.dt.isocalendar()
    return iso["year"].astype("float64") * 100 + iso["week"].astype("float64")


_PERIOD_CODE = {  # granularity -> (integer code of each local time, its name)
    "year": (lambda t: t.dt.year, lambda c: f"{c:04d}"),
    "month": (lambda t: t.dt.year * 100 + t.dt.month, lambda c: f"{c // 100:04d}-{c % 100:02d}"),
    "day": (
        lambda t: t.dt.year * 10000 + t.dt.month * 100 + t.dt.day,
        lambda c: f"{c // 10000:04d}-{c // 100 % 100:02d}-{c % 100:02d}",
    ),
    "week": (_iso_week_code, lambda c: f"{c // 100:04d}-W{c % 100:02d}"),
}


def period_names(times: pd.Series, granularity: str, timezone: str = "UTC") -> pd.Series:
    """Batch name per timestamp, cut in `timezone`: '2013' (year), '2013-03' (month), '2013-W09' (ISO week) or
    '2013-03-01' (day). Vectorised: an integer code per row, a name per distinct code (strftime per row is slow)."""
    t = times.dt.tz_convert(timezone) if times.dt.tz is not None else times
    code_of, name_of = _PERIOD_CODE.get(granularity, _PERIOD_CODE["week"])
    codes = code_of(t).to_numpy(dtype="float64", na_value=np.nan)
    known = ~np.isnan(codes)
    uniq, inverse = np.unique(codes[known].astype("int64"), return_inverse=True)
    names = np.full(len(codes), np.nan, dtype=object)
    names[known] = np.array([name_of(int(c)) for c in uniq], dtype=object)[inverse] if len(uniq) else []
    return pd.Series(names, index=times.index, name=times.name)


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


def input_columns(cfg: PipelineConfig) -> list[str]:
    """The raw columns the model takes: the time column (when datetime parts are features), numeric, categorical.
    Every derived feature is computed inside the model (`core.features`), so this is the model's signature."""
    time = [cfg.data.time_column] if cfg.features.datetime_parts else []
    return [*time, *cfg.features.numeric, *cfg.features.categorical]


def model_inputs(df: pd.DataFrame, cfg: PipelineConfig) -> pd.DataFrame:
    """The model's raw input columns of `df`, numeric ones cast to float64 and the time column to UTC: a clear
    DataError here (missing column, text in a numeric column) instead of an error deep inside the model."""
    missing = [c for c in input_columns(cfg) if c not in df.columns]
    if missing:
        raise DataError(f"feature column {missing[0]!r} is missing from the batch")
    X = pd.DataFrame(index=df.index)
    if cfg.features.datetime_parts:
        X[cfg.data.time_column] = to_utc(df[cfg.data.time_column])
    for col in cfg.features.numeric:
        try:
            X[col] = pd.to_numeric(df[col], errors="raise").astype("float64")
        except (TypeError, ValueError) as exc:
            raise DataError(f"feature column {col!r} is not numeric: {exc}") from None
    for col in cfg.features.categorical:
        X[col] = df[col].astype("object").where(df[col].notna(), None)
    return X


def make_xy(df: pd.DataFrame, cfg: PipelineConfig) -> tuple[pd.DataFrame, pd.Series]:
    """Model inputs (the raw columns of `input_columns`) and labels from a batch-shaped frame. Rows without a label
    are dropped."""
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
    X = model_inputs(df, cfg)
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
