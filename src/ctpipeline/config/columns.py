"""The columns a pipeline config relies on, checked against the columns its GX suite names (and at run time
against the landed batches), so that a typo is a configuration error, never a data error.

* :func:`suite_columns` reads which columns a suite file names: every column an expectation refers to, and the
  full column list when an ``expect_table_columns_to_match_*`` expectation gives one.
* :func:`column_problems` (load time): when the suite declares its columns (``expect_column_to_exist`` or a
  table-columns expectation), every feature, the target, the time column and each slice column must be one of
  them; a slice column must be a feature or a column the suite knows (else its promotion check would silently
  judge nothing).
* :func:`absent_columns` (run time, for suites that declare nothing): a configured column that no landed batch
  holds and no expectation names can only be a mistake in the config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ctpipeline.config.loader import did_you_mean

__all__ = ["SuiteColumns", "absent_columns", "column_problems", "configured_columns", "suite_columns"]

DECLARING = {
    "expect_column_to_exist",
    "expect_table_columns_to_match_set",
    "expect_table_columns_to_match_ordered_list",
}
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_LIST_KWARGS = ("column_list", "column_set")


class SuiteColumns:
    """What a suite file says about columns: `named` (any expectation), `table` (the full list, when given),
    `declares` (the suite lists the columns it relies on)."""

    def __init__(self, name: str, named: set[str], table: set[str] | None, declares: bool):
        self.name, self.named, self.table, self.declares = name, named, table, declares


def suite_columns(path: Path) -> SuiteColumns | None:
    """The columns suite file `path` names; None when it is not readable JSON (the suite loader reports that)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        exps = [e for e in data.get("expectations", []) if isinstance(e, dict) and isinstance(e.get("kwargs"), dict)]
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    named: set[str] = set()
    table: set[str] | None = None
    for e in exps:
        kw: dict[str, Any] = e["kwargs"]
        named |= {kw[k] for k in _COLUMN_KWARGS if isinstance(kw.get(k), str)}
        for k in _LIST_KWARGS:
            if isinstance(kw.get(k), list):
                cols = {c for c in kw[k] if isinstance(c, str)}
                named |= cols
                if e.get("type", "").startswith("expect_table_columns_to_match") and kw.get("exact_match", True):
                    table = cols if table is None else table & cols
    declares = any(e.get("type") in DECLARING for e in exps)
    return SuiteColumns(str(data.get("name", Path(path).stem)), named, table, declares)


def configured_columns(cfg) -> list[tuple[str, str]]:
    """(key, column) for every column the config reads from a batch."""
    out = [("features.numeric", c) for c in cfg.features.numeric]
    out += [("features.categorical", c) for c in cfg.features.categorical]
    out += [("target.column", cfg.target.column), ("data.time_column", cfg.data.time_column)]
    out += [(f"promotion.slices.{i}.column", s.column) for i, s in enumerate(cfg.promotion.slices)]
    return out


def _group(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """One line per key (a list of features can hold several typos)."""
    merged: dict[str, list[str]] = {}
    for key, reason in problems:
        merged.setdefault(key, []).append(reason)
    return [(k, "; ".join(v)) for k, v in merged.items()]


def column_problems(cfg, suite_path: Path) -> list[tuple[str, str]]:
    """(key, reason) for each configured column the suite at `suite_path` contradicts."""
    sc = suite_columns(suite_path)
    if sc is None:
        return []
    where = f"suite {sc.name!r} ({suite_path})"
    known = sc.table if sc.table is not None else sc.named
    features = set(cfg.features.columns)
    problems = []
    for key, col in configured_columns(cfg):
        if key.startswith("promotion.slices"):
            if col not in features and col not in sc.named:
                problems.append(
                    (key, f"{col!r} is neither a feature nor a column of {where}{did_you_mean(col, features | known)}")
                )
            continue
        if sc.table is not None and col not in sc.table:
            problems.append((key, f"{col!r} is not one of the table columns of {where}{did_you_mean(col, known)}"))
        elif sc.table is None and sc.declares and col not in sc.named:
            problems.append(
                (
                    key,
                    f"{col!r} is named by no expectation of {where}{did_you_mean(col, known)} (if the name is right, "
                    f"add an expect_column_to_exist for it to the suite, so that a batch without it is rejected)",
                )
            )
    return _group(problems)


def absent_columns(cfg, suite_path: Path, landed: list[set[str]]) -> list[tuple[str, str]]:
    """(key, reason) for each configured column that none of the `landed` batches (their column sets) holds and
    that no expectation of the suite names: a config mistake, not a batch to quarantine."""
    if not landed:
        return []
    sc = suite_columns(suite_path)
    named = sc.named if sc is not None else set()
    everywhere = set().union(*landed)
    problems = []
    for key, col in configured_columns(cfg):
        if col not in everywhere and col not in named:
            problems.append(
                (key, f"{col!r} is in none of the {len(landed)} landed batches{did_you_mean(col, everywhere)}")
            )
    return _group(problems)
