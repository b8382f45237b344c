"""Validate a batch DataFrame against a GX suite file: GX runs, ``ctpipeline.core.quality`` words the result.

The verdicts are GX's, computed the cheap way (measured on 1M flights rows, 79 expectations, see bench/README.md):

1. **pass/fail run**: the suite is cut into per-column groups (:mod:`.plan`: each group's frame holds only the
   columns its expectations read), each group validated by GX with the cheapest result format
   (``BOOLEAN_ONLY``: no unexpected-value lists, counts or indexes), one batch load per group, without the costs
   of :mod:`.speedups` that change no result; what must see the whole batch (table-level expectations, missing
   or duplicated columns, a named index) is validated on it with ``SUMMARY`` at once, as plain GX does;
2. **details for what failed**: only the column-group expectations that failed are validated again, in the same
   groups, with ``SUMMARY`` (counts, percentages, the first unexpected values), which the gate's wording reads;
   not those that failed because GX raised (a range check on strings): SUMMARY would give the same empty result
   and the same exception.

The result (``QualityResult.raw``) has GX's shape (``ExpectationSuiteValidationResult.to_json_dict()``), its
results in suite order: the failed expectations with their SUMMARY result, the others with their BOOLEAN_ONLY
one (``result: {}``); ``meta.ctpipeline_gate`` says how it was computed. Success, the failed expectations and
their wording are those of plain ``batch.validate(suite, result_format=SUMMARY)`` on the whole frame
(tests/integration/adapters/test_gx_fast.py checks it on a clean and on broken batches).
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipeline.adapters.gx.context import GX_LOCK, batch_definition, forget_metrics
from ctpipeline.adapters.gx.plan import Group, expectation_key, plan_groups, subset
from ctpipeline.adapters.gx.speedups import cheaper_gx
from ctpipeline.adapters.gx.suite import cached_suite
from ctpipeline.core.jsonable import to_jsonable
from ctpipeline.core.quality import QualityResult, quality_result, validation_error

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)

__all__ = ["PASS_FORMAT", "RESULT_FORMAT", "run_group", "run_suite", "validate"]

# GX result formats: the pass/fail run needs only the verdicts; SUMMARY gives counts, percentages and a short
# list of unexpected values for the expectations that failed.
PASS_FORMAT = "BOOLEAN_ONLY"
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
            with cheaper_gx():
                raw = run_suite(df, suite)
        except Exception as exc:  # GX could not run the suite at all: a failed gate, not a crash
            log.warning("GX could not validate the batch against suite %r", suite.name, exc_info=True)
            return validation_error(suite.name, len(suite.expectations), exc, traceback.format_exc())
        finally:
            forget_metrics()
        expectations = [exp.configuration.to_json_dict() for exp in suite.expectations]
    return quality_result(raw, suite.name, expectations, {c for c in df.columns if isinstance(c, str)})


def run_suite(df: pd.DataFrame, suite) -> dict:
    """GX's validation result (as JSON) of `suite` on `df`: the pass/fail run, then details for what failed."""
    groups = plan_groups(suite, df.columns, df.index.names)
    results: dict[int, dict] = {}
    meta: dict = {}
    for group in groups:  # the whole-batch group as plain GX runs it, the column groups pass/fail only
        found, run_meta = run_group(df, group, RESULT_FORMAT if group.columns is None else PASS_FORMAT)
        results.update(found)
        meta = meta or run_meta  # the first group's: the whole batch's, when there is such a group
    # a failure GX raised on is already all SUMMARY would say (its result is empty, the exception the same)
    failed = [i for i in sorted(results) if not results[i].get("success") and not _raised(results[i])]
    failed_set, detailed, rerun = set(failed), 0, 0
    for group in groups:
        again = [i for i in group.indices if i in failed_set and group.columns is not None]
        if again:
            found, _ = run_group(df, subset(suite, again, group.columns), RESULT_FORMAT)
            results.update(found)
            detailed, rerun = detailed + 1, rerun + len(again)
    if sorted(results) != list(range(len(suite.expectations))):
        raise RuntimeError(f"GX returned {len(results)} results for {len(suite.expectations)} expectations")
    ordered = [results[i] for i in range(len(suite.expectations))]
    how = {"pass_result_format": PASS_FORMAT, "detail_result_format": RESULT_FORMAT, "groups": len(groups)}
    how.update(detailed_groups=detailed, detailed_expectations=rerun)
    return _suite_result(suite.name, ordered, {**meta, "ctpipeline_gate": how})


def run_group(df: pd.DataFrame, group: Group, result_format: Any) -> tuple[dict[int, dict], dict]:
    """({suite position: result as JSON}, the run's meta) for `group` validated by GX on its frame of `df`."""
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(
        batch_definition=batch_definition(),
        result_format=result_format,
        batch_parameters={"dataframe": group.frame(df)},
    )
    raw = to_jsonable(validator.validate_expectation_suite(group.suite).to_json_dict())
    waiting: dict[str, list[int]] = {}
    for key, i in zip(group.keys, group.indices, strict=True):
        waiting.setdefault(key, []).append(i)
    found: dict[int, dict] = {}
    for res in raw.get("results", []):
        positions = waiting.get(expectation_key(res.get("expectation_config") or {}))
        if not positions:
            raise RuntimeError(
                f"GX returned a result for an expectation not in the group: {res.get('expectation_config')}"
            )
        found[positions.pop(0)] = res
    return found, raw.get("meta") or {}


def _raised(result: dict) -> bool:
    """Whether GX hit an exception computing the expectation (exception_info flat, or keyed by metric id)."""
    info = result.get("exception_info") or {}
    found = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    return any(item.get("raised_exception") for item in found)


def _suite_result(name: str, results: list[dict], meta: dict) -> dict:
    """An ExpectationSuiteValidationResult as JSON, statistics computed as GX's calc_validation_statistics does."""
    n = len(results)
    ok = sum(bool(r.get("success")) for r in results)
    statistics = {
        "evaluated_expectations": n,
        "successful_expectations": ok,
        "unsuccessful_expectations": n - ok,
        "success_percent": ok / n * 100 if n else None,
    }
    return {
        "success": ok == n,
        "suite_name": name,
        "suite_parameters": {},
        "statistics": statistics,
        "meta": meta,
        "results": results,
        "id": None,
    }
