"""Scoring a registered version on labelled rows, with every failure reported rather than raised."""

from __future__ import annotations

import pandas as pd

from ctpipeline.config.schema import PipelineConfig
from ctpipeline.core.evaluation import metric_value, predict_for_metric
from ctpipeline.core.results import Scored


def score_model(cfg: PipelineConfig, version: str, load, X: pd.DataFrame, y: pd.Series) -> Scored:
    """Load (`load()` returns the model) and score version `version`; errors go into `Scored.error`."""
    try:
        scores = predict_for_metric(load(), X, cfg.target.task)
        return Scored(version, scores, metric_value(cfg.evaluation.metric, y, scores))
    except Exception as exc:  # reported and handled by the policy, never fatal here
        return Scored(version, error=f"v{version} could not be loaded or scored: {type(exc).__name__}: {exc}")
