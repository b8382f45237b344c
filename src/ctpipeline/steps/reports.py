"""Reports that change no decision (Evidently's HTML drift report, the plots), drawn off the critical path.

A cycle's stages hand them to `Reports.submit`; one background thread draws and logs them, in order, while the
cycle goes on: the drift report while the challenger trains (XGBoost leaves the interpreter free), the plots while
the model is registered and promoted. The cycle's run waits for them (`Reports.wait`) before it is closed, so the
run ends up with the same artifacts as when they were drawn inline. A report that fails is a warning and a
``ctp.reports_failed`` tag: it never changes the cycle's outcome.

The thread runs at the lowest CPU priority (nice 19, Linux's per-thread priority): the reports are Python work
that would otherwise take a core from XGBoost's OpenMP threads, and a parallel fit with one of its cores taken
slows down 3x (each tree waits at a barrier for the thread that lost its core); at nice 19 the fit keeps both
cores and the reports use what the cycle leaves idle (back-test, registration, waiting on MLflow and Prefect).

``CTP_REPORTS_INLINE=1`` draws each report where it is submitted (the old order; for comparisons and debugging).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)

INLINE_ENV = "CTP_REPORTS_INLINE"
LOW_PRIORITY = 19  # the report thread's nice value


def lower_priority(nice: int = LOW_PRIORITY) -> bool:
    """Lower the calling thread's CPU priority to `nice` (Linux: `setpriority` on the thread's own id). Returns
    whether it could (elsewhere, or where it is not allowed, the thread keeps its priority)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError):  # no setpriority, or no native thread ids (not Linux)
        return False
    return True


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
                self._pool = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="ctp-reports", initializer=lower_priority
                )
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
