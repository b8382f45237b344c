"""Is a landed batch what its name says, and can a model be trained and judged on it? Pure pandas.

* :func:`name_problem`: the file name must be a period of the configured granularity (``2024-05``,
  ``2024-W05``, ``2024-05-31``, ``2024``) that has begun;
* :func:`time_problems`: the time column holds timestamps, none null, all inside the period the name says (cut
  in the configured time zone, as ``ctp land`` cuts them), none in the future;
* :func:`usability_problems`: the checks a lax suite may not make: enough rows, every configured column present,
  numeric features numeric and finite and not all null, categorical features text, a label that is usable
  (numbers where `positive_when` compares numbers, 0/1 without it) and takes more than one value.

Each returns the problems as sentences (empty: none); the caller quarantines the batch with them.
"""

from __future__ import annotations

import operator
import re
from datetime import date, datetime

import numpy as np
import pandas as pd

from ctpipeline.core.data import period_names

__all__ = ["current_period", "name_problem", "time_problems", "usability_problems"]

EXAMPLE = {"year": "2024", "month": "2024-05", "week": "2024-W05", "day": "2024-05-31"}
SHOWN = 3  # examples quoted in a message
COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
COMPARE |= {"==": operator.eq, "!=": operator.ne}


def _is_period(name: str, granularity: str) -> bool:
    try:
        if granularity == "year" and re.fullmatch(r"\d{4}", name):
            return True
        if granularity == "month" and re.fullmatch(r"\d{4}-\d{2}", name):
            return 1 <= int(name[5:]) <= 12
        if granularity == "day" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", name):
            return bool(date.fromisoformat(name))
        if granularity == "week" and re.fullmatch(r"\d{4}-W\d{2}", name):
            return bool(date.fromisocalendar(int(name[:4]), int(name[6:]), 1))
    except ValueError:
        return False
    return False


def current_period(now: datetime, granularity: str, timezone: str) -> str:
    return str(period_names(pd.Series([pd.Timestamp(now)]), granularity, timezone).iloc[0])


def name_problem(name: str, granularity: str, timezone: str, now: datetime) -> str | None:
    """Why `name` cannot be a batch of this pipeline, or None."""
    if not _is_period(name, granularity):
        return (
            f"{name!r} is not a {granularity} period: batch files are named after the period they hold "
            f"(e.g. {EXAMPLE[granularity]}.parquet); rename it and put it back in the landing folder"
        )
    today = current_period(now, granularity, timezone)
    if name > today:
        return f"{name} is a period that has not begun yet (now is {today} in {timezone}): a batch from the future"
    return None


def _example(values: pd.Series) -> str:
    shown = list(dict.fromkeys(values.head(1000).tolist()))[:SHOWN]
    return ", ".join(repr(v) if isinstance(v, (str, bytes)) else str(v) for v in shown)


def time_problems(df: pd.DataFrame, name: str, column: str, granularity: str, timezone: str, now: datetime):
    """Problems of the time column of batch `name` (the column is there: missing columns are checked first)."""
    t = df[column]
    if not pd.api.types.is_datetime64_any_dtype(t):
        shown = _example(t.dropna())
        return [
            f"time column {column!r} holds {t.dtype} values, not timestamps (e.g. {shown}): "
            "land it as a timestamp column"
        ]
    t = t.dt.tz_localize("UTC") if t.dt.tz is None else t.dt.tz_convert("UTC")
    problems = []
    if t.isna().any():
        problems.append(
            f"{int(t.isna().sum())} of {len(t)} rows have no {column} (null timestamps): they belong to no "
            "period and no back-test window"
        )
    t = t.dropna()
    periods = period_names(t, granularity, timezone)
    outside = periods != name
    if outside.any():
        local = t[outside].dt.tz_convert(timezone)
        pairs = zip(local.head(SHOWN), periods[outside].head(SHOWN), strict=True)
        examples = ", ".join(f"{ts} (period {p})" for ts, p in pairs)
        problems.append(
            f"{int(outside.sum())} of {len(t)} rows are outside period {name} that the file name says "
            f"(in {timezone}), e.g. {examples}"
        )
    future = t > pd.Timestamp(now)
    if future.any():
        problems.append(
            f"{int(future.sum())} rows are in the future (after {pd.Timestamp(now):%Y-%m-%d %H:%M} UTC), "
            f"e.g. {_example(t[future])}"
        )
    return problems


def _numeric_problem(s: pd.Series, col: str) -> str | None:
    if not pd.api.types.is_numeric_dtype(s):
        return (
            f"feature {col!r} is declared numeric but holds {s.dtype} values (e.g. {_example(s.dropna())}): "
            "land it as a number column"
        )
    if s.isna().all():
        return f"feature {col!r} is null in every row"
    values = s.to_numpy(dtype="float64", na_value=np.nan)
    if np.isinf(values).any():
        return f"feature {col!r} holds {int(np.isinf(values).sum())} infinite values"
    return None


def _categorical_problem(s: pd.Series, col: str) -> str | None:
    values = s.dropna()
    if values.empty:
        return f"feature {col!r} is null in every row"
    odd = values[~values.map(lambda v: isinstance(v, str))]
    if odd.empty:
        return None
    if isinstance(odd.iloc[0], bytes):
        bad = odd[odd.map(lambda v: not _utf8(v))]
        if len(bad):
            return f"feature {col!r} holds {len(bad)} values that are not UTF-8 text, e.g. {_example(bad)}"
    return (
        f"feature {col!r} is declared categorical but holds {type(odd.iloc[0]).__name__} values "
        f"(e.g. {_example(odd)}): categories are text"
    )


def _utf8(v: bytes) -> bool:
    try:
        v.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _label_problem(df: pd.DataFrame, cfg) -> str | None:
    col, target = cfg.target.column, cfg.target
    y = df[col].dropna()
    if y.empty:
        return f"target {col!r} is null in every row: nothing to learn from or judge on"
    op, value = next(iter((target.positive_when or {"": None}).items()))
    numbers_needed = target.task == "regression" or op in (">", ">=", "<", "<=")
    if numbers_needed and (not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y)):
        why = f"positive_when {{{op!r}: {value!r}}} compares numbers" if op else "a regression target is a number"
        return f"target {col!r} holds {y.dtype} values (e.g. {_example(y)}), but {why}"
    if numbers_needed and np.isinf(y.to_numpy(dtype="float64")).any():
        return f"target {col!r} holds infinite values"
    if op:
        labels = COMPARE[op](y, value)
    elif target.task == "classification":
        labels = y
        bad = sorted({v for v in pd.unique(y) if v not in (0, 1)}, key=str)
        if bad:
            return f"target {col!r} must hold 0/1 labels (or set target.positive_when); found {bad[:SHOWN]}"
    else:
        labels = y
    if labels.nunique() < 2:
        kind = "a single class" if target.task == "classification" else "a constant"
        first = labels.iloc[0]
        first = int(first) if isinstance(first, (bool, np.bool_)) else getattr(first, "item", lambda: first)()
        return f"the label is {first!r} in all {len(labels)} labelled rows ({kind}): nothing to learn from or judge on"
    return None


def usability_problems(df: pd.DataFrame, cfg) -> list[str]:
    """What makes batch `df` unusable for training and judging a model under `cfg` (`PipelineConfig`)."""
    problems = []
    if len(df) < cfg.data.min_batch_rows:
        problems.append(f"only {len(df)} rows (data.min_batch_rows is {cfg.data.min_batch_rows})")
    wanted = [*cfg.features.columns, cfg.target.column, *(s.column for s in cfg.promotion.slices)]
    missing = [c for c in dict.fromkeys(wanted) if c not in df.columns]
    if missing:
        problems.append(f"columns {missing} that the config uses are missing from the batch")
    checks = [(c, _numeric_problem) for c in cfg.features.numeric] + [
        (c, _categorical_problem) for c in cfg.features.categorical
    ]
    problems += [p for c, check in checks if c in df.columns and (p := check(df[c], c))]
    if cfg.target.column in df.columns and (p := _label_problem(df, cfg)):
        problems.append(p)
    return problems
