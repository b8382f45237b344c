"""The one JSON-cleaning helper: anything the pipeline records, made safe for ``json.dumps`` (and MLflow)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def finite(x: Any) -> float | None:
    """`x` as a float when it is a finite number, else None (NaN, inf, None, text)."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def to_jsonable(obj: Any) -> Any:
    """Plain JSON values: NaN/inf -> None, numpy scalars/arrays -> Python, sets -> sorted lists,
    dates -> ISO strings, mapping keys -> str, tuples -> lists, anything else -> str."""
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(obj, key=str)]
    item = getattr(obj, "item", None)  # numpy scalar
    if callable(item) and getattr(obj, "shape", None) == ():
        return to_jsonable(item())
    tolist = getattr(obj, "tolist", None)  # numpy array
    if callable(tolist):
        return to_jsonable(tolist())
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)
