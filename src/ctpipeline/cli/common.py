"""Process set-up shared by every `ctp` command: environment first (Prefect reads it on import), then logging."""

from __future__ import annotations

import argparse

from ctpipeline.errors import CtpError
from ctpipeline.store.state import StatePaths, resolve_state_dir, sqlite_problem, state_dir_problem


class UsageError(CtpError):
    """The command was asked for something that is not there (exit code 2)."""

    exit_code = 2


def state_paths(args: argparse.Namespace) -> StatePaths:
    return StatePaths(resolve_state_dir(getattr(args, "state_dir", None)))


def check_state(paths: StatePaths, writable: bool = True) -> None:
    """`writable`: the state folder can be created and written (UsageError: the --state-dir / $CTP_HOME given is
    unusable). Always: its MLflow database, if any, is a readable SQLite file (CtpError: corrupt or locked)."""
    if writable and (problem := state_dir_problem(paths.root)):
        raise UsageError(f"{problem} (check --state-dir or $CTP_HOME)")
    if problem := sqlite_problem(paths.mlflow_db):
        raise CtpError(f"MLflow store: {problem}")


def setup_process(
    args: argparse.Namespace, flows: bool = False, writable: bool = True, server: bool = False
) -> StatePaths:
    """The state folder checked, environment defaults, then logging. Commands that run flows leave the console to
    Prefect, which also ships our log lines to the Prefect UI. `server`: the command runs flows in this process,
    so in the embedded mode Prefect's ephemeral server is started now, in the background (`adapters.prefect.server`;
    the command waits for it before its first flow run)."""
    from ctpipeline.env import configure_environment, configure_logging

    paths = state_paths(args)
    check_state(paths, writable)
    configure_environment(paths)
    if flows:
        from ctpipeline.adapters.prefect.concurrency import check_api
        from ctpipeline.adapters.prefect.results import setup_logging
        from ctpipeline.env import prefect_server_configured

        setup_logging()
        check_api()  # a configured Prefect server that cannot be reached: one clear error line, bounded
        if server and not prefect_server_configured():  # embedded: it comes up while the command goes on
            from ctpipeline.adapters.prefect.server import start_early

            start_early()
    configure_logging(getattr(args, "verbose", False))
    return paths


def open_pipeline(args: argparse.Namespace, read_only: bool = False):
    """Process set-up, then the pipeline of `--config` on the state folder of `--state-dir`. `read_only`: the state
    folder must exist already (a command that only reads creates nothing)."""
    from ctpipeline.steps.context import Pipeline

    if read_only:
        Pipeline.open(args.config, state_paths(args).root, must_exist=True)  # checks before anything is created
    return Pipeline.open(args.config, setup_process(args, writable=not read_only).root)


def check_config(args: argparse.Namespace) -> None:
    """Fail fast, before a Prefect server starts, when the config is broken (its columns against the suite and
    the landed batches included) or the state folder is unusable."""
    from ctpipeline.steps.context import Pipeline
    from ctpipeline.steps.ingest import config_problems

    p = Pipeline.open(args.config, state_paths(args).root)
    config_problems(p.cfg, p.landing_dir, args.config)
    if p.paths.root.exists():
        check_state(p.paths, writable=False)


def emit_json(doc: dict) -> None:
    """The `--json` document of a command on stdout (progress and logs go to stderr)."""
    import json

    from ctpipeline.core.jsonable import to_jsonable

    print(json.dumps(to_jsonable(doc), indent=2, sort_keys=True))
