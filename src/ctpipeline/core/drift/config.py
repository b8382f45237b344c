"""DriftConfig: how to compare a new batch with the reference data (the ``drift:`` section of the config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ctpipeline.core.validators import no_duplicates

__all__ = ["CATEGORICAL_METHODS", "DISTANCE_METHODS", "NUMERIC_METHODS", "DriftConfig"]

# Evidently 0.7.23's registered stat tests (evidently.legacy.calculations.stattests), by column type.
# Checked against the installed registry by tests/integration/adapters/test_evidently.py.
NUMERIC_METHODS = frozenset(
    {
        "anderson",
        "cramer_von_mises",
        "ed",
        "empirical_mmd",
        "es",
        "hellinger",
        "jensenshannon",
        "kl_div",
        "ks",
        "mannw",
        "psi",
        "t_test",
        "wasserstein",
    }
)
CATEGORICAL_METHODS = frozenset(
    {
        "chisquare",
        "fisher_exact",
        "g_test",
        "hellinger",
        "jensenshannon",
        "kl_div",
        "psi",
        "TVD",
        "z",
    }
)
# methods whose score is a distance (drift when score >= threshold); all others return a p-value
DISTANCE_METHODS = frozenset({"ed", "hellinger", "jensenshannon", "kl_div", "psi", "wasserstein"})


class DriftConfig(BaseModel):
    """How to compare a new batch with the reference data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: list[str] | None = Field(
        default=None,
        description="Columns to compare. Default: the model's features (numeric + categorical, passed by the caller).",
    )
    max_rows: int = Field(
        default=10_000, ge=1, description="Sample each side to at most this many rows (seeded) before comparing."
    )
    share_threshold: float = Field(
        default=0.5, gt=0, le=1, description="Dataset drift when the share of drifted columns is >= this."
    )
    numeric_method: str | None = Field(
        default=None,
        description="Evidently stat test for numeric columns (e.g. 'wasserstein', 'ks', 'psi'). "
        "None: K-S p-value for samples <= 1000 rows, normed Wasserstein distance above.",
    )
    categorical_method: str | None = Field(
        default=None,
        description="Evidently stat test for categorical columns (e.g. 'jensenshannon', 'chisquare', 'psi'). "
        "None: chi-square (Z-test for 2 categories) p-value for samples <= 1000 rows, Jensen-Shannon distance above.",
    )
    numeric_threshold: float | None = Field(
        default=None,
        gt=0,
        description="Drift threshold for numeric columns (needs numeric_method). None: the method's default.",
    )
    categorical_threshold: float | None = Field(
        default=None,
        gt=0,
        description="Drift threshold for categorical columns (needs categorical_method). None: the method's default.",
    )
    report_html: bool = Field(
        default=True, description="Also render Evidently's HTML report (self-contained, ~4 MB) for MLflow."
    )

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("an empty list compares nothing; leave 'columns' out to use the model's features")
        return no_duplicates(v, "columns")

    @field_validator("numeric_method")
    @classmethod
    def _numeric_method(cls, v: str | None) -> str | None:
        return _check_method(v, NUMERIC_METHODS, "numeric")

    @field_validator("categorical_method")
    @classmethod
    def _categorical_method(cls, v: str | None) -> str | None:
        return _check_method(v, CATEGORICAL_METHODS, "categorical")

    @model_validator(mode="after")
    def _thresholds(self) -> DriftConfig:
        for kind in ("numeric", "categorical"):
            method, thr = getattr(self, f"{kind}_method"), getattr(self, f"{kind}_threshold")
            if thr is None:
                continue
            if method is None:
                raise ValueError(
                    f"{kind}_threshold needs {kind}_method: the automatic choice mixes p-values (small samples) "
                    "and distances (large samples), which no single threshold fits"
                )
            if method not in DISTANCE_METHODS and thr >= 1:
                raise ValueError(f"{kind}_threshold {thr} is a p-value threshold for method {method!r}: it must be < 1")
        return self


def _check_method(v: str | None, allowed: frozenset[str], kind: str) -> str | None:
    if v is None or v in allowed:
        return v
    # imported here: ctpipeline.config builds its PipelineConfig from this module's DriftConfig at import time
    from ctpipeline.config.loader import did_you_mean

    hint = did_you_mean(v, allowed)
    raise ValueError(f"unknown {kind} drift method {v!r}{hint} (Evidently 0.7 offers: {', '.join(sorted(allowed))})")
