"""The Evidently drift adapter (ctpipeline.adapters.evidently) run for real on generated flights-like data.

The pure plan (kinds, sampling, method by sample size) is unit-tested in tests/unit/core/test_drift_plan.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctpipeline.adapters.evidently import detect_drift, render_html
from ctpipeline.core.drift import CATEGORICAL_METHODS, DISTANCE_METHODS, NUMERIC_METHODS, DriftConfig, DriftResult
from ctpipeline.errors import DataError

from conftest import make_flights_like

pytestmark = pytest.mark.integration

NO_HTML = DriftConfig(report_html=False)


@pytest.fixture(scope="module")
def features(flights_cfg):
    return list(flights_cfg.features.numeric), list(flights_cfg.features.categorical)


@pytest.fixture(scope="module")
def reference():
    return make_flights_like(3000, seed=7)


@pytest.fixture(scope="module")
def same():
    """Same generator, another seed: the same distributions."""
    return make_flights_like(3000, seed=8)


@pytest.fixture(scope="module")
def shifted(same):
    cur = same.copy()
    cur["temp"] = cur["temp"] + 30
    # a third of the flights move to one carrier (UA's share goes from ~17% to ~45%)
    idx = np.random.default_rng(0).choice(len(cur), size=len(cur) // 3, replace=False)
    cur.loc[idx, "carrier"] = "UA"
    return cur


@pytest.fixture(scope="module")
def no_drift(reference, same, features) -> DriftResult:
    return detect_drift(reference, same, *features, NO_HTML, seed=0)


@pytest.fixture(scope="module")
def drift_html(reference, shifted, features) -> DriftResult:
    return detect_drift(reference, shifted, *features, DriftConfig(report_html=True), seed=0)


# --------------------------------------------------------------------------- verdicts


def test_identical_distributions_do_not_drift(no_drift, features):
    numeric, categorical = features
    assert not no_drift.dataset_drift
    assert no_drift.drifted_share < 0.3
    assert [c.column for c in no_drift.columns] == numeric + categorical
    assert {c.kind for c in no_drift.columns if c.column in numeric} == {"numeric"}
    assert {c.kind for c in no_drift.columns if c.column in categorical} == {"categorical"}
    assert no_drift.skipped == () and not no_drift.sampled
    assert (no_drift.reference_rows, no_drift.current_rows) == (3000, 3000)


def test_large_samples_use_distances_with_evidently_default_thresholds(no_drift):
    by = {c.column: c for c in no_drift.columns}
    assert (by["temp"].method, by["temp"].threshold, by["temp"].score_kind) == ("wasserstein", 0.1, "distance")
    assert (by["carrier"].method, by["carrier"].threshold) == ("jensenshannon", 0.1)
    # wind_gust is missing ~78% of the time: under 1000 values per side, so a test (K-S p-value)
    assert (by["wind_gust"].method, by["wind_gust"].threshold, by["wind_gust"].score_kind) == ("ks", 0.05, "p_value")
    for c in no_drift.columns:  # verdicts agree with the method's own comparison
        assert c.drifted == (c.score >= c.threshold if c.score_kind == "distance" else c.score <= c.threshold)


def test_shifted_numeric_and_changed_categorical_are_detected_and_named(drift_html):
    drifted = drift_html.drifted_columns()
    assert "temp" in drifted and "carrier" in drifted
    assert "distance" not in drifted and "origin" not in drifted
    by = {c.column: c for c in drift_html.columns}
    assert by["temp"].score > 1.0  # +30 F is several reference standard deviations
    summary = drift_html.summary()
    assert summary.splitlines()[0].startswith("data drift:")
    assert "temp (numeric): wasserstein" in summary and "carrier (categorical): jensenshannon" in summary


def test_html_when_asked(drift_html, no_drift):
    assert isinstance(drift_html.html, str) and len(drift_html.html) > 1000
    assert "<html" in drift_html.html.lower()
    # one distribution chart per column: the runs without HTML (which skip the charts) left them on
    assert drift_html.html.count("DATA DISTRIBUTION") == len(drift_html.columns)


def test_no_html_when_not_asked(no_drift):
    assert no_drift.html is None


def test_html_rendered_after_the_decision_is_the_same_report(reference, shifted, features, drift_html):
    # the critical path: verdicts only, even with report_html on in the config
    fast = detect_drift(reference, shifted, *features, DriftConfig(report_html=True), seed=0, html=False)
    assert fast.html is None
    assert fast.columns == drift_html.columns and fast.drifted_share == drift_html.drifted_share
    html = render_html(fast)  # later, off the critical path: the same samples, methods and verdicts
    assert "<html" in html.lower() and html.count("DATA DISTRIBUTION") == len(fast.columns)
    assert fast.with_html(html).html == html and fast.with_html(html).columns == fast.columns
    assert render_html(drift_html) is drift_html.html  # already rendered: nothing is computed again


def test_render_html_needs_a_result_of_detect_drift(no_drift):
    from dataclasses import replace

    with pytest.raises(ValueError, match="needs a DriftResult from detect_drift"):
        render_html(replace(no_drift, plan=None))


def test_a_training_window_of_frames_gives_the_verdicts_of_their_concatenation(features):
    import pandas as pd

    window = [make_flights_like(4000, seed=s, start=f"2013-0{m}-01") for s, m in ((1, 3), (2, 4), (3, 5))]
    cur = make_flights_like(5000, seed=9, start="2013-07-01")
    cfg = DriftConfig(report_html=False, max_rows=3000)
    from_parts = detect_drift(window, cur, *features, cfg, seed=4)
    whole = detect_drift(pd.concat(window, ignore_index=True), cur, *features, cfg, seed=4)
    assert from_parts.columns == whole.columns  # same methods, scores and verdicts
    assert (from_parts.reference_rows, from_parts.reference_sample_rows) == (12000, 3000)


def test_results_are_json_serialisable(drift_html, no_drift):
    for res in (drift_html, no_drift):
        data = json.loads(json.dumps(res.to_dict(), allow_nan=False))
        assert "html" not in data and "evidently_json" not in data
        assert data["drifted_columns"] == res.drifted_columns()
        assert data["dataset_drift"] == res.dataset_drift
        assert len(data["columns"]) == len(res.columns)
        json.dumps(res.evidently_json, allow_nan=False)
    # Evidently's own JSON holds one ValueDrift per column (+ DriftedColumnsCount with the HTML)
    types = [m["config"]["type"].rsplit(":", 1)[-1] for m in drift_html.evidently_json["metrics"]]
    assert types.count("ValueDrift") == len(drift_html.columns) and "DriftedColumnsCount" in types
    count = next(m for m in drift_html.evidently_json["metrics"] if "DriftedColumnsCount" in m["metric_name"])
    assert count["value"]["count"] == len(drift_html.drifted_columns())


def test_dataset_drift_follows_share_threshold(reference, shifted):
    numeric, categorical = ["temp", "distance"], ["carrier", "origin"]  # 2 of 4 drift
    at_half = detect_drift(
        reference, shifted, numeric, categorical, DriftConfig(report_html=False, share_threshold=0.5)
    )
    assert at_half.drifted_share == 0.5 and at_half.dataset_drift
    assert "DATASET DRIFT" in at_half.summary()
    above = detect_drift(reference, shifted, numeric, categorical, DriftConfig(report_html=False, share_threshold=0.75))
    assert above.drifted_share == 0.5 and not above.dataset_drift


# --------------------------------------------------------------------------- sampling


def test_sampling_caps_rows_is_seeded_and_switches_to_tests(reference, shifted):
    cfg = DriftConfig(max_rows=400, report_html=False)
    a = detect_drift(reference, shifted, ["temp", "distance"], ["carrier"], cfg, seed=3)
    b = detect_drift(reference, shifted, ["temp", "distance"], ["carrier"], cfg, seed=3)
    assert a.sampled and (a.reference_sample_rows, a.current_sample_rows) == (400, 400)
    assert (a.reference_rows, a.current_rows) == (3000, 3000)
    assert [c.score for c in a.columns] == [c.score for c in b.columns]  # same seed, same sample
    by = {c.column: c for c in a.columns}
    assert by["temp"].method == "ks" and by["carrier"].method == "chisquare"  # small samples: p-values
    assert by["temp"].drifted and by["carrier"].drifted


# --------------------------------------------------------------------------- robustness


def test_missing_and_empty_columns_are_skipped_with_a_note(reference, same):
    cur = same.drop(columns=["wind_gust"]).assign(precip=np.nan)
    res = detect_drift(
        reference,
        cur,
        ["temp", "wind_gust", "precip", "no_such_column"],
        ["origin"],
        DriftConfig(report_html=False, numeric_method="psi"),
    )
    assert [c.column for c in res.columns] == ["temp", "origin"]
    assert res.columns[0].method == "psi" and res.columns[0].score_kind == "distance"
    notes = dict(res.skipped)
    assert notes["wind_gust"] == "missing from the current data"
    assert notes["no_such_column"] == "missing from the reference and current data"
    assert notes["precip"] == "all values missing in the current data"
    assert "skipped precip: all values missing" in res.summary()
    assert res.to_dict()["skipped"][0] == {"column": "wind_gust", "reason": "missing from the current data"}


def test_empty_frame_raises_data_error(reference, features):
    with pytest.raises(DataError, match="current data is empty"):
        detect_drift(reference, reference.iloc[0:0], *features, NO_HTML)
    with pytest.raises(DataError, match="reference data is empty"):
        detect_drift(reference.iloc[:, 0:0], reference, *features, NO_HTML)


def test_nothing_to_compare_raises_data_error(reference):
    with pytest.raises(DataError, match="no column left to compare.*nope: missing"):
        detect_drift(reference, reference, ["nope"], [], NO_HTML)


def test_config_columns_narrow_the_comparison_and_infer_kinds(reference, same):
    cfg = DriftConfig(columns=["temp", "carrier", "month"], report_html=False)
    res = detect_drift(reference, same, ["temp"], ["carrier"], cfg)
    kinds = {c.column: c.kind for c in res.columns}
    assert kinds == {"temp": "numeric", "carrier": "categorical", "month": "numeric"}


# --------------------------------------------------------------------------- Evidently itself


def test_method_lists_match_installed_evidently():
    from evidently.legacy.calculations import stattests
    from evidently.legacy.calculations.stattests.registry import StatTest
    from evidently.legacy.core import ColumnType

    tests = [v for v in vars(stattests).values() if isinstance(v, StatTest)]
    assert {t.name for t in tests if ColumnType.Numerical in t.allowed_feature_types} == NUMERIC_METHODS
    assert {t.name for t in tests if ColumnType.Categorical in t.allowed_feature_types} == CATEGORICAL_METHODS
    assert DISTANCE_METHODS <= NUMERIC_METHODS | CATEGORICAL_METHODS


# --------------------------------------------------------------------------- what the adapter skips changes nothing


def _lean_and_full(monkeypatch, ref, cur, numeric, categorical, cfg):
    """The same comparison with the adapter's skipped costs (drift._lean) and with Evidently run as it comes:
    each side's result, or its error as (type, message)."""
    import contextlib

    from ctpipeline.adapters.evidently import drift as drift_module

    def outcome():
        try:
            return detect_drift(ref, cur, numeric, categorical, cfg, seed=0, html=False)
        except Exception as exc:  # noqa: BLE001 - compared by the caller
            return type(exc), str(exc)

    lean = outcome()
    with monkeypatch.context() as m:
        m.setattr(drift_module, "_lean", lambda html: contextlib.nullcontext())
        full = outcome()
    return lean, full


def _awkward_columns(n: int, seed: int, shifted: bool):
    """Numeric columns with NaN, +-inf, ties and a constant; categoricals with NaN, two values and many."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(0.6 if shifted else 0.0, 1, n)
    x[rng.choice(n, n // 20, replace=False)] = np.nan
    x[:3] = [np.inf, -np.inf, np.inf]
    cats = [f"c{i}" for i in range(16 if shifted else 12)]
    return pd.DataFrame(
        {
            "gauss": x,
            "ties": rng.integers(0, 7 if shifted else 4, n).astype(float),
            "positive": rng.gamma(3.0 if shifted else 2.0, 1.0, n),
            "constant": np.full(n, 1.5),
            "flag": rng.choice(["a", "b"], n, p=[0.8, 0.2] if shifted else [0.5, 0.5]),
            "many": pd.Series(rng.choice(cats, n)).where(rng.random(n) > 0.05),
        }
    )


@pytest.mark.parametrize("rows", [300, 1500])  # <= 1000: p-value tests by default; above: distances
def test_skipped_evidently_costs_change_no_verdict_score_or_json_for_any_method(monkeypatch, rows):
    ref, cur = _awkward_columns(rows, 1, False), _awkward_columns(rows, 2, True)
    numeric, categorical = ["gauss", "ties", "positive", "constant"], ["flag", "many"]
    configs = [DriftConfig(report_html=False)]  # methods chosen by sample size
    configs += [DriftConfig(report_html=False, numeric_method=m) for m in sorted(NUMERIC_METHODS - {"empirical_mmd"})]
    configs += [DriftConfig(report_html=False, categorical_method=m) for m in sorted(CATEGORICAL_METHODS)]
    drifted, refused = set(), 0
    for cfg in configs:
        cols = (numeric, ["flag"]) if cfg.categorical_method == "fisher_exact" else (numeric, categorical)
        lean, full = _lean_and_full(monkeypatch, ref, cur, *cols, cfg)
        if isinstance(full, tuple):  # Evidently refuses this data with this method (e.g. the constant column)
            assert lean == full, cfg
            refused += 1
            continue
        assert repr(lean.columns) == repr(full.columns), cfg  # repr: a NaN score equals a NaN score
        assert json.dumps(lean.evidently_json, sort_keys=True) == json.dumps(full.evidently_json, sort_keys=True)
        assert lean.drifted_share == full.drifted_share and lean.dataset_drift == full.dataset_drift
        drifted |= set(lean.drifted_columns())
    assert drifted == {"gauss", "ties", "positive", "flag", "many"}  # the comparison has verdicts to get wrong
    assert refused < len(configs) // 2


def test_skipped_costs_keep_evidently_errors(monkeypatch, reference):
    """A column Evidently refuses is refused the same way with the costs skipped."""
    cur = reference.copy()
    cur["temp"] = np.inf  # all infinite: empty once Evidently drops inf and NaN
    lean, full = _lean_and_full(monkeypatch, reference, cur, ["temp"], [], NO_HTML)
    assert isinstance(full, tuple) and lean == full
