"""The local half of the training slot (``concurrency.training_slot``): an ``flock`` in the state folder that the
kernel drops when its holder dies (even by SIGKILL), the holder's record in the lock file, and the orphaned
ephemeral Prefect servers a killed process leaves behind. No Prefect import: plain files and /proc."""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ctpipeline.errors import ConfigError, CtpError
from ctpipeline.locks import LocalLock, describe_holder

logger = logging.getLogger(__name__)

ENV_MAX_WAIT, ENV_LOG_EVERY, ENV_LEASE = "CTP_SLOT_MAX_WAIT_SECONDS", "CTP_SLOT_LOG_SECONDS", "CTP_SLOT_LEASE_SECONDS"
MIN_LEASE_SECONDS = 60.0  # the Prefect server refuses shorter leases


class SlotBusyError(CtpError, TimeoutError):
    """The training slot stayed taken longer than the maximum wait (exit 1)."""


@dataclass(frozen=True)
class SlotSettings:
    max_wait: float = 1800.0
    log_every: float = 15.0
    lease: float = MIN_LEASE_SECONDS
    poll: float = 1.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SlotSettings:
        """The settings from ``CTP_SLOT_*`` environment variables; ConfigError (exit 2) naming a bad one."""
        values = {}
        for field, var in (("max_wait", ENV_MAX_WAIT), ("log_every", ENV_LOG_EVERY), ("lease", ENV_LEASE)):
            raw = environ.get(var, "").strip()
            if not raw:
                continue
            try:
                values[field] = float(raw)
            except ValueError:
                values[field] = math.nan
            if not values[field] > 0 or math.isinf(values[field]):
                raise ConfigError(var, f"must be a positive number of seconds, got {raw!r}")
        if values.get("lease", MIN_LEASE_SECONDS) < MIN_LEASE_SECONDS:
            raise ConfigError(ENV_LEASE, f"at least {MIN_LEASE_SECONDS:g} s (the Prefect server's minimum lease)")
        return cls(**values)


def give_up(name: str, waited: float, s: SlotSettings, holder: str) -> SlotBusyError:
    return SlotBusyError(
        f"gave up waiting for the training slot {name} after {waited:.0f} s ({ENV_MAX_WAIT}={s.max_wait:g}): "
        f"held by {holder}. Run again when it is done; if that process is gone, the slot is reclaimed on the "
        "next run"
    )


def wait_local(lock: LocalLock, name: str, s: SlotSettings, t0: float) -> None:
    next_log = t0
    while not lock.try_acquire():
        now = time.monotonic()
        if now - t0 >= s.max_wait:
            raise give_up(name, now - t0, s, describe_holder(lock.holder()))
        if now >= next_log:
            logger.warning(
                "waiting for the training slot %s (lock %s): held by %s; waited %.0f s of at most %.0f s (%s)",
                name,
                lock.path,
                describe_holder(lock.holder()),
                now - t0,
                s.max_wait,
                ENV_MAX_WAIT,
            )
            next_log = now + s.log_every
        time.sleep(min(s.poll, max(0.05, s.max_wait - (now - t0))))


def reap_orphaned_servers(prefect_home: Path) -> list[int]:
    """SIGTERM the ephemeral Prefect servers of `prefect_home` whose parent died (reparented to init): a SIGKILLed
    `ctp` leaves its server running for good otherwise. Linux /proc only; returns the pids signalled."""
    home, found = str(prefect_home.resolve()), []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if "prefect.server.api.server:create_app" not in (proc / "cmdline").read_bytes().decode(errors="replace"):
                continue
            env = dict(
                kv.split("=", 1)
                for kv in (proc / "environ").read_bytes().decode(errors="replace").split("\0")
                if "=" in kv
            )
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == 1 and env.get("PREFECT__SERVER_EPHEMERAL") == "1" and env.get("PREFECT_HOME") == home:
            os.kill(int(proc.name), signal.SIGTERM)
            found.append(int(proc.name))
    if found:
        logger.warning("stopped %d orphaned ephemeral Prefect server(s) of %s: pid %s", len(found), home, found)
    return found
