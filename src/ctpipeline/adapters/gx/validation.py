"""Validate a batch DataFrame against a GX suite file: GX runs, ``ctpipeline.core.quality`` words the result."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from ctpipeline.adapters.gx.context import GX_LOCK, batch_definition
from ctpipeline.adapters.gx.suite import cached_suite
from ctpipeline.core.jsonable import to_jsonable
from ctpipeline.core.quality import QualityResult, quality_result, validation_error

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)

__all__ = ["RESULT_FORMAT", "validate"]

# GX result format: SUMMARY gives counts, percentages and a short list of unexpected values.
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 10}


def validate(df: pd.DataFrame, suite_path: str | Path) -> QualityResult:
    """Run the suite at `suite_path` on `df` (not modified).

    Raises QualitySuiteError for a bad suite file; anything wrong with the data gives
    success=False with the failed expectations, never an exception.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate() needs a pandas DataFrame, got {type(df).__name__}")
    _, suite = cached_suite(suite_path)
    with GX_LOCK:
        try:
            batch = batch_definition().get_batch(batch_parameters={"dataframe": df})
            result = batch.validate(suite, result_format=RESULT_FORMAT)
            raw = to_jsonable(result.to_json_dict())
        except Exception as exc:  # GX could not run the suite at all: a failed gate, not a crash
            log.warning("GX could not validate the batch against suite %r", suite.name, exc_info=True)
            return validation_error(suite.name, len(suite.expectations), exc, traceback.format_exc())
        expectations = [exp.configuration.to_json_dict() for exp in suite.expectations]
    return quality_result(raw, suite.name, expectations, {c for c in df.columns if isinstance(c, str)})
