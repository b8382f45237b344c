"""The numpy/pandas floors: hand-written vectorised passes doing the work of the gate and of drift, as references.

They are what the same conditions cost without any library around them: one vectorised pass per expectation of
the suite, and numpy/scipy two-sample statistics on the sampled columns. The pipeline never uses them (their
semantics are approximations of GX's and Evidently's, good for the flights suite and the default drift methods);
bench/run.py compares their verdicts with the libraries' and reports any difference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["floor_drift", "floor_gate"]

SMALL_SAMPLE, LOW_CARDINALITY = 1000, 5  # as ctpipeline.core.drift.plan (Evidently's own cut)


def _between(s: pd.Series, kw: dict) -> bool:
    v = s.dropna()
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if pd.api.types.is_datetime64_any_dtype(v):
        lo, hi = (None if x is None else pd.Timestamp(x) for x in (lo, hi))
    elif not pd.api.types.is_numeric_dtype(v) or pd.api.types.is_bool_dtype(v):
        return False  # GX cannot compare strings with numbers: a failed expectation
    try:
        ok = np.ones(len(v), dtype=bool)
        if lo is not None:
            ok &= (v >= lo).to_numpy()
        if hi is not None:
            ok &= (v <= hi).to_numpy()
    except TypeError:  # tz-naive against tz-aware bounds
        return False
    return len(v) == 0 or ok.mean() >= kw.get("mostly", 1.0)


def _column_check(s: pd.Series, etype: str, kw: dict) -> bool:
    mostly = kw.get("mostly", 1.0)
    if etype == "expect_column_values_to_be_in_type_list":
        return str(s.dtype) in kw["type_list"]
    if etype == "expect_column_values_to_be_of_type":
        return getattr(s.dtype, "type", type(None)).__name__ == kw["type_"] or str(s.dtype) == kw["type_"]
    if etype == "expect_column_values_to_not_be_null":
        return len(s) == 0 or s.notna().mean() >= mostly
    if etype == "expect_column_values_to_be_between":
        return _between(s, kw)
    if etype in ("expect_column_mean_to_be_between", "expect_column_stdev_to_be_between"):
        if not pd.api.types.is_numeric_dtype(s):
            return False
        value = s.mean() if etype == "expect_column_mean_to_be_between" else s.std()
        return kw.get("min_value", -np.inf) <= value <= kw.get("max_value", np.inf)
    v = s.dropna()
    if etype == "expect_column_values_to_be_in_set":
        return len(v) == 0 or v.isin(kw["value_set"]).mean() >= mostly
    if etype == "expect_column_values_to_match_regex":
        return len(v) == 0 or v.astype(str).str.contains(kw["regex"]).mean() >= mostly
    raise NotImplementedError(etype)


def floor_gate(df: pd.DataFrame, suite: dict) -> set[tuple[str, str | None]]:
    """(type, column) of each expectation of `suite` (a GX suite dict) that the batch fails."""
    failed = set()
    for exp in suite["expectations"]:
        etype, kw = exp["type"], exp["kwargs"]
        column = kw.get("column")
        if etype == "expect_table_row_count_to_be_between":
            ok = kw.get("min_value", 0) <= len(df) <= kw.get("max_value", np.inf)
        elif column not in df.columns:
            ok = False
        elif etype == "expect_column_to_exist":
            ok = True
        else:
            ok = _column_check(df[column], etype, kw)
        if not ok:
            failed.add((etype, column))
    return failed


def _positions(n: int, max_rows: int, rng: np.random.Generator) -> np.ndarray | None:
    return None if n <= max_rows else np.sort(rng.choice(n, size=max_rows, replace=False))


def _values(parts: Sequence[pd.DataFrame], column: str, positions: np.ndarray | None) -> np.ndarray:
    arrays, start = [], 0
    for part in parts:
        values = part[column].to_numpy() if column in part.columns else np.full(len(part), np.nan)
        if positions is None:
            arrays.append(values)
        else:
            lo, hi = np.searchsorted(positions, [start, start + len(part)])
            arrays.append(values[positions[lo:hi] - start])
        start += len(part)
    return np.concatenate(arrays) if len(arrays) > 1 else arrays[0]


def _frequencies(r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys, inverse = np.unique(np.concatenate([r, c]).astype(str), return_inverse=True)
    fr = np.bincount(inverse[: len(r)], minlength=len(keys)) / max(len(r), 1)
    fc = np.bincount(inverse[len(r) :], minlength=len(keys)) / max(len(c), 1)
    return fr, fc


def _compare(r: np.ndarray, c: np.ndarray, numeric: bool) -> tuple[str, float, bool]:
    from scipy import stats
    from scipy.spatial import distance

    small = min(len(r), len(c)) <= SMALL_SAMPLE
    if numeric and len(np.unique(np.concatenate([r, c]))) > LOW_CARDINALITY:
        if small:
            p = stats.ks_2samp(r, c).pvalue
            return "ks", p, p <= 0.05
        d = stats.wasserstein_distance(r, c) / max(np.std(r), 0.001)
        return "wasserstein", d, d >= 0.1
    fr, fc = _frequencies(r, c)
    if small:
        expected = fr * len(c)
        keep = expected > 0
        p = stats.chisquare(fc[keep] * len(c), expected[keep] * (fc[keep].sum() / fr[keep].sum())).pvalue
        return "chisquare", p, p < 0.05
    d = distance.jensenshannon(fr, fc)
    return "jensenshannon", d, d >= 0.1


def floor_drift(
    reference: Sequence[pd.DataFrame],
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    max_rows: int,
    seed: int,
) -> dict[str, tuple[str, float, bool]]:
    """column -> (method, score, drifted), each side sampled to `max_rows` rows (the reference draws first)."""
    rng = np.random.default_rng(seed)
    ref_pos = _positions(sum(len(p) for p in reference), max_rows, rng)
    cur_pos = _positions(len(current), max_rows, rng)
    out = {}
    for column in [*numeric, *categorical]:
        r, c = _values(reference, column, ref_pos), _values([current], column, cur_pos)
        if column in numeric:
            r, c = r.astype(float), c.astype(float)
            r, c = r[np.isfinite(r)], c[np.isfinite(c)]
        else:
            r, c = r[pd.notna(r)], c[pd.notna(c)]
        if len(r) and len(c):
            out[column] = _compare(r, c, column in numeric)
    return out
