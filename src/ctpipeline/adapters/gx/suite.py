"""Read and check a GX 1.x expectation suite file, key by key, before GX builds it.

The suite file is GX 1.x's own serialisation of an ExpectationSuite (``suite.to_json_dict()``)::

    {"name": "flights",
     "expectations": [{"type": "expect_column_values_to_be_between",
                       "kwargs": {"column": "distance", "min_value": 1, "max_value": 6000},
                       "meta": {}}],
     "meta": {}}

Problems in the *suite file* raise :class:`ctpipeline.errors.QualitySuiteError` naming the file and,
where possible, the expectation and key at fault.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from ctpipeline.adapters.gx.context import GX_LOCK, import_gx
from ctpipeline.adapters.gx.plan import expectation_key
from ctpipeline.errors import QualitySuiteError

__all__ = ["cached_suite", "load_suite"]

SUITE_KEYS = ("name", "expectations", "meta", "suite_parameters", "notes", "id")
EXPECTATION_KEYS = (
    "type",
    "kwargs",
    "meta",
    "notes",
    "description",
    "severity",
    "success_on_last_run",
    "id",
    "expectation_context",
    "rendered_content",
)

_suite_cache: dict[tuple[str, int, int], tuple[dict, Any]] = {}


def load_suite(path: str | Path) -> dict:
    """Read and check a GX 1.x expectation suite JSON file; returns its content as a dict.

    Raises QualitySuiteError naming the file (and the expectation / key at fault) when the
    file is missing or unreadable, is not JSON, or is not a valid suite.
    """
    data, _ = cached_suite(path)
    return copy.deepcopy(data)


def cached_suite(path: str | Path) -> tuple[dict, Any]:
    """(suite dict, gx.ExpectationSuite), cached per file path + mtime + size. Do not modify either."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise QualitySuiteError(str(p), "file not found") from None
    except OSError as exc:
        raise QualitySuiteError(str(p), f"cannot read file: {exc}") from None
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    with GX_LOCK:
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
        raise QualitySuiteError(str(p), f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise QualitySuiteError(
            str(p), f"a suite must be a JSON object with 'name' and 'expectations', got {type(data).__name__}"
        )
    return data


def _build_suite(p: Path, data: dict):
    """Check the suite dict key by key, then each expectation, then build the gx.ExpectationSuite."""
    problems = _suite_problems(data)
    if problems:
        raise QualitySuiteError(str(p), problems)
    exps = data["expectations"]

    import_gx()
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    for i, exp in enumerate(exps):
        problems += _expectation_problems(i, exp, ExpectationConfiguration, ExpectationNotFoundError)
    if problems:
        raise QualitySuiteError(str(p), problems)

    try:
        suite = import_gx().ExpectationSuite(**copy.deepcopy(data))
    except Exception as exc:
        raise QualitySuiteError(str(p), f"not a valid GX expectation suite: {exc}") from None
    if len(suite.expectations) != len(exps):  # GX logs and drops expectations it cannot build
        raise QualitySuiteError(str(p), f"GX accepted only {len(suite.expectations)} of {len(exps)} expectations")
    duplicates = _duplicates(suite)
    if duplicates:
        raise QualitySuiteError(str(p), duplicates)
    return suite


def _duplicates(suite) -> list[tuple[str, str]]:
    """(key, reason) for each expectation identical to an earlier one (same type and arguments).

    A suite never needs one twice, and GX miscounts them: when a metric of such an expectation raises, its
    validation result holds one result too many.
    """
    first: dict[str, int] = {}
    problems = []
    for i, exp in enumerate(suite.expectations):
        j = first.setdefault(expectation_key(exp.configuration.to_json_dict()), i)
        if j != i:
            problems.append((f"expectations[{i}] ({exp.expectation_type})", f"duplicate of expectations[{j}]"))
    return problems


def _suite_problems(data: dict) -> list[tuple[str, str]]:
    """(key, reason) for each problem at the suite's top level."""
    problems: list[tuple[str, str]] = []
    for k in data:
        if k not in SUITE_KEYS:
            problems.append((k, f"unknown key; a suite has {', '.join(SUITE_KEYS)}"))
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(("name", "required, a non-empty string"))
    for k in ("meta", "suite_parameters"):
        if data.get(k) is not None and not isinstance(data[k], dict):
            problems.append((k, f"must be an object, got {type(data[k]).__name__}"))
    exps = data.get("expectations")
    if not isinstance(exps, list):
        problems.append(("expectations", "required, a list of expectations"))
    elif not exps:
        problems.append(("expectations", "is empty: a suite without expectations would pass any data"))
    return problems


def _expectation_problems(i: int, exp: Any, configuration, not_found) -> list[tuple[str, str]]:
    """(key, reason) for each problem of expectation `i`; GX builds it (`configuration`) when the keys are right."""
    where = f"expectations[{i}]"
    if not isinstance(exp, dict):
        return [(where, f"must be an object with 'type' and 'kwargs', got {type(exp).__name__}")]
    etype = exp.get("type")
    if isinstance(etype, str):
        where = f"expectations[{i}] ({etype})"
    unknown = [k for k in exp if k not in EXPECTATION_KEYS]
    problems = [(f"{where}.{k}", "unknown key; an expectation has type, kwargs, meta, ...") for k in unknown]
    if not isinstance(etype, str) or not etype:
        return problems + [(f"{where}.type", "required, the expectation type, e.g. 'expect_column_to_exist'")]
    if not isinstance(exp.get("kwargs"), dict):
        return problems + [(f"{where}.kwargs", "required, an object of the expectation's arguments")]
    if exp.get("meta") is not None and not isinstance(exp["meta"], dict):
        return problems + [(f"{where}.meta", "must be an object")]
    if unknown:
        return problems
    try:
        configuration(**copy.deepcopy(exp)).to_domain_obj()
    except not_found:
        return [(f"{where}.type", f"unknown expectation type {etype!r}")]
    except Exception as exc:  # pydantic ValidationError (kwargs) or GX configuration errors
        return _kwargs_problems(where, exc)
    return []


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
