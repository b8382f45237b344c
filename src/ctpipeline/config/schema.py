"""Pipeline configuration: YAML validated into frozen pydantic models.

A typo fails at load time with the file, the key path and the reason (``ConfigError``, CLI exit 2).
Relative paths in a config file are resolved against the directory that holds the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from ctpipeline.config.engine import Engine, SparkConfig, engine_problems
from ctpipeline.config.loader import read_yaml, validation_problems
from ctpipeline.config.notifications import NotificationConfig
from ctpipeline.config.sections import (
    DataConfig,
    FeaturesConfig,
    JoinConfig,
    ModelConfig,
    ModelType,
    Section,
    SourceConfig,
    TargetConfig,
    no_inline_secret,
)
from ctpipeline.errors import ConfigError

Metric = Literal["roc_auc", "average_precision", "log_loss", "accuracy", "f1", "rmse", "mae", "r2"]
CLASSIFICATION_METRICS = {"roc_auc", "average_precision", "log_loss", "accuracy", "f1"}
REGRESSION_METRICS = {"rmse", "mae", "r2"}
LOWER_IS_BETTER = {"log_loss", "rmse", "mae"}

CLASSIFIERS = {"xgboost", "hist_gradient_boosting", "logistic_regression"}
REGRESSORS = {"xgboost", "hist_gradient_boosting", "ridge"}


class TrainingConfig(Section):
    window_batches: int = Field(default=3, ge=1, description="Train on this many most recent accepted batches.")
    min_train_rows: int = Field(default=500, ge=1, description="Below this, the cycle only accumulates data.")
    max_train_rows: int | None = Field(default=None, ge=1, description="Keep at most this many newest rows.")
    seed: int = 42


class EvaluationConfig(Section):
    metric: Metric = Field(default="roc_auc", description="Primary metric; its direction is implied.")

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER


class BacktestConfig(Section):
    """Rolling-origin back-test: challenger and champion scored on the same K most recent windows."""

    windows: int = Field(default=3, ge=1, le=52, description="K: how many recent time windows to score on.")
    window: str | None = Field(
        default=None,
        description="Length of each window as a pandas offset ('7D', '12h'). Default: the newest batch split "
        "into K equal time spans.",
    )
    gap: str = Field(default="0D", description="Training data ends this long before the first window (pandas offset).")
    bootstrap: int = Field(default=400, ge=50, le=20000, description="Paired bootstrap resamples for the interval.")
    confidence: float = Field(default=0.9, gt=0.5, lt=1.0, description="Two-sided confidence level of the interval.")
    block: Literal["none", "hour", "day", "week"] = Field(
        default="day",
        description="Resample whole blocks of time (rows within a day share weather and delays): "
        "'none' resamples rows.",
    )
    seed: int = 0
    baselines: Literal["replay", "always", "never"] = Field(
        default="replay",
        description="When to score the two baselines on the back-test's rows (the first model kept forever, and "
        "the newest challenger always promoted): 'replay' on replayed batches (`ctp replay`, `ctp demo`: their "
        "summary compares the policy with them), 'always' on every cycle, 'never'. They are recorded only "
        "(metrics baseline_*, the decision record) and change no decision; each costs a model scored on the rows.",
    )

    @field_validator("window", "gap")
    @classmethod
    def _offset(cls, v: str | None) -> str | None:
        if v is None:
            return v
        import pandas as pd

        try:
            td = pd.Timedelta(v)
        except ValueError:
            raise ValueError(f"not a time span: {v!r} (use e.g. '7D', '12h', '0D')") from None
        if td < pd.Timedelta(0):
            raise ValueError(f"must not be negative: {v!r}")
        return v


class SliceConfig(Section):
    column: str = Field(description="Column whose values define the slices (e.g. carrier).")
    tolerance: float = Field(default=0.02, ge=0, description="A slice may lose at most this much of the metric.")
    min_count: int = Field(default=500, ge=1, description="Slices with fewer labelled rows are reported, not judged.")


class PromotionConfig(Section):
    min_margin: float = Field(
        default=0.0, ge=0, description="The challenger must beat the champion by at least this much."
    )
    margin_type: Literal["absolute", "relative"] = Field(
        default="absolute", description="absolute: metric units; relative: fraction of the champion's metric."
    )
    noise_aware: bool = Field(
        default=True,
        description="Promote only when the lower bound of the bootstrap interval on the gain clears the margin "
        "(off: the point estimate must clear it).",
    )
    floor: float | None = Field(default=None, description="Never promote a model whose metric is worse than this.")
    slices: list[SliceConfig] = Field(default_factory=list, description="Per-slice non-regression checks.")
    max_latency_ms_per_1k: float | None = Field(default=None, gt=0, description="Prediction time per 1,000 rows.")
    max_model_mb: float | None = Field(default=None, gt=0, description="Serialized model size.")
    cold_start: Literal["promote", "register_only", "manual"] = Field(
        default="promote",
        description="No champion yet: promote the first model that passes the floor, only register it, "
        "or wait for approval.",
    )
    on_champion_error: Literal["reject", "promote"] = Field(
        default="reject",
        description="The champion cannot be loaded or scored: keep it (reject) or treat it as absent (promote "
        "if the challenger passes its own gates).",
    )
    approval: Literal["auto", "manual"] = Field(
        default="auto", description="manual: a passing challenger waits for `ctp approve` / `ctp reject`."
    )
    mode: Literal["live", "shadow"] = Field(
        default="live",
        description="shadow: evaluate and register challengers (alias 'shadow'), never move 'champion' or "
        "'challenger', and record what the policy would have done: trial a policy beside the live one.",
    )


class QualityConfig(Section):
    suite: str = Field(description="Great Expectations suite (JSON). Relative to the config file's folder.")


def _drift_config():
    from ctpipeline.core.drift import DriftConfig

    return DriftConfig


def _trigger_config():
    from ctpipeline.core.triggers import TriggerConfig

    return TriggerConfig


class MlflowConfig(Section):
    tracking_uri: str | None = Field(
        default=None, description="Server mode, e.g. http://127.0.0.1:5000. Default: SQLite in the state folder."
    )
    experiment: str | None = Field(default=None, description="Experiment name. Default: the pipeline name.")

    @field_validator("tracking_uri")
    @classmethod
    def _no_secret(cls, v: str | None) -> str | None:
        return no_inline_secret(v, "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)")


class PipelineConfig(Section):
    """One continuous-training pipeline: a dataset, a model and the rules around it."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Pipeline and registered-model name (letters, digits, '_', '.', '-').",
    )
    description: str = ""
    source: SourceConfig | None = None
    data: DataConfig
    target: TargetConfig
    features: FeaturesConfig
    model: ModelConfig
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    drift: _drift_config() = Field(default_factory=_drift_config(), description="Drift monitoring (Evidently).")
    triggers: _trigger_config() = Field(default_factory=_trigger_config(), description="When to retrain.")
    backtest: BacktestConfig = BacktestConfig()
    promotion: PromotionConfig = PromotionConfig()
    quality: QualityConfig
    mlflow: MlflowConfig = MlflowConfig()
    engine: Engine = Field(default="pandas", description="pandas: one process; spark: Apache Spark (docs/spark.md).")
    spark: SparkConfig = Field(default_factory=SparkConfig, description="engine: spark only: master and settings.")
    notifications: list[NotificationConfig] = Field(
        default_factory=list,
        description="Where promotions, gate rejections, waits for approval and failed runs are sent (Apprise).",
    )

    # Set by load_config; not part of the YAML.
    config_dir: Path | None = Field(default=None, exclude=True, description="(internal)")

    @field_validator("config_dir")
    @classmethod
    def _internal(cls, v: Path | None) -> Path | None:
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> PipelineConfig:
        t = self.target.column
        if t in self.features.columns:
            raise ValueError(f"target column {t!r} is listed as a feature")
        if self.data.time_column in self.features.columns:
            raise ValueError(f"time column {self.data.time_column!r} cannot be a feature; use features.datetime_parts")
        metric, task = self.evaluation.metric, self.target.task
        allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
        if metric not in allowed:
            raise ValueError(f"metric {metric!r} does not fit task {task!r}; use one of {sorted(allowed)}")
        models = CLASSIFIERS if task == "classification" else REGRESSORS
        if self.model.type not in models:
            raise ValueError(f"model type {self.model.type!r} does not fit task {task!r}; use one of {sorted(models)}")
        return self

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        if not p.is_absolute() and self.config_dir is not None:
            p = self.config_dir / p
        return p.resolve()

    @property
    def suite_path(self) -> Path:
        return self.resolve(self.quality.suite)

    @property
    def experiment_name(self) -> str:
        return self.mlflow.experiment or self.name

    def to_yaml_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"config_dir"})

    def config_hash(self) -> str:
        """What the pipeline does, hashed: where its messages go (`notifications`) is left out."""
        skip = {"notifications"} | ({"engine", "spark"} if self.engine == "pandas" else set())  # hashes kept as were
        doc = {k: v for k, v in self.to_yaml_dict().items() if k not in skip}
        if isinstance(doc.get("backtest"), dict):  # recorded only, decides nothing: hashes kept as they were
            doc["backtest"] = {k: v for k, v in doc["backtest"].items() if k != "baselines"}
        canon = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:12]


def parse_config(data: Any, file: str | Path = "<config>", config_dir: Path | None = None) -> PipelineConfig:
    if not isinstance(data, dict):
        raise ConfigError(str(file), "the file must hold a YAML mapping (key: value pairs) at the top level")
    try:
        cfg = PipelineConfig.model_validate({**data, "config_dir": config_dir})
    except ValidationError as err:
        raise ConfigError(str(file), validation_problems(err, PipelineConfig)) from None
    if problems := engine_problems(cfg.engine, cfg.model.type):
        raise ConfigError(str(file), problems)
    return cfg


def load_config(path: str | Path, check_files: bool = True) -> PipelineConfig:
    """Read and validate a pipeline config; raise ConfigError naming the file, key and reason."""
    p = Path(path)
    cfg = parse_config(read_yaml(p), p, p.resolve().parent)
    if check_files:
        from ctpipeline.config.columns import column_problems

        if not cfg.suite_path.is_file():
            raise ConfigError(str(p), [("quality.suite", f"file not found: {cfg.suite_path}")])
        problems = column_problems(cfg, cfg.suite_path)
        if problems:
            raise ConfigError(str(p), problems)
    return cfg


def json_schema() -> dict[str, Any]:
    schema = PipelineConfig.model_json_schema()
    schema.get("properties", {}).pop("config_dir", None)
    schema["title"] = "ctpipeline pipeline config"
    return schema


__all__ = [
    "DataConfig",
    "FeaturesConfig",
    "JoinConfig",
    "ModelConfig",
    "ModelType",
    "PipelineConfig",
    "SourceConfig",
    "TargetConfig",
    "json_schema",
    "load_config",
    "parse_config",
]
