"""The quality gate's wording (ctpipeline.core.quality) from GX-shaped dicts: no GX needed, milliseconds.

The dicts have the shape of GX 1.x ``ExpectationSuiteValidationResult.to_json_dict()`` (as seen from
GX 1.24 on the flights suite); GX itself runs in tests/integration/adapters/test_gx.py.
"""

from __future__ import annotations

import json

import pytest

from ctpipeline.core.quality import FailedExpectation, QualityResult, quality_result, validation_error

NO_EXCEPTION = {"raised_exception": False, "exception_traceback": None, "exception_message": None}
COLUMNS = {"origin", "carrier", "distance", "arr_delay", "hour", "time_hour"}


def res(etype: str, kwargs: dict, result: dict | None = None, success: bool = False, exception_info=None) -> dict:
    """One GX ExpectationValidationResult, as to_json_dict() gives it (GX adds batch_id to the kwargs)."""
    return {
        "success": success,
        "expectation_config": {"type": etype, "kwargs": {"batch_id": "ctpipeline-batch", **kwargs}, "meta": {}},
        "result": result or {},
        "meta": {},
        "exception_info": NO_EXCEPTION if exception_info is None else exception_info,
    }


def unexpected(count: int, pct: float, values: list) -> dict:
    return {
        "element_count": 2000,
        "unexpected_count": count,
        "unexpected_percent": pct,
        "partial_unexpected_list": values,
        "missing_count": 0,
        "missing_percent": 0.0,
    }


def gx_raw(*results: dict, suite_name: str = "flights", evaluated: int | None = None) -> dict:
    n = len(results) if evaluated is None else evaluated
    bad = sum(not r["success"] for r in results)
    return {
        "success": bad == 0,
        "results": list(results),
        "suite_name": suite_name,
        "suite_parameters": {},
        "statistics": {
            "evaluated_expectations": n,
            "successful_expectations": n - bad,
            "unsuccessful_expectations": bad,
            "success_percent": 100.0 * (n - bad) / n,
        },
        "meta": {},
        "id": None,
    }


def exp(etype: str, **kwargs) -> dict:
    """One suite expectation, as ExpectationConfiguration.to_json_dict() gives it."""
    return {"type": etype, "kwargs": kwargs, "meta": {}, "id": "0c1e"}


def one_failure(result: dict, suite: list[dict] | None = None) -> FailedExpectation:
    (failure,) = quality_result(gx_raw(result), "flights", suite or [], COLUMNS).failed
    return failure


def test_unexpected_values_quote_a_few_distinct_examples_and_the_expected_set():
    f = one_failure(
        res(
            "expect_column_values_to_be_in_set",
            {"column": "origin", "value_set": ["EWR", "JFK", "LGA"]},
            unexpected(25, 1.25, ["BOS"] * 10),
        )
    )
    assert (f.expectation_type, f.column, f.observed) == (
        "expect_column_values_to_be_in_set",
        "origin",
        "25 unexpected (1.2%), e.g. ['BOS']",
    )
    assert f.kwargs == {"column": "origin", "value_set": ["EWR", "JFK", "LGA"]}  # GX's batch_id is dropped
    assert f.describe() == (
        "expect_column_values_to_be_in_set(origin): 25 unexpected (1.2%), e.g. ['BOS'] "
        '(expected in ["EWR", "JFK", "LGA"])'
    )


def test_at_most_five_examples_nulls_left_out_and_long_values_cut():
    values = [7000, 7000, None, 9000, 6001, 6002, 6003, 6004, "x" * 60]
    f = one_failure(
        res(
            "expect_column_values_to_be_between",
            {"column": "distance", "min_value": 1.0, "max_value": 6000.0},
            unexpected(9, 0.45, values),
        )
    )
    assert f.observed == "9 unexpected (0.45%), e.g. [7000, 9000, 6001, 6002, 6003]"
    assert f.describe().endswith("(expected between 1 and 6000)")
    long = one_failure(
        res(
            "expect_column_values_to_be_in_set",
            {"column": "carrier", "value_set": ["UA"]},
            unexpected(1, 0.05, ["y" * 60]),
        )
    )
    assert long.observed == "1 unexpected (0.05%), e.g. ['" + "y" * 36 + "...]"  # cut to 40 characters


@pytest.mark.parametrize(
    "pct, text", [(100.0, "100.0%"), (1.25, "1.2%"), (0.15, "0.15%"), (0.0, "0.0%"), (0.012345, "0.012%"), (None, "?")]
)
def test_percentages(pct, text):
    f = one_failure(
        res("expect_column_values_to_be_in_set", {"column": "origin", "value_set": ["EWR"]}, unexpected(3, pct, []))
    )
    assert f.observed == f"3 unexpected ({text})"


def test_nulls_are_counted_as_nulls_with_the_mostly_share_expected():
    f = one_failure(
        res(
            "expect_column_values_to_not_be_null",
            {"column": "arr_delay", "mostly": 0.9},
            unexpected(644, 32.2, [None] * 10),
        )
    )
    assert f.describe() == (
        "expect_column_values_to_not_be_null(arr_delay): 644 null (32.2%) (expected not null for at least 90% of rows)"
    )


def test_observed_value_and_table_level_expectations_have_no_column():
    f = one_failure(
        res("expect_table_row_count_to_be_between", {"min_value": 1000, "max_value": 100000}, {"observed_value": 300})
    )
    assert (f.column, f.observed) == (None, "observed 300")
    assert f.describe() == "expect_table_row_count_to_be_between: observed 300 (expected between 1000 and 100000)"
    ratio = one_failure(
        res("expect_column_mean_to_be_between", {"column": "hour", "min_value": 10}, {"observed_value": 3.14159})
    )
    assert ratio.describe() == "expect_column_mean_to_be_between(hour): observed 3.142 (expected at least 10)"


def test_gx_exception_messages_are_the_observed_text():
    info = {
        "MetricConfigurationID(metric_name='column_values.between.condition', ...)": {
            "exception_traceback": "Traceback ...",
            "raised_exception": True,
            "exception_message": "Error: '>=' not supported: column values must be of the same type",
        }
    }
    f = one_failure(
        res("expect_column_values_to_be_between", {"column": "distance", "max_value": 6000}, exception_info=info)
    )
    assert f.observed == "'>=' not supported: column values must be of the same type"
    assert f.describe().endswith("(expected at most 6000)")


def test_a_missing_column_is_named_whatever_gx_said():
    info = {"raised_exception": True, "exception_message": "list index out of range", "exception_traceback": "..."}
    f = one_failure(
        res(
            "expect_column_values_to_be_in_type_list",
            {"column": "dep_delay", "type_list": ["int64", "float64"]},
            exception_info=info,
        )
    )
    assert f.observed == "column 'dep_delay' not found"
    assert f.describe() == (
        "expect_column_values_to_be_in_type_list(dep_delay): column 'dep_delay' not found "
        '(expected dtype in ["int64", "float64"])'
    )


def test_other_shapes():
    exists = one_failure(res("expect_column_to_exist", {"column": "hour"}))  # present, GX says no: its own words
    assert exists.observed == "column not found"
    pair = one_failure(
        res("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "hour", "column_B": "origin"}, {"foo": 1})
    )
    assert (pair.column, pair.observed) == ("hour, origin", 'failed: {"foo": 1}')
    compound = one_failure(res("expect_compound_columns_to_be_unique", {"column_list": ["hour", "origin"]}))
    assert (compound.column, compound.observed) == ("hour, origin", "failed")
    mismatch = one_failure(
        res(
            "expect_table_columns_to_match_set",
            {"column_set": ["a"]},
            {"observed_value": ["a", "b"], "details": {"mismatched": {"unexpected": ["b"], "missing": ["c"]}}},
        )
    )
    assert mismatch.observed == 'missing columns ["c"], unexpected columns ["b"]'
    typed = one_failure(
        res(
            "expect_column_values_to_be_of_type",
            {"column": "time_hour", "type_": "DatetimeTZDtype"},
            {"observed_value": "datetime64[ns]"},
        )
    )
    assert typed.describe().endswith("observed 'datetime64[ns]' (expected type DatetimeTZDtype)")
    regex = one_failure(
        res(
            "expect_column_values_to_match_regex",
            {"column": "carrier", "regex": "^[A-Z0-9]{2}$", "mostly": 1.0},
            unexpected(1, 0.05, ["abc"]),
        )
    )
    assert regex.describe().endswith("(expected to match '^[A-Z0-9]{2}$')")  # mostly=1: not worth saying


def test_failures_come_in_suite_order_and_passes_are_left_out():
    suite = [
        exp("expect_column_to_exist", column="carrier"),
        exp("expect_column_values_to_be_in_set", column="origin", value_set=["EWR"]),
        exp("expect_table_row_count_to_be_between", min_value=1000, max_value=100000),
        exp("expect_column_values_to_be_in_set", column="carrier", value_set=["UA"]),
    ]
    raw = gx_raw(  # GX's metric-graph order
        res("expect_table_row_count_to_be_between", {"min_value": 1000, "max_value": 100000}, {"observed_value": 3}),
        res("expect_column_values_to_be_in_set", {"column": "carrier", "value_set": ["UA"]}, unexpected(1, 50.0, [])),
        res("expect_column_to_exist", {"column": "carrier"}, success=True),
        res("expect_column_values_to_be_in_set", {"column": "origin", "value_set": ["EWR"]}, unexpected(1, 50.0, [])),
        res("expect_column_values_to_be_null", {"column": "hour"}, {"observed_value": 1}),  # not in the suite: last
    )
    result = quality_result(raw, "flights", suite, COLUMNS)
    assert [(f.expectation_type, f.column) for f in result.failed] == [
        ("expect_column_values_to_be_in_set", "origin"),
        ("expect_table_row_count_to_be_between", None),
        ("expect_column_values_to_be_in_set", "carrier"),
        ("expect_column_values_to_be_null", "hour"),
    ]
    assert not result.success and result.evaluated == 5 and result.suite_name == "flights"
    assert result.statistics["unsuccessful_expectations"] == 4 and result.raw is raw


def test_a_passing_result_and_the_summaries():
    ok = quality_result(
        gx_raw(res("expect_column_to_exist", {"column": "hour"}, success=True), evaluated=1), "fallback", [], COLUMNS
    )
    assert ok.success and ok.failed == () and ok.suite_name == "flights"
    assert ok.summary() == "quality gate PASSED (1/1 expectations)"
    bad = quality_result(
        gx_raw(res("expect_table_row_count_to_be_between", {"min_value": 10}, {"observed_value": 3}), suite_name=""),
        "fallback",
        [],
        COLUMNS,
    )
    assert bad.suite_name == "fallback"  # GX gave no name: the suite's
    assert bad.summary().splitlines() == [
        "quality gate FAILED: 1 of 1 expectations failed",
        "  - expect_table_row_count_to_be_between: observed 3 (expected at least 10)",
    ]
    d = json.loads(json.dumps(bad.to_dict()))
    assert d == {
        "success": False,
        "suite_name": "fallback",
        "evaluated": 1,
        "statistics": bad.statistics,
        "failed": [
            {
                "expectation_type": "expect_table_row_count_to_be_between",
                "column": None,
                "kwargs": {"min_value": 10},
                "observed": "observed 3",
                "description": bad.failed[0].describe(),
            }
        ],
    }


def test_gx_success_with_no_failed_result_is_a_pass_and_a_failed_result_is_never_a_pass():
    raw = gx_raw(res("expect_column_to_exist", {"column": "hour"}))
    raw["success"] = True  # inconsistent: the failed result wins
    assert not quality_result(raw, "flights", [], COLUMNS).success


def test_validation_error_is_a_failed_gate_with_the_message():
    result = validation_error("flights", 79, RuntimeError("boom"), "Traceback ...\nRuntimeError: boom\n")
    assert isinstance(result, QualityResult) and not result.success
    assert (result.evaluated, result.suite_name) == (79, "flights")
    (f,) = result.failed
    assert f.describe() == "gx_validation_error: GX could not validate the batch: RuntimeError: boom"
    assert result.statistics == {
        "evaluated_expectations": 79,
        "successful_expectations": 0,
        "unsuccessful_expectations": 79,
        "success_percent": 0.0,
    }
    raw = json.loads(json.dumps(result.raw))
    assert raw["exception_info"] == {
        "exception_message": "RuntimeError: boom",
        "exception_traceback": "Traceback ...\nRuntimeError: boom\n",
    }
    assert result.summary().startswith("quality gate FAILED: 1 of 79 expectations failed")
