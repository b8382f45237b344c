"""Scoring a fitted model on labelled data with the configured metric, and the one gain in the metric's direction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def predict_for_metric(model, X: pd.DataFrame, task: str) -> np.ndarray:
    """Positive-class probabilities for classifiers, predictions for regressors."""
    if task == "classification":
        return model.predict_proba(X)[:, 1]
    return np.asarray(model.predict(X), dtype="float64")


def metric_value(metric: str, y_true, y_pred) -> float:
    """The metric on (labels, scores); NaN when it is undefined (e.g. AUC with one class)."""
    from sklearn import metrics as m

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred, dtype="float64")
    if len(y_true) == 0:
        return math.nan
    if metric in ("roc_auc", "average_precision"):
        labels = np.unique(y_true)
        if len(labels) < 2:
            return math.nan
        if metric == "roc_auc" and len(labels) == 2 and y_pred.ndim == 1:
            # what roc_auc_score computes for two classes (the greater one positive), without its input checks
            # again: the same value, in half the time (the slices and windows take it dozens of times a cycle)
            fpr, tpr, _ = m.roc_curve(y_true == labels[1], y_pred)
            return float(m.auc(fpr, tpr))
    if metric == "roc_auc":
        return float(m.roc_auc_score(y_true, y_pred))
    if metric == "average_precision":
        return float(m.average_precision_score(y_true, y_pred))
    if metric == "log_loss":
        return float(m.log_loss(y_true, np.clip(y_pred, 1e-15, 1 - 1e-15), labels=[0, 1]))
    if metric == "accuracy":
        return float(m.accuracy_score(y_true, y_pred >= 0.5))
    if metric == "f1":
        return float(m.f1_score(y_true, y_pred >= 0.5, zero_division=0))
    if metric == "rmse":
        return float(np.sqrt(m.mean_squared_error(y_true, y_pred)))
    if metric == "mae":
        return float(m.mean_absolute_error(y_true, y_pred))
    if metric == "r2":
        return float(m.r2_score(y_true, y_pred))
    raise ValueError(f"unknown metric {metric!r}")


def gain(challenger: float | None, champion: float | None, higher_is_better: bool) -> float | None:
    """How much better `challenger` is than `champion` (positive = better), whatever the metric's direction.

    The only place the direction is applied: the back-test, the slices, the floor and the margin all use it.
    None when either side is missing or NaN.
    """
    if challenger is None or champion is None or math.isnan(challenger) or math.isnan(champion):
        return None
    return challenger - champion if higher_is_better else champion - challenger
