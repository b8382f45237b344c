"""The gate on a Spark DataFrame: the same suite file, run by GX's Spark execution engine (``engine: spark``).

GX computes each expectation's metrics as Spark jobs (``SparkDFExecutionEngine``): nothing is collected but the
metrics. One translation keeps one suite file for both engines: type expectations name pandas dtypes
(``int64``, ``float64``, ``Timestamp`` for a tz-aware time column), which GX's Spark engine reads as
``pyspark.sql.types`` class names; they are validated as the Spark types those columns get when Spark reads the
same Parquet (``LongType``, ``DoubleType``, ``TimestampType``: a naive time column is ``TimestampNTZType`` and
fails, as it does under pandas). The result names the expectations as the suite file does.

The Spark DataFrame is handed in by the caller (`adapters/spark` reads it): pyspark is not imported here.
"""

from __future__ import annotations

import copy
import logging
import traceback
from pathlib import Path
from typing import Any

from ctpipeline.adapters.gx.context import GX_LOCK, batch_definition, import_gx
from ctpipeline.adapters.gx.plan import expectation_key
from ctpipeline.adapters.gx.suite import cached_suite
from ctpipeline.adapters.gx.validation import RESULT_FORMAT
from ctpipeline.core.jsonable import to_jsonable
from ctpipeline.core.quality import QualityResult, quality_result, validation_error

log = logging.getLogger(__name__)

__all__ = ["SPARK_TYPES", "spark_suite", "validate_spark"]

SPARK_TYPES = {
    "int8": "ByteType",
    "int16": "ShortType",
    "int32": "IntegerType",
    "int64": "LongType",
    "Int64": "LongType",
    "float32": "FloatType",
    "float64": "DoubleType",
    "float": "DoubleType",
    "int": "LongType",
    "bool": "BooleanType",
    "boolean": "BooleanType",
    "object": "StringType",
    "str": "StringType",
    "string": "StringType",
    "Timestamp": "TimestampType",
    "datetime64[ns, UTC]": "TimestampType",
    "datetime64[ns]": "TimestampNTZType",
}
_TYPE_KEYS = {"expect_column_values_to_be_in_type_list": "type_list", "expect_column_values_to_be_of_type": "type_"}
_state: dict[str, Any] = {}


def spark_suite(data: dict) -> tuple[dict, dict[str, dict]]:
    """(the suite dict with Spark type names, {translated expectation key: the suite file's configuration})."""
    out = copy.deepcopy(data)
    originals: dict[str, dict] = {}
    for exp, orig in zip(out.get("expectations", []), data.get("expectations", []), strict=True):
        key = _TYPE_KEYS.get(exp.get("type"))
        kwargs = exp.get("kwargs") or {}
        if key and key in kwargs:
            value = kwargs[key]
            if isinstance(value, list):
                kwargs[key] = list(dict.fromkeys(SPARK_TYPES.get(v, v) for v in value))
            elif isinstance(value, str):
                kwargs[key] = SPARK_TYPES.get(value, value)
        exp.pop("id", None)
        originals[expectation_key(exp)] = orig
    return out, originals


def _suite_for(suite_path: str | Path):
    data, suite = cached_suite(suite_path)
    key = (str(Path(suite_path).resolve()), id(suite))
    hit = _state.get("suite")
    if hit is None or hit[0] != key:
        translated, originals = spark_suite(data)
        translated.pop("id", None)
        hit = (key, import_gx().ExpectationSuite(**translated), originals, suite)
        _state["suite"] = hit
    return hit[1], hit[2], hit[3]


def validate_spark(sdf, suite_path: str | Path, drop: tuple[str, ...] = ()) -> QualityResult:
    """Run the suite at `suite_path` on Spark DataFrame `sdf` (columns `drop` left out: the row position)."""
    suite, originals, plain = _suite_for(suite_path)
    sdf = sdf.drop(*[c for c in drop if c in sdf.columns])
    with GX_LOCK:
        try:
            from great_expectations.validator.v1_validator import Validator

            validator = Validator(
                batch_definition=batch_definition("spark"),
                result_format=RESULT_FORMAT,
                batch_parameters={"dataframe": sdf},
            )
            raw = to_jsonable(validator.validate_expectation_suite(suite).to_json_dict())
        except Exception as exc:  # GX could not run the suite at all: a failed gate, not a crash
            log.warning("GX (Spark) could not validate the batch against suite %r", plain.name, exc_info=True)
            return validation_error(plain.name, len(plain.expectations), exc, traceback.format_exc())
    for res in raw.get("results", []):  # name each expectation as the suite file does
        conf = res.get("expectation_config") or {}
        orig = originals.get(expectation_key(conf))
        if orig is not None:
            res["expectation_config"] = {**conf, "kwargs": copy.deepcopy(orig.get("kwargs") or {})}
    raw.setdefault("meta", {})["ctpipeline_gate"] = {"engine": "spark", "result_format": RESULT_FORMAT}
    expectations = [exp.configuration.to_json_dict() for exp in plain.expectations]
    return quality_result(raw, plain.name, expectations, set(sdf.columns))
