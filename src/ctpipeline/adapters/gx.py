"""Data quality gate: validate a batch DataFrame against a Great Expectations suite.

A thin adapter over Great Expectations (GX) 1.x. It knows nothing about Prefect or MLflow:
it reads a suite from a JSON file, runs it on a pandas DataFrame and returns plain,
JSON-serialisable results.

* The suite file is GX 1.x's own serialisation of an ExpectationSuite
  (``suite.to_json_dict()``)::

      {"name": "flights",
       "expectations": [{"type": "expect_column_values_to_be_between",
                         "kwargs": {"column": "distance", "min_value": 1, "max_value": 6000},
                         "meta": {}}],
       "meta": {}}

* Validation uses an in-memory (ephemeral) GX context with one pandas datasource, one
  dataframe asset and one whole-dataframe batch definition; nothing is written to disk.
* Problems in the *data* (a missing column, strings in a numeric column, ...) never raise:
  they come back as failed expectations, with GX's exception message where GX hit an error.
  Problems in the *suite file* raise :class:`ctpipeline.errors.QualitySuiteError`.

``great_expectations`` takes several seconds to import, so it is imported on first use only.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import threading
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipeline.errors import QualitySuiteError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)

__all__ = ["FailedExpectation", "QualityResult", "load_suite", "validate"]

# GX result format: SUMMARY gives counts, percentages and a short list of unexpected values.
_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 10}
_EXAMPLES = 5  # unexpected values quoted in a FailedExpectation.observed
_SUITE_KEYS = ("name", "expectations", "meta", "suite_parameters", "notes", "id")
_EXPECTATION_KEYS = (
    "type", "kwargs", "meta", "notes", "description", "severity",
    "success_on_last_run", "id", "expectation_context", "rendered_content",
)


# --------------------------------------------------------------------------- results


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


# --------------------------------------------------------------------------- GX, lazily

_gx_lock = threading.RLock()  # GX contexts are not documented as thread-safe: one validation at a time
_gx_state: dict[str, Any] = {}
_suite_cache: dict[tuple[str, int, int], tuple[dict, Any]] = {}


def _gx():
    """Import great_expectations once, quietly (no progress bars, no INFO chatter)."""
    mod = _gx_state.get("gx")
    if mod is None:
        import warnings

        gx_log = logging.getLogger("great_expectations")
        if gx_log.level == logging.NOTSET:  # respect a level the application set itself
            gx_log.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import great_expectations as mod
        _gx_state["gx"] = mod
    return mod


def _batch_definition():
    """The process-wide ephemeral context's whole-dataframe batch definition (created once)."""
    bd = _gx_state.get("batch_definition")
    if bd is None:
        gx = _gx()
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        config = DataContextConfig(
            # init_temp_docs_sites=False: no data docs site, not even a temporary folder name
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            analytics_enabled=False,
        )
        context = gx.get_context(mode="ephemeral", project_config=config)
        asset = context.data_sources.add_pandas("ctpipeline").add_dataframe_asset("batch")
        bd = asset.add_batch_definition_whole_dataframe("whole_batch")
        _gx_state["context"] = context
        _gx_state["batch_definition"] = bd
    return bd


# --------------------------------------------------------------------------- suite loading


def load_suite(path: str | Path) -> dict:
    """Read and check a GX 1.x expectation suite JSON file; returns its content as a dict.

    Raises QualitySuiteError naming the file (and the expectation / key at fault) when the
    file is missing or unreadable, is not JSON, or is not a valid suite.
    """
    data, _ = _load(path)
    return copy.deepcopy(data)


def _load(path: str | Path) -> tuple[dict, Any]:
    """(suite dict, gx.ExpectationSuite), cached per file path + mtime + size."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise QualitySuiteError(str(p), "file not found") from None
    except OSError as exc:
        raise QualitySuiteError(str(p), f"cannot read file: {exc}") from None
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    with _gx_lock:
        hit = _suite_cache.get(key)
        if hit is not None:
            return hit
        data = _read_json(p)
        suite = _build_suite(p, data)
        _suite_cache.clear()  # one suite file is in use at a time; do not grow without bound
        _suite_cache[key] = (data, suite)
        return data, suite


def _read_json(p: Path) -> dict:
    if p.is_dir():
        raise QualitySuiteError(str(p), "is a directory, not a suite file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QualitySuiteError(str(p), f"cannot read file: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QualitySuiteError(
            str(p), f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(data, dict):
        raise QualitySuiteError(
            str(p), f"a suite must be a JSON object with 'name' and 'expectations', got {type(data).__name__}"
        )
    return data


def _build_suite(p: Path, data: dict):
    """Check the suite dict key by key, then build the gx.ExpectationSuite."""
    problems: list[tuple[str, str]] = []
    for k in data:
        if k not in _SUITE_KEYS:
            problems.append((k, f"unknown key; a suite has {', '.join(_SUITE_KEYS)}"))
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(("name", "required, a non-empty string"))
    for k in ("meta", "suite_parameters"):
        if data.get(k) is not None and not isinstance(data[k], dict):
            problems.append((k, f"must be an object, got {type(data[k]).__name__}"))
    exps = data.get("expectations")
    if not isinstance(exps, list):
        problems.append(("expectations", "required, a list of expectations"))
        exps = []
    elif not exps:
        problems.append(("expectations", "is empty: a suite without expectations would pass any data"))
    if problems:
        raise QualitySuiteError(str(p), problems)

    _gx()
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    for i, exp in enumerate(exps):
        where = f"expectations[{i}]"
        if not isinstance(exp, dict):
            problems.append((where, f"must be an object with 'type' and 'kwargs', got {type(exp).__name__}"))
            continue
        etype = exp.get("type")
        if isinstance(etype, str):
            where = f"expectations[{i}] ({etype})"
        unknown = [k for k in exp if k not in _EXPECTATION_KEYS]
        for k in unknown:
            problems.append((f"{where}.{k}", "unknown key; an expectation has type, kwargs, meta, ..."))
        if not isinstance(etype, str) or not etype:
            problems.append((f"{where}.type", "required, the expectation type, e.g. 'expect_column_to_exist'"))
            continue
        if not isinstance(exp.get("kwargs"), dict):
            problems.append((f"{where}.kwargs", "required, an object of the expectation's arguments"))
            continue
        if exp.get("meta") is not None and not isinstance(exp["meta"], dict):
            problems.append((f"{where}.meta", "must be an object"))
            continue
        if unknown:
            continue
        try:
            ExpectationConfiguration(**copy.deepcopy(exp)).to_domain_obj()
        except ExpectationNotFoundError:
            problems.append((f"{where}.type", f"unknown expectation type {etype!r}"))
        except Exception as exc:  # pydantic ValidationError (kwargs) or GX configuration errors
            problems.extend(_kwargs_problems(where, exc))
    if problems:
        raise QualitySuiteError(str(p), problems)

    try:
        suite = _gx().ExpectationSuite(**copy.deepcopy(data))
    except Exception as exc:
        raise QualitySuiteError(str(p), f"not a valid GX expectation suite: {exc}") from None
    if len(suite.expectations) != len(exps):  # GX logs and drops expectations it cannot build
        raise QualitySuiteError(
            str(p), f"GX accepted only {len(suite.expectations)} of {len(exps)} expectations"
        )
    return suite


def _kwargs_problems(where: str, exc: Exception) -> list[tuple[str, str]]:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            out = []
            for err in errors():
                loc = ".".join(str(x) for x in err.get("loc", ()) if x != "__root__")
                out.append((f"{where}.kwargs" + (f".{loc}" if loc else ""), str(err.get("msg", ""))))
            # pydantic reports every alternative of a Union field; keep each message once
            return list(dict.fromkeys(out)) or [(f"{where}.kwargs", str(exc))]
        except Exception:  # pragma: no cover - defensive: fall back to the message
            pass
    msg = getattr(exc, "message", None) or str(exc)
    return [(f"{where}.kwargs", f"{type(exc).__name__}: {msg}")]


# --------------------------------------------------------------------------- validation


def validate(df: pd.DataFrame, suite_path: str | Path) -> QualityResult:
    """Run the suite at `suite_path` on `df` (not modified).

    Raises QualitySuiteError for a bad suite file; anything wrong with the data gives
    success=False with the failed expectations, never an exception.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate() needs a pandas DataFrame, got {type(df).__name__}")
    _, suite = _load(suite_path)
    with _gx_lock:
        try:
            batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
            result = batch.validate(suite, result_format=_RESULT_FORMAT)
            raw = _jsonable(result.to_json_dict())
        except Exception as exc:  # GX could not run the suite at all: a failed gate, not a crash
            log.warning("GX could not validate the batch against suite %r", suite.name, exc_info=True)
            return _crashed(suite, exc)
    return _to_result(raw, suite, {c for c in df.columns if isinstance(c, str)})


def _crashed(suite, exc: Exception) -> QualityResult:
    message = f"{type(exc).__name__}: {exc}"
    failed = FailedExpectation("gx_validation_error", None, {}, f"GX could not validate the batch: {message}")
    n = len(suite.expectations)
    stats = {
        "evaluated_expectations": n,
        "successful_expectations": 0,
        "unsuccessful_expectations": n,
        "success_percent": 0.0,
    }
    raw = {
        "success": False,
        "suite_name": suite.name,
        "results": [],
        "statistics": stats,
        "exception_info": {"exception_message": message, "exception_traceback": traceback.format_exc()},
    }
    return QualityResult(False, suite.name, n, (failed,), stats, raw)


def _jsonable(obj: Any) -> Any:
    """GX's to_json_dict() output, guaranteed to survive json.dumps (NaN -> None, odd types -> str)."""
    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if x is None or isinstance(x, (str, int, float, bool)):
            return x
        return str(x)

    return clean(obj)


def _kwargs_key(etype: str, kwargs: dict) -> str:
    kw = {k: v for k, v in kwargs.items() if k != "batch_id"}
    return etype + json.dumps(_jsonable(kw), sort_keys=True, default=str)


def _to_result(raw: dict, suite, columns: set[str]) -> QualityResult:
    # GX returns results in metric-graph order; report failures in the suite's order
    order: dict[str, int] = {}
    for i, exp in enumerate(suite.expectations):
        cfg = _jsonable(exp.configuration.to_json_dict())
        order.setdefault(_kwargs_key(cfg["type"], cfg.get("kwargs") or {}), i)

    failed: list[tuple[int, FailedExpectation]] = []
    for res in raw.get("results", []):
        if res.get("success"):
            continue
        cfg = res.get("expectation_config") or {}
        etype = str(cfg.get("type", "unknown_expectation"))
        kwargs = {k: v for k, v in (cfg.get("kwargs") or {}).items() if k != "batch_id"}
        column = _column_of(kwargs)
        if isinstance(kwargs.get("column"), str) and kwargs["column"] not in columns:
            # GX's own message for a missing column depends on the expectation (for
            # expect_column_values_to_be_in_type_list it is "list index out of range")
            observed = f"column {kwargs['column']!r} not found"
        else:
            observed = _observed(etype, res)
        fe = FailedExpectation(etype, column, kwargs, observed)
        failed.append((order.get(_kwargs_key(etype, kwargs), len(order)), fe))
    failed.sort(key=lambda t: t[0])

    stats = dict(raw.get("statistics") or {})
    evaluated = int(stats.get("evaluated_expectations", len(raw.get("results", []))))
    success = bool(raw.get("success")) and not failed
    return QualityResult(success, str(raw.get("suite_name") or suite.name), evaluated,
                         tuple(f for _, f in failed), stats, raw)


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
            msgs.append(msg[len("Error: "):] if msg.startswith("Error: ") else msg)
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
    msgs = _exception_messages(res.get("exception_info"))
    if msgs:
        return "; ".join(msgs)
    result = res.get("result") or {}
    if "unexpected_count" in result:
        count = result.get("unexpected_count")
        pct = _pct(result.get("unexpected_percent"))
        if etype == "expect_column_values_to_not_be_null":
            return f"{count} null ({pct})"
        text = f"{count} unexpected ({pct})"
        examples = list(dict.fromkeys(
            json.dumps(v, default=str) for v in (result.get("partial_unexpected_list") or []) if v is not None
        ))[:_EXAMPLES]
        if examples:
            text += f", e.g. [{', '.join(_short_json(e) for e in examples)}]"
        return text
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
