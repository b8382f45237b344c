"""The sections of a pipeline config that describe the data and the model (see `schema` for the rest)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ModelType = Literal["xgboost", "hist_gradient_boosting", "logistic_regression", "ridge"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JoinConfig(Section):
    """Left-join another table of the same source on key columns."""

    table: str = Field(description="Attribute of the source module holding the table (DataFrame or callable).")
    by: list[str] = Field(min_length=1, description="Key columns present in both tables.")
    columns: list[str] | None = Field(
        default=None, description="Columns to take from the joined table (default: all but those already present)."
    )


class SourceConfig(Section):
    """Where `ctp land` reads the raw history from (the demo's replay source)."""

    kind: Literal["python_tables", "file"] = Field(
        description="python_tables: DataFrames exposed by an installed Python package; file: a CSV or Parquet file."
    )
    module: str | None = Field(default=None, description="python_tables: importable module, e.g. a data package.")
    table: str | None = Field(default=None, description="python_tables: attribute of the module with the main table.")
    joins: list[JoinConfig] = Field(default_factory=list)
    path: str | None = Field(
        default=None, description="file: a .csv or .parquet file, or a folder of them (e.g. one file per period)."
    )

    @model_validator(mode="after")
    def _check_kind(self) -> SourceConfig:
        if self.kind == "python_tables" and not (self.module and self.table):
            raise ValueError("kind 'python_tables' needs both 'module' and 'table'")
        if self.kind == "file" and not self.path:
            raise ValueError("kind 'file' needs 'path'")
        return self


class DataConfig(Section):
    time_column: str = Field(description="Event-time column used to cut batches and order them.")
    granularity: Literal["day", "week", "month", "year"] = Field(default="month", description="One batch per period.")
    timezone: str = Field(default="UTC", description="IANA time zone in which periods are cut, e.g. America/New_York.")
    landing_dir: str | None = Field(
        default=None, description="Folder new batch files (Parquet) arrive in. Default: <state>/landing/<name>."
    )
    min_batch_rows: int = Field(
        default=100, ge=1, description="A batch with fewer rows is quarantined: too few to judge a model on."
    )
    max_batch_rows: int | None = Field(
        default=None, ge=1, description="A batch with more rows is quarantined before it is read (a runaway export)."
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as 'UTC' or 'Europe/Paris')") from None
        return v

    @model_validator(mode="after")
    def _limits(self) -> DataConfig:
        if self.max_batch_rows is not None and self.max_batch_rows < self.min_batch_rows:
            raise ValueError(f"max_batch_rows {self.max_batch_rows} is below min_batch_rows {self.min_batch_rows}")
        return self


class TargetConfig(Section):
    column: str
    task: Literal["classification", "regression"]
    positive_when: dict[Literal[">", ">=", "<", "<=", "==", "!="], float | int | str] | None = Field(
        default=None,
        description="Classification only: turn the column into a 0/1 label, e.g. {'>': 15}. "
        "Omit if the column already holds 0/1.",
    )

    @model_validator(mode="after")
    def _check(self) -> TargetConfig:
        if self.positive_when is not None:
            if self.task != "classification":
                raise ValueError("'positive_when' only applies to task 'classification'")
            if len(self.positive_when) != 1:
                raise ValueError("'positive_when' takes exactly one comparison, e.g. {'>': 15}")
        return self

    @field_validator("positive_when")
    @classmethod
    def _ordering_needs_a_number(cls, v: dict | None) -> dict | None:
        for op, value in (v or {}).items():
            if op not in ("==", "!=") and (isinstance(value, (str, bool))):
                raise ValueError(
                    f"{op!r} compares numbers, got {type(value).__name__} {value!r}: write a number "
                    "(without quotes), or use '==' / '!=' to match a text label"
                )
        return v


class FeaturesConfig(Section):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    datetime_parts: list[Literal["hour", "dayofweek", "month", "dayofyear", "weekofyear"]] = Field(
        default_factory=list, description="Parts of the time column added as numeric features."
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Columns that must never be features (leaky: observed after the prediction time).",
    )

    @model_validator(mode="after")
    def _check(self) -> FeaturesConfig:
        if not (self.numeric or self.categorical or self.datetime_parts):
            raise ValueError("at least one feature is needed (numeric, categorical or datetime_parts)")
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ValueError(f"columns listed as both numeric and categorical: {sorted(both)}")
        leaky = (set(self.numeric) | set(self.categorical)) & set(self.exclude)
        if leaky:
            raise ValueError(f"excluded columns listed as features: {sorted(leaky)}")
        return self

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def no_inline_secret(uri: str | None, env: str) -> str | None:
    """`uri` unless it carries a password or a token (ValueError naming `env`; the secret is never echoed)."""
    from urllib.parse import parse_qsl, urlsplit

    if not uri:
        return uri
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:
        return uri
    secret_query = [k for k, _ in parse_qsl(parts.query) if k.lower() in SECRET_QUERY_KEYS]
    if password is not None or secret_query:
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        shown = f"{parts.scheme}://{host}{parts.path}"
        raise ValueError(
            f"holds a secret ({'a password' if password is not None else ', '.join(secret_query)}) in {shown}...: "
            f"secrets never go in YAML; set {env} in the environment and leave them out of the URI"
        )
    return uri


SECRET_QUERY_KEYS = {"password", "passwd", "pwd", "token", "access_token", "secret", "api_key", "apikey", "key"}


class ModelConfig(Section):
    type: ModelType = Field(description="Estimator family; wrapped in a scikit-learn Pipeline with preprocessing.")
    params: dict[str, Any] = Field(default_factory=dict, description="Hyper-parameters passed to the estimator.")
    device: Literal["cpu", "cuda"] = Field(default="cpu", description="xgboost only: train on a CUDA GPU.")

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.device == "cuda" and self.type != "xgboost":
            raise ValueError("device 'cuda' is only supported for type 'xgboost'")
        return self
