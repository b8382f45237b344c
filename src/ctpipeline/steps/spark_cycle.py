"""The cycle's monitor, train and back-test stages under `engine: spark` (`steps.cycle` hands them over): the data
work in Spark, then the same pure rules and the same logging as the pandas engine's stages."""

from __future__ import annotations

import logging
import time

import pandas as pd

from ctpipeline import faults
from ctpipeline.config.schema import PipelineConfig
from ctpipeline.core.data import as_utc, labelled, make_xy
from ctpipeline.core.results import Evaluation, Monitoring, Skipped, Trained
from ctpipeline.steps.cycle import baseline_versions, monitored
from ctpipeline.steps.evaluate import evaluation_from_scores
from ctpipeline.steps.spark_engine import SparkBatch, sample_positions_for, score_champion, score_versions, session_for
from ctpipeline.steps.train import training_cut, usable_window, window_names

log = logging.getLogger(__name__)

__all__ = ["backtest", "drift_samples", "monitor", "train", "train_on_spark"]


def _landed(p, names) -> tuple[list, list[str]]:
    paths = [p.landing_dir / f"{n}.parquet" for n in names]
    return [x for x in paths if x.exists()], [n for n, x in zip(names, paths, strict=True) if not x.exists()]


def drift_samples(cfg: PipelineConfig, spark, ref_paths, sb: SparkBatch) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """(reference, current) drift samples pulled from Spark: the rows `core.drift.plan_drift` draws from the same
    data with the same seed (reference first, then current), so the comparison is the pandas engine's."""
    import pyarrow.parquet as pq

    from ctpipeline.adapters.spark.frames import read_parquet, rows_at
    from ctpipeline.core.drift.sampling import sample_positions

    cols = cfg.drift.columns
    wanted = [c for c in cfg.features.columns if cols is None or c in cols]
    if not ref_paths:  # nothing to compare with: no drift is measured
        return [], pd.DataFrame()
    import numpy as np

    rng = np.random.default_rng(cfg.training.seed)
    n_ref = sum(pq.ParquetFile(x).metadata.num_rows for x in ref_paths)
    ref_pos = sample_positions(n_ref, cfg.drift.max_rows, rng)
    cur_pos = sample_positions(sb.rows, cfg.drift.max_rows, rng)
    ref = read_parquet(spark, ref_paths)
    present = [c for c in wanted if c in ref.columns]
    return [rows_at(ref, ref_pos, present)], rows_at(sb.sdf, cur_pos, [c for c in wanted if c in sb.sdf.columns])


def monitor(run) -> Monitoring:
    """`steps.cycle.monitor` on Spark: champion scored in Spark, drift on samples pulled from it."""
    p, df, sb = run.p, run.checked.df, run.checked.spark
    tags = p.registry.get_version_tags(run.champion) if run.champion else {}
    ref_batches = tuple(b for b in tags.get("ctp.train_batches", "").split(",") if b)
    ref_paths, _ = _landed(p, list(ref_batches))
    has_labels = len(labelled(df, p.cfg)) > 0
    champion = None
    if run.champion and has_labels:
        v = run.champion.version
        champion = score_champion(p.cfg, sb, v, lambda: p.models.load_model(p.registry.get_version(v)))
    reference, current = drift_samples(p.cfg, session_for(p.cfg, p.config_file), ref_paths, sb)
    # monitor_step adds the rows of the frame it is given: the rest of the batch is counted here
    return monitored(run, current, reference, ref_batches, tags, champion, unseen_rows=sb.rows - len(current))


def train(run) -> Trained | Skipped:
    """`steps.cycle.train` on Spark: the window read by Spark, the booster trained by xgboost.spark."""
    p = run.p
    names = window_names(p.cfg, p.batch_log.accepted(), run.batch.name)
    paths, missing = _landed(p, names)
    for name in missing:
        log.warning("accepted batch %s is no longer in %s; training without it", name, p.landing_dir)
    kept = [n for n in names if n not in missing]
    trained = train_on_spark(p.cfg, session_for(p.cfg, p.config_file), run.batch.name, run.checked.df, paths, kept)
    if isinstance(trained, Skipped):
        run.update(reasons=(trained.reason,))
    faults.checkpoint("trained")
    return trained


def train_on_spark(cfg: PipelineConfig, spark, batch: str, batch_frame: pd.DataFrame, paths, names: list[str]):
    """`steps.train.train_challenger`'s rules with the window in Spark; the checks that need the rows' values
    (label classes, unusable features) read a seeded driver sample plus a row per category value."""
    from ctpipeline.adapters.spark.frames import ROW, rows_at, training_window
    from ctpipeline.adapters.spark.scoring import labelled_rows
    from ctpipeline.adapters.spark.training import category_rows, fit_spark_xgboost

    if not paths:
        return Skipped("not enough accepted data before this batch to train a challenger yet")
    tcol = cfg.data.time_column
    cut = training_cut(cfg, batch, batch_frame)
    if isinstance(cut, Skipped):
        return cut
    cut = cut.tz_convert("UTC").to_pydatetime()
    window = training_window(spark, paths, tcol, cfg.training.max_train_rows, cut)
    where = f"training window {','.join(names)}"
    lab = labelled_rows(window, cfg)
    n_rows = lab.count()
    positions = sample_positions_for(n_rows, cfg.spark.driver_sample_rows, cfg.training.seed)
    cols = [c for c in window.columns if c != ROW]
    sample = rows_at(lab, positions, cols, tcol)
    if cfg.features.categorical and positions is not None:
        sample = pd.concat([sample, rows_at(category_rows(lab, cfg.features.categorical, cols), None, cols, tcol)])
    checked = usable_window(cfg, sample, n_rows, where)
    if isinstance(checked, Skipped):
        return checked
    X = checked[0]
    workers = cfg.spark.num_workers or spark.sparkContext.defaultParallelism
    t0 = time.perf_counter()
    try:
        model = fit_spark_xgboost(cfg, lab, sample, workers)
    except (TypeError, ValueError) as exc:
        log.warning("%s: the estimator refused the data: %s", where, exc)
        return Skipped(f"{where}: {cfg.model.type} refused the data ({type(exc).__name__}: {exc})")
    finally:
        window.unpersist()
    secs = time.perf_counter() - t0
    log.info(
        "trained %s (xgboost.spark, %d workers) on %d rows from %s in %.1fs",
        cfg.model.type,
        workers,
        n_rows,
        names,
        secs,
    )
    end = str(as_utc(sample[tcol]).max()) if len(sample) else None
    return Trained(model, n_rows, tuple(names), secs, X.head(5), end)


def backtest(run, trained: Trained, mon: Monitoring) -> Evaluation:
    """`steps.cycle.backtest` on Spark: challenger and baselines scored in Spark, the bootstrap on the driver."""
    from ctpipeline.adapters.spark.scoring import LABEL

    p, cfg, sb = run.p, run.p.cfg, run.checked.spark
    versions = baseline_versions(run)
    champion = mon.champion if run.champion else None
    models, baselines = {"challenger": trained.model}, {}
    for name, version in versions.items():
        if version is None:
            continue
        if champion is not None and champion.version == version:
            baselines[name] = champion.metric
            continue
        try:
            models[name] = p.models.load_model(p.registry.get_version(version))
        except Exception as exc:  # as `steps.scoring.score_model`: reported, never fatal
            log.warning("baseline %s (v%s) could not be loaded: %s", name, version, exc)
            baselines[name] = None
    scored = score_versions(cfg, sb, models)
    df = labelled(run.checked.df, cfg)
    if len(df) != len(scored):
        raise RuntimeError(f"Spark scored {len(scored)} labelled rows, the driver's frame has {len(df)}")
    from ctpipeline.core.evaluation import metric_value

    y = scored[LABEL].to_numpy().astype("int8" if cfg.target.task == "classification" else "float64")
    for name in models.keys() - {"challenger"}:
        baselines[name] = metric_value(cfg.evaluation.metric, y, scored[name].to_numpy())
    X_sample, _ = make_xy(labelled(sb.sample, cfg), cfg)
    ev = evaluation_from_scores(
        cfg, trained.model, df, y, scored["challenger"].to_numpy(), champion, baselines, X_sample
    )
    run.result = run.result.with_evaluation(trained, ev)
    faults.checkpoint("backtested")
    return ev
