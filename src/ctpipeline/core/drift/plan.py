"""The drift method plan: which columns are compared, as what, on which rows, with which method.

Pure (pandas and numpy only): :func:`plan_drift` checks the two frames, decides each column's kind,
samples each side (seeded), cleans the sampled columns into the dtypes Evidently handles, skips what
cannot be compared (with the reason) and picks the method and threshold per column. The Evidently
adapter (``ctpipeline.adapters.evidently``) only runs the plan.

Method per column (``numeric_method`` / ``categorical_method`` = None)
----------------------------------------------------------------------
The same rule as Evidently's own default (``evidently.legacy.calculations.stattests.registry.
_get_default_stattest``), except that the sample size is the *smaller* of the two sides' non-missing
counts (Evidently looks at the reference only, so a 300-row batch against a 10,000-row reference
would get a noisy distance instead of a test):

==============  ========================  =====================  =====================================
column          n <= 1000 (small)         n > 1000 (large)       Evidently's default threshold
==============  ========================  =====================  =====================================
numeric         ``ks`` (K-S p-value)      ``wasserstein``        ks: drift when p <= 0.05;
                                          (normed by the         wasserstein: drift when distance
                                          reference std)         >= 0.1 (0.1 reference std)
numeric with    ``chisquare`` (``z`` for  ``jensenshannon``      p < 0.05; JS distance >= 0.1
<= 5 values     2 values)                                        (compared as categories, as
                                                                 Evidently's default does)
categorical     ``chisquare`` (``z`` for  ``jensenshannon``      p < 0.05; JS distance >= 0.1
                2 categories)
==============  ========================  =====================  =====================================

Statistical tests fit small samples; on large samples they flag differences too small to matter
(any p-value goes to 0), hence distances with a fixed threshold there. A method named in the
config (any Evidently 0.7 stat test name valid for the column type, e.g. ``psi``, ``ks``) replaces
the rule for that column type; ``numeric_threshold`` / ``categorical_threshold`` (only with a named
method) replace that method's default threshold (None: Evidently's default for the method).
(Evidently's ``fisher_exact`` needs both sides the same size: use it with ``max_rows`` at most the
smaller side.)

Robustness: columns missing from either frame, entirely missing values (in the sample) or with
the wrong type for their kind are skipped with a note in ``DriftPlan.skipped`` (and a log line),
never a crash; an empty frame or nothing left to compare raises :class:`ctpipeline.errors.DataError`.

pandas and numpy are imported inside the functions: ``ctpipeline.config`` imports this package for
:class:`DriftConfig`, and reading a config file should not cost a pandas import.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ctpipeline.core.drift.config import DriftConfig
from ctpipeline.core.drift.result import ColumnDrift, DriftResult
from ctpipeline.core.drift.sampling import check_sides, gather, reference_parts, sample_positions
from ctpipeline.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "LOW_CARDINALITY",
    "SMALL_SAMPLE",
    "DriftPlan",
    "PlannedColumn",
    "choose_method",
    "column_kinds",
    "plan_drift",
]

SMALL_SAMPLE = 1000  # Evidently's cut between statistical tests and distances
LOW_CARDINALITY = 5  # numeric columns with at most this many values are binned like categories


@dataclass(frozen=True)
class PlannedColumn:
    """How one column is compared."""

    column: str
    kind: str  # as declared: "numeric" | "categorical"
    as_type: str  # how Evidently sees it: low-cardinality numeric columns are compared as categories
    method: str  # Evidently stat test name
    threshold: float | None  # None: the method's default


@dataclass(frozen=True)
class DriftPlan:
    """Everything Evidently needs to compare the two sides, and what the result reports besides verdicts."""

    columns: tuple[PlannedColumn, ...]
    reference: pd.DataFrame = field(repr=False, compare=False)  # the compared sample, cleaned
    current: pd.DataFrame = field(repr=False, compare=False)
    skipped: tuple[tuple[str, str], ...]  # (column, why)
    reference_rows: int  # rows given (before sampling)
    current_rows: int
    sampled: bool  # True when either side was sampled down to max_rows
    share_threshold: float

    def columns_as(self, as_type: str) -> list[str]:
        """The planned columns Evidently is to see as `as_type` ("numeric" | "categorical")."""
        return [p.column for p in self.columns if p.as_type == as_type]

    def result(
        self,
        columns: Sequence[ColumnDrift],
        seconds: float,
        html: str | None = None,
        evidently_json: dict | None = None,
    ) -> DriftResult:
        """The DriftResult for the per-column verdicts: dataset drift when the drifted share is >= share_threshold."""
        if not columns:
            raise ValueError("a drift result needs at least one compared column")
        share = sum(c.drifted for c in columns) / len(columns)
        return DriftResult(
            columns=tuple(columns),
            drifted_share=share,
            dataset_drift=share >= self.share_threshold,
            reference_rows=self.reference_rows,
            current_rows=self.current_rows,
            sampled=self.sampled,
            seconds=seconds,
            html=html,
            evidently_json={} if evidently_json is None else evidently_json,
            share_threshold=self.share_threshold,
            skipped=self.skipped,
            reference_sample_rows=len(self.reference),
            current_sample_rows=len(self.current),
            plan=self,
        )


def plan_drift(
    reference: pd.DataFrame | Sequence[pd.DataFrame],
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    cfg: DriftConfig | None = None,
    seed: int = 0,
) -> DriftPlan:
    """The plan for comparing `current` with `reference` (neither frame is modified).

    `reference` is a frame or a list of frames taken end to end (a training window: rows are sampled from each,
    never concatenated whole; same rows as from their concatenation). `numeric` / `categorical` say each
    column's kind (usually the model's features); `cfg.columns`, when set, narrows the comparison to those
    columns (a column in neither list gets its kind from the reference dtype). Raises DataError when a side is
    empty or no column can be compared.
    """
    import numpy as np
    import pandas as pd

    cfg = cfg or DriftConfig()
    parts = reference_parts(reference)
    check_sides(parts, current)
    rng = np.random.default_rng(seed)  # one generator: the reference draws first, then the current side
    n_reference = sum(len(p) for p in parts)
    ref_rows = sample_positions(n_reference, cfg.max_rows, rng)
    cur_rows = sample_positions(len(current), cfg.max_rows, rng)
    sampled = ref_rows is not None or cur_rows is not None
    if len(parts) == 1:
        reference = parts[0]  # columns are taken at ref_rows one by one below
    else:
        reference, ref_rows = gather(parts, ref_rows), None
    kinds = column_kinds(reference, numeric, categorical, cfg.columns)
    present, skipped = _present(kinds, reference, current)

    planned: list[PlannedColumn] = []
    ref_clean: dict[str, pd.Series] = {}
    cur_clean: dict[str, pd.Series] = {}
    for col in present:
        r, c, why = _clean(_take(reference, col, ref_rows), _take(current, col, cur_rows), kinds[col])
        if why is None:
            why = _all_missing(r, c, sampled)
        if why is not None:
            skipped.append((col, why))
            continue
        ref_clean[col], cur_clean[col] = r, c
        planned.append(choose_method(col, kinds[col], r, c, cfg))

    for col, why in skipped:
        log.warning("drift: column %r skipped: %s", col, why)
    if not planned:
        detail = "; ".join(f"{c}: {w}" for c, w in skipped) or "no columns given"
        raise DataError(f"cannot compute drift: no column left to compare ({detail})")
    frames = (pd.DataFrame(ref_clean), pd.DataFrame(cur_clean))
    return DriftPlan(tuple(planned), *frames, tuple(skipped), n_reference, len(current), sampled, cfg.share_threshold)


def column_kinds(
    reference: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str], wanted: Sequence[str] | None
) -> dict[str, str]:
    """column -> "numeric" | "categorical", in comparison order (numeric first, unless `wanted` gives the order)."""
    import pandas as pd

    both = set(numeric) & set(categorical)
    if both:
        raise ValueError(f"columns listed as both numeric and categorical: {sorted(both)}")
    declared = {**{c: "numeric" for c in numeric}, **{c: "categorical" for c in categorical}}
    if wanted is None:
        return declared
    kinds = {}
    for col in wanted:
        if col in declared:
            kinds[col] = declared[col]
        elif col in reference.columns:
            s = reference[col]
            is_num = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
            kinds[col] = "numeric" if is_num else "categorical"
        else:
            kinds[col] = "numeric"  # reported as missing; the kind does not matter
    return kinds


def choose_method(col: str, kind: str, r: pd.Series, c: pd.Series, cfg: DriftConfig) -> PlannedColumn:
    """The method for one column: the configured one, else by sample size and cardinality (module doc)."""
    import pandas as pd

    method = cfg.numeric_method if kind == "numeric" else cfg.categorical_method
    threshold = cfg.numeric_threshold if kind == "numeric" else cfg.categorical_threshold
    if method is not None:
        return PlannedColumn(col, kind, kind, method, threshold)
    small = min(int(r.notna().sum()), int(c.notna().sum())) <= SMALL_SAMPLE
    n_values = pd.concat([r, c], ignore_index=True).nunique()
    if kind == "numeric" and n_values > LOW_CARDINALITY:
        return PlannedColumn(col, kind, kind, "ks" if small else "wasserstein", None)
    # categorical, or numeric with a handful of values (Evidently's default bins those like categories
    # too, but its chi-square and Z tests can only be *named* for categorical columns)
    if small:
        method = "z" if n_values <= 2 else "chisquare"
    else:
        method = "jensenshannon"
    return PlannedColumn(col, kind, "categorical", method, None)


def _present(
    kinds: dict[str, str], reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[list[str], list[tuple[str, str]]]:
    """(columns found exactly once on both sides, [(column, why) for the others])."""
    present, skipped = [], []
    sides = (("reference", reference), ("current", current))
    for col in kinds:
        where = [n for n, f in sides if col not in f.columns]
        twice = [n for n, f in sides if col in f.columns and int((f.columns == col).sum()) > 1]
        if where:
            skipped.append((col, f"missing from the {' and '.join(where)} data"))
        elif twice:
            skipped.append((col, f"more than one column of that name in the {' and '.join(twice)} data"))
        else:
            present.append(col)
    return present, skipped


def _take(frame: pd.DataFrame, col: str, rows: np.ndarray | None) -> pd.Series:
    """One column at the sampled positions (only those rows are copied), index reset, row order kept."""
    s = frame[col]
    return (s if rows is None else s.iloc[rows]).reset_index(drop=True)


def _clean(r: pd.Series, c: pd.Series, kind: str) -> tuple[pd.Series, pd.Series, str | None]:
    """Both sides as Evidently handles them: float64 with NaN (numeric) or object with NaN (categorical)."""
    import numpy as np
    import pandas as pd

    if kind == "numeric":
        out = []
        for side, s in (("reference", r), ("current", c)):
            if pd.api.types.is_bool_dtype(s):
                s = s.astype("float64")
            elif not pd.api.types.is_numeric_dtype(s):
                return r, c, f"declared numeric but the {side} data holds {s.dtype} values"
            s = pd.to_numeric(s, errors="coerce").astype("float64").replace([np.inf, -np.inf], np.nan)
            out.append(s)
        return out[0], out[1], None
    out = []
    for s in (r, c):
        s = s.astype(object)
        out.append(s.where(pd.notna(s), np.nan))
    return out[0], out[1], None


def _all_missing(r: pd.Series, c: pd.Series, sampled: bool) -> str | None:
    for side, s in (("reference", r), ("current", c)):
        if s.notna().sum() == 0:
            return f"all values missing in the {side} data" + (" sample" if sampled else "")
    return None
