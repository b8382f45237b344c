"""Feature transforms that live inside the logged model, so the champion scores raw rows.

Both transformers are the front of every model's scikit-learn Pipeline (see `core.models.build_model`):

* `ColumnTypes` keeps the model's raw input columns and casts them: numeric columns to float64 (an int64 column, a
  JSON number, a numeric string all work), categorical columns to Python objects with None for missing;
* `DatetimeParts` derives `<column>_<part>` float64 columns from the time column, in the configured time zone (the
  local hour, not the UTC hour), and drops the time column. Timestamps may come tz-aware, naive (taken as UTC) or as
  ISO-8601 strings, which is how they arrive through `mlflow models serve`.

This module imports numpy, pandas and scikit-learn only: it is shipped with every logged model (MLflow
`code_paths`), so a model loads where ctpipeline is not installed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

PARTS = ("hour", "dayofweek", "month", "dayofyear", "weekofyear")


def _missing(X: pd.DataFrame, columns: list[str]) -> None:
    absent = [c for c in columns if c not in X.columns]
    if absent:
        raise ValueError(f"input is missing column(s) {absent}; the model needs {columns}")


class ColumnTypes(TransformerMixin, BaseEstimator):
    """Select `keep` + `numeric` + `categorical` (in that order) and cast numeric to float64, categorical to object."""

    def __init__(self, numeric=(), categorical=(), keep=()):
        self.numeric = numeric
        self.categorical = categorical
        self.keep = keep

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"the model takes a pandas DataFrame of named columns, not {type(X).__name__}")
        keep, numeric, categorical = list(self.keep), list(self.numeric), list(self.categorical)
        _missing(X, keep + numeric + categorical)
        out = pd.DataFrame(index=X.index)
        for col in keep:
            out[col] = X[col]
        for col in numeric:
            values = X[col]
            if values.dtype == object:
                values = values.where(values.notna(), np.nan)
            try:
                out[col] = pd.to_numeric(values, errors="raise").astype("float64")
            except (TypeError, ValueError) as exc:
                raise ValueError(f"feature column {col!r} is not numeric: {exc}") from None
        for col in categorical:
            out[col] = X[col].astype("object").where(X[col].notna(), None)
        return out

    def get_feature_names_out(self, input_features=None):
        return np.asarray([*self.keep, *self.numeric, *self.categorical], dtype=object)


def local_times(times: pd.Series, timezone: str) -> pd.Series:
    """`times` as tz-aware datetimes in `timezone` (naive times are taken as UTC); parsed only when not datetimes."""
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        t = times
    else:
        t = pd.to_datetime(times, utc=True, errors="raise", format="ISO8601" if times.dtype == object else None)
    return t.dt.tz_convert(timezone)


def datetime_part(times: pd.Series, part: str, timezone: str, *, local: pd.Series | None = None) -> pd.Series:
    """One part of each timestamp, as float64, in `timezone` (naive times are taken as UTC). `local`: the times
    already converted by `local_times`, when several parts are taken from the same column."""
    local = local_times(times, timezone) if local is None else local
    values = local.dt.isocalendar().week if part == "weekofyear" else getattr(local.dt, part)
    return values.astype("float64")


class DatetimeParts(TransformerMixin, BaseEstimator):
    """Replace the time column `column` by `<column>_<part>` float64 columns computed in `timezone`."""

    def __init__(self, column="time", parts=(), timezone="UTC"):
        self.column = column
        self.parts = parts
        self.timezone = timezone

    def fit(self, X, y=None):
        bad = [p for p in self.parts if p not in PARTS]
        if bad:
            raise ValueError(f"unknown datetime part(s) {bad}; use {list(PARTS)}")
        return self

    def transform(self, X):
        _missing(X, [self.column])
        out = X.drop(columns=[self.column])
        try:
            local = local_times(X[self.column], self.timezone) if self.parts else None
            for part in self.parts:
                out[f"{self.column}_{part}"] = datetime_part(
                    X[self.column], part, self.timezone, local=local
                ).to_numpy()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"time column {self.column!r} does not hold timestamps: {exc}") from None
        return out

    def get_feature_names_out(self, input_features=None):
        names = [c for c in (input_features if input_features is not None else []) if c != self.column]
        return np.asarray([*names, *(f"{self.column}_{p}" for p in self.parts)], dtype=object)
