"""The one training slot per pipeline, held so that a crash never wedges the pipeline (docs/reliability.md).

``training_slot`` holds two things for the whole cycle:

* a **local lock**: ``fcntl.flock`` on ``<state>/pipelines/<name>/train.lock``. The kernel drops it when its
  holder dies, even by SIGKILL. The file names the holder (pid, host, flow run, lease, since when) for the logs;
* one slot of the Prefect global concurrency limit ``train-<name>``, taken as a **lease** of
  ``CTP_SLOT_LEASE_SECONDS`` (default and server minimum: 60 s) that a thread renews every third of it. A Prefect
  server's repossessor service revokes a lease nobody renews (it looks every 15 s), so a shared server frees the
  slot of a dead holder within lease + 15 s by itself. The ephemeral server of the embedded mode runs no
  repossessor (it is not one of its ``run_in_ephemeral`` services) and keeps leases in memory, lost with the
  process: the slot would stay taken for good. So whoever next holds the local lock reclaims a slot left by a
  dead holder at once: it releases the dead holder's lease by id, marks its flow run Crashed, stops its orphaned
  ephemeral server and, on the embedded database only (nothing outside this state folder can hold it), resets
  the limit's active slots.

A ``strict`` rule as before: a limit that does not exist is an error, never a silent skip. A wait logs every
``CTP_SLOT_LOG_SECONDS`` (15) what it waits for, and gives up after ``CTP_SLOT_MAX_WAIT_SECONDS`` (1800) with
``SlotBusyError`` (exit 1).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ctpipeline.adapters.prefect.holders import (
    ENV_MAX_WAIT,
    SlotBusyError,
    SlotSettings,
    give_up,
    reap_orphaned_servers,
    wait_local,
)
from ctpipeline.errors import CtpError
from ctpipeline.faults import checkpoint
from ctpipeline.locks import LocalLock, describe_holder, holder_record

__all__ = ["SlotBusyError", "SlotSettings", "ensure_concurrency_limit", "slot_name", "training_slot"]

logger = logging.getLogger(__name__)

REPOSSESSOR_SECONDS = 15.0  # PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS default


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


def check_api(attempts: int = 3, timeout: float = 5.0) -> None:
    """With PREFECT_API_URL set, fail fast and clearly (CtpError, exit 1) when that server cannot be reached or
    refuses our credentials, instead of a traceback after Prefect's own retries. Bounded: `attempts` tries of at most
    `timeout` s each, 1 s apart. Without PREFECT_API_URL (embedded ephemeral server) there is nothing to check."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL

    from ctpipeline.adapters.prefect.server import is_embedded

    url = PREFECT_API_URL.value()
    if is_embedded(url):  # also the embedded server's own URL (a second setup_process): perhaps still starting
        return
    error: Exception | None = None
    for attempt in range(attempts):
        try:
            with SyncPrefectClient(
                url,
                api_key=PREFECT_API_KEY.value(),
                auth_string=PREFECT_API_AUTH_STRING.value(),
                httpx_settings={"timeout": timeout},
            ) as client:
                client.hello().raise_for_status()  # authenticated, unlike /health
            return
        except Exception as exc:
            error = exc
            if "401" in str(exc):
                break
            if attempt + 1 < attempts:
                time.sleep(1.0)
    raise CtpError(
        f"the Prefect API at {url} cannot be used ({type(error).__name__}: {' '.join(str(error).split())[:200]}); "
        "start that server, fix PREFECT_API_URL (or PREFECT_API_AUTH_STRING), or unset PREFECT_API_URL to run on the "
        "embedded server"
    )


def _wait_message(name: str, api: str, s: SlotSettings, waited: float) -> str:
    return (
        f"waiting for the training slot {name} (Prefect global concurrency limit at {api}): taken by a cycle outside "
        f"this state folder (another host or state folder); waited {waited:.0f} s of at most {s.max_wait:.0f} s "
        f"({ENV_MAX_WAIT}). If its holder died, the server revokes its lease at most {s.lease:.0f} s after its "
        f"last renewal, then within {REPOSSESSOR_SECONDS:.0f} s (the repossessor's interval)"
    )


def _acquire_lease(client: Any, name: str, s: SlotSettings, t0: float, holder: Any) -> str:
    """One slot of the limit `name` as a lease; its id. Waits (with log lines) while the limit is full."""
    import httpx
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

    next_log = t0
    while True:
        try:
            response = client.increment_concurrency_slots_with_lease([name], 1, "concurrency", s.lease, holder=holder)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 423:  # 423 Locked: no slot free
                raise
            now = time.monotonic()
            if now - t0 >= s.max_wait:
                raise give_up(name, now - t0, s, f"a process of the Prefect server at {client.api_url}") from None
            if now >= next_log:
                logger.warning(_wait_message(name, str(client.api_url), s, now - t0))
                next_log = now + s.log_every
            time.sleep(min(2 * s.poll, max(0.05, s.max_wait - (now - t0))))
            continue
        body = response.json()
        if not body.get("limits"):
            raise ConcurrencySlotAcquisitionError(
                f"Concurrency limits [{name!r}] must be created before acquiring slots"
            )
        return str(body["lease_id"])


def _mark_crashed(client: Any, flow_run_id: str, message: str) -> None:
    from prefect.states import Crashed

    try:
        run = client.read_flow_run(flow_run_id)
        if run.state is not None and not run.state.is_final():
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            logger.warning("flow run %s (%s) marked Crashed: %s", run.name, run.id, message)
    except Exception as exc:  # its server may have been another one; the flow run is only bookkeeping
        logger.warning("could not mark flow run %s Crashed: %s", flow_run_id, exc)


def _reclaim(client: Any, name: str, previous: dict[str, Any] | None, embedded_home: Path | None) -> None:
    """We hold the local lock, so the last recorded holder is dead if it never wrote `released_at`."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    if previous and "pid" in previous and not previous.get("released_at"):
        why = f"its holder {describe_holder(previous)} died without releasing it"
        logger.warning("reclaiming the training slot %s: %s", name, why)
        if previous.get("lease_id"):
            client.release_concurrency_slots_with_lease(previous["lease_id"])  # a no-op if the lease is gone
        if previous.get("flow_run_id"):
            _mark_crashed(client, previous["flow_run_id"], f"the process running this flow died ({why})")
    if embedded_home is None:
        return
    reap_orphaned_servers(embedded_home)
    limit = client.read_global_concurrency_limit_by_name(name)
    if limit.active_slots > 0:  # leases of a dead ephemeral server: nothing else can hold them
        logger.warning(
            "training slot %s: %d slot(s) left taken by a dead process; freeing them", name, limit.active_slots
        )
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))


class _LeaseKeeper(threading.Thread):
    """Renews the lease every third of its duration until stopped; a failed renewal is a warning, not fatal."""

    def __init__(self, lease_id: str, lease: float):
        super().__init__(name="ctp-slot-lease", daemon=True)
        self.lease_id, self.lease, self.stopped = lease_id, lease, threading.Event()

    def run(self) -> None:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            while not self.stopped.wait(self.lease / 3):
                try:
                    client.renew_concurrency_lease(self.lease_id, self.lease)
                except Exception as exc:
                    logger.warning("could not renew the lease of the training slot (%s): %s", self.lease_id, exc)


def _holder_info(lease: float) -> dict[str, Any]:
    from prefect.runtime import flow_run

    return holder_record(flow_run=flow_run.name or None, flow_run_id=flow_run.id or None, lease_seconds=lease)


def _embedded_home(prefect_home: Path | None) -> Path | None:
    """`prefect_home` when this process uses the ephemeral server on that home (no PREFECT_API_URL, or the URL of
    the embedded server this process started), else None."""
    from prefect.settings import PREFECT_API_URL, get_current_settings

    from ctpipeline.adapters.prefect.server import is_embedded

    if prefect_home is None or not is_embedded(PREFECT_API_URL.value()):
        return None
    return prefect_home if Path(get_current_settings().home).resolve() == prefect_home.resolve() else None


@contextmanager
def training_slot(
    model: str,
    lock_dir: Path | None = None,
    prefect_home: Path | None = None,
    *,
    timeout_seconds: float | None = None,
    lease_duration: float | None = None,
) -> Iterator[None]:
    """Hold the one training slot of `model` while the block runs (module docstring); wait for it if taken.

    `lock_dir`: the pipeline's state folder (the local lock lives there; None: Prefect slot only).
    `prefect_home`: the state folder's PREFECT_HOME, where a slot left by a dead process may be reset.
    `timeout_seconds` / `lease_duration` override ``CTP_SLOT_MAX_WAIT_SECONDS`` / ``CTP_SLOT_LEASE_SECONDS``.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder

    s = SlotSettings.from_env()
    s = SlotSettings(timeout_seconds or s.max_wait, s.log_every, lease_duration or s.lease, s.poll)
    name, t0 = slot_name(model), time.monotonic()
    lock = LocalLock(Path(lock_dir) / "train.lock") if lock_dir is not None else None
    if lock is not None:
        wait_local(lock, name, s, t0)
    try:
        info = _holder_info(s.lease)
        holder = ConcurrencyLeaseHolder(type="flow_run", id=info["flow_run_id"]) if info["flow_run_id"] else None
        with get_client(sync_client=True) as client:
            if lock is not None:
                _reclaim(client, name, lock.holder(), _embedded_home(prefect_home))
                lock.write(info)  # a crash from here on is this process's to reclaim
            lease_id = _acquire_lease(client, name, s, t0, holder)
        info["lease_id"] = lease_id
        if lock is not None:
            lock.write(info)
        keeper = _LeaseKeeper(lease_id, s.lease)
        keeper.start()
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    released = False
    try:
        checkpoint("slot-acquired")
        yield
    finally:
        keeper.stopped.set()
        try:
            with get_client(sync_client=True) as client:
                client.release_concurrency_slots_with_lease(lease_id)
            released = True
        except Exception as exc:  # the next holder of the local lock reclaims it by lease id
            logger.warning("could not release the training slot %s (lease %s): %s", name, lease_id, exc)
        if lock is not None:
            lock.release({**info, "released_at": datetime.now(UTC).isoformat(timespec="seconds")} if released else None)
