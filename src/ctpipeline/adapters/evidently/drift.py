"""Data drift between a reference frame and a new batch: Evidently 0.7 runs the plan of ``ctpipeline.core.drift``.

It knows nothing about Prefect or MLflow: it takes two pandas DataFrames and returns a frozen,
JSON-serialisable :class:`~ctpipeline.core.drift.DriftResult` (plus, when asked, Evidently's HTML report
for MLflow). Which columns, which rows and which method per column is decided by
:func:`ctpipeline.core.drift.plan_drift` (see ``ctpipeline/core/drift/plan.py`` for the rule).

Hot path, on purpose
--------------------
Evidently's ``DataDriftPreset`` takes ~100 s and 1.7 GB on 1M rows x 20 columns: it computes every
column two or three times (``ValueDrift`` per column, then the legacy ``DatasetDriftMetric`` and
``DataDriftTable`` for its widgets) and renders a chart for each. Here instead:

* each side is **sampled** to at most ``max_rows`` rows (seeded, row order kept), positions first, so the
  cost does not grow with the batch and no whole column is copied; the reference may be the training window's
  frames as a list, sampled without concatenating them;
* only **one** ``ValueDrift`` metric per column is computed (Evidently 0.7's new API,
  ``from evidently.metrics import ValueDrift``), with the method chosen up front by the plan;
* the per-column verdicts come from the drift tests Evidently attaches to each ``ValueDrift``
  (``Report(include_tests=True)``), the dataset verdict is computed from them (``DriftPlan.result``);
* Evidently builds two plotly charts per column while it computes, whether or not anyone renders
  them (~70% of a ValueDrift's time), and the data behind them after the column's stat test: with
  ``report_html=False`` both are skipped, and Evidently's unread per-column statistics always (see ``_lean``).
  ``DriftedColumnsCount`` (which recomputes every column through the legacy code path) is added
  only when the HTML report is asked for, for its headline widget. Rendering the HTML string itself
  is cheap (~0.1 s; it is ~4 MB because Evidently inlines its JavaScript so the file works offline).
* the HTML report can wait: ``detect_drift(..., html=False)`` returns the verdicts only, and
  :func:`render_html` draws the report from the result's own samples once the decision is made.

Measured on the project's 2-core machine (under load), 17 columns, 30k rows per side sampled to
10k: ~1 s per call without HTML, ~3 s with; plus ~12 s once per process to import Evidently.

``evidently`` takes several seconds to import (~12 s on the project's machines), so it is
imported on first use only.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ctpipeline.adapters.patching import swapped
from ctpipeline.core.drift import DISTANCE_METHODS, ColumnDrift, DriftConfig, DriftPlan, DriftResult, plan_drift
from ctpipeline.core.jsonable import to_jsonable

if TYPE_CHECKING:  # pragma: no cover
    pass

log = logging.getLogger(__name__)

__all__ = ["detect_drift", "import_evidently", "render_html"]

_ev_lock = threading.RLock()
_ev_state: dict[str, Any] = {}


def detect_drift(
    reference, current, numeric, categorical, cfg: DriftConfig | None = None, seed=0, *, html: bool | None = None
) -> DriftResult:
    """Compare `current` with `reference` column by column, as `core.drift.plan_drift` plans it (same arguments:
    the frames, a list of frames as `reference` for a window taken end to end, the numeric and categorical column
    names, the config, the sampling seed; same errors; no frame is modified).

    `html`: also render Evidently's HTML report into ``result.html`` (None: as ``cfg.report_html`` says). The
    report costs 1-3 s more and changes no verdict: to keep it off the critical path, pass ``html=False`` and
    call :func:`render_html` on the result once the decision is made.
    """
    started = time.perf_counter()
    cfg = cfg or DriftConfig()
    with_html = cfg.report_html if html is None else bool(html)
    plan = plan_drift(reference, current, numeric, categorical, cfg, seed=seed)
    raw, report = _run(plan, with_html)
    result = plan.result(_verdicts(plan, raw), time.perf_counter() - started, html=report, evidently_json=raw)
    log.info(
        "drift: %d of %d columns drifted (share %.2f) in %.2f s",
        len(result.drifted_columns()),
        len(result.columns),
        result.drifted_share,
        result.seconds,
    )
    return result


def render_html(result: DriftResult) -> str:
    """Evidently's HTML report (self-contained, ~4 MB) for a result of :func:`detect_drift`, drawn from the same
    samples with the same methods: the same verdicts (a mismatch is logged as a warning, and the report is still
    returned). Returns ``result.html`` when it already has one."""
    if result.html is not None:
        return result.html
    plan = result.plan
    if not isinstance(plan, DriftPlan):
        raise ValueError("render_html() needs a DriftResult from detect_drift() (it keeps the compared samples)")
    started = time.perf_counter()
    raw, report = _run(plan, True)
    again = {c.column: c.drifted for c in _verdicts(plan, raw)}
    if again != {c.column: c.drifted for c in result.columns}:  # pragma: no cover - Evidently is deterministic
        log.warning("drift report: Evidently's verdicts in the report differ from the result's: %s", again)
    log.info("drift report rendered in %.2f s", time.perf_counter() - started)
    return report or ""


def import_evidently() -> None:
    """Import Evidently now (seconds), rather than on the first drift check or report."""
    _evidently()


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
                Report=Report,
                Dataset=Dataset,
                DataDefinition=DataDefinition,
                ValueDrift=ValueDrift,
                DriftedColumnsCount=DriftedColumnsCount,
                # an auto-resolved method comes back as its display name ("chi-square p_value")
                by_display={t.display_name: t.name for t in tests},
            )
        return _ev_state


class _Tested(Exception):  # noqa: N818 - control flow, not an error: the column's stat test has run
    def __init__(self, drift: SimpleNamespace):
        super().__init__(drift.stattest_name)
        self.drift = drift


@contextmanager
def _lean(html: bool) -> Iterator[None]:
    """What Evidently 0.7 computes on every run that changes no result of ours, skipped for one run.

    * Always: ``Dataset.from_pandas`` collects per-column statistics (min, max, quantiles, value counts) that
      only the dataset-statistics metrics read; nothing in a ValueDrift or DriftedColumnsCount run does.
    * Without HTML, the two plotly charts ``ValueDrift`` builds for every column while it computes
      (``ValueDriftCalculation._render``, ~70% of a ValueDrift's time), and the data behind them: after the
      column's stat test, ``get_one_column_drift`` goes on to correlations, histograms, a binned time series
      and distributions (~75% of what is left), which only the charts read. Here the stat test Evidently chose
      runs as Evidently calls it (its own column cleaning, checks and method resolution), then the column is
      done: ValueDrift gets the test's score, threshold, verdict and method name, its only inputs.

    The snapshot's JSON, the tests and therefore the verdicts are the same (``tests/integration/adapters/
    test_evidently.py`` compares them with an unpatched run on every method and column kind). If a later
    Evidently renames a target, nothing is patched: only slower.
    """
    import evidently.core.datasets as datasets

    with ExitStack() as stack:
        for name in ("_collect_numerical_stats", "_collect_categorical_stats"):
            stack.enter_context(swapped(datasets, name, lambda data: None))
        if not html:
            _stop_after_the_test(stack)
        yield


def _stop_after_the_test(stack: ExitStack) -> None:
    """For the verdict run (no HTML): each ValueDrift's column done once its stat test has run, and no charts."""
    from evidently.legacy.calculations import data_drift
    from evidently.metrics import column_statistics

    get_stattest, one_column = data_drift.get_stattest, column_statistics.get_one_column_drift
    inside = [False]  # stop after the test only in ValueDrift's own call (callers hold _ev_lock)

    def test_then_stop(reference, current, column_type, stattest):
        test = get_stattest(reference, current, column_type, stattest)
        if not inside[0]:
            return test

        def run(*args):
            r = test(*args)
            raise _Tested(
                SimpleNamespace(
                    stattest_name=test.display_name,
                    stattest_threshold=r.actual_threshold,
                    drift_score=r.drift_score,
                    drift_detected=r.drifted,
                )
            )

        return run

    def drift_only(**kwargs):
        inside[0] = True
        try:
            return one_column(**kwargs)
        except _Tested as done:
            return done.drift
        finally:
            inside[0] = False

    stack.enter_context(swapped(column_statistics.ValueDriftCalculation, "_render", lambda *a, **k: []))
    stack.enter_context(swapped(data_drift, "get_stattest", test_then_stop))
    stack.enter_context(swapped(column_statistics, "get_one_column_drift", drift_only))


def _metrics(ev: dict[str, Any], plan: DriftPlan, with_html: bool) -> list[Any]:
    """One ValueDrift per planned column (+ DriftedColumnsCount, the HTML's headline widget)."""
    metrics: list[Any] = []
    if with_html:  # the headline widget; it recomputes every column, so only for the HTML
        metrics.append(
            ev["DriftedColumnsCount"](
                columns=[p.column for p in plan.columns],
                drift_share=plan.share_threshold,
                per_column_method={p.column: p.method for p in plan.columns},
                per_column_threshold={p.column: p.threshold for p in plan.columns if p.threshold is not None} or None,
            )
        )
    for p in plan.columns:
        metrics.append(ev["ValueDrift"](column=p.column, method=p.method, threshold=p.threshold))
    return metrics


def _run(plan: DriftPlan, with_html: bool) -> tuple[dict, str | None]:
    """(Evidently's snapshot as plain JSON, its HTML report or None)."""
    ev = _evidently()
    metrics = _metrics(ev, plan, with_html)
    definition = ev["DataDefinition"](
        numerical_columns=plan.columns_as("numeric"),
        categorical_columns=plan.columns_as("categorical"),
    )
    with _ev_lock, warnings.catch_warnings(), _lean(with_html):
        warnings.simplefilter("ignore")  # pandas/plotly FutureWarnings from inside Evidently
        report = ev["Report"](metrics, include_tests=True)
        snapshot = report.run(
            ev["Dataset"].from_pandas(plan.current, data_definition=definition),
            ev["Dataset"].from_pandas(plan.reference, data_definition=definition),
        )
        raw = to_jsonable(snapshot.dict())
        html = snapshot.get_html_str(as_iframe=False) if with_html else None
    return raw, html


def _verdicts(plan: DriftPlan, raw: dict) -> list[ColumnDrift]:
    """One ColumnDrift per planned column, read from the snapshot's ValueDrift metrics and their drift tests."""
    by_display = _evidently()["by_display"]
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
    for p in plan.columns:
        m, conf = by_column[p.column]
        method = str(conf.get("method") or p.method)
        method = by_display.get(method, method)  # an auto-resolved method comes back as display name
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
    return out
