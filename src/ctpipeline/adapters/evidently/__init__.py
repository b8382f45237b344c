"""The Evidently adapter: :func:`detect_drift` runs the drift plan of ``ctpipeline.core.drift`` through Evidently 0.7;
:func:`render_html` draws Evidently's HTML report for its result later, off the critical path; :func:`import_evidently`
imports Evidently ahead of time (the report worker does, while the first cycle runs).

Importing this package does not import Evidently (that takes seconds): it is imported on first use.
"""

from ctpipeline.adapters.evidently.drift import detect_drift, import_evidently, render_html

__all__ = ["detect_drift", "import_evidently", "render_html"]
