"""Process environment for the embedded default. Called once by entry points, never at import time.

Prefect reads its settings when first imported, so this must run before `import prefect`.
Values already set in the environment win (that is how server mode points at real servers), and so does a
Prefect server chosen with `prefect config set PREFECT_API_URL=...` (the active profile of the user's Prefect
profiles file): `PREFECT_HOME` only defaults to the state folder when no Prefect server is configured at all.
"""

from __future__ import annotations

import logging
import os
import sys
import tomllib
import warnings
from pathlib import Path

from ctpipeline.store.state import StatePaths

TELEMETRY_OFF = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
}


def profile_api_url(environ: os._Environ | dict[str, str] | None = None) -> str | None:
    """PREFECT_API_URL of the active profile of the user's Prefect profiles file (`prefect config set` writes it
    there), or None. The file is $PREFECT_PROFILES_PATH, else $PREFECT_HOME/profiles.toml, else
    ~/.prefect/profiles.toml; the active profile is $PREFECT_PROFILE, else the file's `active`. A file that is
    missing or not TOML counts as no profile (Prefect itself reports a broken one)."""
    env = os.environ if environ is None else environ
    home = Path(env["PREFECT_HOME"]).expanduser() if env.get("PREFECT_HOME") else Path.home() / ".prefect"
    path = (
        Path(env["PREFECT_PROFILES_PATH"]).expanduser() if env.get("PREFECT_PROFILES_PATH") else home / "profiles.toml"
    )
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    active = env.get("PREFECT_PROFILE") or doc.get("active")
    profile = doc.get("profiles", {}).get(active) if isinstance(active, str) else None
    url = profile.get("PREFECT_API_URL") if isinstance(profile, dict) else None
    return url if isinstance(url, str) and url else None


def prefect_server_configured(environ: os._Environ | dict[str, str] | None = None) -> bool:
    """True when PREFECT_API_URL is set in the environment or in the user's active Prefect profile."""
    env = os.environ if environ is None else environ
    return bool(env.get("PREFECT_API_URL")) or profile_api_url(env) is not None


def configure_environment(paths: StatePaths) -> None:
    defaults = {
        **TELEMETRY_OFF,
        # the ephemeral server migrates its SQLite database on first start: 20 s is not enough on 2 slow cores
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "ctpipeline",
        "GIT_PYTHON_REFRESH": "quiet",
        # our log lines outside a flow run (e.g. `ctp serve` starting up) must not each warn about the API
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "TQDM_DISABLE": "1",
    }
    if not prefect_server_configured():  # the embedded default: Prefect's SQLite and profiles in the state folder
        defaults["PREFECT_HOME"] = str(paths.prefect_home)
    for k, v in defaults.items():
        os.environ.setdefault(k, v)
    paths.root.mkdir(parents=True, exist_ok=True)


class ConsoleHandler(logging.StreamHandler):
    """Prints `ctpipeline` log lines for commands that run no flow, to the *current* sys.stderr: a handler set up
    while stderr was redirected (a caller capturing a command's output) must not keep writing to that stream."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; the current sys.stderr is always used
        pass


def configure_logging(verbose: bool = False) -> None:
    """Console logging for the `ctpipeline` logger; safe to call again (each line is printed once).

    Commands that run flows leave the console to Prefect: `PREFECT_LOGGING_EXTRA_LOGGERS=ctpipeline`
    makes Prefect attach its own handlers (console and API, so the lines also show in the Prefect UI)
    to our logger when it sets up logging. Until then, and for commands without flows, ours prints them;
    once Prefect's are there, ours is removed (`ctp demo` lands data, then replays).
    """
    logger = logging.getLogger("ctpipeline")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    ours = [h for h in logger.handlers if isinstance(h, ConsoleHandler)]
    if len(ours) < len(logger.handlers):  # Prefect's handlers print our lines
        for h in ours:
            logger.removeHandler(h)
    elif not ours:
        handler = ConsoleHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    for noisy in ("alembic", "urllib3", "git", "mlflow.store.db.utils", "great_expectations", "httpx", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*integer column.*")


def configure_flow_logging() -> None:
    """Let the `ctpipeline` logger's INFO lines through in a flow run's own process (a worker's or `ctp serve`'s
    child), where nothing else set its level: Prefect attaches its API handler to the loggers named in
    PREFECT_LOGGING_EXTRA_LOGGERS but leaves their level at the root's WARNING. When the process was started
    without that variable, the handlers of Prefect's `prefect.extra` logger (the API handler, configured by
    Prefect before the flow starts) are attached too, so the lines reach the Prefect UI as well as the console.
    Safe to call again; a DEBUG level set by `--verbose` stays."""
    logger = logging.getLogger("ctpipeline")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    for handler in logging.getLogger("prefect.extra").handlers:
        if handler not in logger.handlers and not any(type(h) is type(handler) for h in logger.handlers):
            logger.addHandler(handler)
