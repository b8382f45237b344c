"""The embedded mode's Prefect server, started early: Prefect starts its ephemeral API server (a uvicorn
subprocess that migrates its SQLite database) on the first API call, which is when the first flow run begins.
That takes 5-15 s on 2 cores, during which the process would do nothing else. `start_early` starts it on a
thread as soon as the environment is set (PREFECT_HOME in the state folder), so that it comes up while the command
lands data, reads the config and imports the flow's libraries; `StartedServer.wait` (the CLI calls it before
the first flow run) returns once it answers, or raises what the start raised.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class StartedServer:
    """A Prefect ephemeral API server being started on a background thread."""

    def __init__(self) -> None:
        self._error: BaseException | None = None
        # not a daemon: a process that exits meanwhile waits for the start to finish, so that Prefect's own atexit
        # hook (registered once the subprocess runs) stops the server rather than leaving it behind
        self._thread = threading.Thread(target=self._start, name="ctp-prefect-server", daemon=False)
        self._thread.start()

    def _start(self) -> None:
        try:
            own_session_server().start()  # the instance Prefect's clients use (one per process, port None)
        except BaseException as exc:  # re-raised in the command's thread by wait()
            self._error = exc

    def starting(self) -> bool:
        """Whether the start is still under way."""
        return self._thread.is_alive()

    def wait(self) -> None:
        """Block until the server answers (Prefect's own start-up timeout bounds it); raise the start's error."""
        self._thread.join()
        if self._error is not None:
            raise self._error


def own_session_server():
    """Prefect's ephemeral server for this process (the instance its clients use), started in a session of its
    own.

    Ctrl-C in a terminal sends SIGINT to the whole foreground process group. Prefect starts its ephemeral server
    in the command's group, so the server died with the command's first Ctrl-C, and the interrupted flow run then
    spent minutes retrying to report its end to a server that was gone (227 s, then exit 1, in a `ctp demo`). In a
    session of its own the server stays up until the command has recorded the interruption; Prefect's exit hook
    stops it then (and `reap_orphaned_servers` stops one whose command was SIGKILLed). Prefect's own command line and
    environment are used as they are: only the `Popen` call gets ``start_new_session=True``."""
    import subprocess
    import types

    from prefect.server.api import server as prefect_server

    class OwnSessionServer(prefect_server.SubprocessASGIServer):
        def _run_uvicorn_command(self):
            def popen(*args, **kwargs):
                return subprocess.Popen(*args, **{**kwargs, "start_new_session": True})

            module_subprocess = prefect_server.subprocess
            prefect_server.subprocess = types.SimpleNamespace(**{**vars(subprocess), "Popen": popen})
            try:
                return super()._run_uvicorn_command()
            finally:
                prefect_server.subprocess = module_subprocess

    # the same per-port registry: Prefect's `SubprocessASGIServer()` returns this instance from now on
    return OwnSessionServer()


_started: StartedServer | None = None
_lock = threading.Lock()


def start_early() -> StartedServer:
    """Start this process's ephemeral Prefect server in the background, once (the embedded mode only: the caller
    checks that no PREFECT_API_URL is configured)."""
    global _started
    with _lock:
        if _started is None:
            from ctpipeline.adapters.prefect import dbtemplate

            dbtemplate.seed()  # a new database: Prefect's tables copied, not migrated at the server's start
            _started = StartedServer()
        return _started


def still_starting() -> bool:
    """Whether a server `start_early` began is not up yet (the caller has time for other work)."""
    return _started is not None and _started.starting()


def wait_until_started() -> None:
    """Wait for a server `start_early` began (no-op when none was)."""
    if _started is not None:
        _started.wait()


@contextmanager
def embedded_flow_settings() -> Iterator[None]:
    """Settings for the flow runs a command starts on the embedded server: no flow-run heartbeats.

    Prefect's flow engine sends a heartbeat every `flows.heartbeat_frequency` seconds (180) on a thread that sleeps
    in 1 s steps, and joins that thread when the flow run ends: up to 1 s (0.35 s on average in the 12-month
    replay) at the end of every flow run. Heartbeats let a server's automations declare a silent flow run crashed;
    the ephemeral server runs no automations, so nothing reads them there. With a Prefect server configured
    (PREFECT_API_URL, the team stack) this changes nothing."""
    from ctpipeline.env import prefect_server_configured

    if prefect_server_configured():
        yield
        return
    from prefect.settings import temporary_settings

    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield
