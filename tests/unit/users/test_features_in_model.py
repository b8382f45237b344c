"""The feature transforms inside the model (core/features.py): the champion takes raw columns, derives the local
time parts itself, casts numeric inputs, and gives the same predictions as before the parts moved into it."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ctpipeline.core.data import input_columns, make_xy
from ctpipeline.core.evaluation import metric_value, predict_for_metric
from ctpipeline.core.features import ColumnTypes, DatetimeParts
from ctpipeline.core.models import build_model

from conftest import make_flights_like


def old_style_inputs(df, cfg):
    """What make_xy fed the model before: the numeric features, the parts computed outside (local time), then
    the categoricals."""
    X = pd.DataFrame(index=df.index)
    t = pd.to_datetime(df[cfg.data.time_column], utc=True).dt.tz_convert(cfg.data.timezone)
    for col in cfg.features.numeric:
        X[col] = df[col].astype("float64")
    for part in cfg.features.datetime_parts:
        X[f"{cfg.data.time_column}_{part}"] = getattr(t.dt, part).astype("float64")
    for col in cfg.features.categorical:
        X[col] = df[col].astype("object").where(df[col].notna(), None)
    return X


@pytest.fixture(scope="module")
def frames():
    train = make_flights_like(3000, seed=21, months=2)
    test = make_flights_like(1500, seed=22, start="2013-03-01")
    return train[train["arr_delay"].notna()].reset_index(drop=True), test[test["arr_delay"].notna()].reset_index(
        drop=True
    )


def test_datetime_parts_are_local_and_accept_strings_naive_and_aware_times():
    utc = pd.Series(pd.to_datetime(["2013-07-01T03:30:00Z", "2013-12-31T23:00:00Z"], utc=True), name="t")
    step = DatetimeParts("t", ["hour", "dayofweek", "month", "weekofyear"], "America/New_York").fit(None)
    expected = pd.DataFrame(
        {"t_hour": [23.0, 18.0], "t_dayofweek": [6.0, 1.0], "t_month": [6.0, 12.0], "t_weekofyear": [26.0, 1.0]}
    )
    for times in (
        utc,
        utc.dt.tz_localize(None),  # naive = UTC
        utc.dt.tz_convert("Europe/Paris"),
        pd.Series(["2013-07-01T03:30:00Z", "2013-12-31T18:00:00-05:00"]),  # what a JSON caller sends
    ):
        out = step.transform(pd.DataFrame({"t": times, "x": [1.0, 2.0]}))
        pd.testing.assert_frame_equal(out.drop(columns="x"), expected)
        assert "t" not in out.columns
    with pytest.raises(ValueError, match="'t' does not hold timestamps"):
        step.transform(pd.DataFrame({"t": ["soon", "later"]}))


def test_column_types_cast_int_and_text_numbers_and_name_what_is_wrong():
    step = ColumnTypes(["n"], ["c"], ["t"]).fit(None)
    raw = pd.DataFrame({"c": ["a", None], "n": np.array([3, 4], dtype="int64"), "t": [1, 2], "extra": [0, 0]})
    out = step.transform(raw)
    assert list(out.columns) == ["t", "n", "c"] and out["n"].dtype == "float64"
    assert out["c"].tolist() == ["a", None]
    assert step.transform(raw.assign(n=["3.5", None]))["n"].tolist()[0] == 3.5
    with pytest.raises(ValueError, match="'n' is not numeric"):
        step.transform(raw.assign(n=["three", "four"]))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['c'\]"):
        step.transform(raw.drop(columns="c"))


@pytest.mark.parametrize("type_", ["xgboost", "hist_gradient_boosting", "logistic_regression"])
def test_same_predictions_as_with_the_parts_computed_outside(flights_cfg, frames, type_):
    params = {"xgboost": {"n_estimators": 30}, "hist_gradient_boosting": {"max_iter": 30}}.get(type_, {})
    cfg = flights_cfg.model_copy(
        update={"model": flights_cfg.model.model_copy(update={"type": type_, "params": params})}
    )
    train, test = frames
    new = build_model(cfg)
    assert [name for name, _ in new.steps] == ["columns", "datetime_parts", "preprocess", "model"]
    new.fit(*make_xy(train, cfg))
    old = Pipeline([(n, clone(s)) for n, s in new.steps[2:]]).fit(old_style_inputs(train, cfg), make_xy(train, cfg)[1])
    X, y = make_xy(test, cfg)
    assert list(X.columns) == input_columns(cfg)
    got, want = (
        predict_for_metric(new, X, "classification"),
        predict_for_metric(old, old_style_inputs(test, cfg), "classification"),
    )
    np.testing.assert_array_equal(got, want)
    assert metric_value("roc_auc", y, got) == metric_value("roc_auc", y, want)
    # the raw landed rows, every column and the original int64 dtypes, score the same
    np.testing.assert_array_equal(predict_for_metric(new, test, "classification"), got)
    restored = pickle.loads(pickle.dumps(new))
    np.testing.assert_array_equal(predict_for_metric(restored, test, "classification"), got)


def test_model_survives_skops_with_its_transformers_trusted(flights_cfg, frames):
    import skops.io as sio

    cfg = flights_cfg.model_copy(
        update={
            "model": flights_cfg.model.model_copy(update={"type": "hist_gradient_boosting", "params": {"max_iter": 20}})
        }
    )
    train, test = frames
    model = build_model(cfg).fit(*make_xy(train, cfg))
    blob = sio.dumps(model)
    untrusted = sio.get_untrusted_types(data=blob)
    assert {"ctpipeline.core.features.ColumnTypes", "ctpipeline.core.features.DatetimeParts"} <= set(untrusted)
    restored = sio.loads(blob, trusted=untrusted)
    np.testing.assert_array_equal(restored.predict_proba(test), model.predict_proba(test))


def test_a_regression_model_takes_int64_inputs(flights_cfg, frames):
    cfg = flights_cfg.model_copy(
        update={
            "target": flights_cfg.target.model_copy(update={"task": "regression", "positive_when": None}),
            "evaluation": flights_cfg.evaluation.model_copy(update={"metric": "mae"}),
            "model": flights_cfg.model.model_copy(update={"type": "ridge", "params": {}}),
        }
    )
    train, test = frames
    model = build_model(cfg).fit(*make_xy(train, cfg))
    ints = test.copy()
    assert ints["distance"].dtype == "int64" and ints["sched_dep_time"].dtype == "int64"
    as_float = test.astype({"distance": "float64", "sched_dep_time": "float64"})
    np.testing.assert_allclose(model.predict(ints), model.predict(as_float), rtol=0, atol=0)


def test_the_module_shipped_with_every_model_imports_only_numpy_pandas_and_sklearn():
    """core/features.py is copied into each logged model (code_paths): it must load without ctpipeline."""
    import ast
    from pathlib import Path

    from ctpipeline.core import features

    tree = ast.parse(Path(features.__file__).read_text())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert roots <= {"__future__", "numpy", "pandas", "sklearn"}, roots
