"""Data drift between a reference frame and a new batch: a thin adapter over Evidently 0.7.

It knows nothing about Prefect or MLflow: it takes two pandas DataFrames and returns a frozen,
JSON-serialisable :class:`DriftResult` (plus, when asked, Evidently's HTML report for MLflow).

Hot path, on purpose
--------------------
Evidently's ``DataDriftPreset`` takes ~100 s and 1.7 GB on 1M rows x 20 columns: it computes every
column two or three times (``ValueDrift`` per column, then the legacy ``DatasetDriftMetric`` and
``DataDriftTable`` for its widgets) and renders a chart for each. Here instead:

* each side is **sampled** to at most ``max_rows`` rows (seeded, row order kept), so the cost does
  not grow with the batch;
* only **one** ``ValueDrift`` metric per column is computed (Evidently 0.7's new API,
  ``from evidently.metrics import ValueDrift``), with a method chosen up front (below);
* the per-column verdicts come from the drift tests Evidently attaches to each ``ValueDrift``
  (``Report(include_tests=True)``), the dataset verdict is computed here from them;
* Evidently builds two plotly charts per column while it computes, whether or not anyone renders
  them (~70% of a ValueDrift's time): with ``report_html=False`` they are skipped (see ``_charts``).
  ``DriftedColumnsCount`` (which recomputes every column through the legacy code path) is added
  only when the HTML report is asked for, for its headline widget. Rendering the HTML string itself
  is cheap (~0.1 s; it is ~4 MB because Evidently inlines its JavaScript so the file works offline).

Measured on the project's 2-core machine (under load), 17 columns, 30k rows per side sampled to
10k: ~1 s per call without HTML, ~3 s with; plus ~12 s once per process to import Evidently.

Method per column (``numeric_method`` / ``categorical_method`` = None)
----------------------------------------------------------------------
The same rule as Evidently's own default (``evidently.legacy.calculations.stattests.registry.
_get_default_stattest``), except that the sample size is the *smaller* of the two sides' non-missing
counts (Evidently looks at the reference only, so a 300-row batch against a 10,000-row reference
would get a noisy distance instead of a test):

==============  ========================  =====================  =====================================
column          n <= 1000 (small)         n > 1000 (large)       Evidently's default threshold
==============  ========================  =====================  =====================================
numeric         ``ks`` (K-S p-value)      ``wasserstein``        ks: drift when p <= 0.05;
                                          (normed by the         wasserstein: drift when distance
                                          reference std)         >= 0.1 (0.1 reference std)
numeric with    ``chisquare`` (``z`` for  ``jensenshannon``      p < 0.05; JS distance >= 0.1
<= 5 values     2 values)                                        (compared as categories, as
                                                                 Evidently's default does)
categorical     ``chisquare`` (``z`` for  ``jensenshannon``      p < 0.05; JS distance >= 0.1
                2 categories)
==============  ========================  =====================  =====================================

Statistical tests fit small samples; on large samples they flag differences too small to matter
(any p-value goes to 0), hence distances with a fixed threshold there. A method named in the
config (any Evidently 0.7 stat test name valid for the column type, e.g. ``psi``, ``ks``) replaces
the rule for that column type; ``numeric_threshold`` / ``categorical_threshold`` (only with a named
method) replace that method's default threshold. (Evidently's ``fisher_exact`` needs both sides the
same size: use it with ``max_rows`` at most the smaller side.)

Robustness: columns missing from either frame, entirely missing values (in the sample) or with
the wrong type for their kind are skipped with a note in ``DriftResult.skipped`` (and a log
line), never a crash; an empty frame or nothing left to compare raises
:class:`ctpipeline.errors.DataError`.

``evidently`` takes several seconds to import (~12 s on the project's machines), so it is
imported on first use only.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ctpipeline.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)

__all__ = ["ColumnDrift", "DriftConfig", "DriftResult", "detect_drift"]

SMALL_SAMPLE = 1000  # Evidently's cut between statistical tests and distances
LOW_CARDINALITY = 5  # numeric columns with at most this many values are binned like categories

# Evidently 0.7.23's registered stat tests (evidently.legacy.calculations.stattests), by column type.
# Checked against the installed registry by tests/integration/test_drift.py.
NUMERIC_METHODS = frozenset({
    "anderson", "cramer_von_mises", "ed", "empirical_mmd", "es", "hellinger", "jensenshannon",
    "kl_div", "ks", "mannw", "psi", "t_test", "wasserstein",
})
CATEGORICAL_METHODS = frozenset({
    "chisquare", "fisher_exact", "g_test", "hellinger", "jensenshannon", "kl_div", "psi", "TVD", "z",
})
# methods whose score is a distance (drift when score >= threshold); all others return a p-value
DISTANCE_METHODS = frozenset({"ed", "hellinger", "jensenshannon", "kl_div", "psi", "wasserstein"})


# --------------------------------------------------------------------------- config


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
        default=None, gt=0,
        description="Drift threshold for numeric columns (needs numeric_method). None: the method's default.",
    )
    categorical_threshold: float | None = Field(
        default=None, gt=0,
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
        dupes = sorted({c for c in v if v.count(c) > 1})
        if dupes:
            raise ValueError(f"columns listed more than once: {dupes}")
        return v

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
    import difflib

    close = difflib.get_close_matches(v, sorted(allowed), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown {kind} drift method {v!r}{hint} (Evidently 0.7 offers: {', '.join(sorted(allowed))})")


# --------------------------------------------------------------------------- results


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
            "score": _finite(self.score),
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


def _finite(x: float) -> float | None:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


# --------------------------------------------------------------------------- Evidently, lazily

_ev_lock = threading.RLock()
_ev_state: dict[str, Any] = {}


def _evidently() -> dict[str, Any]:
    """Import Evidently once (quietly) and index its stat tests by name and display name."""
    with _ev_lock:
        if not _ev_state:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from evidently import DataDefinition, Dataset, Report
                from evidently.legacy.calculations import stattests
                from evidently.legacy.calculations.stattests.registry import StatTest
                from evidently.metrics import DriftedColumnsCount, ValueDrift

            tests = [v for v in vars(stattests).values() if isinstance(v, StatTest)]
            _ev_state.update(
                Report=Report, Dataset=Dataset, DataDefinition=DataDefinition,
                ValueDrift=ValueDrift, DriftedColumnsCount=DriftedColumnsCount,
                # an auto-resolved method comes back as its display name ("chi-square p_value")
                by_display={t.display_name: t.name for t in tests},
            )
        return _ev_state


@contextmanager
def _charts(wanted: bool):
    """Without HTML, skip the two plotly charts ValueDrift builds for every column.

    Evidently 0.7 renders its widgets while it computes (``ValueDriftCalculation._render``), whether
    or not anyone will look at them: ~70% of a ValueDrift's time, a fixed ~0.1 s per column. When
    no HTML is asked for, the method is swapped for one returning no widgets, for the duration of
    the run (callers hold ``_ev_lock``; all Evidently runs of the process go through this module).
    Results, tests and the JSON are unchanged. If a later Evidently renames the method, nothing is
    patched: only slower.
    """
    if wanted:
        yield
        return
    from evidently.metrics.column_statistics import ValueDriftCalculation

    original = ValueDriftCalculation.__dict__.get("_render")
    if original is None:  # pragma: no cover - a different Evidently
        yield
        return
    ValueDriftCalculation._render = lambda self, *args, **kwargs: []
    try:
        yield
    finally:
        ValueDriftCalculation._render = original


# --------------------------------------------------------------------------- detection


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    cfg: DriftConfig | None = None,
    seed: int = 0,
) -> DriftResult:
    """Compare `current` with `reference` column by column (neither frame is modified).

    `numeric` / `categorical` say each column's kind (usually the model's features); `cfg.columns`,
    when set, narrows the comparison to those columns (a column in neither list gets its kind from
    the reference dtype). Raises DataError when a frame is empty or no column can be compared.
    """
    import numpy as np
    import pandas as pd

    started = time.perf_counter()
    cfg = cfg or DriftConfig()
    for name, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"detect_drift() needs a pandas DataFrame as {name}, got {type(frame).__name__}")
        if frame.empty:
            raise DataError(
                f"cannot compute drift: the {name} data is empty "
                f"({len(frame)} rows, {frame.shape[1]} columns)"
            )

    kinds = _column_kinds(reference, numeric, categorical, cfg.columns)
    skipped: list[tuple[str, str]] = []
    present: list[str] = []
    for col in kinds:
        where = [n for n, f in (("reference", reference), ("current", current)) if col not in f.columns]
        twice = [n for n, f in (("reference", reference), ("current", current))
                 if col in f.columns and int((f.columns == col).sum()) > 1]
        if where:
            skipped.append((col, f"missing from the {' and '.join(where)} data"))
        elif twice:
            skipped.append((col, f"more than one column of that name in the {' and '.join(twice)} data"))
        else:
            present.append(col)

    rng = np.random.default_rng(seed)
    ref = _sample(reference, present, cfg.max_rows, rng)
    cur = _sample(current, present, cfg.max_rows, rng)
    sampled = len(ref) < len(reference) or len(cur) < len(current)

    plan: list[_Planned] = []
    ref_clean: dict[str, pd.Series] = {}
    cur_clean: dict[str, pd.Series] = {}
    for col in present:
        kind = kinds[col]
        r, c, why = _clean(ref[col], cur[col], kind)
        if why is None:
            for side, s in (("reference", r), ("current", c)):
                if s.notna().sum() == 0:
                    why = f"all values missing in the {side} data" + (" sample" if sampled else "")
                    break
        if why is not None:
            skipped.append((col, why))
            continue
        ref_clean[col], cur_clean[col] = r, c
        plan.append(_plan(col, kind, r, c, cfg))

    for col, why in skipped:
        log.warning("drift: column %r skipped: %s", col, why)
    if not plan:
        detail = "; ".join(f"{c}: {w}" for c, w in skipped) or "no columns given"
        raise DataError(f"cannot compute drift: no column left to compare ({detail})")

    ref_df = pd.DataFrame(ref_clean)
    cur_df = pd.DataFrame(cur_clean)
    columns, evidently_json, html = _run_evidently(ref_df, cur_df, plan, cfg)

    share = sum(c.drifted for c in columns) / len(columns)
    result = DriftResult(
        columns=tuple(columns),
        drifted_share=share,
        dataset_drift=share >= cfg.share_threshold,
        reference_rows=len(reference),
        current_rows=len(current),
        sampled=sampled,
        seconds=time.perf_counter() - started,
        html=html,
        evidently_json=evidently_json,
        share_threshold=cfg.share_threshold,
        skipped=tuple(skipped),
        reference_sample_rows=len(ref_df),
        current_sample_rows=len(cur_df),
    )
    log.info("drift: %d of %d columns drifted (share %.2f) in %.2f s",
             len(result.drifted_columns()), len(columns), share, result.seconds)
    return result


def _column_kinds(reference: pd.DataFrame, numeric: list[str], categorical: list[str],
                  wanted: list[str] | None) -> dict[str, str]:
    import pandas as pd

    both = set(numeric) & set(categorical)
    if both:
        raise ValueError(f"columns listed as both numeric and categorical: {sorted(both)}")
    declared = {**{c: "numeric" for c in numeric}, **{c: "categorical" for c in categorical}}
    if wanted is None:
        return declared
    kinds = {}
    for col in wanted:
        if col in declared:
            kinds[col] = declared[col]
        elif col in reference.columns:
            s = reference[col]
            is_num = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
            kinds[col] = "numeric" if is_num else "categorical"
        else:
            kinds[col] = "numeric"  # reported as missing below; the kind does not matter
    return kinds


def _sample(frame: pd.DataFrame, columns: list[str], max_rows: int, rng) -> pd.DataFrame:
    """At most `max_rows` rows of `columns`, drawn without replacement, in their original order."""
    import numpy as np

    sub = frame[columns]
    if len(sub) <= max_rows:
        return sub.reset_index(drop=True)
    idx = np.sort(rng.choice(len(sub), size=max_rows, replace=False))
    return sub.iloc[idx].reset_index(drop=True)


def _clean(r: pd.Series, c: pd.Series, kind: str) -> tuple[pd.Series, pd.Series, str | None]:
    """Both sides as Evidently handles them: float64 with NaN (numeric) or object with NaN (categorical)."""
    import numpy as np
    import pandas as pd

    if kind == "numeric":
        out = []
        for side, s in (("reference", r), ("current", c)):
            if pd.api.types.is_bool_dtype(s):
                s = s.astype("float64")
            elif not pd.api.types.is_numeric_dtype(s):
                return r, c, f"declared numeric but the {side} data holds {s.dtype} values"
            s = pd.to_numeric(s, errors="coerce").astype("float64").replace([np.inf, -np.inf], np.nan)
            out.append(s)
        return out[0], out[1], None
    out = []
    for s in (r, c):
        s = s.astype(object)
        out.append(s.where(pd.notna(s), np.nan))
    return out[0], out[1], None


@dataclass(frozen=True)
class _Planned:
    column: str
    kind: str  # as declared: "numeric" | "categorical"
    as_type: str  # how Evidently sees it: low-cardinality numeric columns are compared as categories
    method: str
    threshold: float | None


def _plan(col: str, kind: str, r: pd.Series, c: pd.Series, cfg: DriftConfig) -> _Planned:
    """The method for one column: the configured one, else by sample size and cardinality (module doc)."""
    import pandas as pd

    method = cfg.numeric_method if kind == "numeric" else cfg.categorical_method
    threshold = cfg.numeric_threshold if kind == "numeric" else cfg.categorical_threshold
    if method is not None:
        return _Planned(col, kind, kind, method, threshold)
    small = min(int(r.notna().sum()), int(c.notna().sum())) <= SMALL_SAMPLE
    n_values = pd.concat([r, c], ignore_index=True).nunique()
    if kind == "numeric" and n_values > LOW_CARDINALITY:
        return _Planned(col, kind, kind, "ks" if small else "wasserstein", None)
    # categorical, or numeric with a handful of values (Evidently's default bins those like categories
    # too, but its chi-square and Z tests can only be *named* for categorical columns)
    if small:
        method = "z" if n_values <= 2 else "chisquare"
    else:
        method = "jensenshannon"
    return _Planned(col, kind, "categorical", method, None)


def _run_evidently(ref: pd.DataFrame, cur: pd.DataFrame, plan: list[_Planned],
                   cfg: DriftConfig) -> tuple[list[ColumnDrift], dict, str | None]:
    ev = _evidently()
    metrics: list[Any] = []
    if cfg.report_html:  # the headline widget; it recomputes every column, so only for the HTML
        metrics.append(ev["DriftedColumnsCount"](
            columns=[p.column for p in plan],
            drift_share=cfg.share_threshold,
            per_column_method={p.column: p.method for p in plan},
            per_column_threshold={p.column: p.threshold for p in plan if p.threshold is not None} or None,
        ))
    for p in plan:
        metrics.append(ev["ValueDrift"](column=p.column, method=p.method, threshold=p.threshold))

    definition = ev["DataDefinition"](
        numerical_columns=[p.column for p in plan if p.as_type == "numeric"],
        categorical_columns=[p.column for p in plan if p.as_type == "categorical"],
    )
    with _ev_lock, warnings.catch_warnings(), _charts(cfg.report_html):
        warnings.simplefilter("ignore")  # pandas/plotly FutureWarnings from inside Evidently
        report = ev["Report"](metrics, include_tests=True)
        snapshot = report.run(
            ev["Dataset"].from_pandas(cur, data_definition=definition),
            ev["Dataset"].from_pandas(ref, data_definition=definition),
        )
        raw = _jsonable(snapshot.dict())
        html = snapshot.get_html_str(as_iframe=False) if cfg.report_html else None

    # ValueDrift's drift test: FAIL = drift detected (Evidently applies the method's own comparison)
    status = {
        (t.get("metric_config") or {}).get("metric_id"): t.get("status")
        for t in raw.get("tests", [])
        if t.get("id") == "drift"
    }
    by_column = {}
    for m in raw.get("metrics", []):
        conf = m.get("config") or {}
        if conf.get("type", "").endswith(":ValueDrift"):
            by_column[conf.get("column")] = (m, conf)

    out: list[ColumnDrift] = []
    for p in plan:
        m, conf = by_column[p.column]
        method = str(conf.get("method") or p.method)
        method = ev["by_display"].get(method, method)  # an auto-resolved method comes back as display name
        threshold = float(conf.get("threshold"))
        score = m.get("value")
        score = float("nan") if score is None else float(score)
        score_kind = "distance" if method in DISTANCE_METHODS else "p_value"
        st = status.get(m.get("id"))
        if st is None:  # pragma: no cover - defensive: no test attached, apply the method's comparison
            drifted = score >= threshold if score_kind == "distance" else score < threshold
        else:
            drifted = st == "FAIL"
        out.append(ColumnDrift(p.column, p.kind, method, score, threshold, bool(drifted), score_kind))
    return out, raw, html


def _jsonable(obj: Any) -> Any:
    """Evidently's dict, guaranteed to survive json.dumps (NaN -> None, numpy scalars -> Python)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    item = getattr(obj, "item", None)  # numpy scalar
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(obj)
