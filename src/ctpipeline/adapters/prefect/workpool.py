"""Prefect work pools for the team stack (`ctp stack up`): a ``process`` work pool, the deployments of every pipeline
registered to it, and which workers poll it.

The deployments point at the installed flow by module path (``ctpipeline.flow.continuous_training``), so a
``prefect worker start --pool <pool>`` on any machine with ``ctpipeline`` installed can run them: nothing is
downloaded or copied. Every function talks to the Prefect server at ``api_url`` (``temporary_settings``), whatever
the process's own ``PREFECT_API_URL`` is. Every Prefect import is inside a function.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ctpipeline.adapters.prefect.concurrency import ensure_concurrency_limit, slot_name
from ctpipeline.adapters.prefect.deployments import DeploymentSpec
from ctpipeline.errors import CtpError

logger = logging.getLogger(__name__)


@contextmanager
def api(api_url: str) -> Iterator[None]:
    """Prefect clients created inside the block talk to `api_url`."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        yield


def ensure_work_pool(api_url: str, name: str) -> bool:
    """Create the ``process`` work pool `name` (with the process worker's default job template) unless it exists;
    True when it was created. An existing pool of another type is an error."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with api(api_url), get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            pool = None
        if pool is None:
            template = ProcessWorker.get_default_base_job_template()
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))
                logger.info("created work pool %r (type process)", name)
                return True
            except ObjectAlreadyExists:  # created by a worker or another `up` meanwhile
                pool = client.read_work_pool(name)
        if pool.type != "process":
            raise CtpError(f"work pool {name!r} on {api_url} has type {pool.type!r}, not 'process'")
        return False


def register_deployments(flow: Any, specs: Sequence[DeploymentSpec], pool: str, api_url: str) -> list[str]:
    """Register (create or update) one deployment per spec on the work pool `pool`, with the installed flow's
    module path as entrypoint, and the ``train-<pipeline>`` concurrency limit of each pipeline; their ids."""
    from prefect.deployments.runner import EntrypointType

    ids = []
    with api(api_url):
        for s in specs:
            ensure_concurrency_limit(slot_name(s.pipeline), 1)
            deployment = flow.to_deployment(
                name=s.pipeline,
                cron=s.cron,
                parameters=s.parameters,
                tags=["ctp", f"pipeline:{s.pipeline}"],
                description=f"Continuous training of {s.pipeline} ({s.config})",
                work_pool_name=pool,
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
            ids.append(str(deployment.apply(work_pool_name=pool)))
            logger.info("registered deployment %s on work pool %r (%s)", s.full_name, pool, s.config)
    return ids


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    status: str
    last_heartbeat: datetime | None


def pool_workers(api_url: str, pool: str, timeout_seconds: float = 5.0) -> list[WorkerInfo]:
    """The workers the server knows for `pool` (name, ONLINE/OFFLINE, last heartbeat); [] when the pool is
    missing. Raises CtpError when the server cannot be reached."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.exceptions import ObjectNotFound

    try:
        with SyncPrefectClient(api_url, httpx_settings={"timeout": timeout_seconds}) as client:
            workers = client.read_workers_for_work_pool(pool)
    except ObjectNotFound:
        return []
    except Exception as exc:  # refused, timeout
        raise CtpError(f"Prefect API {api_url} unavailable: {type(exc).__name__}: {exc}") from exc
    return [WorkerInfo(w.name, str(getattr(w.status, "value", w.status)), w.last_heartbeat_time) for w in workers]
