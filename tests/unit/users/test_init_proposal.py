"""`ctp init`'s reading of a dataset (core/onboarding.py, core/suite_profile.py): granularity, task, leaks, suite."""

import numpy as np
import pandas as pd
import pytest

from ctpipeline.core.onboarding import guess_granularity, propose, target_task
from ctpipeline.core.suite_profile import profile_suite


def blocks(years: int = 50, per_year: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = pd.to_datetime([f"{1970 + y}-03-01" for y in range(years) for _ in range(per_year)], utc=True)
    x = rng.normal(size=len(t))
    y = (x + rng.normal(0, 1, len(t)) > 0).astype(int)
    return pd.DataFrame({"t": t, "x": x, "year": t.year, "y": y, "y_score": y + rng.normal(0, 0.01, len(t))})


def test_fifty_yearly_blocks_of_a_binary_target():
    df = blocks()
    assert guess_granularity(df["t"]) == "year"
    p = propose(df, "y")
    assert (p.task, p.positive_when, p.granularity, p.time_column) == ("classification", None, "year", "t")
    assert p.numeric == ["x"] and "y_score" in p.leaky and "year" in p.excluded
    assert p.datetime_parts == ["month"]  # no intraday variation: no hour
    assert p.min_period_rows == 20


def test_targets_tasks_and_reasons():
    assert target_task(pd.Series(["no", "yes", "no"]))[:2] == ("classification", {"==": "yes"})
    assert target_task(pd.Series([1.5, 2.0, 3.25]))[0] == "regression"
    with pytest.raises(ValueError, match="non-numeric"):
        target_task(pd.Series(["a", "b", "c"], name="kind"))


def test_suite_bounds_have_margins_and_the_time_bound_an_offset():
    df = blocks()
    suite = profile_suite("b", df, "t", "y", ["x"], [], min_rows=2)
    between = {
        e["kwargs"]["column"]: e["kwargs"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_between"
    }
    lo, hi = df["x"].min(), df["x"].max()
    assert between["x"]["min_value"] < lo and between["x"]["max_value"] > hi
    assert between["t"]["min_value"].endswith("+00:00")  # GX compares a tz-aware column with aware bounds only
    assert suite["expectations"][-1] == {
        "type": "expect_table_row_count_to_be_between",
        "kwargs": {"min_value": 2},
        "notes": "a tenth of the smallest profiled period: a much smaller batch is probably incomplete",
    }
