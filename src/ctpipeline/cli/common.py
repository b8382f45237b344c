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
        import prefect.main  # noqa: F401  (importing Prefect sets up its logging, once per process)
    configure_logging(getattr(args, "verbose", False))
    return paths


def open_pipeline(args: argparse.Namespace):
    """Process set-up, then the pipeline of `--config` on the state folder of `--state-dir`."""
    from ctpipeline.steps.pipeline import Pipeline

    return Pipeline.open(args.config, setup_process(args).root)
