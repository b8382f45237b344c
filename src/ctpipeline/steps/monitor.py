"""Monitor: drift of the new batch against the champion's training window, the champion's metric on it, and
the trigger rules' verdict on whether to retrain."""

from __future__ import annotations

import logging
from datetime import datetime

import pandas as pd

from ctpipeline.config.schema import PipelineConfig
from ctpipeline.core.results import Monitoring, Scored
from ctpipeline.core.triggers import Signals, should_retrain
from ctpipeline.errors import DataError

log = logging.getLogger(__name__)


def measure_drift(cfg: PipelineConfig, reference: list[pd.DataFrame], df: pd.DataFrame, html: bool | None = None):
    """Evidently drift of `df` against the `reference` frames taken end to end (never concatenated: only the
    sampled rows are copied); None when there is nothing to compare. `html`: render Evidently's HTML report now
    (None: as `drift.report_html` says; the cycle passes False and draws it later, `steps.renderers.drift_report`)."""
    from ctpipeline.adapters.evidently import detect_drift

    cols = cfg.drift.columns
    numeric = [c for c in cfg.features.numeric if cols is None or c in cols]
    categorical = [c for c in cfg.features.categorical if cols is None or c in cols]
    if not reference or not (numeric or categorical):
        return None
    try:
        ref = reference[0] if len(reference) == 1 else list(reference)
        return detect_drift(ref, df, numeric, categorical, cfg.drift, seed=cfg.training.seed, html=html)
    except DataError as exc:  # nothing comparable: monitoring goes on without a drift signal
        log.warning("drift not measured: %s", exc)
        return None


def monitor(
    cfg: PipelineConfig,
    df: pd.DataFrame,
    *,
    reference: list[pd.DataFrame],
    reference_batches: tuple[str, ...],
    champion: Scored | None,
    has_champion: bool,
    champion_reference_metric: float | None,
    rows_since_training: int,
    last_training: datetime | None,
    trigger: str,
    now: datetime,
    html: bool | None = None,
) -> Monitoring:
    """Gather the signals and apply `triggers:` to them (`html`: as for `measure_drift`)."""
    drift = measure_drift(cfg, reference, df, html)
    if drift is not None:
        log.info("drift vs champion's window %s: %s", ",".join(reference_batches), drift.summary().splitlines()[0])
    if champion is not None and champion.error:
        log.error("champion %s", champion.error)
    signals = Signals(
        drifted_share=drift.drifted_share if drift else None,
        drifted_columns=tuple(drift.drifted_columns()) if drift else (),
        champion_metric=champion.metric if champion else None,
        champion_reference_metric=champion_reference_metric,
        higher_is_better=cfg.evaluation.higher_is_better,
        rows_since_training=rows_since_training + len(df),
        manual=trigger == "manual",
        webhook=trigger == "webhook",
        scheduled=trigger == "schedule",
        no_champion=not has_champion,
    )
    decision = should_retrain(signals, cfg.triggers, last_training, now)
    return Monitoring(reference_batches, drift, champion, champion_reference_metric, decision)
