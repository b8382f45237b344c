"""`ctp init`'s reading of a dataset: the time column, the task, the granularity, which columns are features, and
which look leaky (derived from the target, or observed after the event). Pure pandas/scikit-learn; every guess
comes with the reason a person reviews."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MAX_CATEGORIES = 50
MIN_PERIODS = 8  # the coarsest granularity that still gives this many batches is chosen
AFTER_EVENT_WORDS = {"actual", "after", "outcome", "result", "resolved", "closed", "final", "observed"}
CALENDAR_NAMES = {"year", "month", "day", "hour", "minute", "second", "dayofweek", "weekday", "week", "quarter"}


@dataclass
class Proposal:
    """What `ctp init` proposes, and why: `excluded` maps a column to the reason it is not a feature."""

    time_column: str
    target: str
    task: str
    positive_when: dict | None
    granularity: str
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    datetime_parts: list[str] = field(default_factory=list)
    leaky: dict[str, str] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    min_period_rows: int = 0


def guess_time_column(df: pd.DataFrame) -> str | None:
    """The first datetime column; else the first text column that parses as timestamps (those named like a time
    first)."""
    for col in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[col]):
            return str(col)
    text = [c for c in df.columns if df[c].dtype == object]
    named = [c for c in text if re.search(r"time|date|stamp|_at$|^ts$|ed$", str(c), re.I)]
    for col in named + [c for c in text if c not in named]:
        sample = df[col].dropna().head(200)
        parsed = pd.to_datetime(sample, utc=True, errors="coerce", format="mixed") if len(sample) else sample
        if len(sample) and parsed.notna().mean() > 0.95:
            return str(col)
    return None


def guess_granularity(times: pd.Series) -> str:
    t = pd.to_datetime(times, utc=True).dropna()
    for granularity, fmt in (("year", "%Y"), ("month", "%Y-%m"), ("week", "%G-W%V"), ("day", "%Y-%m-%d")):
        if t.dt.strftime(fmt).nunique() >= MIN_PERIODS:
            return granularity
    return "day"


def target_task(y: pd.Series) -> tuple[str, dict | None, str]:
    """(task, positive_when, why) for the target column."""
    values = pd.unique(y.dropna())
    if len(values) == 2:
        if set(values) <= {0, 1}:  # True == 1 and False == 0 too
            return "classification", None, "two values (0/1): classification"
        minority = y.value_counts().idxmin()
        minority = minority.item() if hasattr(minority, "item") else minority
        return "classification", {"==": minority}, f"two values {sorted(map(str, values))}: positive = {minority!r}"
    if pd.api.types.is_numeric_dtype(y):
        return "regression", None, f"numeric with {len(values)} values: regression"
    raise ValueError(f"target {y.name!r} holds {len(values)} non-numeric values: only 2-class or numeric targets")


def _separates(x: pd.Series, y01: pd.Series) -> float | None:
    from sklearn.metrics import roc_auc_score

    ok = x.notna() & y01.notna()
    if ok.sum() < 20 or y01[ok].nunique() < 2 or x[ok].nunique() < 2:
        return None
    auc = roc_auc_score(y01[ok], x[ok])
    return max(auc, 1 - auc)


def leak_reason(col: str, df: pd.DataFrame, p: Proposal, y01: pd.Series | None) -> str | None:
    """Why `col` looks leaky, or None: named after the target, nearly determines it, or observed after the event."""
    s, target = df[col], p.target
    words = set(re.split(r"[^a-z0-9]+", col.lower()))
    t = target.lower()
    if t in words or col.lower().startswith(t + "_") or (len(t) >= 4 and t in col.lower()):
        return f"named like the target {target!r}: probably derived from it"
    if pd.api.types.is_datetime64_any_dtype(s):
        later = (pd.to_datetime(s, utc=True) > pd.to_datetime(df[p.time_column], utc=True)).mean()
        if later > 0.5:
            return f"a time that is after {p.time_column!r} in {later:.0%} of the rows: observed after the event"
        return None
    if pd.api.types.is_numeric_dtype(s) and s.nunique() > 1:
        if p.task == "regression" and pd.api.types.is_numeric_dtype(df[target]):
            r = s.corr(df[target])
            if r == r and abs(r) > 0.95:
                return f"correlation {r:+.3f} with the target: probably derived from it"
        elif y01 is not None and (auc := _separates(s, y01)) is not None and auc > 0.98:
            return f"separates the target almost perfectly (AUC {auc:.3f}): probably derived from it"
    if words & AFTER_EVENT_WORDS:
        return f"its name ({', '.join(sorted(words & AFTER_EVENT_WORDS))}) suggests it is known only after the event"
    return None


def column_role(col: str, s: pd.Series) -> tuple[str, str | None]:
    """('numeric' | 'categorical' | 'excluded', reason when excluded)."""
    n, distinct = int(s.notna().sum()), s.nunique(dropna=True)
    if distinct <= 1:
        return "excluded", "constant"
    if col.lower() in CALENDAR_NAMES and pd.api.types.is_numeric_dtype(s):
        return "excluded", "a calendar part of the time: use features.datetime_parts (computed in data.timezone)"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "excluded", "a second timestamp (only the time column's parts are features)"
    if pd.api.types.is_bool_dtype(s) or (not pd.api.types.is_numeric_dtype(s)):
        if distinct > MAX_CATEGORIES:
            return "excluded", f"{distinct} distinct values: an identifier or free text, not a category"
        return "categorical", None
    if pd.api.types.is_integer_dtype(s) and n and distinct / n > 0.9 and distinct > 100:
        return "excluded", f"{distinct / n:.0%} distinct integers: looks like an identifier"
    return "numeric", None


def propose(df: pd.DataFrame, target: str, time_column: str | None = None) -> Proposal:
    """Read `df` (times already UTC) into a proposal for a pipeline predicting `target`."""
    if target not in df.columns:
        raise ValueError(f"target column {target!r} is not in the data (columns: {list(df.columns)[:20]})")
    time_column = time_column or guess_time_column(df)
    if time_column is None or time_column not in df.columns:
        raise ValueError("no time column found: pass --time-column (a column of timestamps)")
    task, positive_when, why = target_task(df[target])
    times = pd.to_datetime(df[time_column], utc=True)
    p = Proposal(
        time_column, target, task, positive_when, guess_granularity(times), notes=[f"target {target!r}: {why}"]
    )
    p.datetime_parts = ["month"] if p.granularity == "year" else ["dayofweek"]
    if (times.dt.hour != 0).mean() > 0.5:
        p.datetime_parts.append("hour")
    y = df[target]
    y01 = (
        (y == positive_when["=="]).astype(int) if positive_when else (y.astype(float) if task != "regression" else None)
    )
    for col in (str(c) for c in df.columns if c not in (target, time_column)):
        if reason := leak_reason(col, df, p, y01):
            p.leaky[col] = reason
            continue
        role, reason = column_role(col, df[col])
        if role == "excluded":
            p.excluded[col] = reason
        else:
            getattr(p, role).append(col)
    fmt = {"year": "%Y", "month": "%Y-%m", "week": "%G-W%V", "day": "%Y-%m-%d"}[p.granularity]
    p.min_period_rows = int(times.dt.strftime(fmt).value_counts().min())
    p.notes.append(f"{p.granularity} batches: the coarsest period giving at least {MIN_PERIODS} batches")
    if not (p.numeric or p.categorical):
        p.notes.append("no feature column left: only the time column's parts are features")
    return p


def rows_per_period(p: Proposal) -> int:
    return int(np.clip(p.min_period_rows // 2, 50, 1000))
