"""The reports' renderers (`steps.reports`): module-level functions of picklable arguments that return a report's
files (``{artifact path: text or bytes}``), so that the report worker process can draw them. They import only what
they draw with (Evidently, matplotlib), never MLflow or Prefect: the worker stays small."""

from __future__ import annotations

import io

DRIFT_REPORT = "monitoring/drift_report.html"


def drift_report(drift) -> dict[str, str]:
    """Evidently's HTML report for `drift` (a `DriftResult` of `detect_drift`: drawn from its own samples, with the
    same verdicts)."""
    from ctpipeline.adapters.evidently import render_html

    return {DRIFT_REPORT: render_html(drift)}


def plots(task: str, metric: str, y, challenger_scores, champion_scores, champion_label: str, backtest, slices):
    """The challenger against the champion, the back-test windows and (when there are any) the slices, as PNG."""
    from ctpipeline import plots as draw

    figs = {
        "plots/challenger_vs_champion.png": draw.comparison_plot(
            task, metric, y, challenger_scores, champion_scores, ("challenger", champion_label)
        ),
        "plots/backtest_windows.png": draw.backtest_plot(backtest, champion_label),
    }
    if slices:
        figs["plots/slices.png"] = draw.slices_plot(slices, metric)
    files: dict[str, bytes] = {}
    for name, fig in figs.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png")  # what MLflow's log_figure writes
        files[name] = buf.getvalue()
        draw.close(fig)
    return files
