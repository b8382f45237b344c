"""`engine: spark`: the cycle's data work done by Spark, its decisions by the same code as the pandas engine.

What moves: the batch and the training window stay Spark DataFrames (`adapters.spark`); the gate runs on GX's
Spark engine; the driver gets a narrow frame of the batch (`SparkBatch.frame`: row position, time, label, slice
columns), a seeded sample of the raw rows (`SparkBatch.sample`: the batch's usability checks, the feature
encoders, the latency guard), the drift samples and the models' scores. What does not: `core.triggers`,
`core.backtest`, `core.policy`, the ledger and the registry see the same inputs as with pandas.

pyspark is imported only through `adapters.spark`, and only when a cycle runs with `engine: spark`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ctpipeline.config.schema import PipelineConfig
from ctpipeline.core.data import labelled
from ctpipeline.core.evaluation import metric_value
from ctpipeline.core.results import Scored
from ctpipeline.errors import DataError
from ctpipeline.store.landing import Batch

log = logging.getLogger(__name__)

__all__ = ["SparkBatch", "read_batch", "sample_positions_for", "score_versions", "session_for"]


@dataclass(frozen=True)
class SparkBatch:
    """A landed batch on Spark: the DataFrame (cached), its row count, and what the driver holds of it."""

    sdf: Any = field(repr=False, compare=False)
    rows: int
    sample: pd.DataFrame = field(repr=False, compare=False)

    def release(self) -> None:
        """Drop the batch's cached blocks once the cycle is over (a long replay would otherwise keep every one); a
        Spark that is gone already has nothing left to drop."""
        try:
            self.sdf.unpersist()
        except Exception as exc:  # the cycle's outcome stands
            log.warning("could not release the batch's Spark cache: %s: %s", type(exc).__name__, exc)

    def validate(self, suite_path: Path):
        from ctpipeline.adapters.gx.spark import validate_spark
        from ctpipeline.adapters.spark.frames import ROW

        return validate_spark(self.sdf, suite_path, drop=(ROW,))


def session_for(cfg: PipelineConfig, file: str | Path = "<config>"):
    from ctpipeline.adapters.spark.session import spark_session

    return spark_session(cfg.spark, str(file))


def sample_positions_for(n_rows: int, max_rows: int, seed: int):
    from ctpipeline.core.drift.sampling import sample_positions

    return sample_positions(n_rows, max_rows, np.random.default_rng(seed))


def narrow_columns(cfg: PipelineConfig, columns) -> list[str]:
    """The batch's columns the driver keeps for every row: time, label, slice columns."""
    wanted = [cfg.data.time_column, cfg.target.column, *(s.column for s in cfg.promotion.slices)]
    return [c for c in dict.fromkeys(wanted) if c in columns]


def read_batch(batch: Batch, cfg: PipelineConfig, file: str | Path = "<config>") -> tuple[pd.DataFrame, SparkBatch]:
    """(the narrow driver frame, the SparkBatch) of landed `batch`; DataError for a file Spark cannot read."""
    from ctpipeline.adapters.spark.frames import collect, read_parquet, rows_at

    spark = session_for(cfg, file)
    try:
        sdf = read_parquet(spark, [batch.path]).cache()
        rows = sdf.count()
        frame = collect(sdf, narrow_columns(cfg, sdf.columns), cfg.data.time_column)
    except Exception as exc:  # Spark raises its own types (AnalysisException, Py4JJavaError) for a bad file
        raise DataError(f"batch {batch.name}: Spark cannot read {batch.path}: {str(exc).splitlines()[0]}") from None
    positions = sample_positions_for(rows, cfg.spark.driver_sample_rows, cfg.training.seed)
    sample = rows_at(sdf, positions, list(sdf.columns), cfg.data.time_column)
    return frame, SparkBatch(sdf, rows, sample)


def score_versions(cfg: PipelineConfig, sb: SparkBatch, models: dict[str, object]) -> pd.DataFrame:
    """Scores of `models` on the batch's labelled rows, in the order of `labelled(frame)`."""
    from ctpipeline.adapters.spark.scoring import score_rows

    return score_rows(sb.sdf, cfg, models)


def score_champion(cfg: PipelineConfig, sb: SparkBatch, version: str, load) -> Scored:
    """`steps.scoring.score_model` on Spark: the version loaded on the driver, scored where the rows are; a
    model that cannot be loaded or scores no sample row is reported in `Scored.error`, as with pandas."""
    from ctpipeline.adapters.spark.scoring import LABEL
    from ctpipeline.core.data import make_xy
    from ctpipeline.core.evaluation import predict_for_metric

    try:
        model = load()
        lab = labelled(sb.sample, cfg)
        predict_for_metric(model, make_xy(lab.head(100), cfg)[0], cfg.target.task)
    except Exception as exc:
        return Scored(version, error=f"v{version} could not be loaded or scored: {type(exc).__name__}: {exc}")
    scored = score_versions(cfg, sb, {"champion": model})
    scores = scored["champion"].to_numpy()
    return Scored(version, scores, metric_value(cfg.evaluation.metric, scored[LABEL].to_numpy(), scores))
