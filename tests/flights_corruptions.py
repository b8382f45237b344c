"""Broken variants of a flights-like batch, one problem (or a few) each: for the quality gate's tests and bench/.

``CORRUPTIONS`` maps a name to a function that returns a corrupted *copy* (the input frame is not modified).
Each one breaks expectations of ``expectations/flights.json`` the way real upstream bugs do: a dropped column,
numbers arriving as strings, an unknown category, values out of range, a label column mostly null, timestamps
that lost their time zone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["CORRUPTIONS", "corrupt"]


def _every(df: pd.DataFrame, step: int) -> pd.Index:
    return df.index[::step]


def dropped_column(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["dep_delay"])


def numbers_as_strings(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(distance=df["distance"].astype(str))


def unknown_categories(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.loc[_every(out, 40), "origin"] = "BOS"
    out.loc[_every(out, 97), "carrier"] = "ZZ"
    return out


def out_of_range(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.loc[_every(out, 500), "hour"] = 25
    out.loc[_every(out, 301), "temp"] = 999.0
    return out


def label_mostly_null(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.loc[_every(out, 3), "arr_delay"] = np.nan
    return out


def naive_timestamps(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(time_hour=df["time_hour"].dt.tz_localize(None))


def bad_codes(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.loc[_every(out, 250), "dest"] = "xx1"
    return out


def several(df: pd.DataFrame) -> pd.DataFrame:
    """Everything at once, as a badly broken upstream export would be."""
    out = df
    for fn in (dropped_column, numbers_as_strings, unknown_categories, out_of_range, label_mostly_null, bad_codes):
        out = fn(out)
    return out


CORRUPTIONS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "dropped_column": dropped_column,
    "numbers_as_strings": numbers_as_strings,
    "unknown_categories": unknown_categories,
    "out_of_range": out_of_range,
    "label_mostly_null": label_mostly_null,
    "naive_timestamps": naive_timestamps,
    "bad_codes": bad_codes,
    "several": several,
}


def corrupt(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """The `name` corruption of `df` (a copy)."""
    return CORRUPTIONS[name](df)
