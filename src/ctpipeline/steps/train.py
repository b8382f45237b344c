"""Train: fit the configured model on the training window, which ends `backtest.gap` before the first back-test
window of the new batch."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from ctpipeline.config.schema import PipelineConfig
from ctpipeline.core.backtest import assign_windows
from ctpipeline.core.data import as_utc, labelled, make_xy, training_frame
from ctpipeline.core.gpu import require_cuda
from ctpipeline.core.models import build_model
from ctpipeline.core.results import Skipped, Trained
from ctpipeline.errors import DataError

log = logging.getLogger(__name__)


def window_names(cfg: PipelineConfig, accepted: list[str], batch: str) -> list[str]:
    """The newest `training.window_batches` accepted batches before `batch`."""
    return [b for b in accepted if b < batch][-cfg.training.window_batches :]


def window_problem(X: pd.DataFrame, y: pd.Series) -> str | None:
    """Why the training window's model inputs would give a broken or silently worse model, or None."""
    empty = [c for c in X.columns if X[c].isna().all()]
    if empty:
        return f"features {empty} are null in every row of the training window"
    numeric = X.select_dtypes("number")
    infinite = [c for c in numeric.columns if np.isinf(numeric[c].to_numpy(dtype="float64")).any()]
    if infinite:
        return f"features {infinite} hold infinite values in the training window"
    return None


def train_challenger(
    cfg: PipelineConfig,
    batch: str,
    batch_df: pd.DataFrame,
    window: list[pd.DataFrame],
    names: list[str],
    labelled_batch: pd.DataFrame | None = None,
) -> Trained | Skipped:
    """Fit on `window` (the frames of batches `names`); Skipped with the reason when there is nothing (usable) to
    train on or nothing to judge the challenger on. The new batch was checked before it got here
    (`ingest.check_quality` quarantines an unusable one); a window that is unusable (batches accepted before those
    checks) or that the estimator refuses is Skipped with the reason: the new batch is not at fault, and no model
    is better than a broken one. `labelled_batch`: ``labelled(batch_df)``, when the caller has it already."""
    frame = training_frame(window, cfg)
    if len(frame) == 0:
        return Skipped("not enough accepted data before this batch to train a challenger yet")
    cut = training_cut(cfg, batch, batch_df, labelled_batch)
    if isinstance(cut, Skipped):
        return cut
    before = (as_utc(frame[cfg.data.time_column]) < cut).to_numpy()
    if not before.all():  # only then a copy: a window of earlier batches usually lies wholly before the cut
        frame = frame[before]
    where = f"training window {','.join(names)}"
    checked = usable_window(cfg, frame, None, where)
    if isinstance(checked, Skipped):
        return checked
    return _fit(cfg, *checked, names, frame, where)


def training_cut(
    cfg: PipelineConfig, batch: str, batch_df: pd.DataFrame, labelled_batch: pd.DataFrame | None = None
) -> pd.Timestamp | Skipped:
    """The time before which training rows must lie (the first back-test window's start, less `backtest.gap`), or
    Skipped when the new batch has no labelled rows to judge a challenger on (`labelled_batch`: its labelled rows,
    when the caller has them already)."""
    tcol = cfg.data.time_column
    evald = labelled(batch_df, cfg) if labelled_batch is None else labelled_batch
    if len(evald) == 0:
        return Skipped(f"batch {batch} has no labelled rows: no challenger can be judged on it")
    _, edges = assign_windows(evald[tcol], cfg.backtest)
    first = max(edges[0][0], as_utc(evald[tcol]).min())  # fixed windows may reach before it
    return first - pd.Timedelta(cfg.backtest.gap)


def usable_window(cfg: PipelineConfig, frame: pd.DataFrame, n_rows: int | None, where: str):
    """(X, y) of the training rows in `frame`, or Skipped with the reason: unusable inputs, fewer labelled rows
    than `training.min_train_rows` (`n_rows`: the window's count when `frame` is only a sample of it), one class.
    Both engines check their window with it (Spark on its driver sample)."""
    try:
        X, y = make_xy(frame, cfg)
    except (DataError, TypeError, ValueError) as exc:
        return Skipped(f"{where} cannot be used: {exc}")
    n_rows = len(X) if n_rows is None else n_rows
    if n_rows < cfg.training.min_train_rows:
        return Skipped(
            f"only {n_rows} labelled rows in {where} (< training.min_train_rows {cfg.training.min_train_rows}): "
            "accumulating"
        )
    if cfg.target.task == "classification" and y.nunique() < 2:
        return Skipped(f"{where} holds a single class: accumulating")
    if problem := window_problem(X, y):
        return Skipped(f"{where} cannot be used: {problem}")
    return X, y


def _fit(cfg: PipelineConfig, X: pd.DataFrame, y: pd.Series, names: list[str], frame, where: str):
    if cfg.model.device == "cuda":
        require_cuda()  # never a silent CPU fallback
    model = build_model(cfg)
    t0 = time.perf_counter()
    try:
        model.fit(X, y)
    except (TypeError, ValueError) as exc:  # the estimator refused the data: say why, train nothing
        log.warning("%s: the estimator refused the data: %s", where, exc)
        return Skipped(f"{where}: {cfg.model.type} refused the data ({type(exc).__name__}: {exc})")
    secs = time.perf_counter() - t0
    log.info("trained %s on %d rows from %s in %.1fs", cfg.model.type, len(X), names, secs)
    tcol = cfg.data.time_column
    end = str(as_utc(frame[tcol]).max()) if len(frame) else None
    return Trained(model, len(X), tuple(names), secs, X.head(5), end)
