"""Prefect adapter: concurrency limits, the per-model training slot, and serving the deployments.

Every Prefect import is inside a function (no work at import time, and the pure core never needs Prefect).

* ``ensure_concurrency_limit(name, limit)``: a *global* concurrency limit, created (or corrected) through the
  Prefect client.
* ``training_slot(model)``: holds the ``train-<model>`` limit for the duration of a training step. It uses
  ``strict=True``: with Prefect's default (``strict=False``) a limit that does not exist is silently skipped
  (one log line), which would let two trainings of the same model run at once. Create the limit first with
  ``ensure_concurrency_limit`` (``serve_deployments`` does it for every pipeline it serves).
* ``deploy_specs`` / ``serve_deployments``: one deployment ``continuous-training/<pipeline name>`` per pipeline
  config, with parameters ``{config, state_dir, trigger: "schedule"}`` and an optional cron schedule, run by
  ``prefect.serve`` (blocks; each flow run executes in a child process of the serve process).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctpipeline.errors import ConfigError, CtpError

logger = logging.getLogger(__name__)

FLOW_NAME = "continuous-training"


def slot_name(model: str) -> str:
    """Name of the global concurrency limit that allows one training run of `model` at a time."""
    return f"train-{model}"


def ensure_concurrency_limit(name: str, limit: int = 1) -> None:
    """Create the global concurrency limit `name` with `limit` slots if missing; fix its size if it differs.

    Safe to call from several processes at once (a concurrent creation is not an error).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    if limit < 1:
        raise ValueError("limit must be at least 1")
    with get_client(sync_client=True) as client:
        try:
            existing = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            existing = None
        if existing is None:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
                logger.info("created global concurrency limit %r with %d slot(s)", name, limit)
                return
            except ObjectAlreadyExists:
                existing = client.read_global_concurrency_limit_by_name(name)
        if existing.limit != limit or not existing.active:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit, active=True))
            logger.info("set global concurrency limit %r to %d slot(s)", name, limit)


@contextmanager
def training_slot(model: str, timeout_seconds: float | None = None, lease_duration: float = 300) -> Iterator[None]:
    """Hold the one training slot of `model` (``train-<model>``) while the block runs; wait for it if taken.

    ``strict=True``: a missing limit raises (``ConcurrencySlotAcquisitionError``) instead of being skipped.
    Lease renewal failures are *not* fatal (``raise_on_lease_renewal_failure=False``): with strict=True Prefect
    would otherwise cancel a long training on one transient API error while renewing the lease. ``timeout_seconds``
    bounds the wait (``TimeoutError``); ``None`` waits as long as it takes.
    """
    from prefect.concurrency.sync import concurrency

    with concurrency(slot_name(model), occupy=1, strict=True, timeout_seconds=timeout_seconds,
                     lease_duration=lease_duration, raise_on_lease_renewal_failure=False):
        yield


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


def _check_cron(cron: str, where: str) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except Exception as exc:  # pydantic ValidationError naming croniter's complaint
        msg = str(exc).splitlines()
        raise ConfigError(where, [("cron", f"invalid cron string {cron!r}: {msg[-1].strip() if msg else exc}")]) from None


def deploy_specs(config_paths: Sequence[str | Path], state_dir: str | Path | None = None,
                 cron: str | None | Sequence[str | None] = None) -> list[DeploymentSpec]:
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
    for path, c in zip(config_paths, crons):
        cfg = load_config(path)
        if cfg.name in seen:
            raise ConfigError(str(path), [("name", f"pipeline {cfg.name!r} is already defined in {seen[cfg.name]}")])
        seen[cfg.name] = str(path)
        c = c if c is not None else cfg.triggers.schedule
        if c is not None:
            _check_cron(c, str(path))
        specs.append(DeploymentSpec(pipeline=cfg.name, config=str(Path(path).resolve()), state_dir=state, cron=c))
    return specs


def to_deployments(specs: Sequence[DeploymentSpec]) -> list[Any]:
    """RunnerDeployments of ``flows.continuous_training.continuous_training`` for `specs`."""
    from ctpipeline.flow import continuous_training

    return [
        continuous_training.to_deployment(
            name=s.pipeline,
            cron=s.cron,
            parameters=s.parameters,
            tags=["ctp", f"pipeline:{s.pipeline}"],
            description=f"Continuous training of {s.pipeline} ({s.config})",
        )
        for s in specs
    ]


def serve_deployments(config_paths: Sequence[str | Path], state_dir: str | Path | None = None,
                      cron: str | None | Sequence[str | None] = None, limit: int | None = None) -> None:
    """Register one deployment per pipeline and run them with ``prefect.serve`` (blocks until SIGINT/SIGTERM).

    Needs a Prefect server (``PREFECT_API_URL``): an ephemeral one would live and die with this process and run
    no scheduler. Creates the ``train-<pipeline>`` concurrency limit (one slot) for each pipeline first, so that
    ``training_slot`` with ``strict=True`` finds it.
    """
    from prefect import serve
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise CtpError("`serve` needs a Prefect server: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api after "
                       "`ctp ui prefect`)")
    specs = deploy_specs(config_paths, state_dir, cron)
    for s in specs:
        ensure_concurrency_limit(slot_name(s.pipeline), 1)
    deployments = to_deployments(specs)
    for s in specs:
        logger.info("serving %s (%s)%s", s.full_name, s.config, f", cron {s.cron!r}" if s.cron else "")
    serve(*deployments, limit=limit, print_starting_message=False)
