"""A process that has finished its work exits without the interpreter's teardown.

Once a `ctp` command has returned, CPython's shutdown still clears every module and collects every object it
ever imported: with Prefect, MLflow, GX, Evidently, scikit-learn and XGBoost loaded that is ~4 s of pure CPU on
the project's 2-core machine (measured: the same imports, an empty script, 3.9 s between the last ``atexit``
handler and the process's end), after the last line has been printed. The report worker pays it again, and its
parent waits for it.

`skip_teardown` registers an ``atexit`` handler that runs **last** (``atexit`` runs its handlers in reverse
order of registration, so it is registered first). By then the interpreter has done everything that keeps
data: it has joined every non-daemon thread (MLflow's artifact uploads; the daemon threads that log reports onto
closed runs are waited for by the command itself, `steps.reports.flush`) and run every other ``atexit`` handler
(Prefect stops its temporary server, multiprocessing joins its children, ``weakref.finalize`` removes temporary
folders). The handler then shuts logging down, flushes the standard streams and ends the process with
``os._exit`` and the exit status the process would have had (120 when a successful command's output could not be
flushed, as CPython gives). What it skips frees memory only: every file the project writes is closed by a
``with`` block, every database write is committed. Only the ``ctp`` entry point and the report worker install it:
a test that calls ``ctp``'s `main()` in its own process keeps its normal exit.

``CTP_FULL_TEARDOWN=1`` turns it off (the interpreter's normal shutdown, for debugging a destructor).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys

FULL_TEARDOWN_ENV = "CTP_FULL_TEARDOWN"

_state = {"code": 1, "installed": False}  # an uncaught exception exits 1, as CPython's own shutdown does


def skip_teardown(exit_code: int | None = None) -> bool:
    """Call first thing in a process's entry point: from then on, the process's end skips the interpreter's
    teardown. Returns whether it is on (off under ``CTP_FULL_TEARDOWN=1``; once per process). `exit_code`: the
    status to end with unless `set_exit_code` says otherwise (default 1, as for an uncaught exception; the report
    worker passes 0: its pool reads no worker's status)."""
    if os.environ.get(FULL_TEARDOWN_ENV, "").strip().lower() in ("1", "true", "yes"):
        return False
    if exit_code is not None:
        set_exit_code(exit_code)
    if not _state["installed"]:
        _state["installed"] = True
        atexit.register(_exit_now)
    return True


def set_exit_code(code: object) -> None:
    """The status the process ends with, as `sys.exit(code)` would give it: None is 0, an int is itself, anything
    else (a message that CPython prints) is 1."""
    _state["code"] = 0 if code is None else code if isinstance(code, int) else 1


def _exit_now() -> None:
    logging.shutdown()  # registered with atexit before this module was imported, so it would run after this
    code = _state["code"] & 0xFF
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, BrokenPipeError):  # closed, or a reader that went away
            pass
        except OSError:  # a full disk: the output is incomplete
            code = code or 120
    os._exit(code)
