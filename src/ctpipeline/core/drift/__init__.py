"""Data drift, the pure part: the config, the result types and the method plan (no Evidently here).

* :mod:`.config`: :class:`DriftConfig` (the ``drift:`` section) and the Evidently method names it accepts;
* :mod:`.result`: :class:`ColumnDrift` and :class:`DriftResult`, frozen and JSON-ready;
* :mod:`.plan`: :func:`plan_drift`, which columns are compared, as what, on which sampled rows and
  with which method and threshold (see its module doc for the rule);
* :mod:`.sampling`: the sampled positions, drawn before any column is copied, over one frame or a window of
  frames taken end to end (never concatenated whole).

``ctpipeline.adapters.evidently.detect_drift`` runs a plan through Evidently.
"""

from ctpipeline.core.drift.config import CATEGORICAL_METHODS, DISTANCE_METHODS, NUMERIC_METHODS, DriftConfig
from ctpipeline.core.drift.plan import (
    LOW_CARDINALITY,
    SMALL_SAMPLE,
    DriftPlan,
    PlannedColumn,
    choose_method,
    column_kinds,
    plan_drift,
)
from ctpipeline.core.drift.result import ColumnDrift, DriftResult
from ctpipeline.core.drift.sampling import gather, sample_positions

__all__ = [
    "CATEGORICAL_METHODS",
    "DISTANCE_METHODS",
    "LOW_CARDINALITY",
    "NUMERIC_METHODS",
    "SMALL_SAMPLE",
    "ColumnDrift",
    "DriftConfig",
    "DriftPlan",
    "DriftResult",
    "PlannedColumn",
    "choose_method",
    "column_kinds",
    "gather",
    "plan_drift",
    "sample_positions",
]
