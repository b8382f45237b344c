"""The embedded mode's Prefect server, started early: Prefect starts its ephemeral API server (a uvicorn
subprocess that migrates its SQLite database) on the first API call, which is when the first flow run begins.
That takes 5-15 s on 2 cores, during which the process would do nothing else. `start_early` starts it on a
thread as soon as the environment is set (PREFECT_HOME in the state folder), so that it comes up while the command
lands data, reads the config and imports the flow's libraries; `StartedServer.wait` (the CLI calls it before
the first flow run) returns once it answers, or raises what the start raised. The server is Prefect's, started
without importing Prefect's server application here (`EmbeddedServer`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class StartedServer:
    """A Prefect ephemeral API server being started on a background thread."""

    def __init__(self) -> None:
        self._error: BaseException | None = None
        # not a daemon: a process that exits meanwhile waits for the start to finish, so that the server's exit
        # hook (registered once the subprocess runs) stops it rather than leaving it behind
        self._thread = threading.Thread(target=self._start, name="ctp-prefect-server", daemon=False)
        self._thread.start()

    def _start(self) -> None:
        try:
            EmbeddedServer().start()
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


class EmbeddedServer:
    """This process's ephemeral Prefect API server, started as Prefect's ``SubprocessASGIServer`` starts its own
    (the same uvicorn command line and environment, a free port in 8000-8999, ``/api/health`` polled, stopped at
    exit with SIGTERM, then SIGKILL after 5 s) with two differences:

    * Prefect's server application (FastAPI, every router, the ORM) is never imported into this process. Prefect's
      clients import it only to start their own ephemeral server when no API URL is set: ~2 s of CPU here, taken
      from the command's own start-up. Once the port is chosen, this process's Prefect settings point at the
      server (`use_api`), and the flow runs' clients connect to it (no "View at" link: it serves no UI).
    * It runs in a session of its own. Ctrl-C in a terminal sends SIGINT to the whole foreground process group;
      Prefect starts its server in the command's group, so it died with the command's first Ctrl-C, and the
      interrupted flow run then spent minutes retrying to report its end to a server that was gone (227 s, then
      exit 1, in a `ctp demo`). Here it stays up until the command has recorded the interruption, and the exit hook
      stops it then (`holders.reap_orphaned_servers` stops one whose command was SIGKILLed: same command line).
    """

    PORTS = range(8000, 9000)

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        """Start it and return once it answers (Prefect's start-up timeout); RuntimeError if it does not."""
        import httpx
        from prefect.logging import get_logger
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        env = self._environment()  # before `use_api`: the server's own settings, as Prefect gives them
        self.port = _free_port(self.PORTS)
        get_logger().info("Starting temporary server on http://127.0.0.1:%s\n%s", self.port, HELP)
        self.process = self._popen(env)
        atexit.register(self.stop)
        use_api(self.api_url)
        deadline = time.monotonic() + PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code == 3:  # uvicorn could not bind the port: another one, as Prefect does
                    self.port = _free_port(self.PORTS)
                    self.process = self._popen(env)
                    use_api(self.api_url)
                    continue
                if code is not None:
                    break
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        code = self.process.poll()
        raise RuntimeError(
            "Timed out while attempting to connect to ephemeral Prefect API server."
            + (f" Ephemeral server process exited with code {code}." if code is not None else "")
        )

    @staticmethod
    def _environment() -> dict[str, str]:
        """Prefect's environment for its ephemeral server (``SubprocessASGIServer._run_uvicorn_command``)."""
        from prefect.settings import get_current_settings

        return {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            **get_current_settings().to_environment_variables(exclude_unset=True),
        }

    def _popen(self, env: dict[str, str]) -> subprocess.Popen:
        """Prefect's command line for its ephemeral server, in a session of its own."""
        import prefect

        app_dir = str(prefect.__module_path__.parent)
        args = [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory", SERVER_APP]
        args += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"]
        return subprocess.Popen(args, env=env, start_new_session=True)

    def stop(self) -> None:
        if self.process is None:
            return
        from prefect.logging import get_logger

        get_logger().info("Stopping temporary server on http://127.0.0.1:%s", self.port)
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


SERVER_APP = "prefect.server.api.server:create_app"  # what `holders.reap_orphaned_servers` looks for
HELP = (
    "See https://docs.prefect.io/v3/concepts/server#how-to-guides for more information on running a dedicated "
    "Prefect server."
)
_api_url: list[str] = []


def _free_port(ports: range) -> int:
    for _ in range(10):
        port = random.choice(ports)
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return port
            except OSError:
                time.sleep(random.uniform(0.1, 0.5))
    raise RuntimeError("Unable to find an available port after multiple attempts")


def use_api(url: str) -> None:
    """Point this process's Prefect settings at `url`: the settings every thread reads that has not entered
    settings of its own (`prefect.context.GLOBAL_SETTINGS_CONTEXT`, as `refresh_global_settings_context` replaces
    it), with no UI URL unless the user set one. The environment is left as it is:
    `env.prefect_server_configured` still says embedded."""
    import prefect.context
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    current = prefect.context.GLOBAL_SETTINGS_CONTEXT
    settings = current.settings.copy_with_update(updates={PREFECT_API_URL: url}, set_defaults={PREFECT_UI_URL: ""})
    context = prefect.context.SettingsContext(profile=current.profile, settings=settings)
    prefect.context.GLOBAL_SETTINGS_CONTEXT = context
    _api_url[:] = [url]


def embedded_api_url() -> str | None:
    """The API URL of the embedded server this process started (None when it started none)."""
    return _api_url[0] if _api_url else None


def is_embedded(url: str | None) -> bool:
    """Whether Prefect API URL `url` means the embedded mode: none at all, or that of the server this process
    started."""
    return not url or url == embedded_api_url()


_started: StartedServer | None = None
_lock = threading.Lock()


def start_early() -> StartedServer | None:
    """Start this process's ephemeral Prefect server in the background, once (the embedded mode only: the caller
    checks that no PREFECT_API_URL is configured). None when this process's Prefect settings already name a server
    (a test harness's, entered in this process): Prefect's clients use that one."""
    global _started
    with _lock:
        if _started is None:
            from prefect.settings import PREFECT_API_URL

            from ctpipeline.adapters.prefect import dbtemplate

            if PREFECT_API_URL.value():
                return None

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
