"""The Evidently adapter: :func:`detect_drift` runs the drift plan of ``ctpipeline.core.drift`` through Evidently 0.7.

Importing this package does not import Evidently (that takes seconds): it is imported on first use.
"""

from ctpipeline.adapters.evidently.drift import detect_drift

__all__ = ["detect_drift"]
