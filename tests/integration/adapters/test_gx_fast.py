"""The optimised GX gate gives GX's own verdicts: the same as plain ``batch.validate(suite, result_format=SUMMARY)``.

``ctpipeline.adapters.gx.validate`` validates the suite per column group, BOOLEAN_ONLY first and SUMMARY for what
failed, with five costs of GX skipped (adapters/gx/speedups.py). Here both run on the same frames, clean and
broken in several ways, and must agree on success, on the failed expectations (type, column, kwargs) and on the
observed-value wording, for the flights suite and for a suite exercising every kind of group.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctpipeline.adapters.gx import validate
from ctpipeline.adapters.gx.context import GX_LOCK, batch_definition
from ctpipeline.adapters.gx.plan import plan_groups
from ctpipeline.adapters.gx.speedups import PATCHES, cheaper_gx, patch_targets
from ctpipeline.adapters.gx.suite import cached_suite
from ctpipeline.adapters.gx.validation import RESULT_FORMAT
from ctpipeline.core.jsonable import to_jsonable
from ctpipeline.core.quality import quality_result
from flights_corruptions import CORRUPTIONS

from conftest import make_flights_like

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
SUITE = REPO / "expectations" / "flights.json"


def plain(df: pd.DataFrame, suite_path: Path):
    """What naive GX use gives: one batch of the whole frame, the whole suite, SUMMARY (no speed-ups)."""
    _, suite = cached_suite(suite_path)
    with GX_LOCK:
        result = (
            batch_definition()
            .get_batch(batch_parameters={"dataframe": df})
            .validate(suite, result_format=RESULT_FORMAT)
        )
        raw = to_jsonable(result.to_json_dict())
        expectations = [e.configuration.to_json_dict() for e in suite.expectations]
    return quality_result(raw, suite.name, expectations, {c for c in df.columns if isinstance(c, str)})


def assert_same_verdicts(df: pd.DataFrame, suite_path: Path = SUITE):
    fast, reference = validate(df, suite_path), plain(df, suite_path)
    assert fast.success == reference.success
    assert fast.evaluated == reference.evaluated
    assert fast.statistics == reference.statistics
    # FailedExpectation equality: type, column, kwargs and the observed-value wording
    assert fast.failed == reference.failed, "\n".join(
        ["optimised:"] + [f.describe() for f in fast.failed] + ["plain GX:"] + [f.describe() for f in reference.failed]
    )
    assert fast.summary() == reference.summary()
    return fast


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_flights_like(3000, seed=21)


def test_clean_batch_same_verdict(frame):
    result = assert_same_verdicts(frame)
    assert result.success


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_broken_batches_same_failures_and_wording(frame, name):
    before = frame.copy()
    result = assert_same_verdicts(CORRUPTIONS[name](frame))
    assert not result.success and result.failed
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda f: f.iloc[:500], id="too-few-rows"),
        pytest.param(lambda f: f.iloc[0:0], id="no-rows"),
        pytest.param(lambda f: pd.DataFrame(), id="no-columns"),
        pytest.param(lambda f: f.set_axis(range(f.shape[1]), axis=1), id="int-column-names"),
        pytest.param(lambda f: pd.concat([f, f[["hour"]]], axis=1), id="duplicated-column"),
        pytest.param(lambda f: pd.concat([f.iloc[:1500], f.iloc[:1500].assign(hour=30)]), id="duplicated-index"),
        pytest.param(lambda f: f.set_index(["origin", "flight"], drop=False), id="named-multi-index"),
        pytest.param(lambda f: f.set_index("time_hour"), id="named-index"),
        pytest.param(lambda f: f.set_axis([f"r{i}" for i in range(len(f))]), id="string-index"),
        pytest.param(lambda f: f.assign(origin=f["origin"].astype("category")), id="categorical"),
        pytest.param(lambda f: f.assign(dest=f["dest"].astype("string")), id="string-dtype"),
        pytest.param(lambda f: f.assign(hour=f["hour"].astype("Int64")), id="nullable-int"),
        pytest.param(lambda f: f.assign(carrier=f["carrier"].where(f.index % 100 != 0, 7)), id="mixed-types"),
        pytest.param(lambda f: f.assign(temp=pd.Series([None] * len(f), dtype=object)), id="all-none-object"),
        pytest.param(lambda f: f.assign(arr_delay=f["arr_delay"].astype("Float64")), id="nullable-float"),
    ],
)
def test_odd_frames_same_verdicts(frame, make):
    assert_same_verdicts(make(frame))


MIXED_SUITE = {
    "name": "mixed",
    "expectations": [
        {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["a", "b", "c"], "exact_match": False}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "b", "column_index": 1}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "c"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 0, "max_value": 10}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 1, "max_value": 9}},
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {
                "column": "b",
                "min_value": 0,
                "max_value": 5,
                "row_condition": "a>5",
                "condition_parser": "pandas",
            },
        },
        {"type": "expect_column_pair_values_a_to_be_greater_than_b", "kwargs": {"column_A": "a", "column_B": "b"}},
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["a", "c"]}},
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "c", "value_set": ["x", "y"], "mostly": 0.9},
        },
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "b", "min_value": 0, "max_value": 3}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 10, "max_value": 1000}},
    ],
}


@pytest.fixture(scope="module")
def mixed_suite(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("suite") / "mixed.json"
    path.write_text(json.dumps(MIXED_SUITE))
    return path


def mixed_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 10, n).astype(float)
    return pd.DataFrame({"a": a, "b": a - rng.integers(1, 3, n), "c": rng.choice(["x", "y"], n), "d": 1})


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda f: f, id="clean"),
        pytest.param(lambda f: f.assign(a=f["a"].where(f.index % 7 != 0, 50.0)), id="a-out-of-range"),
        pytest.param(lambda f: f.assign(b=f["b"] + 20), id="pair-and-condition-and-mean"),
        pytest.param(lambda f: f.assign(c=f["c"].where(f.index % 3 != 0, "z")), id="set-mostly"),
        pytest.param(lambda f: f[["c", "a", "d"]], id="b-missing"),
        pytest.param(lambda f: f[["a", "c", "b"]], id="b-moved"),
        pytest.param(lambda f: pd.concat([f, f]).reset_index(drop=True), id="duplicate-rows"),
        pytest.param(lambda f: f.assign(a=f["a"].astype(str)), id="a-strings"),
    ],
)
def test_every_kind_of_group_same_verdicts(mixed_suite, make):
    assert_same_verdicts(make(mixed_frame()), mixed_suite)


def test_groups_follow_the_columns_each_expectation_reads(mixed_suite):
    _, suite = cached_suite(mixed_suite)
    groups = {g.columns: g.indices for g in plan_groups(suite, ["a", "b", "c", "d"])}
    # the whole batch: the column set, column_index, the row_condition and the row count
    assert groups[None] == (0, 1, 5, 10)
    assert groups[("c",)] == (2, 8)
    assert groups[("a",)] == (3, 4)
    assert groups[("a", "b")] == (6,)
    assert groups[("a", "c")] == (7,)
    assert groups[("b",)] == (9,)
    # a missing column: its expectations see the whole batch, as plain GX would
    missing = {g.columns: g.indices for g in plan_groups(suite, ["a", "c", "d"])}
    assert set(missing[None]) >= {6, 9}


def test_raw_result_has_gx_shape_in_suite_order(frame):
    bad = CORRUPTIONS["out_of_range"](frame)
    result = validate(bad, SUITE)
    raw = json.loads(json.dumps(result.raw))
    suite = json.loads(SUITE.read_text())["expectations"]
    assert [r["expectation_config"]["type"] for r in raw["results"]] == [e["type"] for e in suite]
    failed = [r for r in raw["results"] if not r["success"]]
    assert {r["expectation_config"]["kwargs"]["column"] for r in failed} == {"hour", "temp"}
    assert all("unexpected_count" in r["result"] for r in failed)  # SUMMARY for what failed
    passed = [r for r in raw["results"] if r["success"]]
    # BOOLEAN_ONLY for the rest, but the whole-batch group (here the row count) runs with SUMMARY at once
    assert all(
        r["result"] == {} for r in passed if r["expectation_config"]["type"] != "expect_table_row_count_to_be_between"
    )
    assert [
        r["result"] for r in passed if r["expectation_config"]["type"] == "expect_table_row_count_to_be_between"
    ] == [{"observed_value": 3000}]
    how = raw["meta"]["ctpipeline_gate"]
    assert how["pass_result_format"] == "BOOLEAN_ONLY" and how["detailed_expectations"] == 2
    assert raw["statistics"]["unsuccessful_expectations"] == 2


def test_speedups_target_the_installed_gx_and_are_undone():
    import importlib

    assert all(patch_targets().values()), patch_targets()
    from ctpipeline.adapters.gx.speedups import _target

    def current(m, a):
        owner, name = _target(importlib.import_module(m), a)
        return vars(owner)[name]

    before = {(m, a): current(m, a) for m, a in PATCHES}
    with cheaper_gx():
        during = {(m, a): current(m, a) for m, a in PATCHES}
    after = {(m, a): current(m, a) for m, a in PATCHES}
    assert after == before
    assert all(during[k] is not before[k] for k in before)


def test_a_memoised_configuration_is_built_again_once_a_field_is_assigned():
    import great_expectations as gx

    e = gx.expectations.ExpectColumnValuesToBeBetween(column="temp", min_value=0, max_value=10)
    with cheaper_gx():
        first = e.configuration
        assert e.configuration is first and first.kwargs["max_value"] == 10
        e.max_value = 20
        assert e.configuration.kwargs["max_value"] == 20
    assert e.configuration is not e.configuration  # GX's own property again: a new one on every read


def test_decimal_scan_still_runs_on_object_columns():
    from decimal import Decimal

    import great_expectations.util as gx_util

    with cheaper_gx():
        assert gx_util.does_ndarray_contain_decimal_dtype(np.array([Decimal("1.5"), 2.0], dtype=object))
        assert not gx_util.does_ndarray_contain_decimal_dtype(np.array([1.5, 2.0]))


def test_no_metric_values_are_kept_after_a_validation(frame):
    validate(CORRUPTIONS["out_of_range"](frame), SUITE)
    engine = batch_definition().data_asset.datasource.get_execution_engine()
    assert engine._metric_cache == {}  # the condition series of the last batch would stay alive otherwise
