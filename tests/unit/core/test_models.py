"""The model factory: every model type fits, predicts, and survives unseen categories and NaNs."""

import math

import numpy as np
import pytest

from ctpipeline.core.data import make_xy
from ctpipeline.core.evaluation import metric_value, predict_for_metric
from ctpipeline.core.models import build_model

from conftest import make_flights_like


def with_model(cfg, type_, task="classification", **params):
    update = {"model": cfg.model.model_copy(update={"type": type_, "params": params})}
    if task == "regression":
        update["target"] = cfg.target.model_copy(update={"task": "regression", "positive_when": None})
        update["evaluation"] = cfg.evaluation.model_copy(update={"metric": "mae"})
    return cfg.model_copy(update=update)


@pytest.fixture(scope="module")
def frames():
    return make_flights_like(3000, seed=5, months=2), make_flights_like(1500, seed=6, start="2013-03-01")


@pytest.mark.parametrize(
    "type_, params",
    [("xgboost", {"n_estimators": 30}), ("hist_gradient_boosting", {"max_iter": 30}), ("logistic_regression", {})],
)
def test_classifiers_learn_something(flights_cfg, frames, type_, params):
    cfg = with_model(flights_cfg, type_, **params)
    train, test = frames
    model = build_model(cfg).fit(*make_xy(train, cfg))
    X, y = make_xy(test, cfg)
    X.loc[X.index[:20], "carrier"] = "ZZ"  # a carrier never seen in training
    X.loc[X.index[20:40], "temp"] = np.nan
    scores = predict_for_metric(model, X, "classification")
    assert scores.shape == (len(X),) and ((scores >= 0) & (scores <= 1)).all()
    assert metric_value("roc_auc", y, scores) > 0.55


@pytest.mark.parametrize(
    "type_, params",
    [
        ("xgboost", {"n_estimators": 40, "max_depth": 3}),
        ("hist_gradient_boosting", {"max_iter": 40, "max_depth": 3}),
        ("ridge", {}),
    ],
)
def test_regressors_beat_the_mean(flights_cfg, frames, type_, params):
    cfg = with_model(flights_cfg, type_, task="regression", **params)
    train, test = frames
    Xt, yt = make_xy(train, cfg)
    model = build_model(cfg).fit(Xt, yt)
    X, y = make_xy(test, cfg)
    pred = predict_for_metric(model, X, "regression")
    assert metric_value("rmse", y, pred) < metric_value("rmse", y, np.full(len(y), yt.mean()))


@pytest.mark.parametrize(
    "labels",
    [
        lambda y: y.astype(int),
        lambda y: y.astype(bool),
        lambda y: np.where(y, 2, 1),
        lambda y: np.where(y, 1, -1),
        lambda y: np.where(y, "late", "on-time"),
    ],
    ids=["0/1", "bool", "1/2", "-1/1", "strings"],
)
@pytest.mark.parametrize("n", [7, 300, 5000])
def test_the_auc_is_scikit_learns_roc_auc_score_to_the_last_bit(labels, n):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(n)
    for ties in (None, 2, 3):  # continuous scores, and scores with many ties
        scores = rng.random(n) if ties is None else rng.random(n).round(ties - 1)
        y = labels(rng.random(n) < 0.3)
        y[:2] = labels(np.array([True, False]))  # both classes
        assert metric_value("roc_auc", y, scores) == roc_auc_score(y, scores)
    with pytest.raises(ValueError, match="NaN"):  # a model scoring NaN is an error either way
        metric_value("roc_auc", y, np.where(np.arange(n) == 0, np.nan, scores))


def test_metric_values_and_undefined_cases():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    assert metric_value("roc_auc", y, s) == 0.75
    assert metric_value("accuracy", y, s) == 0.75
    assert math.isnan(metric_value("roc_auc", np.array([1, 1]), np.array([0.2, 0.9])))
    assert math.isnan(metric_value("rmse", np.array([]), np.array([])))
    assert metric_value("rmse", np.array([1.0, 3.0]), np.array([2.0, 2.0])) == 1.0
    with pytest.raises(ValueError):
        metric_value("nope", y, s)
