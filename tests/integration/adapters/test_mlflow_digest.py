"""The dataset digest the adapter computes is MLflow's own value (mlflow.data.digest_utils), on every column kind."""

import numpy as np
import pandas as pd
import pytest
from mlflow.data.digest_utils import compute_pandas_digest

from ctpipeline.adapters.mlflow.datasets import pandas_digest

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
