"""Batch scoring with a registered version (the champion by default): raw rows in, the rows plus a score out.

The model is the whole logged Pipeline (feature transforms included), so the rows are passed as they are; the
model selects and casts the columns it needs."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ctpipeline.adapters.mlflow import ModelRef
from ctpipeline.core.evaluation import predict_for_metric
from ctpipeline.errors import DataError, RegistryError
from ctpipeline.steps.context import Pipeline

log = logging.getLogger(__name__)


def resolve_version(p: Pipeline, version: str | None = None) -> ModelRef:
    """The given version, else the champion; RegistryError naming what is missing."""
    ref = p.registry.get_version(version) if version else p.registry.champion()
    if ref is None:
        what = f"version {version}" if version else f"champion (models:/{p.name}@champion)"
        raise RegistryError(f"{p.name} has no {what}: run cycles first (`ctp replay`) or pass --version")
    return ref


def score_rows(p: Pipeline, df: pd.DataFrame, version: str | None = None, column: str = "score"):
    """`df` with a `column` of scores (positive-class probability for classification, the prediction for
    regression) from `version` or the champion, and the version used."""
    if column in df.columns:
        raise DataError(f"the input already has a column {column!r}; choose another with --column")
    ref = resolve_version(p, version)
    model = p.models.load_model(ref)
    try:
        scores = predict_for_metric(model, df, p.cfg.target.task) if len(df) else []
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{ref.uri} cannot score these rows: {exc}") from None
    out = df.copy()
    out[column] = np.asarray(scores, dtype="float64")
    log.info("scored %d rows with %s", len(df), ref.uri)
    return out, ref
