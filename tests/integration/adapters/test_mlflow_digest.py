"""The dataset digest and schema the adapter computes are MLflow's own values (mlflow.data.digest_utils, the schema
of mlflow.data.from_pandas), on every column kind."""

import mlflow.data
import numpy as np
import pandas as pd
import pytest
from mlflow.data.digest_utils import compute_pandas_digest

from ctpipeline.adapters.mlflow.datasets import pandas_digest, pandas_schema

from conftest import make_flights_like

FRAMES = {
    "flights-like": lambda: make_flights_like(3000, seed=3),
    "object with a None": lambda: pd.DataFrame({"a": ["x"] * 5 + [None], "b": range(6)}),
    "object mixed": lambda: pd.DataFrame({"a": ["x", 1, "y"], "b": [1.0, 2, 3]}),
    "categorical": lambda: pd.DataFrame({"a": pd.Categorical(["x", "y", "x"]), "b": [1, 2, 3]}),
    "categorical with NaN": lambda: pd.DataFrame({"a": pd.Categorical(["x", None, "x"]), "b": [1, 2, 3]}),
    "string dtype": lambda: pd.DataFrame({"a": pd.array(["x", "y", "z"], dtype="string"), "b": [1, 2, 3]}),
    "string dtype with NA": lambda: pd.DataFrame({"a": pd.array(["x", None, "z"], dtype="string"), "b": [1, 2, 3]}),
    "NaN after the first 10,000 rows": lambda: pd.DataFrame({"a": ["x"] * 12000 + [np.nan], "b": range(12001)}),
    "datetimes": lambda: pd.DataFrame({"t": pd.date_range("2013", periods=3, tz="UTC"), "a": ["p", "q", "r"]}),
    "naive datetimes with NaT": lambda: pd.DataFrame({"t": pd.to_datetime(["2013-01-01", None, "2013-01-03"])}),
    "floats with NaN, ints, bools": lambda: pd.DataFrame(
        {"f": [1.0, np.nan, 2.0], "i": [1, 2, 3], "b": [True, False, True]}
    ),
    "nullable ints with NA": lambda: pd.DataFrame({"i": pd.array([1, None, 3], dtype="Int64"), "f": [1.5, 2.5, 3.5]}),
    "object of floats": lambda: pd.DataFrame({"a": pd.Series([1.5, np.nan, 2.5], dtype=object)}),
    "object of bytes": lambda: pd.DataFrame({"a": [b"x", b"y", b"z"]}),
    "object all None": lambda: pd.DataFrame({"a": [None, None]}),
    "no rows": lambda: pd.DataFrame({"a": pd.Series([], dtype=object), "b": pd.Series([], dtype=float)}),
}


@pytest.mark.parametrize("kind", list(FRAMES))
def test_the_digest_is_mlflows(kind):
    df = FRAMES[kind]()
    assert pandas_digest(df) == compute_pandas_digest(df)


def test_the_digest_changes_with_the_data():
    df = make_flights_like(2000, seed=1)
    other = df.copy()
    other.loc[5, "distance"] += 1
    assert pandas_digest(df) != pandas_digest(other)


@pytest.mark.parametrize("kind", list(FRAMES))
def test_the_schema_is_mlflows(kind):
    df = FRAMES[kind]().head(2000)
    mine, theirs = pandas_schema(df), mlflow.data.from_pandas(df).schema
    assert (mine.to_dict() if mine is not None else None) == (theirs.to_dict() if theirs is not None else None)
