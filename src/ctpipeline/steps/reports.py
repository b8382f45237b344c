"""Reports that change no decision (Evidently's HTML drift report, the plots), drawn off the critical path.

A cycle's stages hand them to `Reports.submit`; one background thread draws and logs them, in order, while the
cycle goes on: the drift report while the challenger trains (XGBoost leaves the interpreter free), the plots while
the model is registered and promoted. The cycle's run waits for them (`Reports.wait`) before it is closed, so the
run ends up with the same artifacts as when they were drawn inline. A report that fails is a warning and a
``ctp.reports_failed`` tag: it never changes the cycle's outcome.

``CTP_REPORTS_INLINE=1`` draws each report where it is submitted (the old order; for comparisons and debugging).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)

INLINE_ENV = "CTP_REPORTS_INLINE"


class Reports:
    """The background reports of one cycle: `submit` as they become possible, `wait` before the run closes."""

    def __init__(self, inline: bool | None = None):
        self.inline = os.environ.get(INLINE_ENV, "") in ("1", "true") if inline is None else inline
        self._pool: ThreadPoolExecutor | None = None
        self._jobs: list[tuple[str, Future]] = []

    def submit(self, name: str, fn: Callable[..., object], *args) -> None:
        """Draw and log report `name` with `fn(*args)`, on the background thread (inline when so configured)."""
        if self.inline:
            future: Future = Future()
            try:
                future.set_result(fn(*args))
            except Exception as exc:  # reported by wait(), as a background failure is
                future.set_exception(exc)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctp-reports")
            future = self._pool.submit(fn, *args)
        self._jobs.append((name, future))

    def wait(self) -> list[str]:
        """Wait for every submitted report; return the names of those that failed (each logged as a warning)."""
        failed = []
        for name, future in self._jobs:
            try:
                future.result()
            except Exception as exc:
                log.warning("report %s was not logged: %s: %s", name, type(exc).__name__, exc)
                failed.append(name)
        self._jobs.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        return failed
