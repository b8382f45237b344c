"""The Great Expectations (GX 1.x) adapter: the data quality gate.

It knows nothing about Prefect or MLflow: :func:`load_suite` reads and checks a suite JSON file,
:func:`validate` runs it on a pandas DataFrame in an in-memory (ephemeral) GX context and returns a
:class:`ctpipeline.core.quality.QualityResult`. Problems in the *data* (a missing column, strings in a
numeric column, ...) never raise: they come back as failed expectations, with GX's exception message
where GX hit an error. Problems in the *suite file* raise :class:`ctpipeline.errors.QualitySuiteError`.

The suite runs per column group, BOOLEAN_ONLY first and SUMMARY only for what failed, without five costs of
GX that change no result (``validation``, ``plan``, ``speedups``): GX's verdicts and wording, at a fraction of
plain ``batch.validate(suite)``'s time (bench/README.md).

``great_expectations`` takes several seconds to import, so it is imported on first use only.
"""

from ctpipeline.adapters.gx.suite import load_suite
from ctpipeline.adapters.gx.validation import validate

__all__ = ["load_suite", "validate"]
