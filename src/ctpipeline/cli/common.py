"""Process set-up shared by every `ctp` command: environment first (Prefect reads it on import), then logging."""

from __future__ import annotations

import argparse

from ctpipeline.store.state import StatePaths, resolve_state_dir


def state_paths(args: argparse.Namespace) -> StatePaths:
    return StatePaths(resolve_state_dir(getattr(args, "state_dir", None)))


def setup_process(args: argparse.Namespace, flows: bool = False) -> StatePaths:
    """Environment defaults, then logging. Commands that run flows leave the console to Prefect, which also
    ships our log lines to the Prefect UI."""
    from ctpipeline.env import configure_environment, configure_logging

    paths = state_paths(args)
    configure_environment(paths)
    if flows:
        from ctpipeline.adapters.prefect.concurrency import check_api
        from ctpipeline.adapters.prefect.results import setup_logging

        setup_logging()
        check_api()  # a configured Prefect server that cannot be reached: one clear error line, bounded
    configure_logging(getattr(args, "verbose", False))
    return paths


def open_pipeline(args: argparse.Namespace, read_only: bool = False):
    """Process set-up, then the pipeline of `--config` on the state folder of `--state-dir`. `read_only`: the state
    folder must exist already (a command that only reads creates nothing)."""
    from ctpipeline.steps.context import Pipeline

    if read_only:
        Pipeline.open(args.config, state_paths(args).root, must_exist=True)  # checks before anything is created
    return Pipeline.open(args.config, setup_process(args).root)


def check_config(args: argparse.Namespace) -> None:
    """Fail fast, before a Prefect server starts, when the config is broken."""
    from ctpipeline.config import load_config
    from ctpipeline.core.models import check_model_params

    check_model_params(load_config(args.config), args.config)


def emit_json(doc: dict) -> None:
    """The `--json` document of a command on stdout (progress and logs go to stderr)."""
    import json

    from ctpipeline.core.jsonable import to_jsonable

    print(json.dumps(to_jsonable(doc), indent=2, sort_keys=True))
