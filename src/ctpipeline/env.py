"""Process environment for the embedded default. Called once by entry points, never at import time.

Prefect reads its settings when first imported, so this must run before `import prefect`.
Values already set in the environment win (that is how server mode points at real servers).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

from ctpipeline.store.state import StatePaths

TELEMETRY_OFF = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
}


def configure_environment(paths: StatePaths) -> None:
    defaults = {
        **TELEMETRY_OFF,
        "PREFECT_HOME": str(paths.prefect_home),
        # the ephemeral server migrates its SQLite database on first start: 20 s is not enough on 2 slow cores
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "ctpipeline",
        "GIT_PYTHON_REFRESH": "quiet",
        # our log lines outside a flow run (e.g. `ctp serve` starting up) must not each warn about the API
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "TQDM_DISABLE": "1",
    }
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
