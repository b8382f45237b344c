"""Back-test: challenger and champion scored on the same windows of the new batch, per-slice scores, the guards'
measures (latency, size) and the two reference strategies (first model forever, newest model always)."""

from __future__ import annotations

import logging
import math
import pickle
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd

from ctpipeline.config.schema import PipelineConfig
from ctpipeline.core.backtest import run_backtest, slice_scores
from ctpipeline.core.data import labelled, make_xy
from ctpipeline.core.evaluation import predict_for_metric
from ctpipeline.core.policy import Decision, Evidence, decide
from ctpipeline.core.results import Evaluation, Scored

log = logging.getLogger(__name__)

ScoreVersion = Callable[[str, pd.DataFrame, pd.Series], Scored]


def latency_ms_per_1k(model, X: pd.DataFrame, task: str) -> float:
    sample = X.sample(n=1000, replace=len(X) < 1000, random_state=0)
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        predict_for_metric(model, sample, task)
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best


def model_mb(model) -> float:
    return len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6


def evaluate(
    cfg: PipelineConfig,
    model,
    eval_df: pd.DataFrame,
    champion: Scored | None,
    score_version: ScoreVersion,
    baseline_versions: Mapping[str, str | None],
    labelled_xy: tuple | None = None,
) -> Evaluation:
    """`champion`: the champion already scored on the labelled rows of `eval_df` (None without a champion).
    `baseline_versions`: baseline name -> registry version to score with `score_version` (reusing the champion's
    scores when it is that version). `labelled_xy`: ``labelled(eval_df)`` and its ``make_xy``, when the caller
    has them already."""
    if labelled_xy is None:
        df = labelled(eval_df, cfg)
        labelled_xy = (df, *make_xy(df, cfg))
    df, X, y = labelled_xy
    chal_scores = predict_for_metric(model, X, cfg.target.task)
    baselines = {}
    for name, version in baseline_versions.items():
        if version is None:
            continue
        same = champion is not None and champion.version == version
        baselines[name] = champion.metric if same else score_version(version, X, y).metric
    return evaluation_from_scores(cfg, model, df, y.to_numpy(), chal_scores, champion, baselines, X)


def evaluation_from_scores(
    cfg: PipelineConfig,
    model,
    df: pd.DataFrame,
    y,
    chal_scores,
    champion: Scored | None,
    baselines: Mapping[str, float | None],
    X_sample: pd.DataFrame,
) -> Evaluation:
    """The Evaluation from scores computed by either engine: `df` the labelled rows (time and slice columns), `y`
    their labels, `chal_scores` the challenger's and `champion.scores` the champion's on them (same order);
    `X_sample`: model inputs the latency guard times the model on."""
    metric, task, higher = cfg.evaluation.metric, cfg.target.task, cfg.evaluation.higher_is_better
    y = np.asarray(y)
    champ_scores = champion.scores if champion is not None else None
    err = f"champion {champion.error}" if champion is not None and champion.error else None
    bt = run_backtest(
        y, chal_scores, champ_scores, df[cfg.data.time_column], metric, higher, cfg.backtest, timezone=cfg.data.timezone
    )
    slices = []
    for sc in cfg.promotion.slices:
        if sc.column not in df.columns:
            log.warning("slice column %r is not in the batch; slice check skipped", sc.column)
            continue
        slices += slice_scores(df[sc.column], y, chal_scores, champ_scores, metric, higher, sc.column)
    return Evaluation(
        metric,
        champion.version if champion else None,
        len(y),
        bt,
        tuple(slices),
        err,
        latency_ms_per_1k(model, X_sample, task),
        model_mb(model),
        MappingProxyType(dict(baselines)),
        y,
        chal_scores,
        champ_scores,
    )


def make_decision(cfg: PipelineConfig, ev: Evaluation) -> Decision:
    """The promotion rule (`promotion:`) applied to the evaluation."""
    bt = ev.backtest
    pooled = {k: getattr(bt, k) for k in ("challenger", "ci_low", "ci_high", "confidence")}
    champion = bt.champion if ev.champion_version else None
    evidence = Evidence(
        **pooled,
        champion=champion,
        champion_version=ev.champion_version,
        champion_error=ev.champion_error,
        slices=ev.slices,
        latency_ms_per_1k=ev.latency_ms_per_1k,
        model_mb=ev.model_mb,
    )
    return decide(evidence, cfg.promotion, ev.metric, cfg.evaluation.higher_is_better)
