"""The drift method plan (ctpipeline.core.drift): kinds, sampling, skipped columns, method by sample size.

Pure pandas/numpy, no Evidently: milliseconds per test. Evidently itself runs in
tests/integration/adapters/test_evidently.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from ctpipeline.core.drift import (
    LOW_CARDINALITY,
    SMALL_SAMPLE,
    ColumnDrift,
    DriftConfig,
    column_kinds,
    plan_drift,
    sample_positions,
)
from ctpipeline.core.triggers import TriggerConfig
from ctpipeline.errors import DataError

NO_HTML = DriftConfig(report_html=False)


def frame(n: int, seed: int = 0, **extra) -> pd.DataFrame:
    """`n` rows: a continuous numeric, a 3-value numeric, a 3-category string column, a row id."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "temp": rng.normal(50, 10, n),
            "gear": rng.integers(1, 4, n),
            "carrier": rng.choice(np.array(["UA", "B6", "DL"], dtype=object), n),
            "row": np.arange(n),
        }
    )
    return df.assign(**extra)


def by_column(plan):
    return {p.column: p for p in plan.columns}


def test_importing_the_pure_modules_imports_no_tool():
    code = (
        "import sys, ctpipeline.core.drift, ctpipeline.core.quality; "
        "print(sorted(m for m in ('evidently', 'great_expectations', 'prefect', 'mlflow', 'pandas') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # pandas too: ctpipeline.config imports core.drift for DriftConfig, and reading a config needs no pandas
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- column kinds


def test_declared_kinds_numeric_first_and_no_column_in_both_lists():
    ref = frame(10)
    assert column_kinds(ref, ["temp", "gear"], ["carrier"], None) == {
        "temp": "numeric",
        "gear": "numeric",
        "carrier": "categorical",
    }
    with pytest.raises(ValueError, match=r"both numeric and categorical: \['temp'\]"):
        column_kinds(ref, ["temp"], ["temp", "carrier"], None)


def test_config_columns_narrow_and_undeclared_kinds_come_from_the_reference_dtype():
    ref = frame(10, flag=True, name="x")
    kinds = column_kinds(ref, ["temp"], ["carrier"], ["carrier", "row", "flag", "name", "absent"])
    assert kinds == {
        "carrier": "categorical",
        "row": "numeric",
        "flag": "categorical",
        "name": "categorical",
        "absent": "numeric",
    }
    assert list(kinds) == ["carrier", "row", "flag", "name", "absent"]  # the config's order


# --------------------------------------------------------------------------- method by sample size


def test_large_samples_get_distances_small_samples_get_tests():
    large = by_column(plan_drift(frame(3000), frame(3000, seed=1), ["temp"], ["carrier"], NO_HTML))
    assert (large["temp"].method, large["temp"].as_type) == ("wasserstein", "numeric")
    assert (large["carrier"].method, large["carrier"].as_type) == ("jensenshannon", "categorical")
    small = by_column(plan_drift(frame(500), frame(500, seed=1), ["temp"], ["carrier"], NO_HTML))
    assert small["temp"].method == "ks" and small["carrier"].method == "chisquare"
    assert all(p.threshold is None for p in (*large.values(), *small.values()))  # Evidently's defaults


@pytest.mark.parametrize("n, method", [(SMALL_SAMPLE, "ks"), (SMALL_SAMPLE + 1, "wasserstein")])
def test_the_cut_is_at_small_sample_rows(n, method):
    plan = plan_drift(frame(n), frame(n, seed=1), ["temp"], [], NO_HTML)
    assert plan.columns[0].method == method


def test_the_smaller_side_and_only_non_missing_values_count():
    # a 300-row batch against a 5000-row reference: a test, not a noisy distance
    assert plan_drift(frame(5000), frame(300), ["temp"], [], NO_HTML).columns[0].method == "ks"
    # 3000 rows but only 900 values on the current side
    cur = frame(3000, seed=1)
    cur.loc[900:, "temp"] = np.nan
    assert plan_drift(frame(3000), cur, ["temp"], [], NO_HTML).columns[0].method == "ks"


def test_low_cardinality_numeric_is_compared_as_categories():
    plan = by_column(plan_drift(frame(3000), frame(3000, seed=1), ["gear"], [], NO_HTML))
    assert (plan["gear"].kind, plan["gear"].as_type, plan["gear"].method) == ("numeric", "categorical", "jensenshannon")
    small = plan_drift(frame(200), frame(200, seed=1), ["gear"], [], NO_HTML).columns[0]
    assert (small.as_type, small.method) == ("categorical", "chisquare")
    # one more distinct value than LOW_CARDINALITY (across both sides): a numeric column again
    ref = pd.DataFrame({"v": np.arange(3000) % (LOW_CARDINALITY + 1)})
    assert plan_drift(ref, ref, ["v"], [], NO_HTML).columns[0].as_type == "numeric"


def test_two_values_on_a_small_sample_get_the_z_test():
    ref = pd.DataFrame({"late": [0, 1] * 100, "cancelled": ["no", "yes"] * 100})
    plan = by_column(plan_drift(ref, ref, ["late"], ["cancelled"], NO_HTML))
    assert plan["late"].method == "z" and plan["cancelled"].method == "z"


def test_a_configured_method_and_threshold_replace_the_rule():
    cfg = DriftConfig(report_html=False, numeric_method="psi", numeric_threshold=0.2, categorical_method="TVD")
    plan = by_column(plan_drift(frame(3000), frame(3000, seed=1), ["temp", "gear"], ["carrier"], cfg))
    assert (plan["temp"].method, plan["temp"].threshold) == ("psi", 0.2)
    assert (plan["gear"].method, plan["gear"].as_type) == ("psi", "numeric")  # named: no binning as categories
    assert (plan["carrier"].method, plan["carrier"].threshold) == ("TVD", None)


# --------------------------------------------------------------------------- sampling


def test_sample_positions_are_bounded_sorted_distinct_and_none_when_all_rows_fit():
    rng = np.random.default_rng(0)
    assert sample_positions(100, 100, rng) is None
    pos = sample_positions(10_000, 700, rng)
    assert len(pos) == 700 and len(set(pos.tolist())) == 700
    assert (np.diff(pos) > 0).all() and 0 <= pos[0] and pos[-1] < 10_000


def test_sampling_is_seeded_bounded_keeps_row_order_and_reference_draws_first():
    ref, cur = frame(5000), frame(4000, seed=1)
    cfg = DriftConfig(report_html=False, max_rows=600)
    plan = plan_drift(ref, cur, ["row"], [], cfg, seed=3)
    assert plan.sampled and (len(plan.reference), len(plan.current)) == (600, 600)
    assert (plan.reference_rows, plan.current_rows) == (5000, 4000)
    rng = np.random.default_rng(3)  # one generator: reference first, then current
    expected_ref = np.sort(rng.choice(5000, size=600, replace=False))
    expected_cur = np.sort(rng.choice(4000, size=600, replace=False))
    assert plan.reference["row"].tolist() == expected_ref.astype(float).tolist()
    assert plan.current["row"].tolist() == expected_cur.astype(float).tolist()
    assert plan.reference.index.tolist() == list(range(600))

    again = plan_drift(ref, cur, ["row"], [], cfg, seed=3)
    other = plan_drift(ref, cur, ["row"], [], cfg, seed=4)
    assert again.reference.equals(plan.reference) and again.current.equals(plan.current)
    assert not other.reference.equals(plan.reference)


def test_only_the_larger_side_is_sampled_and_small_frames_are_compared_whole():
    plan = plan_drift(frame(5000), frame(300), ["row"], [], DriftConfig(report_html=False, max_rows=1000))
    assert plan.sampled and (len(plan.reference), len(plan.current)) == (1000, 300)
    assert plan.current["row"].tolist() == list(range(300))
    whole = plan_drift(frame(800), frame(300), ["row"], [], DriftConfig(report_html=False, max_rows=1000))
    assert not whole.sampled and (len(whole.reference), len(whole.current)) == (800, 300)


def test_the_input_frames_are_not_modified():
    ref, cur = frame(3000, flag=True), frame(2000, seed=1, flag=False)
    cur.loc[0, "temp"] = np.inf
    before = ref.copy(), cur.copy()
    plan_drift(ref, cur, ["temp", "flag"], ["carrier"], DriftConfig(report_html=False, max_rows=500))
    pd.testing.assert_frame_equal(ref, before[0])
    pd.testing.assert_frame_equal(cur, before[1])


def test_sides_are_cleaned_to_what_evidently_handles():
    ref = pd.DataFrame(
        {
            "x": [1.0, np.inf, -np.inf, 2.0],
            "ok": [True, False, True, True],
            "cat": ["a", None, "b", "a"],
            "n": pd.array([1, None, 3, 4], dtype="Int64"),
        }
    )
    plan = plan_drift(ref, ref, ["x", "ok", "n"], ["cat"], NO_HTML)
    assert plan.reference["x"].dtype == "float64" and plan.reference["x"].isna().tolist() == [False, True, True, False]
    assert plan.reference["ok"].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert plan.reference["n"].dtype == "float64" and math.isnan(plan.reference["n"][1])
    assert plan.reference["cat"].dtype == object
    assert plan.reference["cat"].isna().tolist() == [False, True, False, False]


def window(n_parts: int, rows: int, seed: int = 10) -> list[pd.DataFrame]:
    """A training window: one frame per batch, each with its own RangeIndex (as read from Parquet)."""
    return [frame(rows, seed=seed + i).assign(row=np.arange(rows) + i * rows) for i in range(n_parts)]


@pytest.mark.parametrize("max_rows", [700, 100_000])  # sampled across the parts / every row of every part
def test_a_window_of_frames_gives_the_plan_of_their_concatenation(max_rows):
    parts, cur = window(4, 900), frame(1200, seed=1)
    cfg = DriftConfig(report_html=False, max_rows=max_rows)
    from_parts = plan_drift(parts, cur, ["temp", "gear", "row"], ["carrier"], cfg, seed=5)
    whole = plan_drift(pd.concat(parts, ignore_index=True), cur, ["temp", "gear", "row"], ["carrier"], cfg, seed=5)
    pd.testing.assert_frame_equal(from_parts.reference, whole.reference)
    pd.testing.assert_frame_equal(from_parts.current, whole.current)
    assert from_parts.columns == whole.columns and from_parts.skipped == whole.skipped
    assert (from_parts.reference_rows, from_parts.sampled) == (3600, whole.sampled)


def test_a_window_where_one_batch_lacks_a_column_is_read_as_its_concatenation():
    parts = window(3, 800)
    parts[1] = parts[1].drop(columns=["gear"])
    cfg = DriftConfig(report_html=False, max_rows=1000)
    from_parts = plan_drift(parts, frame(900, seed=1), ["temp", "gear"], ["carrier"], cfg, seed=2)
    whole = plan_drift(
        pd.concat(parts, ignore_index=True), frame(900, seed=1), ["temp", "gear"], ["carrier"], cfg, seed=2
    )
    pd.testing.assert_frame_equal(from_parts.reference, whole.reference)
    assert from_parts.reference["gear"].isna().any()


def test_a_window_is_sampled_without_copying_its_columns():
    import tracemalloc

    parts = window(4, 150_000)  # 600k rows, ~19 MB of feature columns
    cur = frame(100_000, seed=1)
    tracemalloc.start()
    plan = plan_drift(parts, cur, ["temp", "gear", "row"], ["carrier"], NO_HTML, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert plan.sampled and len(plan.reference) == NO_HTML.max_rows
    # concatenating the window first would take ~19 MB; the sampled rows take ~1 MB
    assert peak < 6e6, f"{peak / 1e6:.1f} MB"


def test_a_window_must_hold_frames():
    with pytest.raises(TypeError, match=r"a list of them\) as reference, got list"):
        plan_drift([frame(10), [1, 2]], frame(10), ["temp"], [], NO_HTML)
    with pytest.raises(TypeError, match="as reference, got int"):
        plan_drift(3, frame(10), ["temp"], [], NO_HTML)
    with pytest.raises(DataError, match=r"the reference data is empty \(0 rows, 4 columns\)"):
        plan_drift([frame(0), frame(0)], frame(10), ["temp"], [], NO_HTML)
    with pytest.raises(DataError, match="the reference data is empty"):
        plan_drift([], frame(10), ["temp"], [], NO_HTML)


# --------------------------------------------------------------------------- skipped columns and errors


def test_columns_that_cannot_be_compared_are_skipped_with_the_reason(caplog):
    ref = frame(2000)
    cur = frame(2000, seed=1).drop(columns=["gear"]).assign(temp=np.nan, carrier=pd.Series(range(2000)))
    cur["row"] = cur["row"].astype(str)
    with caplog.at_level("WARNING", logger="ctpipeline.core.drift"):
        plan = plan_drift(ref, cur, ["temp", "gear", "row", "nope"], ["carrier"], NO_HTML)
    assert [p.column for p in plan.columns] == ["carrier"]  # an int column can be compared as categories
    assert dict(plan.skipped) == {
        "gear": "missing from the current data",
        "nope": "missing from the reference and current data",
        "temp": "all values missing in the current data",
        "row": "declared numeric but the current data holds object values",
    }
    assert [c for c, _ in plan.skipped] == ["gear", "nope", "temp", "row"]  # missing ones first
    assert "drift: column 'gear' skipped: missing from the current data" in caplog.text


def test_all_missing_in_a_sample_says_sample():
    ref = frame(3000)
    ref.loc[5:, "temp"] = np.nan  # 5 values in 3000 rows: none survive a 100-row sample with this seed
    plan = plan_drift(ref, frame(3000, seed=1), ["temp", "row"], [], DriftConfig(report_html=False, max_rows=100))
    assert dict(plan.skipped) == {"temp": "all values missing in the reference data sample"}


def test_a_column_name_present_twice_is_skipped():
    ref = pd.concat([frame(100), frame(100)[["temp"]]], axis=1)
    plan = plan_drift(ref, frame(100), ["temp", "row"], [], NO_HTML)
    assert dict(plan.skipped) == {"temp": "more than one column of that name in the reference data"}


def test_nothing_left_to_compare_or_an_empty_frame_raises_data_error():
    with pytest.raises(DataError, match=r"no column left to compare \(nope: missing from the reference and current"):
        plan_drift(frame(10), frame(10), ["nope"], [], NO_HTML)
    with pytest.raises(DataError, match=r"no column left to compare \(no columns given\)"):
        plan_drift(frame(10), frame(10), [], [], NO_HTML)
    with pytest.raises(DataError, match=r"the current data is empty \(0 rows, 4 columns\)"):
        plan_drift(frame(10), frame(0), ["temp"], [], NO_HTML)
    with pytest.raises(DataError, match="the reference data is empty"):
        plan_drift(frame(10).iloc[:, 0:0], frame(10), ["temp"], [], NO_HTML)
    with pytest.raises(TypeError, match="needs a pandas DataFrame as current, got list"):
        plan_drift(frame(10), [1, 2], ["temp"], [], NO_HTML)


# --------------------------------------------------------------------------- the result from verdicts


def verdict(column, drifted, score=0.2, kind="numeric", score_kind="distance", threshold=0.1):
    return ColumnDrift(
        column, kind, "wasserstein" if score_kind == "distance" else "ks", score, threshold, drifted, score_kind
    )


def test_dataset_drift_when_the_drifted_share_reaches_the_threshold():
    plan = plan_drift(
        frame(3000),
        frame(2000, seed=1),
        ["temp", "row"],
        ["carrier", "nope"],
        DriftConfig(report_html=False, share_threshold=0.5, max_rows=1500),
    )
    res = plan.result(
        [
            verdict("temp", True),
            verdict("row", False),
            verdict("carrier", False, kind="categorical"),
            verdict("gear", True),
        ],
        seconds=1.23456,
    )
    assert res.drifted_share == 0.5 and res.dataset_drift and res.share_threshold == 0.5
    assert (res.reference_rows, res.current_rows, res.reference_sample_rows, res.current_sample_rows) == (
        3000,
        2000,
        1500,
        1500,
    )
    assert res.sampled and res.skipped == (("nope", "missing from the reference and current data"),)
    assert res.html is None and res.evidently_json == {}
    assert res.to_dict()["seconds"] == 1.235
    below = plan.result([verdict("temp", True), verdict("row", False), verdict("carrier", False)], seconds=0)
    assert not below.dataset_drift
    with pytest.raises(ValueError):
        plan.result([], seconds=0)


def test_summary_and_describe_wording():
    plan = plan_drift(frame(100), frame(100), ["temp", "nope"], [], NO_HTML)
    res = plan.result(
        [verdict("temp", True, score=5.0912), verdict("gear", False, score=0.3, score_kind="p_value", threshold=0.05)],
        seconds=0,
    )
    assert res.summary().splitlines() == [
        "data drift: DATASET DRIFT: 1 of 2 columns drifted (share 0.50, threshold 0.50)",
        "  - temp (numeric): wasserstein distance 5.09 >= 0.1: drift",
        "  (skipped nope: missing from the reference and current data)",
    ]
    assert res.columns[1].describe() == "gear (numeric): ks p-value 0.3 >= 0.05: no drift"
    assert (
        verdict("x", True, score=0.01, score_kind="p_value", threshold=0.05)
        .describe()
        .endswith("p-value 0.01 < 0.05: drift")
    )
    assert verdict("x", False, score=float("nan")).describe() == "x (numeric): wasserstein distance nan < 0.1: no drift"


def test_to_dict_survives_strict_json_even_with_a_nan_score():
    plan = plan_drift(frame(100), frame(100), ["temp"], [], NO_HTML)
    res = plan.result([verdict("temp", False, score=float("nan"))], seconds=0.5)
    data = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert data["columns"][0]["score"] is None and data["drifted_columns"] == []
    assert data["skipped"] == [] and data["sampled"] is False


# --------------------------------------------------------------------------- config


def test_config_validation():
    with pytest.raises(ValidationError, match="max_row"):
        DriftConfig(max_row=10)
    with pytest.raises(ValidationError, match="did you mean 'wasserstein'"):
        DriftConfig(numeric_method="wasserstien")
    with pytest.raises(ValidationError, match="unknown categorical drift method 'ks'"):
        DriftConfig(categorical_method="ks")  # K-S is numeric only
    with pytest.raises(ValidationError, match="numeric_threshold needs numeric_method"):
        DriftConfig(numeric_threshold=0.2)
    with pytest.raises(ValidationError, match="must be < 1"):
        DriftConfig(numeric_method="ks", numeric_threshold=5)
    with pytest.raises(ValidationError):
        DriftConfig(share_threshold=0)
    with pytest.raises(ValidationError, match="an empty list compares nothing"):
        DriftConfig(columns=[])
    assert DriftConfig(numeric_method="psi", numeric_threshold=0.2).numeric_threshold == 0.2


def test_duplicates_are_refused_with_one_wording_in_drift_and_trigger_configs():
    with pytest.raises(ValidationError, match=r"columns listed more than once: \['a', 'b'\]"):
        DriftConfig(columns=["b", "a", "b", "c", "a"])
    with pytest.raises(ValidationError, match=r"features listed more than once: \['temp'\]"):
        TriggerConfig(drifted_features=["temp", "temp"])
    assert DriftConfig(columns=["b", "a"]).columns == ["b", "a"]
    assert TriggerConfig(drifted_features=["temp", "dewp"]).drifted_features == ["temp", "dewp"]
