"""The frozen results the steps of a cycle hand to each other (plain data: frames, arrays, fitted models)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ctpipeline.core.backtest import Backtest, SliceScore
from ctpipeline.core.drift import DriftResult
from ctpipeline.core.triggers import TriggerDecision


@dataclass(frozen=True)
class Scored:
    """A registered model version scored on labelled rows; `error` says why it could not be."""

    version: str
    scores: np.ndarray | None = field(default=None, repr=False, compare=False)
    metric: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Trained:
    """A challenger fitted on its training window."""

    model: Pipeline = field(repr=False, compare=False)  # the fitted scikit-learn Pipeline
    train_rows: int = 0
    train_batches: tuple[str, ...] = ()
    fit_seconds: float = 0.0
    input_example: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    train_end: str | None = None


@dataclass(frozen=True)
class Skipped:
    """No challenger this cycle, and why (nothing to train on yet, nothing to judge it on)."""

    reason: str


@dataclass(frozen=True)
class Monitoring:
    """Drift of the batch against the champion's training window, the champion's metric on the batch, and
    whether that triggers retraining."""

    reference_batches: tuple[str, ...]
    drift: DriftResult | None  # None without a reference
    champion: Scored | None
    champion_reference_metric: float | None
    decision: TriggerDecision

    @property
    def champion_metric(self) -> float | None:
        return self.champion.metric if self.champion else None


@dataclass(frozen=True)
class Evaluation:
    """Challenger and champion scored on the back-test windows of the new batch, and the guards' measures."""

    metric: str
    champion_version: str | None
    rows: int
    backtest: Backtest
    slices: tuple[SliceScore, ...] = ()
    champion_error: str | None = None
    latency_ms_per_1k: float | None = None
    model_mb: float | None = None
    baselines: Mapping[str, float | None] = field(default_factory=lambda: MappingProxyType({}))
    y: np.ndarray | None = field(default=None, repr=False, compare=False)
    challenger_scores: np.ndarray | None = field(default=None, repr=False, compare=False)
    champion_scores: np.ndarray | None = field(default=None, repr=False, compare=False)
