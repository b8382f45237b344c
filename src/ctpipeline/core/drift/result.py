"""The drift verdicts: one :class:`ColumnDrift` per compared column, gathered in a :class:`DriftResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from ctpipeline.core.jsonable import finite

__all__ = ["ColumnDrift", "DriftResult"]


@dataclass(frozen=True)
class ColumnDrift:
    """Drift verdict for one column."""

    column: str
    kind: str  # "numeric" | "categorical"
    method: str  # Evidently stat test name, e.g. "wasserstein"
    score: float  # p-value or distance, see score_kind
    threshold: float
    drifted: bool
    score_kind: str = "distance"  # "p_value" (drift when small) | "distance" (drift when large)

    def describe(self) -> str:
        """E.g. ``temp (numeric): wasserstein distance 5.09 >= 0.1: drift``."""
        if self.score_kind == "p_value":
            op = "<" if self.score < self.threshold else ">="
            what = f"p-value {_fmt(self.score)} {op} {_fmt(self.threshold)}"
        else:
            op = ">=" if self.score >= self.threshold else "<"
            what = f"distance {_fmt(self.score)} {op} {_fmt(self.threshold)}"
        return f"{self.column} ({self.kind}): {self.method} {what}: {'drift' if self.drifted else 'no drift'}"

    def to_dict(self) -> dict:
        return {
            "column": self.column,
            "kind": self.kind,
            "method": self.method,
            "score": finite(self.score),
            "score_kind": self.score_kind,
            "threshold": self.threshold,
            "drifted": self.drifted,
        }


@dataclass(frozen=True)
class DriftResult:
    """Outcome of comparing one batch (current) with the reference."""

    columns: tuple[ColumnDrift, ...]
    drifted_share: float
    dataset_drift: bool
    reference_rows: int  # rows given (before sampling)
    current_rows: int
    sampled: bool  # True when either side was sampled down to max_rows
    seconds: float
    html: str | None = field(default=None, repr=False, compare=False)
    evidently_json: dict = field(default_factory=dict, repr=False, compare=False, hash=False)
    share_threshold: float = 0.5
    skipped: tuple[tuple[str, str], ...] = ()  # (column, why)
    reference_sample_rows: int = 0  # rows compared after sampling
    current_sample_rows: int = 0
    # the DriftPlan the verdicts came from (its sampled, cleaned frames): what render_html needs to draw the report
    # later, off the critical path (``ctpipeline.adapters.evidently.render_html``); not part of to_dict()
    plan: Any = field(default=None, repr=False, compare=False, hash=False)

    def with_html(self, html: str | None) -> DriftResult:
        """The same result with `html` as its report."""
        return replace(self, html=html)

    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def to_dict(self) -> dict:
        """Everything but the HTML and Evidently's JSON; survives json.dumps."""
        return {
            "dataset_drift": self.dataset_drift,
            "drifted_share": self.drifted_share,
            "share_threshold": self.share_threshold,
            "drifted_columns": self.drifted_columns(),
            "columns": [c.to_dict() for c in self.columns],
            "skipped": [{"column": c, "reason": r} for c, r in self.skipped],
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "reference_sample_rows": self.reference_sample_rows,
            "current_sample_rows": self.current_sample_rows,
            "sampled": self.sampled,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        n, k = len(self.columns), len(self.drifted_columns())
        verdict = "DATASET DRIFT" if self.dataset_drift else "no dataset drift"
        lines = [
            f"data drift: {verdict}: {k} of {n} columns drifted "
            f"(share {self.drifted_share:.2f}, threshold {self.share_threshold:.2f})"
        ]
        lines += [f"  - {c.describe()}" for c in self.columns if c.drifted]
        lines += [f"  (skipped {c}: {r})" for c, r in self.skipped]
        return "\n".join(lines)


def _fmt(x: float) -> str:
    return f"{x:.3g}" if isinstance(x, (int, float)) and math.isfinite(x) else str(x)
