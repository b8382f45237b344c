"""Prefect concurrency: the one training slot per pipeline (a global concurrency limit ``train-<pipeline>``).

``training_slot`` uses ``strict=True``: with Prefect's default a limit that does not exist is silently skipped (one
log line), which would let two trainings of the same model run at once; ``ensure_concurrency_limit`` creates it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)


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

    with concurrency(
        slot_name(model),
        occupy=1,
        strict=True,
        timeout_seconds=timeout_seconds,
        lease_duration=lease_duration,
        raise_on_lease_renewal_failure=False,
    ):
        yield
