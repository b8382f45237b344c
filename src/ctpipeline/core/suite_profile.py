"""A starting GX suite profiled from a sample of the data (pandas' own statistics: dtypes, `isna`, `describe`,
`value_counts`), with margins so that the next batches of the same process pass. Plain JSON in GX 1.x's suite
format; nothing here imports GX.

GX 1.x ships no profiler (the 0.x `UserConfigurableProfiler` and Data Assistants are gone), so the statistics are
pandas', and the expectations are the ones the project's own suites use."""

from __future__ import annotations

from typing import Any

import pandas as pd

NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "float32", "float64"]
RANGE_MARGIN = 0.1  # bounds widened by this share of the observed range on each side
MAX_CATEGORIES = 50


def _exp(kind: str, notes: str | None = None, /, **kwargs) -> dict[str, Any]:
    e: dict[str, Any] = {"type": kind, "kwargs": kwargs}
    if notes:
        e["notes"] = notes
    return e


def null_expectation(col: str, s: pd.Series) -> dict[str, Any] | None:
    """Not null; with observed nulls, `mostly` = 1 - twice the observed null rate (at least half the rows)."""
    rate = float(s.isna().mean())
    if rate == 0:
        return _exp("expect_column_values_to_not_be_null", column=col)
    if rate >= 0.5:
        return None
    mostly = round(max(0.5, 1 - 2 * rate - 0.01), 3)
    return _exp(
        "expect_column_values_to_not_be_null", f"{rate:.1%} null in the profiled sample", column=col, mostly=mostly
    )


def range_expectation(col: str, s: pd.Series) -> dict[str, Any] | None:
    desc = s.describe()
    if not desc.get("count"):
        return None
    lo, hi = float(desc["min"]), float(desc["max"])
    pad = (hi - lo) * RANGE_MARGIN or abs(hi) * RANGE_MARGIN or 1.0
    low, high = lo - pad, hi + pad
    if lo >= 0 > low:  # a count or an amount that was never negative stays so
        low = 0.0
    if pd.api.types.is_integer_dtype(s):
        low, high = float(int(low)), float(int(high) + 1)
    note = f"observed {lo:g}..{hi:g} (mean {float(desc['mean']):g}), widened by {RANGE_MARGIN:.0%} of the range"
    return _exp(
        "expect_column_values_to_be_between", note, column=col, min_value=round(low, 6), max_value=round(high, 6)
    )


def category_expectation(col: str, s: pd.Series) -> dict[str, Any] | None:
    counts = s.dropna().astype(str).value_counts()
    if counts.empty or len(counts) > MAX_CATEGORIES:
        return None
    note = f"{len(counts)} values seen; new ones may appear (mostly 0.99): add them here when they are real"
    return _exp("expect_column_values_to_be_in_set", note, column=col, value_set=sorted(counts.index), mostly=0.99)


def time_expectations(col: str, s: pd.Series) -> list[dict[str, Any]]:
    t = pd.to_datetime(s, utc=True)
    return [
        _exp(
            "expect_column_values_to_be_of_type",
            "a tz-aware timestamp: every arrival path makes the time column UTC-aware",
            column=col,
            type_="Timestamp",
        ),
        _exp("expect_column_values_to_not_be_null", column=col),
        _exp(
            "expect_column_values_to_be_between",
            f"profiled data spans {t.min()}..{t.max()}; raise the upper bound as time goes on",
            column=col,
            min_value=t.min().floor("D").isoformat(),
            max_value=(t.max() + (t.max() - t.min()) * 2 + pd.Timedelta(days=366)).ceil("D").isoformat(),
        ),
    ]


def profile_suite(name: str, df: pd.DataFrame, time_column: str, target: str, numeric: list[str],
                  categorical: list[str], min_rows: int) -> dict[str, Any]:  # fmt: skip
    """The suite for batches shaped like `df`: columns exist, types, nulls, ranges, categories, batch size."""
    expectations = [_exp("expect_column_to_exist", column=c) for c in [time_column, target, *numeric, *categorical]]
    expectations += time_expectations(time_column, df[time_column])
    label = null_expectation(target, df[target])
    expectations += [label] if label else []
    for col in numeric:
        s = df[col]
        expectations.append(_exp("expect_column_values_to_be_in_type_list", column=col, type_list=NUMERIC_TYPES))
        expectations += [e for e in (null_expectation(col, s), range_expectation(col, s)) if e]
    for col in categorical:
        expectations += [e for e in (null_expectation(col, df[col]), category_expectation(col, df[col])) if e]
    expectations.append(
        _exp(
            "expect_table_row_count_to_be_between",
            "a tenth of the smallest profiled period: a much smaller batch is probably incomplete",
            min_value=max(1, int(min_rows)),
        )
    )
    return {"name": name, "meta": {"generated_by": "ctp init"}, "expectations": expectations}
