"""File locks in the state folder that the kernel drops when their holder dies, even by SIGKILL (``fcntl.flock``).

* :class:`LocalLock`: the local half of the training slot (``adapters.prefect.concurrency.training_slot``); the
  lock file holds the holder's record (pid, host, flow run, lease, since when) for the log lines of a waiter;
* :func:`serialized`: a decorator that holds such a lock around a call; ``steps.promote.promote`` uses it, so the
  compare-and-swap of ``champion`` (read, compare, set) and its ledger row are never interleaved with another
  promotion, approval or rollback of the same pipeline (MLflow has no atomic compare-and-swap of an alias).
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def describe_holder(info: dict[str, Any] | None) -> str:
    """'pid 12 on host (flow run x, since ..., 40 s ago)' from the lock file's JSON; 'an unknown process'."""
    if not info or "pid" not in info:
        return "an unknown process (no holder recorded)"
    extra = [f"flow run {info['flow_run']}"] if info.get("flow_run") else []
    if info.get("acquired_at"):
        age = time.time() - float(info.get("acquired_ts", time.time()))
        extra.append(f"since {info['acquired_at']}, {age:.0f} s ago")
    return f"pid {info['pid']} on {info.get('host', '?')}" + (f" ({', '.join(extra)})" if extra else "")


class LocalLock:
    """``flock`` on `path`, held until :meth:`release` or this process dies; the file holds the holder's JSON."""

    def __init__(self, path: Path):
        self.path, self._file = path, None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - kept open while held
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        self._file = f
        return True

    def holder(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            return None

    def write(self, info: dict[str, Any]) -> None:
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps(info, sort_keys=True))
        self._file.flush()
        os.fsync(self._file.fileno())

    def release(self, info: dict[str, Any] | None = None) -> None:
        if self._file is None:
            return
        if info is not None:
            self.write(info)
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None


def holder_record(**extra: Any) -> dict[str, Any]:
    """This process as a lock holder: pid, host, when, and `extra` (flow run, lease...)."""
    now = datetime.now(UTC)
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "acquired_at": now.isoformat(timespec="seconds"),
        "acquired_ts": now.timestamp(),
        **extra,
    }


_owned: dict[str, tuple[int, int]] = {}  # lock path -> (thread id, depth) for the locks this process holds
_owned_guard = threading.Lock()


def _reenter(path: Path, delta: int) -> bool:
    """Count a (re-)entry of `path` by this thread; True when this thread already held it before this entry."""
    key, me = str(path.resolve()), threading.get_ident()
    with _owned_guard:
        owner, depth = _owned.get(key, (me, 0))
        if owner != me:
            return False
        if depth + delta <= 0:
            _owned.pop(key, None)
        else:
            _owned[key] = (me, depth + delta)
        return depth > 0


def serialized(lock_path: Callable[..., Path], what: str, max_wait: float = 300.0, log_every: float = 10.0):
    """Decorator: hold ``LocalLock(lock_path(*args, **kwargs))`` during each call of the function. A call waits for
    the lock (a log line every `log_every` s naming its holder) at most `max_wait` s, then raises TimeoutError.
    Re-entrant in one thread: a decorated function may call another one on the same lock (rollback -> promote)."""

    def wrap(func):
        @functools.wraps(func)
        def locked(*args, **kwargs):
            path = lock_path(*args, **kwargs)
            if _reenter(path, 0) and _reenter(path, +1):  # this thread holds it already
                try:
                    return func(*args, **kwargs)
                finally:
                    _reenter(path, -1)
            lock, t0, next_log = LocalLock(path), time.monotonic(), time.monotonic()
            while not lock.try_acquire():
                waited = time.monotonic() - t0
                if waited >= max_wait:
                    raise TimeoutError(f"{what}: {lock.path} still held by {describe_holder(lock.holder())}")
                if time.monotonic() >= next_log:
                    logger.warning("%s: waiting for %s, held by %s", what, lock.path, describe_holder(lock.holder()))
                    next_log += log_every
                time.sleep(0.1)
            _reenter(path, +1)
            try:
                lock.write(holder_record(call=func.__qualname__))
                return func(*args, **kwargs)
            finally:
                _reenter(path, -1)
                lock.release({**(lock.holder() or {}), "released_at": datetime.now(UTC).isoformat(timespec="seconds")})

        return locked

    return wrap
