"""Cron strings, checked once, as Prefect's CronSchedule takes them, without importing Prefect."""

from __future__ import annotations

from datetime import datetime

# cron macros Prefect's croniter accepts, as the 5-field expressions they stand for
_CRON_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def validate_cron(expr: str) -> str:
    """Check a 5-field cron expression (or @daily-style macro) as Prefect's CronSchedule takes it.

    Parsed with ``cronsim`` (pure Python, installed with Prefect through pydocket), so that config
    validation does not import Prefect; Prefect's own random/hashed extensions (``R``, ``H``) are
    refused as Prefect refuses them. Returns the stripped expression; raises ValueError.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise ValueError("empty cron string; e.g. '0 3 * * *' (03:00 every day)")
    v = " ".join(expr.split())
    body = _CRON_MACROS.get(v.lower(), v)
    fields = body.split()
    if len(fields) != 5:
        raise ValueError(
            f"invalid cron string {v!r}: expected 5 fields (minute hour day-of-month month day-of-week) "
            f"or one of {', '.join(_CRON_MACROS)}, got {len(fields)} field(s)"
        )
    if any(f.upper() in ("R", "H") or f.upper().startswith("H(") for f in fields):
        raise ValueError(f"invalid cron string {v!r}: random/hashed expressions (R, H) are not supported")
    if "LW" in fields[2].upper():  # cronsim knows it, Prefect's croniter does not
        raise ValueError(f"invalid cron string {v!r}: 'LW' (last weekday) is not supported by Prefect")
    try:
        from cronsim import CronSim, CronSimError
    except ImportError:  # pragma: no cover - cronsim comes with Prefect; fall back to a character check
        allowed = set("0123456789*/,-?LW#ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        if any(set(f.upper()) - allowed for f in fields):
            raise ValueError(f"invalid cron string {v!r}") from None
        return v
    try:
        next(CronSim(body, datetime(2000, 1, 1)))
    except (CronSimError, StopIteration, ValueError) as exc:
        raise ValueError(f"invalid cron string {v!r}: {exc or 'never fires'}") from None
    return v
