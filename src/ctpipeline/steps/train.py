"""Train: fit the configured model on the training window, which ends `backtest.gap` before the first back-test
window of the new batch."""

from __future__ import annotations

import logging
import time

import pandas as pd

from ctpipeline.config.schema import PipelineConfig
from ctpipeline.core.backtest import assign_windows
from ctpipeline.core.data import labelled, make_xy, training_frame
from ctpipeline.core.models import build_model
from ctpipeline.core.results import Skipped, Trained

log = logging.getLogger(__name__)


def window_names(cfg: PipelineConfig, accepted: list[str], batch: str) -> list[str]:
    """The newest `training.window_batches` accepted batches before `batch`."""
    return [b for b in accepted if b < batch][-cfg.training.window_batches :]


def train_challenger(
    cfg: PipelineConfig, batch: str, batch_df: pd.DataFrame, window: list[pd.DataFrame], names: list[str]
) -> Trained | Skipped:
    """Fit on `window` (the frames of batches `names`); Skipped with the reason when there is nothing to train on
    or nothing to judge the challenger on."""
    frame = training_frame(window, cfg)
    if len(frame) == 0:
        return Skipped("not enough accepted data before this batch to train a challenger yet")
    tcol = cfg.data.time_column
    evald = labelled(batch_df, cfg)
    if len(evald) == 0:
        return Skipped(f"batch {batch} has no labelled rows: no challenger can be judged on it")
    _, edges = assign_windows(evald[tcol], cfg.backtest)
    first = max(edges[0][0], pd.to_datetime(evald[tcol], utc=True).min())  # fixed windows may reach before it
    frame = frame[pd.to_datetime(frame[tcol], utc=True) < first - pd.Timedelta(cfg.backtest.gap)]
    X, y = make_xy(frame, cfg)
    if len(X) < cfg.training.min_train_rows:
        return Skipped(
            f"only {len(X)} labelled rows in training window {','.join(names)} "
            f"(< training.min_train_rows {cfg.training.min_train_rows}): accumulating"
        )
    if cfg.target.task == "classification" and y.nunique() < 2:
        return Skipped(f"training window {','.join(names)} holds a single class: accumulating")
    model = build_model(cfg)
    t0 = time.perf_counter()
    model.fit(X, y)
    secs = time.perf_counter() - t0
    log.info("trained %s on %d rows from %s in %.1fs", cfg.model.type, len(X), names, secs)
    end = str(pd.to_datetime(frame[tcol], utc=True).max()) if len(frame) else None
    return Trained(model, len(X), tuple(names), secs, X.head(5), end)
