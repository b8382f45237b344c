"""`ctp migrate`: move a pipeline's embedded MLflow registry (the state folder's SQLite store) into a server.

Copies the pipeline's experiment runs, the registered model's versions (same numbers, loadable on the server) and
its aliases; idempotent (a second run copies nothing twice and says so). The ledger and the batch log are files
of the state folder and stay there: they move with the folder, not with MLflow (docs/docker.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ctpipeline.errors import ConfigError


def add_commands(subparsers) -> None:
    """Add ``migrate`` to a ``ctp`` subparsers object."""
    m = subparsers.add_parser(
        "migrate",
        help="copy the embedded MLflow registry (runs, versions, aliases) into a tracking server; idempotent",
        description="Copy the pipeline's experiment runs, registered-model versions (same numbers) and aliases "
        "from the state folder's SQLite store into a tracking server. Credentials come from "
        "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD; never put them in the URI (ps shows it). "
        "The ledger and batch log stay files in the state folder.",
    )
    m.add_argument("--from-state-dir", required=True, metavar="DIR", help="state folder holding mlflow.db")
    m.add_argument("--to-tracking-uri", required=True, metavar="URI", help="target, e.g. http://127.0.0.1:5000")
    m.add_argument("--config", "-c", default="configs/flights.yaml", help="pipeline YAML (default: %(default)s)")
    m.add_argument("--json", action="store_true", help="print the report as one JSON document on stdout")
    m.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    m.set_defaults(func=cmd_migrate)


def _source_uri(state_dir: str) -> str:
    from ctpipeline.adapters.mlflow import sqlite_tracking_uri
    from ctpipeline.store.state import StatePaths

    root = Path(state_dir).expanduser().resolve()
    db = StatePaths(root).mlflow_db
    if not db.is_file():
        raise ConfigError(str(root), f"no embedded MLflow store here ({db.name} not found); nothing was migrated")
    return sqlite_tracking_uri(db)


def _check_target(uri: str) -> None:
    if "@" in uri.split("//", 1)[-1].split("/", 1)[0]:
        raise ConfigError(
            "--to-tracking-uri",
            "credentials in the URI would show in `ps`: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD",
        )


def cmd_migrate(args: argparse.Namespace) -> int:
    from ctpipeline.adapters.mlflow.migrate import migrate
    from ctpipeline.cli.common import emit_json
    from ctpipeline.config import load_config
    from ctpipeline.env import TELEMETRY_OFF, configure_logging

    cfg = load_config(args.config)
    source = _source_uri(args.from_state_dir)
    _check_target(args.to_tracking_uri)
    for key, value in {**TELEMETRY_OFF, "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}.items():
        os.environ.setdefault(key, value)
    configure_logging(args.verbose)
    if not args.verbose:  # MLflow's own INFO lines ("Waiting up to 300 seconds ...") for every version
        logging.getLogger("mlflow").setLevel(logging.WARNING)

    def progress(line: str) -> None:
        print(line, file=sys.stderr)

    report = migrate(source, args.to_tracking_uri, cfg.experiment_name, cfg.name, progress=progress)
    if args.json:
        emit_json(report.to_dict())
    else:
        print(report.summary())
    return 0
