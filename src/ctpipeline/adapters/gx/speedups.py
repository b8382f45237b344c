"""Five costs Great Expectations pays on a pandas batch that change nothing in any result, skipped for one run.

Measured with cProfile on 1M flights rows (79 expectations), each is a pure-Python pass or a repeat of work:

* **the batch fingerprint**: every time a batch is loaded GX hashes every cell of the frame
  (``hash_pandas_dataframe``, ~0.5 s at 1M rows, object columns dominating) to put an md5 into the result's
  ``meta.batch_markers``; GX itself skips it above ``HASH_THRESHOLD`` (1 GB). Set to 0 here: the result's
  meta loses ``pandas_data_fingerprint``, nothing else changes;
* **the Decimal scan**: before a column mean / standard deviation / sum, GX looks for ``decimal.Decimal``
  objects with a Python generator over every value (``does_ndarray_contain_decimal_dtype``, ~0.15 s per call at
  1M rows), also on a float64 array, which cannot hold one. Here the scan runs for object arrays only;
* **the retries**: when one metric raises (a range check on a column of strings), GX discards every metric
  computed in the same round and recomputes them, up to ``MAX_METRIC_COMPUTATION_RETRIES`` (3) times, for
  transient errors of remote engines. On an in-memory pandas frame the same error comes back every time; here
  a metric is given up after its first failure, with the same exception message;
* **the class-name conversion**: every read of an expectation's ``configuration`` (~60 per expectation and
  validation) turns its class name into snake case with two regular expressions (``camel_to_snake``, ~10% of a
  validation on a month of flights); here that pure function is memoised;
* **the configuration rebuilt**: each of those reads also rebuilds the whole ``ExpectationConfiguration`` from the
  pydantic model (``self.dict()``: ~20% of a validation on a month), once per domain and success key looked up.
  Here an expectation's configuration is built once per run and handed out again while none of its fields has
  been assigned since (GX builds fresh expectation objects for each validation, and reads them only).

:func:`cheaper_gx` applies them for the duration of a ``with`` block (callers hold ``GX_LOCK``) and restores
GX's own values afterwards. Where a later GX renames one of them nothing is patched: only slower.
``tests/integration/adapters/test_gx_fast.py`` checks that the verdicts and wording are those of plain
``batch.validate(suite)`` and that every patch target still exists in the pinned GX.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from typing import Any

from ctpipeline.adapters.patching import swapped

__all__ = ["PATCHES", "cheaper_gx", "patch_targets"]

# (module, attribute): what is replaced and why, in the module doc's order
PATCHES = (
    ("great_expectations.execution_engine.pandas_execution_engine", "HASH_THRESHOLD"),
    ("great_expectations.util", "does_ndarray_contain_decimal_dtype"),
    ("great_expectations.validator.validation_graph", "MAX_METRIC_COMPUTATION_RETRIES"),
    ("great_expectations.expectations.expectation", "camel_to_snake"),
    ("great_expectations.expectations.expectation", "Expectation.configuration"),
)


def patch_targets() -> dict[tuple[str, str], bool]:
    """(module, attribute) -> whether the installed GX still has it (imports GX's modules)."""
    import importlib

    return {(m, a): _target(importlib.import_module(m), a)[0] is not None for m, a in PATCHES}


def _target(module: Any, attr: str) -> tuple[Any, str]:
    """(the object holding `attr`, its last name); (None, name) when the installed GX has no such attribute."""
    owner, *path = module, *attr.split(".")
    for name in path[:-1]:
        owner = vars(owner).get(name) if hasattr(owner, "__dict__") else None
    return (owner if owner is not None and path[-1] in vars(owner) else None), path[-1]


def _memoised_configuration(original: property) -> property:
    """`Expectation.configuration`, built once per expectation object for as long as the patch holds and built
    again when a field of the object has been assigned since (the ids of its field values changed)."""
    built: dict[int, tuple[Any, tuple[int, ...], Any]] = {}

    def configuration(self):
        fields = tuple(map(id, vars(self).values()))
        hit = built.get(id(self))
        if hit is not None and hit[0] is self and hit[1] == fields:
            return hit[2]
        config = original.fget(self)
        built[id(self)] = (self, fields, config)
        return config

    return property(configuration, doc=original.__doc__)


def _replacement(attr: str, original: Any) -> Any:
    if attr == "HASH_THRESHOLD":
        return 0
    if attr == "MAX_METRIC_COMPUTATION_RETRIES":
        return 1
    if attr == "camel_to_snake":
        return functools.lru_cache(maxsize=1024)(original)  # a pure function of a class name
    if attr == "Expectation.configuration":
        return _memoised_configuration(original)

    def scan_object_arrays_only(data):  # an array of numbers, booleans or datetimes never holds a decimal.Decimal
        kind = getattr(getattr(data, "dtype", None), "kind", "O")
        return kind not in "biufcmM" and original(data)

    return scan_object_arrays_only


def _patched(module_name: str, attr: str) -> AbstractContextManager[None]:
    import importlib

    owner, name = _target(importlib.import_module(module_name), attr)
    if owner is None:  # pragma: no cover - a different GX: nothing to skip
        return nullcontext()
    return swapped(owner, name, _replacement(attr, vars(owner)[name]))


@contextmanager
def cheaper_gx() -> Iterator[None]:
    """GX without the batch fingerprint, the Decimal scan of numeric arrays, the metric retries, the repeated
    class-name conversions and the configurations rebuilt on every read."""
    with ExitStack() as stack:
        for module_name, attr in PATCHES:
            stack.enter_context(_patched(module_name, attr))
        yield
