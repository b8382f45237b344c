"""Training inside Spark: the model the pandas engine would log, with its booster trained by ``xgboost.spark``.

1. the Pipeline's front (`core.features` casts and datetime parts, the preprocessing ColumnTransformer) is built
   by `core.models.build_model` and fitted on the driver, on a seeded sample plus one row per category value
   present in the window (so the ordinal codes are those a fit on the whole window gives);
2. that front transforms the window inside Spark (``mapInPandas``) into float columns and a label;
3. ``SparkXGBClassifier`` / ``SparkXGBRegressor`` trains on them with `num_workers` tasks;
4. the trained booster goes into the sklearn estimator `build_model` made, and the Pipeline (front + estimator)
   is what the cycle logs: an ordinary MLflow sklearn/pyfunc model that scores pandas rows.
"""

from __future__ import annotations

import logging
import pickle

import pandas as pd

from ctpipeline.config.schema import PipelineConfig

log = logging.getLogger(__name__)

__all__ = ["category_rows", "fit_spark_xgboost", "xgboost_params"]

LABEL = "__ctp_label"


def category_rows(sdf, columns: list[str], keep: list[str]):
    """One row of `sdf` (columns `keep`) for each value of each categorical column in `columns`."""
    out = None
    for c in columns:
        part = sdf.dropDuplicates([c]).select(*[f"`{k}`" for k in keep])
        out = part if out is None else out.unionByName(part)
    return out


def xgboost_params(estimator) -> dict:
    """The parameters `core.models` set on the sklearn estimator (defaults and YAML), which SparkXGB* takes under
    the same names; XGBoost's own defaults (objective, n_jobs, ...) are left to xgboost.spark."""
    defaults = type(estimator)().get_params()
    params = {k: v for k, v in estimator.get_params().items() if v is not None and defaults.get(k) != v}
    for unsupported in ("n_jobs", "nthread", "objective", "missing"):  # missing: NaN on both sides
        params.pop(unsupported, None)
    return params


def _transformer(cfg: PipelineConfig, blob, n_features: int):
    def transform(parts):
        from ctpipeline.core.data import make_xy, utc_times

        front = pickle.loads(blob.value)
        for pdf in parts:
            if len(pdf) == 0:
                continue
            X, y = make_xy(utc_times(pdf.reset_index(drop=True), cfg.data.time_column), cfg)
            Z = front.transform(X)
            out = pd.DataFrame(Z, columns=[f"f{i}" for i in range(n_features)]).astype("float64")
            out[LABEL] = y.to_numpy().astype("float64")
            yield out

    return transform


def fit_spark_xgboost(cfg: PipelineConfig, window, sample: pd.DataFrame, num_workers: int):
    """The fitted sklearn Pipeline (`core.models.build_model`'s) with a booster trained by xgboost.spark on the
    labelled rows of Spark DataFrame `window`; `sample`: the driver's rows (raw columns) the front is fitted on."""
    from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor

    from ctpipeline.core.data import make_xy
    from ctpipeline.core.models import build_model

    model = build_model(cfg)
    front, estimator = model[:-1], model.steps[-1][1]
    Xs, ys = make_xy(sample, cfg)
    front.fit(Xs, ys)
    n = front.transform(Xs.head(2)).shape[1]
    spark = window.sparkSession
    blob = spark.sparkContext.broadcast(pickle.dumps(front, protocol=pickle.HIGHEST_PROTOCOL))
    schema = ", ".join([*(f"f{i} double" for i in range(n)), f"{LABEL} double"])
    try:
        features = window.where(window[f"`{cfg.target.column}`"].isNotNull()).mapInPandas(
            _transformer(cfg, blob, n), schema
        )
        cls = SparkXGBClassifier if cfg.target.task == "classification" else SparkXGBRegressor
        params = xgboost_params(estimator)
        spark_model = cls(
            features_col=[f"f{i}" for i in range(n)],
            label_col=LABEL,
            num_workers=num_workers,
            force_repartition=True,  # a barrier stage takes no union of files: one shuffle to num_workers parts
            **params,
        ).fit(features)
    finally:
        blob.unpersist()
    booster = spark_model.get_booster()
    booster.feature_names = None  # the sklearn pipeline hands the booster an unnamed float matrix
    booster.feature_types = None
    estimator.load_model(bytearray(booster.save_raw(raw_format="ubj")))
    return model
