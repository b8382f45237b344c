"""Prefect deployments: one ``continuous-training/<pipeline>`` deployment per pipeline config, with parameters
``{config, state_dir, trigger: "schedule"}`` and the cron of ``triggers.schedule`` (or ``ctp serve --cron``), run
by a Prefect `Runner` as ``prefect.serve`` runs one (blocks; each flow run executes in a child process of the serve
process; SIGTERM stops it as Ctrl-C does).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctpipeline.adapters.prefect.concurrency import ensure_concurrency_limit, slot_name
from ctpipeline.core.triggers import validate_cron
from ctpipeline.errors import ConfigError, CtpError

logger = logging.getLogger(__name__)

FLOW_NAME = "continuous-training"


# --------------------------------------------------------------------------- deployments


@dataclass(frozen=True)
class DeploymentSpec:
    """What `serve_deployments` registers for one pipeline config."""

    pipeline: str  # pipeline name = deployment name
    config: str  # absolute path of the pipeline YAML
    state_dir: str  # absolute path of the state folder
    cron: str | None = None

    @property
    def full_name(self) -> str:
        return f"{FLOW_NAME}/{self.pipeline}"

    @property
    def parameters(self) -> dict[str, Any]:
        return {"config": self.config, "state_dir": self.state_dir, "trigger": "schedule"}


def deploy_specs(
    config_paths: Sequence[str | Path],
    state_dir: str | Path | None = None,
    cron: str | None | Sequence[str | None] = None,
) -> list[DeploymentSpec]:
    """One spec per pipeline config (validated with ``load_config``).

    ``cron``: one cron string for every config, or one entry (string or None) per config; where it is None the
    pipeline YAML's ``triggers.schedule`` is used (``ctp serve --cron`` overrides the YAML).
    """
    from ctpipeline.config.schema import load_config
    from ctpipeline.store.state import resolve_state_dir

    if not config_paths:
        raise CtpError("no pipeline config given (use --config FILE, repeatable)")
    crons = [cron] * len(config_paths) if cron is None or isinstance(cron, str) else list(cron)
    if len(crons) != len(config_paths):
        raise CtpError(f"{len(crons)} cron strings for {len(config_paths)} configs: give one, or one per config")
    state = str(resolve_state_dir(state_dir))
    specs: list[DeploymentSpec] = []
    seen: dict[str, str] = {}
    for path, c in zip(config_paths, crons, strict=False):
        cfg = load_config(path)
        if cfg.name in seen:
            raise ConfigError(str(path), [("name", f"pipeline {cfg.name!r} is already defined in {seen[cfg.name]}")])
        seen[cfg.name] = str(path)
        c = c if c is not None else cfg.triggers.schedule
        if c is not None:
            try:
                c = validate_cron(c)
            except ValueError as exc:
                raise ConfigError(str(path), [("cron", str(exc))]) from None
        specs.append(DeploymentSpec(pipeline=cfg.name, config=str(Path(path).resolve()), state_dir=state, cron=c))
    return specs


def to_deployments(flow: Any, specs: Sequence[DeploymentSpec]) -> list[Any]:
    """RunnerDeployments of the Prefect `flow` (``ctpipeline.flow.continuous_training``) for `specs`."""
    return [
        flow.to_deployment(
            name=s.pipeline,
            cron=s.cron,
            parameters=s.parameters,
            tags=["ctp", f"pipeline:{s.pipeline}"],
            description=f"Continuous training of {s.pipeline} ({s.config})",
        )
        for s in specs
    ]


def serve_deployments(
    flow: Any,
    config_paths: Sequence[str | Path],
    state_dir: str | Path | None = None,
    cron: str | None | Sequence[str | None] = None,
    limit: int | None = None,
) -> None:
    """Register one deployment per pipeline and run them as ``prefect.serve`` would (`_serve`; blocks until SIGINT
    or SIGTERM).

    Needs a Prefect server (``PREFECT_API_URL``): an ephemeral one would live and die with this process and run
    no scheduler. Creates the ``train-<pipeline>`` concurrency limit (one slot) for each pipeline first, so that
    ``training_slot`` with ``strict=True`` finds it.
    """
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise CtpError(
            "`serve` needs a Prefect server: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api after "
            "`ctp ui prefect`)"
        )
    specs = deploy_specs(config_paths, state_dir, cron)
    for s in specs:
        ensure_concurrency_limit(slot_name(s.pipeline), 1)
    deployments = to_deployments(flow, specs)
    for s in specs:
        logger.info("serving %s (%s)%s", s.full_name, s.config, f", cron {s.cron!r}" if s.cron else "")
    _serve(deployments, limit)


def _serve(deployments: list[Any], limit: int | None) -> None:
    """What ``prefect.serve`` does (a `Runner` with every deployment, schedules paused on shutdown), except that
    SIGTERM (systemd's and every supervisor's stop) takes the path of Ctrl-C: the runner's task is cancelled, its
    flow-run processes are ended, its deployments paused. Prefect's own SIGTERM handler calls the runner's `stop`
    from inside the running loop, where it only makes a coroutine that is never awaited, then raises `SystemExit`
    in the middle of the loop (a RuntimeWarning and asyncio tracebacks at every stop)."""
    import asyncio
    import signal

    from prefect.runner import Runner

    runner = Runner(pause_on_shutdown=True, limit=limit)
    for deployment in deployments:
        runner.add_deployment(deployment)

    stopping: list[str] = []

    async def main() -> None:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()

        def stop() -> None:  # in the loop, not in the signal handler
            if not stopping:  # a second SIGTERM must not cut the first one's clean-up short
                stopping.append("SIGTERM")
                logger.info("SIGTERM received: stopping the served deployments")
                task.cancel()

        def on_sigterm(*_: Any) -> None:
            try:
                loop.call_soon_threadsafe(stop)  # wakes the loop, as asyncio's own Ctrl-C handler does
            except RuntimeError:  # the loop is closed: the serve is ending already
                pass

        runner.handle_sigterm = on_sigterm  # Runner.start installs this attribute as the SIGTERM handler
        await runner.start()

    previous = signal.getsignal(signal.SIGTERM)
    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        logger.info("%s: the served deployments stopped", stopping[0] if stopping else "Ctrl-C")
    finally:  # a SIGTERM during the process's exit ends it as it would have before serving
        signal.signal(signal.SIGTERM, previous)
