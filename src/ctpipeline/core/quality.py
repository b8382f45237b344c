"""The quality gate's result, in plain words: what failed, what was observed, what was expected.

Pure: these functions work on the plain dicts Great Expectations (GX) 1.x produces
(``ExpectationSuiteValidationResult.to_json_dict()`` and each ``ExpectationConfiguration.to_json_dict()``),
so they can be tested without GX. ``ctpipeline.adapters.gx.validate`` runs GX and hands its output here.

* :func:`quality_result` turns a GX validation result into a :class:`QualityResult`, the failures in the
  suite's order (GX reports them in metric-graph order), each with an "observed" text (counts, a few
  unexpected values, GX's own exception message) and, in ``describe()``, the "expected" text.
* :func:`validation_error` is the failed gate for a batch GX could not validate at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ctpipeline.core.jsonable import to_jsonable

__all__ = ["FailedExpectation", "QualityResult", "quality_result", "validation_error"]

EXAMPLES = 5  # unexpected values quoted in a FailedExpectation.observed


@dataclass(frozen=True)
class FailedExpectation:
    """One expectation that did not hold on the batch (or could not be evaluated)."""

    expectation_type: str
    column: str | None
    kwargs: dict = field(hash=False)
    observed: str

    def describe(self) -> str:
        """One line, e.g. ``expect_column_values_to_be_between(distance): 3 unexpected (0.1%),
        e.g. [7000, 9000] (expected between 1 and 6000)``."""
        head = f"{self.expectation_type}({self.column})" if self.column else self.expectation_type
        hint = _expected_hint(self.expectation_type, self.kwargs)
        return f"{head}: {self.observed}" + (f" (expected {hint})" if hint else "")

    def to_dict(self) -> dict:
        return {**asdict(self), "description": self.describe()}


@dataclass(frozen=True)
class QualityResult:
    """Outcome of validating one batch against one suite."""

    success: bool
    suite_name: str
    evaluated: int
    failed: tuple[FailedExpectation, ...]
    statistics: dict = field(hash=False)
    raw: dict = field(hash=False, repr=False)

    def summary(self) -> str:
        if self.success:
            return f"quality gate PASSED ({self.evaluated}/{self.evaluated} expectations)"
        lines = [f"quality gate FAILED: {len(self.failed)} of {self.evaluated} expectations failed"]
        lines += [f"  - {f.describe()}" for f in self.failed]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "success": self.success,
            "suite_name": self.suite_name,
            "evaluated": self.evaluated,
            "failed": [f.to_dict() for f in self.failed],
            "statistics": dict(self.statistics),
        }


def quality_result(
    raw: dict, suite_name: str, expectations: Iterable[Mapping], columns: Iterable[str]
) -> QualityResult:
    """The QualityResult for GX's validation result `raw` (JSON-clean, as from ``to_jsonable``).

    `expectations`: the suite's expectation configurations as dicts (``type``, ``kwargs``), in suite order;
    `columns`: the batch's column names (an expectation on a column not among them reads "not found").
    """
    # GX returns results in metric-graph order; report failures in the suite's order
    order: dict[str, int] = {}
    for i, exp in enumerate(expectations):
        cfg = to_jsonable(exp)
        order.setdefault(_expectation_key(cfg["type"], cfg.get("kwargs") or {}), i)
    present = set(columns)

    failed: list[tuple[int, FailedExpectation]] = []
    for res in raw.get("results", []):
        if res.get("success"):
            continue
        cfg = res.get("expectation_config") or {}
        etype = str(cfg.get("type", "unknown_expectation"))
        kwargs = {k: v for k, v in (cfg.get("kwargs") or {}).items() if k != "batch_id"}
        if isinstance(kwargs.get("column"), str) and kwargs["column"] not in present:
            # GX's own message for a missing column depends on the expectation (for
            # expect_column_values_to_be_in_type_list it is "list index out of range")
            observed = f"column {kwargs['column']!r} not found"
        else:
            observed = _observed(etype, res)
        fe = FailedExpectation(etype, _column_of(kwargs), kwargs, observed)
        failed.append((order.get(_expectation_key(etype, kwargs), len(order)), fe))
    failed.sort(key=lambda t: t[0])

    stats = dict(raw.get("statistics") or {})
    evaluated = int(stats.get("evaluated_expectations", len(raw.get("results", []))))
    success = bool(raw.get("success")) and not failed
    return QualityResult(
        success, str(raw.get("suite_name") or suite_name), evaluated, tuple(f for _, f in failed), stats, raw
    )


def validation_error(suite_name: str, n_expectations: int, exc: BaseException, traceback_text: str) -> QualityResult:
    """The failed gate when GX could not run the suite on the batch at all (`exc` raised, with its traceback)."""
    message = f"{type(exc).__name__}: {exc}"
    failed = FailedExpectation("gx_validation_error", None, {}, f"GX could not validate the batch: {message}")
    n = n_expectations
    stats = {
        "evaluated_expectations": n,
        "successful_expectations": 0,
        "unsuccessful_expectations": n,
        "success_percent": 0.0,
    }
    raw = {
        "success": False,
        "suite_name": suite_name,
        "results": [],
        "statistics": stats,
        "exception_info": {"exception_message": message, "exception_traceback": traceback_text},
    }
    return QualityResult(False, suite_name, n, (failed,), stats, raw)


def _expectation_key(etype: str, kwargs: dict) -> str:
    kw = {k: v for k, v in kwargs.items() if k != "batch_id"}
    return etype + json.dumps(to_jsonable(kw), sort_keys=True, default=str)


def _column_of(kwargs: dict) -> str | None:
    if isinstance(kwargs.get("column"), str):
        return kwargs["column"]
    pair = [kwargs.get("column_A"), kwargs.get("column_B")]
    if all(isinstance(c, str) for c in pair):
        return ", ".join(pair)
    cols = kwargs.get("column_list")
    if isinstance(cols, list) and cols:
        return ", ".join(str(c) for c in cols)
    return None


def _exception_messages(info: Any) -> list[str]:
    """GX puts either one {raised_exception, exception_message, ...} or a dict of them keyed by
    metric id into exception_info."""
    if not isinstance(info, dict):
        return []
    found = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    msgs = []
    for item in found:
        if item.get("raised_exception") and item.get("exception_message"):
            msg = str(item["exception_message"]).strip()
            msgs.append(msg[len("Error: ") :] if msg.startswith("Error: ") else msg)
    return list(dict.fromkeys(msgs))


def _short(value: Any, limit: int = 120) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pct(p: Any) -> str:
    try:
        p = float(p)
    except (TypeError, ValueError):
        return "?"
    return f"{p:.1f}%" if p >= 1 or p == 0 else f"{p:.2g}%"


def _observed(etype: str, res: dict) -> str:
    """What GX saw, in a few words: its exception message, the unexpected count and values, or the value."""
    msgs = _exception_messages(res.get("exception_info"))
    if msgs:
        return "; ".join(msgs)
    result = res.get("result") or {}
    if "unexpected_count" in result:
        return _unexpected(etype, result)
    if "observed_value" in result:
        details = result.get("details") or {}
        mismatched = details.get("mismatched") if isinstance(details, dict) else None
        if isinstance(mismatched, dict) and (mismatched.get("missing") or mismatched.get("unexpected")):
            parts = []
            if mismatched.get("missing"):
                parts.append(f"missing columns {_short(mismatched['missing'])}")
            if mismatched.get("unexpected"):
                parts.append(f"unexpected columns {_short(mismatched['unexpected'])}")
            return ", ".join(parts)
        return f"observed {_short(result['observed_value'])}"
    if etype == "expect_column_to_exist":
        return "column not found"
    return f"failed: {_short(result)}" if result else "failed"


def _unexpected(etype: str, result: dict) -> str:
    count = result.get("unexpected_count")
    pct = _pct(result.get("unexpected_percent"))
    if etype == "expect_column_values_to_not_be_null":
        return f"{count} null ({pct})"
    text = f"{count} unexpected ({pct})"
    examples = list(
        dict.fromkeys(
            json.dumps(v, default=str) for v in (result.get("partial_unexpected_list") or []) if v is not None
        )
    )[:EXAMPLES]
    if examples:
        text += f", e.g. [{', '.join(_short_json(e) for e in examples)}]"
    return text


def _short_json(encoded: str, limit: int = 40) -> str:
    try:
        value = json.loads(encoded)
    except ValueError:  # pragma: no cover
        value = encoded
    text = repr(value) if isinstance(value, str) else encoded
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _expected_hint(etype: str, kw: dict) -> str:
    """What the expectation asked for, in a few words (empty when nothing useful to add)."""
    parts = []
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if lo is not None and hi is not None:
        parts.append(f"between {_fmt(lo)} and {_fmt(hi)}")
    elif lo is not None:
        parts.append(f"at least {_fmt(lo)}")
    elif hi is not None:
        parts.append(f"at most {_fmt(hi)}")
    if kw.get("value_set") is not None:
        parts.append(f"in {_short(kw['value_set'], 80)}")
    if kw.get("type_list") is not None:
        parts.append(f"dtype in {_short(kw['type_list'], 80)}")
    if kw.get("type_") is not None:
        parts.append(f"type {kw['type_']}")
    if kw.get("regex") is not None:
        parts.append(f"to match {kw['regex']!r}")
    if etype == "expect_column_values_to_not_be_null":
        parts.append("not null")
    mostly = kw.get("mostly")
    if mostly is not None and parts and float(mostly) < 1:
        parts.append(f"for at least {float(mostly) * 100:g}% of rows")
    return " ".join(parts)
