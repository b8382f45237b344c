"""Batches, landing, the batch log and training windows, on small generated frames."""

import numpy as np
import pandas as pd
import pytest

from ctpipeline.config.schema import DataConfig
from ctpipeline.core import data
from ctpipeline.errors import DataError


def frame(n=300, start="2021-01-01", days=90, seed=0):
    rng = np.random.default_rng(seed)
    t = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(rng.integers(0, days * 24, n), unit="h")
    return pd.DataFrame({"t": t, "x": rng.normal(size=n), "c": rng.choice(["a", "b"], n), "y": rng.normal(size=n)})


def test_split_by_month_is_complete_and_ordered():
    df = frame()
    parts = data.split_batches(df, DataConfig(time_column="t"))
    assert list(parts) == ["2021-01", "2021-02", "2021-03"]
    assert sum(len(p) for p in parts.values()) == len(df)
    for name, part in parts.items():
        assert (part["t"].dt.strftime("%Y-%m") == name).all()


def test_periods_are_cut_in_the_configured_time_zone():
    t = pd.Series(pd.to_datetime(["2013-02-01T03:00:00Z", "2013-02-01T06:00:00Z"], utc=True))
    assert list(data.period_names(t, "month", "America/New_York")) == ["2013-01", "2013-02"]
    assert list(data.period_names(t, "month")) == ["2013-02", "2013-02"]


def test_week_and_day_granularity():
    t = pd.Series(pd.to_datetime(["2021-01-04T12:00:00Z", "2021-01-10T12:00:00Z", "2021-01-11T00:00:00Z"], utc=True))
    assert list(data.period_names(t, "week")) == ["2021-W01", "2021-W01", "2021-W02"]
    assert list(data.period_names(t, "day")) == ["2021-01-04", "2021-01-10", "2021-01-11"]


def test_training_frame_caps_to_newest_rows(flights_cfg):
    a = frame(100, "2021-01-01", 20, seed=1)
    b = frame(100, "2021-02-01", 20, seed=2)
    capped = flights_cfg.model_copy(
        update={
            "data": DataConfig(time_column="t"),
            "training": flights_cfg.training.model_copy(update={"max_train_rows": 50}),
        }
    )
    out = data.training_frame([a, b], capped)
    assert len(out) == 50 and out["t"].min() >= b["t"].sort_values().iloc[50]


def test_make_xy_binarises_target_drops_unlabelled_and_keeps_raw_columns(flights_cfg):
    from conftest import make_flights_like

    df = make_flights_like(400, seed=3)
    df.loc[:9, "arr_delay"] = np.nan
    X, y = data.make_xy(df, flights_cfg)
    assert len(X) == len(y) == df["arr_delay"].notna().sum()
    assert set(y.unique()) <= {0, 1}
    assert ((df["arr_delay"].dropna() > 15).astype(int).to_numpy() == y.to_numpy()).all()
    # the raw columns: the datetime parts are derived inside the model (core.features)
    assert list(X.columns) == data.input_columns(flights_cfg)
    assert {"time_hour", "carrier", "distance"} <= set(X.columns) and "time_hour_hour" not in X.columns
    assert X["distance"].dtype == "float64" and str(X["time_hour"].dt.tz) == "UTC"
    assert not {"dep_delay", "arr_delay", "arr_time"} & set(X.columns)


def test_make_xy_rejects_strings_in_numeric_feature(flights_cfg):
    from conftest import make_flights_like

    df = make_flights_like(50, seed=4)
    df["distance"] = "far"
    with pytest.raises(DataError, match="'distance' is not numeric"):
        data.make_xy(df, flights_cfg)
    with pytest.raises(DataError, match="'carrier' is missing"):
        data.make_xy(make_flights_like(50, seed=4).drop(columns=["carrier"]), flights_cfg)


def test_make_xy_rejects_labels_that_are_not_binary(flights_cfg):
    from conftest import make_flights_like

    cfg = flights_cfg.model_copy(update={"target": flights_cfg.target.model_copy(update={"positive_when": None})})
    df = make_flights_like(50, seed=4)
    df["arr_delay"] = 2.0
    with pytest.raises(DataError, match="0/1 labels"):
        data.make_xy(df, cfg)


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(pd.date_range("2013-01-01", periods=5000, freq="h", tz="UTC").repeat(3)),  # datetimes, repeated
        pd.Series(pd.date_range("2013-03-09", periods=500, freq="h", tz="America/New_York").repeat(20)),
        pd.Series(pd.date_range("2013-01-01", periods=5000, freq="h").repeat(3)),  # naive: taken as UTC
        pd.Series(pd.date_range("2013-01-01", periods=3000, freq="h", tz="UTC").repeat(5).astype(str)),  # text
        pd.Series(["2013-01-01 05:00", None, "2013-01-02 06:00"] * 2000),
    ],
)
def test_as_utc_is_pandas_to_datetime_with_utc(values):
    """as_utc skips pandas' cache for datetimes only: the same values, dtype and index as pd.to_datetime."""
    from ctpipeline.core.data import as_utc

    pd.testing.assert_series_equal(as_utc(values), pd.to_datetime(values, utc=True))
    pd.testing.assert_series_equal(as_utc(values, errors="coerce"), pd.to_datetime(values, utc=True, errors="coerce"))
    assert str(as_utc(values).dt.tz) == "UTC"
