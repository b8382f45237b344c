"""The `engine:` and `spark:` sections: which engine moves the data (pandas in one process, or Apache Spark)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ctpipeline.config.sections import Section

Engine = Literal["pandas", "spark"]

# Model types with an estimator that trains inside Spark (xgboost.spark); the others are pandas-only.
SPARK_MODEL_TYPES = {"xgboost"}

# Spark settings ctpipeline always sets (tests and the embedded default); `spark.conf` may override each.
SPARK_DEFAULT_CONF = {
    "spark.sql.session.timeZone": "UTC",  # timestamps reach pandas as UTC, as `ctp land` writes them
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


class SparkConfig(Section):
    """Where Spark runs (`engine: spark`): a master URL and Spark settings; no secret belongs here."""

    master: str = Field(
        default="local[*]",
        description="Spark master URL: local[*] (embedded), local[2], spark://host:7077, yarn, k8s://https://...",
    )
    app_name: str = Field(default="ctpipeline", description="spark.app.name of the driver's session.")
    conf: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Extra Spark settings (spark.executor.memory, spark.sql.shuffle.partitions, ...); secrets such "
        "as S3 keys come from the environment (spark-defaults, AWS_* variables), never from here.",
    )
    num_workers: int | None = Field(
        default=None, ge=1, description="XGBoost workers (Spark tasks) in training. Default: spark.default.parallelism."
    )
    driver_sample_rows: int = Field(
        default=200_000,
        ge=1000,
        description="Rows pulled to the driver to fit the feature encoders, check the batch's model inputs and "
        "time the model (seeded); the rest stays in Spark.",
    )

    @field_validator("conf")
    @classmethod
    def _no_secret_keys(cls, v: dict) -> dict:
        secret = [k for k in v if any(w in k.lower() for w in ("secret", "password", "token", "access.key"))]
        if secret:
            raise ValueError(
                f"{secret[0]!r} looks like a secret: secrets never go in YAML; give Spark them from the environment "
                "(e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or spark-defaults.conf on the cluster)"
            )
        return v


def engine_problems(engine: str, model_type: str) -> list[tuple[str, str]]:
    """(key, reason) for a model type that has no Spark estimator under `engine: spark`."""
    if engine == "spark" and model_type not in SPARK_MODEL_TYPES:
        return [
            (
                "model.type",
                f"{model_type!r} has no Spark estimator: with engine 'spark' use one of {sorted(SPARK_MODEL_TYPES)} "
                "(xgboost.spark), or set engine: pandas",
            )
        ]
    return []
