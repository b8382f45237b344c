"""Fitted scikit-learn Pipelines scored inside Spark (``mapInPandas``): the models are broadcast once, each
partition is turned into model inputs by `core.data.make_xy` (the pandas engine's own rule) and scored by
`core.evaluation.predict_for_metric`; only (row position, label, one score per model) come back to the driver.

The executors unpickle the models: on a cluster they need the same scikit-learn/XGBoost and ctpipeline's
`core.features` importable (docs/spark.md).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping

import pandas as pd

from ctpipeline.adapters.spark.frames import ROW, collect
from ctpipeline.config.schema import PipelineConfig

LABEL = "__ctp_label"

__all__ = ["LABEL", "labelled_rows", "score_rows"]


def labelled_rows(sdf, cfg: PipelineConfig):
    """The rows of `sdf` that carry a label (the Spark side of `core.data.labelled`)."""
    return sdf.where(sdf[f"`{cfg.target.column}`"].isNotNull())


def _scorer(cfg: PipelineConfig, blob, names: list[str]):
    def score(parts):
        from ctpipeline.core.data import make_xy, utc_times
        from ctpipeline.core.evaluation import predict_for_metric

        models = pickle.loads(blob.value)
        for pdf in parts:
            if len(pdf) == 0:
                continue
            pdf = utc_times(pdf.reset_index(drop=True), cfg.data.time_column)
            X, y = make_xy(pdf, cfg)
            out = pd.DataFrame({ROW: pdf.loc[pdf[cfg.target.column].notna(), ROW].to_numpy(), LABEL: y.to_numpy()})
            for i, name in enumerate(names):
                out[f"s{i}"] = predict_for_metric(models[name], X, cfg.target.task).astype("float64")
            yield out

    return score


def score_rows(sdf, cfg: PipelineConfig, models: Mapping[str, object]) -> pd.DataFrame:
    """{ROW, LABEL, <name>: score} for the labelled rows of `sdf`, in `ROW` order (the order `collect` gives the
    driver's frame), each model scored where the rows are."""
    names = list(models)
    spark = sdf.sparkSession
    blob = spark.sparkContext.broadcast(pickle.dumps(dict(models), protocol=pickle.HIGHEST_PROTOCOL))
    schema = ", ".join([f"{ROW} long", f"{LABEL} double", *(f"s{i} double" for i in range(len(names)))])
    try:
        scored = labelled_rows(sdf, cfg).mapInPandas(_scorer(cfg, blob, names), schema)
        out = collect(scored)
    finally:
        blob.unpersist()
    return out.rename(columns={f"s{i}": name for i, name in enumerate(names)}).reset_index(drop=True)
