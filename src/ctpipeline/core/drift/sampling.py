"""The rows a drift comparison reads: positions drawn first, then only those rows copied, column by column.

The reference side is often several frames (the champion's training window, one frame per batch):
:func:`gather` takes the sampled rows from each without concatenating them first, so comparing against 3M
reference rows copies 10,000 rows, not 3M (``pd.concat`` of the window costs ~250 MB at 1M rows, ~1 GB at 3M).
The rows, their order and their values are those of ``pd.concat(parts, ignore_index=True).iloc[positions]``.

pandas and numpy are imported inside the functions (see ``plan``'s module doc).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ctpipeline.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = ["check_sides", "gather", "reference_parts", "sample_positions"]


def sample_positions(n_rows: int, max_rows: int, rng: np.random.Generator) -> np.ndarray | None:
    """Sorted positions of `max_rows` of `n_rows` rows, drawn without replacement; None when all rows fit."""
    import numpy as np

    if n_rows <= max_rows:
        return None
    return np.sort(rng.choice(n_rows, size=max_rows, replace=False))


def reference_parts(reference: pd.DataFrame | Sequence[pd.DataFrame]) -> list[pd.DataFrame]:
    """The reference as a list of frames (one frame, or the frames of a window end to end)."""
    import pandas as pd

    if isinstance(reference, pd.DataFrame):
        return [reference]
    parts = list(reference) if isinstance(reference, Sequence) and not isinstance(reference, str) else [reference]
    bad = [type(p).__name__ for p in parts if not isinstance(p, pd.DataFrame)]
    if bad:
        raise TypeError(f"detect_drift() needs a pandas DataFrame (or a list of them) as reference, got {bad[0]}")
    return parts


def check_sides(parts: list[pd.DataFrame], current: pd.DataFrame) -> None:
    """TypeError for a current side that is no DataFrame, DataError for an empty side."""
    import pandas as pd

    if not isinstance(current, pd.DataFrame):
        raise TypeError(f"detect_drift() needs a pandas DataFrame as current, got {type(current).__name__}")
    n_cols = len({c for p in parts for c in p.columns}) if len(parts) != 1 else parts[0].shape[1]
    sides = (("reference", sum(len(p) for p in parts), n_cols), ("current", len(current), current.shape[1]))
    for name, rows, cols in sides:
        if rows == 0 or cols == 0:
            raise DataError(f"cannot compute drift: the {name} data is empty ({rows} rows, {cols} columns)")


def gather(parts: list[pd.DataFrame], positions: np.ndarray | None) -> pd.DataFrame:
    """The rows at sorted `positions` (None: all) of the parts taken end to end, as one frame with a fresh index."""
    import numpy as np
    import pandas as pd

    pieces = []
    start = 0
    for part in parts:
        stop = start + len(part)
        if positions is None:
            pieces.append(part)
        else:
            lo, hi = np.searchsorted(positions, [start, stop])
            if hi > lo:
                pieces.append(part.iloc[positions[lo:hi] - start])
        start = stop
    pieces = [p for p in pieces if len(p)] or parts[:1]
    return pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0].reset_index(drop=True)
