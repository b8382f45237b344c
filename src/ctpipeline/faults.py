"""Fault injection for the crash tests: named checkpoints in the code where a test can kill the process.

``checkpoint("after-register")`` does nothing unless the environment variable ``CTP_FAULT_AT`` names that
checkpoint (a comma-separated list is allowed); then the process prints one line naming it on stderr and sends
itself SIGKILL: no ``finally`` block, no ``atexit`` handler and no context manager runs, exactly as when the
machine loses power or the OOM killer strikes. ``CTP_FAULT_AT=name@N`` kills at the N-th time the checkpoint is
reached in this process (default 1st). ``CTP_FAULT_PAUSE=name:SECONDS`` makes the checkpoint sleep instead (a
concurrency test holds a process at a known point while another one acts); with ``CTP_FAULT_RELEASE=PATH`` the
pause ends early as soon as that file exists (the test creates it once the other process has acted).

The checkpoints, in the order a cycle reaches them (tests/faults/ kills the real process at each):

========================  ==========================================================================
``ingest``                the next batch chosen from the landing folder, nothing read or written yet
``validated``             the GX suite ran on the batch; no MLflow run, nothing quarantined yet
``trained``               the challenger is fitted; the cycle's MLflow run is open (RUNNING)
``backtested``            challenger and champion scored on the batch's windows
``after-register``        the challenger is a registered version with alias ``challenger``; ``champion`` not moved
``after-champion-alias``  ``champion`` moved (compare-and-swap done); ``previous`` and the ledger row not written
``jsonl-write:ledger``    inside the append of a ledger row: the bytes are buffered, not yet written to the file
``jsonl-write:batches``   the same for the batch-log record that marks the batch processed
``slot-acquired``         the training slot is held; nothing of the cycle has run yet
========================  ==========================================================================

Nothing here imports a tool; a checkpoint costs one dictionary lookup when ``CTP_FAULT_AT`` is unset.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter

ENV, PAUSE_ENV, RELEASE_ENV = "CTP_FAULT_AT", "CTP_FAULT_PAUSE", "CTP_FAULT_RELEASE"
CHECKPOINTS = (
    "slot-acquired",
    "ingest",
    "validated",
    "trained",
    "backtested",
    "after-register",
    "after-champion-alias",
    "jsonl-write:ledger",
    "jsonl-write:batches",
)

_reached: Counter[str] = Counter()


def _targets(value: str) -> dict[str, int]:
    """``"a,b@2"`` -> ``{"a": 1, "b": 2}``."""
    out: dict[str, int] = {}
    for item in value.split(","):
        name, _, nth = item.strip().partition("@")
        if name:
            out[name] = int(nth) if nth.isdigit() and int(nth) > 0 else 1
    return out


def checkpoint(name: str) -> None:
    """SIGKILL this process here if ``CTP_FAULT_AT`` names `name` (and this is the N-th time it is reached)."""
    pause = os.environ.get(PAUSE_ENV)
    if pause:
        _pause(name, pause)
    value = os.environ.get(ENV)
    if not value:
        return
    nth = _targets(value).get(name)
    if nth is None:
        return
    _reached[name] += 1
    if _reached[name] < nth:
        return
    sys.stderr.write(f"ctp fault injection: SIGKILL at checkpoint {name!r} (pid {os.getpid()})\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _pause(name: str, value: str) -> None:
    for item in value.split(","):
        target, _, seconds = item.strip().partition(":")
        if target == name:
            sys.stderr.write(f"ctp fault injection: pausing {seconds} s at checkpoint {name!r} (pid {os.getpid()})\n")
            sys.stderr.flush()
            release = os.environ.get(RELEASE_ENV)
            end = time.monotonic() + float(seconds or 0)
            while time.monotonic() < end and not (release and os.path.exists(release)):
                time.sleep(min(0.2, max(0.0, end - time.monotonic())))
