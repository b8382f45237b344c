"""Which columns each expectation of a suite reads: the suite cut into per-column groups, each a GX suite.

GX's pandas engine filters the *whole* batch frame for every column-map metric (``df[df[col].notnull()]``
copies all 28 columns of a flights batch, ~40 times per validation): 2.9 s of the 8.8 s that cProfile sees on
1M rows. An expectation on one column computes the same result on a frame holding only that column (same rows,
same index, same values), so the suite is validated group by group: every expectation whose domain is a column
(or a pair, or a list of columns) runs with the other expectations on the same columns, on a frame of just those
columns. What needs the whole batch runs on the whole batch, as plain GX would:

* table-level expectations (row count, column set, ...), and ``expect_column_to_exist`` with ``column_index``;
* any expectation with a ``row_condition`` (it may name other columns);
* any expectation on a column that is missing from the batch or appears more than once in it;
* every expectation when the batch has a named index (GX's SUMMARY then reads the index's columns).

The whole-batch group is validated with SUMMARY in one run, exactly as plain GX does; the column groups first
with BOOLEAN_ONLY (see :mod:`.validation`), which gives the same verdicts on a frame whose column labels are
unique and whose index is unnamed: GX's SUMMARY-only metrics (the unexpected index list and query) cannot fail
there, while on a frame with a duplicated column label or a named (multi-)index they can raise and turn a passing
expectation into a failed one.

The groups are cached per suite object and column list (a pipeline validates the same suite on batches of the
same shape).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ctpipeline.adapters.gx.context import import_gx
from ctpipeline.core.jsonable import to_jsonable

__all__ = ["Group", "expectation_key", "frame_columns", "plan_groups", "subset"]

_MAX_CACHED = 16
_cache: dict[tuple[int, tuple, bool], tuple[Any, tuple[Group, ...]]] = {}


@dataclass(frozen=True)
class Group:
    """Expectations of a suite validated together on the same columns of the batch."""

    columns: tuple | None  # the batch columns the group's frame holds; None: the whole batch
    indices: tuple[int, ...]  # positions in the suite
    keys: tuple[str, ...] = field(repr=False)  # expectation_key of each, aligned with indices
    suite: Any = field(repr=False, compare=False)  # gx.ExpectationSuite of these expectations

    def frame(self, df):
        """The frame this group is validated on (a column subset keeps every row and the index)."""
        return df if self.columns is None else df[list(self.columns)]


def expectation_key(config: dict) -> str:
    """Type + kwargs (without GX's batch_id) of an expectation configuration or of a result's expectation_config."""
    kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
    return str(config.get("type")) + json.dumps(to_jsonable(kwargs), sort_keys=True, default=str)


def frame_columns(expectation, present: Counter) -> tuple | None:
    """The columns `expectation` (a gx Expectation) reads, or None when it must see the whole batch."""
    from great_expectations.core.metric_domain_types import MetricDomainTypes

    kwargs = expectation.configuration.kwargs
    if kwargs.get("row_condition"):
        return None
    domain = getattr(type(expectation), "domain_type", None)
    if domain == MetricDomainTypes.COLUMN:
        cols = [kwargs.get("column")]
    elif domain == MetricDomainTypes.COLUMN_PAIR:
        cols = [kwargs.get("column_A"), kwargs.get("column_B")]
    elif domain == MetricDomainTypes.MULTICOLUMN:
        cols = list(kwargs.get("column_list") or [None])
    elif expectation.expectation_type == "expect_column_to_exist" and kwargs.get("column_index") is None:
        cols = [kwargs.get("column")]  # reads the column names only: the same on a frame of that column
    else:
        return None
    if not all(isinstance(c, str) and present.get(c, 0) == 1 for c in cols):
        return None
    return tuple(dict.fromkeys(cols))


def subset(suite, indices: list[int] | tuple[int, ...], columns: tuple | None) -> Group:
    """A group of the suite's expectations at `indices`, as its own GX suite."""
    configs = [suite.expectations[i].configuration.to_json_dict() for i in indices]
    sub = import_gx().ExpectationSuite(name=suite.name, expectations=copy.deepcopy(configs))
    keys = tuple(expectation_key(c) for c in configs)
    return Group(columns, tuple(indices), keys, sub)


def plan_groups(suite, batch_columns, index_names=(None,)) -> tuple[Group, ...]:
    """The suite's expectations grouped by the columns they read (whole-batch group first), cached.

    `batch_columns`, `index_names`: the batch frame's ``columns`` and ``index.names``.
    """
    labels, named = tuple(batch_columns), any(n is not None for n in index_names)
    key = (id(suite), labels, named)
    hit = _cache.get(key)
    if hit is not None and hit[0] is suite:
        return hit[1]
    present = Counter(labels)
    by_columns: dict[tuple | None, list[int]] = {}
    for i, exp in enumerate(suite.expectations):
        by_columns.setdefault(None if named else frame_columns(exp, present), []).append(i)
    order = sorted(by_columns, key=lambda cols: cols is not None)  # the whole-batch group first (stable)
    groups = tuple(subset(suite, by_columns[cols], cols) for cols in order)
    if len(_cache) >= _MAX_CACHED:
        _cache.clear()
    _cache[key] = (suite, groups)
    return groups
